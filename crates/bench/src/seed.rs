//! Fills a data directory with many identities through the real use case and the real store,
//! faster than the API could: RSA key generation is the one shortcut. Every Easy DKIM identity
//! gets its own random tokens but shares one key pair, sealed under the data dir's master key;
//! the DNS scenarios need tokens and published records, not distinct keys, and 300 000 RSA-2048
//! key generations would take hours.

use sesame_core::Error;
use sesame_core::identities::{CreateIdentity, Identities};
use sesame_core::model::{
    AccountId, DkimOrigin, DkimToken, IdentityName, KeyLength, LinkHash, LinkToken, NewLink,
    Timestamp,
};
use sesame_core::ports::{Account, Clock, KeyVault, NewKey, PrivateKeyInput, Store};
use sesame_crypto::{MasterKey, OpenSslVault, Sealer};
use std::path::Path;
use std::sync::Arc;

struct Wall;

impl Clock for Wall {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// Hands out one pre-made key pair for every generation; tokens stay random.
struct SharedKey {
    key: NewKey,
    real: OpenSslVault,
}

impl KeyVault for SharedKey {
    fn generate(&self, _length: KeyLength) -> Result<NewKey, Error> {
        Ok(self.key.clone())
    }
    fn generate_many(&self, _length: KeyLength, n: usize) -> Result<Vec<NewKey>, Error> {
        Ok(vec![self.key.clone(); n])
    }
    fn import(&self, key: &PrivateKeyInput) -> Result<NewKey, Error> {
        self.real.import(key)
    }
    fn new_token(&self) -> Result<DkimToken, Error> {
        self.real.new_token()
    }
    fn new_message_id(&self) -> Result<String, Error> {
        self.real.new_message_id()
    }
    fn new_link(&self) -> Result<NewLink, Error> {
        self.real.new_link()
    }
    fn link_hash(&self, token: &LinkToken) -> LinkHash {
        self.real.link_hash(token)
    }
    fn sign(
        &self,
        sealed_private: &[u8],
        message: &[u8],
        domain: &str,
        selector: &str,
        now: Timestamp,
    ) -> Result<Vec<u8>, Error> {
        self.real
            .sign(sealed_private, message, domain, selector, now)
    }
}

/// An Easy DKIM domain identity the seeder made: its name and its three tokens.
pub struct Seeded {
    /// The domain.
    pub domain: String,
    /// Its CNAME tokens.
    pub tokens: Vec<String>,
}

/// Creates `accounts × per_account` Easy DKIM domain identities named
/// `d<i>.a<account>.<suffix>` in the (stopped) server's data dir, on `threads` threads.
/// Accounts keep SES's 10 000-identity quota, so the identities are spread over accounts.
/// Returns the identities and the shared public key (DER SubjectPublicKeyInfo).
pub fn easy_dkim(
    data_dir: &Path,
    accounts: usize,
    per_account: usize,
    suffix: &str,
    threads: usize,
) -> (Vec<Seeded>, Vec<u8>) {
    let master = std::fs::read_to_string(data_dir.join("master.key")).expect("master key");
    let sealer = Sealer::new(MasterKey::parse(master.trim()).expect("master key"));
    let real = OpenSslVault::new(sealer.clone());
    let key = real.generate(KeyLength::Rsa2048).expect("key");
    let public_der = key.public_der.clone();
    let store: Arc<dyn Store> = Arc::new(
        sesame_store::SqliteStore::open(&data_dir.join("sesame.db")).expect("open the store"),
    );
    let service = Arc::new(Identities::new(
        store.clone(),
        Arc::new(SharedKey { key, real }),
        Arc::new(Wall),
        10_000,
    ));
    let ids: Vec<AccountId> = (0..accounts)
        .map(|a| {
            let id = AccountId::parse(&format!("9{a:011}")).expect("account id");
            store
                .insert_account(&Account {
                    id: id.clone(),
                    name: format!("bench-{a}"),
                    created_at: Wall.now(),
                })
                .expect("insert account");
            id
        })
        .collect();
    let jobs: Vec<(AccountId, String)> = (0..per_account)
        .flat_map(|i| {
            ids.iter()
                .enumerate()
                .map(move |(a, id)| (id.clone(), format!("d{i}.a{a}.{suffix}")))
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = std::sync::Mutex::new(Vec::with_capacity(jobs.len()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((account, domain)) = jobs.get(i) else {
                        break;
                    };
                    let created = service
                        .create_identity(
                            account,
                            CreateIdentity {
                                name: IdentityName::parse(domain).expect("name"),
                                tags: vec![],
                                dkim: None,
                                configuration_set: None,
                            },
                        )
                        .expect("create identity");
                    let Some(DkimOrigin::Easy { tokens, .. }) = created.dkim.map(|d| d.origin)
                    else {
                        panic!("{domain}: not Easy DKIM");
                    };
                    let tokens = tokens.iter().map(|t| t.as_str().to_owned()).collect();
                    out.lock().expect("lock").push(Seeded {
                        domain: domain.clone(),
                        tokens,
                    });
                }
            });
        }
    });
    (out.into_inner().expect("lock"), public_der)
}
