//! The server's background work: the key-zone snapshot that follows the store, the DNS
//! listeners, and the verifier loop that claims due identities, looks at their records and
//! hands the observations to the core.

use sesame_core::model::DkimStatus;
use sesame_core::ports::KeyZoneSource;
use sesame_core::verification::{CheckOutcome, Checks, DueCheck};
use sesame_dns::responder::{HostRecord, Snapshot, SnapshotHandle};
use sesame_dns::verifier::Verifier;
use sesame_metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the verifier looks for due identities when the last pass found none.
const VERIFY_TICK: Duration = Duration::from_millis(250);
/// Checks in flight at once (each is up to three DNS lookups and then one store write).
const VERIFY_IN_FLIGHT: usize = 256;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(f).await
}

/// The key zone's name and the records of its own it serves beside the keys.
#[derive(Debug, Clone)]
pub struct ZoneSpec {
    /// The zone (`--dkim-zone`), normalised.
    pub zone: String,
    /// The SPF domain's and the default MAIL FROM domain's records.
    pub hosts: Vec<HostRecord>,
}

/// Builds the zone from the store's published keys, with the sandbox's zones when there is
/// one.
pub async fn load_snapshot(
    store: Arc<dyn KeyZoneSource>,
    zone: ZoneSpec,
    sandbox: Option<Arc<crate::sandbox::Sandbox>>,
) -> anyhow::Result<(u64, Snapshot)> {
    let (generation, keys) = blocking(move || -> anyhow::Result<_> {
        // The generation first: a change racing with the read shows as a newer generation.
        let g = store.key_generation()?;
        Ok((g, store.published_keys()?))
    })
    .await??;
    let mut snapshot = Snapshot::build(&zone.zone, &keys, generation as u32)
        .and_then(|s| s.with_hosts(&zone.hosts))
        .map_err(|e| anyhow::anyhow!("building the key zone: {e}"))?;
    if let Some(sb) = sandbox {
        let zones = blocking(move || sb.zones()).await??;
        snapshot = snapshot.with_sandbox(zones);
    }
    Ok((generation, snapshot))
}

/// Keeps `handle` in step with the store until shutdown, asking every `poll` whether the keys
/// changed (a write shows within this). With a sandbox it rebuilds at every poll: its zones
/// follow every identity and override, and hold a developer's few identities.
pub async fn follow_store(
    store: Arc<dyn KeyZoneSource>,
    zone: ZoneSpec,
    handle: SnapshotHandle,
    mut generation: u64,
    poll: Duration,
    sandbox: Option<Arc<crate::sandbox::Sandbox>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(poll) => {}
        }
        let s = store.clone();
        let now = match blocking(move || s.key_generation()).await {
            Ok(Ok(g)) => g,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "key zone: cannot read the store");
                continue;
            }
            Err(_) => continue,
        };
        if now == generation && sandbox.is_none() {
            continue;
        }
        match load_snapshot(store.clone(), zone.clone(), sandbox.clone()).await {
            Ok((g, snapshot)) => {
                if g != generation {
                    tracing::debug!(generation = g, keys = snapshot.len(), "key zone refreshed");
                }
                handle.replace(snapshot);
                if let Some(sb) = &sandbox {
                    sb.mark_served();
                }
                generation = g;
            }
            Err(e) => tracing::warn!(error = %e, "key zone: refresh failed"),
        }
    }
}

/// A UDP socket on `addr` with SO_REUSEPORT, so several can share the port.
fn reuseport_udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(s.into())
}

/// Binds `sockets` UDP sockets and one TCP listener on the same address (for port 0: the port
/// the first UDP socket got).
///
/// hickory-server reads each UDP socket in one task, which caps a single socket at about one
/// core; several sockets on one port with SO_REUSEPORT let the kernel spread queries over all
/// cores, as NSD's `server-count` does. (SO_REUSEPORT lets only processes of the same user
/// join the port.)
pub async fn bind_dns(
    addr: SocketAddr,
    sockets: usize,
) -> anyhow::Result<(Vec<tokio::net::UdpSocket>, tokio::net::TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let first = reuseport_udp(addr)?;
        let bound = first.local_addr()?;
        match tokio::net::TcpListener::bind(bound).await {
            Ok(tcp) => {
                let mut udp = vec![first];
                for _ in 1..sockets.max(1) {
                    udp.push(reuseport_udp(bound)?);
                }
                return Ok((udp, tcp));
            }
            // With port 0 the UDP port may be taken for TCP by someone else: try another.
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(anyhow::anyhow!(
        "no port free for both UDP and TCP: {last:?}"
    ))
}

/// Serves the key zone on the bound sockets until shutdown.
pub async fn serve_dns(
    udp: Vec<tokio::net::UdpSocket>,
    tcp: tokio::net::TcpListener,
    zone: SnapshotHandle,
    rrl: sesame_dns::listener::RrlConfig,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    sesame_dns::listener::serve(udp, tcp, zone, rrl, metrics, shutdown).await;
    Ok(())
}

/// Claims due identities, observes their records and records the results, until shutdown.
///
/// A pipeline rather than batch-and-wait: up to `VERIFY_IN_FLIGHT` checks run at once, and
/// more are claimed as soon as half of them finished, so one slow lookup never idles the rest
/// (a sweep of many pending identities is bound by the resolver and the store, not by the
/// slowest answer of each batch). Results are written one identity at a time; concurrent
/// writes share commits in the store.
pub async fn verify_loop(
    service: Arc<Checks>,
    verifier: Arc<Verifier>,
    metrics: Arc<Metrics>,
    sandbox: Option<Arc<crate::sandbox::Sandbox>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    // When the store last had fewer due identities than asked for: no new claim before a tick.
    let mut idle_until = tokio::time::Instant::now();
    loop {
        let room = VERIFY_IN_FLIGHT - tasks.len();
        if room >= VERIFY_IN_FLIGHT / 2 && tokio::time::Instant::now() >= idle_until {
            let svc = service.clone();
            let due = match blocking(move || svc.claim_due_checks(room)).await {
                Ok(Ok(due)) => due,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "verifier: cannot claim work");
                    vec![]
                }
                Err(_) => vec![],
            };
            if due.len() < room {
                idle_until = tokio::time::Instant::now() + VERIFY_TICK;
            }
            // In the sandbox, the zones must hold the identities claimed (one created a moment
            // ago is served from the next rebuild), as a real zone would once published.
            if let Some(sb) = sandbox.as_ref().filter(|_| !due.is_empty()) {
                sb.caught_up().await;
            }
            for check in due {
                tasks.spawn(check_one(
                    service.clone(),
                    verifier.clone(),
                    metrics.clone(),
                    check,
                ));
            }
        }
        let wake = if tasks.is_empty() {
            idle_until
        } else {
            // Re-evaluate at the latest when the idle period ends.
            idle_until.max(tokio::time::Instant::now() + VERIFY_TICK)
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// The `outcome` label of a recorded check: the status it left, in the metric's lower case.
fn outcome_label(status: DkimStatus) -> &'static str {
    match status {
        DkimStatus::Pending => "pending",
        DkimStatus::Success => "success",
        DkimStatus::Failed => "failed",
        DkimStatus::TemporaryFailure => "temporary_failure",
        DkimStatus::NotStarted => "not_started",
    }
}

async fn check_one(
    service: Arc<Checks>,
    verifier: Arc<Verifier>,
    metrics: Arc<Metrics>,
    check: DueCheck,
) {
    let observation = verifier.observe(&check.records).await;
    let name = check.identity.name.to_string();
    let account = check.identity.account.as_str().to_owned();
    let result = blocking(move || service.record_check(check.identity, &observation)).await;
    metrics.verification_check(match &result {
        Ok(Ok(Some(outcome))) => outcome_label(outcome.dkim.1),
        Ok(Ok(None)) => "stale",
        _ => "error",
    });
    if let Ok(Ok(Some(CheckOutcome {
        mail_from: Some((from, to)),
        ..
    }))) = &result
        && from != to
    {
        tracing::info!(
            account,
            identity = name,
            ?from,
            ?to,
            "MAIL FROM status changed"
        );
    }
    match result {
        Ok(Ok(Some(CheckOutcome {
            dkim: (from, to), ..
        }))) if from != to => {
            tracing::info!(account, identity = name, ?from, ?to, "DKIM status changed")
        }
        Ok(Ok(_)) => tracing::debug!(account, identity = name, "checked"),
        Ok(Err(e)) => {
            tracing::warn!(account, identity = name, error = %e, "verifier: cannot record a check")
        }
        Err(e) => tracing::warn!(error = %e, "verifier task failed"),
    }
}

/// `IP` or `IP:PORT` (port 53 by default).
pub fn resolver_addr(s: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip: std::net::IpAddr = s
        .parse()
        .map_err(|_| anyhow::anyhow!("--resolver must be IP or IP:PORT, got {s:?}"))?;
    Ok(SocketAddr::new(ip, 53))
}
