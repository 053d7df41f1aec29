//! The verification use case: claim the identities whose DNS check is due (leased, so nodes
//! never check the same one at once), then record what the resolver saw in one versioned
//! write, together with the rotation step the result makes due.

use super::rules::{
    Expect, ExpectedRecord, MailFromHosts, Observation, Purpose, VerifyPolicy, dmarc_record,
    expected_records, mail_from_records, step,
};
use crate::error::{Error, StoreError};
use crate::keys::{self, Plan, RotationPolicy, Trigger};
use crate::model::{
    AccountId, Advice, AdviceArea, AdviceImpact, AdviceKind, AdviceStatus, DkimOrigin, DkimStatus,
    Identity, IdentityFilter, IdentityName, IdentityType, Timestamp, Verification,
};
use crate::ports::{CheckQueue, Clock, IdentityStore, KeyVault};
use crate::shared::{KeyMaker, Records, bulk_err, store_err};
use std::sync::Arc;

/// An identity whose DNS records are due for a check, with the records to look for.
#[derive(Debug, Clone)]
pub struct DueCheck {
    /// The identity as claimed (its version guards the result's write).
    pub identity: Identity,
    /// The records to look up.
    pub records: Vec<ExpectedRecord>,
}

/// The DNS records identities need, as `sesame dns-records` prints them.
pub struct DnsRecords {
    records: Records,
    dkim_zone: String,
    hosts: MailFromHosts,
}

impl DnsRecords {
    /// Reads identities from `store`; Easy DKIM keys are published under `dkim_zone`, and
    /// MAIL FROM domains point at `hosts`.
    pub fn new(
        store: Arc<dyn IdentityStore>,
        dkim_zone: String,
        hosts: MailFromHosts,
    ) -> DnsRecords {
        DnsRecords {
            records: Records::new(store),
            dkim_zone,
            hosts,
        }
    }

    /// The DNS records an identity needs or is recommended: its DKIM records, its MAIL FROM
    /// domain's MX and SPF records, and (a domain) its DMARC record.
    pub fn expected_records(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Vec<ExpectedRecord>, Error> {
        Ok(self.of(&self.records.require(account, name)?))
    }

    fn of(&self, identity: &Identity) -> Vec<ExpectedRecord> {
        let mut out = match (&identity.name, &identity.dkim) {
            (IdentityName::Domain(d), Some(dkim)) => expected_records(d, dkim, &self.dkim_zone),
            _ => vec![],
        };
        if let Some(mf) = &identity.mail_from {
            out.extend(mail_from_records(&mf.domain, &self.hosts));
        }
        if let IdentityName::Domain(d) = &identity.name {
            out.push(dmarc_record(d));
        }
        out
    }
}

/// What one check did: the DKIM status change, and MAIL FROM's if it was due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOutcome {
    /// DKIM status before and after (equal when the DKIM check was not due).
    pub dkim: (DkimStatus, DkimStatus),
    /// `MailFromDomainStatus` before and after, when the MAIL FROM check was due.
    pub mail_from: Option<(DkimStatus, DkimStatus)>,
}

/// The part of an observation that counts towards `purpose`.
fn part(records: &[ExpectedRecord], observation: &Observation, purpose: Purpose) -> Observation {
    Observation {
        records: records
            .iter()
            .zip(&observation.records)
            .filter(|(r, _)| r.purpose() == purpose)
            .map(|(_, c)| c.clone())
            .collect(),
        soa: observation.soa.clone(),
    }
}

fn due(v: &Verification, now: Timestamp) -> bool {
    v.next_check_at.is_some_and(|t| t <= now)
}

/// The verification use case.
pub struct Checks {
    queue: Arc<dyn CheckQueue>,
    records: Records,
    dns: DnsRecords,
    keys: KeyMaker,
    clock: Arc<dyn Clock>,
    verify: VerifyPolicy,
    rotation: RotationPolicy,
}

impl Checks {
    /// Wires the use case to its ports: checks follow `verify`, rotations `rotation`, and the
    /// records looked for are `dns`'s (over the same store).
    pub fn new(
        store: Arc<dyn IdentityStore>,
        queue: Arc<dyn CheckQueue>,
        vault: Arc<dyn KeyVault>,
        clock: Arc<dyn Clock>,
        verify: VerifyPolicy,
        rotation: RotationPolicy,
        dns: DnsRecords,
    ) -> Checks {
        Checks {
            queue,
            records: Records::new(store),
            dns,
            keys: KeyMaker::new(vault),
            clock,
            verify,
            rotation,
        }
    }

    /// Claims up to `limit` identities whose check is due, leasing them so no other node (or
    /// loop) checks them at the same time.
    pub fn claim_due_checks(&self, limit: usize) -> Result<Vec<DueCheck>, Error> {
        let now = self.clock.now();
        let claimed = self
            .queue
            .claim_due(now, Timestamp(now.0 + self.verify.lease_ms), limit)
            .map_err(bulk_err)?;
        Ok(claimed
            .into_iter()
            .map(|identity| DueCheck {
                records: self.dns.of(&identity),
                identity,
            })
            .collect())
    }

    /// The records `identity` needs, as a check looks for them.
    pub fn records_of(&self, identity: &Identity) -> Vec<ExpectedRecord> {
        self.dns.of(identity)
    }

    /// Makes a domain's next check due now, so the next pass of any node's verifier takes it
    /// (an operator's "check now"), its MAIL FROM domain's too. Returns false for an identity
    /// without DNS records to check (an address without a MAIL FROM domain). A FAILED
    /// identity is looked at too, but stays FAILED until reconfigured.
    pub fn check_now(&self, account: &AccountId, name: &IdentityName) -> Result<bool, Error> {
        // Not `Records::save_modified`: it skips a write that changes nothing, and here the
        // write itself is the point even when the check is already due (it ends a lease held
        // on the identity, so any node takes it at once). A verifier writing the same identity
        // meanwhile wins the version race; try again.
        for _ in 0..3 {
            let mut id = self.records.require(account, name)?;
            if id.dkim.is_none() && id.mail_from.is_none() {
                return Ok(false);
            }
            let now = self.clock.now();
            if id.dkim.is_some() {
                id.verification.next_check_at = Some(now);
            }
            if let Some(mf) = id.mail_from.as_mut() {
                mf.verification.next_check_at = Some(now);
            }
            match self.records.store().update_identity(&id) {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(store_err(e, name)),
            }
        }
        Err(Error::ConcurrentModification(name.as_str().to_owned()))
    }

    /// Applies what the verifier saw of `claimed`'s records (`records_of`, in order) in one
    /// versioned write: the DKIM state machine if its check was due, the same state machine
    /// over the MX record for the MAIL FROM domain if that was due, and the recommendations
    /// of a domain from everything seen. Returns the status changes, or `None` when the
    /// identity changed meanwhile (the result is stale and dropped; the change rescheduled its
    /// own check).
    pub fn record_check(
        &self,
        claimed: Identity,
        observation: &Observation,
    ) -> Result<Option<CheckOutcome>, Error> {
        let now = self.clock.now();
        let records = self.dns.of(&claimed);
        let mut id = claimed;
        let from = id.verification_status;
        if id.dkim.is_some() && due(&id.verification, now) {
            let dkim_seen = part(&records, observation, Purpose::Dkim);
            let (to, verification) = step(from, &id.verification, &dkim_seen, now, &self.verify);
            id.verification_status = to;
            id.verification = verification;
            self.plan_rotation(&mut id, now)?;
        }
        if matches!(id.name, IdentityName::Email(_)) && due(&id.verification, now) {
            // An address's own schedule is its verification link's expiry, not a DNS check.
            crate::addresses::expire(&mut id, now);
        }
        let mut mail_from = None;
        if let Some(mf) = id.mail_from.as_mut()
            && due(&mf.verification, now)
        {
            let mut mx_seen = part(&records, observation, Purpose::MailFrom);
            // The SOA shown is the identity's own domain's (DKIM's), not the MAIL FROM one's.
            mx_seen.soa = None;
            let before = mf.status;
            let (to, verification) = step(before, &mf.verification, &mx_seen, now, &self.verify);
            mf.status = to;
            mf.verification = verification;
            mail_from = Some((before, to));
        }
        if matches!(id.name, IdentityName::Domain(_)) {
            let assessed = crate::advice::assess(&id, &records, &observation.records);
            id.recommendations =
                crate::advice::apply(&id.recommendations, &assessed, now, &self.verify);
        }
        let outcome = CheckOutcome {
            dkim: (from, id.verification_status),
            mail_from,
        };
        match self.records.store().update_identity(&id) {
            Ok(_) => Ok(Some(outcome)),
            Err(StoreError::Conflict) | Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(store_err(e, &id.name)),
        }
    }

    /// The rotation step a DKIM check makes due (Easy DKIM only), carried out on `id`.
    fn plan_rotation(&self, id: &mut Identity, now: Timestamp) -> Result<(), Error> {
        let to = id.verification_status;
        let Some(dkim) = id.dkim.as_mut() else {
            return Ok(());
        };
        if let DkimOrigin::Easy { lengths, .. } = &dkim.origin {
            let trigger = Trigger::Checked {
                status: to,
                last_success: id.verification.last_success,
            };
            let plan = keys::plan(
                &dkim.keys,
                lengths.next_length,
                trigger,
                &self.rotation,
                now,
            )?;
            match self.keys.carry_out(plan, dkim, &mut id.verification, now) {
                Ok(()) => {}
                // A scheduled rotation whose key could not be made waits for the next check;
                // the check's own result still counts.
                Err(_) if matches!(plan, Plan::Stage { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// ListRecommendations' filter: each member, when set, must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdviceFilter {
    /// `TYPE`
    pub area: Option<AdviceArea>,
    /// `IMPACT`
    pub impact: Option<AdviceImpact>,
    /// `STATUS`
    pub status: Option<AdviceStatus>,
    /// `RESOURCE_ARN`: one identity.
    pub identity: Option<IdentityName>,
}

impl AdviceFilter {
    fn matches(&self, a: &Advice) -> bool {
        self.area.is_none_or(|x| x == a.kind.area())
            && self.impact.is_none_or(|x| x == a.kind.impact())
            && self.status.is_none_or(|x| x == a.status)
    }
}

/// One recommendation as ListRecommendations shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdviceItem {
    /// The identity it is about.
    pub identity: IdentityName,
    /// The recommendation.
    pub advice: Advice,
    /// The record that fixes it, when publishing one does.
    pub record: Option<ExpectedRecord>,
    /// The MAIL FROM domain, for the kinds about it.
    pub mail_from: Option<String>,
}

/// A page of recommendations; `continue_after` is where the next page starts (the last
/// item's identity and kind) when more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvicePage {
    /// This page's recommendations, by identity name, then kind.
    pub items: Vec<AdviceItem>,
    /// The last item's identity name and kind, when there are more.
    pub continue_after: Option<(String, AdviceKind)>,
}

/// How many identities a page reads from the store at a time.
const ADVICE_SCAN: usize = 100;

impl Checks {
    /// ListRecommendations: the account's domains' recommendations matching `filter`, in order
    /// of identity name and kind, `page_size` at a time, from after `after`.
    pub fn list_recommendations(
        &self,
        account: &AccountId,
        filter: &AdviceFilter,
        after: Option<(&str, AdviceKind)>,
        page_size: usize,
    ) -> Result<AdvicePage, Error> {
        let now = self.clock.now();
        let mut items = Vec::new();
        let take = |id: &Identity, after_kind: Option<AdviceKind>, items: &mut Vec<_>| {
            let records = self.dns.of(id);
            for a in &id.recommendations.items {
                if after_kind.is_some_and(|k| a.kind <= k)
                    || !filter.matches(a)
                    || !crate::advice::shown(a, now)
                {
                    continue;
                }
                items.push(AdviceItem {
                    identity: id.name.clone(),
                    advice: a.clone(),
                    record: fixing_record(a.kind, &records),
                    mail_from: id.mail_from.as_ref().map(|m| m.domain.as_str().to_owned()),
                });
            }
        };
        if let Some(name) = &filter.identity {
            if let Some(id) = self.records.load(account, name)?
                && after.is_none_or(|(n, _)| n == name.as_str())
            {
                take(&id, after.map(|(_, k)| k), &mut items);
            }
        } else {
            let mut cursor = after.map(|(n, _)| n.to_owned());
            // The identity the last page stopped inside: its remaining kinds first.
            if let Some((name, kind)) = after
                && let Ok(parsed) = IdentityName::parse(name)
                && let Some(id) = self.records.load(account, &parsed)?
            {
                take(&id, Some(kind), &mut items);
            }
            let domains = IdentityFilter {
                identity_type: Some(IdentityType::Domain),
                ..IdentityFilter::default()
            };
            while items.len() <= page_size {
                let batch = self
                    .records
                    .store()
                    .list_identities(account, &domains, cursor.as_deref(), ADVICE_SCAN)
                    .map_err(bulk_err)?;
                for summary in &batch {
                    if let Some(id) = self.records.load(account, &summary.name)? {
                        take(&id, None, &mut items);
                    }
                }
                match batch.last() {
                    Some(last) if batch.len() == ADVICE_SCAN => {
                        cursor = Some(last.name.as_str().to_owned())
                    }
                    _ => break,
                }
            }
        }
        let more = items.len() > page_size;
        items.truncate(page_size);
        let continue_after = if more {
            items
                .last()
                .map(|i| (i.identity.as_str().to_owned(), i.advice.kind))
        } else {
            None
        };
        Ok(AdvicePage {
            items,
            continue_after,
        })
    }
}

/// The record whose publication closes a recommendation of `kind`, among an identity's.
fn fixing_record(kind: AdviceKind, records: &[ExpectedRecord]) -> Option<ExpectedRecord> {
    let wanted: fn(&Expect) -> bool = match kind {
        AdviceKind::MailFromMx => |e| matches!(e, Expect::Mx { .. }),
        AdviceKind::SpfMissing | AdviceKind::SpfWrong | AdviceKind::SpfMultiple => {
            |e| matches!(e, Expect::Spf { .. })
        }
        AdviceKind::DmarcMissing | AdviceKind::DmarcUnparsable | AdviceKind::DmarcPolicyNone => {
            |e| matches!(e, Expect::Dmarc)
        }
        AdviceKind::DkimFailed => |e| matches!(e, Expect::Cname { .. } | Expect::DkimKey { .. }),
        AdviceKind::DkimWeakKey | AdviceKind::MailFromMissing => return None,
    };
    records.iter().find(|r| wanted(&r.expect)).cloned()
}
