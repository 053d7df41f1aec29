//! A burst of SendEmail cut by `kill -9` at a random moment, with the spool's group commits
//! and once-a-second checkpoints in flight: restarted on the killed directory, and on the
//! same directory rebuilt as after a power cut, every acknowledged message is in the outbox
//! exactly once, whole, and dkimpy verifies every message there.

use crate::{SENDER, ZONE, client, harness, wait_verified};
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SENDERS: usize = 8;

/// One SendEmail whose subject is `marker` and whose body ends `END <marker>`.
pub async fn send(c: &Client, marker: &str) -> Result<String, String> {
    let body = format!("{marker} line\n").repeat(40) + &format!("END {marker}\n");
    c.send_email()
        .from_email_address(format!("burst@{SENDER}"))
        .destination(
            Destination::builder()
                .to_addresses("rcpt@example.net")
                .build(),
        )
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(Content::builder().data(marker).build().unwrap())
                        .body(
                            Body::builder()
                                .text(Content::builder().data(body).build().unwrap())
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map(|o| o.message_id().unwrap_or_default().to_owned())
        .map_err(|e| format!("{e:?}"))
}

/// The outbox's messages: subject marker → the file names that carry it, and the problems
/// (a message cut short, unsigned, or with no marker).
fn outbox(dir: &Path) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut by_marker: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".eml") else {
            problems.push(format!("outbox: unexpected file {name}"));
            continue;
        };
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        let Some(marker) = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .map(str::to_owned)
        else {
            problems.push(format!("{name}: no subject"));
            continue;
        };
        if !text.contains(&format!("END {marker}")) {
            problems.push(format!("{name}: cut short ({} bytes)", text.len()));
        }
        if !text.contains("DKIM-Signature:") {
            problems.push(format!("{name}: not signed"));
        }
        by_marker.entry(marker).or_default().push(id.to_owned());
    }
    (by_marker, problems)
}

/// Every acknowledged message once; returns the problems and the number of messages.
fn check(
    what: &str,
    dir: &Path,
    acked: &BTreeMap<String, String>,
    python: &str,
    customers: std::net::SocketAddr,
    keyzone: std::net::SocketAddr,
) -> (Vec<String>, usize) {
    let outbox_dir = dir.join("outbox");
    let (by_marker, mut problems) = outbox(&outbox_dir);
    for (marker, ids) in &by_marker {
        if ids.len() > 1 {
            problems.push(format!(
                "{what}: {marker} is in the outbox {} times: {ids:?}",
                ids.len()
            ));
        }
    }
    for (marker, id) in acked {
        match by_marker.get(marker) {
            Some(ids) if ids.contains(id) => {}
            Some(ids) => problems.push(format!(
                "{what}: acknowledged {marker} as {id}, the outbox has it as {ids:?}"
            )),
            None => problems.push(format!("{what}: acknowledged {marker} ({id}) is lost")),
        }
    }
    let out = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/dkim/verify.py"
        ))
        .arg(&outbox_dir)
        .arg(customers.to_string())
        .arg(keyzone.to_string())
        .arg(ZONE)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    harness::say(&format!("{what}: {}", said.trim()));
    if !out.status.success() {
        problems.push(format!("{what}: dkimpy: {said}"));
    }
    (problems, by_marker.values().map(Vec::len).sum())
}

fn python_with_dkimpy() -> String {
    let python = std::env::var("SESAME_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import dkim, dns.query"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{python} needs dkimpy and dnspython (scripts/test makes target/test-venv with them)"
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_burst_cut_by_kill_9_keeps_every_acknowledged_message_once() {
    let began = Instant::now();
    let python = python_with_dkimpy();
    let rig = crate::Rig::start();
    let mut server = rig.start_under_shim();
    let c = client(&server);
    c.create_email_identity()
        .email_identity(SENDER)
        .send()
        .await
        .unwrap();
    wait_verified(&c, SENDER).await;

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    // Past one checkpoint (every second) or not, at random.
    let kill_after = Duration::from_millis(600 + seed % 2000);
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let cut_off = Arc::new(Mutex::new(0usize));
    let mut set = tokio::task::JoinSet::new();
    for s in 0..SENDERS {
        let (c, acked, cut_off) = (c.clone(), acked.clone(), cut_off.clone());
        set.spawn(async move {
            for n in 0.. {
                let marker = format!("burst-{s}-{n}");
                match send(&c, &marker).await {
                    Ok(id) => {
                        acked.lock().unwrap().insert(marker, id);
                    }
                    Err(_) => {
                        *cut_off.lock().unwrap() += 1;
                        return;
                    }
                }
            }
        });
    }
    tokio::time::sleep(kill_after).await;
    server.kill9();
    while set.join_next().await.is_some() {}
    drop(c);
    let acked = acked.lock().unwrap().clone();
    let cut_off = *cut_off.lock().unwrap();
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the kill"
    );

    let rebuilt = rig.power_cut();
    let mut problems = Vec::new();
    let mut counts = Vec::new();
    for (what, dir) in [
        ("after kill -9", rig.data.clone()),
        ("after a power cut", rebuilt),
    ] {
        let restarted = harness::Server::start_in(&dir, &rig.common());
        let (p, n) = check(
            what,
            &dir,
            &acked,
            &python,
            rig.customers.addr,
            restarted.dns,
        );
        problems.extend(p);
        counts.push(n);
        drop(restarted);
    }
    let markers: BTreeSet<_> = acked.keys().collect();
    harness::say(&format!(
        "send burst: kill -9 after {} ms (seed {seed}); {} acknowledged, {cut_off} cut off; outbox after the restart {} / after the power cut {} messages; {} problems, {:.1} s",
        kill_after.as_millis(),
        markers.len(),
        counts[0],
        counts[1],
        problems.len(),
        began.elapsed().as_secs_f64()
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
