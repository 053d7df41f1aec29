//! `sesame-bench`: Sesame's benchmarks, each reported as a ratio to a ceiling measured on the
//! same machine in the same run, so the figures hold on any machine. `scripts/bench` builds
//! the release binaries and runs every scenario; `sesame-bench <scenario>` runs one.
//! Not a test: nothing here asserts a timing.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod api;
mod dns;
mod load;
mod pg;
mod procs;
mod report;
mod scale;
mod seed;
mod sign;

use report::say;
use std::path::PathBuf;
use std::time::Instant;

const SCENARIOS: &[&str] = &[
    "get", "put", "create", "sign", "send", "relay", "dns", "sweep", "scale", "pg-get", "pg-put",
    "pg-nodes",
];

fn cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The bare axum server of scenario 1's ceiling: every request gets the JSON document in
/// `body_file`, serialised per request, as a JSON API would.
fn bare_axum(body_file: &str) {
    use axum::extract::State;
    use axum::response::IntoResponse;
    use std::sync::Arc;
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(body_file).expect("body file")).expect("json");
    async fn answer(State(doc): State<Arc<serde_json::Value>>) -> axum::response::Response {
        let body = serde_json::to_vec(&*doc).expect("json");
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
    // The same runtime as `sesame serve`: multi-threaded, one worker per core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(Arc::new(doc));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("listening {}", listener.local_addr().expect("addr"));
        axum::serve(listener, app).await.expect("serve");
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("bare-axum") {
        bare_axum(args.get(1).expect("bare-axum BODY_FILE"));
        return;
    }
    let chosen: Vec<&str> = if args.is_empty() || args.iter().any(|a| a == "all") {
        SCENARIOS.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    if let Some(bad) = chosen.iter().find(|c| !SCENARIOS.contains(c)) {
        eprintln!(
            "unknown scenario {bad:?}; available: all {}",
            SCENARIOS.join(" ")
        );
        std::process::exit(2);
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let root =
        PathBuf::from(std::env::var("SESAME_BENCH_DIR").unwrap_or_else(|_| "target/bench".into()));
    std::fs::create_dir_all(&root).expect("bench dir");
    let work = tempfile::tempdir_in(&root).expect("work dir");
    let started = Instant::now();
    say(&format!(
        "# sesame-bench {}\n\nMachine: `nproc` = {cores}, {}; servers and load generator share the cores.\n",
        chosen.join(" "),
        cpu()
    ));
    // Scenario 10 is a ratio to scenario 5's figure when both run.
    let mut spool_rate = None;
    for c in &chosen {
        let t = Instant::now();
        match *c {
            "get" => api::get_identity(work.path()),
            "put" => api::put_signing_attributes(work.path()),
            "create" => api::create_easy_dkim(work.path(), cores),
            "sign" => sign::scenario(work.path(), cores),
            "send" => spool_rate = Some(api::send_email(work.path(), cores)),
            "relay" => api::send_relay(work.path(), cores, spool_rate),
            "dns" => dns::key_zone(work.path(), cores),
            "sweep" => dns::sweep(work.path(), cores),
            "scale" => scale::scenario(work.path()),
            "pg-get" => pg::get_identity(work.path()),
            "pg-put" => pg::put_signing_attributes(work.path()),
            "pg-nodes" => pg::two_nodes(work.path()),
            _ => unreachable!(),
        }
        say(&format!("_{c}: {:.0} s_\n", t.elapsed().as_secs_f64()));
    }
    say(&format!(
        "All chosen scenarios took {:.0} s.\n",
        started.elapsed().as_secs_f64()
    ));
    report::finish(&root.join("latest.md"));
}
