//! Scenario 4: DKIM signing at library level (`OpenSslVault::sign`: mail-auth's
//! relaxed/relaxed canonicalisation and SHA-256, RSA-SHA256 through OpenSSL with the key
//! unsealed once and then taken from the vault's cache, as the server signs), next to
//! `openssl speed` and dkimpy.

use crate::procs;
use crate::report::{self, say};
use openssl::pkey::{PKey, Private};
use sesame_core::model::{KeyLength, Timestamp};
use sesame_core::ports::{KeyVault, PrivateKeyInput};
use sesame_crypto::{MasterKey, OpenSslVault, Sealer};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long each measurement runs.
const SECONDS: u64 = 3;

/// A message of about `size` bytes: the usual headers and a text body.
pub fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: News <news@example.com>\r\nTo: rcpt@example.net\r\nSubject: Benchmark\r\nDate: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n".to_vec();
    let line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

/// Messages signed per second on `threads` threads with the sealed key `sealed`.
fn sign_rate(vault: &OpenSslVault, sealed: &[u8], msg: &[u8], threads: usize) -> f64 {
    // Unseal the key into the vault's cache before the clock starts, as a running server has.
    vault
        .sign(sealed, msg, "example.com", "bench", Timestamp(0))
        .expect("sign");
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let signed = vault
                            .sign(
                                sealed,
                                msg,
                                "example.com",
                                "bench",
                                Timestamp(1_796_194_800_000),
                            )
                            .expect("sign");
                        std::hint::black_box(signed);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signing thread"))
            .sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

/// `openssl speed` RSA sign/s for `bits`, on one core or on `multi` processes.
pub fn openssl_sign_rate(bits: u32, multi: usize) -> f64 {
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

/// dkimpy's msg/s on one core for the same key and message, if the venv has it.
fn dkimpy_rate(work: &Path, key: &PKey<Private>, msg: &[u8]) -> Option<f64> {
    if !procs::python_has("dkim") {
        return None;
    }
    let key_file = work.join("dkimpy-key.pem");
    let msg_file = work.join("dkimpy-message.eml");
    std::fs::write(&key_file, key.private_key_to_pem_pkcs8().ok()?).ok()?;
    std::fs::write(&msg_file, msg).ok()?;
    let out = Command::new(procs::python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/py/dkimpy_sign.py"))
        .arg(&key_file)
        .arg(&msg_file)
        .arg(SECONDS.to_string())
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&key_file);
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Scenario 4.
pub fn scenario(work: &Path, cores: usize) {
    say("## 4. DKIM signing, library level\n");
    std::fs::create_dir_all(work).expect("work dir");
    say(
        "| key | message | threads | Sesame msg/s | openssl speed sign/s | ratio | dkimpy msg/s (1 core) |",
    );
    say("| --- | --- | --- | --- | --- | --- | --- |");
    let vault = OpenSslVault::new(Sealer::new(MasterKey::generate().expect("master key")));
    for (bits, length) in [(2048u32, KeyLength::Rsa2048), (1024, KeyLength::Rsa1024)] {
        // Made here rather than by the vault, because dkimpy needs the key too; the vault
        // takes it as a BYODKIM import and signs with it sealed.
        let key =
            PKey::from_rsa(openssl::rsa::Rsa::generate(length.bits()).expect("rsa")).expect("pkey");
        let der = key.private_key_to_pkcs8().expect("pkcs8");
        let sealed = vault
            .import(&PrivateKeyInput(der))
            .expect("import")
            .sealed_private;
        let one = openssl_sign_rate(bits, 1);
        let all = openssl_sign_rate(bits, cores);
        for size in [2 * 1024, 100 * 1024] {
            let msg = message(size);
            let peer = dkimpy_rate(work, &key, &msg);
            for (threads, ceiling, target) in [(1, one, 0.9), (cores, all, 0.85)] {
                let rate = sign_rate(&vault, &sealed, &msg, threads);
                let peer_cell = match (threads, peer) {
                    (1, Some(p)) => format!("{p:.0} (Sesame ÷ dkimpy = {:.0}×)", rate / p),
                    (1, None) => "not run (no dkimpy)".into(),
                    _ => String::new(),
                };
                say(&format!(
                    "| RSA-{bits} | {} KB | {threads} | {rate:.0} | {ceiling:.0} | {:.1} % | {peer_cell} |",
                    size / 1024,
                    100.0 * rate / ceiling
                ));
                report::target(
                    &format!(
                        "4. sign RSA-{bits}, {} KB, {threads} thread(s)",
                        size / 1024
                    ),
                    format!("{rate:.0} msg/s"),
                    format!("openssl speed {ceiling:.0}/s"),
                    rate / ceiling,
                    target,
                );
            }
        }
    }
    say("");
}
