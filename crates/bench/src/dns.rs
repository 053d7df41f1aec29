//! The DNS scenarios: the key-zone responder against NSD under `dnsperf` (6), and the
//! verifier's sweep of 100 000 pending Easy DKIM identities against `dnsperf` sending the same
//! 300 000 queries to the same NSD (7).

use crate::procs::{self, Nsd, Sesame};
use crate::report::{self, say};
use crate::seed;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Seeding threads: many, so the store's group commit gets large batches.
const SEED_THREADS: usize = 32;

/// The key zone's name (the server's default `--dkim-zone`).
const ZONE: &str = "dkim.sesame.internal";

/// What dnsperf reported.
struct Perf {
    qps: f64,
    seconds: f64,
    completed: u64,
    sent: u64,
}

/// Runs dnsperf against `server` with the query file: for `limit` seconds, or one pass.
fn dnsperf(server: SocketAddr, queries: &Path, limit: Option<u64>, outstanding: usize) -> Perf {
    let mut cmd = Command::new("dnsperf");
    cmd.args([
        "-s",
        &server.ip().to_string(),
        "-p",
        &server.port().to_string(),
    ])
    .arg("-d")
    .arg(queries)
    .args(["-c", "2", "-q", &outstanding.to_string(), "-t", "2"]);
    match limit {
        Some(l) => cmd.args(["-l", &l.to_string()]),
        None => cmd.args(["-n", "1"]),
    };
    let out = cmd.output().expect("dnsperf (apt-get install dnsperf)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    Perf {
        qps: field("Queries per second"),
        seconds: field("Run time (s)"),
        completed: field("Queries completed") as u64,
        sent: field("Queries sent") as u64,
    }
}

/// Starts and stops a server on `dir` so the data dir, master key and default account exist.
fn bootstrap(dir: &Path) {
    Sesame::start(dir, &procs::NO_POOL).stop();
}

/// Scenario 6.
pub fn key_zone(work: &Path, cores: usize) {
    say(
        "## 6. Key-zone DNS: dnsperf against Sesame's responder and NSD serving the same TXT records\n",
    );
    if !procs::have("dnsperf") || !procs::have("nsd") {
        say("not run: needs dnsperf and nsd (apt-get install dnsperf nsd)\n");
        return;
    }
    let dir = work.join("s6");
    bootstrap(&dir);
    let (seeded, public_der) = seed::easy_dkim(&dir, 1, 1000, "zone.bench", SEED_THREADS);
    let tokens: Vec<&str> = seeded
        .iter()
        .flat_map(|s| s.tokens.iter().map(String::as_str))
        .collect();
    let queries = work.join("s6-queries.txt");
    let lines: String = tokens.iter().map(|t| format!("{t}.{ZONE} TXT\n")).collect();
    std::fs::write(&queries, lines).expect("query file");
    let (_silent, resolver) = crate::api::silent_resolver();
    let sesame = Sesame::start(
        &dir,
        &[&["--resolver", &resolver][..], &procs::NO_POOL].concat(),
    );
    let ours = dnsperf(sesame.dns, &queries, Some(5), 100);
    drop(sesame);
    let txt = sesame_dns::records::split_strings(&sesame_dns::records::dkim_txt_value(&public_der))
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(" ");
    let records: Vec<String> = tokens.iter().map(|t| format!("{t} IN TXT {txt}")).collect();
    let nsd = Nsd::start(&work.join("s6-nsd"), ZONE, &records, cores, None);
    let peer = dnsperf(nsd.addr, &queries, Some(5), 100);
    drop(nsd);
    say("| server | queries/s | completed / sent |\n| --- | --- | --- |");
    for (name, p) in [
        (
            "Sesame key zone (own UDP listener over hickory-proto, in-memory snapshot)",
            &ours,
        ),
        (&*format!("NSD, {cores} server processes (ceiling)"), &peer),
    ] {
        say(&format!(
            "| {name} | {:.0} | {} / {} |",
            p.qps, p.completed, p.sent
        ));
    }
    say(&format!(
        "\n{} TXT records (RSA-2048 keys, two strings each), dnsperf `-c 2 -q 100 -l 5`.\n",
        tokens.len()
    ));
    report::target(
        "6. key-zone DNS queries/s",
        format!("{:.0} q/s", ours.qps),
        format!("NSD {:.0} q/s", peer.qps),
        ours.qps / peer.qps,
        0.5,
    );
}

/// Scenario 7.
pub fn sweep(work: &Path, cores: usize) {
    say("## 7. Verifier sweep: 100 000 pending Easy DKIM identities, CNAMEs in NSD\n");
    if !procs::have("dnsperf") || !procs::have("nsd") {
        say("not run: needs dnsperf and nsd (apt-get install dnsperf nsd)\n");
        return;
    }
    let dir = work.join("s7");
    bootstrap(&dir);
    let seeding = Instant::now();
    let (seeded, _) = seed::easy_dkim(&dir, 100, 1000, "sweep.bench", SEED_THREADS);
    let seeding = seeding.elapsed();
    let total = seeded.len();
    let mut records = Vec::with_capacity(total * 3);
    let mut queries = String::with_capacity(total * 4 * 80);
    for s in &seeded {
        let relative = s.domain.trim_end_matches(".sweep.bench");
        for t in &s.tokens {
            records.push(format!("{t}._domainkey.{relative} IN CNAME {t}.{ZONE}."));
            queries.push_str(&format!("{t}._domainkey.{} CNAME\n", s.domain));
        }
        // The verifier also looks for the domain's DMARC policy (a recommendation since
        // issue 16): the ceiling asks what Sesame asks.
        queries.push_str(&format!("_dmarc.{} TXT\n", s.domain));
    }
    let query_file = work.join("s7-queries.txt");
    std::fs::write(&query_file, queries).expect("query file");
    let nsd = Nsd::start(&work.join("s7-nsd"), "sweep.bench", &records, cores, None);
    let peer = dnsperf(nsd.addr, &query_file, None, 192);

    let db = rusqlite::Connection::open_with_flags(
        dir.join("sesame.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("db");
    let verified = || -> i64 {
        db.query_row(
            "SELECT COUNT(*) FROM identities WHERE dkim_status = 'SUCCESS'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(-1)
    };
    let resolver = nsd.addr.to_string();
    let sesame = Sesame::start(
        &dir,
        &[&["--resolver", &resolver][..], &procs::NO_POOL].concat(),
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    // Each count scans the table (10 ms of a core at 100 000 rows): asked every 100 ms it
    // took a tenth of the machine from the sweep it measures. Asked again when, at the rate
    // so far, about a quarter of what is left would be done, and every 100 ms near the end.
    let mut done = verified();
    while done < total as i64 && Instant::now() < deadline {
        let elapsed = started.elapsed().as_secs_f64();
        let left = (total as i64 - done) as f64;
        let wait = if done > 0 {
            (left / 4.0 * elapsed / done as f64).clamp(0.1, 5.0)
        } else {
            0.5
        };
        std::thread::sleep(Duration::from_secs_f64(wait));
        done = verified();
    }
    let took = started.elapsed();
    let (rss, peak) = sesame.rss_mib();
    drop(sesame);
    drop(nsd);
    say("| what | figure |\n| --- | --- |");
    say(&format!(
        "| seeding {total} identities through `Service::create_identity` (shared key pair) | {:.1} s |",
        seeding.as_secs_f64()
    ));
    say(&format!(
        "| dnsperf, the same {} queries (three CNAMEs and the DMARC TXT per domain), one pass, `-c 2 -q 192` (ceiling) | {:.2} s ({:.0} q/s, {} completed) |",
        peer.sent, peer.seconds, peer.qps, peer.completed
    ));
    say(&format!(
        "| Sesame's sweep: from `listening` until all {total} are SUCCESS in the store | {:.2} s ({done} verified) |",
        took.as_secs_f64()
    ));
    say(&format!(
        "| server RSS with {} published keys in the zone snapshot | {rss:.0} MiB (peak {peak:.0} MiB) |\n",
        total * 3
    ));
    report::target(
        "7. verifier sweep of 100 000 identities",
        format!("{:.2} s", took.as_secs_f64()),
        format!("dnsperf {:.2} s", peer.seconds),
        // Lower is better: allowance (2 × dnsperf) ÷ actual.
        2.0 * peer.seconds / took.as_secs_f64(),
        1.0,
    );
}
