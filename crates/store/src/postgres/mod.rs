//! The PostgreSQL store: the same `Store` contract as SQLite, for several Sesame nodes over one
//! database. Every method is one transaction; optimistic versions are checked under
//! `SELECT … FOR UPDATE`, the identity quota under a per-account advisory lock, and due
//! verifications are claimed with `FOR UPDATE SKIP LOCKED` so two nodes never take the same
//! identity. Uses the synchronous `postgres` client: the core is synchronous and the API runs
//! it on tokio's blocking pool.
//!
//! Modules: `identities` (identity SQL: the identity store, the check queue and the key
//! zone's source), `accounts` (accounts and access keys).

mod accounts;
mod identities;
mod publishers;
mod templates;

use crate::pool::{Connector, Pool};
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement, Transaction};
use sesame_core::StoreError;
use std::collections::HashMap;

/// Versioned migrations, applied in order under an advisory lock (nodes may start together).
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_mail_from.sql"),
    include_str!("../../migrations/postgres/0003_recommendations.sql"),
    include_str!("../../migrations/postgres/0004_templates.sql"),
    include_str!("../../migrations/postgres/0005_links.sql"),
    include_str!("../../migrations/postgres/0006_publishers.sql"),
    include_str!("../../migrations/postgres/0007_key_generation_shards.sql"),
];
const MIGRATION_LOCK: i64 = 0x5e5a_3e00;
/// Connections per node; requests beyond this wait for a free one rather than exhausting the
/// server's `max_connections` (100 by default) when several nodes share it.
const MAX_CONNECTIONS: usize = 16;

/// Statements one connection keeps prepared; past this it starts over (the store's SQL is a
/// few dozen fixed texts, so this is only a bound).
const MAX_PREPARED: usize = 256;

/// Opens connections to the database, in the store's schema if it has one.
struct PgConnector {
    url: String,
    schema: Option<String>,
}

/// A pooled connection and the statements it has prepared. Each statement is parsed and
/// planned once per connection rather than per call: an unprepared query is a Parse round
/// trip before its Bind and Execute, and the parse was most of the server's time in a
/// GetEmailIdentity.
pub(crate) struct PgConn {
    client: Client,
    prepared: HashMap<String, Statement>,
}

impl Connector for PgConnector {
    type Conn = PgConn;

    fn connect(&self) -> Result<PgConn, StoreError> {
        let mut client = Client::connect(&self.url, NoTls).map_err(unavailable)?;
        if let Some(s) = &self.schema {
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}"
                ))
                .map_err(unavailable)?;
        }
        Ok(PgConn {
            client,
            prepared: HashMap::new(),
        })
    }

    /// A connection the server closed (a restart, a terminated backend) is dropped, so the
    /// next call reconnects (a database restart needs no Sesame restart).
    fn reusable(conn: &PgConn) -> bool {
        !conn.client.is_closed()
    }
}

/// What `PostgresStore::one` and `tx` lend their closure: the connection (or a transaction
/// on it), with the `postgres` calls the store uses, each on a statement prepared once.
pub(crate) struct Db<'a, C> {
    c: &'a mut C,
    prepared: &'a mut HashMap<String, Statement>,
}

/// A transaction as the store's SQL sees it.
pub(crate) type Tx<'a, 'b> = Db<'a, Transaction<'b>>;

impl<C: GenericClient> Db<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.c.prepare(sql)?;
        if self.prepared.len() >= MAX_PREPARED {
            self.prepared.clear();
        }
        self.prepared.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    pub fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.query(&s, params)
    }

    pub fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.query_one(&s, params)
    }

    pub fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.query_opt(&s, params)
    }

    pub fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.c.execute(&s, params)
    }
}

/// A PostgreSQL database (optionally one schema of it).
pub struct PostgresStore {
    pool: Pool<PgConnector>,
    stamps: Shared,
}

/// One snapshot query answers every `change_stamp` caller that arrived before it was sent:
/// under load, a round trip per burst of requests instead of one per request. A caller only
/// takes the answer of a query sent after it arrived, so the snapshot is still taken after
/// everything committed before the call, as its own query's would be.
#[derive(Default)]
struct Shared {
    state: std::sync::Mutex<Rounds>,
    answered: std::sync::Condvar,
}

/// One query at a time: it is in flight while `sent` is ahead of `answered`.
#[derive(Default)]
struct Rounds {
    /// The last query sent, by number.
    sent: u64,
    /// The last one answered, and its answer (an error as its message).
    answered: u64,
    answer: Option<Result<crate::cached::Stamp, String>>,
}

/// The server's own message when it sent one (`Display` says only "db error"); never its
/// detail, which can quote the row's values.
fn unavailable(e: postgres::Error) -> StoreError {
    StoreError::Unavailable(match e.as_db_error() {
        Some(db) => format!("database error {}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    })
}

impl PostgresStore {
    /// Connects to `url`, in `schema` if given (created if missing; tests use one per run),
    /// and applies pending migrations.
    pub fn open(url: &str, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        if let Some(s) = schema
            && !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::Unavailable(format!(
                "invalid schema name {s:?}"
            )));
        }
        let connector = PgConnector {
            url: url.to_owned(),
            schema: schema.map(str::to_owned),
        };
        let mut conn = connector.connect()?;
        let mut tx = conn.client.transaction().map_err(unavailable)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(unavailable)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)",
        )
        .map_err(unavailable)?;
        let done: i64 = tx
            .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
            .map_err(unavailable)?
            .get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            tx.batch_execute(sql).map_err(unavailable)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&((i + 1) as i32)],
            )
            .map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
        let pool = Pool::new(connector, MAX_CONNECTIONS);
        pool.adopt(conn)?;
        Ok(PostgresStore {
            pool,
            stamps: Shared::default(),
        })
    }

    /// Runs one statement on a pooled connection, outside an explicit transaction: a single
    /// statement is atomic by itself, and BEGIN and COMMIT would be two more round trips
    /// (the PostgreSQL side of SQLite's one-statement reads without a snapshot).
    fn one<T>(
        &self,
        f: impl FnOnce(&mut Db<'_, Client>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lease = self.pool.get()?;
        let PgConn { client, prepared } = lease.get_mut();
        f(&mut Db {
            c: client,
            prepared,
        })
    }

    /// Runs `f` in one transaction on a pooled connection; a broken connection is dropped
    /// when handed back (`PgConnector::reusable`), so the next call reconnects.
    fn tx<T>(
        &self,
        f: impl FnOnce(&mut Tx<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lease = self.pool.get()?;
        let PgConn { client, prepared } = lease.get_mut();
        let mut tx = client.transaction().map_err(unavailable)?;
        let out = f(&mut Db {
            c: &mut tx,
            prepared,
        })?;
        tx.commit().map_err(unavailable)?;
        Ok(out)
    }
}

/// The snapshot of the next statement: which transactions count as finished. Equal snapshots
/// mean nothing was committed in between, by any node: a commit leaves the in-progress list
/// (or had its id at or past `xmax`, which then moved), and neither goes back. It is the
/// cluster's, so a commit elsewhere only costs a reload. Needs no help from writers, so a
/// commit by `sesame keys`, another node, or a node killed right after committing counts too.
impl crate::cached::ChangeSignal for PostgresStore {
    fn change_stamp(&self) -> Result<crate::cached::Stamp, StoreError> {
        let unlocked = |e: std::sync::PoisonError<_>| -> StoreError {
            drop(e);
            StoreError::Unavailable("a store lock was poisoned by a panic".into())
        };
        let mut r = self.stamps.state.lock().map_err(unlocked)?;
        // Queries up to `sent` were sent before this call: only a later one will do.
        let needed = r.sent + 1;
        loop {
            if r.answered >= needed {
                let answer = r.answer.clone();
                return answer
                    .unwrap_or_else(|| Err("no snapshot".into()))
                    .map_err(StoreError::Unavailable);
            }
            if r.sent == r.answered {
                r.sent += 1;
                let round = r.sent;
                drop(r);
                // Should the query panic, the next caller sends its own.
                let _reset = ResetOnUnwind(&self.stamps);
                let answer = self
                    .one(|c| {
                        let text: String = c
                            .query_one("SELECT pg_current_snapshot()::text", &[])
                            .map_err(unavailable)?
                            .get(0);
                        Ok(crate::cached::Stamp::Snapshot(text.into_boxed_str()))
                    })
                    .map_err(|e| match e {
                        StoreError::Unavailable(why) => why,
                        other => other.to_string(),
                    });
                let mut r = self.stamps.state.lock().map_err(unlocked)?;
                r.answered = round;
                r.answer = Some(answer.clone());
                drop(r);
                self.stamps.answered.notify_all();
                return answer.map_err(StoreError::Unavailable);
            }
            r = self.stamps.answered.wait(r).map_err(unlocked)?;
        }
    }
}

struct ResetOnUnwind<'a>(&'a Shared);

impl Drop for ResetOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The round never happened: the next caller sends it again, after everyone
            // waiting for it arrived.
            if let Ok(mut r) = self.0.state.lock() {
                r.sent = r.answered;
            }
            self.0.answered.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::PostgresStore;
    use crate::cached::ChangeSignal;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A shared snapshot query never answers a caller that arrived after it was sent: with
    /// other threads asking all the time (so a query is nearly always in flight), a stamp
    /// asked right after a commit always differs from the one asked before it.
    #[test]
    fn a_stamp_asked_after_a_commit_never_comes_from_a_query_sent_before_it() {
        let Some(url) = crate::conformance::postgres_url("the shared snapshot test") else {
            return;
        };
        let schema = crate::conformance::fresh_schema("sesame_stamp");
        let store = Arc::new(PostgresStore::open(&url, Some(&schema)).unwrap());
        let mut writer = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        writer
            .batch_execute(&format!("CREATE TABLE {schema}.ticks (n BIGINT)"))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let askers: Vec<_> = (0..6)
            .map(|_| {
                let (store, stop) = (store.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        store.change_stamp().unwrap();
                    }
                })
            })
            .collect();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for i in 0..300i64 {
                let before = store.change_stamp().unwrap();
                writer
                    .execute(&format!("INSERT INTO {schema}.ticks VALUES ($1)"), &[&i])
                    .unwrap();
                let after = store.change_stamp().unwrap();
                assert_ne!(before, after, "commit {i} was missed");
            }
        }));
        stop.store(true, Ordering::Relaxed);
        for a in askers {
            a.join().unwrap();
        }
        writer
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
