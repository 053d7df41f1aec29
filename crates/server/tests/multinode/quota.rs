//! The identity quota (`--max-identities`, checked in the store's `insert_identity` under a
//! per-account advisory lock) holds when two nodes create past it at the same time.

use crate::db::Held;
use crate::{TestDb, master_key, node, within};
use aws_sdk_sesv2::error::ProvideErrorMetadata;

const QUOTA: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_quota_holds_under_concurrent_creates_on_two_nodes() {
    let Some(db) = TestDb::create() else { return };
    let master = master_key();
    let quota = QUOTA.to_string();
    let env = [
        ("SESAME_MAX_IDENTITIES", quota.as_str()),
        ("SESAME_RATE_LIMIT", "0"),
    ];
    let a = node(&db, "node_a", &master, &env);
    let b = node(&db, "node_b", &master, &env);

    // Reads go on but inserts wait while the test holds this lock, so every create that gets a
    // connection has made its quota check before any of them inserts: the worst interleaving,
    // forced rather than hoped for. The store's advisory lock must still let only one through
    // at a time.
    let held = Held::take(
        &db.url_as("holder"),
        "BEGIN; LOCK TABLE identities IN SHARE MODE",
        Some("COMMIT"),
    );
    let n = 100;
    let (ca, cb) = (a.client(), b.client());
    let creates: Vec<_> = (0..n)
        .map(|i| {
            let c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
            tokio::spawn(async move {
                c.create_email_identity()
                    .email_identity(format!("q{i:03}@example.com"))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        let status = e.raw_response().map(|r| r.status().as_u16());
                        (status, e.code().map(str::to_owned))
                    })
            })
        })
        .collect();
    // Each node's 16 connections all in creates, waiting for a lock (the table's or the
    // account's).
    tokio::task::block_in_place(|| {
        for app in ["node_a", "node_b"] {
            db.wait_for(&format!("{app}'s creates all waiting"), 30, || {
                db.sessions_where(&format!(
                    "application_name = '{app}' AND wait_event_type = 'Lock'"
                )) >= 16
            });
        }
    });
    held.release();
    let results = within("the creates", 60, async {
        let mut out = Vec::new();
        for t in creates {
            out.push(t.await.unwrap());
        }
        out
    })
    .await;

    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let other: Vec<_> = refused
        .iter()
        .filter(|e| **e != &(Some(400), Some("LimitExceededException".to_owned())))
        .collect();
    assert!(
        other.is_empty(),
        "refused otherwise than with 400 LimitExceededException: {other:?}"
    );
    assert_eq!(ok, QUOTA, "creates past the quota of {QUOTA} succeeded");
    let stored = db.count("SELECT count(*) FROM identities");
    assert_eq!(stored, QUOTA as i64);
    let listed = a
        .client()
        .list_email_identities()
        .send()
        .await
        .unwrap()
        .email_identities()
        .len();
    assert_eq!(listed, QUOTA);
}
