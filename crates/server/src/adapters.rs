//! Small adapters that plug implementations into the core's and the edge's ports: the system
//! clock, access-key lookup over the store, page tokens sealed with the master key, and the
//! mail signer (keys unsealed once, then cached) and outbox.

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

/// Signs mail with sealed DKIM keys, unsealing each key once and keeping it in memory: an
/// RSA private-key parse costs far more than the signature itself.
pub struct CachedSigner {
    /// Opens sealed keys.
    pub vault: Arc<sesame_crypto::OpenSslVault>,
    cache: std::sync::Mutex<
        std::collections::HashMap<Vec<u8>, Arc<openssl::pkey::PKey<openssl::pkey::Private>>>,
    >,
}

impl CachedSigner {
    /// A signer with an empty cache.
    pub fn new(vault: Arc<sesame_crypto::OpenSslVault>) -> CachedSigner {
        CachedSigner {
            vault,
            cache: Default::default(),
        }
    }

    fn key(
        &self,
        sealed: &[u8],
    ) -> Result<Arc<openssl::pkey::PKey<openssl::pkey::Private>>, Error> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cache.get(sealed) {
            return Ok(k.clone());
        }
        let key = Arc::new(self.vault.open(sealed)?);
        cache.insert(sealed.to_vec(), key.clone());
        Ok(key)
    }
}

impl sesame_core::ports::MailSigner for CachedSigner {
    fn sign(
        &self,
        message: &[u8],
        domain: &str,
        selector: &str,
        sealed_private: &[u8],
        now: sesame_core::model::Timestamp,
    ) -> Result<Vec<u8>, Error> {
        let key = self.key(sealed_private)?;
        let unix_time = u64::try_from(now.0 / 1000).unwrap_or(0);
        sesame_mail::dkim::sign(message, &key, domain, selector, unix_time)
            .map_err(|e| Error::Internal(e.to_string()))
    }
}

/// The outbox directory as the core's `Outbox`.
pub struct DirOutbox(pub sesame_mail::outbox::Outbox);

impl sesame_core::ports::Outbox for DirOutbox {
    fn deliver(
        &self,
        message_id: &str,
        _from: &sesame_core::model::EmailAddress,
        _recipients: &[sesame_core::model::EmailAddress],
        message: &[u8],
    ) -> Result<(), Error> {
        self.0
            .deliver(message_id, message)
            .map(|_| ())
            .map_err(|e| Error::Unavailable(e.to_string()))
    }
}

/// An SMTP relay as the core's `Outbox`.
pub struct RelayOutbox(pub sesame_mail::relay::SmtpRelay);

impl sesame_core::ports::Outbox for RelayOutbox {
    fn deliver(
        &self,
        message_id: &str,
        from: &sesame_core::model::EmailAddress,
        recipients: &[sesame_core::model::EmailAddress],
        message: &[u8],
    ) -> Result<(), Error> {
        let to: Vec<&str> = recipients.iter().map(|r| r.as_str()).collect();
        self.0
            .deliver(from.as_str(), &to, message)
            .map_err(|e| Error::Unavailable(format!("relaying message {message_id}: {e}")))
    }
}
