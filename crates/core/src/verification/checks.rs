//! The verification use case: claim the identities whose DNS check is due (leased, so nodes
//! never check the same one at once), then record what the resolver saw in one versioned
//! write, together with the rotation step the result makes due.

use super::rules::{ExpectedRecord, Observation, VerifyPolicy, expected_records, step};
use crate::error::{Error, StoreError};
use crate::keys::{self, Plan, RotationPolicy, Trigger};
use crate::model::{AccountId, DkimOrigin, DkimStatus, Identity, IdentityName, Timestamp};
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
}

impl DnsRecords {
    /// Reads identities from `store`; Easy DKIM keys are published under `dkim_zone`.
    pub fn new(store: Arc<dyn IdentityStore>, dkim_zone: String) -> DnsRecords {
        DnsRecords {
            records: Records::new(store),
            dkim_zone,
        }
    }

    /// The DNS records an identity needs; empty for addresses.
    pub fn expected_records(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Vec<ExpectedRecord>, Error> {
        Ok(self.of(&self.records.require(account, name)?))
    }

    fn of(&self, identity: &Identity) -> Vec<ExpectedRecord> {
        match (&identity.name, &identity.dkim) {
            (IdentityName::Domain(d), Some(dkim)) => expected_records(d, dkim, &self.dkim_zone),
            _ => vec![],
        }
    }
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
    /// Wires the use case to its ports: checks follow `verify`, rotations `rotation`, and Easy
    /// DKIM keys are published under `dkim_zone`.
    pub fn new(
        store: Arc<dyn IdentityStore>,
        queue: Arc<dyn CheckQueue>,
        vault: Arc<dyn KeyVault>,
        clock: Arc<dyn Clock>,
        verify: VerifyPolicy,
        rotation: RotationPolicy,
        dkim_zone: String,
    ) -> Checks {
        Checks {
            queue,
            records: Records::new(store.clone()),
            dns: DnsRecords::new(store, dkim_zone),
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
    /// (an operator's "check now"). Returns false for an identity without DNS records to check
    /// (an address). A FAILED identity is looked at too, but stays FAILED until reconfigured.
    pub fn check_now(&self, account: &AccountId, name: &IdentityName) -> Result<bool, Error> {
        // Not `Records::save_modified`: it skips a write that changes nothing, and here the
        // write itself is the point even when the check is already due (it ends a lease held
        // on the identity, so any node takes it at once). A verifier writing the same identity
        // meanwhile wins the version race; try again.
        for _ in 0..3 {
            let mut id = self.records.require(account, name)?;
            if id.dkim.is_none() {
                return Ok(false);
            }
            id.verification.next_check_at = Some(self.clock.now());
            match self.records.store().update_identity(&id) {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(store_err(e, name)),
            }
        }
        Err(Error::ConcurrentModification(name.as_str().to_owned()))
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
        let from = id.verification_status;
        let (to, verification) = step(from, &id.verification, observation, now, &self.verify);
        id.verification_status = to;
        id.verification = verification;
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
        match self.records.store().update_identity(&id) {
            Ok(_) => Ok(Some((from, to))),
            Err(StoreError::Conflict) | Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(store_err(e, &id.name)),
        }
    }
}
