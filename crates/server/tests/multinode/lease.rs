//! A node that dies holding verification leases: another node leaves that work alone while the
//! leases are live, and does all of it once they end.

use crate::db::with_client;
use crate::harness::rsa_key_b64;
use crate::timedns::{Answer, TimedDns};
use crate::{TestDb, byo, master_key, millis, node, within};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

/// Node A claims 20 checks and asks a resolver that never answers, so it holds all 20 leases
/// (15 s) with each lookup waiting for its 3 s timeout; it is killed (`kill -9`) then. Node B
/// starts while the leases are live; it must not ask about any of the identities before its
/// lease (read from the database) ends, and then checks each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_holding_leases_has_its_work_taken_over_only_once_they_end() {
    let Some(db) = TestDb::create() else { return };
    let master = master_key();
    let silent = TimedDns::start(Answer::Silent);
    let silent_addr = silent.addr.to_string();
    let lease = [
        ("SESAME_VERIFY_LEASE", "15s"),
        ("SESAME_VERIFY_INTERVAL", "1h"),
        ("SESAME_RATE_LIMIT", "0"),
    ];
    let mut env_a = vec![("SESAME_RESOLVER", silent_addr.as_str())];
    env_a.extend_from_slice(&lease);
    let mut a = node(&db, "node_a", &master, &env_a);

    let n = 20;
    let names: Vec<String> = (0..n).map(|i| format!("k{i:02}.example.net")).collect();
    let question = |name: &str| format!("s1._domainkey.{name}.");
    let key = rsa_key_b64(1024, false);
    let c = a.client();
    let creates: Vec<_> = names
        .iter()
        .map(|name| {
            let (c, key, name) = (c.clone(), key.clone(), name.clone());
            tokio::spawn(async move {
                c.create_email_identity()
                    .email_identity(name)
                    .dkim_signing_attributes(byo(&key))
                    .send()
                    .await
                    .unwrap();
            })
        })
        .collect();
    within("creating the identities on node A", 60, async {
        for t in creates {
            t.await.unwrap();
        }
    })
    .await;

    // A asks about an identity only after claiming it: once all 20 questions arrived, A holds
    // every lease. Kill it before its first lookup times out and records a result.
    tokio::task::block_in_place(|| {
        db.wait_for("node A asking about all 20 identities", 30, || {
            let asked: Vec<String> = silent.lookups().into_iter().map(|(q, _)| q).collect();
            names.iter().all(|n| asked.contains(&question(n)))
        })
    });
    a.kill9();

    let rows = with_client(&db.url, |c| {
        c.query(
            "SELECT name, v_lease_until, v_last_checked FROM identities ORDER BY name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, Option<i64>>(1),
                r.get::<_, Option<i64>>(2),
            )
        })
        .collect::<Vec<_>>()
    });
    let now = millis(SystemTime::now());
    assert_eq!(rows.len(), n);
    let mut lease_end = HashMap::new();
    for (name, until, checked) in &rows {
        assert_eq!(
            *checked, None,
            "{name}: node A recorded a check before it was killed (its lookups time out after \
             3 s; the machine was too slow to show a held lease)"
        );
        let until = until.unwrap_or_else(|| panic!("{name}: node A holds no lease on it"));
        assert!(
            until > now,
            "{name}: A's lease ended already ({until} <= {now})"
        );
        lease_end.insert(question(name), until);
    }
    let first_end = *lease_end.values().min().unwrap();
    let last_end = *lease_end.values().max().unwrap();
    let asked_by_a = silent.counts_since(SystemTime::UNIX_EPOCH);
    for q in lease_end.keys() {
        assert_eq!(asked_by_a.get(q), Some(&1), "node A asked about {q} once");
    }

    let dns_b = TimedDns::start(Answer::NxDomainAfter(Duration::ZERO));
    let b_addr = dns_b.addr.to_string();
    let mut env_b = vec![("SESAME_RESOLVER", b_addr.as_str())];
    env_b.extend_from_slice(&lease);
    let b = node(&db, "node_b", &master, &env_b);
    let b_up = millis(SystemTime::now());
    assert!(
        b_up < first_end,
        "node B came up at {b_up}, after the first lease ended ({first_end}): the test cannot \
         show that B waits for it"
    );

    // B's verifier ticks every 250 ms from now on; it may take over each identity only once its
    // lease has ended.
    let wait = Duration::from_millis((last_end - b_up).max(0) as u64) + Duration::from_secs(30);
    let deadline = Instant::now() + wait;
    loop {
        let done = db.count("SELECT count(*) FROM identities WHERE v_last_checked IS NOT NULL");
        if done == n as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {n} identities were checked after node A died"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut first_by_b: HashMap<String, Vec<i64>> = HashMap::new();
    for (q, at) in dns_b.lookups() {
        first_by_b.entry(q).or_default().push(millis(at));
    }
    for (q, end) in &lease_end {
        let asked = first_by_b.get(q).cloned().unwrap_or_default();
        assert_eq!(asked.len(), 1, "node B asked about {q} once: {asked:?}");
        assert!(
            asked[0] >= *end,
            "node B asked about {q} at {}, {} ms before node A's lease on it ended ({end})",
            asked[0],
            end - asked[0]
        );
    }
    let c = b.client();
    for name in &names {
        let got = c
            .get_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap();
        let info = got.verification_info().unwrap();
        assert!(info.last_checked_timestamp().is_some(), "{name}");
        assert_eq!(
            info.error_type().map(|e| e.as_str()),
            Some("HOST_NOT_FOUND"),
            "{name}: B's resolver answered NXDOMAIN"
        );
    }
}
