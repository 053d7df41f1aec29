//! Small adapters that plug implementations into the core's and the edge's ports: the system
//! clock, access-key lookup over the store, and page tokens sealed with the master key.

use crate::bootstrap::ACCESS_KEY_PURPOSE;
use sesame_api::handlers::PageTokens;
use sesame_api::{Credential, CredentialLookup, Secret};
use sesame_core::Error;
use sesame_core::model::Timestamp;
use sesame_core::ports::{Clock, Store};
use sesame_crypto::Sealer;
use std::sync::Arc;

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
    /// The store holding the keys.
    pub store: Arc<dyn Store>,
    /// Opens sealed secrets.
    pub sealer: Sealer,
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
        let secret = self
            .sealer
            .open(ACCESS_KEY_PURPOSE, &key.sealed_secret)
            .map_err(|e| Error::Internal(format!("access key {}: {e}", key.id)))?;
        let secret = String::from_utf8(secret)
            .map_err(|_| Error::Internal(format!("access key {}: secret is not UTF-8", key.id)))?;
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
