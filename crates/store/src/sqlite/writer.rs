//! The group-commit writer: one thread owns the only writing connection and commits queued
//! writes in batches (the module doc of `sqlite` tells the rules).

use rusqlite::{Connection, Transaction, TransactionBehavior};
use sesame_core::StoreError;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Writes committed together at most: bounds how long the first caller of a batch waits for the
/// others' statements (the fsync costs the same for 1 or 256).
const MAX_BATCH: usize = 256;

/// The writer thread and its queue.
pub(super) struct Writer {
    /// `None` only while dropping: closing the queue is what stops the writer thread.
    queue: Option<mpsc::Sender<Vec<Box<dyn Job>>>>,
    thread: Option<JoinHandle<()>>,
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread is gone".into())
}

impl Writer {
    /// Starts the thread that owns `conn` from now on.
    pub(super) fn start(conn: Connection) -> Result<Writer, StoreError> {
        let (queue, jobs) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(conn, jobs))
            .map_err(|e| StoreError::Unavailable(format!("starting the SQLite writer: {e}")))?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Runs `f` in the next group commit and returns its result once that batch is durable.
    /// `f` runs on the writer thread, hence `Send + 'static`: callers move owned copies in,
    /// which costs far less than the fsync they share.
    pub(super) fn write<T, F>(&self, f: F) -> Result<T, StoreError>
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
    pub(super) fn write_batch<T: Send + 'static>(
        &self,
        fs: Vec<WriteFn<T>>,
    ) -> Vec<Result<T, StoreError>> {
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
pub(super) type WriteFn<T> = Box<dyn FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send>;

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the writer loop; joining closes the writing connection before
        // `drop` returns, so the file can be reopened (or removed) right after.
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::SqliteStore;
    use super::super::identities::{insert_identity, update_identity};
    use super::super::sql::unavailable;
    use super::super::test_support::{name, open};
    use super::WriteFn;
    use crate::conformance::{account, easy_domain};
    use sesame_core::StoreError;
    use sesame_core::ports::{IdentityStore, KeyZoneSource};

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
        let got = store.writer.write_batch(jobs);
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
                    .map_err(unavailable)
                }
            }),
        ];
        let got = store.writer.write_batch(jobs);
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
