//! Scenario 9 (issue 20, target 4): GetEmailIdentity with the PostgreSQL backend, against
//! `pgbench -S` (one indexed SELECT per transaction) with the same client count on the same
//! server, both in the same run. The database is a scratch one, made and dropped here.

use crate::api::{silent_resolver, throughput_with};
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

/// `pgbench -S` TPS with `clients` clients for 5 s on a fresh scale-1 database.
fn pgbench_select(base: &str, clients: usize) -> f64 {
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
        .args(["-S", "-T", "5", "-j", "2", "-c", &clients.to_string(), &db])
        .output()
        .expect("pgbench -S");
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

/// Scenario 9.
pub fn get_identity(work: &Path) {
    say(
        "## 9. GetEmailIdentity on PostgreSQL, SigV4-signed, 16 connections, against `pgbench -S`\n",
    );
    if Command::new("pgbench").arg("--version").output().is_err() {
        say("not run: no pgbench (Debian package postgresql-client)\n");
        return;
    }
    let base = server_url();
    psql(&base, "DROP DATABASE IF EXISTS sesame_bench");
    psql(&base, "CREATE DATABASE sesame_bench");
    let (_silent, resolver) = silent_resolver();
    let url = format!("{base}/sesame_bench");
    let sesame = Sesame::start(
        &work.join("s9"),
        &[
            &["--resolver", &resolver, "--database-url", &url][..],
            &procs::NO_POOL,
        ]
        .concat(),
    );
    let signer = sesame.signer();
    let create = signer.request(
        sesame.api,
        "POST",
        "/v2/email/identities",
        br#"{"EmailIdentity":"bench.example"}"#,
    );
    let (status, _) = crate::load::once(sesame.api, &create);
    assert!((200..300).contains(&status), "create: HTTP {status}");
    let get = signer.request(sesame.api, "GET", "/v2/email/identities/bench.example", b"");
    let ours = throughput_with(sesame.api, vec![get], CLIENTS);
    ours.expect_ok("GetEmailIdentity on PostgreSQL");
    drop(sesame);
    psql(&base, "DROP DATABASE IF EXISTS sesame_bench");
    let ceiling = pgbench_select(&base, CLIENTS);
    say("| what | per second | p50 ms | p99 ms |\n| --- | --- | --- | --- |");
    say(&format!(
        "| Sesame GetEmailIdentity (PostgreSQL) | {:.0} | {:.2} | {:.2} |",
        ours.rate(),
        ours.percentile_ms(50.0),
        ours.percentile_ms(99.0)
    ));
    say(&format!(
        "| pgbench -S, {CLIENTS} clients (ceiling) | {ceiling:.0} | | |\n"
    ));
    report::target(
        "9. GetEmailIdentity on PostgreSQL (16 conns)",
        format!("{:.0} req/s", ours.rate()),
        format!("pgbench -S {ceiling:.0} TPS"),
        ours.rate() / ceiling,
        0.5,
    );
}
