//! Crash trials: the real `sesame` binary is killed with `kill -9` at a random moment while
//! clients write through `aws-sdk-sesv2`, while its verifier sweeps many due identities, and
//! while `sesame rotate` stages keys; restarted on the same data dir, it must show every
//! acknowledged write, nothing half-applied, and only complete, verifiable outbox messages.
//!
//! The trials share one data dir, so each one also starts from what the previous crash left.
//! The seed is printed; `SESAME_CRASH_SEED=<seed>` replays its choices (not the timing) and
//! `SESAME_CRASH_TRIALS=<n>` sets the number of trials.

#[allow(dead_code)]
#[path = "../it/fakedns.rs"]
mod fakedns;
#[allow(dead_code)]
#[path = "../it/forwarddns.rs"]
mod forwarddns;
#[allow(dead_code)]
#[path = "../it/harness.rs"]
mod harness;

mod check;
mod customerdns;
mod load;

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::DkimStatus;
use customerdns::CustomerDns;
use harness::Server;
use load::{ByoKey, Ledger, Load};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// SplitMix64: small, seedable, good enough to pick operations and moments.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent` %.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Concurrent identity, DKIM, tag and delete writes, and SendEmail.
    Mixed,
    /// The verifier checking a batch of identities all due at the start, while tags change.
    Sweep,
    /// `sesame rotate` on the same data dir, the verifier activating staged keys, SendEmail.
    Rotation,
}

const ZONE: &str = "dkim.sesame.internal";
/// `--rotation-delay` of every server here, in ms.
pub const ROTATION_DELAY_MS: i64 = 300;
const SWEEP: usize = 150;
const SENDERS: [&str; 2] = ["send-easy.send.test", "send-byo.send.test"];

fn client(api: std::net::SocketAddr) -> Client {
    use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
    // One attempt per call: a retry after the kill would blur what was acknowledged.
    let conf = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(harness::REGION))
        .endpoint_url(format!("http://{api}"))
        .credentials_provider(Credentials::new(
            harness::KEY_ID,
            harness::SECRET,
            None,
            None,
            "crash",
        ))
        .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_sesv2::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(conf)
}

fn start(dir: &Path, resolver: &str, rotate_every: bool) -> Server {
    let mut env = vec![
        ("SESAME_RESOLVER", resolver),
        ("SESAME_VERIFY_INTERVAL", "300ms"),
        ("SESAME_VERIFY_LEASE", "2s"),
        ("SESAME_ROTATION_DELAY", "300ms"),
        ("SESAME_RATE_LIMIT", "0"),
        ("SESAME_LOG", "info,hickory_server=warn"),
    ];
    if rotate_every {
        env.push(("SESAME_ROTATE_EVERY", "1s"));
    }
    Server::start_in(dir, &env)
}

/// Polls until every identity of `names` has DKIM status SUCCESS; returns the ones that never
/// got there.
async fn wait_success(c: &Client, names: &[String], limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut left: Vec<String> = names.to_vec();
    loop {
        let mut still = Vec::new();
        for n in &left {
            let ok = c
                .get_email_identity()
                .email_identity(n)
                .send()
                .await
                .ok()
                .and_then(|g| g.dkim_attributes().and_then(|d| d.status().cloned()))
                == Some(DkimStatus::Success);
            if !ok {
                still.push(n.clone());
            }
        }
        if still.is_empty() || Instant::now() > deadline {
            return still;
        }
        left = still;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many sweep identities the killed server had recorded as SUCCESS for this trial's
/// selector (read from the database with no server running).
fn sweep_done(dir: &Path, account: &str, selector: &str) -> usize {
    use sesame_core::ports::IdentityStore;
    let store = sesame_store::SqliteStore::open(&dir.join("sesame.db")).unwrap();
    let account = sesame_core::model::AccountId::parse(account).unwrap();
    (0..SWEEP)
        .filter(|i| {
            let name =
                sesame_core::model::IdentityName::parse(&format!("sw{i}.sweep.test")).unwrap();
            store
                .get_identity(&account, &name)
                .unwrap()
                .filter(|id| id.verification_status == sesame_core::model::DkimStatus::Success)
                .and_then(|id| id.dkim)
                .is_some_and(|d| {
                    matches!(&d.origin, sesame_core::model::DkimOrigin::External { selector: s } if s.as_str() == selector)
                })
        })
        .count()
}

/// How many of `names` show a rotation in the database (a staged key or a retired one), read
/// with no server running.
fn rotated(dir: &Path, account: &str, names: &[String]) -> usize {
    use sesame_core::ports::IdentityStore;
    if names.is_empty() {
        return 0;
    }
    let store = sesame_store::SqliteStore::open(&dir.join("sesame.db")).unwrap();
    let account = sesame_core::model::AccountId::parse(account).unwrap();
    names
        .iter()
        .filter(|n| {
            let name = sesame_core::model::IdentityName::parse(n).unwrap();
            store
                .get_identity(&account, &name)
                .unwrap()
                .and_then(|id| id.dkim)
                .is_some_and(|d| {
                    d.keys.slots().any(|(_, s)| {
                        matches!(
                            s,
                            sesame_core::model::SlotState::Staged
                                | sesame_core::model::SlotState::Retired(_)
                        )
                    })
                })
        })
        .count()
}

#[derive(Debug, Default)]
struct Totals {
    trials: u64,
    acked: u64,
    cut_off: u64,
    identities: u64,
    lost: u64,
    half: u64,
    outbox_checked: u64,
    outbox_verified: u64,
    temp_files: u64,
    keys_served: u64,
    ops: std::collections::BTreeMap<String, u64>,
    attempts: std::collections::BTreeMap<String, u64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_at_random_moments() {
    let seed = std::env::var("SESAME_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let trials: usize = std::env::var("SESAME_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(18);
    harness::say(&format!(
        "crash trials: seed {seed} (SESAME_CRASH_SEED={seed} replays its choices), {trials} trials"
    ));
    let began = Instant::now();
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let customers = Arc::new(CustomerDns::start(ZONE));
    let resolver = customers.addr.to_string();
    let keys: Arc<Vec<ByoKey>> = Arc::new(
        tokio::task::spawn_blocking(|| load::make_keys(12, 2))
            .await
            .unwrap(),
    );
    let sweep_key = keys[0].clone();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let selectors = Arc::new(AtomicU64::new(0));
    let mut outbox_seen = BTreeSet::new();
    let mut known_tokens = BTreeSet::new();
    let mut totals = Totals::default();
    let mut problems: Vec<String> = Vec::new();
    let sweep_names: Vec<String> = (0..SWEEP).map(|i| format!("sw{i}.sweep.test")).collect();

    for trial in 0..trials {
        let kind = [Kind::Mixed, Kind::Sweep, Kind::Rotation][trial % 3];
        let trial_seed = rng.next_u64();
        let mut trng = Rng::new(trial_seed);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut server = start(dir.path(), &resolver, false);
        let mut load = Load {
            client: client(server.api),
            arn_prefix: format!(
                "arn:aws:ses:{}:{}:identity/",
                harness::REGION,
                server.account
            ),
            ledger: ledger.clone(),
            keys: keys.clone(),
            dns: customers.clone(),
            selectors: selectors.clone(),
            data_dir: dir.path().to_owned(),
            stop: stop_rx.clone(),
        };

        // Set-up, never interrupted.
        if trial == 0 {
            assert!(load.create_easy(SENDERS[0], None, &[]).await);
            customers.publish_key("byo1", SENDERS[1], &keys[1].public_der);
            assert!(load.create_byo(SENDERS[1], "byo1", &keys[1], &[]).await);
            let names: Vec<String> = SENDERS.iter().map(|s| s.to_string()).collect();
            let never = wait_success(&load.client, &names, Duration::from_secs(60)).await;
            assert!(never.is_empty(), "senders never verified: {never:?}");
        }
        let mut senders: Vec<String> = SENDERS.iter().map(|s| s.to_string()).collect();
        let mut rot_domains = Vec::new();
        let mut auto_domains: Vec<String> = Vec::new();
        let selector = format!("p{trial}");
        match kind {
            Kind::Mixed => {}
            Kind::Sweep => {
                // Point every sweep identity at a selector the DNS does not show yet: each is
                // checked, found missing and rescheduled; the server then dies, the records
                // appear, and the next server starts with all of them due at once.
                let mut set = tokio::task::JoinSet::new();
                for chunk in sweep_names.chunks(SWEEP.div_ceil(8)) {
                    let (load, chunk, sel, key) = (
                        load.clone(),
                        chunk.to_vec(),
                        selector.clone(),
                        sweep_key.clone(),
                    );
                    set.spawn(async move {
                        for n in chunk {
                            let cur = load.ledger.lock().unwrap().ack_state(&n);
                            let ok = match cur {
                                None => load.create_byo(&n, &sel, &key, &[]).await,
                                Some(cur) => load.switch_to_byo(&n, &cur, &sel, &key).await,
                            };
                            assert!(ok, "sweep set-up of {n}");
                        }
                    });
                }
                while let Some(r) = set.join_next().await {
                    r.unwrap();
                }
                server.kill9();
                for n in &sweep_names {
                    customers.publish_key(&selector, n, &sweep_key.public_der);
                }
                // Pacing, not synchronisation: the rescheduled checks (first backoff step
                // 500 ms) come due, so the next server finds them all due at once. No check
                // below depends on it.
                tokio::time::sleep(Duration::from_millis(700)).await;
                customers.set_max_delay(400);
                server = start(dir.path(), &resolver, false);
                load.client = client(server.api);
            }
            Kind::Rotation => {
                drop(server);
                server = start(dir.path(), &resolver, true);
                load.client = client(server.api);
                // `--rotate-every 1s` stages a key at a successful check once the signing key
                // is a second old: these domains' records appear only when the load starts.
                auto_domains = (0..3).map(|j| format!("a{trial}-{j}.rot.test")).collect();
                let created = Instant::now();
                for d in &auto_domains {
                    customers.withhold(d, true);
                    assert!(load.create_easy(d, Some(load::LEN_1024), &[]).await);
                }
                rot_domains = (0..3).map(|j| format!("r{trial}-{j}.rot.test")).collect();
                for d in &rot_domains {
                    assert!(load.create_easy(d, Some(load::LEN_1024), &[]).await);
                }
                let never = wait_success(&load.client, &rot_domains, Duration::from_secs(60)).await;
                assert!(never.is_empty(), "never verified: {never:?}");
                senders.extend(rot_domains.iter().cloned());
                let old = Duration::from_millis(1100);
                tokio::time::sleep(old.saturating_sub(created.elapsed())).await;
                for d in &auto_domains {
                    customers.withhold(d, false);
                }
            }
        }
        {
            let mut l = ledger.lock().unwrap();
            problems.extend(
                std::mem::take(&mut l.surprises)
                    .into_iter()
                    .map(|s| format!("trial {trial} set-up: {s}")),
            );
        }

        // The load, and the kill at a random moment of it.
        let mut tasks = tokio::task::JoinSet::new();
        let churners = if kind == Kind::Mixed { 7 } else { 2 };
        for w in 0..churners {
            let mut names: Vec<String> = (0..6).map(|i| format!("c{w}-{i}.churn.test")).collect();
            names.extend((0..2).map(|i| format!("u{i}@c{w}-0.churn.test")));
            tasks.spawn(load.clone().churn(names, Rng::new(trng.next_u64()), true));
        }
        if kind == Kind::Sweep {
            for half in sweep_names.chunks(SWEEP / 2) {
                tasks.spawn(
                    load.clone()
                        .churn(half.to_vec(), Rng::new(trng.next_u64()), false),
                );
            }
        }
        let send_workers = if kind == Kind::Rotation { 2 } else { 1 };
        for w in 0..send_workers {
            tasks.spawn(
                load.clone()
                    .send(senders.clone(), w, Rng::new(trng.next_u64())),
            );
        }
        if kind == Kind::Rotation {
            tasks.spawn(
                load.clone()
                    .rotate(rot_domains.clone(), Rng::new(trng.next_u64())),
            );
        }
        let delay_ms = match kind {
            Kind::Sweep => 20 + trng.below(700),
            _ => 600 + trng.below(3000),
        };
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        // Workers stop starting requests; the ones in flight meet the kill (as does a
        // `sesame rotate` still running).
        stop_tx.send(true).unwrap();
        server.kill9();
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        customers.set_max_delay(0);
        let auto_rotated = rotated(dir.path(), &server.account, &auto_domains);
        let swept =
            (kind == Kind::Sweep).then(|| sweep_done(dir.path(), &server.account, &selector));

        // Restart on the same data dir and check.
        let restarted = start(dir.path(), &resolver, false);
        assert_eq!(restarted.account, server.account);
        let c = client(restarted.api);
        let mut taken = std::mem::take(&mut *ledger.lock().unwrap());
        let (acked, cut_off) = (taken.acked, taken.cut_off);
        let cli_killed = std::mem::take(&mut taken.cli_killed);
        let (sends, rotations) = (taken.sends.len(), taken.rotations.len());
        let refused = format!(
            "{} {:?}",
            taken.refused,
            std::mem::take(&mut taken.refusals)
        );
        for (op, n) in std::mem::take(&mut taken.ops) {
            *totals.ops.entry(op).or_default() += n;
        }
        for (op, n) in std::mem::take(&mut taken.attempts) {
            *totals.attempts.entry(op).or_default() += n;
        }
        let report = check::check(
            &restarted,
            &c,
            &mut taken,
            &mut outbox_seen,
            &mut known_tokens,
            customers.addr,
        )
        .await;
        let surprises = std::mem::take(&mut taken.surprises);
        taken.acked = 0;
        taken.cut_off = 0;
        taken.refused = 0;
        *ledger.lock().unwrap() = taken;
        let mut extra = String::new();
        if let Some(done) = swept {
            // A restart loses no schedule: every sweep identity still reaches SUCCESS.
            let never = wait_success(&c, &sweep_names, Duration::from_secs(60)).await;
            if !never.is_empty() {
                problems.push(format!(
                    "trial {trial} (seed {trial_seed}): {} sweep identities never verified after the restart: {:?}",
                    never.len(),
                    never
                ));
            }
            extra = format!(", sweep {done}/{SWEEP} verified before the kill");
        }
        if kind == Kind::Rotation {
            extra = format!(
                ", --rotate-every staged a key on {auto_rotated}/{} domains before the kill, {cli_killed} sesame rotate killed alone",
                auto_domains.len()
            );
        }
        harness::say(&format!(
            "trial {trial} {kind:?} (seed {trial_seed}): kill -9 after {delay_ms} ms; acknowledged {acked} ({sends} SendEmail, {rotations} rotate), cut off {cut_off}, refused {refused}; {} identities, {} keys served, outbox +{} ({} verified, {} temp files){extra}; lost {}, half-applied {}",
            report.identities,
            report.keys_served,
            report.outbox_checked,
            report.outbox_verified,
            report.temp_files,
            report.lost.len(),
            report.half.len(),
        ));
        for (what, list) in [
            ("LOST", &report.lost),
            ("HALF-APPLIED", &report.half),
            ("SURPRISE", &surprises),
        ] {
            for p in list {
                problems.push(format!(
                    "trial {trial} {kind:?} (seed {trial_seed}) {what}: {p}"
                ));
            }
        }
        totals.trials += 1;
        totals.acked += acked;
        totals.cut_off += cut_off;
        totals.identities += report.identities;
        totals.lost += report.lost.len() as u64;
        totals.half += report.half.len() as u64;
        totals.outbox_checked += report.outbox_checked;
        totals.outbox_verified += report.outbox_verified;
        totals.temp_files = report.temp_files;
        totals.keys_served += report.keys_served;
        drop(restarted);
    }
    harness::say(&format!(
        "crash totals: {} trials (seed {seed}), {} acknowledged writes checked, {} cut off by a kill (outcome either way), lost {}, half-applied {}, {} identity checks, {} key-zone keys served, outbox messages checked {} / verified {} ({} temp files left), {:.0} s",
        totals.trials,
        totals.acked,
        totals.cut_off,
        totals.lost,
        totals.half,
        totals.identities,
        totals.keys_served,
        totals.outbox_checked,
        totals.outbox_verified,
        totals.temp_files,
        began.elapsed().as_secs_f64(),
    ));
    harness::say(&format!(
        "crash: acknowledged writes by operation: {:?}; identity writes sent: {:?}",
        totals.ops, totals.attempts
    ));
    assert!(
        problems.is_empty(),
        "{} problems (seed {seed}):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
