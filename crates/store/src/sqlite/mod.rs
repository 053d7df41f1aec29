//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, so a committed transaction
//! is on disk before the call returns and survives `kill -9` and power loss. Readers take pooled
//! connections so reads never wait behind a write.
//!
//! Writes use group commit. One thread owns the only writing connection (SQLite allows one
//! writer at a time anyway) and takes writes from a queue: it blocks for the first, takes every
//! other one already queued (up to `MAX_BATCH`), runs them one after another in a single
//! transaction, each under its own `SAVEPOINT`, and commits once. A write whose closure fails is
//! rolled back to its savepoint alone and gets its own error; the others of the batch still
//! commit, and each sees the writes that ran before it, so version checks and quota counts stay
//! exact. Every caller is answered only after the COMMIT returned, so `Ok` still means "on
//! disk"; if BEGIN, a savepoint or the COMMIT fails, the whole batch is rolled back and every
//! caller gets `Unavailable`. Batches form only while the previous one is committing, so a lone
//! write commits at once and no timer adds latency; under load one fsync serves many writes.
//!
//! Modules: `sql` (connection settings, shorthands), `migrations`, `readers` (the read pool),
//! `writer` (the group-commit thread), `identities` (identity SQL: the identity store, the
//! check queue and the key zone's source), `accounts` (accounts and access keys).

mod accounts;
mod identities;
mod migrations;
mod publishers;
mod readers;
mod sql;
mod templates;
mod writer;

use migrations::{MIGRATIONS, migrate};
use readers::Readers;
use rusqlite::{Connection, Transaction};
use sesame_core::StoreError;
use sql::{WRITER_CACHE_KIB, configure, unavailable};
use std::path::Path;
use writer::Writer;

/// A SQLite database file.
pub struct SqliteStore {
    writer: Writer,
    readers: Readers,
    /// A connection of its own for `PRAGMA data_version`, which moves only for commits made
    /// by *other* connections: the writer's among them, so this one must never write.
    watch: std::sync::Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let writer = Connection::open(path).map_err(unavailable)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(unavailable)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "could not switch {} to WAL mode (got {mode})",
                path.display()
            )));
        }
        configure(&writer).map_err(unavailable)?;
        // The writer re-reads every row it updates (version check, key comparison): it gets
        // the larger cache.
        writer
            .pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(unavailable)?;
        migrate(&writer, MIGRATIONS.len())?;
        let readers = Readers::new(path.to_owned());
        let watch = std::sync::Mutex::new(readers.connect()?);
        Ok(SqliteStore {
            writer: Writer::start(writer)?,
            readers,
            watch,
        })
    }

    /// A read in one snapshot (see `Readers::read`).
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.readers.read(f)
    }

    /// A read of one statement (see `Readers::read_one`).
    fn read_one<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.readers.read_one(f)
    }

    /// A write in the next group commit, answered once durable (see `Writer::write`).
    fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write(f)
    }
}

/// Commits by any connection of any process move `data_version` as the watch connection sees
/// it; a read of the WAL index in shared memory, no I/O.
impl crate::cached::ChangeSignal for SqliteStore {
    fn change_stamp(&self) -> Result<crate::cached::Stamp, StoreError> {
        let conn = self.watch.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn
            .prepare_cached("PRAGMA data_version")
            .map_err(unavailable)?;
        let v: i64 = stmt.query_row([], |r| r.get(0)).map_err(unavailable)?;
        Ok(crate::cached::Stamp::Counter(v as u64))
    }
}

#[cfg(test)]
mod test_support {
    #![allow(clippy::unwrap_used)]

    use super::SqliteStore;
    use sesame_core::model::IdentityName;

    pub(super) fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("sesame.db")).unwrap();
        (dir, store)
    }

    pub(super) fn name(s: &str) -> IdentityName {
        IdentityName::parse(s).unwrap()
    }
}
