//! The PostgreSQL side of the multi-node tests: a fresh database per test, statements run from
//! the test (on threads of their own: the synchronous client must not run on the test's async
//! runtime), a session that holds a lock until told to let go, and what `pg_stat_activity`
//! says about each node's connections.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `f` on a fresh connection to `url`, on a thread of its own.
pub fn with_client<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
) -> T {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        f(&mut c)
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Runs statements that return nothing.
pub fn execute(url: &str, sql: String) {
    with_client(url, move |c| {
        c.batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
}

/// One `bigint` (or `count(*)`) result.
pub fn scalar(url: &str, sql: String) -> i64 {
    with_client(url, move |c| {
        c.query_one(sql.as_str(), &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get::<_, i64>(0)
    })
}

/// A database of its own for one test, dropped afterwards.
pub struct TestDb {
    /// `DATABASE_URL`: the database the test connects to for administration.
    pub admin: String,
    pub name: String,
    /// The test's own database.
    pub url: String,
}

impl TestDb {
    /// A fresh, empty database. Without `DATABASE_URL` the test cannot run: it panics when
    /// `SESAME_REQUIRE_POSTGRES=1` (as `scripts/test` sets), else says NOT RUN and returns
    /// `None`.
    pub fn create() -> Option<TestDb> {
        let Ok(admin) = std::env::var("DATABASE_URL") else {
            if std::env::var("SESAME_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("SESAME_REQUIRE_POSTGRES=1 but DATABASE_URL is not set");
            }
            crate::harness::say(
                "NOT RUN: the multi-node PostgreSQL tests need DATABASE_URL (scripts/test sets it)",
            );
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("sesame_mn_{}_{nanos}", std::process::id());
        execute(&admin, format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').unwrap().0;
        Some(TestDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }

    /// The database's URL for a client that names itself `app` in `pg_stat_activity`.
    pub fn url_as(&self, app: &str) -> String {
        format!("{}?application_name={app}", self.url)
    }

    /// `SELECT count(*) …` in the test's database.
    pub fn count(&self, sql: &str) -> i64 {
        scalar(&self.url, sql.to_owned())
    }

    /// How many of this database's sessions satisfy `condition` (SQL over `pg_stat_activity`).
    pub fn sessions_where(&self, condition: &str) -> i64 {
        scalar(
            &self.admin,
            format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND ({condition})",
                self.name
            ),
        )
    }

    /// Polls `done` every 20 ms for up to `secs` seconds, panicking with `what` and the
    /// database's sessions at the deadline. Blocks its thread: call it from a blocking context.
    pub fn wait_for(&self, what: &str, secs: u64, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            if Instant::now() >= deadline {
                panic!(
                    "{what}: not within {secs} s; sessions: {:#?}",
                    self.sessions()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The database's sessions as (application_name, state, wait_event, query), for failure
    /// messages.
    pub fn sessions(&self) -> Vec<String> {
        let sql = format!(
            "SELECT application_name, coalesce(state, ''), coalesce(wait_event, ''), \
                    left(query, 60) FROM pg_stat_activity WHERE datname = '{}'",
            self.name
        );
        with_client(&self.admin, move |c| {
            c.query(sql.as_str(), &[])
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {} {}",
                        r.get::<_, String>(0),
                        r.get::<_, String>(1),
                        r.get::<_, String>(2),
                        r.get::<_, String>(3)
                    )
                })
                .collect()
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // A panic here would abort a test that is already failing: report instead.
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            postgres::Client::connect(&admin, postgres::NoTls)
                .and_then(|mut c| c.batch_execute(&sql))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            crate::harness::say(&format!("could not drop the test database {}", self.name));
        }
    }
}

/// A session that ran `take` and keeps whatever it locked until dropped, when it runs `give`
/// (if any) and disconnects.
pub struct Held {
    release: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Held {
    pub fn take(url: &str, take: &str, give: Option<&str>) -> Held {
        let (url, take, give) = (url.to_owned(), take.to_owned(), give.map(str::to_owned));
        let (taken_tx, taken_rx) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls)
                .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
            c.batch_execute(&take)
                .unwrap_or_else(|e| panic!("{take}: {e}"));
            taken_tx.send(()).unwrap();
            // Dropped or sent: either way, let go.
            let _ = released.recv();
            if let Some(give) = give {
                c.batch_execute(&give)
                    .unwrap_or_else(|e| panic!("{give}: {e}"));
            }
        });
        taken_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the lock was not taken within 30 s");
        Held {
            release: Some(release),
            thread: Some(thread),
        }
    }

    /// Lets go now.
    pub fn release(mut self) {
        self.let_go();
    }

    fn let_go(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.let_go();
    }
}
