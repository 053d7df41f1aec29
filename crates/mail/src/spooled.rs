//! The embedded delivery: a message is acknowledged once the spool has it durably (one
//! group-committed `fdatasync` for many messages), and its outbox file is written, unflushed,
//! before that, so a reader finds it as soon as the API answers. Every second a checkpoint
//! rolls the spool's segment, makes the outbox durable with one `syncfs` and deletes the
//! closed segment. After a crash or a power cut, `open` writes every message of the segments
//! still present into the outbox again (the same bytes under the same name, so a message
//! that was already there is not doubled) before anything new is accepted.

use crate::MailError;
use crate::outbox::Outbox;
use crate::spool::{Letter, Spool};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The outbox behind the spool, with its checkpoint thread; dropping it takes a last
/// checkpoint.
pub struct SpooledOutbox {
    inner: Arc<Inner>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

struct Inner {
    outbox: Outbox,
    spool: Spool,
    /// Closed segments whose letters are not yet known to be durable in the outbox.
    closed: Mutex<Vec<PathBuf>>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Inner {
    /// One checkpoint: roll, `syncfs`, forget. A failure leaves the segments for the next.
    fn checkpoint(&self) -> Result<(), MailError> {
        let mut closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, _)) = self.spool.roll()? {
            closed.push(s);
        }
        if closed.is_empty() {
            return Ok(());
        }
        self.outbox.sync()?;
        self.spool.forget(&closed)?;
        closed.clear();
        Ok(())
    }
}

impl SpooledOutbox {
    /// Opens the outbox in `outbox_dir` and the spool in `spool_dir`, puts back what a
    /// previous process left in the spool, and checkpoints every `every`. Returns the number
    /// of messages put back.
    pub fn open(
        outbox_dir: &Path,
        spool_dir: &Path,
        every: Duration,
    ) -> Result<(SpooledOutbox, usize), MailError> {
        let outbox = Outbox::new(outbox_dir)?;
        let (spool, left) = Spool::open(spool_dir)?;
        for l in &left.letters {
            outbox.write(&l.id, &l.return_path, &l.message)?;
        }
        if !left.letters.is_empty() {
            outbox.sync()?;
        }
        spool.forget(&left.segments)?;
        let inner = Arc::new(Inner {
            outbox,
            spool,
            closed: Mutex::new(Vec::new()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let checkpointer = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("sesame-outbox-sync".into())
                .spawn(move || {
                    let mut stop = inner.stop.lock().unwrap_or_else(|e| e.into_inner());
                    while !*stop {
                        stop = inner
                            .wake
                            .wait_timeout(stop, every)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                        drop(stop);
                        if let Err(e) = inner.checkpoint() {
                            tracing::warn!(error = %e, "outbox checkpoint failed; kept for the next");
                        }
                        stop = inner.stop.lock().unwrap_or_else(|e| e.into_inner());
                    }
                })?
        };
        Ok((
            SpooledOutbox {
                inner,
                checkpointer: Some(checkpointer),
            },
            left.letters.len(),
        ))
    }

    /// Delivers `message` under `id` from `return_path`: its outbox file first, then the
    /// spool's durable record, which is what makes it acknowledged.
    pub fn deliver(
        &self,
        id: &str,
        return_path: &str,
        recipients: &[&str],
        message: &[u8],
    ) -> Result<(), MailError> {
        Outbox::check(id, return_path)?;
        // Written before the spool holds it: a checkpoint that sees the record in a closed
        // segment then knows the file exists and `syncfs` covers it.
        let path = self.inner.outbox.write(id, return_path, message)?;
        let letter = Letter {
            id: id.to_owned(),
            return_path: return_path.to_owned(),
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            message: message.to_vec(),
        };
        if let Err(e) = self.inner.spool.append(&letter).map(|_| ()) {
            // Not acknowledged, so not delivered.
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for SpooledOutbox {
    fn drop(&mut self) {
        *self.inner.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.inner.wake.notify_all();
        if let Some(c) = self.checkpointer.take() {
            let _ = c.join();
        }
        if let Err(e) = self.inner.checkpoint() {
            tracing::warn!(error = %e, "last outbox checkpoint failed; the spool keeps the messages");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_message_is_in_the_outbox_when_delivered_and_the_spool_empties_at_checkpoints() {
        let d = tempfile::tempdir().unwrap();
        let (out, spool) = (d.path().join("out"), d.path().join("spool"));
        let (s, replayed) = SpooledOutbox::open(&out, &spool, Duration::from_secs(3600)).unwrap();
        assert_eq!(replayed, 0);
        s.deliver("m-1", "b@x.example", &["r@y.example"], b"A: 1\r\n\r\nbody")
            .unwrap();
        assert_eq!(
            std::fs::read(out.join("m-1.eml")).unwrap(),
            b"Return-Path: <b@x.example>\r\nA: 1\r\n\r\nbody"
        );
        assert!(s.deliver("../m", "b@x.example", &[], b"m").is_err());
        s.inner.checkpoint().unwrap();
        assert_eq!(
            names(&spool).len(),
            1,
            "only the new, empty segment is left"
        );
        assert_eq!(names(&out), ["m-1.eml"]);
    }

    /// What a crash loses from the outbox (here: a file removed before any checkpoint) comes
    /// back from the spool at the next start, once.
    #[test]
    fn the_next_start_puts_back_what_the_spool_still_holds() {
        let d = tempfile::tempdir().unwrap();
        let (out, spool) = (d.path().join("out"), d.path().join("spool"));
        let (s, _) = SpooledOutbox::open(&out, &spool, Duration::from_secs(3600)).unwrap();
        s.deliver("kept", "b@x.example", &[], b"one").unwrap();
        s.deliver("lost", "b@x.example", &[], b"two").unwrap();
        // Dropping takes a checkpoint; forget the process instead, as a kill would.
        std::mem::forget(s);
        std::fs::remove_file(out.join("lost.eml")).unwrap();
        let (_s, replayed) = SpooledOutbox::open(&out, &spool, Duration::from_secs(3600)).unwrap();
        assert_eq!(replayed, 2);
        assert_eq!(names(&out), ["kept.eml", "lost.eml"]);
        assert_eq!(
            std::fs::read(out.join("lost.eml")).unwrap(),
            b"Return-Path: <b@x.example>\r\ntwo"
        );
    }
}
