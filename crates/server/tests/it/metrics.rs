//! `/metrics` after a scripted mix of requests: every request the script made (creates, gets,
//! a list, a 404, a throttled request, an unsigned one, sends that went and one refused) is in
//! `sesame_http_requests_total` with its operation and status, and nothing else is; the
//! verifier's two checks, the key zone's answers by RCODE, SendEmail's results and the
//! identities gauge (against ListEmailIdentities) match what happened. The script's client
//! never retries, so each call is one request.

use crate::dns::{Nsd, have};
use crate::harness::{Server, send};
use crate::scrape::{gauges_of_listed, identity_gauges, scrape, series, value};
use aws_sdk_sesv2::types::{Destination, DkimSigningAttributes};
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// What the script saw: (operation, HTTP status) → how many.
#[derive(Default)]
struct Tally(BTreeMap<(String, u16), u64>);

impl Tally {
    fn saw<T, E, R>(&mut self, op: &str, r: &Result<T, aws_sdk_sesv2::error::SdkError<E, R>>) -> u16
    where
        E: aws_sdk_sesv2::error::ProvideErrorMetadata + std::fmt::Debug,
        R: HasStatus + std::fmt::Debug,
    {
        let status = match r {
            Ok(_) => 200,
            Err(e) => e
                .raw_response()
                .map(HasStatus::status)
                .unwrap_or_else(|| panic!("{op}: no response: {e:?}")),
        };
        *self.0.entry((op.to_owned(), status)).or_default() += 1;
        status
    }
}

trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A TXT query for `name` (ID 7, RD off) as it goes on the wire.
fn txt_query(name: &str) -> Vec<u8> {
    let mut q = vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 16, 0, 1]);
    q
}

/// Asks the key zone `n` times and returns the RCODEs of the answers.
fn ask(dns: SocketAddr, name: &str, n: usize) -> Vec<u8> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (0..n)
        .map(|_| {
            s.send_to(&txt_query(name), dns).unwrap();
            let mut buf = [0u8; 4096];
            let (len, _) = s.recv_from(&mut buf).unwrap();
            assert!(len >= 12);
            buf[3] & 0x0f
        })
        .collect()
}

/// Waits until the scrape satisfies `done`.
fn wait_scrape(admin: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(admin);
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "never {what}:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn a_scrape_after_a_scripted_mix_counts_exactly_what_the_script_did() {
    if !have("nsd") {
        return;
    }
    // BYODKIM's record is known before the identity exists, so it is published first and the
    // check made at creation finds it: one SUCCESS check, and one PENDING for the domain whose
    // records are never published (the next checks are a minute away).
    let private = crate::harness::rsa_key_b64(1024, false);
    let public = openssl::pkey::PKey::from_rsa(
        openssl::rsa::Rsa::private_key_from_der(
            &data_encoding::BASE64.decode(private.as_bytes()).unwrap(),
        )
        .unwrap(),
    )
    .unwrap()
    .public_key_to_der()
    .unwrap();
    let mut nsd = Nsd::start("metrics.test");
    nsd.publish(&[format!(
        "s1._domainkey.byo.metrics.test. 300 IN TXT \"v=DKIM1; k=rsa; p={}\"",
        data_encoding::BASE64.encode(&public)
    )]);
    let dir = tempfile::tempdir().unwrap();
    let resolver = nsd.addr().to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", resolver.as_str()),
            ("SESAME_RATE_LIMIT", "1"),
            ("SESAME_RATE_BURST", "40"),
        ],
    );
    let admin = server.admin;
    let c = crate::harness::client_without_retries(server.api);
    let mut t = Tally::default();

    let r = c
        .create_email_identity()
        .email_identity("pending.metrics.test")
        .send()
        .await;
    assert_eq!(t.saw("CreateEmailIdentity", &r), 200);
    let r = c
        .create_email_identity()
        .email_identity("byo.metrics.test")
        .dkim_signing_attributes(
            DkimSigningAttributes::builder()
                .domain_signing_selector("s1")
                .domain_signing_private_key(private)
                .build(),
        )
        .send()
        .await;
    assert_eq!(t.saw("CreateEmailIdentity", &r), 200);
    let r = c
        .create_email_identity()
        .email_identity("me@metrics.test")
        .send()
        .await;
    assert_eq!(t.saw("CreateEmailIdentity", &r), 200);
    let r = c
        .create_email_identity()
        .email_identity("pending.metrics.test")
        .send()
        .await;
    assert_eq!(t.saw("CreateEmailIdentity", &r), 400, "AlreadyExists");
    for name in ["pending.metrics.test", "byo.metrics.test"] {
        let r = c.get_email_identity().email_identity(name).send().await;
        assert_eq!(t.saw("GetEmailIdentity", &r), 200);
    }
    let r = c
        .get_email_identity()
        .email_identity("nobody.metrics.test")
        .send()
        .await;
    assert_eq!(t.saw("GetEmailIdentity", &r), 404);
    let r = c.list_email_identities().send().await;
    assert_eq!(t.saw("ListEmailIdentities", &r), 200);

    // The verifier: one check each, seen in the counter (the API is not asked, so the
    // script's request counts stay its own).
    let text = wait_scrape(admin, "both checks counted", |text| {
        value(
            text,
            "sesame_verification_checks_total{outcome=\"success\"}",
        ) == Some(1.0)
            && value(
                text,
                "sesame_verification_checks_total{outcome=\"pending\"}",
            ) == Some(1.0)
    });
    assert_eq!(
        series(&text, "sesame_verification_checks_total").len(),
        2,
        "{text}"
    );

    let send = |from: &'static str| {
        c.send_email()
            .from_email_address(from)
            .destination(
                Destination::builder()
                    .to_addresses("rcpt@example.net")
                    .build(),
            )
            .content(crate::send::simple("metrics"))
            .send()
    };
    for _ in 0..2 {
        let r = send("news@byo.metrics.test").await;
        assert_eq!(t.saw("SendEmail", &r), 200);
    }
    let r = send("news@pending.metrics.test").await;
    assert_eq!(
        t.saw("SendEmail", &r),
        400,
        "an unverified sender is rejected"
    );

    // An unsigned request: refused before routing, so its operation is unknown.
    let unsigned = send_unsigned(server.api);
    assert_eq!(unsigned, 403);
    *t.0.entry(("unknown".into(), 403)).or_default() += 1;

    // The bucket: 40 to start and 1 a second; requests until one is throttled.
    let mut throttled = false;
    for _ in 0..200 {
        let r = c
            .get_email_identity()
            .email_identity("byo.metrics.test")
            .send()
            .await;
        if t.saw("GetEmailIdentity", &r) == 429 {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "no request was throttled");

    // The key zone: three answers from a name it has no key for, two REFUSED from outside it.
    assert_eq!(
        ask(server.dns, "nokey.dkim.sesame.internal", 3),
        vec![3, 3, 3]
    );
    assert_eq!(ask(server.dns, "example.org", 2), vec![5, 5]);

    // One more list for the gauges, once the bucket has a token again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let listed = c.list_email_identities().send().await;
    t.saw("ListEmailIdentities", &listed);
    let listed = listed.unwrap();

    let text = scrape(admin);
    let mut counted: BTreeMap<(String, u16), u64> = BTreeMap::new();
    for (labels, v) in series(&text, "sesame_http_requests_total") {
        // {operation="X",status="200"}
        let op = labels.split('"').nth(1).unwrap().to_owned();
        let status: u16 = labels.split('"').nth(3).unwrap().parse().unwrap();
        counted.insert((op, status), v as u64);
    }
    assert_eq!(
        counted, t.0,
        "the request counter is what the script did:\n{text}"
    );
    let durations: u64 = series(&text, "sesame_http_request_duration_seconds_count")
        .iter()
        .map(|(_, v)| *v as u64)
        .sum();
    assert_eq!(
        durations,
        t.0.values().sum::<u64>(),
        "one duration per request"
    );
    for (result, n) in [("sent", 2.0), ("rejected", 1.0), ("failed", 0.0)] {
        assert_eq!(
            value(
                &text,
                &format!("sesame_emails_total{{result=\"{result}\"}}")
            ),
            Some(n),
            "{result}:\n{text}"
        );
    }
    assert_eq!(
        value(&text, "sesame_dns_queries_total{rcode=\"NXDOMAIN\"}"),
        Some(3.0)
    );
    assert_eq!(
        value(&text, "sesame_dns_queries_total{rcode=\"REFUSED\"}"),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "sesame_dns_queries_total{rcode=\"NOERROR\"}"),
        Some(0.0)
    );

    // The gauge is the store: what ListEmailIdentities says, by type and status (an
    // address's DKIM status is NONE).
    let gauges = identity_gauges(&text);
    assert_eq!(
        gauges,
        gauges_of_listed(listed.email_identities()),
        "{text}"
    );
    assert_eq!(gauges.values().sum::<f64>(), 3.0);
    assert!(value(&text, "sesame_key_pool_available{key_length=\"2048\"}").is_some());
    assert_eq!(
        value(
            &text,
            &format!(
                "sesame_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );
    crate::harness::say(&format!(
        "metrics: {} requests in {} series counted exactly; checks success 1 / pending 1; dns NXDOMAIN 3 / REFUSED 2; emails sent 2 / rejected 1",
        t.0.values().sum::<u64>(),
        t.0.len()
    ));
}

/// An unsigned GET of the identity list: the status it got.
fn send_unsigned(api: SocketAddr) -> u16 {
    let head =
        format!("GET /v2/email/identities HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n");
    send(api, head.as_bytes(), b"").status
}
