//! `Cached`: the reads every API request makes (its access key, and GetEmailIdentity's
//! identity and DNS publisher) served from memory, kept current by the backend's change
//! signal. Each cached read first asks the backend for its change stamp, a number that moves
//! whenever anything was committed by any connection of any process (SQLite's
//! `PRAGMA data_version`); a moved stamp empties the cache. So a key disabled by `sesame
//! keys` from another process is refused on the very next request, and a cached answer is
//! never older than the last commit. Everything else goes straight to the backend.
//!
//! Why it is correct: a value is cached under the stamp read *before* it was loaded. A
//! commit that lands between the two reads makes the value newer than its stamp, never older,
//! and the next call sees a new stamp and drops it.
//!
//! Asking for the stamp starts and ends a SQLite read transaction (a lock and an unlock of
//! the shared memory, two `fcntl`s), which was a tenth of a GetEmailIdentity when each of its
//! three cached reads asked. Within `pin_thread`'s scope (the API opens one per request) a
//! thread asks once per store, at its first cached read, and its later reads see the store as
//! of that moment, as a read transaction would; a write through the store ends the pin, so a
//! request still reads its own writes.

use sesame_core::StoreError;
use sesame_core::model::{
    AccountId, DomainName, Identity, IdentityCount, IdentityFilter, IdentityName, IdentitySummary,
    LinkHash, PublishState, Publisher, TemplateName, Timestamp, VerificationTemplate,
};
use sesame_core::ports::{
    AccessKey, Account, AccountStore, CheckQueue, IdentityStore, KeyZoneSource, PublisherStore,
    TemplateStore,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    /// Inside `pin_thread`'s scope: the stamp this thread read, per `Cached` (by its id).
    static PINNED: RefCell<Option<Vec<(u64, Stamp)>>> = const { RefCell::new(None) };
}

/// Ids of `Cached` stores, for `PINNED`.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// While it lives, cached reads on this thread ask each store for its stamp once.
pub struct Pinned(());

/// Pins this thread's cached reads until the returned guard drops (see the module's doc).
pub fn pin_thread() -> Pinned {
    PINNED.with(|p| *p.borrow_mut() = Some(Vec::new()));
    Pinned(())
}

impl Drop for Pinned {
    fn drop(&mut self) {
        PINNED.with(|p| *p.borrow_mut() = None);
    }
}

/// A backend's change stamp: equal stamps mean nothing was committed between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    /// A counter (SQLite's `data_version`).
    Counter(u64),
    /// A snapshot's text (PostgreSQL's `pg_current_snapshot()`).
    Snapshot(Box<str>),
}

/// A backend's change signal.
pub trait ChangeSignal: Send + Sync {
    /// A stamp that differs from every earlier answer once anything has been committed
    /// since (by this process or another); cheap enough to ask on every request.
    fn change_stamp(&self) -> Result<Stamp, StoreError>;
}

/// Beyond this many entries in one map the map starts over: a bound on memory, not a policy
/// (the hot set of a benchmark or a busy account is far smaller).
const MAX_ENTRIES: usize = 8192;

#[derive(Default)]
struct Maps {
    stamp: Option<Stamp>,
    keys: HashMap<String, Option<AccessKey>>,
    identities: HashMap<(AccountId, IdentityName), Option<Identity>>,
    publishers: HashMap<(AccountId, DomainName), Option<Publisher>>,
}

/// A backend `S` with its hot reads served from memory.
pub struct Cached<S> {
    inner: S,
    maps: Mutex<Maps>,
    id: u64,
}

impl<S: ChangeSignal> Cached<S> {
    /// Caches `inner`'s hot reads.
    pub fn new(inner: S) -> Cached<S> {
        Cached {
            inner,
            maps: Mutex::new(Maps::default()),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The stamp: this thread's pinned one, or the backend's (pinned if a pin is open).
    fn stamp(&self) -> Result<Stamp, StoreError> {
        let pinned = PINNED.with(|p| {
            p.borrow().as_ref().and_then(|v| {
                v.iter()
                    .find(|(id, _)| *id == self.id)
                    .map(|(_, s)| s.clone())
            })
        });
        if let Some(s) = pinned {
            return Ok(s);
        }
        let s = self.inner.change_stamp()?;
        PINNED.with(|p| {
            if let Some(v) = p.borrow_mut().as_mut() {
                v.push((self.id, s.clone()));
            }
        });
        Ok(s)
    }

    /// After a write through this store: the next cached read asks for the stamp again.
    fn wrote<T>(&self, result: T) -> T {
        PINNED.with(|p| {
            if let Some(v) = p.borrow_mut().as_mut() {
                v.retain(|(id, _)| *id != self.id);
            }
        });
        result
    }

    /// The backend itself.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `map(maps)[key]`, loaded with `load` on a miss, under the current stamp.
    fn read<K, V>(
        &self,
        map: impl Fn(&mut Maps) -> &mut HashMap<K, Option<V>>,
        key: K,
        load: impl FnOnce() -> Result<Option<V>, StoreError>,
    ) -> Result<Option<V>, StoreError>
    where
        K: Hash + Eq,
        V: Clone,
    {
        let stamp = self.stamp()?;
        {
            let mut m = self.lock();
            if m.stamp.as_ref() != Some(&stamp) {
                m.keys.clear();
                m.identities.clear();
                m.publishers.clear();
                m.stamp = Some(stamp.clone());
            }
            if let Some(v) = map(&mut m).get(&key) {
                return Ok(v.clone());
            }
        }
        let v = load()?;
        let mut m = self.lock();
        if m.stamp.as_ref() == Some(&stamp) {
            let entries = map(&mut m);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, v.clone());
        }
        Ok(v)
    }
}

impl<S: IdentityStore + ChangeSignal> IdentityStore for Cached<S> {
    fn insert_identity(&self, identity: &Identity, max_identities: u64) -> Result<(), StoreError> {
        self.wrote(self.inner.insert_identity(identity, max_identities))
    }
    fn get_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Option<Identity>, StoreError> {
        self.read(
            |m| &mut m.identities,
            (account.clone(), name.clone()),
            || self.inner.get_identity(account, name),
        )
    }
    fn update_identity(&self, identity: &Identity) -> Result<u64, StoreError> {
        self.wrote(self.inner.update_identity(identity))
    }
    fn delete_identity(&self, account: &AccountId, name: &IdentityName) -> Result<(), StoreError> {
        self.wrote(self.inner.delete_identity(account, name))
    }
    fn list_identities(
        &self,
        account: &AccountId,
        filter: &IdentityFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IdentitySummary>, StoreError> {
        self.inner.list_identities(account, filter, after, limit)
    }
    fn identity_by_link(&self, hash: &LinkHash) -> Result<Option<Identity>, StoreError> {
        self.inner.identity_by_link(hash)
    }
    fn count_identities(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<IdentityCount>, StoreError> {
        self.inner.count_identities(account)
    }
}

impl<S: CheckQueue + ChangeSignal> CheckQueue for Cached<S> {
    fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Identity>, StoreError> {
        self.wrote(self.inner.claim_due(now, lease_until, limit))
    }
}

impl<S: KeyZoneSource + ChangeSignal> KeyZoneSource for Cached<S> {
    fn published_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.published_keys()
    }
    fn key_generation(&self) -> Result<u64, StoreError> {
        self.inner.key_generation()
    }
}

impl<S: AccountStore + ChangeSignal> AccountStore for Cached<S> {
    fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        self.wrote(self.inner.insert_account(account))
    }
    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.inner.account_by_name(name)
    }
    fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.inner.list_accounts()
    }
    fn put_access_key(&self, key: &AccessKey) -> Result<(), StoreError> {
        self.wrote(self.inner.put_access_key(key))
    }
    fn access_key(&self, id: &str) -> Result<Option<AccessKey>, StoreError> {
        self.read(|m| &mut m.keys, id.to_owned(), || self.inner.access_key(id))
    }
    fn access_keys_of(&self, account: &AccountId) -> Result<Vec<AccessKey>, StoreError> {
        self.inner.access_keys_of(account)
    }
}

impl<S: TemplateStore + ChangeSignal> TemplateStore for Cached<S> {
    fn insert_template(&self, template: &VerificationTemplate, max: u64) -> Result<(), StoreError> {
        self.wrote(self.inner.insert_template(template, max))
    }
    fn get_template(
        &self,
        account: &AccountId,
        name: &TemplateName,
    ) -> Result<Option<VerificationTemplate>, StoreError> {
        self.inner.get_template(account, name)
    }
    fn update_template(&self, template: &VerificationTemplate) -> Result<(), StoreError> {
        self.wrote(self.inner.update_template(template))
    }
    fn delete_template(&self, account: &AccountId, name: &TemplateName) -> Result<(), StoreError> {
        self.wrote(self.inner.delete_template(account, name))
    }
    fn list_templates(
        &self,
        account: &AccountId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<VerificationTemplate>, StoreError> {
        self.inner.list_templates(account, after, limit)
    }
}

impl<S: PublisherStore + ChangeSignal> PublisherStore for Cached<S> {
    fn put_publisher(&self, publisher: &Publisher) -> Result<(), StoreError> {
        self.wrote(self.inner.put_publisher(publisher))
    }
    fn publisher(
        &self,
        account: &AccountId,
        domain: &DomainName,
    ) -> Result<Option<Publisher>, StoreError> {
        self.read(
            |m| &mut m.publishers,
            (account.clone(), domain.clone()),
            || self.inner.publisher(account, domain),
        )
    }
    fn list_publishers(&self) -> Result<Vec<Publisher>, StoreError> {
        self.inner.list_publishers()
    }
    fn delete_publisher(&self, account: &AccountId, domain: &DomainName) -> Result<(), StoreError> {
        self.wrote(self.inner.delete_publisher(account, domain))
    }
    fn save_publish_state(
        &self,
        account: &AccountId,
        domain: &DomainName,
        version: u64,
        state: &PublishState,
    ) -> Result<u64, StoreError> {
        self.wrote(
            self.inner
                .save_publish_state(account, domain, version, state),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::SqliteStore;
    use crate::conformance::{account, easy_domain};

    /// A second store on the same file stands for another process (`sesame keys`, another
    /// node): its commits reach the cached store's very next read.
    #[test]
    fn another_process_s_commit_is_seen_on_the_next_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sesame.db");
        let cached = Cached::new(SqliteStore::open(&path).unwrap());
        let other = SqliteStore::open(&path).unwrap();
        commits_by_another_store_are_seen(&cached, &other);
    }

    /// The same with PostgreSQL: another pool on the same schema stands for another node.
    #[cfg(feature = "postgres")]
    #[test]
    fn another_node_s_commit_is_seen_on_the_next_read() {
        let Some(url) = crate::conformance::postgres_url("the cache's PostgreSQL test") else {
            return;
        };
        let schema = crate::conformance::fresh_schema("sesame_cache");
        let cached = Cached::new(crate::PostgresStore::open(&url, Some(&schema)).unwrap());
        let other = crate::PostgresStore::open(&url, Some(&schema)).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commits_by_another_store_are_seen(&cached, &other);
        }));
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }

    fn commits_by_another_store_are_seen<S, O>(cached: &Cached<S>, other: &O)
    where
        S: sesame_core::ports::Store + ChangeSignal,
        O: AccountStore + IdentityStore,
    {
        let acct = account(cached, "700000000001", "cache");
        let key = AccessKey {
            id: "AKIACACHE00000000001".into(),
            account: acct.clone(),
            sealed_secret: vec![1, 2, 3],
            enabled: true,
            created_at: Timestamp(1),
        };
        cached.put_access_key(&key).unwrap();
        assert!(cached.access_key(&key.id).unwrap().unwrap().enabled);
        assert!(
            cached.access_key(&key.id).unwrap().unwrap().enabled,
            "asked again"
        );
        other
            .put_access_key(&AccessKey {
                enabled: false,
                ..key.clone()
            })
            .unwrap();
        assert!(!cached.access_key(&key.id).unwrap().unwrap().enabled);

        let name = IdentityName::parse("cache.example.com").unwrap();
        assert_eq!(
            cached.get_identity(&acct, &name).unwrap(),
            None,
            "a cached miss"
        );
        other
            .insert_identity(&easy_domain(&acct, "cache.example.com"), 10)
            .unwrap();
        let got = cached.get_identity(&acct, &name).unwrap().unwrap();
        other.update_identity(&got).unwrap();
        assert_eq!(
            cached.get_identity(&acct, &name).unwrap().unwrap().version,
            got.version + 1
        );
        other.delete_identity(&acct, &name).unwrap();
        assert_eq!(cached.get_identity(&acct, &name).unwrap(), None);
    }
}
