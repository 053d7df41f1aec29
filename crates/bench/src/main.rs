//! `sesame-bench`: benchmarks reported as ratios to a ceiling measured in the same run, so they
//! hold on any machine. Scenarios: `sign` (DKIM signing throughput vs `openssl speed`).
//! Not a test: nothing here asserts timings.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use openssl::pkey::{PKey, Private};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long each measurement runs.
const SECONDS: u64 = 3;

/// A message of about `size` bytes: the usual headers and a text body.
fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: News <news@example.com>\r\nTo: rcpt@example.net\r\nSubject: Benchmark\r\nDate: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".to_vec();
    let line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

/// Messages signed per second on `threads` threads.
fn sign_rate(key: &PKey<Private>, msg: &[u8], threads: usize) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let signed =
                            sesame_mail::dkim::sign(msg, key, "example.com", "bench").unwrap();
                        std::hint::black_box(signed);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

/// `openssl speed` RSA sign/s for `bits`, on one core or on `multi` processes.
fn openssl_sign_rate(bits: u32, multi: usize) -> f64 {
    let mut cmd = Command::new("openssl");
    cmd.args(["speed", "-seconds", &SECONDS.to_string()]);
    if multi > 1 {
        cmd.args(["-multi", &multi.to_string()]);
    }
    cmd.arg(format!("rsa{bits}"));
    let out = cmd.output().expect("openssl speed");
    let text = String::from_utf8_lossy(&out.stdout);
    // "rsa 2048 bits 0.000241s 0.000016s   4150.5  61288.0" (the -multi summary is alike).
    text.lines()
        .rev()
        .filter(|l| l.trim_start().starts_with("rsa") && l.contains(&format!("{bits} bits")))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.iter().rev().nth(1).and_then(|s| s.parse::<f64>().ok())
        })
        .next()
        .unwrap_or(f64::NAN)
}

fn cpu() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{n} cores, {model}")
}

fn sign_scenario() {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "scenario: DKIM signing (sesame-mail: mail-auth relaxed/relaxed, RSA-SHA256 via OpenSSL)"
    );
    println!("machine: {}", cpu());
    println!();
    println!("| key | message | threads | Sesame msg/s | openssl speed sign/s | ratio |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for bits in [2048u32, 1024] {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(bits).unwrap()).unwrap();
        let one = openssl_sign_rate(bits, 1);
        let all = openssl_sign_rate(bits, cores);
        for size in [2 * 1024, 100 * 1024] {
            let msg = message(size);
            for (threads, ceiling) in [(1, one), (cores, all)] {
                let rate = sign_rate(&key, &msg, threads);
                println!(
                    "| RSA-{bits} | {} KB | {threads} | {rate:.0} | {ceiling:.0} | {:.1} % |",
                    size / 1024,
                    100.0 * rate / ceiling
                );
            }
        }
    }
}

fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_else(|| "sign".into());
    match scenario.as_str() {
        "sign" => sign_scenario(),
        other => {
            eprintln!("unknown scenario {other:?}; available: sign");
            std::process::exit(2);
        }
    }
}
