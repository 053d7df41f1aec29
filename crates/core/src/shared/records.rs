//! Identity records as the use cases read and write them: loads, the one-write-per-use-case
//! rule, optimistic concurrency, and what each storage failure means to a client.

use crate::error::{Error, Limit, Missing, StoreError};
use crate::model::{AccountId, Identity, IdentityName};
use crate::ports::IdentityStore;
use std::sync::Arc;

/// The identity records of every account.
#[derive(Clone)]
pub(crate) struct Records {
    store: Arc<dyn IdentityStore>,
}

/// The refusal for an identity that is not there.
pub(crate) fn not_found(name: &IdentityName) -> Error {
    Error::NotFound(Missing::Identity(name.as_str().to_owned()))
}

/// What a storage failure on `name` means to the client.
pub(crate) fn store_err(e: StoreError, name: &IdentityName) -> Error {
    match e {
        StoreError::NotFound => not_found(name),
        StoreError::AlreadyExists => Error::AlreadyExists(name.as_str().to_owned()),
        StoreError::LimitExceeded => Error::LimitExceeded(Limit::Identities),
        StoreError::Conflict => Error::ConcurrentModification(name.as_str().to_owned()),
        StoreError::Unavailable(m) => Error::Unavailable(m),
    }
}

/// A storage failure of a call about no one identity (a list, a claim).
pub(crate) fn bulk_err(e: StoreError) -> Error {
    match e {
        StoreError::Unavailable(m) => Error::Unavailable(m),
        other => Error::Internal(other.to_string()),
    }
}

impl Records {
    pub(crate) fn new(store: Arc<dyn IdentityStore>) -> Records {
        Records { store }
    }

    pub(crate) fn store(&self) -> &Arc<dyn IdentityStore> {
        &self.store
    }

    pub(crate) fn load(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Option<Identity>, Error> {
        self.store
            .get_identity(account, name)
            .map_err(|e| store_err(e, name))
    }

    /// The identity, or NotFound.
    pub(crate) fn require(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Identity, Error> {
        self.load(account, name)?.ok_or_else(|| not_found(name))
    }

    pub(crate) fn insert(&self, identity: &Identity, max_identities: u64) -> Result<(), Error> {
        self.store
            .insert_identity(identity, max_identities)
            .map_err(|e| store_err(e, &identity.name))
    }

    /// Applies `change` to a copy of `current` and stores it if nobody wrote in between.
    pub(crate) fn save_modified(
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
                    current = self.require(&current.account, &current.name)?;
                }
                Err(e) => return Err(store_err(e, &next.name)),
            }
        }
        Err(store_err(StoreError::Conflict, &current.name))
    }
}
