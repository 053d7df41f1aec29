//! Migrations on PostgreSQL: `sesame migrate` builds a fresh database's schema and is a no-op
//! the second time; three `sesame migrate` started together on a fresh database wait for each
//! other on the migration lock and apply the migrations once between them; and three nodes
//! started together on a fresh database all start, migrate it once, and all serve.

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

/// Waits (up to 20 s, within the harness's 30 s start-up deadline) until `n` sessions whose
/// application name starts with `prefix` wait for an advisory lock.
fn queued(db: &TestDb, prefix: &str, n: i64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = db.sessions_where(&format!(
            "application_name LIKE '{prefix}%' AND wait_event_type = 'Lock' \
             AND wait_event = 'advisory'"
        ));
        if waiting == n {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{waiting} of {n} waited for the migration lock; sessions: {:#?}",
                db.sessions()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The message of a thread's panic.
fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
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

/// The test takes the migration lock first, so three `sesame migrate` arrive at it together and
/// must queue; it lets go once all three are seen waiting.
#[test]
fn three_migrations_started_together_wait_for_each_other_and_apply_once() {
    let Some(db) = TestDb::create() else { return };
    let master = master_key();
    let held = Held::take(
        &db.url_as("holder"),
        &format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"),
        Some("SELECT pg_advisory_unlock_all()"),
    );
    let (waited, runs) = std::thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|i| {
                let (db, master) = (&db, &master);
                s.spawn(move || {
                    let dir = tempfile::tempdir().unwrap();
                    let url = db.url_as(&format!("migrate_{i}"));
                    let data_dir = dir.path().to_str().unwrap().to_owned();
                    sesame(
                        &["migrate", "--data-dir", &data_dir, "--database-url", &url],
                        master,
                    )
                })
            })
            .collect();
        let waited = queued(&db, "migrate\\_", 3);
        held.release();
        let runs: Vec<_> = runs.into_iter().map(|h| h.join().unwrap()).collect();
        (waited, runs)
    });
    for (ok, out) in &runs {
        assert!(ok, "a sesame migrate failed:\n{out}");
    }
    waited.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(versions(&db), (1..=shipped()).collect::<Vec<_>>());
}

/// Three nodes on one fresh database, started at the same instant: as above, the test holds
/// the migration lock until all three wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_starting_together_on_a_fresh_database_all_start_and_serve() {
    let Some(db) = TestDb::create() else { return };
    let master = master_key();
    let held = Held::take(
        &db.url_as("holder"),
        &format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"),
        Some("SELECT pg_advisory_unlock_all()"),
    );
    let (waited, started) = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            let starts: Vec<_> = (0..3)
                .map(|i| {
                    let (db, master) = (&db, &master);
                    s.spawn(move || node(db, &format!("node_{i}"), master, &[]))
                })
                .collect();
            let waited = queued(&db, "node\\_", 3);
            held.release();
            let started: Vec<_> = starts.into_iter().map(|h| h.join()).collect();
            (waited, started)
        })
    });
    let mut nodes = Vec::new();
    let mut failed = Vec::new();
    for s in started {
        match s {
            Ok(n) => nodes.push(n),
            Err(e) => failed.push(panic_text(e)),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 3 nodes did not start:\n{}",
        failed.len(),
        failed.join("\n")
    );
    waited.unwrap_or_else(|e| panic!("{e}"));
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
