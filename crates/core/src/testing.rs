//! In-memory fakes of the ports, for unit tests here and in other crates: a clock that moves
//! only when told, a vault that makes placeholder keys instantly, a map-backed store, and a
//! mail system that keeps what it is given.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::error::{Error, Invalid, KeyProblem, StoreError};
use crate::model::{
    AccountId, DkimToken, Identity, IdentityCount, IdentityFilter, IdentityName, IdentitySummary,
    KeyLength, LinkHash, LinkToken, NewLink, SlotState, TemplateName, Timestamp,
    VerificationTemplate,
};
use crate::model::{
    Destination, DomainName, HeaderAddresses, PublishState, Publisher, SimpleMessage,
};
use crate::ports::{
    AccessKey, Account, AccountStore, CheckQueue, Clock, IdentityStore, KeyVault, KeyZoneSource,
    Mailer, NewKey, PrivateKeyInput, PublisherStore, TemplateStore,
};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A clock that only moves when the test says so.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(AtomicI64::new(start.0))
    }
    pub fn advance_hours(&self, h: i64) {
        self.0.fetch_add(h * Timestamp::HOUR, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// A vault that makes distinct placeholder keys without any cryptography.
#[derive(Default)]
pub struct FakeVault(AtomicU64);

impl KeyVault for FakeVault {
    fn generate(&self, length: KeyLength) -> Result<NewKey, Error> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Ok(NewKey {
            bits: length.bits(),
            public_der: format!("public-{n}").into_bytes(),
            sealed_private: format!("sealed-{n}").into_bytes(),
        })
    }
    fn import(&self, key: &PrivateKeyInput) -> Result<NewKey, Error> {
        if key.0.is_empty() {
            return Err(Error::Invalid(Invalid::PrivateKey(KeyProblem::NotDer)));
        }
        Ok(NewKey {
            bits: 2048,
            public_der: b"imported-public".to_vec(),
            sealed_private: b"imported-sealed".to_vec(),
        })
    }
    fn new_token(&self) -> Result<DkimToken, Error> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let digits: String = format!("{n:032}")
            .bytes()
            .map(|b| (b'a' + (b - b'0')) as char)
            .collect();
        Ok(DkimToken::parse(&digits)?)
    }
    fn new_link(&self) -> Result<NewLink, Error> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let token = LinkToken::parse(&format!("{n:042}A"))?;
        Ok(NewLink {
            hash: self.link_hash(&token),
            token,
        })
    }
    /// Not SHA-256 but std's hasher four times over, salted: any change of the token
    /// changes it.
    fn link_hash(&self, token: &LinkToken) -> LinkHash {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let part = |salt: u8| {
            let mut h = DefaultHasher::new();
            (salt, token.expose()).hash(&mut h);
            format!("{:016x}", h.finish())
        };
        LinkHash::parse(&(0..4).map(part).collect::<String>()).unwrap()
    }
    fn new_message_id(&self) -> Result<String, Error> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Ok(format!("00000000-0000-4000-8000-{n:012x}"))
    }
    /// A placeholder signature that names what a real one would be made of.
    fn sign(
        &self,
        sealed_private: &[u8],
        message: &[u8],
        domain: &str,
        selector: &str,
        now: Timestamp,
    ) -> Result<Vec<u8>, Error> {
        let header = format!(
            "DKIM-Signature: fake; d={domain}; s={selector}; t={}; key={}\r\n",
            now.0 / 1000,
            String::from_utf8_lossy(sealed_private)
        );
        Ok([header.as_bytes(), message].concat())
    }
}

/// A store over a map; one mutex makes every call atomic.
#[derive(Default)]
pub struct MemStore {
    identities: Mutex<BTreeMap<(String, String), Identity>>,
    leases: Mutex<BTreeMap<(String, String), Timestamp>>,
    generation: AtomicU64,
    accounts: Mutex<Vec<Account>>,
    keys: Mutex<Vec<AccessKey>>,
    templates: Mutex<BTreeMap<(String, String), VerificationTemplate>>,
    publishers: Mutex<BTreeMap<(String, String), Publisher>>,
}

impl PublisherStore for MemStore {
    fn put_publisher(&self, p: &Publisher) -> Result<(), StoreError> {
        let mut m = self.publishers.lock().unwrap();
        let key = (p.account.as_str().to_owned(), p.domain.as_str().to_owned());
        let version = m.get(&key).map_or(0, |old| old.version) + 1;
        m.insert(
            key,
            Publisher {
                version,
                ..p.clone()
            },
        );
        Ok(())
    }

    fn publisher(
        &self,
        account: &AccountId,
        domain: &DomainName,
    ) -> Result<Option<Publisher>, StoreError> {
        let m = self.publishers.lock().unwrap();
        Ok(
            m.get(&(account.as_str().to_owned(), domain.as_str().to_owned()))
                .cloned(),
        )
    }

    fn list_publishers(&self) -> Result<Vec<Publisher>, StoreError> {
        Ok(self.publishers.lock().unwrap().values().cloned().collect())
    }

    fn delete_publisher(&self, account: &AccountId, domain: &DomainName) -> Result<(), StoreError> {
        let mut m = self.publishers.lock().unwrap();
        m.remove(&(account.as_str().to_owned(), domain.as_str().to_owned()))
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    fn save_publish_state(
        &self,
        account: &AccountId,
        domain: &DomainName,
        version: u64,
        state: &PublishState,
    ) -> Result<u64, StoreError> {
        let mut m = self.publishers.lock().unwrap();
        let p = m
            .get_mut(&(account.as_str().to_owned(), domain.as_str().to_owned()))
            .ok_or(StoreError::NotFound)?;
        if p.version != version {
            return Err(StoreError::Conflict);
        }
        p.version += 1;
        p.state = state.clone();
        Ok(p.version)
    }
}

impl TemplateStore for MemStore {
    fn insert_template(&self, t: &VerificationTemplate, max: u64) -> Result<(), StoreError> {
        let mut m = self.templates.lock().unwrap();
        let key = (t.account.as_str().to_owned(), t.name.as_str().to_owned());
        if m.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        if m.keys().filter(|(a, _)| *a == key.0).count() as u64 >= max {
            return Err(StoreError::LimitExceeded);
        }
        m.insert(key, t.clone());
        Ok(())
    }

    fn get_template(
        &self,
        account: &AccountId,
        name: &TemplateName,
    ) -> Result<Option<VerificationTemplate>, StoreError> {
        let m = self.templates.lock().unwrap();
        Ok(
            m.get(&(account.as_str().to_owned(), name.as_str().to_owned()))
                .cloned(),
        )
    }

    fn update_template(&self, t: &VerificationTemplate) -> Result<(), StoreError> {
        let mut m = self.templates.lock().unwrap();
        let key = (t.account.as_str().to_owned(), t.name.as_str().to_owned());
        let stored = m.get_mut(&key).ok_or(StoreError::NotFound)?;
        stored.content = t.content.clone();
        Ok(())
    }

    fn delete_template(&self, account: &AccountId, name: &TemplateName) -> Result<(), StoreError> {
        let mut m = self.templates.lock().unwrap();
        m.remove(&(account.as_str().to_owned(), name.as_str().to_owned()))
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    fn list_templates(
        &self,
        account: &AccountId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<VerificationTemplate>, StoreError> {
        let m = self.templates.lock().unwrap();
        Ok(m.iter()
            .filter(|((a, n), _)| a == account.as_str() && after.is_none_or(|x| n.as_str() > x))
            .take(limit)
            .map(|(_, t)| t.clone())
            .collect())
    }
}

impl IdentityStore for MemStore {
    fn insert_identity(&self, identity: &Identity, max: u64) -> Result<(), StoreError> {
        let mut m = self.identities.lock().unwrap();
        let key = (
            identity.account.as_str().to_owned(),
            identity.name.as_str().to_owned(),
        );
        if m.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        if m.keys().filter(|(a, _)| a == &key.0).count() as u64 >= max {
            return Err(StoreError::LimitExceeded);
        }
        m.insert(key, identity.clone());
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn get_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Option<Identity>, StoreError> {
        let m = self.identities.lock().unwrap();
        Ok(
            m.get(&(account.as_str().to_owned(), name.as_str().to_owned()))
                .cloned(),
        )
    }
    fn identity_by_link(&self, hash: &LinkHash) -> Result<Option<Identity>, StoreError> {
        let m = self.identities.lock().unwrap();
        Ok(m.values()
            .find(|i| i.link.as_ref().is_some_and(|l| l.hash == *hash))
            .cloned())
    }
    fn update_identity(&self, identity: &Identity) -> Result<u64, StoreError> {
        let mut m = self.identities.lock().unwrap();
        let key = (
            identity.account.as_str().to_owned(),
            identity.name.as_str().to_owned(),
        );
        let stored = m.get_mut(&key).ok_or(StoreError::NotFound)?;
        if stored.version != identity.version || stored.created_at != identity.created_at {
            return Err(StoreError::Conflict);
        }
        // What the key zone serves: each key with its retirement time, not which one signs
        // (as the SQL stores' key rows).
        let keys = |i: &Identity| {
            i.dkim.as_ref().map(|d| {
                d.keys
                    .slots()
                    .map(|(k, s)| (k.clone(), matches!(s, SlotState::Retired(_)).then_some(s)))
                    .collect::<Vec<_>>()
            })
        };
        if keys(stored) != keys(identity) {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        *stored = identity.clone();
        stored.version += 1;
        self.leases.lock().unwrap().remove(&key);
        Ok(stored.version)
    }
    fn delete_identity(&self, account: &AccountId, name: &IdentityName) -> Result<(), StoreError> {
        let mut m = self.identities.lock().unwrap();
        self.generation.fetch_add(1, Ordering::SeqCst);
        m.remove(&(account.as_str().to_owned(), name.as_str().to_owned()))
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }
    fn list_identities(
        &self,
        account: &AccountId,
        filter: &IdentityFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IdentitySummary>, StoreError> {
        let m = self.identities.lock().unwrap();
        Ok(m.iter()
            .filter(|((a, n), _)| a == account.as_str() && after.is_none_or(|x| n.as_str() > x))
            .map(|(_, i)| i)
            .filter(|i| {
                filter
                    .name_contains
                    .as_ref()
                    .is_none_or(|s| i.name.as_str().to_lowercase().contains(&s.to_lowercase()))
                    && filter.identity_type.is_none_or(|t| i.name.kind() == t)
                    && filter
                        .verification_status
                        .is_none_or(|s| i.verification_status == s)
            })
            .take(limit)
            .map(|i| IdentitySummary {
                name: i.name.clone(),
                verification_status: i.verification_status,
            })
            .collect())
    }
    fn count_identities(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<IdentityCount>, StoreError> {
        let m = self.identities.lock().unwrap();
        let mut counts: Vec<IdentityCount> = Vec::new();
        for i in m.values() {
            if account.is_some_and(|a| *a != i.account) {
                continue;
            }
            let dkim_status = i.dkim.as_ref().map(|_| i.verification_status);
            match counts.iter_mut().find(|c| {
                c.identity_type == i.name.kind()
                    && c.dkim_status == dkim_status
                    && c.verification_status == i.verification_status
            }) {
                Some(c) => c.count += 1,
                None => counts.push(IdentityCount {
                    identity_type: i.name.kind(),
                    dkim_status,
                    verification_status: i.verification_status,
                    count: 1,
                }),
            }
        }
        Ok(counts)
    }
}

impl CheckQueue for MemStore {
    fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Identity>, StoreError> {
        let m = self.identities.lock().unwrap();
        let mut leases = self.leases.lock().unwrap();
        let mut due: Vec<&Identity> = m
            .iter()
            .filter(|(k, i)| {
                i.next_check_at().is_some_and(|t| t <= now)
                    && leases.get(*k).is_none_or(|l| *l <= now)
            })
            .map(|(_, i)| i)
            .collect();
        due.sort_by_key(|i| i.next_check_at());
        due.truncate(limit);
        for i in &due {
            leases.insert(
                (i.account.as_str().to_owned(), i.name.as_str().to_owned()),
                lease_until,
            );
        }
        Ok(due.into_iter().cloned().collect())
    }
}

impl KeyZoneSource for MemStore {
    fn published_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let m = self.identities.lock().unwrap();
        Ok(m.values()
            .filter_map(|i| i.dkim.as_ref())
            .filter(|d| matches!(d.origin, crate::model::DkimOrigin::Easy { .. }))
            .flat_map(|d| {
                d.keys
                    .keys()
                    .map(|k| (k.selector.as_str().to_owned(), k.public_der.clone()))
            })
            .collect())
    }
    fn key_generation(&self) -> Result<u64, StoreError> {
        Ok(self.generation.load(Ordering::SeqCst))
    }
}

impl AccountStore for MemStore {
    fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        let mut a = self.accounts.lock().unwrap();
        if a.iter()
            .any(|x| x.name == account.name || x.id == account.id)
        {
            return Err(StoreError::AlreadyExists);
        }
        a.push(account.clone());
        Ok(())
    }
    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        Ok(self
            .accounts
            .lock()
            .unwrap()
            .iter()
            .find(|a| a.name == name)
            .cloned())
    }
    fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        Ok(self.accounts.lock().unwrap().clone())
    }
    fn put_access_key(&self, key: &AccessKey) -> Result<(), StoreError> {
        let mut k = self.keys.lock().unwrap();
        k.retain(|x| x.id != key.id);
        k.push(key.clone());
        Ok(())
    }
    fn access_key(&self, id: &str) -> Result<Option<AccessKey>, StoreError> {
        Ok(self
            .keys
            .lock()
            .unwrap()
            .iter()
            .find(|k| k.id == id)
            .cloned())
    }
    fn access_keys_of(&self, account: &AccountId) -> Result<Vec<AccessKey>, StoreError> {
        Ok(self
            .keys
            .lock()
            .unwrap()
            .iter()
            .filter(|k| &k.account == account)
            .cloned()
            .collect())
    }
}

/// A message `MemMailer` took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub message_id: String,
    pub from: String,
    pub recipients: Vec<String>,
    pub message: Vec<u8>,
}

/// A mail system without MIME: `compose` writes a few header lines, `read_headers` reads back
/// what `encode_headers` wrote (anything else is malformed), and `deliver` keeps the message.
#[derive(Default)]
pub struct MemMailer {
    delivered: Mutex<Vec<Delivered>>,
}

impl MemMailer {
    /// A "whole message" whose headers `read_headers` returns as `headers`.
    pub fn encode_headers(headers: &HeaderAddresses) -> Vec<u8> {
        format!(
            "X-From: {}\nX-Sender: {}\nX-To: {}\n\nbody\n",
            headers.from.join(" "),
            headers.sender.as_deref().unwrap_or(""),
            headers.recipients.join(" ")
        )
        .into_bytes()
    }

    /// Everything delivered so far.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().unwrap().clone()
    }
}

impl Mailer for MemMailer {
    fn compose(
        &self,
        m: &SimpleMessage,
        destination: &Destination,
        message_id: &str,
        now: Timestamp,
    ) -> Result<Vec<u8>, Error> {
        let to: Vec<&str> = destination.to.iter().map(|t| t.written.as_str()).collect();
        Ok(format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{message_id}>\r\n\r\n{}\r\n",
            m.from.written,
            to.join(", "),
            m.subject,
            now.0 / 1000,
            m.text.as_deref().or(m.html.as_deref()).unwrap_or("")
        )
        .into_bytes())
    }

    fn read_headers(&self, message: &[u8]) -> Result<HeaderAddresses, Error> {
        let text = String::from_utf8_lossy(message);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        };
        let (Some(from), Some(sender), Some(recipients)) =
            (field("X-From: "), field("X-Sender: "), field("X-To: "))
        else {
            return Err(Invalid::RawUnparsable.into());
        };
        Ok(HeaderAddresses {
            from,
            sender: sender.into_iter().next(),
            recipients,
        })
    }

    fn deliver(
        &self,
        message_id: &str,
        from: &crate::model::EmailAddress,
        recipients: &[crate::model::EmailAddress],
        message: &[u8],
    ) -> Result<(), Error> {
        self.delivered.lock().unwrap().push(Delivered {
            message_id: message_id.to_owned(),
            from: from.as_str().to_owned(),
            recipients: recipients.iter().map(|r| r.as_str().to_owned()).collect(),
            message: message.to_vec(),
        });
        Ok(())
    }
}
