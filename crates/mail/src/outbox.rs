//! The embedded delivery's target: each signed message becomes `<message-id>.eml` in the
//! outbox directory, written to a temporary file and renamed into place, so a reader never
//! sees half a message. The files are not flushed one by one: the spool (`crate::spool`)
//! holds every message durably first, and `sync` makes a whole batch of files durable with
//! one `syncfs` before the spool lets go of them (`crate::spooled`).

use crate::MailError;
use std::path::{Path, PathBuf};

/// A directory that receives messages.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// An outbox in `dir` (created if missing). The outbox belongs to one server process: the
    /// temporary files a crash left behind (a message that was never acknowledged) are removed
    /// here, so they cannot pile up across restarts.
    pub fn new(dir: &Path) -> Result<Outbox, MailError> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(Outbox {
            dir: dir.to_owned(),
        })
    }

    /// Checks that `id` is a safe file name and `return_path` a safe header value.
    pub fn check(id: &str, return_path: &str) -> Result<(), MailError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(MailError::Format(format!("unsafe message id {id:?}")));
        }
        if return_path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b'>')
        {
            return Err(MailError::Format(format!(
                "unsafe return path {return_path:?}"
            )));
        }
        Ok(())
    }

    /// The path of message `id`'s file.
    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.eml"))
    }

    /// Writes `message` as `<id>.eml` under a `Return-Path: <return_path>` line, as the
    /// final delivery of a mail system records the envelope sender (RFC 5321 section 4.4), in
    /// the message's own line ending; `id` must be a safe file name (the caller's message id).
    /// Not flushed: see `sync`. Writing the same message again gives the same file.
    pub fn write(&self, id: &str, return_path: &str, message: &[u8]) -> Result<PathBuf, MailError> {
        Outbox::check(id, return_path)?;
        let crlf = match message.iter().position(|b| *b == b'\n') {
            Some(i) => i > 0 && message[i - 1] == b'\r',
            None => true,
        };
        let eol = if crlf { "\r\n" } else { "\n" };
        let tmp = self.dir.join(format!(".{id}.tmp"));
        let path = self.path_of(id);
        let mut head = format!("Return-Path: <{return_path}>{eol}").into_bytes();
        head.extend_from_slice(message);
        std::fs::write(&tmp, head)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Makes every file written so far durable, with their names: one `syncfs` of the
    /// outbox's file system instead of two flushes per message.
    pub fn sync(&self) -> Result<(), MailError> {
        let dir = std::fs::File::open(&self.dir)?;
        rustix::fs::syncfs(&dir).map_err(std::io::Error::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_refuses_odd_names() {
        let d = tempfile::tempdir().unwrap();
        let o = Outbox::new(&d.path().join("out")).unwrap();
        let p = o
            .write("abc-123", "b@x.example", b"A: 1\r\n\r\nmessage")
            .unwrap();
        assert_eq!(
            std::fs::read(&p).unwrap(),
            b"Return-Path: <b@x.example>\r\nA: 1\r\n\r\nmessage"
        );
        let lf = o.write("lf", "b@x.example", b"A: 1\n\nm").unwrap();
        assert_eq!(
            std::fs::read(&lf).unwrap(),
            b"Return-Path: <b@x.example>\nA: 1\n\nm"
        );
        std::fs::remove_file(lf).unwrap();
        assert!(o.write("../x", "b@x.example", b"m").is_err());
        assert!(o.write("y", "b@x\r\nBcc: e@vil", b"m").is_err());
        let names: Vec<_> = std::fs::read_dir(d.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["abc-123.eml"], "no temporary file left behind");
    }

    /// The crash trials found `.<id>.tmp` files piling up after `kill -9` mid-write.
    #[test]
    fn a_crash_s_temporary_files_go_at_the_next_start() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("out");
        let o = Outbox::new(&dir).unwrap();
        o.write("kept", "b@x.example", b"message").unwrap();
        std::fs::write(dir.join(".cut-off.tmp"), b"half a mess").unwrap();
        Outbox::new(&dir).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["kept.eml"]);
    }
}
