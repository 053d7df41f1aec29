//! The publisher loop: for each DNS publisher, the records its identity needs now (what
//! `sesame dns-records` prints) against what it has published, through the core's rules
//! (`sesame_core::publishing`), carried out with RFC 2136 updates (`sesame_dns::update`).
//!
//! Every node runs it. Updates are idempotent (adding a record that is there, or removing one
//! that is not, changes nothing), and a state write names the version it was computed from,
//! so two nodes working on one publisher at once send the same update twice at worst and only
//! one records it.

use sesame_core::model::{
    AccountId, DomainName, IdentityName, PublishState, PublishedRecord, Publisher, Timestamp,
};
use sesame_core::ports::{Clock, Store};
use sesame_core::publishing::{self, Outcome};
use sesame_core::verification::{Checks, Purpose};
use sesame_crypto::seal::Sealer;
use sesame_dns::records::{RECORD_TTL, update_record};
use sesame_dns::update::{self, UpdateRecord, UpdateTarget};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What a TSIG secret is sealed for.
pub const TSIG_PURPOSE: &str = "sesame/tsig-secret/v1";

/// How long one exchange with a customer's server may take.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the loop needs.
pub struct PublisherLoop {
    pub store: Arc<dyn Store>,
    pub checks: Arc<Checks>,
    pub sealer: Sealer,
    pub clock: Arc<dyn Clock>,
    /// How long a DKIM record no longer needed stays (the key retention).
    pub retention_ms: i64,
    /// How often publishers are looked at.
    pub interval: Duration,
}

/// The records `publisher`'s identity needs now, as published; `None` when it is gone.
fn desired(
    store: &dyn Store,
    checks: &Checks,
    p: &Publisher,
) -> Result<Option<Vec<PublishedRecord>>, sesame_core::StoreError> {
    let name = IdentityName::Domain(p.domain.clone());
    let Some(identity) = store.get_identity(&p.account, &name)? else {
        return Ok(None);
    };
    let mut out: Vec<PublishedRecord> = checks
        .records_of(&identity)
        .iter()
        .filter_map(|r| {
            let u = update_record(r, p.byodkim)?;
            Some(PublishedRecord {
                name: u.name().to_owned(),
                rtype: u.rtype().to_owned(),
                value: u.value(),
                dkim: r.purpose() == Purpose::Dkim,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(Some(out))
}

fn update_of(r: &PublishedRecord) -> Option<UpdateRecord> {
    UpdateRecord::from_parts(&r.name, &r.rtype, &r.value)
}

/// The server as `HOST:PORT` (a name is resolved by the system, once per attempt).
fn server_addr(server: &str) -> Result<SocketAddr, String> {
    server
        .to_socket_addrs()
        .map_err(|e| format!("the server {server} cannot be resolved: {e}"))?
        .next()
        .ok_or_else(|| format!("the server {server} has no address"))
}

impl PublisherLoop {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        loop {
            let t = this.clone();
            match tokio::task::spawn_blocking(move || t.store.list_publishers()).await {
                Ok(Ok(publishers)) => {
                    for p in publishers {
                        this.clone().one(p).await;
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "publisher: cannot list publishers"),
                Err(_) => {}
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(this.interval) => {}
            }
        }
    }

    async fn one(self: Arc<Self>, p: Publisher) {
        let now = self.clock.now();
        let (t, q) = (self.clone(), p.clone());
        let wanted = match tokio::task::spawn_blocking(move || {
            desired(t.store.as_ref(), &t.checks, &q)
        })
        .await
        {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => {
                tracing::warn!(domain = %p.domain.as_str(), error = %e, "publisher: cannot read the identity");
                return;
            }
            Err(_) => return,
        };
        let (state, work) =
            publishing::advance(&p.state, wanted.as_deref(), now, self.retention_ms);
        let next = if publishing::due(&state, &work, now) {
            let outcome = self.attempt(&p, &work).await;
            match &outcome {
                Outcome::Applied { conflicts } => tracing::info!(
                    domain = %p.domain.as_str(),
                    added = work.add.len() - conflicts.len(),
                    removed = work.remove.len(),
                    conflicts = conflicts.len(),
                    "publisher: zone updated"
                ),
                Outcome::Failed(why) => tracing::warn!(
                    domain = %p.domain.as_str(),
                    server = %p.server,
                    error = %why,
                    "publisher: update refused"
                ),
            }
            publishing::settle(&state, &work, outcome, now)
        } else {
            state
        };
        if next != p.state {
            self.save(p.account, p.domain, p.version, next).await;
        }
    }

    async fn attempt(&self, p: &Publisher, work: &publishing::Work) -> Outcome {
        let secret = match self.sealer.open(TSIG_PURPOSE, &p.sealed_secret) {
            Ok(s) => s,
            Err(_) => return Outcome::Failed("the TSIG secret cannot be opened".into()),
        };
        let server = match server_addr(&p.server) {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(e),
        };
        let target = UpdateTarget {
            server,
            zone: p.zone.as_str().to_owned(),
            key_name: p.key_name.clone(),
            secret,
            timeout: UPDATE_TIMEOUT,
        };
        let adds: Vec<(PublishedRecord, UpdateRecord)> = work
            .add
            .iter()
            .filter_map(|r| Some((r.clone(), update_of(r)?)))
            .collect();
        let removes: Vec<UpdateRecord> = work.remove.iter().filter_map(update_of).collect();
        let run = async {
            let wanted: Vec<UpdateRecord> = adds.iter().map(|(_, u)| u.clone()).collect();
            let clashes = update::conflicts(&target, &wanted).await?;
            let clean: Vec<UpdateRecord> = wanted
                .into_iter()
                .filter(|u| !clashes.iter().any(|(c, _)| c == u))
                .collect();
            if !removes.is_empty() {
                update::remove(&target, &removes).await?;
            }
            if !clean.is_empty() {
                update::publish(&target, &clean, RECORD_TTL).await?;
            }
            Ok::<_, update::UpdateError>(clashes)
        };
        match run.await {
            Ok(clashes) => Outcome::Applied {
                conflicts: clashes
                    .into_iter()
                    .filter_map(|(u, there)| {
                        adds.iter()
                            .find(|(_, a)| *a == u)
                            .map(|(r, _)| (r.clone(), there))
                    })
                    .collect(),
            },
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    async fn save(&self, account: AccountId, domain: DomainName, version: u64, s: PublishState) {
        let store = self.store.clone();
        let d = domain.clone();
        match tokio::task::spawn_blocking(move || {
            store.save_publish_state(&account, &d, version, &s)
        })
        .await
        {
            // Another node, or the operator, wrote first: the next round starts from theirs.
            Ok(Ok(_))
            | Ok(Err(sesame_core::StoreError::Conflict | sesame_core::StoreError::NotFound)) => {}
            Ok(Err(e)) => {
                tracing::warn!(domain = %domain.as_str(), error = %e, "publisher: cannot record the result")
            }
            Err(_) => {}
        }
    }
}

/// The moment a state's times are shown in (Unix seconds), for the CLI.
pub fn secs(t: Option<Timestamp>) -> Option<i64> {
    t.map(|t| t.0 / 1000)
}
