//! Scenario 8: GetEmailIdentity throughput, memory and start-up with 1 000 000 identities in the
//! embedded store, next to the same figures with 1 000.
//!
//! The million are address identities: 1 000 made through the API, then copied row for row
//! under new names by one SQL statement (the server stopped). Domain identities with Easy DKIM
//! would need three million RSA key pairs, hours of key generation; what a published key costs
//! in memory is measured by scenario 7 (300 000 keys).

use crate::api::{each_once, silent_resolver};
use crate::load::{self, Plan};
use crate::procs::Sesame;
use crate::report::{self, say};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const TEMPLATES: usize = 1000;
const COPIES: usize = 999;

fn address(i: usize) -> String {
    format!("u{i}@scale.bench.example")
}

fn get_path(name: &str) -> String {
    format!("/v2/email/identities/{}", name.replace('@', "%40"))
}

/// Copies every identity of the database `COPIES` times under `r<n>-<name>`.
fn replicate(db: &Path) -> usize {
    let conn = rusqlite::Connection::open(db).expect("db");
    let columns: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info('identities')")
            .expect("table info");
        stmt.query_map([], |r| r.get::<_, String>(0))
            .expect("columns")
            .collect::<Result<_, _>>()
            .expect("columns")
    };
    let select: Vec<String> = columns
        .iter()
        .map(|c| {
            if c == "name" {
                "'r' || c.i || '-' || t.name".to_owned()
            } else if c == "link_hash" {
                // Unique per link: a copy has none open.
                "NULL".to_owned()
            } else {
                format!("t.{c}")
            }
        })
        .collect();
    let sql = format!(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {COPIES}) \
         INSERT INTO identities ({}) SELECT {} FROM (SELECT * FROM identities) t, c",
        columns.join(", "),
        select.join(", ")
    );
    conn.execute(&sql, []).expect("replicate")
}

struct Figures {
    rate: f64,
    p50: f64,
    startup: Duration,
    rss_idle: f64,
    rss_after: f64,
}

fn measure(sesame: &Sesame, names: &[String]) -> Figures {
    let (rss_idle, _) = sesame.rss_mib();
    let signer = sesame.signer();
    let gets: Vec<Vec<u8>> = names
        .iter()
        .map(|n| signer.request(sesame.api, "GET", &get_path(n), b""))
        .collect();
    let out = load::run(Plan {
        addr: sesame.api,
        requests: Arc::new(gets),
        conns: 32,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(5),
        once: false,
    });
    out.expect_ok("GetEmailIdentity at scale");
    let (rss_after, _) = sesame.rss_mib();
    Figures {
        rate: out.rate(),
        p50: out.percentile_ms(50.0),
        startup: sesame.startup,
        rss_idle,
        rss_after,
    }
}

/// Scenario 8.
pub fn scenario(work: &Path) {
    say("## 8. Scale: 1 000 000 identities in the embedded store\n");
    let (_silent, resolver) = silent_resolver();
    let args = [
        "--resolver",
        resolver.as_str(),
        "--max-identities",
        "2000000",
    ];
    let args = [&args[..], &crate::procs::NO_POOL].concat();
    let templates: Vec<String> = (0..TEMPLATES).map(address).collect();
    let create = |s: &Sesame| {
        let signer = s.signer();
        let reqs = templates
            .iter()
            .map(|n| {
                let body = serde_json::json!({ "EmailIdentity": n }).to_string();
                signer.request(s.api, "POST", "/v2/email/identities", body.as_bytes())
            })
            .collect();
        each_once(s.api, reqs, 32, "address creates");
    };

    let small_dir = work.join("s8-1k");
    let s = Sesame::start(&small_dir, &args);
    create(&s);
    s.stop();
    let s = Sesame::start(&small_dir, &args);
    let small = measure(&s, &templates);
    s.stop();

    let big_dir = work.join("s8-1m");
    let s = Sesame::start(&big_dir, &args);
    create(&s);
    s.stop();
    let copied = replicate(&big_dir.join("sesame.db"));
    let total = TEMPLATES + copied;
    let db_mib = std::fs::metadata(big_dir.join("sesame.db"))
        .map(|m| m.len() as f64 / (1024.0 * 1024.0))
        .unwrap_or(f64::NAN);
    // The same number of distinct identities as at 1 000, spread over the whole million.
    let spread: Vec<String> = (0..TEMPLATES)
        .map(|i| format!("r{}-{}", 1 + (i * 7919) % COPIES, address(i)))
        .collect();
    let s = Sesame::start(&big_dir, &args);
    let big = measure(&s, &spread);
    s.stop();

    say(
        "| identities | GetEmailIdentity req/s (32 conns) | p50 ms | start-up | RSS idle | RSS after load |",
    );
    say("| --- | --- | --- | --- | --- | --- |");
    for (n, f) in [(TEMPLATES, &small), (total, &big)] {
        say(&format!(
            "| {n} | {:.0} | {:.2} | {:.2} s | {:.0} MiB | {:.0} MiB |",
            f.rate,
            f.p50,
            f.startup.as_secs_f64(),
            f.rss_idle,
            f.rss_after
        ));
    }
    say(&format!(
        "\nDatabase file with {total} identities: {db_mib:.0} MiB.\n"
    ));
    report::target(
        "8a. Get throughput at 1 M ÷ at 1 k",
        format!("{:.0} req/s", big.rate),
        format!("{:.0} req/s at 1 k", small.rate),
        big.rate / small.rate,
        0.8,
    );
    report::target(
        "8b. server RSS at 1 M (≤ 200 MB)",
        format!("{:.0} MiB", big.rss_after),
        "200 MB".into(),
        200.0 * 1_000_000.0 / (1024.0 * 1024.0) / big.rss_after,
        1.0,
    );
    report::target(
        "8c. start-up at 1 M (≤ 5 s)",
        format!("{:.2} s", big.startup.as_secs_f64()),
        "5 s".into(),
        5.0 / big.startup.as_secs_f64(),
        1.0,
    );
}
