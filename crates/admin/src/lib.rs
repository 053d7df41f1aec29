//! The admin listener, apart from the API: `GET /metrics` (Prometheus text), `GET /health/live`
//! and `GET /health/ready` for probes, and the web console under `/console/` for the people
//! who run Sesame. It reads through the core's use cases and the store's account port, like
//! the API; it never sees a private key or a secret (the console lists key ids only).
//!
//! - `probes`: `/metrics` and `/health/*`.
//! - `console::auth`: the admin token, sessions and CSRF tokens.
//! - `console::pages`: the console's handlers; `console::view`: its HTML.
//! - `links`: the pages a verification mail's link opens, which the server mounts on the API
//!   listener (not here: the person's browser reaches the public URL).
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod console;
pub mod links;
mod probes;

use sesame_core::app::UseCases;
use sesame_core::ports::AccountStore;
use sesame_dns::verifier::Verifier;
use sesame_metrics::Metrics;
use std::sync::Arc;

/// What the readiness probe and the metrics ask the node about itself.
pub trait NodeStatus: Send + Sync {
    /// Whether the store answers a read now (blocking; the probe bounds it with a deadline).
    fn store_answers(&self) -> Result<(), String>;
    /// Whether the key zone has a snapshot to serve.
    fn key_zone_loaded(&self) -> bool;
    /// Easy DKIM keys ready in the pool, by key length (`"1024"`, `"2048"`).
    fn key_pool(&self) -> Vec<(&'static str, usize)>;
}

/// Everything the admin listener shares between requests.
pub struct AdminState {
    pub(crate) use_cases: Arc<UseCases>,
    pub(crate) accounts: Arc<dyn AccountStore>,
    pub(crate) node: Arc<dyn NodeStatus>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) auth: console::Auth,
    /// Scrapes one at a time: the identity gauges are zeroed and refilled during one.
    pub(crate) scrape: tokio::sync::Mutex<()>,
}

impl AdminState {
    /// The admin state over a node's use cases, its store's accounts, its status, its metrics
    /// and its verifier (the console's "what the DNS shows now" asks the same resolver).
    pub fn new(
        use_cases: Arc<UseCases>,
        accounts: Arc<dyn AccountStore>,
        node: Arc<dyn NodeStatus>,
        metrics: Arc<Metrics>,
        verifier: Arc<Verifier>,
        auth: console::Auth,
    ) -> AdminState {
        AdminState {
            use_cases,
            accounts,
            node,
            metrics,
            verifier,
            auth,
            scrape: tokio::sync::Mutex::new(()),
        }
    }
}

/// The admin listener's routes.
pub fn app(state: Arc<AdminState>) -> axum::Router {
    probes::routes()
        .merge(console::routes())
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "not found\n") })
        .with_state(state)
}

/// Runs blocking store work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}
