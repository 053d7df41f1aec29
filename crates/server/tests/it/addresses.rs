//! Address identities verified as SES verifies them (issue 17), with the real binary: a create
//! mails one link under `--public-url`; a GET of the link only shows a confirm button, the POST
//! verifies; tampered, unknown and expired links refuse with a 4xx page and change nothing;
//! the address turns FAILED when its window passes; the same through an SMTP relay (aiosmtpd)
//! with a custom verification template, whose subject and content the mail carries and whose
//! URLs the browser is sent to; mail from the verified address is signed by its domain.

use crate::dns::{Nsd, have};
use crate::harness::{RawResponse, Server, SmtpSink};
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{Destination, VerificationStatus};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The link tokens found in a message under `base` (`<base>/verify/<43 characters>`), each
/// once, in order; quoted-printable soft line breaks are undone first.
pub(crate) fn links_in(message: &str, base: &str) -> Vec<String> {
    let text = message.replace("=\r\n", "").replace("=\n", "");
    let prefix = format!("{base}/verify/");
    let mut out: Vec<String> = Vec::new();
    for (at, _) in text.match_indices(&prefix) {
        let token: String = text[at + prefix.len()..].chars().take(43).collect();
        if !out.contains(&token) {
            out.push(token);
        }
    }
    out
}

/// Every outbox message whose `To:` is `to`, oldest first.
pub(crate) fn outbox_to(data_dir: &Path, to: &str) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir.join("outbox"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort_by_key(|p| {
        (
            std::fs::metadata(p).and_then(|m| m.modified()).ok(),
            p.clone(),
        )
    });
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .filter(|t| {
            t.lines()
                .any(|l| l == format!("To: <{to}>") || l == format!("To: {to}"))
        })
        .collect()
}

/// A GET or POST of `/verify/<token>` as a browser sends it.
pub(crate) fn follow(api: SocketAddr, method: &str, token: &str) -> RawResponse {
    let head = format!(
        "{method} /verify/{token} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n"
    );
    crate::harness::send(api, head.as_bytes(), b"")
}

async fn verification_status(c: &Client, name: &str) -> VerificationStatus {
    c.get_email_identity()
        .email_identity(name)
        .send()
        .await
        .unwrap()
        .verification_status()
        .cloned()
        .unwrap()
}

/// Every answer of a link page: nothing cached, no referrer, only its own style.
fn assert_private(r: &RawResponse) {
    assert_eq!(
        r.header("cache-control"),
        Some("no-store"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
}

#[tokio::test]
async fn an_address_is_verified_by_the_mailed_link_and_bad_links_change_nothing() {
    if !have("nsd") {
        return;
    }
    let Some(python) = crate::send::python_with_dkimpy() else {
        return;
    };
    let mut nsd = Nsd::start("example.test");
    let dir = tempfile::tempdir().unwrap();
    let resolver = nsd.addr().to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "300ms"),
        ],
    );
    let c = server.client();
    let base = format!("http://{}", server.api);
    for name in ["owner@example.test", "other@example.test"] {
        c.create_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap();
    }
    let mail = outbox_to(&server.data_dir, "owner@example.test");
    assert_eq!(mail.len(), 1, "exactly one mail to the address");
    let (sender, message) = crate::harness::outbox_parts(&mail[0]);
    assert!(sender.ends_with("@mail.dkim.sesame.internal"), "{sender}");
    assert!(
        message.contains("From: <no-reply@mail.dkim.sesame.internal>"),
        "{message}"
    );
    assert!(message.contains("text/plain") && message.contains("text/html"));
    let owner = links_in(message, &base);
    assert_eq!(
        owner.len(),
        1,
        "one link, under the API's own URL: {message}"
    );
    let other = links_in(&outbox_to(&server.data_dir, "other@example.test")[0], &base);
    assert_ne!(owner, other, "two addresses, two tokens");
    assert!(
        !server.output().contains(&owner[0]),
        "the token is never logged"
    );
    for f in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = f.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("sesame.db"))
        {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(43).any(|w| w == owner[0].as_bytes()),
                "{} holds the token",
                path.display()
            );
        }
    }

    // Tampered, cut, unknown and malformed links: 404, nothing changes.
    let mut tampered = owner[0].clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown = "A".repeat(43);
    for bad in [
        tampered.as_str(),
        &owner[0][..42],
        unknown.as_str(),
        "not-a-token",
        "%2e%2e",
    ] {
        for method in ["GET", "POST"] {
            let r = follow(server.api, method, bad);
            assert_eq!(r.status, 404, "{method} {bad}: {}", r.body);
            assert!(r.body.contains("This link is not valid"), "{}", r.body);
            assert_private(&r);
        }
    }
    assert_eq!(
        verification_status(&c, "owner@example.test").await,
        VerificationStatus::Pending
    );

    // A GET (what a mail scanner does) shows the address and a button; it verifies nothing.
    let shown = follow(server.api, "GET", &owner[0]);
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains("owner@example.test"));
    assert!(
        shown.body.contains(r#"<form id="confirm" method="post">"#),
        "{}",
        shown.body
    );
    assert_private(&shown);
    assert_eq!(
        verification_status(&c, "owner@example.test").await,
        VerificationStatus::Pending
    );
    let e = c
        .send_email()
        .from_email_address("owner@example.test")
        .destination(Destination::builder().to_addresses("r@example.net").build())
        .content(crate::send::simple("not yet"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MessageRejected"), "{e:?}");

    // The button: verified; pressing it again is harmless.
    for _ in 0..2 {
        let done = follow(server.api, "POST", &owner[0]);
        assert_eq!(done.status, 200, "{}", done.body);
        assert!(done.body.contains("Address verified"), "{}", done.body);
        assert_private(&done);
    }
    let got = c
        .get_email_identity()
        .email_identity("owner@example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.verification_status(),
        Some(&VerificationStatus::Success)
    );
    assert!(got.verified_for_sending_status());
    assert!(
        got.verification_info()
            .and_then(|v| v.last_success_timestamp())
            .is_some(),
        "{got:?}"
    );
    assert_eq!(
        verification_status(&c, "other@example.test").await,
        VerificationStatus::Pending,
        "the other address is untouched"
    );

    // Mail from the verified address goes out; once its domain is verified, signed by it.
    let send = || {
        c.send_email()
            .from_email_address("owner@example.test")
            .destination(Destination::builder().to_addresses("r@example.net").build())
            .content(crate::send::simple("from a verified address"))
            .send()
    };
    let id = send().await.unwrap().message_id().unwrap().to_owned();
    let unsigned =
        std::fs::read_to_string(server.data_dir.join("outbox").join(format!("{id}.eml"))).unwrap();
    assert!(
        !unsigned.contains("DKIM-Signature"),
        "no verified domain yet"
    );
    crate::send::create_and_verify(&server, &mut nsd, &mut Vec::new(), "example.test").await;
    let id = send().await.unwrap().message_id().unwrap().to_owned();
    let path = server.data_dir.join("outbox").join(format!("{id}.eml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let (_, signed) = crate::harness::outbox_parts(&text);
    assert!(signed.starts_with("DKIM-Signature: v=1;"), "{signed}");
    assert!(signed.contains("d=example.test;"), "{signed}");
    let plain = dir.path().join("signed.eml");
    std::fs::write(&plain, signed).unwrap();
    let (ok, said) = crate::send::dkimpy(&python, &plain, nsd.addr(), server.dns);
    assert!(ok, "dkimpy verifies mail from the address: {said}");
}

#[tokio::test]
async fn expired_links_refuse_and_the_address_fails_until_it_asks_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_VERIFICATION_LINK_LIFETIME", "2s"),
            ("SESAME_PUBLIC_URL", "https://sesame.example.com/mail/"),
        ],
    );
    let c = server.client();
    c.create_email_identity()
        .email_identity("late@example.org")
        .send()
        .await
        .unwrap();
    let first = links_in(
        &outbox_to(&server.data_dir, "late@example.org")[0],
        "https://sesame.example.com/mail",
    );
    assert_eq!(first.len(), 1, "the link is under --public-url");
    // Past the window the link refuses (410), by GET and POST, and changes nothing; the
    // verifier marks the address FAILED.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if verification_status(&c, "late@example.org").await == VerificationStatus::Failed {
            break;
        }
        assert!(Instant::now() < deadline, "never FAILED");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for method in ["GET", "POST"] {
        let r = follow(server.api, method, &first[0]);
        assert_eq!(r.status, 410, "{method}: {}", r.body);
        assert!(r.body.contains("This link has expired"), "{}", r.body);
        assert_private(&r);
    }
    let got = c
        .get_email_identity()
        .email_identity("late@example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(got.verification_status(), Some(&VerificationStatus::Failed));
    assert!(!got.verified_for_sending_status());

    // Asking again (delete and create): a new mail, a new token that works, the old one dead.
    c.delete_email_identity()
        .email_identity("late@example.org")
        .send()
        .await
        .unwrap();
    c.create_email_identity()
        .email_identity("late@example.org")
        .send()
        .await
        .unwrap();
    let mails = outbox_to(&server.data_dir, "late@example.org");
    assert_eq!(mails.len(), 2);
    let second = links_in(&mails[1], "https://sesame.example.com/mail");
    assert_ne!(first, second);
    assert_eq!(follow(server.api, "POST", &first[0]).status, 404);
    assert_eq!(follow(server.api, "POST", &second[0]).status, 200);
    assert_eq!(
        verification_status(&c, "late@example.org").await,
        VerificationStatus::Success
    );
}

/// Through an SMTP relay: Sesame's own mail and a custom template's, each with its link; the
/// template's mail carries its subject and content, is signed by the template sender's
/// verified domain (dkimpy), and the click sends the browser to its success URL (and, once
/// expired, to its failure URL).
#[tokio::test]
async fn templates_mail_through_a_relay_and_redirect_after_the_click() {
    if !have("nsd") {
        return;
    }
    let Some(python) = crate::send::python_with_dkimpy() else {
        return;
    };
    let sink = SmtpSink::start(&python);
    let mut nsd = Nsd::start("example.test");
    let dir = tempfile::tempdir().unwrap();
    let resolver = nsd.addr().to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "300ms"),
            ("SESAME_SMTP_RELAY", &sink.addr),
            ("SESAME_SMTP_TLS", "none"),
            ("SESAME_VERIFICATION_LINK_LIFETIME", "8s"),
        ],
    );
    let c = server.client();
    let base = format!("http://{}", server.api);
    let read = |n: usize| std::fs::read_to_string(sink.wait(n)).unwrap();

    // Sesame's own mail, relayed.
    c.create_email_identity()
        .email_identity("plain@example.org")
        .send()
        .await
        .unwrap();
    let own = read(1);
    assert_eq!(sink.envelope(1)[1], "plain@example.org");
    let token = links_in(&own, &base);
    assert_eq!(token.len(), 1, "{own}");
    assert_eq!(follow(server.api, "POST", &token[0]).status, 200);
    assert_eq!(
        verification_status(&c, "plain@example.org").await,
        VerificationStatus::Success
    );

    c.create_custom_verification_email_template()
        .template_name("welcome")
        .from_email_address("hello@example.test")
        .template_subject("Welcome to Example, please confirm")
        .template_content("<html><body><h1>Confirm your address for Example</h1></body></html>")
        .success_redirection_url("https://app.example.test/verified")
        .failure_redirection_url("https://app.example.test/too-late")
        .send()
        .await
        .unwrap();
    let send = |to: &'static str, template: &'static str| {
        c.send_custom_verification_email()
            .email_address(to)
            .template_name(template)
            .send()
    };
    // The template's sender is not verified yet: refused, nothing relayed, nothing created.
    let e = send("user@customer.test", "welcome").await.unwrap_err();
    assert_eq!(e.code(), Some("MessageRejected"), "{e:?}");
    let e = send("user@customer.test", "nope").await.unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"), "{e:?}");
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 404);
    let e = c
        .send_custom_verification_email()
        .email_address("not an address")
        .template_name("welcome")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("BadRequestException"), "{e:?}");
    assert!(!sink.message(2).exists());
    let e = c
        .get_email_identity()
        .email_identity("user@customer.test")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"));

    crate::send::create_and_verify(&server, &mut nsd, &mut Vec::new(), "example.test").await;
    let sent = send("user@customer.test", "welcome").await.unwrap();
    let message = read(2);
    assert_eq!(sink.envelope(2)[1], "user@customer.test");
    assert!(
        message.contains("Subject: Welcome to Example, please confirm"),
        "{message}"
    );
    assert!(
        message.contains("Confirm your address for Example"),
        "{message}"
    );
    assert!(message.contains("From: <hello@example.test>"), "{message}");
    assert!(
        message.contains(&format!("Message-ID: <{}@", sent.message_id().unwrap())),
        "the MessageId is the mail's"
    );
    let (ok, said) = crate::send::dkimpy(&python, &sink.message(2), nsd.addr(), server.dns);
    assert!(
        ok,
        "the template's mail is signed by its sender's domain: {said}"
    );
    let token = links_in(&message, &base);
    assert_eq!(token.len(), 1, "{message}");
    assert_eq!(
        verification_status(&c, "user@customer.test").await,
        VerificationStatus::Pending,
        "SendCustomVerificationEmail created the identity"
    );
    let shown = follow(server.api, "GET", &token[0]);
    assert_eq!(shown.status, 200);
    let done = follow(server.api, "POST", &token[0]);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.header("location"),
        Some("https://app.example.test/verified")
    );
    assert_private(&done);
    assert_eq!(
        verification_status(&c, "user@customer.test").await,
        VerificationStatus::Success
    );
    // Only the button's answer redirects: a GET of the same link shows Sesame's page.
    let again = follow(server.api, "GET", &token[0]);
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.header("location").is_none());
    assert!(again.body.contains("Address verified"));

    // Expired: the template's failure URL, and nothing changes.
    send("slow@customer.test", "welcome").await.unwrap();
    let slow = links_in(&read(3), &base);
    tokio::time::sleep(Duration::from_secs(9)).await;
    let late = follow(server.api, "POST", &slow[0]);
    assert_eq!(late.status, 303, "{}", late.body);
    assert_eq!(
        late.header("location"),
        Some("https://app.example.test/too-late")
    );
    assert_ne!(
        verification_status(&c, "slow@customer.test").await,
        VerificationStatus::Success
    );
}
