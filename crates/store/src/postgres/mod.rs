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
use postgres::{Client, NoTls, Transaction};
use sesame_core::StoreError;

/// Versioned migrations, applied in order under an advisory lock (nodes may start together).
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_mail_from.sql"),
    include_str!("../../migrations/postgres/0003_recommendations.sql"),
    include_str!("../../migrations/postgres/0004_templates.sql"),
    include_str!("../../migrations/postgres/0005_links.sql"),
    include_str!("../../migrations/postgres/0006_publishers.sql"),
];
const MIGRATION_LOCK: i64 = 0x5e5a_3e00;
/// Connections per node; requests beyond this wait for a free one rather than exhausting the
/// server's `max_connections` (100 by default) when several nodes share it.
const MAX_CONNECTIONS: usize = 16;

/// Opens connections to the database, in the store's schema if it has one.
struct PgConnector {
    url: String,
    schema: Option<String>,
}

impl Connector for PgConnector {
    type Conn = Client;

    fn connect(&self) -> Result<Client, StoreError> {
        let mut client = Client::connect(&self.url, NoTls).map_err(unavailable)?;
        if let Some(s) = &self.schema {
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}"
                ))
                .map_err(unavailable)?;
        }
        Ok(client)
    }

    /// A connection the server closed (a restart, a terminated backend) is dropped, so the
    /// next call reconnects (a database restart needs no Sesame restart).
    fn reusable(conn: &Client) -> bool {
        !conn.is_closed()
    }
}

/// A PostgreSQL database (optionally one schema of it).
pub struct PostgresStore {
    pool: Pool<PgConnector>,
}

fn unavailable(e: postgres::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
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
        let mut client = connector.connect()?;
        let mut tx = client.transaction().map_err(unavailable)?;
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
        pool.adopt(client)?;
        Ok(PostgresStore { pool })
    }

    /// Runs one statement on a pooled connection, outside an explicit transaction: a single
    /// statement is atomic by itself, and BEGIN and COMMIT would be two more round trips
    /// (the PostgreSQL side of SQLite's one-statement reads without a snapshot).
    fn one<T>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.pool.get()?;
        f(client.get_mut())
    }

    /// Runs `f` in one transaction on a pooled connection; a broken connection is dropped
    /// when handed back (`PgConnector::reusable`), so the next call reconnects.
    fn tx<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.pool.get()?;
        let mut tx = client.get_mut().transaction().map_err(unavailable)?;
        let out = f(&mut tx)?;
        tx.commit().map_err(unavailable)?;
        Ok(out)
    }
}
