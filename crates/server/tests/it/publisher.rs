//! DNS publishers and revocation through the real binary, against a real BIND 9 primary for
//! `example.test` (with `allow-update { key … }`), which is also the verifier's resolver:
//! - a publisher makes an Easy DKIM domain's three CNAMEs appear in BIND (read back with
//!   `kdig`, an independent client) and the domain verifies with nothing published by the test;
//!   a switch to BYODKIM keeps the old CNAMEs for the key retention, then removes them; a
//!   deleted domain loses what is left at once;
//! - a wrong TSIG secret changes nothing in BIND, GetEmailIdentity shows `DNS_SERVER_ERROR`
//!   and the status stays PENDING;
//! - `sesame revoke`: the key zone answers `p=` empty for the token, dkimpy rejects a message
//!   signed before, mail is refused until the replacement signs, and the replacement verifies;
//! - the TSIG secret is in no log line, CLI output, response or database file.

use crate::auth::cli;
use crate::harness::{Server, say};
use crate::send::{dkimpy, python_with_dkimpy, simple};
use aws_sdk_sesv2::types::{Destination, DkimSigningAttributes};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ZONE: &str = "example.test";
const KEY: &str = "sesame-key";

fn secret(seed: u8) -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(41).wrapping_add(seed))
        .collect()
}

fn b64(s: &[u8]) -> String {
    data_encoding::BASE64.encode(s)
}

/// BIND 9 and kdig, or `None` after saying so (a failure where the tools are required).
fn tools() -> Option<()> {
    let have = std::path::Path::new("/usr/sbin/named").exists()
        && Command::new("kdig").arg("-V").output().is_ok();
    if have {
        return Some(());
    }
    let required = std::env::var("SESAME_REQUIRE_DNS_TOOLS").is_ok_and(|v| v == "1");
    assert!(!required, "these tests need bind9 and knot-dnsutils");
    say("SKIPPED: BIND 9's named or kdig is not installed (apt-get install bind9 knot-dnsutils)");
    None
}

/// A BIND 9 primary for `example.test` on a free loopback port, in its own directory.
struct Bind {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bind {
    fn start() -> Bind {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let conf = format!(
            r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    lock-file "{d}/named.lock";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-query {{ any; }};
}};
controls {{ }};
key "{KEY}" {{ algorithm hmac-sha256; secret "{}"; }};
zone "{ZONE}" {{
    type primary;
    file "{d}/{ZONE}.zone";
    allow-update {{ key "{KEY}"; }};
}};
"#,
            b64(&secret(1)),
        );
        std::fs::write(dir.path().join("named.conf"), conf).unwrap();
        std::fs::write(
            dir.path().join(format!("{ZONE}.zone")),
            format!(
                "$ORIGIN {ZONE}.\n$TTL 60\n@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60\n@ IN NS ns1.{ZONE}.\nns1 IN A 127.0.0.1\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("named.log")).unwrap();
        let child = Command::new("/usr/sbin/named")
            .args(["-g", "-4", "-n", "1", "-c"])
            .arg(dir.path().join("named.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let bind = Bind {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while bind.ask(ZONE, "SOA").is_empty() {
            assert!(Instant::now() < deadline, "BIND never served the zone");
            std::thread::sleep(Duration::from_millis(100));
        }
        bind
    }

    /// What BIND answers for `name` and `rtype`, through kdig over TCP.
    fn ask(&self, name: &str, rtype: &str) -> Vec<String> {
        let out = Command::new("kdig")
            .arg(format!("@{}", self.addr.ip()))
            .args([
                "-p",
                &self.addr.port().to_string(),
                "+tcp",
                "+short",
                name,
                rtype,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_ascii_lowercase())
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .collect()
    }

    /// Waits until `done` holds of what BIND answers.
    fn wait(&self, name: &str, rtype: &str, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.ask(name, rtype);
            if done(&got) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: BIND answers {got:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn write_secret(dir: &Path, name: &str, secret: &[u8]) -> String {
    // As `tsig-keygen` writes it.
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "key \"{KEY}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{}\";\n}};\n",
            b64(secret)
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn set_publisher(server: &Server, bind: &Bind, domain: &str, secret_file: &str) -> String {
    let out = cli(
        &server.data_dir,
        &[
            "dns-publisher",
            "set",
            domain,
            "--rfc2136",
            &bind.addr.to_string(),
            "--zone",
            ZONE,
            "--tsig-name",
            KEY,
            "--tsig-secret-file",
            secret_file,
        ],
    );
    out.to_string()
}

/// A server whose verifier asks BIND; a staged key signs `rotation_delay` after it was seen.
fn start(bind: &Bind, data: &Path, rotation_delay: &str) -> Server {
    Server::start_in(
        data,
        &[
            ("SESAME_RESOLVER", &bind.addr.to_string()),
            ("SESAME_VERIFY_INTERVAL", "300ms"),
            ("SESAME_PUBLISH_INTERVAL", "200ms"),
            ("SESAME_KEY_RETENTION", "4s"),
            ("SESAME_ROTATION_DELAY", rotation_delay),
        ],
    )
}

async fn status(c: &aws_sdk_sesv2::Client, domain: &str) -> (String, Option<String>) {
    let got = c
        .get_email_identity()
        .email_identity(domain)
        .send()
        .await
        .unwrap();
    (
        got.verification_status().unwrap().as_str().to_owned(),
        got.verification_info()
            .and_then(|v| v.error_type())
            .map(|e| e.as_str().to_owned()),
    )
}

async fn wait_status(c: &aws_sdk_sesv2::Client, domain: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, _) = status(c, domain).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{domain} stayed {got}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cname_names(tokens: &[String], domain: &str) -> Vec<String> {
    tokens
        .iter()
        .map(|t| format!("{t}._domainkey.{domain}"))
        .collect()
}

#[tokio::test]
async fn a_publisher_publishes_verifies_retires_and_removes_and_a_wrong_secret_changes_nothing() {
    if tools().is_none() {
        return;
    }
    let bind = Bind::start();
    let data = tempfile::tempdir().unwrap();
    let server = start(&bind, data.path(), "1s");
    let c = server.client();
    let good = write_secret(data.path(), "good.key", &secret(1));
    let bad = write_secret(data.path(), "bad.key", &secret(99));
    let mut cli_output = set_publisher(&server, &bind, "pub.example.test", &good);
    cli_output += &set_publisher(&server, &bind, "bad.example.test", &bad);

    // Create → the three CNAMEs appear in BIND → SUCCESS, with nothing published by the test.
    let created = c
        .create_email_identity()
        .email_identity("pub.example.test")
        .send()
        .await
        .unwrap();
    let tokens: Vec<String> = created.dkim_attributes().unwrap().tokens().to_vec();
    assert_eq!(tokens.len(), 3);
    for (t, name) in tokens.iter().zip(cname_names(&tokens, "pub.example.test")) {
        bind.wait(&name, "CNAME", "the publisher's CNAME", |got| {
            got == [format!("{t}.dkim.sesame.internal.")]
        });
    }
    wait_status(&c, "pub.example.test", "SUCCESS").await;
    assert_eq!(status(&c, "pub.example.test").await.1, None);

    // A wrong secret: nothing in BIND, the error through the API, still PENDING.
    let bad_tokens: Vec<String> = c
        .create_email_identity()
        .email_identity("bad.example.test")
        .send()
        .await
        .unwrap()
        .dkim_attributes()
        .unwrap()
        .tokens()
        .to_vec();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, error) = status(&c, "bad.example.test").await;
        assert_eq!(s, "PENDING");
        if error.as_deref() == Some("DNS_SERVER_ERROR") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no publishing error shown: {error:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for name in cname_names(&bad_tokens, "bad.example.test") {
        assert!(bind.ask(&name, "CNAME").is_empty(), "{name} was published");
    }
    let shown = cli(
        &server.data_dir,
        &["dns-publisher", "show", "bad.example.test"],
    );
    assert!(
        shown["LastError"].as_str().unwrap().contains("BADSIG"),
        "{shown}"
    );
    assert_eq!(shown["Published"], serde_json::json!([]));
    // The console's identity page says so too.
    let page = console_page(&server, "bad.example.test");
    assert!(
        page.contains("id=\"publisher-error\"") && page.contains("BADSIG"),
        "{page}"
    );
    assert!(
        !page.contains(&b64(&secret(99))),
        "the console shows the secret"
    );
    cli_output += &shown.to_string();
    cli_output += &cli(
        &server.data_dir,
        &["dns-publisher", "show", "pub.example.test"],
    )
    .to_string();

    // The customer's zone already holds a CNAME at one token's name: reported, not replaced.
    let clash_tokens: Vec<String> = c
        .create_email_identity()
        .email_identity("clash.example.test")
        .send()
        .await
        .unwrap()
        .dkim_attributes()
        .unwrap()
        .tokens()
        .to_vec();
    let clash_names = cname_names(&clash_tokens, "clash.example.test");
    sesame_dns::update::publish(
        &sesame_dns::update::UpdateTarget {
            server: bind.addr,
            zone: ZONE.into(),
            key_name: KEY.into(),
            secret: secret(1),
            timeout: Duration::from_secs(5),
        },
        &[sesame_dns::update::UpdateRecord::Cname {
            name: clash_names[0].clone(),
            target: "elsewhere.example.net".into(),
        }],
        60,
    )
    .await
    .unwrap();
    cli_output += &set_publisher(&server, &bind, "clash.example.test", &good);
    bind.wait(
        &clash_names[1],
        "CNAME",
        "the CNAMEs without a clash",
        |got| got.len() == 1,
    );
    bind.wait(
        &clash_names[2],
        "CNAME",
        "the CNAMEs without a clash",
        |got| got.len() == 1,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let shown = cli(
            &server.data_dir,
            &["dns-publisher", "show", "clash.example.test"],
        );
        if shown["Conflicts"].as_array().is_some_and(|c| !c.is_empty()) {
            break shown;
        }
        assert!(Instant::now() < deadline, "no conflict reported: {shown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let conflict = shown["Conflicts"][0].as_str().unwrap();
    assert!(
        conflict.contains(&clash_names[0]) && conflict.contains("elsewhere.example.net"),
        "{shown}"
    );
    assert_eq!(shown["Published"].as_array().unwrap().len(), 2, "{shown}");
    assert_eq!(
        bind.ask(&clash_names[0], "CNAME"),
        vec!["elsewhere.example.net.".to_owned()],
        "the customer's record stays"
    );
    assert_eq!(status(&c, "clash.example.test").await.0, "PENDING");

    // A switch to BYODKIM: the Easy DKIM CNAMEs stay for the retention (4 s), then go.
    let switched = Instant::now();
    c.put_email_identity_dkim_signing_attributes()
        .email_identity("pub.example.test")
        .signing_attributes_origin(aws_sdk_sesv2::types::DkimSigningAttributesOrigin::External)
        .signing_attributes(
            DkimSigningAttributes::builder()
                .domain_signing_selector("byo")
                .domain_signing_private_key(crate::harness::rsa_key_b64(1024, false))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let first = &cname_names(&tokens, "pub.example.test")[0];
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        bind.ask(first, "CNAME").len(),
        1,
        "removed before the retention"
    );
    bind.wait(first, "CNAME", "the retired CNAME's removal", |got| {
        got.is_empty()
    });
    assert!(
        switched.elapsed() >= Duration::from_secs(4),
        "removed after {:?}, within the retention",
        switched.elapsed()
    );
    // Back to Easy DKIM: new CNAMEs; a delete then removes them at once.
    let again = c
        .put_email_identity_dkim_signing_attributes()
        .email_identity("pub.example.test")
        .signing_attributes_origin(aws_sdk_sesv2::types::DkimSigningAttributesOrigin::AwsSes)
        .send()
        .await
        .unwrap();
    let new_tokens: Vec<String> = again.dkim_tokens().to_vec();
    let new_first = &cname_names(&new_tokens, "pub.example.test")[0];
    bind.wait(new_first, "CNAME", "the new CNAME", |got| got.len() == 1);
    c.delete_email_identity()
        .email_identity("pub.example.test")
        .send()
        .await
        .unwrap();
    let deleted = Instant::now();
    for name in cname_names(&new_tokens, "pub.example.test") {
        bind.wait(&name, "CNAME", "removal after the delete", |got| {
            got.is_empty()
        });
    }
    assert!(
        deleted.elapsed() < Duration::from_secs(4),
        "a delete waits for no retention"
    );

    // The secret is nowhere: log, CLI output, database files (raw or base64).
    let needles = [b64(&secret(1)), b64(&secret(99))];
    let log = server.output();
    for n in &needles {
        assert!(!log.contains(n.as_str()), "the log holds a TSIG secret");
        assert!(
            !cli_output.contains(n.as_str()),
            "the CLI printed a TSIG secret"
        );
    }
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "key") || path.is_dir() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for raw in [secret(1), secret(99)] {
            assert!(
                !bytes.windows(raw.len()).any(|w| w == raw.as_slice()),
                "{} holds a TSIG secret",
                path.display()
            );
        }
        for n in &needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                "{} holds a TSIG secret in base64",
                path.display()
            );
        }
    }
}

/// The console's page of `domain` (of the default account), signed in with the admin token.
fn console_page(server: &Server, domain: &str) -> String {
    let page = crate::scrape::get(
        server.admin,
        &format!("/console/identities/{}/{domain}", server.account),
        &[&crate::scrape::console_session(server)],
    );
    assert_eq!(page.status, 200, "{page:?}");
    page.body
}

fn newest_message(dir: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    files.pop().expect("a message in the outbox")
}

/// The message's DKIM selector.
fn selector(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let sig = text.replace("\r\n\t", " ").replace("\r\n ", " ");
    sig.split(';')
        .map(str::trim)
        .find_map(|kv| kv.strip_prefix("s="))
        .expect("a signature")
        .to_owned()
}

#[tokio::test]
async fn a_revoked_key_stops_signing_at_once_and_its_replacement_takes_over() {
    if tools().is_none() {
        return;
    }
    let Some(python) = python_with_dkimpy() else {
        return;
    };
    let bind = Bind::start();
    let data = tempfile::tempdir().unwrap();
    // Long enough for the checks between the revocation and the first send: the replacement
    // must not sign before them.
    let server = start(&bind, data.path(), "8s");
    let c = server.client();
    let good = write_secret(data.path(), "good.key", &secret(1));
    set_publisher(&server, &bind, "rev.example.test", &good);
    c.create_email_identity()
        .email_identity("rev.example.test")
        .send()
        .await
        .unwrap();
    wait_status(&c, "rev.example.test", "SUCCESS").await;
    let send = || {
        c.send_email()
            .from_email_address("news@rev.example.test")
            .destination(
                Destination::builder()
                    .to_addresses("rcpt@example.net")
                    .build(),
            )
            .content(simple("revocation"))
            .send()
    };
    send().await.unwrap();
    let before = newest_message(data.path());
    let old = selector(&before);
    let (ok, said) = dkimpy(&python, &before, bind.addr, server.dns);
    assert!(ok, "signed before the revocation: {said}");

    let revoked = cli(
        &server.data_dir,
        &["revoke", "rev.example.test", "--by", "incident-42"],
    );
    assert_eq!(revoked["RevokedToken"], old.as_str());
    assert_eq!(revoked["Signing"], serde_json::Value::Null, "{revoked}");
    let staged = revoked["StagedToken"].as_str().unwrap().to_owned();
    assert_ne!(staged, old);

    // The key zone answers p= empty for the token (after its next rebuild).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("kdig")
            .arg(format!("@{}", server.dns.ip()))
            .args(["-p", &server.dns.port().to_string(), "+short"])
            .arg(format!("{old}.dkim.sesame.internal"))
            .arg("TXT")
            .output()
            .unwrap();
        let txt = String::from_utf8_lossy(&out.stdout).replace("\" \"", "");
        if txt.contains("p=\"") || txt.trim_end().ends_with("p=\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the key zone still answers {txt}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, said) = dkimpy(&python, &before, bind.addr, server.dns);
    assert!(!ok, "dkimpy still accepts the revoked key: {said}");
    let page = console_page(&server, "rev.example.test");
    assert!(page.contains("id=\"signing-revoked\""), "{page}");
    assert!(
        page.contains("incident-42"),
        "the audit trail is on the page"
    );

    // Nothing is signed with it: mail is refused, naming the reason, until the replacement.
    let mut refused = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        match send().await {
            Err(e) => {
                let e = e.into_service_error();
                assert_eq!(e.meta().code(), Some("MessageRejected"), "{e:?}");
                assert!(e.meta().message().unwrap().contains("revoked"), "{e:?}");
                refused += 1;
            }
            Ok(_) => break newest_message(data.path()),
        }
        assert!(Instant::now() < deadline, "the replacement never signed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        refused >= 1,
        "the first send after the revocation was not refused"
    );
    assert_eq!(selector(&after), staged, "signed by the replacement");
    let (ok, said) = dkimpy(&python, &after, bind.addr, server.dns);
    assert!(ok, "the replacement verifies: {said}");

    let history = cli(
        &server.data_dir,
        &["revoke", "rev.example.test", "--history"],
    );
    assert_eq!(history[0]["Token"], old.as_str());
    assert_eq!(history[0]["By"], "incident-42");
}
