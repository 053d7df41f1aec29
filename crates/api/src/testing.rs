//! Test fakes shared by the crate's unit tests: a known access key, page tokens that seal
//! nothing, and an `ApiState` over core's in-memory store at a fixed time.

use crate::handlers::PageTokens;
use crate::sigv4::SigningKeyCache;
use crate::state::{ApiState, Credential, CredentialLookup, Secret};
use crate::throttle::{SourceThrottle, Throttle};
use sesame_core::Error;
use sesame_core::app::{Config, UseCases};
use sesame_core::model::{AccountId, Timestamp};
use sesame_core::ports::Clock;
use sesame_core::testing::{FakeVault, ManualClock, MemStore};
use std::sync::Arc;
use std::time::Duration;

/// The access key the fakes know.
pub const KEY: &str = "AKIDSESAMETEST";
/// Its secret.
pub const SECRET: &str = "secret-of-the-test-key";
/// 2026-11-26T12:00:00Z, the fakes' clock.
pub const NOW_MS: i64 = 1_795_694_400_000;

/// `KEY`'s credential if `access_key_id` is `KEY`.
pub fn known_key(access_key_id: &str) -> Option<Credential> {
    (access_key_id == KEY).then(|| Credential {
        account: AccountId::parse("123456789012").unwrap(),
        secret: Secret(SECRET.into()),
        enabled: true,
    })
}

/// Page tokens in the clear.
pub struct PlainTokens;

impl PageTokens for PlainTokens {
    fn seal(&self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(payload.to_vec())
    }
    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        Some(sealed.to_vec())
    }
}

/// An `ApiState` for `us-east-1` at `NOW_MS` over an empty in-memory store, unthrottled.
pub fn state(credentials: Arc<dyn CredentialLookup>) -> ApiState {
    let clock = Arc::new(ManualClock::new(Timestamp(NOW_MS)));
    let service = UseCases::new(
        Arc::new(MemStore::default()),
        Arc::new(FakeVault::default()),
        clock.clone(),
        Arc::new(sesame_core::testing::MemMailer::default()),
        Config::with_zone("dkim.test", 100).unwrap(),
    );
    ApiState {
        service: Arc::new(service),
        region: "us-east-1".into(),
        credentials,
        pages: Arc::new(PlainTokens),
        clock: clock as Arc<dyn Clock>,
        throttle: Throttle::new(0, 0),
        auth_failures: SourceThrottle::new(0, 0),
        body_timeout: Duration::from_secs(30),
        signing_keys: SigningKeyCache::new(),
        inline_reads: false,
        metrics: Arc::new(sesame_metrics::Metrics::new("test")),
        access_log: crate::access_log::AccessLog::inline(),
        request_scope: None,
    }
}
