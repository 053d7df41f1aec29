//! Small adapters that plug implementations into the core's and the edge's ports: the system
//! clock, access-key lookup over the store, and page tokens sealed with the master key.

use sesame_api::CredentialLookup;
use sesame_api::handlers::PageTokens;
use sesame_core::Error;
use sesame_core::model::{AccountId, Timestamp};
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

/// Access keys from the store.
pub struct StoreCredentials(pub Arc<dyn Store>);

impl CredentialLookup for StoreCredentials {
    fn account_for_key(&self, access_key_id: &str) -> Result<Option<AccountId>, Error> {
        let key = self
            .0
            .access_key(access_key_id)
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(key.filter(|k| k.enabled).map(|k| k.account))
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
