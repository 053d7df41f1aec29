//! A node's PostgreSQL pool holds at most 16 connections (`MAX_CONNECTIONS` in
//! `crates/store/src/postgres/mod.rs`): under a load that wants 64 at once the node opens 16, the
//! other requests wait for one, and the load completes.

use crate::db::{Held, with_client};
use crate::{TestDb, master_key, node, within};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

const CAP: i64 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_never_opens_more_than_16_connections_and_its_load_completes() {
    let Some(db) = TestDb::create() else { return };
    let master = master_key();
    let node = node(&db, "sesame_node", &master, &[("SESAME_RATE_LIMIT", "0")]);

    // Counts the node's sessions in the database every few milliseconds, from before the load
    // until after it.
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (stop, most) = (stop.clone(), most.clone());
        let (admin, name) = (db.admin.clone(), db.name.clone());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            let count = c
                .prepare(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = $1 AND application_name = 'sesame_node'",
                )
                .unwrap();
            let mut samples = 0u64;
            while !stop.load(Ordering::Acquire) {
                let n: i64 = c.query_one(&count, &[&name]).unwrap().get(0);
                most.fetch_max(n, Ordering::AcqRel);
                samples += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            samples
        })
    };

    // The test holds the account's creation lock, so every create keeps its connection while it
    // waits: 64 creates want 64 connections at once.
    let account = node.account.clone();
    let held = Held::take(
        &db.url_as("holder"),
        &format!("SELECT pg_advisory_lock(hashtext('{account}'))"),
        Some("SELECT pg_advisory_unlock_all()"),
    );
    let c = node.client();
    let n = 64;
    let creates: Vec<_> = (0..n)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                c.create_email_identity()
                    .email_identity(format!("p{i:02}@example.com"))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}"))
            })
        })
        .collect();
    tokio::task::block_in_place(|| {
        db.wait_for(
            "the pool's connections all waiting in creates for the account lock",
            30,
            || {
                db.sessions_where(
                    "application_name = 'sesame_node' AND wait_event_type = 'Lock' \
                     AND wait_event = 'advisory'",
                ) >= CAP
            },
        )
    });
    held.release();
    let results = within("the 64 creates", 60, async {
        let mut out = Vec::new();
        for t in creates {
            out.push(t.await.unwrap());
        }
        out
    })
    .await;
    stop.store(true, Ordering::Release);
    let samples = sampler.join().unwrap();
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "creates failed under the load: {failed:?}"
    );
    let stored = with_client(&db.url, |c| {
        c.query_one("SELECT count(*) FROM identities", &[])
            .unwrap()
            .get::<_, i64>(0)
    });
    assert_eq!(stored, n);
    let most = most.load(Ordering::Acquire);
    assert!(
        most <= CAP,
        "the node had {most} connections to the database open at once (cap {CAP})"
    );
    // The load did reach the cap: a pool that never filled would prove nothing.
    assert_eq!(most, CAP, "the load never filled the pool");
    eprintln!("{samples} samples: at most {most} connections for {n} concurrent creates");
}
