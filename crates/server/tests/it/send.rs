//! SendEmail end to end: only verified senders may send, and their mail leaves DKIM-signed with
//! the right key, verifiable by dkimpy through real DNS (NSD for the customer's zone, Sesame's
//! responder for its key zone).

use crate::dns::{Nsd, dns_records, have, status, wait_for};
use crate::harness::{Server, rsa_key_b64};
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{
    Body, Content, Destination, DkimSigningAttributes, DkimStatus, EmailContent, Message,
    RawMessage,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn simple(subject: &str) -> EmailContent {
    EmailContent::builder()
        .simple(
            Message::builder()
                .subject(Content::builder().data(subject).build().unwrap())
                .body(
                    Body::builder()
                        .text(
                            Content::builder()
                                .data("Hello from Sesame.\nLine two.")
                                .build()
                                .unwrap(),
                        )
                        .html(
                            Content::builder()
                                .data("<p>Hello from <b>Sesame</b>.</p>")
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
}

fn outbox(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("outbox"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs dkimpy (`tests/dkim/verify.py`) on a message, resolving the selector at the customer's
/// server and following a CNAME into Sesame's key zone; returns whether it verified, and what
/// it said.
pub(crate) fn dkimpy(
    python: &str,
    message: &Path,
    customer: SocketAddr,
    keyzone: SocketAddr,
) -> (bool, String) {
    let out = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/dkim/verify.py"
        ))
        .arg(message)
        .arg(customer.to_string())
        .arg(keyzone.to_string())
        .arg("dkim.sesame.internal")
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

/// Runs dkimpy on a message with no DNS at all: its lookup of `name`
/// (`selector._domainkey.domain`) answers `txt`; returns whether it verified, and what it said.
fn dkimpy_given(python: &str, message: &Path, name: &str, txt: &str) -> (bool, String) {
    let out = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/dkim/verify.py"
        ))
        .arg(message)
        .args(["--txt", name, txt])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)) && said.contains("dkimpy"),
        "verify.py did not run: {said}"
    );
    (out.status.success(), said)
}

/// The TXT record Sesame's key zone serves at `name`, its strings joined.
async fn key_zone_txt(dns: SocketAddr, name: &str) -> String {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    use hickory_resolver::proto::rr::{RData, RecordType};
    let mut nsc = NameServerConfig::udp_and_tcp(dns.ip());
    for c in nsc.connections.iter_mut() {
        c.port = dns.port();
    }
    let mut b = hickory_resolver::Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![nsc]),
        TokioRuntimeProvider::default(),
    );
    b.options_mut().cache_size = 0;
    let lookup = b
        .build()
        .unwrap()
        .lookup(name, RecordType::TXT)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let RData::TXT(txt) = &lookup.answers()[0].data else {
        panic!("{name}: not TXT")
    };
    txt.txt_data
        .iter()
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

/// The `s=` and `d=` of a message's DKIM-Signature.
fn selector_and_domain(text: &str) -> (String, String) {
    let sig = text
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n\t", " ");
    let tag = |t: &str| {
        sig.split(';')
            .map(str::trim)
            .find_map(|kv| kv.strip_prefix(t))
            .unwrap_or_else(|| panic!("no {t} in {sig}"))
            .to_owned()
    };
    (tag("s="), tag("d="))
}

/// `SESAME_PYTHON` (default `python3`) if it has dkimpy and dnspython; otherwise `None`,
/// after saying so (or failing, where `SESAME_REQUIRE_DNS_TOOLS=1`).
pub(crate) fn python_with_dkimpy() -> Option<String> {
    let python = std::env::var("SESAME_PYTHON").unwrap_or_else(|_| "python3".into());
    let have_dkimpy = Command::new(&python)
        .args(["-c", "import dkim, dns.query"])
        .status()
        .is_ok_and(|s| s.success());
    if have_dkimpy {
        return Some(python);
    }
    let required = std::env::var("SESAME_REQUIRE_DNS_TOOLS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{python} needs dkimpy and dnspython (pip install dkimpy dnspython)"
    );
    crate::harness::say(&format!(
        "SKIPPED: {python} lacks dkimpy/dnspython (pip install dkimpy dnspython)"
    ));
    None
}

#[tokio::test]
async fn unverified_or_foreign_senders_are_rejected_and_nothing_is_sent() {
    let server = Server::start();
    let c = server.client();
    c.create_email_identity()
        .email_identity("pending.example.com")
        .send()
        .await
        .unwrap();
    c.create_email_identity()
        .email_identity("me@other.example.com")
        .send()
        .await
        .unwrap();
    // The address's own verification mail is there; nothing refused may join it.
    let before = outbox(&server.data_dir);
    assert_eq!(before.len(), 1);
    let send = |from: &str| {
        c.send_email()
            .from_email_address(from)
            .destination(
                Destination::builder()
                    .to_addresses("rcpt@example.net")
                    .build(),
            )
            .content(simple("hi"))
            .send()
    };
    for from in [
        "a@pending.example.com",
        "me@other.example.com",
        "x@nobody.example.com",
    ] {
        let e = send(from).await.unwrap_err();
        assert_eq!(e.code(), Some("MessageRejected"), "{from}: {e:?}");
        assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
    }
    // Another account's verified-looking domain is simply not ours.
    let e = c
        .send_email()
        .destination(Destination::builder().to_addresses("rcpt@example.net").build())
        .content(
            EmailContent::builder()
                .raw(RawMessage::builder().data(Blob::new(b"From: a@pending.example.com\r\nTo: b@example.net\r\nSubject: x\r\n\r\nbody\r\n".to_vec())).build().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MessageRejected"));
    // Input mistakes are BadRequest, not MessageRejected.
    let too_many = Destination::builder()
        .set_to_addresses(Some((0..51).map(|i| format!("r{i}@example.net")).collect()))
        .build();
    let e = c
        .send_email()
        .from_email_address("a@pending.example.com")
        .destination(too_many)
        .content(simple("x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("BadRequestException"));
    let e = c
        .send_email()
        .from_email_address("a@pending.example.com")
        .destination(Destination::builder().to_addresses("r@example.net").build())
        .content(
            EmailContent::builder()
                .template(
                    aws_sdk_sesv2::types::Template::builder()
                        .template_name("t")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("BadRequestException"));
    assert!(e.message().unwrap().contains("Template"), "{e:?}");
    assert_eq!(
        outbox(&server.data_dir),
        before,
        "nothing reached the outbox"
    );
}

/// Independent of NSD: an Easy DKIM domain and BYODKIM domains with 1024- and 2048-bit keys
/// are verified through an in-process customer DNS server, and dkimpy, given the key a receiver
/// would find (the key zone's TXT for the Easy DKIM token, the customer's own key for BYODKIM),
/// verifies what each sends, refuses it under another key and refuses it changed. So every run
/// where Python runs checks signatures with a verifier that is not the signing library.
#[tokio::test]
async fn sent_mail_verifies_with_dkimpy_given_the_published_key() {
    let Some(python) = python_with_dkimpy() else {
        return;
    };
    let customers = crate::customerdns::CustomerDns::start("dkim.sesame.internal");
    let resolver = customers.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "200ms"),
        ],
    );
    let c = server.client();
    // The customer's TXT for each BYODKIM selector, as the receiver will find it.
    let mut published = std::collections::HashMap::new();
    for (domain, bits) in [
        ("byo1024.example.test", 1024),
        ("byo2048.example.test", 2048),
    ] {
        let rsa = openssl::rsa::Rsa::generate(bits).unwrap();
        let private = data_encoding::BASE64.encode(&rsa.private_key_to_der().unwrap());
        let public = openssl::pkey::PKey::from_rsa(rsa)
            .unwrap()
            .public_key_to_der()
            .unwrap();
        customers.publish_key("s1", domain, &public);
        published.insert(
            format!("s1._domainkey.{domain}"),
            format!(
                "v=DKIM1; k=rsa; p={}",
                data_encoding::BASE64.encode(&public)
            ),
        );
        c.create_email_identity()
            .email_identity(domain)
            .dkim_signing_attributes(
                DkimSigningAttributes::builder()
                    .domain_signing_selector("s1")
                    .domain_signing_private_key(private)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    c.create_email_identity()
        .email_identity("easy.example.test")
        .send()
        .await
        .unwrap();
    let domains = [
        "byo1024.example.test",
        "byo2048.example.test",
        "easy.example.test",
    ];
    for d in domains {
        wait_for(&c, d, "SUCCESS", |g| {
            status(g) == Some(&DkimStatus::Success)
        })
        .await;
    }
    let other_key = format!(
        "v=DKIM1; k=rsa; p={}",
        data_encoding::BASE64.encode(
            &openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap())
                .unwrap()
                .public_key_to_der()
                .unwrap()
        )
    );
    for d in domains {
        let id = c
            .send_email()
            .from_email_address(format!("News <news@{d}>"))
            .destination(
                Destination::builder()
                    .to_addresses("rcpt@example.net")
                    .build(),
            )
            .content(simple("Checked by dkimpy"))
            .send()
            .await
            .unwrap()
            .message_id()
            .unwrap()
            .to_owned();
        let path = server.data_dir.join("outbox").join(format!("{id}.eml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (selector, domain) = selector_and_domain(&text);
        assert_eq!(domain, d, "{text}");
        let name = format!("{selector}._domainkey.{domain}");
        let txt = match published.get(&name) {
            Some(t) => t.clone(),
            // Easy DKIM: the selector is a token, its key served by Sesame's key zone.
            None => key_zone_txt(server.dns, &format!("{selector}.dkim.sesame.internal.")).await,
        };
        let (ok, said) = dkimpy_given(&python, &path, &name, &txt);
        assert!(ok, "dkimpy did not verify {d}'s mail: {said}\n{text}");
        let (ok, _) = dkimpy_given(&python, &path, &name, &other_key);
        assert!(!ok, "{d}: dkimpy verified the mail with another key");
        let tampered = dir.path().join("tampered.eml");
        std::fs::write(
            &tampered,
            text.replacen("Checked by dkimpy", "Checked by dkimpY", 1),
        )
        .unwrap();
        let (ok, _) = dkimpy_given(&python, &tampered, &name, &txt);
        assert!(!ok, "{d}: dkimpy verified a changed subject");
    }
}

#[tokio::test]
async fn verified_domains_send_mail_that_dkimpy_verifies_through_dns() {
    if !have("nsd") {
        return;
    }
    let Some(python) = python_with_dkimpy() else {
        return;
    };
    let mut nsd = Nsd::start("example.test");
    let dir = tempfile::tempdir().unwrap();
    let resolver = nsd.addr().to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "500ms"),
            ("SESAME_ROTATION_DELAY", "1s"),
        ],
    );
    let c = server.client();
    c.create_email_identity()
        .email_identity("example.test")
        .send()
        .await
        .unwrap();
    c.create_email_identity()
        .email_identity("byo.example.test")
        .dkim_signing_attributes(
            DkimSigningAttributes::builder()
                .domain_signing_selector("s1024")
                .domain_signing_private_key(rsa_key_b64(1024, false))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut records = Vec::new();
    for name in ["example.test", "byo.example.test"] {
        records.extend(
            dns_records(&server, name, None)
                .into_iter()
                .filter(|l| !l.starts_with(';')),
        );
    }
    nsd.publish(&records);
    for name in ["example.test", "byo.example.test"] {
        wait_for(&c, name, "SUCCESS", |g| {
            status(g) == Some(&DkimStatus::Success)
        })
        .await;
    }

    let mut sent = Vec::new();
    for (from, selector_hint) in [
        ("News <news@example.test>", "; d=example.test;"),
        ("ops@byo.example.test", "s=s1024; d=byo.example.test;"),
    ] {
        let out = c
            .send_email()
            .from_email_address(from)
            .destination(
                Destination::builder()
                    .to_addresses("rcpt@example.net")
                    .cc_addresses("cc@example.net")
                    .bcc_addresses("hidden@example.net")
                    .build(),
            )
            .reply_to_addresses("reply@example.test")
            .content(simple("Signed by Sesame"))
            .send()
            .await
            .unwrap();
        sent.push((out.message_id().unwrap().to_owned(), selector_hint));
    }
    // The same through boto3.
    let out = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/boto3/send.py"
        ))
        .args([
            &format!("http://{}", server.api),
            crate::harness::KEY_ID,
            crate::harness::SECRET,
        ])
        .args(["boto3@example.test", "rcpt@example.net"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    sent.push((id, "; d=example.test;"));
    // Raw content, sender and recipients from its headers.
    let raw = b"From: raw@example.test\r\nTo: rcpt@example.net\r\nSubject: raw\r\nMessage-ID: <raw-1@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nRaw body.\r\n".to_vec();
    let out = c
        .send_email()
        .content(
            EmailContent::builder()
                .raw(RawMessage::builder().data(Blob::new(raw)).build().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();
    sent.push((out.message_id().unwrap().to_owned(), "; d=example.test;"));

    // mail-auth's verifier, resolving like a receiver through both servers.
    let forward =
        crate::forwarddns::ForwardDns::start(nsd.addr(), server.dns, "dkim.sesame.internal");
    for (id, hint) in &sent {
        let bytes =
            std::fs::read(server.data_dir.join("outbox").join(format!("{id}.eml"))).unwrap();
        crate::forwarddns::mail_auth_verifies(forward.addr, &bytes)
            .await
            .unwrap_or_else(|e| panic!("mail-auth did not verify {id} ({hint}): {e}"));
        let mut tampered = bytes.clone();
        let at = tampered.len() - 4;
        tampered[at] ^= 1;
        assert!(
            crate::forwarddns::mail_auth_verifies(forward.addr, &tampered)
                .await
                .is_err(),
            "a tampered body fails"
        );
    }
    for (id, hint) in &sent {
        let path = server.data_dir.join("outbox").join(format!("{id}.eml"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (sender, signed) = crate::harness::outbox_parts(&text);
        assert_eq!(
            sender,
            format!("{id}@mail.dkim.sesame.internal"),
            "the default envelope"
        );
        assert!(
            signed.starts_with("DKIM-Signature: v=1; a=rsa-sha256;"),
            "{text}"
        );
        assert!(text.contains(hint), "{hint}: {text}");
        assert!(
            !text.contains("hidden@example.net"),
            "Bcc never appears in the message"
        );
        let (ok, said) = dkimpy(&python, &path, nsd.addr(), server.dns);
        assert!(
            ok,
            "dkimpy did not verify {}:\n{said}\n{text}",
            path.display()
        );
    }
    assert_eq!(outbox(&server.data_dir).len(), sent.len());

    // Rotation with real DNS: the staged key signs only after a successful check past the
    // delay, and mail signed before keeps verifying because the replaced key stays published.
    // The staged key takes one of the two tokens that do not sign; their CNAMEs are withheld
    // first, so no check can succeed after the rotation until they are back, and the mail sent
    // meanwhile must be signed by the old key, whatever the timing.
    let first_text = std::fs::read_to_string(
        server
            .data_dir
            .join("outbox")
            .join(format!("{}.eml", sent[0].0)),
    )
    .unwrap();
    let before = first_text
        .split("s=")
        .nth(1)
        .and_then(|t| t.split(';').next())
        .unwrap()
        .to_owned();
    let withheld: Vec<String> = records
        .iter()
        .filter(|r| !r.contains("_domainkey.example.test") || r.contains(&before))
        .cloned()
        .collect();
    assert_eq!(withheld.len(), records.len() - 2, "{records:?}");
    let checked_after = |at: aws_sdk_sesv2::primitives::DateTime| {
        move |g: &aws_sdk_sesv2::operation::get_email_identity::GetEmailIdentityOutput| {
            g.verification_info()
                .and_then(|v| v.last_checked_timestamp())
                .is_some_and(|t| t.to_millis().unwrap() > at.to_millis().unwrap())
        }
    };
    let now = || aws_sdk_sesv2::primitives::DateTime::from(std::time::SystemTime::now());
    // The identity is SUCCESS, so nothing is checked until the rotation asks for a check; NSD
    // serves the new zone once `publish` returns.
    nsd.publish(&withheld);
    let rotated_at = now();
    let rotated = crate::auth::cli(&server.data_dir, &["rotate", "example.test"]);
    let staged = rotated["StagedToken"].as_str().unwrap().to_owned();
    assert_eq!(rotated["SigningToken"].as_str(), Some(before.as_str()));
    assert_ne!(staged, before);
    async fn send_one(c: &aws_sdk_sesv2::Client, data_dir: &Path) -> (PathBuf, String) {
        let id = c
            .send_email()
            .from_email_address("news@example.test")
            .destination(
                Destination::builder()
                    .to_addresses("rcpt@example.net")
                    .build(),
            )
            .content(simple("During the rotation"))
            .send()
            .await
            .unwrap()
            .message_id()
            .unwrap()
            .to_owned();
        let path = data_dir.join("outbox").join(format!("{id}.eml"));
        let text = std::fs::read_to_string(&path).unwrap();
        (path, text)
    }
    // Checked again after the rotation and past its 1 s delay, but not successfully: the old
    // key still signs.
    let past_delay =
        aws_sdk_sesv2::primitives::DateTime::from_millis(rotated_at.to_millis().unwrap() + 1000);
    let got = wait_for(
        &c,
        "example.test",
        "checked past the delay",
        checked_after(past_delay),
    )
    .await;
    let info = got.verification_info().unwrap();
    assert!(
        info.error_type().is_some(),
        "two of three CNAMEs missing is not a success: {got:?}"
    );
    assert!(
        info.last_success_timestamp().unwrap().to_millis().unwrap()
            < rotated_at.to_millis().unwrap(),
        "no check succeeded since the rotation: {got:?}"
    );
    assert_eq!(
        status(&got),
        Some(&DkimStatus::Success),
        "SUCCESS is kept in the grace"
    );
    let (path, text) = send_one(&c, &server.data_dir).await;
    assert!(
        text.contains(&format!("s={before};")),
        "the old key signs until a check has seen the staged one: {text}"
    );
    let (ok, said) = dkimpy(&python, &path, nsd.addr(), server.dns);
    assert!(ok, "a message signed while rotating verifies: {said}");
    // The records back: the staged key takes over at the next check.
    nsd.publish(&records);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (path, text) = send_one(&c, &server.data_dir).await;
        let (ok, said) = dkimpy(&python, &path, nsd.addr(), server.dns);
        assert!(ok, "a message signed while rotating verifies: {said}");
        if text.contains(&format!("s={staged};")) {
            break;
        }
        assert!(text.contains(&format!("s={before};")), "{text}");
        assert!(
            std::time::Instant::now() < deadline,
            "the staged key never started signing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let first = server
        .data_dir
        .join("outbox")
        .join(format!("{}.eml", sent[0].0));
    let (ok, said) = dkimpy(&python, &first, nsd.addr(), server.dns);
    assert!(ok, "mail signed before the rotation still verifies: {said}");

    // `sesame sign`: another MTA's message, signed with the identity's active key.
    let unsigned = b"From: mta@example.test\r\nTo: rcpt@example.net\r\nSubject: via sign\r\nDate: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <mta-1@example.test>\r\n\r\nSigned by the CLI.\r\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["sign", "--identity", "mta@example.test", "--data-dir"])
        .arg(&server.data_dir)
        .env_remove("SESAME_MASTER_KEY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), unsigned).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout
            .starts_with(b"DKIM-Signature: v=1; a=rsa-sha256;")
    );
    assert!(
        out.stdout.ends_with(unsigned),
        "the message itself is unchanged"
    );
    let signed = dir.path().join("signed-by-cli.eml");
    std::fs::write(&signed, &out.stdout).unwrap();
    let (ok, said) = dkimpy(&python, &signed, nsd.addr(), server.dns);
    assert!(ok, "dkimpy verifies what `sesame sign` signed: {said}");
    // And the check can fail: one changed body byte breaks the signature.
    let tampered = String::from_utf8(out.stdout.clone())
        .unwrap()
        .replace("Signed by the CLI.", "Signed by the CLl.");
    std::fs::write(&signed, tampered).unwrap();
    let (ok, _) = dkimpy(&python, &signed, nsd.addr(), server.dns);
    assert!(!ok, "a tampered message must not verify");
    // A domain that is not verified does not sign.
    c.create_email_identity()
        .email_identity("unverified.example.org")
        .send()
        .await
        .unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["sign", "--identity", "unverified.example.org", "--data-dir"])
        .arg(&server.data_dir)
        .env_remove("SESAME_MASTER_KEY")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("does not sign"));
    // Through an SMTP relay: a real SMTP server (aiosmtpd) receives the message intact.
    let have_smtpd = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if have_smtpd {
        relay_delivers_intact_signed_mail(&python, &nsd, dir.path(), server).await;
    } else {
        let required = std::env::var("SESAME_REQUIRE_DNS_TOOLS").is_ok_and(|v| v == "1");
        assert!(!required, "{python} needs aiosmtpd (pip install aiosmtpd)");
        crate::harness::say(&format!(
            "SKIPPED: the SMTP relay check ({python} lacks aiosmtpd)"
        ));
    }
}

async fn relay_delivers_intact_signed_mail(
    python: &str,
    nsd: &Nsd,
    data_dir: &Path,
    server: Server,
) {
    drop(server);
    let mut sink = crate::harness::SmtpSink::start(python);
    let resolver = nsd.addr().to_string();
    let server = Server::start_in(
        data_dir,
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_SMTP_RELAY", &sink.addr),
            ("SESAME_SMTP_TLS", "none"),
            ("SESAME_SMTP_ATTEMPTS", "2"),
            ("SESAME_SMTP_RETRY_DELAY", "100ms"),
        ],
    );
    let out = server
        .client()
        .send_email()
        .from_email_address("relay@example.test")
        .destination(
            Destination::builder()
                .to_addresses("rcpt@example.net")
                .bcc_addresses("hidden@example.net")
                .build(),
        )
        .content(simple("Through the relay"))
        .send()
        .await
        .unwrap();
    assert!(out.message_id().is_some());
    // Accepted once the spool holds it; the relay gets it a moment later.
    let received = sink.message(1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !received.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay never received the message"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        sink.envelope(1),
        [
            format!("{}@mail.dkim.sesame.internal", out.message_id().unwrap()),
            "rcpt@example.net".to_owned(),
            "hidden@example.net".to_owned()
        ]
    );
    let text = std::fs::read_to_string(&received).unwrap();
    assert!(
        text.starts_with("DKIM-Signature: v=1;") && !text.contains("hidden@example.net"),
        "{text}"
    );
    let (ok, said) = dkimpy(python, &received, nsd.addr(), server.dns);
    assert!(ok, "dkimpy verifies the relayed message: {said}");
    assert!(
        std::fs::read_dir(data_dir.join("outbox"))
            .unwrap()
            .all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(out.message_id().unwrap()))
    );
    // A relay that is down: SendEmail is accepted, and after its attempts the message is
    // reported in failed/, signed and whole: nothing is lost silently.
    sink.kill();
    let down = server
        .client()
        .send_email()
        .from_email_address("relay@example.test")
        .destination(
            Destination::builder()
                .to_addresses("rcpt@example.net")
                .build(),
        )
        .content(simple("Nobody listens"))
        .send()
        .await
        .unwrap();
    let id = down.message_id().unwrap();
    let reason = data_dir.join("failed").join(format!("{id}.reason"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !reason.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no failure report for {id}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let why = std::fs::read_to_string(&reason).unwrap();
    assert!(why.contains("after 2 attempts"), "{why}");
    let kept = std::fs::read_to_string(data_dir.join("failed").join(format!("{id}.eml"))).unwrap();
    assert!(kept.contains("DKIM-Signature: v=1;") && kept.contains("Nobody listens"));
}

/// Creates the Easy DKIM identity `domain`, publishes its records in `nsd` beside `published`
/// (the records published so far, which it extends) and waits for SUCCESS.
pub(crate) async fn create_and_verify(
    server: &Server,
    nsd: &mut Nsd,
    published: &mut Vec<String>,
    domain: &str,
) {
    let c = server.client();
    c.create_email_identity()
        .email_identity(domain)
        .send()
        .await
        .unwrap();
    published.extend(
        dns_records(server, domain, None)
            .into_iter()
            .filter(|l| !l.starts_with(';')),
    );
    nsd.publish(published);
    wait_for(&c, domain, "SUCCESS", |g| {
        status(g) == Some(&DkimStatus::Success)
    })
    .await;
}

/// Regression (issue 12, defect 1): a Raw message's own From:/Sender: mailboxes are checked,
/// not only FromEmailAddress or the first mailbox, so a verified domain cannot lend its
/// signature to someone else's From.
#[tokio::test]
async fn raw_messages_that_claim_someone_elses_from_are_refused_unsigned() {
    if !have("nsd") {
        return;
    }
    let mut nsd = Nsd::start("example.test");
    let dir = tempfile::tempdir().unwrap();
    let resolver = nsd.addr().to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "500ms"),
        ],
    );
    let c = server.client();
    create_and_verify(&server, &mut nsd, &mut Vec::new(), "example.test").await;
    let raw = |from_address: Option<&str>, headers: &str| {
        let message = format!("{headers}To: rcpt@example.net\r\nSubject: s\r\n\r\nbody\r\n");
        c.send_email()
            .set_from_email_address(from_address.map(str::to_owned))
            .content(
                EmailContent::builder()
                    .raw(
                        RawMessage::builder()
                            .data(Blob::new(message.into_bytes()))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
    };
    let cases: &[(Option<&str>, &str, &str)] = &[
        // The probe's request: FromEmailAddress is ours, the message's From is not.
        (
            Some("news@example.test"),
            "From: \"Bank\" <security@bigbank.example>\r\n",
            "security@bigbank.example",
        ),
        // Two From headers: the last used to be the only one checked.
        (
            None,
            "From: security@bigbank.example\r\nFrom: news@example.test\r\n",
            "security@bigbank.example",
        ),
        // Two mailboxes in one From: the first used to be the only one checked.
        (
            None,
            "From: news@example.test, security@bigbank.example\r\nSender: news@example.test\r\n",
            "security@bigbank.example",
        ),
        (
            Some("news@example.test"),
            "From: news@example.test\r\nSender: security@bigbank.example\r\n",
            "security@bigbank.example",
        ),
        (Some("news@example.test"), "", "0 From headers"),
        (
            Some("news@example.test"),
            "From: news@example.test\r\nFrom: news@example.test\r\n",
            "2 From headers",
        ),
    ];
    for (from_address, headers, named) in cases {
        let e = raw(*from_address, headers).await.unwrap_err();
        assert_eq!(e.code(), Some("MessageRejected"), "{headers}: {e:?}");
        assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
        assert!(
            e.message().unwrap_or_default().contains(named),
            "{headers}: the message names {named}: {e:?}"
        );
    }
    assert!(
        outbox(&server.data_dir).is_empty(),
        "nothing refused reached the outbox"
    );
    // The rule is not a blanket refusal: our own From with our own Sender goes out signed.
    let out = raw(
        Some("news@example.test"),
        "From: \"News\" <news@example.test>, ops@example.test\r\nSender: news@example.test\r\n",
    )
    .await
    .unwrap();
    let id = out.message_id().unwrap();
    let text =
        std::fs::read_to_string(server.data_dir.join("outbox").join(format!("{id}.eml"))).unwrap();
    assert!(
        crate::harness::outbox_parts(&text)
            .1
            .starts_with("DKIM-Signature:")
            && text.contains("d=example.test;"),
        "{text}"
    );
}

/// Regression (issue 12, defect 3): a key signs only once the key zone a receiver reaches
/// serves it. Creation, publication and sending back to back, round after round, with the key
/// zone's refresh slowed to 3 s so the old race (SUCCESS from the CNAMEs alone, the key zone
/// not serving yet) would show every round; dkimpy, resolving through NSD into Sesame's zone,
/// must verify every message right away.
#[tokio::test]
async fn back_to_back_create_publish_send_verifies_every_time() {
    if !have("nsd") {
        return;
    }
    let Some(python) = python_with_dkimpy() else {
        return;
    };
    let mut nsd = Nsd::start("example.test");
    let dir = tempfile::tempdir().unwrap();
    let resolver = nsd.addr().to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "200ms"),
            ("SESAME_KEY_ZONE_POLL", "3s"),
        ],
    );
    let c = server.client();
    let mut records = Vec::new();
    let rounds = 6;
    for round in 0..rounds {
        let domain = format!("r{round}.example.test");
        create_and_verify(&server, &mut nsd, &mut records, &domain).await;
        let out = c
            .send_email()
            .from_email_address(format!("news@{domain}"))
            .destination(
                Destination::builder()
                    .to_addresses("rcpt@example.net")
                    .build(),
            )
            .content(simple("back to back"))
            .send()
            .await
            .unwrap();
        let path = server
            .data_dir
            .join("outbox")
            .join(format!("{}.eml", out.message_id().unwrap()));
        let (ok, said) = dkimpy(&python, &path, nsd.addr(), server.dns);
        assert!(ok, "round {round}: dkimpy could not verify at once: {said}");
    }
    crate::harness::say(&format!(
        "back-to-back: {rounds} rounds of create, publish, SUCCESS, send; dkimpy verified {rounds}/{rounds}"
    ));
}
