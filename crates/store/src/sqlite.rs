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

use crate::codec;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use sesame_core::StoreError;
use sesame_core::model::{
    AccountId, Dkim, Identity, IdentityFilter, IdentityName, IdentitySummary, Timestamp,
};
use sesame_core::ports::{AccessKey, Account, Store};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, mpsc};
use std::thread::JoinHandle;

/// The migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_verification.sql"),
    include_str!("../migrations/sqlite/0003_rotation.sql"),
    include_str!("../migrations/sqlite/0004_keys_rowid.sql"),
];

/// Page cache sizes, in SQLite's negative-KiB form: 64 MiB for the writer, 16 MiB per reader.
const WRITER_CACHE_KIB: i64 = -65_536;
const READER_CACHE_KIB: i64 = -16_384;

/// The most read connections in use at once: twice the cores. More concurrent readers only
/// contend on SQLite's global mutexes and the allocator (measured: with 32 concurrent
/// requests and no bound, futex waits took most of the CPU); a reader waits for a free
/// connection instead.
fn max_readers() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4))
}

/// The read connections: idle ones, and how many exist (idle or lent).
struct Readers {
    idle: Vec<Connection>,
    open: usize,
    max: usize,
}

/// A lent reader slot: gives the connection back (or, if none was opened, the slot) on drop.
struct Lease<'a> {
    store: &'a SqliteStore,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut pool = self.store.readers.lock().unwrap_or_else(|p| p.into_inner());
        match self.conn.take() {
            // Outside a transaction only: a read that failed or panicked between BEGIN and
            // COMMIT would otherwise hand its stale snapshot to the next one.
            Some(c) if c.is_autocommit() => pool.idle.push(c),
            _ => pool.open -= 1,
        }
        self.store.reader_free.notify_one();
    }
}

/// Writes committed together at most: bounds how long the first caller of a batch waits for the
/// others' statements (the fsync costs the same for 1 or 256).
const MAX_BATCH: usize = 256;

/// A SQLite database file.
pub struct SqliteStore {
    path: PathBuf,
    /// `None` only while dropping: closing the queue is what stops the writer thread.
    queue: Option<mpsc::Sender<Vec<Box<dyn Job>>>>,
    writer: Option<JoinHandle<()>>,
    readers: Mutex<Readers>,
    // Signalled when a reader connection is handed back.
    reader_free: Condvar,
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread is gone".into())
}

/// `execute` and `query_row` through the connection's statement cache: the same few
/// statements run on every request, and preparing one (parsing SQL, planning) costs more than
/// running it against a warm page cache.
trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(64);
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // SQLite's default page cache is 2 MiB per connection; past that every page is a pread
    // copying 4 KiB from the kernel. Measured on a 100 000-identity sweep: the writer spent
    // most of its time in those copies. Negative = KiB; memory is used only as pages are read.
    conn.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
    Ok(())
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
        let (queue, jobs) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(writer, jobs))
            .map_err(|e| StoreError::Unavailable(format!("starting the SQLite writer: {e}")))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            queue: Some(queue),
            writer: Some(thread),
            readers: Mutex::new(Readers {
                idle: Vec::new(),
                open: 0,
                max: max_readers(),
            }),
            reader_free: Condvar::new(),
        })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.read_one(|conn| {
            // A deferred transaction gives the whole read one consistent snapshot. BEGIN and
            // COMMIT go through the statement cache: rusqlite's `transaction()` compiles both
            // from text every time, which was an eighth of a GetEmailIdentity's CPU (two
            // reads). For a read-only transaction COMMIT only ends the snapshot, so it ends
            // every read, failed or not; a connection left inside a transaction is not pooled
            // (`Lease`).
            conn.exec("BEGIN", []).map_err(unavailable)?;
            let out = f(conn);
            conn.exec("COMMIT", []).map_err(unavailable)?;
            out
        })
    }

    /// A read of one statement: SQLite runs it in its own snapshot, so it needs no
    /// BEGIN/COMMIT (whose read-lock round trip costs as much as a small query).
    fn read_one<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = {
            let mut pool = self.readers.lock().map_err(poisoned)?;
            loop {
                if let Some(c) = pool.idle.pop() {
                    break Some(c);
                }
                if pool.open < pool.max {
                    pool.open += 1;
                    break None;
                }
                pool = self.reader_free.wait(pool).map_err(poisoned)?;
            }
        };
        // From here the slot is ours: the lease gives it back whatever happens, even a panic.
        let mut lease = Lease {
            store: self,
            conn: pooled,
        };
        if lease.conn.is_none() {
            let c = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(unavailable)?;
            configure(&c).map_err(unavailable)?;
            lease.conn = Some(c);
        }
        let Some(conn) = lease.conn.as_ref() else {
            return Err(StoreError::Unavailable("no reader connection".into()));
        };
        f(conn)
    }

    /// Runs `f` in the next group commit and returns its result once that batch is durable.
    /// `f` runs on the writer thread, hence `Send + 'static`: callers move owned copies in,
    /// which costs far less than the fsync they share.
    fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, answer) = Call::queue(f);
        self.submit(vec![job])?;
        answer.recv().unwrap_or_else(|_| Err(writer_gone()))
    }

    /// Runs all of `fs` in one batch, in order: lets tests see what a batch does without
    /// depending on thread timing.
    #[cfg(test)]
    fn write_batch<T: Send + 'static>(&self, fs: Vec<WriteFn<T>>) -> Vec<Result<T, StoreError>> {
        let (jobs, answers): (Vec<_>, Vec<_>) = fs.into_iter().map(Call::queue).unzip();
        if self.submit(jobs).is_err() {
            return answers.iter().map(|_| Err(writer_gone())).collect();
        }
        answers
            .into_iter()
            .map(|a| a.recv().unwrap_or_else(|_| Err(writer_gone())))
            .collect()
    }

    /// Queues jobs that the writer thread puts into one batch together.
    fn submit(&self, jobs: Vec<Box<dyn Job>>) -> Result<(), StoreError> {
        let queue = self.queue.as_ref().ok_or_else(writer_gone)?;
        queue.send(jobs).map_err(|_| writer_gone())
    }
}

#[cfg(test)]
type WriteFn<T> = Box<dyn FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send>;

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue ends the writer loop; joining closes the writing connection before
        // `drop` returns, so the file can be reopened (or removed) right after.
        self.queue = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// One write waiting in the queue. Its result is held back until the batch's fate is known.
trait Job: Send {
    /// Runs the write inside the batch's transaction; `false` if it failed and its savepoint
    /// must be rolled back.
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Answers the caller: its own result if the batch committed, `Unavailable` if not.
    fn answer(self: Box<Self>, batch: Result<(), &str>);
}

struct Call<F, T> {
    f: Option<F>,
    out: Option<Result<T, StoreError>>,
    reply: mpsc::SyncSender<Result<T, StoreError>>,
}

impl<F, T> Call<F, T>
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
{
    /// The job to queue, and where its answer will arrive.
    fn queue(f: F) -> (Box<dyn Job>, mpsc::Receiver<Result<T, StoreError>>) {
        let (reply, answer) = mpsc::sync_channel(1);
        let call = Call {
            f: Some(f),
            out: None,
            reply,
        };
        (Box::new(call), answer)
    }
}

impl<F, T> Job for Call<F, T>
where
    T: Send,
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(f) = self.f.take() else { return false };
        // A panic is this caller's failure alone: its savepoint is rolled back like any error,
        // and the writer thread lives on for everyone else. Nothing the closure touched is
        // observed after the unwind except the connection, which the rollback restores.
        let out = catch_unwind(AssertUnwindSafe(|| f(tx)))
            .unwrap_or_else(|_| Err(StoreError::Unavailable("a store write panicked".into())));
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn answer(self: Box<Self>, batch: Result<(), &str>) {
        let out = match batch {
            // Even a caller whose own closure failed gets `Unavailable` here: its error may
            // rest on writes of the batch that are now gone.
            Err(e) => Err(StoreError::Unavailable(e.to_owned())),
            Ok(()) => self.out.unwrap_or_else(|| Err(writer_gone())),
        };
        // The caller may be gone only if its thread died; nobody is left to tell.
        let _ = self.reply.send(out);
    }
}

/// The writer thread. A thread rather than leader/follower over a mutex: a leader would run
/// other threads' closures just the same (so they would need `Send + 'static` anyway), and
/// handing leadership over races in subtle ways that a queue with one consumer cannot.
fn write_loop(mut conn: Connection, jobs: mpsc::Receiver<Vec<Box<dyn Job>>>) {
    while let Ok(mut batch) = jobs.recv() {
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let outcome = run_batch(&mut conn, &mut batch).map_err(|e| e.to_string());
        tracing::trace!(writes = batch.len(), ok = outcome.is_ok(), "group commit");
        for job in batch {
            job.answer(outcome.as_ref().copied().map_err(String::as_str));
        }
    }
}

/// One transaction for the whole batch, one savepoint per job. Any error here (as opposed to a
/// job's own) leaves the transaction unusable, so it is dropped, which rolls it all back.
fn run_batch(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in batch.iter_mut() {
        tx.prepare_cached("SAVEPOINT job")?.execute([])?;
        if !job.run(&tx) {
            tx.prepare_cached("ROLLBACK TO job")?.execute([])?;
        }
        tx.prepare_cached("RELEASE job")?.execute([])?;
    }
    tx.commit()
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("a store lock was poisoned by a panic".into())
}

/// Applies the migrations the database lacks, up to schema version `to` (tests stop short of
/// the newest to build a database as an older binary left it).
fn migrate(conn: &Connection, to: usize) -> Result<(), StoreError> {
    let done: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unavailable)?;
    let done = usize::try_from(done).unwrap_or(0);
    if done > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "the database is at schema version {done}, newer than this binary knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().take(to).skip(done) {
        let batch = format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        );
        conn.execute_batch(&batch).map_err(unavailable)?;
    }
    Ok(())
}

const IDENTITY_COLUMNS: &str = "name, version, created_at, feedback_forwarding, \
     signing_override, verification_status, dkim_origin, dkim_signing_enabled, dkim_status, \
     dkim_tokens, dkim_selector, dkim_next_length, dkim_length_changed_at, dkim_downgraded_at, tags, \
     v_last_checked, v_last_success, v_error, v_soa, v_pending_since, v_failing_since, \
     v_next_check_at, v_attempts, dkim_active, dkim_staged";

fn load_identity(
    tx: &Connection,
    account: &AccountId,
    name: &str,
) -> Result<Option<Identity>, StoreError> {
    let sql =
        format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE account_id = ?1 AND name = ?2");
    let row = tx
        .row(&sql, params![account.as_str(), name], |r| {
            Ok(codec::IdentityRow {
                name: r.get(0)?,
                version: r.get(1)?,
                created_at: r.get(2)?,
                feedback_forwarding: r.get(3)?,
                signing_override: r.get(4)?,
                verification_status: r.get(5)?,
                dkim_origin: r.get(6)?,
                dkim_signing_enabled: r.get(7)?,
                dkim_status: r.get(8)?,
                dkim_tokens: r.get(9)?,
                dkim_selector: r.get(10)?,
                dkim_next_length: r.get(11)?,
                dkim_length_changed_at: r.get(12)?,
                dkim_downgraded_at: r.get(13)?,
                tags: r.get(14)?,
                v_last_checked: r.get(15)?,
                v_last_success: r.get(16)?,
                v_error: r.get(17)?,
                v_soa: r.get(18)?,
                v_pending_since: r.get(19)?,
                v_failing_since: r.get(20)?,
                v_next_check_at: r.get(21)?,
                v_attempts: r.get(22)?,
                dkim_active: r.get(23)?,
                dkim_staged: r.get(24)?,
            })
        })
        .optional()
        .map_err(unavailable)?;
    let Some(row) = row else { return Ok(None) };
    let mut stmt = tx
        .prepare_cached(
            "SELECT selector, bits, public_der, sealed_private, created_at, retired_at \
             FROM dkim_keys WHERE account_id = ?1 AND identity_name = ?2 ORDER BY position",
        )
        .map_err(unavailable)?;
    let keys = stmt
        .query_map(params![account.as_str(), name], |r| {
            Ok(codec::KeyRow {
                selector: r.get(0)?,
                bits: r.get(1)?,
                public_der: r.get(2)?,
                sealed_private: r.get(3)?,
                created_at: r.get(4)?,
                retired_at: r.get(5)?,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    codec::decode_identity(account, row, keys).map(Some)
}

fn save_identity(
    tx: &Transaction<'_>,
    identity: &Identity,
    version: u64,
) -> Result<(), StoreError> {
    let row = codec::encode_identity(identity, version);
    let unchanged = keys_unchanged(tx, identity)?;
    // An upsert, not INSERT OR REPLACE: a replace would delete the row and cascade to its keys.
    // Any write ends a verification lease.
    tx.exec(
        "INSERT INTO identities (account_id, identity_type, name, version, created_at, \
         feedback_forwarding, signing_override, verification_status, dkim_origin, \
         dkim_signing_enabled, dkim_status, dkim_tokens, dkim_selector, dkim_next_length, \
         dkim_length_changed_at, dkim_downgraded_at, tags, v_last_checked, v_last_success, \
         v_error, v_soa, v_pending_since, v_failing_since, v_next_check_at, v_attempts, \
         dkim_active, dkim_staged) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27) \
         ON CONFLICT (account_id, name) DO UPDATE SET identity_type = excluded.identity_type, \
         version = excluded.version, created_at = excluded.created_at, \
         feedback_forwarding = excluded.feedback_forwarding, \
         signing_override = excluded.signing_override, \
         verification_status = excluded.verification_status, \
         dkim_origin = excluded.dkim_origin, \
         dkim_signing_enabled = excluded.dkim_signing_enabled, \
         dkim_status = excluded.dkim_status, dkim_tokens = excluded.dkim_tokens, \
         dkim_selector = excluded.dkim_selector, dkim_next_length = excluded.dkim_next_length, \
         dkim_length_changed_at = excluded.dkim_length_changed_at, \
         dkim_downgraded_at = excluded.dkim_downgraded_at, tags = excluded.tags, \
         v_last_checked = excluded.v_last_checked, v_last_success = excluded.v_last_success, \
         v_error = excluded.v_error, v_soa = excluded.v_soa, \
         v_pending_since = excluded.v_pending_since, \
         v_failing_since = excluded.v_failing_since, \
         v_next_check_at = excluded.v_next_check_at, v_attempts = excluded.v_attempts, \
         dkim_active = excluded.dkim_active, dkim_staged = excluded.dkim_staged, \
         v_lease_until = NULL",
        params![
            identity.account.as_str(),
            codec::type_text(identity.name.kind()),
            row.name,
            row.version,
            row.created_at,
            row.feedback_forwarding,
            row.signing_override,
            row.verification_status,
            row.dkim_origin,
            row.dkim_signing_enabled,
            row.dkim_status,
            row.dkim_tokens,
            row.dkim_selector,
            row.dkim_next_length,
            row.dkim_length_changed_at,
            row.dkim_downgraded_at,
            row.tags,
            row.v_last_checked,
            row.v_last_success,
            row.v_error,
            row.v_soa,
            row.v_pending_since,
            row.v_failing_since,
            row.v_next_check_at,
            row.v_attempts,
            row.dkim_active,
            row.dkim_staged,
        ],
    )
    .map_err(unavailable)?;
    if unchanged {
        return Ok(());
    }
    tx.exec(
        "DELETE FROM dkim_keys WHERE account_id = ?1 AND identity_name = ?2",
        params![identity.account.as_str(), identity.name.as_str()],
    )
    .map_err(unavailable)?;
    if let Some(Dkim { keys, .. }) = &identity.dkim {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO dkim_keys (account_id, identity_name, position, selector, bits, \
                 public_der, sealed_private, created_at, retired_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(unavailable)?;
        for (i, k) in keys.iter().enumerate() {
            stmt.execute(params![
                identity.account.as_str(),
                identity.name.as_str(),
                i as i64,
                k.selector.as_str(),
                k.bits,
                k.public_der,
                k.sealed_private,
                k.created_at.0,
                k.retired_at.map(|t| t.0),
            ])
            .map_err(unavailable)?;
        }
    }
    Ok(())
}

fn stored_version(
    tx: &Transaction<'_>,
    account: &AccountId,
    name: &str,
) -> Result<Option<u64>, StoreError> {
    tx.row(
        "SELECT version FROM identities WHERE account_id = ?1 AND name = ?2",
        params![account.as_str(), name],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map_err(unavailable)
    .map(|v| v.map(|v| v as u64))
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn to_account((id, name, created_at): (String, String, i64)) -> Result<Account, StoreError> {
    Ok(Account {
        id: AccountId::parse(&id).map_err(codec::corrupt)?,
        name,
        created_at: Timestamp(created_at),
    })
}

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, Vec<u8>, bool, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_key(
    (id, account, sealed_secret, enabled, created_at): (String, String, Vec<u8>, bool, i64),
) -> Result<AccessKey, StoreError> {
    Ok(AccessKey {
        id,
        account: AccountId::parse(&account).map_err(codec::corrupt)?,
        sealed_secret,
        enabled,
        created_at: Timestamp(created_at),
    })
}

/// Whether the stored keys already equal the identity's, so a write that changes only flags,
/// tags or verification state leaves the key rows (and the key-zone generation) alone.
fn keys_unchanged(tx: &Transaction<'_>, identity: &Identity) -> Result<bool, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT selector, public_der, sealed_private, retired_at FROM dkim_keys \
             WHERE account_id = ?1 AND identity_name = ?2 ORDER BY position",
        )
        .map_err(unavailable)?;
    let stored: Vec<codec::StoredKey> = stmt
        .query_map(
            params![identity.account.as_str(), identity.name.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    Ok(codec::keys_unchanged(&stored, identity))
}

fn insert_identity(
    tx: &Transaction<'_>,
    identity: &Identity,
    max_identities: u64,
) -> Result<(), StoreError> {
    if stored_version(tx, &identity.account, identity.name.as_str())?.is_some() {
        return Err(StoreError::AlreadyExists);
    }
    let count: i64 = tx
        .row(
            "SELECT COUNT(*) FROM identities WHERE account_id = ?1",
            params![identity.account.as_str()],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if count as u64 >= max_identities {
        return Err(StoreError::LimitExceeded);
    }
    save_identity(tx, identity, identity.version)
}

fn update_identity(tx: &Transaction<'_>, identity: &Identity) -> Result<u64, StoreError> {
    match stored_version(tx, &identity.account, identity.name.as_str())? {
        None => return Err(StoreError::NotFound),
        Some(v) if v != identity.version => return Err(StoreError::Conflict),
        Some(_) => {}
    }
    let next = identity.version + 1;
    save_identity(tx, identity, next)?;
    Ok(next)
}

impl Store for SqliteStore {
    fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Identity>, StoreError> {
        // The verifier polls several times a second: look first with a reader, so an idle
        // poll never takes the write lock that API writes need.
        let any_due = self.read(|tx| {
            tx.row(
                "SELECT EXISTS (SELECT 1 FROM identities WHERE v_next_check_at <= ?1 \
                 AND (v_lease_until IS NULL OR v_lease_until <= ?1))",
                params![now.0],
                |r| r.get::<_, bool>(0),
            )
            .map_err(unavailable)
        })?;
        if !any_due {
            return Ok(vec![]);
        }
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT account_id, name FROM identities \
                     WHERE v_next_check_at <= ?1 AND (v_lease_until IS NULL OR v_lease_until <= ?1) \
                     ORDER BY v_next_check_at LIMIT ?2",
                )
                .map_err(unavailable)?;
            let due = stmt
                .query_map(params![now.0, limit as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(due.len());
            for (account, name) in due {
                tx.exec(
                    "UPDATE identities SET v_lease_until = ?3 WHERE account_id = ?1 AND name = ?2",
                    params![account, name, lease_until.0],
                )
                .map_err(unavailable)?;
                let account = AccountId::parse(&account).map_err(codec::corrupt)?;
                if let Some(identity) = load_identity(tx, &account, &name)? {
                    out.push(identity);
                }
            }
            Ok(out)
        })
    }

    fn published_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT k.selector, k.public_der FROM dkim_keys k JOIN identities i \
                     ON i.account_id = k.account_id AND i.name = k.identity_name \
                     WHERE i.dkim_origin = 'AWS_SES'",
                )
                .map_err(unavailable)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)
        })
    }

    fn key_generation(&self) -> Result<u64, StoreError> {
        self.read(|tx| {
            tx.row("SELECT value FROM key_generation WHERE id = 0", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v as u64)
            .map_err(unavailable)
        })
    }

    fn insert_identity(&self, identity: &Identity, max_identities: u64) -> Result<(), StoreError> {
        let identity = identity.clone();
        self.write(move |tx| insert_identity(tx, &identity, max_identities))
    }

    fn get_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Option<Identity>, StoreError> {
        self.read(|tx| load_identity(tx, account, name.as_str()))
    }

    fn update_identity(&self, identity: &Identity) -> Result<u64, StoreError> {
        let identity = identity.clone();
        self.write(move |tx| update_identity(tx, &identity))
    }

    fn delete_identity(&self, account: &AccountId, name: &IdentityName) -> Result<(), StoreError> {
        let (account, name) = (account.clone(), name.clone());
        self.write(move |tx| {
            // Keys go through ON DELETE CASCADE, in the same transaction.
            let n = tx
                .exec(
                    "DELETE FROM identities WHERE account_id = ?1 AND name = ?2",
                    params![account.as_str(), name.as_str()],
                )
                .map_err(unavailable)?;
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    fn list_identities(
        &self,
        account: &AccountId,
        filter: &IdentityFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IdentitySummary>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT name, verification_status FROM identities \
                     WHERE account_id = ?1 AND (?2 IS NULL OR name > ?2) \
                     AND (?3 IS NULL OR instr(lower(name), lower(?3)) > 0) \
                     AND (?4 IS NULL OR identity_type = ?4) \
                     AND (?5 IS NULL OR verification_status = ?5) \
                     ORDER BY name LIMIT ?6",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(
                    params![
                        account.as_str(),
                        after,
                        filter.name_contains,
                        filter.identity_type.map(codec::type_text),
                        filter.verification_status.map(codec::status_text),
                        limit as i64,
                    ],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (name, status) = row.map_err(unavailable)?;
                out.push(IdentitySummary {
                    name: IdentityName::parse(&name).map_err(codec::corrupt)?,
                    verification_status: codec::parse_status(&status)?,
                });
            }
            Ok(out)
        })
    }

    fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        let account = account.clone();
        self.write(move |tx| {
            let taken: i64 = tx
                .row(
                    "SELECT COUNT(*) FROM accounts WHERE id = ?1 OR name = ?2",
                    params![account.id.as_str(), account.name],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            if taken > 0 {
                return Err(StoreError::AlreadyExists);
            }
            tx.exec(
                "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![account.id.as_str(), account.name, account.created_at.0],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.read(|tx| {
            tx.row(
                "SELECT id, name, created_at FROM accounts WHERE name = ?1",
                params![name],
                account_row,
            )
            .optional()
            .map_err(unavailable)?
            .map(to_account)
            .transpose()
        })
    }

    fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached("SELECT id, name, created_at FROM accounts ORDER BY name")
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([], account_row)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter().map(to_account).collect()
        })
    }

    fn put_access_key(&self, key: &AccessKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |tx| {
            tx.exec(
                "INSERT OR REPLACE INTO access_keys (id, account_id, sealed_secret, enabled, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    key.id,
                    key.account.as_str(),
                    key.sealed_secret,
                    key.enabled,
                    key.created_at.0
                ],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn access_key(&self, id: &str) -> Result<Option<AccessKey>, StoreError> {
        // Every API request reads its access key: a cached statement skips the SQL compile.
        self.read_one(|tx| {
            tx.prepare_cached(
                "SELECT id, account_id, sealed_secret, enabled, created_at FROM access_keys \
                 WHERE id = ?1",
            )
            .and_then(|mut stmt| stmt.query_row(params![id], key_row))
            .optional()
            .map_err(unavailable)?
            .map(to_key)
            .transpose()
        })
    }

    fn access_keys_of(&self, account: &AccountId) -> Result<Vec<AccessKey>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, account_id, sealed_secret, enabled, created_at FROM access_keys \
                     WHERE account_id = ?1 ORDER BY created_at, id",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![account.as_str()], key_row)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter().map(to_key).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::{SqliteStore, WriteFn, insert_identity, update_identity};
    use crate::conformance::{account, easy_domain};
    use sesame_core::StoreError;
    use sesame_core::model::IdentityName;
    use sesame_core::ports::Store;

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("sesame.db")).unwrap();
        (dir, store)
    }

    fn name(s: &str) -> IdentityName {
        IdentityName::parse(s).unwrap()
    }

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
    fn keys_written_before_the_rowid_migration_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sesame.db");
        let acc = sesame_core::model::AccountId::parse("900000000005").unwrap();
        let old = easy_domain(&acc, "old.example.com");
        // A database as schema 3 left it, written by the same row code (0004 changes only how
        // `dkim_keys` is stored, not its columns).
        let generation_before: i64 = {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            conn.pragma_update(None, "foreign_keys", "ON").unwrap();
            super::migrate(&conn, 3).unwrap();
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(version, 3);
            conn.execute(
                "INSERT INTO accounts (id, name, created_at) VALUES (?1, 'old', 1)",
                [acc.as_str()],
            )
            .unwrap();
            let tx = conn.transaction().unwrap();
            insert_identity(&tx, &old, 10).unwrap();
            tx.commit().unwrap();
            conn.query_row("SELECT value FROM key_generation", [], |r| r.get(0))
                .unwrap()
        };
        let store = SqliteStore::open(&path).unwrap();
        let got = store
            .get_identity(&acc, &name("old.example.com"))
            .unwrap()
            .unwrap();
        assert_eq!(got.dkim, old.dkim);
        assert_eq!(store.published_keys().unwrap().len(), 3);
        let schema: String = store
            .read_one(|c| {
                c.query_row(
                    "SELECT sql FROM sqlite_master WHERE name = 'dkim_keys'",
                    [],
                    |r| r.get(0),
                )
                .map_err(super::unavailable)
            })
            .unwrap();
        assert!(!schema.contains("WITHOUT ROWID"), "{schema}");
        // The key zone sees the move, and the new table's triggers keep it informed.
        let moved = store.key_generation().unwrap();
        assert!(moved > u64::try_from(generation_before).unwrap());
        store
            .delete_identity(&acc, &name("old.example.com"))
            .unwrap();
        assert!(store.key_generation().unwrap() > moved);
        assert!(store.published_keys().unwrap().is_empty());
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
                super::load_identity(conn, &acc, "a.example.com")?;
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

    #[test]
    fn concurrent_writes_all_commit() {
        let (dir, store) = open();
        let a = account(&store, "900000000001", "many");
        let (threads, each) = (16, 50);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (store, a) = (&store, &a);
                s.spawn(move || {
                    for i in 0..each {
                        let d = easy_domain(a, &format!("t{t}-{i}.example.com"));
                        store.insert_identity(&d, 10_000).unwrap();
                    }
                });
            }
        });
        let listed = |store: &SqliteStore| {
            store
                .list_identities(&a, &Default::default(), None, 10_000)
                .unwrap()
                .len()
        };
        assert_eq!(listed(&store), threads * each);
        // Dropping stops the writer (else this would hang) and leaves every row on disk.
        drop(store);
        let store = SqliteStore::open(&dir.path().join("sesame.db")).unwrap();
        assert_eq!(listed(&store), threads * each);
    }

    #[test]
    fn a_failed_write_leaves_the_rest_of_its_batch_alone() {
        let (_dir, store) = open();
        let acc = account(&store, "900000000002", "batch");
        let a = easy_domain(&acc, "a.example.com");
        let b = easy_domain(&acc, "b.example.com");
        let c = easy_domain(&acc, "c.example.com");
        let jobs: Vec<WriteFn<u64>> = vec![
            Box::new({
                let a = a.clone();
                move |tx| insert_identity(tx, &a, 10).map(|()| 0)
            }),
            Box::new({
                let a = a.clone();
                move |tx| insert_identity(tx, &a, 10).map(|()| 0)
            }),
            // Fails after writing: the write must vanish with it.
            Box::new({
                let b = b.clone();
                move |tx| {
                    insert_identity(tx, &b, 10)?;
                    Err(StoreError::Conflict)
                }
            }),
            // Later writes see earlier ones: the update finds the row inserted above...
            Box::new({
                let a = a.clone();
                move |tx| update_identity(tx, &a)
            }),
            // ...and the same stale version then conflicts.
            Box::new({
                let a = a.clone();
                move |tx| update_identity(tx, &a)
            }),
            Box::new(|_| panic!("a job that panics")),
            Box::new({
                let c = c.clone();
                move |tx| insert_identity(tx, &c, 10).map(|()| 0)
            }),
        ];
        let got = store.write_batch(jobs);
        assert!(matches!(got[0], Ok(0)), "{:?}", got[0]);
        assert!(
            matches!(got[1], Err(StoreError::AlreadyExists)),
            "{:?}",
            got[1]
        );
        assert!(matches!(got[2], Err(StoreError::Conflict)), "{:?}", got[2]);
        assert!(matches!(got[3], Ok(2)), "{:?}", got[3]);
        assert!(matches!(got[4], Err(StoreError::Conflict)), "{:?}", got[4]);
        assert!(
            matches!(got[5], Err(StoreError::Unavailable(_))),
            "{:?}",
            got[5]
        );
        assert!(matches!(got[6], Ok(0)), "{:?}", got[6]);

        let stored = store.get_identity(&acc, &a.name).unwrap().unwrap();
        assert_eq!(stored.version, 2);
        assert!(store.get_identity(&acc, &b.name).unwrap().is_none());
        assert!(store.get_identity(&acc, &c.name).unwrap().is_some());
        // The panic did not take the writer down.
        store.insert_identity(&b, 10).unwrap();
    }

    #[test]
    fn a_failed_commit_fails_and_drops_the_whole_batch() {
        let (_dir, store) = open();
        let acc = account(&store, "900000000003", "doomed");
        let a = easy_domain(&acc, "a.example.com");
        let generation = store.key_generation().unwrap();
        let jobs: Vec<WriteFn<()>> = vec![
            Box::new({
                let a = a.clone();
                move |tx| insert_identity(tx, &a, 10)
            }),
            // A key of no identity, with the foreign key checked only at COMMIT: the job
            // succeeds, the COMMIT fails.
            Box::new({
                let acc = acc.clone();
                move |tx| {
                    tx.execute_batch(&format!(
                        "PRAGMA defer_foreign_keys = ON; \
                         INSERT INTO dkim_keys (account_id, identity_name, position, selector, \
                         bits, public_der, sealed_private, created_at) \
                         VALUES ('{}', 'ghost.example.com', 0, 's', 2048, x'00', x'00', 0)",
                        acc.as_str()
                    ))
                    .map_err(super::unavailable)
                }
            }),
        ];
        let got = store.write_batch(jobs);
        for r in &got {
            assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
        }
        assert!(store.get_identity(&acc, &a.name).unwrap().is_none());
        assert!(
            store
                .get_identity(&acc, &name("ghost.example.com"))
                .unwrap()
                .is_none()
        );
        assert_eq!(store.key_generation().unwrap(), generation);
        // The writer recovers: the next batch commits.
        store.insert_identity(&a, 10).unwrap();
        assert!(store.get_identity(&acc, &a.name).unwrap().is_some());
    }
}
