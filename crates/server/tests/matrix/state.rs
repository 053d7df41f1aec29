//! Byte-exact snapshots of what a server holds: every row of every table of its SQLite
//! database (read through a read-only connection of our own, in primary-key order) and every
//! file of its outbox, so a refused request can be shown to have changed nothing.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub struct State {
    db: Connection,
    outbox: PathBuf,
}

/// One snapshot, one section per table plus one for the outbox (named, for a readable diff).
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot(pub Vec<(String, Vec<u8>)>);

impl Snapshot {
    /// The SHA-256 of the whole snapshot, in hex.
    pub fn digest(&self) -> String {
        let mut h = openssl::sha::Sha256::new();
        for (name, bytes) in &self.0 {
            h.update(name.as_bytes());
            h.update(&(bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
        data_encoding::HEXLOWER.encode(&h.finish())
    }

    /// The sections that differ from `other`.
    pub fn changed_sections(&self, other: &Snapshot) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (name, bytes) in &self.0 {
            if other.0.iter().find(|(n, _)| n == name).map(|(_, b)| b) != Some(bytes) {
                out.push(name.clone());
            }
        }
        for (name, _) in &other.0 {
            if !self.0.iter().any(|(n, _)| n == name) {
                out.push(name.clone());
            }
        }
        out
    }
}

impl State {
    pub fn open(data_dir: &Path) -> State {
        let db = Connection::open_with_flags(
            data_dir.join("sesame.db"),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap();
        State {
            db,
            outbox: data_dir.join("outbox"),
        }
    }

    /// A query's rows, every value tagged with its type.
    fn rows(&self, sql: &str) -> Vec<u8> {
        let mut stmt = self.db.prepare(sql).unwrap();
        let n = stmt.column_count();
        let mut out = Vec::new();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                match row.get_ref(i).unwrap() {
                    ValueRef::Null => out.extend_from_slice(b"N"),
                    ValueRef::Integer(v) => {
                        out.extend_from_slice(b"I");
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                    ValueRef::Real(v) => {
                        out.extend_from_slice(b"R");
                        out.extend_from_slice(&v.to_bits().to_be_bytes());
                    }
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        out.extend_from_slice(b"B");
                        out.extend_from_slice(&(t.len() as u64).to_be_bytes());
                        out.extend_from_slice(t);
                    }
                }
            }
            out.push(b'\n');
        }
        out
    }

    /// Rows of `sql` as text, for looking at the verifier's columns.
    pub fn query_strings(&self, sql: &str) -> Vec<Vec<String>> {
        let mut stmt = self.db.prepare(sql).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            out.push(
                (0..n)
                    .map(|i| match row.get_ref(i).unwrap() {
                        ValueRef::Null => "NULL".to_owned(),
                        ValueRef::Integer(v) => v.to_string(),
                        ValueRef::Real(v) => v.to_string(),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                    })
                    .collect(),
            );
        }
        out
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut sections = Vec::new();
        // The schema and its version too: a refused request must not migrate anything either.
        sections.push((
            "schema".to_owned(),
            self.rows("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"),
        ));
        sections.push(("user_version".to_owned(), self.rows("PRAGMA user_version")));
        let tables: Vec<String> = self
            .query_strings(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        for t in tables {
            let n = self
                .db
                .prepare(&format!("SELECT * FROM \"{t}\""))
                .unwrap()
                .column_count();
            // Every column in order: the primary key's columns are among them, so the order is
            // total, and it works for WITHOUT ROWID tables, which have no rowid to sort by.
            let order: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
            let sql = format!("SELECT * FROM \"{t}\" ORDER BY {}", order.join(", "));
            sections.push((format!("table {t}"), self.rows(&sql)));
        }
        sections.push(("outbox".to_owned(), self.outbox_bytes()));
        Snapshot(sections)
    }

    /// Every file under the outbox (temporary ones included), by relative path, with contents.
    fn outbox_bytes(&self) -> Vec<u8> {
        let mut files = Vec::new();
        let mut dirs = vec![self.outbox.clone()];
        while let Some(d) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    files.push(p);
                }
            }
        }
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let rel = f.strip_prefix(&self.outbox).unwrap().display().to_string();
            let bytes = std::fs::read(&f).unwrap_or_default();
            let mut line = String::new();
            let _ = writeln!(line, "{rel} {}", bytes.len());
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(&bytes);
        }
        out
    }
}
