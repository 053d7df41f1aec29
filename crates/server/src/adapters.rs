//! Small adapters that plug implementations into the core's and the edge's ports: the system
//! clock, access-key lookup over the store, and page tokens sealed with the master key.

use crate::bootstrap::ACCESS_KEY_PURPOSE;
use sesame_api::handlers::PageTokens;
use sesame_api::{Credential, CredentialLookup, Secret};
use sesame_core::Error;
use sesame_core::model::Timestamp;
use sesame_core::ports::{Clock, Store};
use sesame_crypto::Sealer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Wall-clock time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// Access keys from the store, secrets unsealed with the master key.
pub struct StoreCredentials {
    store: Arc<dyn Store>,
    sealer: Sealer,
    /// Secrets already unsealed, by their sealed bytes: the row is still read on every request
    /// (a key disabled or deleted by the CLI is refused at once), but OpenSSL's per-call cipher
    /// set-up cost a twentieth of a GetEmailIdentity. The same sealed bytes always open to the
    /// same secret (AES-GCM under one master key), so an entry cannot go stale.
    opened: Mutex<HashMap<Vec<u8>, String>>,
}

/// Beyond this many cached secrets the cache starts over: access keys are few, so this only
/// bounds memory if many are made and dropped.
const MAX_OPENED: usize = 4096;

impl StoreCredentials {
    /// Looks keys up in `store`, opening their secrets with `sealer`.
    pub fn new(store: Arc<dyn Store>, sealer: Sealer) -> StoreCredentials {
        StoreCredentials {
            store,
            sealer,
            opened: Mutex::new(HashMap::new()),
        }
    }

    fn open(&self, id: &str, sealed: &[u8]) -> Result<String, Error> {
        if let Some(s) = self.opened.lock().ok().and_then(|m| m.get(sealed).cloned()) {
            return Ok(s);
        }
        let secret = self
            .sealer
            .open(ACCESS_KEY_PURPOSE, sealed)
            .map_err(|e| Error::Internal(format!("access key {id}: {e}")))?;
        let secret = String::from_utf8(secret)
            .map_err(|_| Error::Internal(format!("access key {id}: secret is not UTF-8")))?;
        if let Ok(mut m) = self.opened.lock() {
            if m.len() >= MAX_OPENED {
                m.clear();
            }
            m.insert(sealed.to_vec(), secret.clone());
        }
        Ok(secret)
    }
}

impl CredentialLookup for StoreCredentials {
    fn lookup(&self, access_key_id: &str) -> Result<Option<Credential>, Error> {
        let Some(key) = self
            .store
            .access_key(access_key_id)
            .map_err(|e| Error::Unavailable(e.to_string()))?
        else {
            return Ok(None);
        };
        let secret = self.open(&key.id, &key.sealed_secret)?;
        Ok(Some(Credential {
            account: key.account,
            secret: Secret(secret),
            enabled: key.enabled,
        }))
    }
}

/// What the admin listener's readiness probe and metrics ask of this node.
pub struct Node {
    /// The store, for a probe read.
    pub store: Arc<dyn Store>,
    /// Set once the first key-zone snapshot is built from the store.
    pub zone_loaded: Arc<std::sync::atomic::AtomicBool>,
    /// The Easy DKIM key pool.
    pub pool: Arc<sesame_crypto::PooledVault<sesame_crypto::OpenSslVault>>,
}

impl sesame_admin::NodeStatus for Node {
    fn store_answers(&self) -> Result<(), String> {
        // One indexed read, the same the API's authentication makes on every request.
        self.store
            .account_by_name(crate::bootstrap::DEFAULT_ACCOUNT)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn key_zone_loaded(&self) -> bool {
        self.zone_loaded.load(std::sync::atomic::Ordering::Acquire)
    }

    fn key_pool(&self) -> Vec<(&'static str, usize)> {
        use sesame_core::model::KeyLength;
        vec![
            ("1024", self.pool.available(KeyLength::Rsa1024)),
            ("2048", self.pool.available(KeyLength::Rsa2048)),
        ]
    }
}

const PAGE_TOKEN_PURPOSE: &str = "sesame/page-token/v1";

/// Page tokens sealed with AES-256-GCM: opaque to clients, and any change is detected.
pub struct SealedPageTokens(pub Sealer);

impl PageTokens for SealedPageTokens {
    fn seal(&self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        self.0
            .seal(PAGE_TOKEN_PURPOSE, payload)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        self.0.open(PAGE_TOKEN_PURPOSE, sealed).ok()
    }
}
