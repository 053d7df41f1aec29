//! The DKIM use cases: signing on or off, the signing attributes (Easy DKIM and its key
//! length, or BYODKIM), and rotation on request. What to rotate is decided by `keys::plan`;
//! this module loads, carries the plan out and stores once.

use crate::error::{Error, Invalid};
use crate::keys::{self, RotationPolicy, Trigger};
use crate::model::{
    AccountId, Dkim, DkimOrigin, DkimStatus, Identity, IdentityName, KeyLength, Revocation,
    Selector, SlotState, Timestamp, Verification,
};
use crate::ports::{Clock, IdentityStore, KeyVault, PrivateKeyInput};
use crate::shared::{DEFAULT_KEY_LENGTH, KeyMaker, Records};
use crate::verification::restart;
use std::sync::Arc;

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

/// The DKIM use cases.
pub struct DkimControl {
    records: Records,
    keys: KeyMaker,
    clock: Arc<dyn Clock>,
    rotation: RotationPolicy,
}

impl DkimControl {
    /// Wires the use cases to their ports, rotating under `rotation`.
    pub fn new(
        store: Arc<dyn IdentityStore>,
        vault: Arc<dyn KeyVault>,
        clock: Arc<dyn Clock>,
        rotation: RotationPolicy,
    ) -> DkimControl {
        DkimControl {
            records: Records::new(store),
            keys: KeyMaker::new(vault),
            clock,
            rotation,
        }
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
        let unknown = || Error::Invalid(Invalid::NotVerifiedForDkim(name.as_str().to_owned()));
        let Some(current) = self.records.load(account, name)? else {
            return Err(unknown());
        };
        self.records
            .save_modified(current, |id| {
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
    /// the Easy DKIM key length. Returns the identity as stored.
    pub fn put_dkim_signing_attributes(
        &self,
        account: &AccountId,
        name: &IdentityName,
        setup: DkimSetup,
    ) -> Result<Identity, Error> {
        if matches!(name, IdentityName::Email(_)) {
            return Err(Invalid::DkimOnAddress.into());
        }
        let current = self.records.require(account, name)?;
        let now = self.clock.now();
        self.records.save_modified(current, |id| {
            let previous = id.dkim.take();
            let (next, fresh) =
                self.configure(&setup, previous.as_ref(), &mut id.verification, now)?;
            if fresh && previous.as_ref() != Some(&next) {
                // New tokens or a new method: verification starts over (SES developer guide),
                // and a domain is verified exactly when its DKIM is.
                id.verification_status = DkimStatus::Pending;
                id.verification = restart(&id.verification, now);
            }
            id.dkim = Some(next);
            Ok(())
        })
    }

    /// The set-up `setup` asks for, given the one in place, and whether it is a new one (new
    /// tokens or method) rather than a change under the same tokens.
    fn configure(
        &self,
        setup: &DkimSetup,
        previous: Option<&Dkim>,
        v: &mut Verification,
        now: Timestamp,
    ) -> Result<(Dkim, bool), Error> {
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
                let mut next = prev.clone();
                let Some(requested) = *length else {
                    if next.keys.staged().is_some() {
                        v.next_check_at = Some(now);
                    }
                    return Ok((next, false));
                };
                keys::check_key_length_change(*lengths, requested, now)?;
                next.origin = DkimOrigin::Easy {
                    tokens: tokens.clone(),
                    lengths: keys::record_key_length_change(*lengths, requested, now),
                };
                // The new length reaches signing through the staged rotation: a key of that
                // length is published under a free token and signs once it is seen in DNS, so
                // no signature is ever made with a key receivers cannot find yet.
                let plan = keys::plan(
                    &next.keys,
                    requested,
                    Trigger::LengthChange(requested),
                    &self.rotation,
                    now,
                )?;
                self.keys.carry_out(plan, &mut next, v, now)?;
                Ok((next, false))
            }
            (DkimSetup::Easy { length }, _) => Ok((
                self.keys
                    .easy(length.unwrap_or(DEFAULT_KEY_LENGTH), signing_enabled, now)?,
                true,
            )),
            (
                DkimSetup::External {
                    selector,
                    private_key,
                },
                _,
            ) => Ok((
                self.keys
                    .external(selector, private_key, signing_enabled, now)?,
                true,
            )),
        }
    }

    /// `sesame rotate`: stages a new Easy DKIM key now; it signs once seen in DNS.
    pub fn rotate(&self, account: &AccountId, name: &IdentityName) -> Result<Identity, Error> {
        let current = self.records.require(account, name)?;
        let now = self.clock.now();
        self.records.save_modified(current, |id| {
            let dkim = id.dkim.as_mut().ok_or(Invalid::NoDkimKeys)?;
            let DkimOrigin::Easy { lengths, .. } = &dkim.origin else {
                return Err(Invalid::NotEasyDkim.into());
            };
            let plan = keys::plan(
                &dkim.keys,
                lengths.next_length,
                Trigger::Rotate,
                &self.rotation,
                now,
            )?;
            // The plan checks DNS now; that check reschedules itself for the activation.
            self.keys.carry_out(plan, dkim, &mut id.verification, now)
        })
    }

    /// `sesame revoke`: a leaked key stops signing now. The key of `token` (default: the
    /// signing one) is erased, so nothing signs with it again and the key zone answers its
    /// token with an empty `p=` (RFC 6376 3.6.1), which receivers read as revoked, without
    /// waiting for caches of a removed record. For Easy DKIM a replacement follows the
    /// normal staging (it signs once seen in DNS); until then the domain's mail is refused or
    /// sent unsigned (`RevokedKeyMail`). A BYODKIM identity stops signing until the customer
    /// uploads a new key. The revocation is kept with who asked and when.
    pub fn revoke(
        &self,
        account: &AccountId,
        name: &IdentityName,
        token: Option<&str>,
        by: &str,
    ) -> Result<(Identity, Revocation), Error> {
        let current = self.records.require(account, name)?;
        let now = self.clock.now();
        let mut done = None;
        let stored = self.records.save_modified(current, |id| {
            let dkim = id.dkim.as_mut().ok_or(Invalid::NoDkimKeys)?;
            let slot = match token {
                Some(t) => dkim
                    .keys
                    .slot_of(t)
                    .ok_or_else(|| Invalid::NoSuchToken(t.to_owned()))?,
                None => dkim.keys.signing_slot(),
            };
            let selector = dkim
                .keys
                .key(slot)
                .map(|k| k.selector.clone())
                .ok_or_else(|| Error::Internal(format!("no key slot {slot}")))?;
            let state = dkim
                .keys
                .revoke(slot)
                .ok_or_else(|| Invalid::AlreadyRevoked(selector.as_str().to_owned()))?;
            if let DkimOrigin::Easy { lengths, .. } = &dkim.origin
                && matches!(state, SlotState::Signing | SlotState::Staged)
            {
                let plan = keys::plan(
                    &dkim.keys,
                    lengths.next_length,
                    Trigger::Revoked(slot),
                    &self.rotation,
                    now,
                )?;
                self.keys.carry_out(plan, dkim, &mut id.verification, now)?;
            }
            let revocation = Revocation {
                selector,
                at: now,
                by: by.to_owned(),
            };
            dkim.revocations.push(revocation.clone());
            done = Some(revocation);
            Ok(())
        })?;
        let revocation = done.ok_or_else(|| Error::Internal("nothing was revoked".into()))?;
        Ok((stored, revocation))
    }
}
