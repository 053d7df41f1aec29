//! Migrations on PostgreSQL: `sesame migrate` builds a fresh database's schema and is a no-op
//! the second time; and three nodes started together on a fresh database wait for each other
//! on the migration lock, apply the migrations once between them, and all serve.

use crate::db::{Held, with_client};
use crate::{TestDb, master_key, node, within};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The advisory lock key `PostgresStore::open` migrates under (`MIGRATION_LOCK`).
const MIGRATION_LOCK: i64 = 0x5e5a_3e00;

/// How many migrations the store ships for PostgreSQL.
fn shipped() -> i32 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../store/migrations/postgres");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        })
        .count() as i32
}

/// The versions recorded in the migrations table, in order.
fn versions(db: &TestDb) -> Vec<i32> {
    with_client(&db.url, |c| {
        c.query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    })
}

fn tables(db: &TestDb) -> Vec<String> {
    with_client(&db.url, |c| {
        c.query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    })
}

/// Runs `sesame <args>` to its end (killed after 60 s), returning success and its output.
fn sesame(args: &[&str], master: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(args)
        .env("SESAME_MASTER_KEY", master)
        .env_remove("SESAME_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut readers = Vec::new();
    for mut s in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        readers.push(std::thread::spawn(move || {
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sesame {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out: String = readers.into_iter().map(|r| r.join().unwrap()).collect();
    (status.success(), out)
}

#[test]
fn sesame_migrate_builds_a_fresh_database_once() {
    let Some(db) = TestDb::create() else { return };
    let master = master_key();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "migrate",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--database-url",
        db.url.as_str(),
    ];
    let all: Vec<i32> = (1..=shipped()).collect();
    assert!(!all.is_empty());

    let (ok, out) = sesame(&args, &master);
    assert!(ok, "sesame migrate failed:\n{out}");
    assert!(out.contains("migrations applied"), "{out}");
    assert_eq!(versions(&db), all, "every shipped migration recorded once");
    let made = tables(&db);
    for t in [
        "accounts",
        "access_keys",
        "identities",
        "dkim_keys",
        "key_generation",
        "schema_migrations",
    ] {
        assert!(made.iter().any(|m| m == t), "no table {t}: {made:?}");
    }

    // Again: nothing left to apply, nothing applied twice.
    let (ok, out) = sesame(&args, &master);
    assert!(ok, "sesame migrate failed on a migrated database:\n{out}");
    assert_eq!(versions(&db), all);
    assert_eq!(tables(&db), made);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_starting_together_migrate_a_fresh_database_once_and_all_serve() {
    let Some(db) = TestDb::create() else { return };
    let master = master_key();
    // The test takes the migration lock first, so the three nodes arrive at it together and
    // must queue; it lets go once all three are seen waiting.
    let held = Held::take(
        &db.url_as("holder"),
        &format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"),
        Some("SELECT pg_advisory_unlock_all()"),
    );
    let (queued, started) = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            let starts: Vec<_> = (0..3)
                .map(|i| {
                    let (db, master) = (&db, &master);
                    s.spawn(move || node(db, &format!("node_{i}"), master, &[]))
                })
                .collect();
            // Within the harness's 30 s start-up deadline.
            let deadline = Instant::now() + Duration::from_secs(20);
            let queued = loop {
                let waiting = db.sessions_where(
                    "application_name LIKE 'node\\_%' AND wait_event_type = 'Lock' \
                     AND wait_event = 'advisory'",
                );
                if waiting == 3 {
                    break Ok(());
                }
                if Instant::now() >= deadline {
                    break Err(format!(
                        "{waiting} of 3 nodes waited for the migration lock; sessions: {:#?}",
                        db.sessions()
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            held.release();
            let started: Vec<_> = starts.into_iter().map(|h| h.join()).collect();
            (queued, started)
        })
    });
    let mut nodes = Vec::new();
    let mut failed = 0;
    for s in started {
        match s {
            Ok(n) => nodes.push(n),
            Err(_) => failed += 1,
        }
    }
    assert_eq!(failed, 0, "{failed} of 3 nodes did not start");
    queued.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        versions(&db),
        (1..=shipped()).collect::<Vec<_>>(),
        "the migrations recorded once each"
    );
    assert!(
        nodes.iter().all(|n| n.account == nodes[0].account),
        "one default account for all three nodes"
    );

    // All serve, and each sees what the others write.
    for (i, n) in nodes.iter().enumerate() {
        within("a create", 30, async {
            n.client()
                .create_email_identity()
                .email_identity(format!("node{i}@example.com"))
                .send()
                .await
                .unwrap()
        })
        .await;
    }
    for n in &nodes {
        let listed = within("a list", 30, async {
            n.client().list_email_identities().send().await.unwrap()
        })
        .await;
        let mut names: Vec<_> = listed
            .email_identities()
            .iter()
            .map(|x| x.identity_name().unwrap().to_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "node0@example.com",
                "node1@example.com",
                "node2@example.com"
            ]
        );
    }
}
