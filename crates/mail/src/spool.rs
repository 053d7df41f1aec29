//! The spool: a write-ahead log of accepted mail with group commit. A sender's message is
//! appended to the current segment file and the caller waits until an `fdatasync` covers it;
//! one writer thread makes that one flush for every message that arrived while the last one
//! ran, so durable sending costs one flush per batch instead of two per message (a new file
//! and its directory). Whatever consumes the spool (the outbox export) asks for `roll`: the
//! writer starts a new segment and hands back the closed ones, which the consumer deletes
//! once what it made of them is durable. At start-up the segments still present are read
//! back (`open`) so nothing acknowledged is lost.
//!
//! Hand-written because no maintained crate offers a file queue with group commit (the
//! `queue-file` family flushes per element) and the format is small: each record is
//! `len: u32 LE, crc32(body): u32 LE, body`, the body holding the message id, the envelope
//! sender, the recipients and the message. A torn or corrupt record ends its segment's
//! replay: it can only be the tail of a batch that was never acknowledged.

use crate::MailError;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// The message id (a safe file name).
    pub id: String,
    /// The envelope sender.
    pub return_path: String,
    /// The envelope recipients.
    pub recipients: Vec<String>,
    /// The signed message, byte for byte.
    pub message: Vec<u8>,
}

/// The largest record the reader accepts; SendEmail's own cap is far below it.
const MAX_RECORD: usize = 64 << 20;

impl Letter {
    fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), MailError> {
        let start = out.len();
        out.extend_from_slice(&[0; 8]);
        let field = |out: &mut Vec<u8>, s: &[u8]| -> Result<(), MailError> {
            let n = u16::try_from(s.len())
                .map_err(|_| MailError::Format("an envelope field over 64 KiB".into()))?;
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(s);
            Ok(())
        };
        field(out, self.id.as_bytes())?;
        field(out, self.return_path.as_bytes())?;
        let count = u16::try_from(self.recipients.len())
            .map_err(|_| MailError::Format("more than 65 535 recipients".into()))?;
        out.extend_from_slice(&count.to_le_bytes());
        for r in &self.recipients {
            field(out, r.as_bytes())?;
        }
        out.extend_from_slice(&self.message);
        let body_len = out.len() - start - 8;
        if body_len > MAX_RECORD {
            out.truncate(start);
            return Err(MailError::Format(
                "a message over the spool's record limit".into(),
            ));
        }
        let crc = crc32fast::hash(&out[start + 8..]);
        out[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    fn decode(body: &[u8]) -> Option<Letter> {
        struct Cursor<'a>(&'a [u8]);
        impl<'a> Cursor<'a> {
            fn take(&mut self, n: usize) -> Option<&'a [u8]> {
                if self.0.len() < n {
                    return None;
                }
                let (head, rest) = self.0.split_at(n);
                self.0 = rest;
                Some(head)
            }
            fn u16(&mut self) -> Option<u16> {
                Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
            }
            fn text(&mut self) -> Option<String> {
                let n = self.u16()? as usize;
                String::from_utf8(self.take(n)?.to_vec()).ok()
            }
        }
        let mut c = Cursor(body);
        let id = c.text()?;
        let return_path = c.text()?;
        let count = c.u16()?;
        let mut recipients = Vec::with_capacity(count as usize);
        for _ in 0..count {
            recipients.push(c.text()?);
        }
        Some(Letter {
            id,
            return_path,
            recipients,
            message: c.0.to_vec(),
        })
    }
}

/// Reads the whole records of one segment; stops at the first torn or corrupt one.
fn read_segment(path: &Path) -> io::Result<Vec<Letter>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(head[..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().unwrap_or_default());
        let Some(body) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if len > MAX_RECORD || crc32fast::hash(body) != crc {
            break;
        }
        let Some(letter) = Letter::decode(body) else {
            break;
        };
        out.push(letter);
        at += 8 + len;
    }
    Ok(out)
}

fn segment_name(n: u64) -> String {
    format!("{n:016}.seg")
}

/// The segments in `dir`, oldest first.
fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(".seg"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((n, entry.path()));
    }
    out.sort();
    Ok(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The segment being written.
struct Segment {
    number: u64,
    path: PathBuf,
    file: File,
    len: u64,
    /// The sequence number of the last letter written to it.
    last_seq: u64,
}

impl Segment {
    /// A new, empty segment whose name is durable before anything is acknowledged in it.
    fn create(dir: &Path, number: u64, last_seq: u64) -> io::Result<Segment> {
        let path = dir.join(segment_name(number));
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)?;
        sync_dir(dir)?;
        Ok(Segment {
            number,
            path,
            file,
            len: 0,
            last_seq,
        })
    }
}

/// Messages waiting for the writer, and what it has made durable.
#[derive(Default)]
struct Queue {
    /// Encoded records not yet handed to the writer.
    pending: Vec<u8>,
    /// Sequence number of the last record put into `pending`.
    queued: u64,
    /// Every record up to this one is durable.
    durable: u64,
    /// Records in `(from, to]` failed to become durable, with the reason; kept until no
    /// sender is waiting, so every sender of a failed batch learns of it.
    failed: Vec<(u64, u64, String)>,
    /// Senders inside `append`.
    waiting: usize,
    stop: bool,
}

struct Shared {
    dir: PathBuf,
    queue: Mutex<Queue>,
    /// Signals the writer that `pending` has records, and waiters that `durable` moved.
    work: Condvar,
    done: Condvar,
    segment: Mutex<Segment>,
}

/// A spool directory with its writer thread; dropping it stops the thread.
pub struct Spool {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// What `open` found: the letters of segments a previous process left, and the segments
/// to pass to `forget` once those letters are safe elsewhere.
pub struct Leftover {
    /// Every whole record, oldest first.
    pub letters: Vec<Letter>,
    /// The segment files they came from.
    pub segments: Vec<PathBuf>,
}

impl Spool {
    /// Opens (creating) the spool in `dir`, reads back what a previous process left there and
    /// starts a new segment after it.
    pub fn open(dir: &Path) -> Result<(Spool, Leftover), MailError> {
        std::fs::create_dir_all(dir)?;
        let old = segments(dir)?;
        let mut letters = Vec::new();
        for (_, path) in &old {
            letters.extend(read_segment(path)?);
        }
        let next = old.last().map_or(1, |(n, _)| n + 1);
        let segment = Segment::create(dir, next, 0)?;
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            segment: Mutex::new(segment),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("sesame-spool".into())
                .spawn(move || write_loop(&shared))?
        };
        let leftover = Leftover {
            letters,
            segments: old.into_iter().map(|(_, p)| p).collect(),
        };
        Ok((
            Spool {
                shared,
                writer: Some(writer),
            },
            leftover,
        ))
    }

    /// Appends `letter` and returns once it is durable (or failed to become so), with its
    /// sequence number: 1 for the first letter this process appended, then counting up.
    pub fn append(&self, letter: &Letter) -> Result<u64, MailError> {
        let mut q = lock(&self.shared.queue);
        if q.stop {
            return Err(MailError::Io(io::Error::other("the spool is shut down")));
        }
        letter.encode_into(&mut q.pending)?;
        q.queued += 1;
        q.waiting += 1;
        let seq = q.queued;
        self.shared.work.notify_one();
        while q.durable < seq {
            q = self.shared.done.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        let out = match q
            .failed
            .iter()
            .find(|(from, to, _)| *from < seq && seq <= *to)
        {
            Some((_, _, why)) => Err(MailError::Io(io::Error::other(format!(
                "spool write failed: {why}"
            )))),
            None => Ok(seq),
        };
        q.waiting -= 1;
        if q.waiting == 0 {
            q.failed.clear();
        }
        out
    }

    /// Closes the current segment, if anything was written to it, and starts the next; the
    /// closed segment is returned for `forget` once its letters are durable elsewhere, with
    /// the sequence number of its last letter (it holds every letter after the previous
    /// closed segment's last, up to that one).
    pub fn roll(&self) -> Result<Option<(PathBuf, u64)>, MailError> {
        let number = {
            let seg = lock(&self.shared.segment);
            if seg.len == 0 {
                return Ok(None);
            }
            seg.number
        };
        // Made outside the lock: the directory's fsync would otherwise hold up every sender
        // waiting on the writer. Only `roll` changes segments, and one thread calls it.
        let mut next = Segment::create(&self.shared.dir, number + 1, 0)?;
        let mut seg = lock(&self.shared.segment);
        next.last_seq = seg.last_seq;
        let closed = std::mem::replace(&mut *seg, next);
        Ok(Some((closed.path, closed.last_seq)))
    }

    /// Deletes segments whose letters are now durable elsewhere.
    pub fn forget(&self, segments: &[PathBuf]) -> Result<(), MailError> {
        for s in segments {
            match std::fs::remove_file(s) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        lock(&self.shared.queue).stop = true;
        self.shared.work.notify_all();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writer: takes everything queued, writes it in one call and flushes once.
fn write_loop(shared: &Shared) {
    let mut batch = Vec::new();
    loop {
        let upto;
        let from;
        {
            let mut q = lock(&shared.queue);
            while q.pending.is_empty() && !q.stop {
                q = shared.work.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            if q.pending.is_empty() {
                return;
            }
            std::mem::swap(&mut batch, &mut q.pending);
            upto = q.queued;
            from = q.durable;
        }
        let result = {
            let mut seg = lock(&shared.segment);
            let start = seg.len;
            let r = seg
                .file
                .write_all(&batch)
                .and_then(|()| seg.file.sync_data());
            match r {
                Ok(()) => {
                    seg.len += batch.len() as u64;
                    seg.last_seq = upto;
                    Ok(())
                }
                Err(e) => {
                    // Cut the failed batch off so later records do not follow garbage; if
                    // even that fails, the reader stops at the torn record, which only ever
                    // holds unacknowledged letters.
                    let _ = seg.file.set_len(start);
                    let _ = std::io::Seek::seek(&mut seg.file, io::SeekFrom::Start(start));
                    Err(e.to_string())
                }
            }
        };
        batch.clear();
        let mut q = lock(&shared.queue);
        if let Err(why) = result {
            q.failed.push((from, upto, why));
        }
        q.durable = upto;
        shared.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(id: &str, size: usize) -> Letter {
        Letter {
            id: id.into(),
            return_path: "b@x.example".into(),
            recipients: vec!["r1@y.example".into(), "r2@y.example".into()],
            message: vec![b'm'; size],
        }
    }

    #[test]
    fn appended_letters_come_back_after_a_restart_and_forgotten_ones_do_not() {
        let d = tempfile::tempdir().unwrap();
        let (spool, left) = Spool::open(d.path()).unwrap();
        assert!(left.letters.is_empty());
        spool.append(&letter("a", 10)).unwrap();
        let (first, last) = spool.roll().unwrap().expect("a segment with a letter");
        assert_eq!(last, 1);
        assert_eq!(
            spool.roll().unwrap(),
            None,
            "an empty segment is not rolled"
        );
        spool.append(&letter("b", 70_000)).unwrap();
        spool.forget(&[first]).unwrap();
        drop(spool);
        let (_spool, left) = Spool::open(d.path()).unwrap();
        assert_eq!(left.letters, [letter("b", 70_000)]);
    }

    #[test]
    fn many_threads_share_flushes_and_lose_nothing() {
        let d = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(d.path()).unwrap();
        let spool = Arc::new(spool);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let s = spool.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        s.append(&letter(&format!("t{t}-{i}"), 100)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(spool);
        let (_s, left) = Spool::open(d.path()).unwrap();
        let mut ids: Vec<_> = left.letters.iter().map(|l| l.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 400);
    }

    /// A kill can cut the last batch anywhere: the replay keeps every whole record before the
    /// cut and nothing after it.
    #[test]
    fn a_torn_tail_ends_the_replay_of_its_segment() {
        let d = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(d.path()).unwrap();
        spool.append(&letter("whole", 50)).unwrap();
        spool.append(&letter("torn", 50)).unwrap();
        drop(spool);
        let (_, path) = segments(d.path()).unwrap().remove(0);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        assert_eq!(read_segment(&path).unwrap(), [letter("whole", 50)]);
        // A flipped byte in a record's body fails its checksum.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(read_segment(&path).unwrap().is_empty());
    }
}
