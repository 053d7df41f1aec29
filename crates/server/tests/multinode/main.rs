//! The multi-node test binary: several `sesame` processes over one PostgreSQL database (a fresh
//! one per test). What one node writes another reads, changes and serves; the verifiers of two
//! nodes share the checks and check each identity once; a node killed mid-check has its leased
//! work finished by another only once the leases end; a database outage answers 503 and heals
//! without a restart; a node never opens more than its pool's 16 connections; the identity
//! quota holds under concurrent creates on two nodes; migrations run once, from `sesame migrate`
//! or from nodes starting together.
//!
//! Every test needs `DATABASE_URL` (`scripts/test` sets it, and `SESAME_REQUIRE_POSTGRES=1`,
//! under which a missing database is a failure, not a skip). Each node gets its own resolver
//! (`timedns`), so what it checked is counted at the DNS, not read from its log.

#[path = "../it/fakedns.rs"]
#[allow(dead_code)]
mod fakedns;
#[path = "../it/harness.rs"]
#[allow(dead_code)]
mod harness;

mod db;
mod timedns;

#[path = "../it/scrape.rs"]
#[allow(dead_code)]
mod scrape;

mod lease;
mod metrics;
mod migrate;
mod outage;
mod pool;
mod quota;
mod shared;

use db::TestDb;
use harness::Server;
use std::time::{Duration, SystemTime};

/// A node and the data directory it lives in (the server is stopped before the directory goes).
pub struct Node {
    pub server: Server,
    _dir: tempfile::TempDir,
}

impl Node {
    /// The harness's client, with every call bounded in time.
    pub fn client(&self) -> aws_sdk_sesv2::Client {
        sdk_client(self.server.api, true)
    }
}

impl std::ops::Deref for Node {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}

/// Starts a node on `db`, named `app` in `pg_stat_activity`, with the shared master key (every
/// node must open what another sealed) and `env` on top.
pub fn node(db: &TestDb, app: &str, master: &str, env: &[(&str, &str)]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let url = db.url_as(app);
    let mut all = vec![
        ("SESAME_DATABASE_URL", url.as_str()),
        ("SESAME_MASTER_KEY", master),
    ];
    all.extend_from_slice(env);
    Node {
        server: Server::start_in(dir.path(), &all),
        _dir: dir,
    }
}

pub fn master_key() -> String {
    sesame_crypto::MasterKey::generate().unwrap().to_base64()
}

/// Milliseconds since the epoch, the unit of the store's timestamps.
pub fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Bounds one await: a node that stops answering fails the test instead of hanging it.
pub async fn within<T>(what: &str, secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {secs} s"))
}

/// An SDK client for `api` whose every call ends within 60 s, retried as the SDK does by
/// default or (`retries: false`) tried once, so the test sees every failure.
pub fn sdk_client(api: std::net::SocketAddr, retries: bool) -> aws_sdk_sesv2::Client {
    let mut conf = aws_sdk_sesv2::Config::builder()
        .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
        .region(aws_sdk_sesv2::config::Region::new(harness::REGION))
        .endpoint_url(format!("http://{api}"))
        .credentials_provider(aws_sdk_sesv2::config::Credentials::new(
            harness::KEY_ID,
            harness::SECRET,
            None,
            None,
            "multinode",
        ))
        .timeout_config(
            aws_sdk_sesv2::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .http_client(aws_smithy_http_client::Builder::new().build_http());
    if !retries {
        conf = conf.retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled());
    }
    aws_sdk_sesv2::Client::from_conf(conf.build())
}

/// BYODKIM attributes under selector `s1`: importing a key is cheap, and the verifier then
/// asks exactly one question per check (`s1._domainkey.<domain>` TXT).
pub fn byo(key: &str) -> aws_sdk_sesv2::types::DkimSigningAttributes {
    aws_sdk_sesv2::types::DkimSigningAttributes::builder()
        .domain_signing_selector("s1")
        .domain_signing_private_key(key)
        .build()
}
