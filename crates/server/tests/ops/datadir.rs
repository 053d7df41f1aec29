//! A data dir that belongs to another user is refused before anything is written to it.
//! (A 0755 data dir tightened to 0700 is `it/secrets.rs`'s
//! `an_operator_made_data_dir_and_its_database_files_are_private`.)

use crate::Proc;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

#[test]
fn a_data_dir_owned_by_another_user_is_refused() {
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    if me != 0 {
        // chown to another user needs root; CI runs as root.
        crate::harness::say(
            "NOT RUN: a_data_dir_owned_by_another_user_is_refused needs root (chown)",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let dns = crate::fakedns::FakeDns::start();
    let mut server = Proc::serve(
        &dir,
        &["--api-addr", "127.0.0.1:0", "--dns-addr", "127.0.0.1:0"],
        &[],
        dns.addr,
    );
    let status = server.failed_start();
    let out = server.output();
    assert!(
        !status.success(),
        "started on someone else's data dir:\n{out}"
    );
    let expected = format!(
        "data directory {} belongs to uid 65534, not to uid 0 that Sesame runs as",
        dir.display()
    );
    assert!(out.contains(&expected), "{out}");
    assert!(!out.contains("listening"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    // Nothing was written or changed there.
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "files left in the dir"
    );
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    assert_eq!(meta.uid(), 65534);
}
