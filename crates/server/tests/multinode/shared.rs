//! Two nodes over one database: what one writes the other reads, changes, deletes and serves in
//! its key zone; and the verifiers of both share a sweep of 500 checks, each identity checked
//! exactly once per sweep.

use crate::db::{Held, execute};
use crate::harness::rsa_key_b64;
use crate::timedns::{Answer, TimedDns};
use crate::{TestDb, byo, master_key, millis, node, within};
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_node_writes_another_reads_changes_deletes_and_serves() {
    let Some(db) = TestDb::create() else { return };
    let master = master_key();
    let env = [("SESAME_VERIFY_INTERVAL", "1h"), ("SESAME_RATE_LIMIT", "0")];
    let a = node(&db, "node_a", &master, &env);
    let b = node(&db, "node_b", &master, &env);
    assert_eq!(a.account, b.account, "one default account for both nodes");
    let (ca, cb) = (a.client(), b.client());

    // Written on A, read and changed on B, the change read on A.
    let created = ca
        .create_email_identity()
        .email_identity("shared.example.com")
        .send()
        .await
        .unwrap();
    let tokens = created.dkim_attributes().unwrap().tokens().to_vec();
    assert_eq!(tokens.len(), 3);
    let got = cb
        .get_email_identity()
        .email_identity("shared.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(got.dkim_attributes().unwrap().tokens(), tokens.as_slice());
    assert!(got.feedback_forwarding_status());
    cb.put_email_identity_feedback_attributes()
        .email_identity("shared.example.com")
        .email_forwarding_enabled(false)
        .send()
        .await
        .unwrap();
    let got = ca
        .get_email_identity()
        .email_identity("shared.example.com")
        .send()
        .await
        .unwrap();
    assert!(!got.feedback_forwarding_status());

    // B's key zone was built before A created the keys: it serves them once it has followed
    // the store's key generation. How soon is a benchmark's question (BENCHMARKS.md); here the
    // deadline only bounds the test.
    let resolver = {
        use hickory_resolver::config::{NameServerConfig, ResolverConfig};
        let mut nsc = NameServerConfig::udp_and_tcp(b.dns.ip());
        for c in nsc.connections.iter_mut() {
            c.port = b.dns.port();
        }
        let mut builder = hickory_resolver::Resolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![nsc]),
            hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
        );
        builder.options_mut().cache_size = 0;
        builder.build().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for t in &tokens {
        let name = format!("{t}.dkim.sesame.internal.");
        loop {
            if resolver.txt_lookup(name.as_str()).await.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node B never served {name}, written through node A"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    cb.delete_email_identity()
        .email_identity("shared.example.com")
        .send()
        .await
        .unwrap();
    let e = ca
        .get_email_identity()
        .email_identity("shared.example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"));
}

/// The verifier keeps up to this many checks in flight (`VERIFY_IN_FLIGHT` in
/// `crates/server/src/background.rs`), and claims at most that many at once.
const IN_FLIGHT: usize = 256;

/// 500 identities, each node with its own resolver, so every check is counted at the node that
/// made it. Two sweeps: the first while the identities are being created (through both nodes),
/// the second with all 500 due at the same instant.
///
/// The split is asserted on the second sweep, where it is decided by the verifier's design and
/// not by luck: every answer takes 1 s, four of the 250 ms idle ticks of a verifier. The first
/// node to claim takes at most 256 (its in-flight cap) and cannot claim again until half of
/// those are answered, a second later; the other node's next tick comes within 250 ms and
/// takes the remaining 244 or more. So each node does about half; the assertion asks for 10 %
/// (50), which fails only if a node claims more than 450 at once (a broken cap) or claims
/// nothing at all, and leaves a node three quarters of a second of scheduling slack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_verifiers_share_the_checks_and_check_each_identity_once() {
    let Some(db) = TestDb::create() else { return };
    let master = master_key();
    let answer = Answer::NxDomainAfter(Duration::from_secs(1));
    let (dns_a, dns_b) = (TimedDns::start(answer), TimedDns::start(answer));
    let (ra, rb) = (dns_a.addr.to_string(), dns_b.addr.to_string());
    // A long first backoff step: an identity checked once is not due again for an hour.
    let env = |resolver| {
        [
            ("SESAME_RESOLVER", resolver),
            ("SESAME_VERIFY_INTERVAL", "1h"),
            ("SESAME_RATE_LIMIT", "0"),
        ]
    };
    let (ea, eb) = (env(ra.as_str()), env(rb.as_str()));
    let a = node(&db, "node_a", &master, &ea);
    let b = node(&db, "node_b", &master, &eb);
    let (ca, cb) = (a.client(), b.client());

    let key = rsa_key_b64(1024, false);
    let n: usize = 500;
    let mut tasks = Vec::new();
    for i in 0..n {
        let c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            c.create_email_identity()
                .email_identity(format!("d{i:03}.example.org"))
                .dkim_signing_attributes(byo(&key))
                .send()
                .await
                .unwrap();
        }));
    }
    within("creating 500 identities", 120, async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await;
    let names: Vec<String> = (0..n)
        .map(|i| format!("s1._domainkey.d{i:03}.example.org."))
        .collect();

    // Sweep 1: every identity's check recorded (and its lease ended by that write).
    tokio::task::block_in_place(|| {
        db.wait_for(
            "the first sweep recorded for all 500 identities",
            60,
            || {
                db.count(
                    "SELECT count(*) FROM identities \
                 WHERE v_last_checked IS NOT NULL AND v_lease_until IS NULL",
                ) == n as i64
            },
        )
    });

    // Sweep 2: all due at once, as when the re-checks of many identities fall due together.
    let second = SystemTime::now();
    execute(
        &db.url,
        // `due_at` is what claims read: the earliest of the identity's schedules.
        "UPDATE identities SET v_next_check_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint, \
         due_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
            .into(),
    );
    let second_ms = millis(second);
    tokio::task::block_in_place(|| {
        db.wait_for(
            "the second sweep recorded for all 500 identities",
            60,
            || {
                db.count(&format!(
                    "SELECT count(*) FROM identities \
                 WHERE v_last_checked >= {second_ms} AND v_lease_until IS NULL"
                )) == n as i64
            },
        );
        // Before counting, both verifier loops must have come round to a further claim, so a
        // duplicate claimed late is counted too: with the table locked against claims (not
        // against plain reads), wait until each node's claim is seen waiting for it.
        let held = Held::take(
            &db.url_as("holder"),
            "BEGIN; LOCK TABLE identities IN EXCLUSIVE MODE",
            Some("COMMIT"),
        );
        for app in ["node_a", "node_b"] {
            db.wait_for(&format!("a further claim by {app}"), 30, || {
                db.sessions_where(&format!(
                    "application_name = '{app}' AND wait_event_type = 'Lock' \
                     AND query LIKE '%SKIP LOCKED%'"
                )) >= 1
            });
        }
        held.release();
    });

    let split = |counts: &HashMap<String, usize>| -> usize {
        names
            .iter()
            .map(|q| counts.get(q).copied().unwrap_or(0))
            .sum()
    };
    let all_a = dns_a.counts_since(SystemTime::UNIX_EPOCH);
    let all_b = dns_b.counts_since(SystemTime::UNIX_EPOCH);
    let late_a = dns_a.counts_since(second);
    let late_b = dns_b.counts_since(second);
    let mut wrong = Vec::new();
    for q in &names {
        let get = |m: &HashMap<String, usize>| m.get(q).copied().unwrap_or(0);
        let (total, late) = (get(&all_a) + get(&all_b), get(&late_a) + get(&late_b));
        // Once in the first sweep, once in the second.
        if (total - late, late) != (1, 1) {
            wrong.push(format!("{q}: {} then {late}", total - late));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} identities were not checked exactly once per sweep, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let (by_a, by_b) = (split(&late_a), split(&late_b));
    assert_eq!(by_a + by_b, n);
    assert!(
        by_a >= n / 10 && by_b >= n / 10,
        "the second sweep was not shared: node A checked {by_a}, node B {by_b} (at most \
         {IN_FLIGHT} claimed at once by one node)"
    );
    eprintln!(
        "sweep of {n}: node A checked {by_a}, node B {by_b}; first sweep A {}, B {}",
        split(&all_a) - by_a,
        split(&all_b) - by_b
    );
    drop((a, b));
}
