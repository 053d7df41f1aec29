//! Delivery through an SMTP relay, off the request path: a message is acknowledged once the
//! spool holds it (one group-committed `fdatasync` for many), and a few worker threads send
//! it over the relay's pooled connections. A temporary failure is retried with a doubling
//! backoff; a message that is refused (5xx) or still failing after the last attempt is
//! reported in `<data-dir>/failed/` (`<id>.eml`, and `<id>.reason` saying why) and in the log.
//! Either outcome is written to a second spool, the done log, before the message is let go.
//!
//! After a crash, `open` sends again every message of the spool that the done log does not
//! name. So an acknowledged message is delivered or reported; it is sent twice only if the
//! process dies between the relay's `250` and the done log's flush (milliseconds), which
//! SMTP cannot rule out (the receiver sees the same Message-ID twice).
//!
//! Segments are let go in order: a letter segment once every message in it is done, a
//! done-log segment once every letter segment it can name is gone. Each checkpoint rolls the
//! done log before the letter spool, so a done-log segment closed at checkpoint k names only
//! letters of segments closed at or before k.

use crate::MailError;
use crate::outbox::Outbox;
use crate::relay::{Failure, SmtpRelay};
use crate::spool::{Letter, Spool};
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often and how patiently a message is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt; each later wait doubles, up to `max_delay`.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (1 = the first).
    pub fn delay(&self, n: u32) -> Duration {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let wait = sesame_core::backoff::doubling(
            ms(self.first_delay),
            ms(self.max_delay),
            n.saturating_sub(1),
        );
        Duration::from_millis(u64::try_from(wait).unwrap_or(0))
    }
}

/// Messages waiting in memory beyond which new ones are refused (the relay is down or slow):
/// the caller gets 503 and retries, instead of the process growing without bound.
const MAX_QUEUED: usize = 100_000;

/// Sequence numbers of the letters put back at start-up, far above this process's own.
const LEFTOVER_BASE: u64 = 1 << 62;

struct Job {
    seq: u64,
    letter: Letter,
    attempts: u32,
}

/// A closed letter segment (or, index 0, everything a previous process left).
struct Closed {
    index: u64,
    paths: Vec<PathBuf>,
    first: u64,
    last: u64,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Job>,
    later: Vec<(Instant, Job)>,
    /// Sequence numbers acknowledged and not yet done.
    pending: BTreeSet<u64>,
    closed: VecDeque<Closed>,
    /// Done-log segments, each with the index of the last letter segment it can name.
    done_closed: VecDeque<(PathBuf, u64)>,
    /// Letter segments closed so far (the leftovers are 0).
    rolls: u64,
    /// The last sequence number of the last closed letter segment.
    last_closed: u64,
    stop: bool,
}

struct Inner {
    relay: SmtpRelay,
    letters: Spool,
    done: Spool,
    failed: Outbox,
    policy: RetryPolicy,
    state: Mutex<State>,
    /// Wakes the workers: a job is ready, or stop.
    work: Condvar,
    /// Wakes the checkpoint thread to stop.
    tick: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next job whose time has come, waiting for one; `None` once stopped.
    fn next(&self) -> Option<Job> {
        let mut st = self.lock();
        loop {
            if st.stop {
                return None;
            }
            let now = Instant::now();
            let mut i = 0;
            while i < st.later.len() {
                if st.later[i].0 <= now {
                    let (_, job) = st.later.swap_remove(i);
                    st.ready.push_back(job);
                } else {
                    i += 1;
                }
            }
            if let Some(job) = st.ready.pop_front() {
                return Some(job);
            }
            let wait = st
                .later
                .iter()
                .map(|(t, _)| t.saturating_duration_since(now))
                .min()
                .unwrap_or(Duration::from_secs(1));
            st = self
                .work
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn attempt(&self, mut job: Job) {
        let l = &job.letter;
        let to: Vec<&str> = l.recipients.iter().map(String::as_str).collect();
        job.attempts += 1;
        let failure = match self.relay.send(&l.return_path, &to, &l.message) {
            Ok(()) => return self.finish(&job, "delivered"),
            Err(f) => f,
        };
        match failure {
            Failure::Temporary(why) if job.attempts < self.policy.attempts => {
                let wait = self.policy.delay(job.attempts);
                tracing::info!(message_id = %l.id, attempt = job.attempts, error = %why, retry_in = ?wait, "relay: temporary failure; will retry");
                self.lock().later.push((Instant::now() + wait, job));
                self.work.notify_one();
            }
            f => {
                let why = match &f {
                    Failure::Temporary(w) => {
                        format!("relay failed after {} attempts: {w}", job.attempts)
                    }
                    Failure::Permanent(w) => format!("relay refused the message: {w}"),
                };
                tracing::warn!(message_id = %l.id, attempts = job.attempts, error = %why, "relay: message not delivered; reported in failed/");
                if let Err(e) = self.report(&job.letter, &why) {
                    // Without a durable report the message stays pending: it is tried again
                    // after a restart rather than lost.
                    tracing::error!(message_id = %l.id, error = %e, "relay: could not write the failure report");
                    return;
                }
                self.finish(&job, "failed");
            }
        }
    }

    /// `failed/<id>.eml` and `failed/<id>.reason`, durable.
    fn report(&self, l: &Letter, why: &str) -> Result<(), MailError> {
        self.failed.write(&l.id, &l.return_path, &l.message)?;
        std::fs::write(
            self.failed.path_of(&l.id).with_extension("reason"),
            format!("{why}\n"),
        )?;
        self.failed.sync()
    }

    fn finish(&self, job: &Job, outcome: &str) {
        let marker = Letter {
            id: job.letter.id.clone(),
            return_path: String::new(),
            recipients: Vec::new(),
            message: outcome.as_bytes().to_vec(),
        };
        if let Err(e) = self.done.append(&marker) {
            tracing::error!(message_id = %job.letter.id, error = %e, "relay: could not record the outcome; the message stays in the spool");
            return;
        }
        self.lock().pending.remove(&job.seq);
    }

    /// Rolls the done log, then the letters, and lets go of what is finished.
    fn checkpoint(&self) -> Result<(), MailError> {
        let done_closed = self.done.roll()?;
        let letters_closed = self.letters.roll()?;
        let mut forget = Vec::new();
        {
            let mut st = self.lock();
            if let Some((d, _)) = done_closed {
                let names_upto = st.rolls + 1;
                st.done_closed.push_back((d, names_upto));
            }
            if let Some((p, last)) = letters_closed {
                st.rolls += 1;
                let c = Closed {
                    index: st.rolls,
                    paths: vec![p],
                    first: st.last_closed + 1,
                    last,
                };
                st.last_closed = last;
                st.closed.push_back(c);
            }
            let mut gone_upto = None;
            while let Some(c) = st.closed.front() {
                if st.pending.range(c.first..=c.last).next().is_some() {
                    break;
                }
                gone_upto = Some(c.index);
                if let Some(c) = st.closed.pop_front() {
                    forget.extend(c.paths);
                }
            }
            if let Some(upto) = gone_upto {
                while st.done_closed.front().is_some_and(|(_, n)| *n <= upto) {
                    if let Some((d, _)) = st.done_closed.pop_front() {
                        forget.push(d);
                    }
                }
            }
        }
        // Letter segments first: a done segment outliving its letters is harmless, the
        // other way round a letter would be sent again.
        self.letters.forget(&forget)
    }
}

/// The relay behind the spool, with its workers and checkpoint thread.
pub struct SpooledRelay {
    inner: Arc<Inner>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl SpooledRelay {
    /// Opens the spool in `spool_dir` (letters) and `spool_dir/done` (outcomes), queues again
    /// every letter a previous process left undone, and starts `workers` senders. Returns the
    /// number of letters queued again.
    pub fn open(
        relay: SmtpRelay,
        spool_dir: &Path,
        failed_dir: &Path,
        workers: usize,
        policy: RetryPolicy,
    ) -> Result<(SpooledRelay, usize), MailError> {
        let (letters, left) = Spool::open(spool_dir)?;
        let (done, done_left) = Spool::open(&spool_dir.join("done"))?;
        let finished: HashSet<String> = done_left.letters.into_iter().map(|l| l.id).collect();
        let mut st = State::default();
        let mut requeued = 0;
        for (i, letter) in left.letters.into_iter().enumerate() {
            if finished.contains(&letter.id) {
                continue;
            }
            let seq = LEFTOVER_BASE + i as u64;
            st.pending.insert(seq);
            st.ready.push_back(Job {
                seq,
                letter,
                attempts: 0,
            });
            requeued += 1;
        }
        st.closed.push_back(Closed {
            index: 0,
            paths: left.segments,
            first: LEFTOVER_BASE,
            last: u64::MAX,
        });
        for d in done_left.segments {
            st.done_closed.push_back((d, 0));
        }
        let inner = Arc::new(Inner {
            relay,
            letters,
            done,
            failed: Outbox::new(failed_dir)?,
            policy,
            state: Mutex::new(st),
            work: Condvar::new(),
            tick: Condvar::new(),
        });
        let mut threads = Vec::new();
        for n in 0..workers.max(1) {
            let inner = inner.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sesame-relay-{n}"))
                    .spawn(move || {
                        while let Some(job) = inner.next() {
                            inner.attempt(job);
                        }
                    })?,
            );
        }
        {
            let inner = inner.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("sesame-relay-spool".into())
                    .spawn(move || {
                        loop {
                            {
                                let st = inner.lock();
                                let (st, _) = inner
                                    .tick
                                    .wait_timeout_while(st, Duration::from_secs(1), |s| !s.stop)
                                    .unwrap_or_else(|e| e.into_inner());
                                if st.stop {
                                    return;
                                }
                            }
                            if let Err(e) = inner.checkpoint() {
                                tracing::warn!(error = %e, "relay spool checkpoint failed; kept for the next");
                            }
                        }
                    })?,
            );
        }
        Ok((SpooledRelay { inner, threads }, requeued))
    }

    /// Accepts `message` for delivery: returns once the spool holds it durably.
    pub fn deliver(
        &self,
        id: &str,
        from: &str,
        recipients: &[&str],
        message: &[u8],
    ) -> Result<(), MailError> {
        Outbox::check(id, from)?;
        if self.inner.lock().pending.len() >= MAX_QUEUED {
            return Err(MailError::Io(std::io::Error::other(format!(
                "{MAX_QUEUED} messages are waiting for the relay"
            ))));
        }
        let letter = Letter {
            id: id.to_owned(),
            return_path: from.to_owned(),
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            message: message.to_vec(),
        };
        let seq = self.inner.letters.append(&letter)?;
        let mut st = self.inner.lock();
        st.pending.insert(seq);
        st.ready.push_back(Job {
            seq,
            letter,
            attempts: 0,
        });
        drop(st);
        self.inner.work.notify_one();
        Ok(())
    }

    /// Messages acknowledged and not yet delivered or reported.
    pub fn pending(&self) -> usize {
        self.inner.lock().pending.len()
    }
}

impl Drop for SpooledRelay {
    fn drop(&mut self) {
        self.inner.lock().stop = true;
        self.inner.work.notify_all();
        self.inner.tick.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Err(e) = self.inner.checkpoint() {
            tracing::warn!(error = %e, "last relay spool checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let p = RetryPolicy {
            attempts: 8,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        };
        let waits: Vec<u64> = (1..=8).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.delay(200), Duration::from_secs(60));
    }
}
