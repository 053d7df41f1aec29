//! The web console in a real headless browser: Debian's chromium, driven through chromedriver
//! by Selenium (`tests/browser/console.py`). The browser signs in, finds a PENDING domain with
//! the list's filter, opens it and reads its four records (three DKIM CNAMEs, the DMARC record) off the page; this side publishes
//! exactly what the browser read in NSD (the customer's DNS); the browser presses "check now"
//! and waits for SUCCESS with every record found, then saves a screenshot of the identity page
//! to `target/artefacts/console-identity.png` (and a phone-width one beside it). A second test
//! follows verification links in the browser (`tests/browser/link.py`).
//!
//! Without chromium, chromedriver or Selenium the test says `SKIPPED: …`; with
//! `SESAME_REQUIRE_BROWSER=1` (as `scripts/test` sets) that is a failure.

use crate::dns::{Nsd, have};
use crate::harness::{Server, say};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The Python with Selenium, if chromium and chromedriver are there too.
fn browser() -> Option<String> {
    let python = std::env::var("SESAME_PYTHON").unwrap_or_else(|_| {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python");
        venv.to_string_lossy().into_owned()
    });
    let selenium = Command::new(&python)
        .args(["-c", "import selenium"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing: Vec<&str> = [
        (!Path::new("/usr/bin/chromium").exists()).then_some("chromium"),
        (!Path::new("/usr/bin/chromedriver").exists()).then_some("chromedriver (chromium-driver)"),
        (!selenium).then_some("selenium in the test venv"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return Some(python);
    }
    let required = std::env::var("SESAME_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    assert!(!required, "the browser test needs {}", missing.join(", "));
    say(&format!(
        "SKIPPED: the browser test needs {} (apt-get install chromium chromium-driver; pip install selenium); scripts/test installs them",
        missing.join(", ")
    ));
    None
}

fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_takes_a_pending_domain_to_success_in_a_real_browser() {
    if !have("nsd") {
        return;
    }
    let Some(python) = browser() else { return };
    let mut nsd = Nsd::start("console.test");
    let dir = tempfile::tempdir().unwrap();
    let resolver = nsd.addr().to_string();
    // A long first interval: only "check now" can make the check due within the test.
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", resolver.as_str()),
            ("SESAME_VERIFY_INTERVAL", "1h"),
        ],
    );
    let domain = "shop.console.test";
    let c = server.client();
    for name in [domain, "other.console.test", "me@console.test"] {
        c.create_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap();
    }
    let token = std::fs::read_to_string(server.data_dir.join("admin-token")).unwrap();
    let shot = artefacts().join("console-identity.png");
    let _ = std::fs::remove_file(&shot);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/console.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(format!("http://{}", server.admin))
        .arg(token.trim())
        .arg(domain)
        .arg(&shot)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut records = Vec::new();
    let mut lines = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(90)) else {
            let _ = child.kill();
            panic!(
                "the browser never read the records: {lines:?}\n{}",
                errors.join().unwrap()
            );
        };
        lines.push(line.clone());
        if let Some(r) = line.strip_prefix("RECORD ") {
            let mut parts = r.splitn(3, ' ');
            let (name, rtype, value) = (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
            );
            records.push((name, rtype, value));
        }
        if line == "READ" {
            break;
        }
    }
    // What the browser read is what must be published: the CLI's own lines agree.
    assert_eq!(records.len(), 4, "{lines:?}");
    let zone: Vec<String> = records
        .iter()
        .map(|(name, rtype, value)| {
            if name == "_dmarc.shop.console.test" {
                assert_eq!(rtype, "TXT");
                return format!("{name}. 300 IN TXT {value}");
            }
            assert_eq!(rtype, "CNAME");
            assert!(name.ends_with("._domainkey.shop.console.test"), "{name}");
            format!("{name}. 300 IN CNAME {value}.")
        })
        .collect();
    let cli: Vec<String> = crate::dns::dns_records(&server, domain, None)
        .into_iter()
        .filter(|l| !l.starts_with(';'))
        .collect();
    let cli_names: Vec<&str> = cli.iter().map(|l| l.split(' ').next().unwrap()).collect();
    for z in &zone {
        assert!(
            cli_names.contains(&z.split(' ').next().unwrap()),
            "{z} vs {cli:?}"
        );
    }
    nsd.publish(&zone);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "PUBLISHED").unwrap();
    drop(stdin);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut rest = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        rest.push(line);
    }
    let err = errors.join().unwrap();
    assert!(
        status.success(),
        "the browser test failed ({status}): {rest:?}\n{err}"
    );
    assert_eq!(
        rest.last().map(String::as_str),
        Some("OK"),
        "{rest:?}\n{err}"
    );
    // The API agrees with what the page showed.
    let got = c
        .get_email_identity()
        .email_identity(domain)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.dkim_attributes()
            .and_then(|d| d.status())
            .map(|s| s.as_str()),
        Some("SUCCESS")
    );
    let size = std::fs::metadata(&shot).unwrap().len();
    assert!(size > 10_000, "a screenshot of {size} bytes");
    say(&format!(
        "browser: signed in, filtered PENDING, read 4 records, published them, checked now, SUCCESS; screenshot {} ({size} bytes)",
        shot.display()
    ));
}

/// Verification links in the browser (`tests/browser/link.py`): Sesame's own link shows the
/// address and a button, the button verifies, and the page reads on a phone; a template's link
/// lands the browser on the template's success URL, a page of another origin (the admin
/// listener's `/health/live`), through the page's Content-Security-Policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_links_verify_and_redirect_in_a_real_browser() {
    let Some(python) = browser() else { return };
    let server = Server::start();
    let c = server.client();
    let base = format!("http://{}", server.api);
    for name in ["sender@link.test", "owner@link.test"] {
        c.create_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap();
    }
    let link = |to: &str| {
        let mails = crate::addresses::outbox_to(&server.data_dir, to);
        let tokens = crate::addresses::links_in(mails.last().unwrap(), &base);
        format!("{base}/verify/{}", tokens[0])
    };
    // The template's sender, verified by its own link (over HTTP, not the browser).
    let sender = link("sender@link.test");
    let token = sender.rsplit('/').next().unwrap();
    assert_eq!(
        crate::addresses::follow(server.api, "POST", token).status,
        200
    );
    let success = format!("http://{}/health/live", server.admin);
    c.create_custom_verification_email_template()
        .template_name("browser")
        .from_email_address("sender@link.test")
        .template_subject("Confirm")
        .template_content("<p>Confirm your address.</p>")
        .success_redirection_url(&success)
        .failure_redirection_url(format!("http://{}/health/ready", server.admin))
        .send()
        .await
        .unwrap();
    c.send_custom_verification_email()
        .email_address("invitee@link.test")
        .template_name("browser")
        .send()
        .await
        .unwrap();
    let shot = artefacts().join("verify-link.png");
    let _ = std::fs::remove_file(&shot);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/link.py");
    let (own, invitee) = (link("owner@link.test"), link("invitee@link.test"));
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(&script)
            .arg(own)
            .arg("owner@link.test")
            .arg(invitee)
            .arg(success)
            .arg(&shot)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && said.lines().last() == Some("OK"),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["owner@link.test", "invitee@link.test"] {
        let got = c
            .get_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap();
        assert_eq!(
            got.verification_status().map(|s| s.as_str()),
            Some("SUCCESS"),
            "{name}"
        );
    }
    say(&format!(
        "browser: verified an address by its link's button and landed on a template's success URL; screenshot {}",
        artefacts().join("verify-link.png").display()
    ));
}
