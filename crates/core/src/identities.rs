//! The identity use cases: create, read, list and delete identities, their feedback setting
//! and their tags. DKIM changes are `dkim`'s, DNS checks `verification`'s.

use crate::addresses::{Invitations, invited, room_for_one};
use crate::dkim::DkimSetup;
use crate::error::{Error, Invalid, Missing};
use crate::model::{
    AccountId, Dkim, DkimStatus, Identity, IdentityCount, IdentityFilter, IdentityName,
    IdentitySummary, MailFrom, MxFailure, Publisher, Tag, Timestamp, Verification, merge_tags,
};
use crate::ports::{Clock, IdentityStore, KeyVault, PublisherStore};
use crate::shared::{DEFAULT_KEY_LENGTH, KeyMaker, Records, bulk_err, store_err};
use crate::verification::restart;
use std::sync::Arc;

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
    pub inherited_dkim: Option<InheritedDkim>,
    /// For a domain with a DNS publisher: it, with what it published and its last error
    /// (its secret stays sealed). A failed update changes no status (the verifier decides
    /// from what the DNS answers); it says why the records may be missing.
    pub publisher: Option<Publisher>,
}

/// A domain's DKIM as an address of that domain shows it.
#[derive(Debug, Clone)]
pub struct InheritedDkim {
    /// The domain's DKIM set-up.
    pub dkim: Dkim,
    /// The domain's (DKIM) verification status.
    pub status: DkimStatus,
}

/// One page of ListEmailIdentities.
#[derive(Debug, Clone)]
pub struct Page {
    /// The identities on this page.
    pub items: Vec<IdentitySummary>,
    /// The last name on this page when more pages follow (the edge turns it into a token).
    pub continue_after: Option<String>,
}

/// The identity use cases.
pub struct Identities {
    records: Records,
    keys: KeyMaker,
    clock: Arc<dyn Clock>,
    max_identities: u64,
    invitations: Option<Arc<Invitations>>,
    publishers: Option<Arc<dyn PublisherStore>>,
}

/// A new identity of `account` as a create makes it: PENDING, feedback on, nothing checked.
pub(crate) fn new_identity(
    account: AccountId,
    name: IdentityName,
    tags: Vec<Tag>,
    dkim: Option<Dkim>,
    now: Timestamp,
) -> Identity {
    Identity {
        account,
        name,
        version: 1,
        created_at: now,
        feedback_forwarding: true,
        dkim,
        signing_override: None,
        verification_status: DkimStatus::Pending,
        tags,
        verification: Verification::default(),
        mail_from: None,
        mx_failure: Default::default(),
        recommendations: Default::default(),
        link: None,
    }
}

impl Identities {
    /// Wires the use cases to their ports; an account holds at most `max_identities`.
    pub fn new(
        store: Arc<dyn IdentityStore>,
        vault: Arc<dyn KeyVault>,
        clock: Arc<dyn Clock>,
        max_identities: u64,
    ) -> Identities {
        Identities {
            records: Records::new(store),
            keys: KeyMaker::new(vault),
            clock,
            max_identities,
            invitations: None,
            publishers: None,
        }
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
            return Err(Invalid::DkimOnAddressAtCreate.into());
        }
        if let Some(set) = req.configuration_set {
            // Configuration sets are not (yet) part of Sesame, so no name can refer to one.
            return Err(Error::NotFound(Missing::ConfigurationSet(set)));
        }
        // Fail fast before spending seconds of CPU on keys; insert re-checks atomically.
        if self.records.load(account, &name)?.is_some() {
            return Err(Error::AlreadyExists(name.as_str().to_owned()));
        }
        let now = self.clock.now();
        let (dkim, verification) = match &name {
            IdentityName::Email(_) => (None, Verification::default()),
            IdentityName::Domain(_) => {
                let dkim = match req.dkim.unwrap_or(DkimSetup::Easy { length: None }) {
                    DkimSetup::Easy { length } => {
                        self.keys
                            .easy(length.unwrap_or(DEFAULT_KEY_LENGTH), true, now)?
                    }
                    DkimSetup::External {
                        selector,
                        private_key,
                    } => self.keys.external(&selector, &private_key, true, now)?,
                };
                // Checked right after configuration, then on the backoff schedule.
                (Some(dkim), restart(&Verification::default(), now))
            }
        };
        let mut identity = new_identity(account.clone(), name, tags, dkim, now);
        identity.verification = verification;
        if let (Some(invitations), IdentityName::Email(address)) =
            (&self.invitations, identity.name.clone())
        {
            // The mail goes before the write: a failed delivery leaves no identity behind, and a
            // write that then fails (a race for the name or the quota) leaves only a link that
            // leads nowhere. So nothing is mailed when the account is already full.
            room_for_one(&self.records, account, self.max_identities)?;
            let sent = invitations.mail(account, &address, None)?;
            invited(&mut identity, sent.link);
        }
        self.records.insert(&identity, self.max_identities)?;
        Ok(identity)
    }

    /// Mails a verification link to every new address identity (without, addresses are
    /// created PENDING and nothing is sent: the CLI and the benchmarks' seeding).
    pub fn with_invitations(mut self, invitations: Arc<Invitations>) -> Identities {
        self.invitations = Some(invitations);
        self
    }

    /// Reports DNS publishers' failures with the identities they publish for.
    pub fn with_publishers(mut self, publishers: Arc<dyn PublisherStore>) -> Identities {
        self.publishers = Some(publishers);
        self
    }

    /// GetEmailIdentity.
    pub fn get_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<IdentityView, Error> {
        let identity = self.records.require(account, name)?;
        let inherited_dkim = match name {
            IdentityName::Email(addr) => self
                .records
                .load(account, &IdentityName::Domain(addr.domain()))?
                .and_then(|d| {
                    let status = d.verification_status;
                    d.dkim.map(|dkim| InheritedDkim { dkim, status })
                }),
            IdentityName::Domain(_) => None,
        };
        let publisher = match (name, &self.publishers) {
            (IdentityName::Domain(d), Some(p)) => p.publisher(account, d).map_err(bulk_err)?,
            _ => None,
        };
        Ok(IdentityView {
            identity,
            inherited_dkim,
            publisher,
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
            .records
            .store()
            .list_identities(account, filter, after, page_size + 1)
            .map_err(bulk_err)?;
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

    /// How many identities there are of each type and status, in `account` or in all.
    pub fn count_identities(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<IdentityCount>, Error> {
        self.records
            .store()
            .count_identities(account)
            .map_err(bulk_err)
    }

    /// DeleteEmailIdentity: the identity goes with its keys and tags.
    pub fn delete_identity(&self, account: &AccountId, name: &IdentityName) -> Result<(), Error> {
        self.records
            .store()
            .delete_identity(account, name)
            .map_err(|e| store_err(e, name))
    }

    /// PutEmailIdentityFeedbackAttributes.
    pub fn put_feedback_attributes(
        &self,
        account: &AccountId,
        name: &IdentityName,
        enabled: bool,
    ) -> Result<(), Error> {
        let current = self.records.require(account, name)?;
        self.records
            .save_modified(current, |id| {
                id.feedback_forwarding = enabled;
                Ok(())
            })
            .map(|_| ())
    }

    /// PutEmailIdentityMailFromAttributes: sets (`Some`) or removes (`None`) the custom MAIL
    /// FROM domain, checked against the identity's domain, and the behaviour on an MX failure.
    /// A new domain starts PENDING with its check due now; the same domain again keeps its
    /// status and record.
    pub fn put_mail_from_attributes(
        &self,
        account: &AccountId,
        name: &IdentityName,
        mail_from_domain: &str,
        mx_failure: MxFailure,
    ) -> Result<Identity, Error> {
        let domain = crate::mail_from::mail_from_domain(name, mail_from_domain)?;
        let now = self.clock.now();
        let current = self.records.require(account, name)?;
        self.records.save_modified(current, |id| {
            id.mx_failure = mx_failure;
            id.mail_from = match (&domain, id.mail_from.take()) {
                (None, _) => None,
                (Some(d), Some(kept)) if kept.domain == *d => Some(kept),
                (Some(d), _) => Some(MailFrom {
                    domain: d.clone(),
                    status: DkimStatus::Pending,
                    verification: Verification {
                        pending_since: Some(now),
                        next_check_at: Some(now),
                        ..Verification::default()
                    },
                }),
            };
            Ok(())
        })
    }

    /// TagResource on an identity: adds tags, replacing values of existing keys.
    pub fn tag_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
        tags: &[Tag],
    ) -> Result<(), Error> {
        let current = self.records.require(account, name)?;
        self.records
            .save_modified(current, |id| {
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
        let current = self.records.require(account, name)?;
        self.records
            .save_modified(current, |id| {
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
        Ok(self.records.require(account, name)?.tags)
    }
}
