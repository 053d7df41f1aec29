//! The mail path's promises, end to end through the real `sesame` binary: the Message-ID of
//! Simple and Raw mail, unsigned sending while DKIM signing is switched off, the SMTP relay's
//! retries and failure reports (SendEmail is accepted once the spool holds the message), its TLS modes and SMTP AUTH (against aiosmtpd, `tests/smtp/relay_server.py`),
//! and SendEmail's size caps. Each domain is verified through an in-process customer DNS
//! (`../crash/customerdns.rs`) that points every DKIM token into Sesame's key zone, so no NSD
//! is needed.

#[allow(dead_code)]
#[path = "../crash/customerdns.rs"]
mod customerdns;
#[allow(dead_code)]
#[path = "../it/fakedns.rs"]
mod fakedns;
#[allow(dead_code)]
#[path = "../it/forwarddns.rs"]
mod forwarddns;
#[allow(dead_code)]
#[path = "../it/harness.rs"]
mod harness;

mod smtp;

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{
    Body, Content, Destination, DkimStatus, EmailContent, Message, RawMessage,
};
use customerdns::CustomerDns;
use harness::Server;
use smtp::{Cert, Options, Smtp};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `customerdns` holds answers back by a random delay only when asked to (never here); its
/// generator is the crash trials' SplitMix64. (Unused once customerdns carries its own.)
#[allow(dead_code)]
pub struct Rng(u64);

#[allow(dead_code)]
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

const ZONE: &str = "dkim.sesame.internal";
const DOMAIN: &str = "example.test";

/// A server whose domain `example.test` is verified (DKIM SUCCESS). Fields drop in order: the
/// server is killed before its DNS and data dir go away.
struct Node {
    server: Server,
    dns: CustomerDns,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(env: &[(&str, &str)]) -> Node {
        let dns = CustomerDns::start(ZONE);
        let dir = tempfile::tempdir().unwrap();
        let resolver = dns.addr.to_string();
        let mut all = vec![
            ("SESAME_RESOLVER", resolver.as_str()),
            ("SESAME_VERIFY_INTERVAL", "200ms"),
        ];
        all.extend_from_slice(env);
        let server = Server::start_in(dir.path(), &all);
        let node = Node {
            server,
            dns,
            _dir: dir,
        };
        let c = node.client();
        c.create_email_identity()
            .email_identity(DOMAIN)
            .send()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = c
                .get_email_identity()
                .email_identity(DOMAIN)
                .send()
                .await
                .unwrap();
            let status = got.dkim_attributes().and_then(|d| d.status()).cloned();
            if status == Some(DkimStatus::Success) && got.verified_for_sending_status() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{DOMAIN} never verified within 30 s: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        node
    }

    /// A client that tries each call once: SDK retries would hide how often the relay was tried.
    fn client(&self) -> Client {
        use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
        let conf = aws_sdk_sesv2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(harness::REGION))
            .endpoint_url(format!("http://{}", self.server.api))
            .credentials_provider(Credentials::new(
                harness::KEY_ID,
                harness::SECRET,
                None,
                None,
                "mailpath",
            ))
            .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_sesv2::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(120))
                    .build(),
            )
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        Client::from_conf(conf)
    }

    fn outbox_file(&self, id: &str) -> PathBuf {
        self.server
            .data_dir
            .join("outbox")
            .join(format!("{id}.eml"))
    }

    fn outbox_len(&self) -> usize {
        std::fs::read_dir(self.server.data_dir.join("outbox"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// mail-auth's verdict on `message`, resolving like a receiver: the customer's DNS, then
    /// this server's key zone.
    async fn dkim_verifies(&self, message: &[u8]) -> Result<(), String> {
        let forward = forwarddns::ForwardDns::start(self.dns.addr, self.server.dns, ZONE);
        forwarddns::mail_auth_verifies(forward.addr, message).await
    }
}

fn simple(subject: &str) -> EmailContent {
    let text = |s: &str| Content::builder().data(s).build().unwrap();
    EmailContent::builder()
        .simple(
            Message::builder()
                .subject(text(subject))
                .body(Body::builder().text(text("Hello from Sesame.")).build())
                .build(),
        )
        .build()
}

fn raw(message: Vec<u8>) -> EmailContent {
    EmailContent::builder()
        .raw(
            RawMessage::builder()
                .data(Blob::new(message))
                .build()
                .unwrap(),
        )
        .build()
}

fn to(addr: &str) -> Destination {
    Destination::builder().to_addresses(addr).build()
}

/// Sends Simple mail from `from` and returns the MessageId.
async fn send(c: &Client, from: &str, subject: &str) -> String {
    c.send_email()
        .from_email_address(from)
        .destination(to("rcpt@example.net"))
        .content(simple(subject))
        .send()
        .await
        .unwrap_or_else(|e| panic!("SendEmail from {from}: {e:?}"))
        .message_id()
        .unwrap()
        .to_owned()
}

/// The header fields of a message (unfolded), in order.
fn headers(message: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    fields
}

/// The values of every `name` header field.
fn field(message: &[u8], name: &str) -> Vec<String> {
    headers(message)
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

fn signed(message: &[u8]) -> bool {
    !field(message, "DKIM-Signature").is_empty()
}

#[tokio::test]
async fn simple_mail_has_message_id_of_its_message_id_at_the_from_domain_and_raw_keeps_its_own() {
    let node = Node::start(&[]).await;
    let c = node.client();
    // A subdomain's address: the Message-ID names the From domain, not the identity's.
    let id = send(&c, "News <news@mail.example.test>", "ids").await;
    let bytes = std::fs::read(node.outbox_file(&id)).unwrap();
    assert_eq!(
        field(&bytes, "Message-ID"),
        [format!("<{id}@mail.example.test>")],
        "one Message-ID, the MessageId SendEmail returned at the From domain:\n{}",
        String::from_utf8_lossy(&bytes)
    );
    // The signature covers it, so it cannot be swapped in transit.
    let dkim = field(&bytes, "DKIM-Signature").join(" ");
    let h = dkim
        .split(';')
        .find_map(|t| t.trim().strip_prefix("h="))
        .unwrap_or_else(|| panic!("no h= tag in {dkim}"));
    assert!(
        h.split(':')
            .any(|n| n.trim().eq_ignore_ascii_case("Message-ID")),
        "h= lists Message-ID: {h}"
    );
    node.dkim_verifies(&bytes).await.unwrap();

    let message = b"From: raw@example.test\r\nTo: rcpt@example.net\r\nSubject: raw\r\nMessage-ID: <own-1@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nRaw body.\r\n".to_vec();
    let out = c
        .send_email()
        .content(raw(message.clone()))
        .send()
        .await
        .unwrap();
    let raw_id = out.message_id().unwrap();
    let bytes = std::fs::read(node.outbox_file(raw_id)).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        signed(&bytes) && bytes.ends_with(&message),
        "the Raw message leaves as it came, only the Return-Path and a DKIM-Signature in front:\n{text}"
    );
    assert_eq!(
        field(&bytes, "Message-ID"),
        ["<own-1@example.test>"],
        "its own Message-ID, neither replaced nor duplicated:\n{text}"
    );
    let (return_path, rest) = text.split_once("\r\n").unwrap();
    assert_eq!(
        return_path,
        format!("Return-Path: <{raw_id}@mail.dkim.sesame.internal>"),
        "the outbox records the envelope sender"
    );
    assert!(
        !rest.contains(raw_id),
        "{raw_id} is not written into the message"
    );
    node.dkim_verifies(&bytes).await.unwrap();
}

#[tokio::test]
async fn dkim_signing_disabled_sends_unsigned_and_reenabled_signs_again() {
    let node = Node::start(&[]).await;
    let c = node.client();
    let sent = |id: &str| std::fs::read(node.outbox_file(id)).unwrap();
    let set = |identity: &'static str, enabled: bool| {
        c.put_email_identity_dkim_attributes()
            .email_identity(identity)
            .signing_enabled(enabled)
            .send()
    };
    let before = sent(&send(&c, "news@example.test", "signed").await);
    assert!(signed(&before), "{}", String::from_utf8_lossy(&before));

    set(DOMAIN, false).await.unwrap();
    let got = c
        .get_email_identity()
        .email_identity(DOMAIN)
        .send()
        .await
        .unwrap();
    let dkim = got.dkim_attributes().unwrap();
    assert!(!dkim.signing_enabled(), "{got:?}");
    assert_eq!(
        dkim.status(),
        Some(&DkimStatus::Success),
        "switching signing off leaves the DKIM status alone"
    );
    let off = sent(&send(&c, "news@example.test", "unsigned").await);
    let text = String::from_utf8_lossy(&off);
    assert!(
        !text.to_ascii_lowercase().contains("dkim-signature"),
        "signing disabled: no DKIM-Signature:\n{text}"
    );
    assert!(text.contains("Hello from Sesame."), "still sent: {text}");

    set(DOMAIN, true).await.unwrap();
    let again = sent(&send(&c, "news@example.test", "signed again").await);
    assert!(signed(&again), "{}", String::from_utf8_lossy(&again));
    node.dkim_verifies(&again).await.unwrap();

    // An address identity's own switch: its mail goes unsigned, its domain's other mail not.
    c.create_email_identity()
        .email_identity("quiet@example.test")
        .send()
        .await
        .unwrap();
    set("quiet@example.test", false).await.unwrap();
    let quiet = sent(&send(&c, "quiet@example.test", "quiet").await);
    assert!(!signed(&quiet), "{}", String::from_utf8_lossy(&quiet));
    let other = sent(&send(&c, "news@example.test", "loud").await);
    assert!(signed(&other), "{}", String::from_utf8_lossy(&other));
    set("quiet@example.test", true).await.unwrap();
    let quiet = sent(&send(&c, "quiet@example.test", "quiet no more").await);
    assert!(signed(&quiet), "{}", String::from_utf8_lossy(&quiet));
    node.dkim_verifies(&quiet).await.unwrap();
}

/// Polls `f` (up to 30 s) until it gives a value.
async fn until<T>(what: &str, f: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Node {
    /// Why message `id` was not delivered, once the relay's queue has given up on it.
    async fn failure(&self, id: &str) -> String {
        let dir = self.server.data_dir.join("failed");
        let reason = until(&format!("the failure report of {id}"), || {
            std::fs::read_to_string(dir.join(format!("{id}.reason"))).ok()
        })
        .await;
        let kept = std::fs::read(dir.join(format!("{id}.eml"))).unwrap();
        assert!(signed(&kept), "the report keeps the signed message");
        reason
    }
}

impl Smtp {
    /// The relay's accepted messages, once there are `n`.
    async fn wait_messages(&self, n: usize) -> Vec<PathBuf> {
        until(&format!("{n} messages at the relay"), || {
            let m = self.messages();
            (m.len() >= n).then_some(m)
        })
        .await
    }
}

/// What `read` gives once as many messages as `ids` arrived and `settle` more passed (time
/// for a duplicate to show up, if one were coming); asserts that their Message-IDs are
/// `ids`, each exactly once.
async fn each_delivered_once<T>(
    ids: &[String],
    settle: Duration,
    read: impl Fn() -> Vec<T>,
    message_id: impl Fn(&T) -> String,
) -> Vec<T> {
    until(&format!("{} messages delivered", ids.len()), || {
        (read().len() >= ids.len()).then_some(())
    })
    .await;
    tokio::time::sleep(settle).await;
    let got = read();
    let mut seen: Vec<String> = got.iter().map(&message_id).collect();
    seen.sort();
    let mut want: Vec<String> = ids.iter().map(|i| format!("<{i}@example.test>")).collect();
    want.sort();
    assert_eq!(
        seen, want,
        "each acknowledged message delivered exactly once"
    );
    got
}

/// Three attempts, 100 ms apart then 200 ms: a test sees a message given up within a second.
fn relay_env<'a>(relay: &'a str, tls: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SESAME_SMTP_RELAY", relay),
        ("SESAME_SMTP_TLS", tls),
        ("SESAME_SMTP_ATTEMPTS", "3"),
        ("SESAME_SMTP_RETRY_DELAY", "100ms"),
    ]
}

#[tokio::test]
async fn relay_retries_4xx_reports_after_the_third_attempt_and_never_retries_5xx() {
    let Some(python) = smtp::python_with_aiosmtpd() else {
        return;
    };
    let smtp = Smtp::start(&python, Options::default());
    let relay = smtp.relay();
    let node = Node::start(&relay_env(&relay, "none")).await;
    let c = node.client();

    // Two temporary failures, then the third attempt delivers.
    smtp.plan(&["451", "451"]);
    let id = send(&c, "news@example.test", "third time lucky").await;
    let got = smtp.wait_messages(1).await;
    assert_eq!(
        smtp.events_of("data"),
        [
            "data tls=0 reply=451",
            "data tls=0 reply=451",
            "data tls=0 reply=250"
        ]
    );
    let connects = smtp.events_of("connect").len();
    assert!(
        (1..=3).contains(&connects),
        "{connects} connections for three attempts (a pooled one is reused)"
    );
    let bytes = std::fs::read(&got[0]).unwrap();
    assert_eq!(
        field(&bytes, "Message-ID"),
        [format!("<{id}@example.test>")]
    );
    node.dkim_verifies(&bytes).await.unwrap();
    assert_eq!(node.outbox_len(), 0, "relayed mail is not also written out");

    // Always temporary: SendEmail is accepted, three attempts, then the failure is reported.
    smtp.plan(&["451"; 6]);
    let seen = smtp.events_of("data").len();
    let never = send(&c, "news@example.test", "never").await;
    let why = node.failure(&never).await;
    assert!(
        why.contains("after 3 attempts") && why.contains("451"),
        "{why}"
    );
    assert_eq!(
        smtp.events_of("data")[seen..],
        ["data tls=0 reply=451"; 3],
        "three attempts, no more"
    );
    let out = node.server.wait_output("the relay's last error", |o| {
        o.contains("relay failed after 3 attempts")
    });
    assert!(out.contains(&never), "the log names the message");

    // A permanent refusal is not retried.
    smtp.plan(&["554", "554", "554"]);
    let seen = smtp.events_of("data").len();
    let refused = send(&c, "news@example.test", "refused").await;
    let why = node.failure(&refused).await;
    assert!(why.contains("refused") && why.contains("554"), "{why}");
    assert_eq!(
        smtp.events_of("data")[seen..],
        ["data tls=0 reply=554"],
        "a 5xx gets one attempt"
    );
    assert_eq!(smtp.messages().len(), 1, "nothing else was accepted");
}

/// A relay offering STARTTLS with a certificate Sesame trusts (`SSL_CERT_FILE`), and a server
/// in `mode`; the third value is the trusted certificate's path, for `tls_node`.
async fn tls_pair(python: &str, certs: &tempfile::TempDir, mode: &str) -> (Smtp, Node, String) {
    let cert = Cert::make(certs.path(), "relay");
    let smtp = Smtp::start(
        python,
        Options {
            starttls: Some(&cert),
            ..Options::default()
        },
    );
    let trust = cert.cert.to_str().unwrap().to_owned();
    let node = tls_node(&smtp, &trust, mode).await;
    (smtp, node, trust)
}

/// A server relaying to `smtp` in `mode`, trusting `trust`.
async fn tls_node(smtp: &Smtp, trust: &str, mode: &str) -> Node {
    let relay = smtp.relay();
    let mut env = relay_env(&relay, mode);
    env.push(("SSL_CERT_FILE", trust));
    Node::start(&env).await
}

#[tokio::test]
async fn relay_tls_none_never_starts_tls() {
    let Some(python) = smtp::python_with_aiosmtpd() else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let (smtp, node, _) = tls_pair(&python, &certs, "none").await;
    send(&node.client(), "news@example.test", "plain").await;
    smtp.wait_messages(1).await;
    assert_eq!(smtp.events_of("starttls").len(), 0, "STARTTLS was offered");
    assert_eq!(smtp.events_of("data"), ["data tls=0 reply=250"]);
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn relay_tls_opportunistic_upgrades_when_offered_and_sends_plain_when_not() {
    let Some(python) = smtp::python_with_aiosmtpd() else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let (smtp, node, trust) = tls_pair(&python, &certs, "opportunistic").await;
    let c = node.client();
    send(&c, "news@example.test", "offered").await;
    smtp.wait_messages(1).await;
    assert_eq!(smtp.events_of("starttls").len(), 1);
    assert_eq!(smtp.events_of("data"), ["data tls=1 reply=250"]);
    smtp.offer_starttls(false);
    // Only a new connection learns that STARTTLS is gone: a second server has none pooled.
    drop(node);
    let node = tls_node(&smtp, &trust, "opportunistic").await;
    let c = node.client();
    send(&c, "news@example.test", "not offered").await;
    smtp.wait_messages(2).await;
    assert_eq!(
        smtp.events_of("data"),
        ["data tls=1 reply=250", "data tls=0 reply=250"]
    );
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test]
async fn relay_tls_required_upgrades_and_reports_a_relay_without_starttls() {
    let Some(python) = smtp::python_with_aiosmtpd() else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let (smtp, node, trust) = tls_pair(&python, &certs, "required").await;
    send(&node.client(), "news@example.test", "offered").await;
    smtp.wait_messages(1).await;
    assert_eq!(
        smtp.events(),
        ["connect", "starttls", "mail tls=1", "data tls=1 reply=250"]
    );
    smtp.offer_starttls(false);
    drop(node);
    let node = tls_node(&smtp, &trust, "required").await;
    let id = send(&node.client(), "news@example.test", "not offered").await;
    let why = node.failure(&id).await;
    assert!(why.to_lowercase().contains("tls"), "{why}");
    let events = smtp.events();
    assert!(
        events[4..].iter().all(|e| e == "connect"),
        "nothing was sent without TLS: {events:?}"
    );
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn relay_tls_required_refuses_an_untrusted_certificate() {
    let Some(python) = smtp::python_with_aiosmtpd() else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let presented = Cert::make(certs.path(), "impostor");
    let trusted = Cert::make(certs.path(), "trusted");
    let smtp = Smtp::start(
        &python,
        Options {
            starttls: Some(&presented),
            ..Options::default()
        },
    );
    let relay = smtp.relay();
    let trust = trusted.cert.to_str().unwrap().to_owned();
    let mut env = relay_env(&relay, "required");
    env.push(("SSL_CERT_FILE", &trust));
    let node = Node::start(&env).await;
    let id = send(&node.client(), "news@example.test", "to an impostor").await;
    let why = node.failure(&id).await;
    assert!(
        why.contains("after 3 attempts") || why.contains("refused"),
        "{why}"
    );
    let events = smtp.events();
    assert!(
        !events.is_empty() && events.iter().all(|e| e == "connect"),
        "no TLS session and no mail with a certificate nobody vouches for: {events:?}"
    );
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn relay_tls_wrapper_speaks_tls_from_the_first_byte() {
    let Some(python) = smtp::python_with_aiosmtpd() else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let cert = Cert::make(certs.path(), "smtps");
    let smtp = Smtp::start(
        &python,
        Options {
            smtps: Some(&cert),
            ..Options::default()
        },
    );
    let relay = smtp.relay();
    let trust = cert.cert.to_str().unwrap().to_owned();
    let mut env = relay_env(&relay, "wrapper");
    env.push(("SSL_CERT_FILE", &trust));
    let node = Node::start(&env).await;
    send(&node.client(), "news@example.test", "smtps").await;
    smtp.wait_messages(1).await;
    assert_eq!(
        smtp.events(),
        ["connect", "mail tls=1", "data tls=1 reply=250"]
    );
    assert_eq!(smtp.messages().len(), 1);
}

const USER: &str = "relay-user";
const PASSWORD: &str = "pw-7Kq9-correct-horse";
const WRONG: &str = "pw-3Zx1-wrong-battery";

/// A relay that requires AUTH as USER/PASSWORD (and would accept it in clear), and a server
/// that logs in with `password` over required STARTTLS.
async fn auth_pair(python: &str, certs: &tempfile::TempDir, password: &str) -> (Smtp, Node) {
    let cert = Cert::make(certs.path(), "relay");
    let smtp = Smtp::start(
        python,
        Options {
            starttls: Some(&cert),
            auth: Some((USER, PASSWORD)),
            ..Options::default()
        },
    );
    let relay = smtp.relay();
    let trust = cert.cert.to_str().unwrap().to_owned();
    let mut env = relay_env(&relay, "required");
    env.extend([
        ("SSL_CERT_FILE", trust.as_str()),
        ("SESAME_SMTP_USERNAME", USER),
        ("SESAME_SMTP_PASSWORD", password),
    ]);
    let node = Node::start(&env).await;
    (smtp, node)
}

/// The password, and the forms SMTP AUTH sends it in, never appear in `log`.
fn assert_not_logged(log: &str, password: &str) {
    let b64 = |s: &str| data_encoding::BASE64.encode(s.as_bytes());
    for form in [
        password.to_owned(),
        b64(password),
        b64(&format!("\0{USER}\0{password}")),
    ] {
        assert!(!log.contains(&form), "the server's log shows {form:?}");
    }
}

#[tokio::test]
async fn relay_auth_logs_in_only_after_starttls_and_never_logs_the_password() {
    let Some(python) = smtp::python_with_aiosmtpd() else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let (smtp, node) = auth_pair(&python, &certs, PASSWORD).await;
    send(&node.client(), "news@example.test", "authenticated").await;
    smtp.wait_messages(1).await;
    assert_eq!(
        smtp.events(),
        [
            "connect",
            "starttls",
            &format!("auth user={USER} ok=1 tls=1"),
            "mail tls=1",
            "data tls=1 reply=250"
        ],
        "credentials go only over TLS"
    );
    assert_eq!(smtp.messages().len(), 1);
    assert_not_logged(&node.server.output(), PASSWORD);
}

#[tokio::test]
async fn relay_auth_with_a_wrong_password_fails_clearly_and_delivers_nothing() {
    let Some(python) = smtp::python_with_aiosmtpd() else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let (smtp, node) = auth_pair(&python, &certs, WRONG).await;
    let id = send(&node.client(), "news@example.test", "wrong password").await;
    let why = node.failure(&id).await;
    assert!(why.contains("refused") && why.contains("535"), "{why}");
    assert_eq!(
        smtp.events(),
        [
            "connect",
            "starttls",
            &format!("auth user={USER} ok=0 tls=1")
        ],
        "one refused login (535 is permanent), no mail"
    );
    assert!(smtp.messages().is_empty());
    let out = node
        .server
        .wait_output("the relay's refusal", |o| o.contains("535"));
    assert_not_logged(&out, WRONG);
    assert_not_logged(&out, PASSWORD);
}

/// SendEmail's request cap, as ARCHITECTURE.md states it: 56 MiB.
const SEND_BODY_CAP: usize = 56 * 1024 * 1024;
/// The largest Raw message (SES: 40 MB, taken as MiB here).
const RAW_MESSAGE_CAP: usize = 40 * 1024 * 1024;

const SMALL_RAW: &[u8] = b"From: big@example.test\r\nTo: rcpt@example.net\r\nSubject: padded\r\nMessage-ID: <padded@example.test>\r\n\r\nbody\r\n";

/// A SendEmail body of exactly `len` bytes: a small Raw message, then JSON whitespace.
fn padded_body(len: usize) -> Vec<u8> {
    let mut body = format!(
        r#"{{"Content":{{"Raw":{{"Data":"{}"}}}}}}"#,
        data_encoding::BASE64.encode(SMALL_RAW)
    )
    .into_bytes();
    assert!(body.len() < len);
    body.resize(len, b' ');
    body
}

#[tokio::test]
async fn send_email_body_of_56_mib_is_read_and_one_byte_more_is_413_unsent() {
    let node = Node::start(&[]).await;
    let path = "/v2/email/outbound-emails";
    let at = harness::raw_request(node.server.api, "POST", path, &padded_body(SEND_BODY_CAP));
    assert_eq!(at.status, 200, "a body at the cap is read: {}", at.body);
    let id = at.json()["MessageId"].as_str().unwrap().to_owned();
    let bytes = std::fs::read(node.outbox_file(&id)).unwrap();
    assert!(bytes.ends_with(SMALL_RAW));
    assert_eq!(node.outbox_len(), 1);

    let over = harness::raw_request(
        node.server.api,
        "POST",
        path,
        &padded_body(SEND_BODY_CAP + 1),
    );
    assert_eq!(
        (over.status, over.header("x-amzn-ErrorType")),
        (413, Some("RequestEntityTooLargeException")),
        "{}",
        over.body
    );
    assert_eq!(node.outbox_len(), 1, "nothing more reached the outbox");
}

/// A Raw message of exactly `len` bytes (CRLF lines of 78 bytes).
fn raw_of(len: usize) -> Vec<u8> {
    let mut m = b"From: big@example.test\r\nTo: rcpt@example.net\r\nSubject: big\r\nMessage-ID: <big@example.test>\r\n\r\n".to_vec();
    let line = [b'x'; 76];
    while m.len() + 78 <= len - 2 {
        m.extend_from_slice(&line);
        m.extend_from_slice(b"\r\n");
    }
    let rest = len - 2 - m.len();
    m.extend(std::iter::repeat_n(b'y', rest));
    m.extend_from_slice(b"\r\n");
    assert_eq!(m.len(), len);
    m
}

#[tokio::test]
async fn raw_message_of_40_mib_is_sent_and_one_byte_more_is_refused_unsent() {
    let node = Node::start(&[]).await;
    let c = node.client();
    let message = raw_of(RAW_MESSAGE_CAP);
    let out = c
        .send_email()
        .content(raw(message.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("a message at the cap is sent: {e:?}"));
    let bytes = std::fs::read(node.outbox_file(out.message_id().unwrap())).unwrap();
    assert!(signed(&bytes) && bytes.ends_with(&message));
    drop(bytes);

    let e = c
        .send_email()
        .content(raw(raw_of(RAW_MESSAGE_CAP + 1)))
        .send()
        .await
        .expect_err("one byte over the cap");
    assert_eq!(e.code(), Some("BadRequestException"), "{e:?}");
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
    assert!(
        e.message()
            .unwrap_or_default()
            .contains(&format!("exceeds {RAW_MESSAGE_CAP} bytes")),
        "{e:?}"
    );
    assert_eq!(node.outbox_len(), 1, "nothing more reached the outbox");
}

/// Messages acknowledged while the relay refuses them for now stay in the spool through a
/// `kill -9`; after the restart each is delivered, and none that was delivered before the
/// kill is sent again.
#[tokio::test]
async fn relay_queue_survives_kill_9_and_delivers_each_message_once() {
    let Some(python) = smtp::python_with_aiosmtpd() else {
        return;
    };
    let smtp = Smtp::start(&python, Options::default());
    let relay = smtp.relay();
    let mut env = relay_env(&relay, "none");
    env.retain(|(k, _)| *k != "SESAME_SMTP_ATTEMPTS");
    env.push(("SESAME_SMTP_ATTEMPTS", "1000"));
    let mut node = Node::start(&env).await;
    let c = node.client();
    let mut ids = Vec::new();
    for i in 0..2 {
        ids.push(send(&c, "news@example.test", &format!("before {i}")).await);
    }
    smtp.wait_messages(2).await;
    smtp.plan(&["451"; 10_000]);
    for i in 0..3 {
        ids.push(send(&c, "news@example.test", &format!("held {i}")).await);
    }
    until("the held messages tried at least once", || {
        (smtp.events_of("data tls=0 reply=451").len() >= 3).then_some(())
    })
    .await;
    node.server.kill9();
    smtp.plan(&[]);

    let resolver = node.dns.addr.to_string();
    let mut all = vec![("SESAME_RESOLVER", resolver.as_str())];
    all.extend_from_slice(&env);
    node.server = Server::start_in(&node.server.data_dir.clone(), &all);
    each_delivered_once(
        &ids,
        Duration::from_millis(800),
        || smtp.messages(),
        |p| field(&std::fs::read(p).unwrap(), "Message-ID").join(","),
    )
    .await;
    let out = node.server.output();
    assert!(
        out.contains("requeued=3"),
        "the restart says what it queued again"
    );
}

/// Postfix's `smtp-sink` (which `scripts/test` installs), dumping each transaction to `dir`,
/// killed on drop. It offers PIPELINING, so Sesame's relay sends MAIL, RCPT and DATA in one
/// write (the `vendor/lettre` patch) and reuses its pooled connections without a NOOP.
struct Sink {
    child: std::process::Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Sink {
    fn start() -> Option<Sink> {
        let bin = "/usr/sbin/smtp-sink";
        if !std::path::Path::new(bin).exists() {
            assert!(
                std::env::var("SESAME_REQUIRE_DNS_TOOLS").as_deref() != Ok("1"),
                "{bin} is missing (Debian package postfix; scripts/test installs it)"
            );
            eprintln!("NOT RUN: no {bin} (apt-get install postfix)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // smtp-sink drops to `nobody` when started as root, and writes its dumps as that user.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = std::process::Command::new(bin);
        if running_as_root() {
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .arg("-d")
            .arg(format!("{}/%M.", dir.path().display()))
            .arg(&addr)
            .arg("64")
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "smtp-sink never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Sink { child, addr, dir })
    }

    /// Each dumped transaction: its envelope recipients and the message as it was sent (the
    /// dump's own header lines dropped, its LF line ends made CRLF again).
    fn messages(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
            let mut lines = text.lines().peekable();
            let mut rcpt = String::new();
            while let Some(l) = lines.peek() {
                if let Some(r) = l.strip_prefix("X-Rcpt-Args: ") {
                    rcpt = r.to_owned();
                } else if !l.starts_with("X-") {
                    break;
                }
                lines.next();
            }
            // smtp-sink's own Received field and its continuation lines.
            if lines.peek().is_some_and(|l| l.starts_with("Received: ")) {
                lines.next();
                while lines.peek().is_some_and(|l| l.starts_with([' ', '\t'])) {
                    lines.next();
                }
            }
            let mut message: Vec<u8> = Vec::new();
            for l in lines {
                message.extend_from_slice(l.as_bytes());
                message.extend_from_slice(b"\r\n");
            }
            out.push((rcpt, message));
        }
        out
    }
}

/// Whether this process runs as root (the owner of its own /proc entry).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn relay_pipelines_to_postfix_s_smtp_sink_and_delivers_each_message_once_dkim_valid() {
    let Some(sink) = Sink::start() else {
        return;
    };
    let mut env = relay_env(&sink.addr, "none");
    env.push(("SESAME_SMTP_CONNECTIONS", "2"));
    let node = Node::start(&env).await;
    let c = node.client();
    // Concurrent sends, so both pooled connections carry several messages back to back.
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..24 {
        let c = c.clone();
        sends.spawn(async move { send(&c, "news@example.test", &format!("pipelined {i}")).await });
    }
    let ids: Vec<String> = sends.join_all().await;
    let got = each_delivered_once(
        &ids,
        Duration::from_millis(500),
        || sink.messages(),
        |(_, m)| field(m, "Message-ID").join(","),
    )
    .await;
    for (rcpt, message) in &got {
        assert_eq!(rcpt, "<rcpt@example.net>", "the envelope recipient");
        node.dkim_verifies(message).await.unwrap();
    }
    assert!(
        std::fs::read_dir(node.server.data_dir.join("failed"))
            .map_or(true, |mut d| d.next().is_none()),
        "nothing failed"
    );
}
