//! Scenario 9 (issue 20, target 4), the PostgreSQL backend against `pgbench` with the same
//! client count on the same server, both in the same run: GetEmailIdentity against `pgbench
//! -S` (9), BYODKIM PutEmailIdentityDkimSigningAttributes against `pgbench -N` (9b), and two
//! nodes on one database against one (9c). The databases are scratch ones, made and dropped
//! here.

use crate::api::{silent_resolver, throughput_with};
use crate::load::Outcome;
use crate::procs::{self, Sesame};
use crate::report::{self, say};
use std::path::Path;
use std::process::Command;

/// The issue's client count, for both sides.
const CLIENTS: usize = 16;

/// The server's URL without its database (`DATABASE_URL`'s, default the local one).
fn server_url() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into());
    match url.rsplit_once('/') {
        Some((base, _)) if base.contains("://") && base.len() > "postgres://".len() => {
            base.to_owned()
        }
        _ => url,
    }
}

fn psql(base: &str, sql: &str) {
    let out = Command::new("psql")
        .arg(format!("{base}/postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pgbench` TPS in `mode` (`-S`: one indexed SELECT per transaction; `-N`: an UPDATE, a
/// SELECT and an INSERT per transaction, each committed durably) with `clients` clients for
/// 5 s on a fresh scale-1 database.
fn pgbench(base: &str, mode: &str, clients: usize) -> f64 {
    psql(base, "DROP DATABASE IF EXISTS sesame_bench_pgbench");
    psql(base, "CREATE DATABASE sesame_bench_pgbench");
    let db = format!("{base}/sesame_bench_pgbench");
    let init = Command::new("pgbench")
        .args(["-i", "-q", "-s", "1", &db])
        .output()
        .expect("pgbench -i");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let run = Command::new("pgbench")
        .args([mode, "-T", "5", "-j", "2", "-c", &clients.to_string(), &db])
        .output()
        .expect("pgbench");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    psql(base, "DROP DATABASE IF EXISTS sesame_bench_pgbench");
    let text = String::from_utf8_lossy(&run.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("no tps in pgbench's output: {text}"))
}

fn have_pgbench() -> bool {
    if Command::new("pgbench").arg("--version").output().is_ok() {
        return true;
    }
    say("not run: no pgbench (Debian package postgresql-client)\n");
    false
}

/// A scratch database `sesame_bench` on the server, dropped when this is.
struct Scratch {
    base: String,
    url: String,
}

impl Scratch {
    fn new() -> Scratch {
        let base = server_url();
        psql(&base, "DROP DATABASE IF EXISTS sesame_bench");
        psql(&base, "CREATE DATABASE sesame_bench");
        let url = format!("{base}/sesame_bench");
        Scratch { base, url }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        psql(&self.base, "DROP DATABASE IF EXISTS sesame_bench");
    }
}

/// A node on the scratch database, its verifier asking a resolver that never answers (the
/// request path alone is measured). `master_from`: another node's data dir, whose master key
/// this one must share to open what that one sealed.
fn node(dir: &Path, db: &Scratch, resolver: &str, master_from: Option<&Path>) -> Sesame {
    if let Some(other) = master_from {
        std::fs::create_dir_all(dir).expect("data dir");
        std::fs::copy(other.join("master.key"), dir.join("master.key")).expect("master key");
    }
    Sesame::start(
        dir,
        &[
            &["--resolver", resolver, "--database-url", &db.url][..],
            &procs::NO_POOL,
        ]
        .concat(),
    )
}

/// Makes `bench.example` on `sesame` and returns a signed GetEmailIdentity of it.
fn get_request(sesame: &Sesame) -> Vec<u8> {
    let signer = sesame.signer();
    let create = signer.request(
        sesame.api,
        "POST",
        "/v2/email/identities",
        br#"{"EmailIdentity":"bench.example"}"#,
    );
    let (status, _) = crate::load::once(sesame.api, &create);
    assert!((200..300).contains(&status), "create: HTTP {status}");
    signer.request(sesame.api, "GET", "/v2/email/identities/bench.example", b"")
}

/// Sesame under `load` (on a node of its own on a scratch database, in `dir`) against
/// `pgbench` in `mode` with the same client count, right after on the same server: the
/// shape of scenarios 9 and 9b.
fn against_pgbench(
    dir: &Path,
    heading: &str,
    what: &str,
    mode: &str,
    load: impl FnOnce(&Sesame) -> Outcome,
) {
    say(&format!(
        "## {heading} on PostgreSQL, {CLIENTS} connections, against `pgbench {mode}`\n"
    ));
    if !have_pgbench() {
        return;
    }
    let db = Scratch::new();
    let (_silent, resolver) = silent_resolver();
    let sesame = node(dir, &db, &resolver, None);
    let ours = load(&sesame);
    drop(sesame);
    drop(db);
    let ceiling = pgbench(&server_url(), mode, CLIENTS);
    say("| what | per second | p50 ms | p99 ms |\n| --- | --- | --- | --- |");
    say(&ours.row(&format!("Sesame {what} (PostgreSQL)")));
    say(&format!(
        "| pgbench {mode}, {CLIENTS} clients (ceiling) | {ceiling:.0} | | |\n"
    ));
    let number = heading.split_whitespace().next().unwrap_or_default();
    report::target(
        &format!("{number} {what} on PostgreSQL ({CLIENTS} conns)"),
        format!("{:.0} req/s", ours.rate()),
        format!("pgbench {mode} {ceiling:.0} TPS"),
        ours.rate() / ceiling,
        0.5,
    );
}

/// Scenario 9: a SigV4-signed GetEmailIdentity of one identity, against `pgbench -S`.
pub fn get_identity(work: &Path) {
    against_pgbench(
        &work.join("s9"),
        "9. GetEmailIdentity, SigV4-signed,",
        "GetEmailIdentity",
        "-S",
        |sesame| {
            let get = get_request(sesame);
            let ours = throughput_with(sesame.api, vec![get], CLIENTS);
            ours.expect_ok("GetEmailIdentity on PostgreSQL");
            ours
        },
    );
}

/// Scenario 9b: scenario 2's BYODKIM puts on PostgreSQL, against `pgbench -N`.
pub fn put_signing_attributes(work: &Path) {
    against_pgbench(
        &work.join("s9b"),
        "9b. PutEmailIdentityDkimSigningAttributes (BYODKIM, RSA-2048)",
        "PutEmailIdentityDkimSigningAttributes",
        "-N",
        |sesame| crate::api::byodkim_puts(sesame, CLIENTS),
    );
}

/// Scenario 9c: two nodes on one database, each its own process with half the connections
/// and its own load-generator thread, against one node with all of them, in the same run.
pub fn two_nodes(work: &Path) {
    say(&format!(
        "## 9c. Two nodes on one PostgreSQL database: GetEmailIdentity, {CLIENTS} connections in all\n"
    ));
    if !have_pgbench() {
        return;
    }
    let db = Scratch::new();
    let (_silent, resolver) = silent_resolver();
    let a_dir = work.join("s9c-a");
    let a = node(&a_dir, &db, &resolver, None);
    let b = node(&work.join("s9c-b"), &db, &resolver, Some(&a_dir));
    let get_a = get_request(&a);
    // The identity is the database's: node B serves the one A made.
    let get_b = b
        .signer()
        .request(b.api, "GET", "/v2/email/identities/bench.example", b"");
    let before = procs::cpu_ticks();
    let one = throughput_with(a.api, vec![get_a.clone()], CLIENTS);
    let busy_one = procs::busy_share(before, procs::cpu_ticks());
    one.expect_ok("GetEmailIdentity, one node");
    let (ra, rb) = (a.api, b.api);
    let before = procs::cpu_ticks();
    let both = std::thread::scope(|s| {
        let ta = s.spawn(|| throughput_with(ra, vec![get_a], CLIENTS / 2));
        let tb = s.spawn(|| throughput_with(rb, vec![get_b], CLIENTS / 2));
        (ta.join().expect("node a"), tb.join().expect("node b"))
    });
    let busy_two = procs::busy_share(before, procs::cpu_ticks());
    both.0.expect_ok("GetEmailIdentity, node A of two");
    both.1.expect_ok("GetEmailIdentity, node B of two");
    drop((a, b));
    let sum = both.0.rate() + both.1.rate();
    say("| what | per second | p50 ms | p99 ms |\n| --- | --- | --- | --- |");
    say(&one.row(&format!("one node, {CLIENTS} connections (baseline)")));
    say(&both
        .0
        .row(&format!("node A of two, {} connections", CLIENTS / 2)));
    say(&both
        .1
        .row(&format!("node B of two, {} connections", CLIENTS / 2)));
    say(&format!("| two nodes together | {sum:.0} | | |\n"));
    // Both nodes, PostgreSQL and the load generators share this machine's cores: two nodes
    // can only add what one left idle.
    say(&format!(
        "Machine CPU busy (all cores, every process): {:.0} % with one node, {:.0} % with two.\n",
        busy_one * 100.0,
        busy_two * 100.0
    ));
    report::target(
        "9c. two nodes on one PostgreSQL (Get)",
        format!("{sum:.0} req/s"),
        format!("one node {:.0} req/s", one.rate()),
        sum / one.rate(),
        1.6,
    );
}
