//! The data directory after the power cut, from what `shim.c` recorded as durable: from the
//! root down, each directory holds exactly the names of its durable listing, each file the
//! content of its last sync (empty if it was never synced). See `shim.c` for the model.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The identity `shim.c` gives a file: device (major.minor), inode, birth time.
pub fn key(meta: &std::fs::Metadata) -> String {
    let dev = meta.dev();
    // glibc's gnu_dev_major / gnu_dev_minor.
    let major = ((dev >> 8) & 0xfff) as u32 | ((dev >> 32) as u32 & !0xfff);
    let minor = (dev & 0xff) as u32 | ((dev >> 12) as u32 & !0xff);
    let (secs, nanos) = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()));
    format!("{major:x}.{minor:x}-{}-{secs}.{nanos}", meta.ino())
}

/// One file of the rebuilt directory.
#[derive(Debug)]
pub struct Restored {
    /// Relative to the root.
    pub path: PathBuf,
    /// Its length after the power cut.
    pub len: u64,
    /// Whether any sync of it was recorded (else it came back empty).
    pub synced: bool,
}

/// One entry of a durable listing: (key, 'f' or 'd', name).
fn listing(shadow: &Path, dir_key: &str) -> Vec<(String, char, String)> {
    let Ok(text) = std::fs::read_to_string(shadow.join("dirs").join(dir_key)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            let key = parts.next()?.to_owned();
            let kind = parts.next()?.chars().next()?;
            let name = parts.next()?.to_owned();
            Some((key, kind, name))
        })
        .collect()
}

/// Whether the shim recorded a listing for the directory `key`.
pub fn has_listing(shadow: &Path, key: &str) -> bool {
    shadow.join("dirs").join(key).exists()
}

/// Writes the durable state of the root (identified by `root_key`) into the empty directory
/// `out`; returns every file it made.
pub fn rebuild(shadow: &Path, root_key: &str, out: &Path) -> Vec<Restored> {
    let mut made = Vec::new();
    dir(shadow, root_key, out, Path::new(""), 0, &mut made);
    made.sort_by(|a, b| a.path.cmp(&b.path));
    made
}

fn dir(shadow: &Path, key: &str, out: &Path, rel: &Path, depth: usize, made: &mut Vec<Restored>) {
    assert!(
        depth < 16,
        "directory listings nest too deep at {}",
        rel.display()
    );
    let mut seen = BTreeMap::new();
    for (k, kind, name) in listing(shadow, key) {
        assert!(
            seen.insert(name.clone(), k.clone()).is_none(),
            "two entries named {name} in the durable listing of {}",
            rel.display()
        );
        let path = out.join(&name);
        match kind {
            'f' => {
                let content = std::fs::read(shadow.join("files").join(&k)).ok();
                let synced = content.is_some();
                let content = content.unwrap_or_default();
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .unwrap();
                f.write_all(&content).unwrap();
                made.push(Restored {
                    path: rel.join(&name),
                    len: content.len() as u64,
                    synced,
                });
            }
            'd' => {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&path)
                    .unwrap();
                dir(shadow, &k, &path, &rel.join(&name), depth + 1, made);
            }
            other => panic!("unknown entry kind {other:?} for {name}"),
        }
    }
}
