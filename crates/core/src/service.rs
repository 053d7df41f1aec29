//! The identity and DKIM use cases, written only against the ports. Each use case validates
//! everything first, does slow work (key generation) outside any transaction, and then makes
//! exactly one store call that either applies the whole change or nothing.

use crate::dkim::{self, ExpectedRecord, KeyLengthHistory, Observation, VerifyPolicy};
use crate::error::{Error, StoreError};
use crate::model::{
    AccountId, Dkim, DkimKey, DkimOrigin, DkimStatus, Identity, IdentityFilter, IdentityName,
    IdentitySummary, KeyLength, Selector, Tag, Timestamp, Verification, merge_tags,
};
use crate::ports::{Clock, KeyVault, NewKey, PrivateKeyInput, Store};
use std::sync::Arc;

/// Settings of the service that are not per request.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The most identities one account may hold (SES: 10,000 per region).
    pub max_identities: u64,
    /// The zone under which Easy DKIM public keys are published (`SigningHostedZone`).
    pub dkim_zone: String,
    /// The DNS verifier's timing rules.
    pub verify: VerifyPolicy,
    /// Easy DKIM key rotation.
    pub rotation: RotationPolicy,
}

/// How Easy DKIM keys rotate without breaking a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long a staged key is published before it may sign (covers DNS caches of the
    /// key record, whose TTL is 5 minutes).
    pub activation_delay_ms: i64,
    /// How long a retired key stays published for mail in transit.
    pub retention_ms: i64,
    /// Rotate the signing key when it is this old; `None`: only on request.
    pub rotate_every_ms: Option<i64>,
}

impl Default for RotationPolicy {
    fn default() -> RotationPolicy {
        RotationPolicy {
            activation_delay_ms: 15 * 60 * 1000,
            retention_ms: 7 * 24 * Timestamp::HOUR,
            rotate_every_ms: None,
        }
    }
}

/// An identity whose DNS records are due for a check, with the records to look for.
#[derive(Debug, Clone)]
pub struct DueCheck {
    /// The identity as claimed (its version guards the result's write).
    pub identity: Identity,
    /// The records to look up.
    pub records: Vec<ExpectedRecord>,
}

/// How a domain's DKIM should be set up.
#[derive(Debug)]
pub enum DkimSetup {
    /// Easy DKIM with keys of `length` (default RSA-2048); `None` when the request named none.
    Easy {
        /// `NextSigningKeyLength`, if given.
        length: Option<KeyLength>,
    },
    /// BYODKIM with the customer's selector and key.
    External {
        /// The selector.
        selector: Selector,
        /// The private key, DER.
        private_key: PrivateKeyInput,
    },
}

/// A validated CreateEmailIdentity.
#[derive(Debug)]
pub struct CreateIdentity {
    /// The new identity's name.
    pub name: IdentityName,
    /// Tags to attach.
    pub tags: Vec<Tag>,
    /// DKIM set-up; `None` means Easy DKIM for domains and nothing for addresses.
    pub dkim: Option<DkimSetup>,
    /// A default configuration set to link.
    pub configuration_set: Option<String>,
}

/// An identity as read, with the DKIM an address identity inherits from its domain.
#[derive(Debug, Clone)]
pub struct IdentityView {
    /// The stored identity.
    pub identity: Identity,
    /// For an address whose domain is an identity of the same account: the domain's DKIM.
    pub inherited_dkim: Option<Dkim>,
}

/// One page of ListEmailIdentities.
#[derive(Debug, Clone)]
pub struct Page {
    /// The identities on this page.
    pub items: Vec<IdentitySummary>,
    /// The last name on this page when more pages follow (the edge turns it into a token).
    pub continue_after: Option<String>,
}

/// The use cases.
pub struct Service {
    store: Arc<dyn Store>,
    vault: Arc<dyn KeyVault>,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
}

/// The key length of new Easy DKIM identities (SES developer guide: RSA_2048_BIT).
pub const DEFAULT_KEY_LENGTH: KeyLength = KeyLength::Rsa2048;

fn not_found(name: &IdentityName) -> Error {
    Error::NotFound(format!("Email identity {name} does not exist."))
}

fn store_err(e: StoreError, name: &IdentityName) -> Error {
    match e {
        StoreError::NotFound => not_found(name),
        StoreError::AlreadyExists => {
            Error::AlreadyExists(format!("Email identity {name} already exist."))
        }
        StoreError::LimitExceeded => {
            Error::LimitExceeded("The maximum number of email identities has been reached.".into())
        }
        StoreError::Conflict => Error::ConcurrentModification(format!(
            "Email identity {name} was modified concurrently; retry the request."
        )),
        StoreError::Unavailable(m) => Error::Unavailable(m),
    }
}

impl Service {
    /// Wires the use cases to their ports.
    pub fn new(
        store: Arc<dyn Store>,
        vault: Arc<dyn KeyVault>,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> Service {
        Service {
            store,
            vault,
            clock,
            config,
        }
    }

    /// The current time, from the injected clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The service's configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// CreateEmailIdentity.
    pub fn create_identity(
        &self,
        account: &AccountId,
        req: CreateIdentity,
    ) -> Result<Identity, Error> {
        let name = req.name;
        let tags = merge_tags(&[], &req.tags)?;
        if req.dkim.is_some() && matches!(name, IdentityName::Email(_)) {
            return Err(Error::bad_request(
                "DkimSigningAttributes",
                "DkimSigningAttributes can only be specified when the email identity is a domain",
            ));
        }
        if let Some(set) = req.configuration_set {
            // Configuration sets are not (yet) part of Sesame, so no name can refer to one.
            return Err(Error::NotFound(format!(
                "Configuration set {set} does not exist."
            )));
        }
        // Fail fast before spending seconds of CPU on keys; insert_identity re-checks atomically.
        if self.load(account, &name)?.is_some() {
            return Err(store_err(StoreError::AlreadyExists, &name));
        }
        let now = self.clock.now();
        let (dkim, verification_status, verification) = match &name {
            IdentityName::Email(_) => (None, DkimStatus::Pending, Verification::default()),
            IdentityName::Domain(_) => {
                let setup = req.dkim.unwrap_or(DkimSetup::Easy { length: None });
                let dkim = self.configure_dkim(&setup, None)?;
                let status = dkim.status;
                // Checked right after configuration, then on the backoff schedule.
                (
                    Some(dkim),
                    status,
                    dkim::restart(&Verification::default(), now),
                )
            }
        };
        let identity = Identity {
            account: account.clone(),
            name,
            version: 1,
            created_at: now,
            feedback_forwarding: true,
            dkim,
            signing_override: None,
            verification_status,
            tags,
            verification,
        };
        self.store
            .insert_identity(&identity, self.config.max_identities)
            .map_err(|e| store_err(e, &identity.name))?;
        Ok(identity)
    }

    /// GetEmailIdentity.
    pub fn get_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<IdentityView, Error> {
        let identity = self.load(account, name)?.ok_or_else(|| not_found(name))?;
        let inherited_dkim = match name {
            IdentityName::Email(addr) => self
                .load(account, &IdentityName::Domain(addr.domain()))?
                .and_then(|d| d.dkim),
            IdentityName::Domain(_) => None,
        };
        Ok(IdentityView {
            identity,
            inherited_dkim,
        })
    }

    /// ListEmailIdentities: up to `page_size` identities after `after`.
    pub fn list_identities(
        &self,
        account: &AccountId,
        filter: &IdentityFilter,
        after: Option<&str>,
        page_size: usize,
    ) -> Result<Page, Error> {
        let mut items = self
            .store
            .list_identities(account, filter, after, page_size + 1)
            .map_err(|e| match e {
                StoreError::Unavailable(m) => Error::Unavailable(m),
                other => Error::Internal(other.to_string()),
            })?;
        let more = items.len() > page_size;
        items.truncate(page_size);
        let continue_after = if more {
            items.last().map(|i| i.name.as_str().to_owned())
        } else {
            None
        };
        Ok(Page {
            items,
            continue_after,
        })
    }

    /// DeleteEmailIdentity: the identity goes with its keys and tags.
    pub fn delete_identity(&self, account: &AccountId, name: &IdentityName) -> Result<(), Error> {
        self.store
            .delete_identity(account, name)
            .map_err(|e| store_err(e, name))
    }

    /// PutEmailIdentityDkimAttributes: flips signing only, never the DKIM status.
    pub fn put_dkim_attributes(
        &self,
        account: &AccountId,
        name: &IdentityName,
        signing_enabled: bool,
    ) -> Result<(), Error> {
        // AWS answers an unknown identity here with a BadRequestException, not a 404
        // (observed against SES; see SES-SEMANTICS.md section 3.5).
        let unknown = || {
            Error::bad_request(
                "EmailIdentity",
                format!("Domain {name} is not verified for DKIM signing."),
            )
        };
        let Some(current) = self.load(account, name)? else {
            return Err(unknown());
        };
        self.save_modified(current, |id| {
            match &mut id.dkim {
                Some(dkim) => dkim.signing_enabled = signing_enabled,
                // An address identity stores its own override of the domain's setting.
                None => id.signing_override = Some(signing_enabled),
            }
            Ok(())
        })
        .map(|_| ())
        .map_err(|e| match e {
            Error::NotFound(_) => unknown(),
            other => other,
        })
    }

    /// PutEmailIdentityDkimSigningAttributes: switch origin, replace BYODKIM keys, or change
    /// the Easy DKIM key length. Returns the resulting DKIM attributes.
    pub fn put_dkim_signing_attributes(
        &self,
        account: &AccountId,
        name: &IdentityName,
        setup: DkimSetup,
    ) -> Result<Dkim, Error> {
        if matches!(name, IdentityName::Email(_)) {
            return Err(Error::bad_request(
                "EmailIdentity",
                "DKIM signing attributes can only be set on a domain identity",
            ));
        }
        let current = self.load(account, name)?.ok_or_else(|| not_found(name))?;
        let now = self.clock.now();
        let saved = self.save_modified(current, |id| {
            let previous = id.dkim.take();
            let next = self.configure_dkim(&setup, previous.as_ref())?;
            let staged_only = previous.as_ref().is_some_and(|p| {
                matches!(p.origin, DkimOrigin::Easy { .. })
                    && matches!(next.origin, DkimOrigin::Easy { .. })
                    && p.keys.first().map(|k| &k.selector) == next.keys.first().map(|k| &k.selector)
            });
            if staged_only {
                // A staged key under the same tokens: the CNAMEs are unchanged, so the status
                // stands; check now, and the check reschedules itself for the activation.
                if next.staged.is_some() {
                    id.verification.next_check_at = Some(now);
                }
            } else if previous.as_ref() != Some(&next) {
                // New tokens or a new method: verification starts over (SES developer guide),
                // and a domain is verified exactly when its DKIM is.
                id.verification_status = next.status;
                id.verification = dkim::restart(&id.verification, now);
            }
            id.dkim = Some(next);
            Ok(())
        })?;
        saved
            .dkim
            .ok_or_else(|| Error::Internal("domain identity without DKIM".into()))
    }

    /// PutEmailIdentityFeedbackAttributes.
    pub fn put_feedback_attributes(
        &self,
        account: &AccountId,
        name: &IdentityName,
        enabled: bool,
    ) -> Result<(), Error> {
        let current = self.load(account, name)?.ok_or_else(|| not_found(name))?;
        self.save_modified(current, |id| {
            id.feedback_forwarding = enabled;
            Ok(())
        })
        .map(|_| ())
    }

    /// TagResource on an identity: adds tags, replacing values of existing keys.
    pub fn tag_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
        tags: &[Tag],
    ) -> Result<(), Error> {
        let current = self.load(account, name)?.ok_or_else(|| not_found(name))?;
        self.save_modified(current, |id| {
            id.tags = merge_tags(&id.tags, tags)?;
            Ok(())
        })
        .map(|_| ())
    }

    /// UntagResource on an identity: removes the keys (absent keys are ignored, as in AWS).
    pub fn untag_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
        keys: &[String],
    ) -> Result<(), Error> {
        let current = self.load(account, name)?.ok_or_else(|| not_found(name))?;
        self.save_modified(current, |id| {
            id.tags.retain(|t| !keys.iter().any(|k| k == t.key()));
            Ok(())
        })
        .map(|_| ())
    }

    /// ListTagsForResource on an identity.
    pub fn identity_tags(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Vec<Tag>, Error> {
        Ok(self
            .load(account, name)?
            .ok_or_else(|| not_found(name))?
            .tags)
    }

    /// The DNS records an identity needs (for `sesame dns-records`); empty for addresses.
    pub fn expected_records(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Vec<ExpectedRecord>, Error> {
        let identity = self.load(account, name)?.ok_or_else(|| not_found(name))?;
        Ok(self.records_of(&identity))
    }

    fn records_of(&self, identity: &Identity) -> Vec<ExpectedRecord> {
        match (&identity.name, &identity.dkim) {
            (IdentityName::Domain(d), Some(dkim)) => {
                dkim::expected_records(d, dkim, &self.config.dkim_zone)
            }
            _ => vec![],
        }
    }

    /// Claims up to `limit` identities whose check is due, leasing them so no other node (or
    /// loop) checks them at the same time.
    pub fn claim_due_checks(&self, limit: usize) -> Result<Vec<DueCheck>, Error> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_due(now, Timestamp(now.0 + self.config.verify.lease_ms), limit)
            .map_err(|e| match e {
                StoreError::Unavailable(m) => Error::Unavailable(m),
                other => Error::Internal(other.to_string()),
            })?;
        Ok(claimed
            .into_iter()
            .map(|identity| DueCheck {
                records: self.records_of(&identity),
                identity,
            })
            .collect())
    }

    /// Applies what the verifier saw to a claimed identity, in one versioned write. Returns the
    /// status change, or `None` when the identity changed meanwhile (the result is stale and
    /// dropped; the change rescheduled its own check).
    pub fn record_check(
        &self,
        claimed: Identity,
        observation: &Observation,
    ) -> Result<Option<(DkimStatus, DkimStatus)>, Error> {
        let now = self.clock.now();
        let mut id = claimed;
        let Some(dkim) = id.dkim.as_mut() else {
            return Ok(None);
        };
        let from = dkim.status;
        let (to, verification) = dkim::step(
            from,
            &id.verification,
            observation,
            now,
            &self.config.verify,
        );
        dkim.status = to;
        id.verification_status = to;
        id.verification = verification;
        self.rotation_step(dkim, &mut id.verification, now)?;
        match self.store.update_identity(&id) {
            Ok(_) => Ok(Some((from, to))),
            Err(StoreError::Conflict) | Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(store_err(e, &id.name)),
        }
    }

    fn load(&self, account: &AccountId, name: &IdentityName) -> Result<Option<Identity>, Error> {
        self.store
            .get_identity(account, name)
            .map_err(|e| store_err(e, name))
    }

    /// Applies `change` to a copy of `current` and stores it if nobody wrote in between.
    fn save_modified(
        &self,
        mut current: Identity,
        mut change: impl FnMut(&mut Identity) -> Result<(), Error>,
    ) -> Result<Identity, Error> {
        // Optimistic concurrency: if another writer (often the background verifier recording a
        // check) got in between, apply the change again to the fresh record, as a database
        // retries a serialisation failure; only a writer that keeps losing sees the conflict.
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let mut next = current.clone();
            change(&mut next)?;
            if next == current {
                return Ok(next);
            }
            match self.store.update_identity(&next) {
                Ok(version) => {
                    next.version = version;
                    return Ok(next);
                }
                Err(StoreError::Conflict) if attempt < ATTEMPTS => {
                    current = self
                        .load(&current.account, &current.name)?
                        .ok_or_else(|| not_found(&current.name))?;
                }
                Err(e) => return Err(store_err(e, &next.name)),
            }
        }
        Err(store_err(StoreError::Conflict, &current.name))
    }

    /// Computes the DKIM set-up that `setup` asks for, given the one in place (if any).
    fn configure_dkim(&self, setup: &DkimSetup, previous: Option<&Dkim>) -> Result<Dkim, Error> {
        let now = self.clock.now();
        // Signing stays as the customer left it; a new DKIM set-up starts enabled, as in SES.
        let signing_enabled = previous.is_none_or(|p| p.signing_enabled);
        match (setup, previous) {
            // Easy DKIM already in place: only a key-length change means anything.
            (
                DkimSetup::Easy { length },
                Some(
                    prev @ Dkim {
                        origin: DkimOrigin::Easy { tokens, lengths },
                        ..
                    },
                ),
            ) => {
                let Some(requested) = *length else {
                    return Ok(prev.clone());
                };
                dkim::check_key_length_change(*lengths, requested, now)?;
                // The new length reaches signing through the staged rotation: a key of that
                // length is published under a free token and signs once it is seen in DNS, so
                // no signature is ever made with a key receivers cannot find yet.
                let mut next = prev.clone();
                next.origin = DkimOrigin::Easy {
                    tokens: tokens.clone(),
                    lengths: dkim::record_key_length_change(*lengths, requested, now),
                };
                self.stage(&mut next, requested, now)?;
                Ok(next)
            }
            (DkimSetup::Easy { length }, _) => {
                let length = length.unwrap_or(DEFAULT_KEY_LENGTH);
                let tokens = (0..3)
                    .map(|_| self.vault.new_token())
                    .collect::<Result<Vec<_>, _>>()?;
                let keys = self.generate_keys(tokens.iter().map(Selector::from_token), length)?;
                Ok(Dkim {
                    signing_enabled,
                    status: DkimStatus::Pending,
                    origin: DkimOrigin::Easy {
                        tokens,
                        lengths: KeyLengthHistory {
                            next_length: length,
                            changed_at: None,
                            downgraded_at: None,
                        },
                    },
                    keys: keys
                        .into_iter()
                        .map(|(selector, k)| to_key(selector, k, now))
                        .collect(),
                    active: 0,
                    staged: None,
                })
            }
            (
                DkimSetup::External {
                    selector,
                    private_key,
                },
                _,
            ) => {
                let key = self.vault.import(private_key)?;
                Ok(Dkim {
                    signing_enabled,
                    status: DkimStatus::Pending,
                    origin: DkimOrigin::External {
                        selector: selector.clone(),
                    },
                    keys: vec![to_key(selector.clone(), key, now)],
                    active: 0,
                    staged: None,
                })
            }
        }
    }

    /// Publishes a new key of `length` under a free token of an Easy DKIM set-up and marks it
    /// staged. A token is free when its key is not signing, not staged, and either never signed
    /// or retired longer ago than the retention (mail signed with it may still be in transit).
    fn stage(&self, dkim: &mut Dkim, length: KeyLength, now: Timestamp) -> Result<usize, Error> {
        let DkimOrigin::Easy { tokens, .. } = &dkim.origin else {
            return Err(Error::bad_request(
                "SigningAttributesOrigin",
                "only Easy DKIM keys are rotated by Sesame; replace a BYODKIM key with PutEmailIdentityDkimSigningAttributes",
            ));
        };
        let retention = self.config.rotation.retention_ms;
        if let Some(s) = dkim.staged {
            // A second change while one is staged replaces the staged key (it never signed).
            let (_, key) = self
                .generate_keys(std::iter::once(Selector::from_token(&tokens[s])), length)?
                .remove(0);
            dkim.keys[s] = to_key(Selector::from_token(&tokens[s]), key, now);
            return Ok(s);
        }
        let free = (0..dkim.keys.len()).find(|&i| {
            i != dkim.active
                && dkim.keys[i]
                    .retired_at
                    .is_none_or(|r| now.0 >= r.0 + retention)
        });
        let Some(slot) = free else {
            let until = dkim
                .keys
                .iter()
                .filter_map(|k| k.retired_at)
                .min()
                .map(|r| r.0 + retention)
                .unwrap_or(now.0);
            return Err(Error::bad_request(
                "SigningAttributes",
                format!(
                    "every DKIM token is signing or keeps a retired key for mail in transit; try again after {} (Unix ms)",
                    until
                ),
            ));
        };
        let (_, key) = self
            .generate_keys(std::iter::once(Selector::from_token(&tokens[slot])), length)?
            .remove(0);
        dkim.keys[slot] = to_key(Selector::from_token(&tokens[slot]), key, now);
        dkim.staged = Some(slot);
        Ok(slot)
    }

    /// When the staged key may start signing: after the activation delay (DNS caches) and a
    /// successful DNS check made after it was published.
    fn activation_due(&self, dkim: &Dkim, v: &Verification, now: Timestamp) -> Option<usize> {
        let s = dkim.staged?;
        let created = dkim.keys[s].created_at;
        let delay_over = now.0 >= created.0 + self.config.rotation.activation_delay_ms;
        let seen = v.last_success.is_some_and(|t| t >= created);
        (delay_over && seen && dkim.status == DkimStatus::Success).then_some(s)
    }

    /// Applies due rotation steps after a verification: activates a staged key, or stages a new
    /// one when `--rotate-every` says the signing key is old. Returns whether anything changed.
    fn rotation_step(
        &self,
        dkim: &mut Dkim,
        v: &mut Verification,
        now: Timestamp,
    ) -> Result<bool, Error> {
        if !matches!(dkim.origin, DkimOrigin::Easy { .. }) {
            return Ok(false);
        }
        if let Some(s) = self.activation_due(dkim, v, now) {
            let old = dkim.active;
            dkim.keys[old].retired_at = Some(now);
            dkim.active = s;
            dkim.staged = None;
            return Ok(true);
        }
        if let Some(s) = dkim.staged {
            // Check again as soon as the staged key may activate, not only tomorrow.
            let at =
                Timestamp(dkim.keys[s].created_at.0 + self.config.rotation.activation_delay_ms);
            v.next_check_at = Some(v.next_check_at.map_or(at, |n| n.min(at)).max(now));
            return Ok(false);
        }
        let due = self.config.rotation.rotate_every_ms.is_some_and(|every| {
            dkim.signing_key()
                .is_some_and(|k| now.0 >= k.created_at.0 + every)
        });
        if due && dkim.status == DkimStatus::Success {
            let DkimOrigin::Easy { lengths, .. } = &dkim.origin else {
                return Ok(false);
            };
            let length = lengths.next_length;
            if self.stage(dkim, length, now).is_ok() {
                let s = dkim.staged.unwrap_or(dkim.active);
                v.next_check_at = Some(Timestamp(
                    dkim.keys[s].created_at.0 + self.config.rotation.activation_delay_ms,
                ));
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `sesame rotate`: stages a new Easy DKIM key now; it signs once seen in DNS.
    pub fn rotate(&self, account: &AccountId, name: &IdentityName) -> Result<Dkim, Error> {
        let current = self.load(account, name)?.ok_or_else(|| not_found(name))?;
        let now = self.clock.now();
        let saved = self.save_modified(current, |id| {
            let dkim = id.dkim.as_mut().ok_or_else(|| {
                Error::bad_request("EmailIdentity", "only domain identities have DKIM keys")
            })?;
            if dkim.staged.is_some() {
                return Err(Error::bad_request(
                    "EmailIdentity",
                    "a rotation is already in progress",
                ));
            }
            let DkimOrigin::Easy { lengths, .. } = &dkim.origin else {
                return Err(Error::bad_request(
                    "EmailIdentity",
                    "only Easy DKIM keys are rotated by Sesame",
                ));
            };
            let length = lengths.next_length;
            self.stage(dkim, length, now)?;
            // Check now: the check reschedules itself for when the staged key may activate
            // (under the verifying node's policy, which a CLI process does not know).
            id.verification.next_check_at = Some(now);
            Ok(())
        })?;
        saved
            .dkim
            .ok_or_else(|| Error::Internal("domain identity without DKIM".into()))
    }

    /// Generates one key per selector through `KeyVault::generate_many` (parallel threads, or
    /// keys the vault made in advance).
    fn generate_keys(
        &self,
        selectors: impl Iterator<Item = Selector>,
        length: KeyLength,
    ) -> Result<Vec<(Selector, NewKey)>, Error> {
        let selectors: Vec<Selector> = selectors.collect();
        let keys = self.vault.generate_many(length, selectors.len())?;
        if keys.len() != selectors.len() {
            return Err(Error::Internal(format!(
                "the key vault made {} keys, not {}",
                keys.len(),
                selectors.len()
            )));
        }
        Ok(selectors.into_iter().zip(keys).collect())
    }
}

fn to_key(selector: Selector, k: NewKey, now: crate::model::Timestamp) -> DkimKey {
    DkimKey {
        selector,
        bits: k.bits,
        public_der: k.public_der,
        sealed_private: k.sealed_private,
        created_at: now,
        retired_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::{Observation, RecordCheck};
    use crate::model::{IdentityFilter, IdentitySummary};
    use crate::testing::{FakeVault, ManualClock, MemStore};

    fn svc() -> (Service, Arc<ManualClock>, AccountId) {
        let clock = Arc::new(ManualClock::new(crate::model::Timestamp(1_700_000_000_000)));
        let s = Service::new(
            Arc::new(MemStore::default()),
            Arc::new(FakeVault::default()),
            clock.clone(),
            ServiceConfig {
                max_identities: 3,
                dkim_zone: "dkim.sesame.test".into(),
                verify: VerifyPolicy::default(),
                rotation: RotationPolicy::default(),
            },
        );
        (s, clock, AccountId::parse("123456789012").unwrap())
    }

    fn create(
        s: &Service,
        a: &AccountId,
        name: &str,
        dkim: Option<DkimSetup>,
    ) -> Result<Identity, Error> {
        s.create_identity(
            a,
            CreateIdentity {
                name: IdentityName::parse(name).unwrap(),
                tags: vec![],
                dkim,
                configuration_set: None,
            },
        )
    }

    fn length(s: &Service, a: &AccountId, l: KeyLength) -> Result<Dkim, Error> {
        let n = IdentityName::parse("example.com").unwrap();
        s.put_dkim_signing_attributes(a, &n, DkimSetup::Easy { length: Some(l) })
    }

    #[test]
    fn key_length_change_follows_the_daily_rule_with_an_injected_clock() {
        let (s, clock, a) = svc();
        let created = create(&s, &a, "example.com", None).unwrap();
        let dkim = created.dkim.unwrap();
        let DkimOrigin::Easy { tokens, .. } = &dkim.origin else {
            panic!()
        };
        assert_eq!(dkim.current_length(), Some(KeyLength::Rsa2048));

        assert!(matches!(
            length(&s, &a, KeyLength::Rsa2048),
            Err(Error::BadRequest { .. })
        ));
        clock.advance_hours(1);
        let down = length(&s, &a, KeyLength::Rsa1024).unwrap();
        // The new length arrives through a staged key: the signing key is unchanged until the
        // new one has been seen in DNS, so CurrentSigningKeyLength stays truthful.
        assert_eq!(down.current_length(), Some(KeyLength::Rsa2048));
        let staged = down.staged.expect("a key of the new length is staged");
        assert_eq!(down.keys[staged].bits, 1024);
        assert_ne!(staged, down.active);
        let DkimOrigin::Easy { tokens: same, .. } = &down.origin else {
            panic!()
        };
        assert_eq!(same, tokens, "tokens survive a key-length change");
        assert_eq!(
            down.keys[down.active], dkim.keys[dkim.active],
            "the signing key stays"
        );
        assert!(down.last_key_generation() > dkim.last_key_generation());

        clock.advance_hours(23);
        let before = s
            .get_identity(&a, &IdentityName::parse("example.com").unwrap())
            .unwrap();
        assert!(matches!(
            length(&s, &a, KeyLength::Rsa2048),
            Err(Error::BadRequest { .. })
        ));
        let after = s
            .get_identity(&a, &IdentityName::parse("example.com").unwrap())
            .unwrap();
        assert_eq!(
            before.identity, after.identity,
            "a refused change changes nothing"
        );
        clock.advance_hours(1);
        assert!(
            length(&s, &a, KeyLength::Rsa2048).is_ok(),
            "24 hours later it is allowed"
        );
    }

    #[test]
    fn limits_duplicates_and_addresses() {
        let (s, _, a) = svc();
        create(&s, &a, "a@example.com", None).unwrap();
        assert!(matches!(
            create(&s, &a, "a@example.com", None),
            Err(Error::AlreadyExists(_))
        ));
        assert!(
            create(&s, &a, "A@example.com", None).is_ok(),
            "addresses are case-sensitive"
        );
        assert!(create(&s, &a, "EXAMPLE.org", None).is_ok());
        assert!(
            matches!(
                create(&s, &a, "example.ORG", None),
                Err(Error::AlreadyExists(_))
            ),
            "domains are not"
        );
        assert!(matches!(
            create(&s, &a, "new.example.net", None),
            Err(Error::LimitExceeded(_))
        ));
        let (s, _, a) = svc();
        assert!(matches!(
            create(
                &s,
                &a,
                "b@example.com",
                Some(DkimSetup::Easy { length: None })
            ),
            Err(Error::BadRequest { .. })
        ));
    }

    #[test]
    fn switching_origin_replaces_keys_and_tokens() {
        let (s, _, a) = svc();
        let n = IdentityName::parse("example.com").unwrap();
        let easy = create(&s, &a, "example.com", None).unwrap().dkim.unwrap();
        let ext = s
            .put_dkim_signing_attributes(
                &a,
                &n,
                DkimSetup::External {
                    selector: Selector::parse("sel").unwrap(),
                    private_key: PrivateKeyInput(vec![1, 2, 3]),
                },
            )
            .unwrap();
        assert!(matches!(ext.origin, DkimOrigin::External { .. }));
        assert_eq!(ext.keys.len(), 1);
        assert_eq!(ext.status, DkimStatus::Pending);
        let back = s
            .put_dkim_signing_attributes(&a, &n, DkimSetup::Easy { length: None })
            .unwrap();
        let (DkimOrigin::Easy { tokens: t1, .. }, DkimOrigin::Easy { tokens: t2, .. }) =
            (&easy.origin, &back.origin)
        else {
            panic!()
        };
        assert_ne!(t1, t2, "a switch back to Easy DKIM makes new tokens");
    }

    #[test]
    fn verification_claims_checks_and_records_results_with_an_injected_clock() {
        let (s, clock, a) = svc();
        create(&s, &a, "example.com", None).unwrap();
        create(&s, &a, "me@example.com", None).unwrap();
        // Due right after configuration; addresses are never due.
        let due = s.claim_due_checks(10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].records.len(), 3);
        assert!(due[0].records[0].name.ends_with("._domainkey.example.com"));
        assert!(s.claim_due_checks(10).unwrap().is_empty(), "leased");
        let missing = Observation {
            records: vec![RecordCheck::HostNotFound; 3],
            soa: None,
        };
        let change = s.record_check(due[0].identity.clone(), &missing).unwrap();
        assert_eq!(change, Some((DkimStatus::Pending, DkimStatus::Pending)));
        assert!(
            s.claim_due_checks(10).unwrap().is_empty(),
            "backoff: not due yet"
        );
        clock.advance_hours(1);
        let due = s.claim_due_checks(10).unwrap();
        let found = Observation {
            records: vec![RecordCheck::Valid; 3],
            soa: None,
        };
        let change = s.record_check(due[0].identity.clone(), &found).unwrap();
        assert_eq!(change, Some((DkimStatus::Pending, DkimStatus::Success)));
        let n = IdentityName::parse("example.com").unwrap();
        let view = s.get_identity(&a, &n).unwrap();
        assert_eq!(view.identity.verification_status, DkimStatus::Success);
        assert!(view.identity.verified_for_sending());
        // A result computed before a configuration change is stale and dropped.
        clock.advance_hours(25);
        let due = s.claim_due_checks(10).unwrap();
        assert_eq!(due.len(), 1, "daily re-check");
        s.put_dkim_signing_attributes(
            &a,
            &n,
            DkimSetup::External {
                selector: Selector::parse("mine").unwrap(),
                private_key: PrivateKeyInput(vec![1]),
            },
        )
        .unwrap();
        assert_eq!(
            s.record_check(due[0].identity.clone(), &found).unwrap(),
            None
        );
        let view = s.get_identity(&a, &n).unwrap();
        assert_eq!(
            view.identity.dkim.unwrap().status,
            DkimStatus::Pending,
            "a new method: verify again"
        );
    }

    /// Signatures made before, during and after a rotation and a key-length change all verify
    /// against what the key zone serves then and for the whole retention: the key that signed
    /// is the one published under its selector at signing time and stays so.
    #[test]
    fn rotation_never_breaks_a_signature() {
        let (s, clock, a) = svc();
        let n = IdentityName::parse("example.com").unwrap();
        create(&s, &a, "example.com", None).unwrap();
        let all_valid = Observation {
            records: vec![RecordCheck::Valid; 3],
            soa: None,
        };
        let check = |s: &Service| {
            for due in s.claim_due_checks(10).unwrap() {
                s.record_check(due.identity, &all_valid).unwrap();
            }
        };
        check(&s);
        // (selector, public key) that signed, and when.
        let mut signatures: Vec<(String, Vec<u8>, i64)> = Vec::new();
        let sign = |s: &Service, sigs: &mut Vec<(String, Vec<u8>, i64)>| {
            let k = crate::sending::signing_key(s.store.as_ref(), &a, &n).unwrap();
            let view = s.get_identity(&a, &n).unwrap();
            let dkim = view.identity.dkim.unwrap();
            let key = dkim
                .keys
                .iter()
                .find(|x| x.selector.as_str() == k.selector)
                .unwrap();
            sigs.push((k.selector, key.public_der.clone(), s.now().0));
        };
        // What receivers can verify now: every published key by selector.
        let zone = |s: &Service| -> Vec<(String, Vec<u8>)> { s.store.published_keys().unwrap() };
        let verifiable = |s: &Service, sigs: &[(String, Vec<u8>, i64)]| {
            let z = zone(s);
            sigs.iter()
                .all(|(sel, der, _)| z.contains(&(sel.clone(), der.clone())))
        };

        sign(&s, &mut signatures); // before
        let first = signatures[0].clone();
        let staged = s.rotate(&a, &n).unwrap();
        assert!(staged.staged.is_some());
        assert!(
            matches!(s.rotate(&a, &n), Err(Error::BadRequest { .. })),
            "one at a time"
        );
        sign(&s, &mut signatures); // during: still the old key
        assert_eq!(signatures[1].0, first.0, "the staged key does not sign yet");
        assert!(verifiable(&s, &signatures));
        clock.advance_hours(1); // past the activation delay
        check(&s);
        sign(&s, &mut signatures); // after
        assert_ne!(
            signatures[2].0, first.0,
            "the new key signs once seen and delayed"
        );
        assert!(verifiable(&s, &signatures));
        // A key-length change goes through the same staging.
        clock.advance_hours(1);
        let changed = length(&s, &a, KeyLength::Rsa1024).unwrap();
        assert_eq!(changed.current_length(), Some(KeyLength::Rsa2048));
        sign(&s, &mut signatures);
        clock.advance_hours(1);
        check(&s);
        sign(&s, &mut signatures);
        let view = s.get_identity(&a, &n).unwrap();
        assert_eq!(
            view.identity.dkim.as_ref().unwrap().current_length(),
            Some(KeyLength::Rsa1024)
        );
        assert!(verifiable(&s, &signatures));
        // Every token has now signed or is retained: a third rotation must wait for the
        // retention of the first key to end, and all signatures stay verifiable meanwhile.
        clock.advance_hours(1);
        check(&s);
        assert!(
            matches!(s.rotate(&a, &n), Err(Error::BadRequest { .. })),
            "no free token"
        );
        for _ in 0..7 {
            clock.advance_hours(24);
            check(&s);
            let within: Vec<_> = signatures
                .iter()
                .filter(|(_, _, at)| s.now().0 < at + RotationPolicy::default().retention_ms)
                .cloned()
                .collect();
            assert!(
                verifiable(&s, &within),
                "within the retention every signature verifies"
            );
        }
        clock.advance_hours(1);
        assert!(
            s.rotate(&a, &n).is_ok(),
            "after the retention the first token is free again"
        );
    }

    #[test]
    fn rotate_every_stages_and_activates_on_the_daily_checks() {
        let clock = Arc::new(ManualClock::new(crate::model::Timestamp(1_700_000_000_000)));
        let s = Service::new(
            Arc::new(MemStore::default()),
            Arc::new(FakeVault::default()),
            clock.clone(),
            ServiceConfig {
                max_identities: 10,
                dkim_zone: "dkim.sesame.test".into(),
                verify: VerifyPolicy::default(),
                rotation: RotationPolicy {
                    rotate_every_ms: Some(90 * 24 * Timestamp::HOUR),
                    ..RotationPolicy::default()
                },
            },
        );
        let a = AccountId::parse("123456789012").unwrap();
        let n = IdentityName::parse("example.com").unwrap();
        create(&s, &a, "example.com", None).unwrap();
        let valid = Observation {
            records: vec![RecordCheck::Valid; 3],
            soa: None,
        };
        let check = || {
            for due in s.claim_due_checks(10).unwrap() {
                s.record_check(due.identity, &valid).unwrap();
            }
        };
        check();
        let first = crate::sending::signing_key(s.store.as_ref(), &a, &n)
            .unwrap()
            .selector;
        let mut days = 0;
        loop {
            clock.advance_hours(24);
            days += 1;
            check();
            let view = s.get_identity(&a, &n).unwrap();
            if view.identity.dkim.unwrap().staged.is_some() {
                break;
            }
            assert_eq!(
                crate::sending::signing_key(s.store.as_ref(), &a, &n)
                    .unwrap()
                    .selector,
                first
            );
            assert!(days < 92, "never staged");
        }
        assert_eq!(days, 90, "staged on the first daily check at 90 days");
        assert_eq!(
            crate::sending::signing_key(s.store.as_ref(), &a, &n)
                .unwrap()
                .selector,
            first,
            "staged, not yet signing"
        );
        clock.advance_hours(1);
        check();
        assert_ne!(
            crate::sending::signing_key(s.store.as_ref(), &a, &n)
                .unwrap()
                .selector,
            first,
            "and signs after the delay"
        );
    }

    /// A store whose first update loses a race: another writer commits just before it.
    struct RacingStore {
        inner: MemStore,
        raced: std::sync::atomic::AtomicBool,
    }

    impl Store for RacingStore {
        fn insert_identity(&self, i: &Identity, m: u64) -> Result<(), StoreError> {
            self.inner.insert_identity(i, m)
        }
        fn get_identity(
            &self,
            a: &AccountId,
            n: &IdentityName,
        ) -> Result<Option<Identity>, StoreError> {
            self.inner.get_identity(a, n)
        }
        fn update_identity(&self, i: &Identity) -> Result<u64, StoreError> {
            if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // The verifier, say, records a check first.
                let mut other = self.inner.get_identity(&i.account, &i.name)?.unwrap();
                other.verification.attempts += 1;
                self.inner.update_identity(&other)?;
            }
            self.inner.update_identity(i)
        }
        fn delete_identity(&self, a: &AccountId, n: &IdentityName) -> Result<(), StoreError> {
            self.inner.delete_identity(a, n)
        }
        fn list_identities(
            &self,
            a: &AccountId,
            f: &IdentityFilter,
            after: Option<&str>,
            l: usize,
        ) -> Result<Vec<IdentitySummary>, StoreError> {
            self.inner.list_identities(a, f, after, l)
        }
        fn claim_due(
            &self,
            n: Timestamp,
            l: Timestamp,
            c: usize,
        ) -> Result<Vec<Identity>, StoreError> {
            self.inner.claim_due(n, l, c)
        }
        fn published_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
            self.inner.published_keys()
        }
        fn key_generation(&self) -> Result<u64, StoreError> {
            self.inner.key_generation()
        }
        fn insert_account(&self, a: &crate::ports::Account) -> Result<(), StoreError> {
            self.inner.insert_account(a)
        }
        fn account_by_name(&self, n: &str) -> Result<Option<crate::ports::Account>, StoreError> {
            self.inner.account_by_name(n)
        }
        fn list_accounts(&self) -> Result<Vec<crate::ports::Account>, StoreError> {
            self.inner.list_accounts()
        }
        fn put_access_key(&self, k: &crate::ports::AccessKey) -> Result<(), StoreError> {
            self.inner.put_access_key(k)
        }
        fn access_key(&self, id: &str) -> Result<Option<crate::ports::AccessKey>, StoreError> {
            self.inner.access_key(id)
        }
        fn access_keys_of(
            &self,
            a: &AccountId,
        ) -> Result<Vec<crate::ports::AccessKey>, StoreError> {
            self.inner.access_keys_of(a)
        }
    }

    #[test]
    fn a_write_that_loses_a_race_is_applied_again_to_the_fresh_record() {
        let store = Arc::new(RacingStore {
            inner: MemStore::default(),
            raced: std::sync::atomic::AtomicBool::new(true),
        });
        let s = Service::new(
            store.clone(),
            Arc::new(FakeVault::default()),
            Arc::new(ManualClock::new(Timestamp(1_700_000_000_000))),
            ServiceConfig {
                max_identities: 10,
                dkim_zone: "dkim.sesame.test".into(),
                verify: VerifyPolicy::default(),
                rotation: RotationPolicy::default(),
            },
        );
        let a = AccountId::parse("123456789012").unwrap();
        let n = IdentityName::parse("example.com").unwrap();
        create(&s, &a, "example.com", None).unwrap();
        store
            .raced
            .store(false, std::sync::atomic::Ordering::SeqCst);
        s.put_feedback_attributes(&a, &n, false).unwrap();
        let got = s.get_identity(&a, &n).unwrap().identity;
        assert!(!got.feedback_forwarding, "the change landed");
        assert_eq!(
            got.verification.attempts, 1,
            "and so did the other writer's"
        );
        assert_eq!(got.version, 3);
    }
}
