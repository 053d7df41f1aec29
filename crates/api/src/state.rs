//! What the edge shares between requests (`ApiState`) and the one door authentication has to
//! storage (`CredentialLookup`).

use crate::handlers::PageTokens;
use crate::sigv4::SigningKeyCache;
use crate::throttle::{SourceThrottle, Throttle};
use sesame_core::Error;
use sesame_core::app::UseCases;
use sesame_core::model::AccountId;
use sesame_core::ports::Clock;
use std::sync::Arc;

/// A secret access key; its `Debug` never shows it.
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What the edge needs to know about an access key.
#[derive(Debug)]
pub struct Credential {
    /// The owning account.
    pub account: AccountId,
    /// The secret, to recompute signatures with.
    pub secret: Secret,
    /// Disabled keys authenticate nothing.
    pub enabled: bool,
}

/// The only storage access authentication makes: "give me the secret of this key".
pub trait CredentialLookup: Send + Sync {
    /// The key's credential, if the key exists.
    fn lookup(&self, access_key_id: &str) -> Result<Option<Credential>, Error>;
}

/// The peer of the connection a request came on; the listener puts it in the request's
/// extensions.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Everything the edge needs, shared by all requests.
pub struct ApiState {
    /// The use cases.
    pub service: Arc<UseCases>,
    /// The region this endpoint serves: SigV4 scopes and ARNs must name it.
    pub region: String,
    /// Access key → account and secret.
    pub credentials: Arc<dyn CredentialLookup>,
    /// Page-token sealing.
    pub pages: Arc<dyn PageTokens>,
    /// The clock SigV4's skew check reads.
    pub clock: Arc<dyn Clock>,
    /// Per-account request throttling.
    pub throttle: Throttle,
    /// Per-source budget of failed authentications.
    pub auth_failures: SourceThrottle,
    /// How long a request body may take to arrive once the headers are in.
    pub body_timeout: std::time::Duration,
    /// SigV4 signing keys derived for recent requests.
    pub signing_keys: SigningKeyCache,
    /// Run read-only operations on the async worker instead of the blocking pool: right when
    /// a read takes microseconds (the embedded store's page cache), wrong when it waits on a
    /// network round trip (PostgreSQL).
    pub inline_reads: bool,
    /// Request, duration and SendEmail counters.
    pub metrics: Arc<sesame_metrics::Metrics>,
    /// The request log, written off the request thread.
    pub access_log: crate::access_log::AccessLog,
    /// Entered on the thread that runs a request's work, left when the work is done: the
    /// server's store uses it so that one request's cached reads check for changes once.
    pub request_scope: Option<fn() -> Box<dyn std::any::Any>>,
}
