//! The read side: a pool of read-only connections (each its own WAL snapshot per read), so
//! reads never wait behind a write.

use super::sql::{Cached, configure, unavailable};
use crate::pool::{Connector, Pool};
use rusqlite::{Connection, OpenFlags};
use sesame_core::StoreError;
use std::path::PathBuf;

/// The most read connections in use at once: twice the cores. More concurrent readers only
/// contend on SQLite's global mutexes and the allocator (measured: with 32 concurrent
/// requests and no bound, futex waits took most of the CPU); a reader waits for a free
/// connection instead.
pub(super) fn max_readers() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4))
}

/// Opens read-only connections to the database file.
pub(super) struct ReaderConnector {
    path: PathBuf,
}

impl Connector for ReaderConnector {
    type Conn = Connection;

    fn connect(&self) -> Result<Connection, StoreError> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(unavailable)?;
        configure(&c).map_err(unavailable)?;
        Ok(c)
    }

    /// Outside a transaction only: a read that failed or panicked between BEGIN and COMMIT
    /// would otherwise hand its stale snapshot to the next one.
    fn reusable(conn: &Connection) -> bool {
        conn.is_autocommit()
    }
}

/// The read connections, at most `max_readers()`.
pub(super) struct Readers(Pool<ReaderConnector>);

impl Readers {
    pub(super) fn new(path: PathBuf) -> Readers {
        Readers(Pool::new(ReaderConnector { path }, max_readers()))
    }

    /// A new read-only connection outside the pool.
    pub(super) fn connect(&self) -> Result<Connection, StoreError> {
        self.0.connector().connect()
    }

    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.read_one(|conn| {
            // A deferred transaction gives the whole read one consistent snapshot. BEGIN and
            // COMMIT go through the statement cache: rusqlite's `transaction()` compiles both
            // from text every time, which was an eighth of a GetEmailIdentity's CPU (two
            // reads). For a read-only transaction COMMIT only ends the snapshot, so it ends
            // every read, failed or not; a connection left inside a transaction is not pooled
            // (`ReaderConnector::reusable`).
            conn.exec("BEGIN", []).map_err(unavailable)?;
            let out = f(conn);
            conn.exec("COMMIT", []).map_err(unavailable)?;
            out
        })
    }

    /// A read of one statement: SQLite runs it in its own snapshot, so it needs no
    /// BEGIN/COMMIT (whose read-lock round trip costs as much as a small query).
    pub(super) fn read_one<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.0.get()?;
        f(&conn)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::SqliteStore;
    use super::super::identities::load_identity;
    use super::super::test_support::{name, open};
    use crate::conformance::{account, easy_domain};
    use sesame_core::ports::{AccountStore, IdentityStore};

    /// `PRAGMA synchronous` and `journal_mode` as one connection of the store reports them.
    fn durability_pragmas(c: &rusqlite::Connection) -> (i64, String) {
        let sync = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let mode = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        (sync, mode)
    }

    /// Reads the pragmas from `n` reader connections held at once (so they are `n` distinct
    /// connections, as many as the pool ever opens), innermost first.
    fn reader_pragmas(store: &SqliteStore, n: usize, out: &mut Vec<(i64, String)>) {
        store
            .read_one(|c| {
                out.push(durability_pragmas(c));
                if n > 1 {
                    reader_pragmas(store, n - 1, out);
                }
                Ok(())
            })
            .unwrap();
    }

    /// The module's promise "committed means on disk, also after a power loss" rests on WAL
    /// with `synchronous=FULL` (2): NORMAL (1) or OFF (0) would still pass a `kill -9` test,
    /// since the page cache outlives the process. Read back from the connections the store
    /// really uses: the writer (inside its batch transaction) and every reader the pool opens.
    #[test]
    fn the_writer_and_every_reader_run_wal_with_synchronous_full() {
        let (_dir, store) = open();
        let writer = store.write(|tx| Ok(durability_pragmas(tx))).unwrap();
        assert_eq!(
            writer,
            (2, "wal".to_owned()),
            "writer (synchronous, journal_mode)"
        );
        let mut readers = Vec::new();
        reader_pragmas(&store, super::max_readers(), &mut readers);
        assert_eq!(readers.len(), super::max_readers());
        for (i, r) in readers.iter().enumerate() {
            assert_eq!(
                r,
                &(2, "wal".to_owned()),
                "reader {i} (synchronous, journal_mode)"
            );
        }
        // The pooled readers, lent again, still say so (nothing resets them on the way back).
        readers.clear();
        reader_pragmas(&store, super::max_readers(), &mut readers);
        assert!(
            readers.iter().all(|r| r == &(2, "wal".to_owned())),
            "{readers:?}"
        );
    }

    #[test]
    fn a_read_that_panics_does_not_pool_its_stale_snapshot() {
        let (_dir, store) = open();
        let acc = account(&store, "900000000004", "snapshot");
        let a = easy_domain(&acc, "a.example.com");
        store.insert_identity(&a, 10).unwrap();
        // Panics between BEGIN and COMMIT, after the snapshot was taken (it read a row).
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.read::<()>(|conn| {
                load_identity(conn, &acc, "a.example.com")?;
                panic!("in the middle of a read");
            })
        }));
        assert!(panicked.is_err());
        store.delete_identity(&acc, &name("a.example.com")).unwrap();
        // Written after the panic: a reader still in the old snapshot would not see it.
        let key = sesame_core::ports::AccessKey {
            id: "AKIDAFTERPANIC".into(),
            account: acc.clone(),
            sealed_secret: vec![1, 2, 3],
            enabled: true,
            created_at: sesame_core::model::Timestamp(5),
        };
        store.put_access_key(&key).unwrap();
        // With one reader slot per core, every pooled connection is tried in turn.
        for _ in 0..8 {
            assert!(
                store
                    .get_identity(&acc, &name("a.example.com"))
                    .unwrap()
                    .is_none()
            );
            assert_eq!(
                store.access_key("AKIDAFTERPANIC").unwrap(),
                Some(key.clone())
            );
        }
    }
}
