//! PutEmailIdentityMailFromAttributes through aws-sdk-sesv2 (issue 16, first part): a MAIL FROM
//! subdomain is set, shown by GetEmailIdentity as PENDING with the behaviour, kept (status and
//! all) when set again, and removed by an empty domain, the behaviour staying; every refusal
//! (not a subdomain, the domain itself, a bad host name, a bad behaviour, an unknown identity)
//! is the model's error and changes nothing. Addresses take a subdomain of their own domain.

use crate::dns::{Nsd, dns_records, have, status, wait_for};
use crate::harness::Server;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{
    BehaviorOnMxFailure, ListRecommendationsFilterKey, MailFromDomainStatus,
};

#[tokio::test]
async fn mail_from_domains_are_set_shown_kept_and_removed_and_bad_ones_change_nothing() {
    let server = Server::start();
    let c = server.client();
    for name in ["example.com", "me@shop.example.org"] {
        c.create_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap();
    }
    let attrs = |name: &'static str| {
        let c = c.clone();
        async move {
            c.get_email_identity()
                .email_identity(name)
                .send()
                .await
                .unwrap()
                .mail_from_attributes()
                .cloned()
                .unwrap()
        }
    };
    // None yet: only the behaviour, as SES answers.
    let none = attrs("example.com").await;
    assert_eq!(
        none.behavior_on_mx_failure(),
        &BehaviorOnMxFailure::UseDefaultValue
    );
    assert_eq!(none.mail_from_domain(), "", "{none:?}");

    c.put_email_identity_mail_from_attributes()
        .email_identity("example.com")
        .mail_from_domain("Bounce.Example.COM")
        .behavior_on_mx_failure(BehaviorOnMxFailure::RejectMessage)
        .send()
        .await
        .unwrap();
    let set = attrs("example.com").await;
    assert_eq!(set.mail_from_domain(), "bounce.example.com");
    assert_eq!(
        set.mail_from_domain_status(),
        &MailFromDomainStatus::Pending
    );
    assert_eq!(
        set.behavior_on_mx_failure(),
        &BehaviorOnMxFailure::RejectMessage
    );

    // Refusals: 400 BadRequestException naming the member, or 404, and nothing changes.
    let refuse = |domain: &'static str, behavior: Option<&'static str>| {
        let c = c.clone();
        async move {
            let mut req = c
                .put_email_identity_mail_from_attributes()
                .email_identity("example.com")
                .mail_from_domain(domain);
            if let Some(b) = behavior {
                req = req.behavior_on_mx_failure(BehaviorOnMxFailure::from(b));
            }
            req.send().await.unwrap_err()
        }
    };
    for bad in [
        "example.com",
        "example.org",
        "badexample.com",
        "bad_label.example.com",
        "bounce..example.com",
        "-x.example.com",
    ] {
        let e = refuse(bad, None).await;
        assert_eq!(e.code(), Some("BadRequestException"), "{bad}: {e:?}");
        assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
    }
    let e = refuse("other.example.com", Some("BOUNCE_IT")).await;
    assert_eq!(e.code(), Some("BadRequestException"));
    assert!(
        e.message().unwrap().contains("BehaviorOnMxFailure"),
        "{e:?}"
    );
    let e = c
        .put_email_identity_mail_from_attributes()
        .email_identity("nobody.example.com")
        .mail_from_domain("bounce.nobody.example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"), "{e:?}");
    assert_eq!(
        attrs("example.com").await,
        set,
        "the refusals changed nothing"
    );

    // The same domain again keeps its status (and record); only the behaviour changes.
    c.put_email_identity_mail_from_attributes()
        .email_identity("example.com")
        .mail_from_domain("bounce.example.com")
        .behavior_on_mx_failure(BehaviorOnMxFailure::UseDefaultValue)
        .send()
        .await
        .unwrap();
    let again = attrs("example.com").await;
    assert_eq!(again.mail_from_domain(), "bounce.example.com");
    assert_eq!(
        again.behavior_on_mx_failure(),
        &BehaviorOnMxFailure::UseDefaultValue
    );

    // An address takes a subdomain of its own domain, not of another.
    c.put_email_identity_mail_from_attributes()
        .email_identity("me@shop.example.org")
        .mail_from_domain("mail.shop.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs("me@shop.example.org").await.mail_from_domain(),
        "mail.shop.example.org"
    );
    let e = c
        .put_email_identity_mail_from_attributes()
        .email_identity("me@shop.example.org")
        .mail_from_domain("mail.example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("BadRequestException"));

    // No domain turns it off; the behaviour stays what was last set.
    c.put_email_identity_mail_from_attributes()
        .email_identity("example.com")
        .behavior_on_mx_failure(BehaviorOnMxFailure::RejectMessage)
        .send()
        .await
        .unwrap();
    let off = attrs("example.com").await;
    assert_eq!(off.mail_from_domain(), "");
    assert_eq!(
        off.behavior_on_mx_failure(),
        &BehaviorOnMxFailure::RejectMessage
    );

    // The raw answer has no MailFromDomain or status when none is set (SES-SEMANTICS.md 3.2).
    let raw =
        crate::harness::raw_request(server.api, "GET", "/v2/email/identities/example.com", b"");
    let json = raw.json();
    assert_eq!(
        json["MailFromAttributes"],
        serde_json::json!({"BehaviorOnMxFailure": "REJECT_MESSAGE"}),
        "{json}"
    );
}

fn mail_from_of(
    g: &aws_sdk_sesv2::operation::get_email_identity::GetEmailIdentityOutput,
) -> Option<MailFromDomainStatus> {
    g.mail_from_attributes()
        .map(|m| m.mail_from_domain_status().clone())
}

/// `(Type, Impact, Status, Description)` of every recommendation, through the SDK, all pages.
async fn recommendations(
    c: &aws_sdk_sesv2::Client,
    filter: &[(ListRecommendationsFilterKey, &str)],
) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = c.list_recommendations().page_size(2);
        for (k, v) in filter {
            req = req.filter(k.clone(), *v);
        }
        let page = req.set_next_token(token.clone()).send().await.unwrap();
        for r in page.recommendations() {
            assert!(
                r.resource_arn()
                    .is_some_and(|a| a.starts_with("arn:aws:ses:us-east-1:")
                        && a.ends_with(":identity/example.test")),
                "{r:?}"
            );
            out.push((
                r.r#type().unwrap().as_str().to_owned(),
                r.impact().unwrap().as_str().to_owned(),
                r.status().unwrap().as_str().to_owned(),
                r.description().unwrap_or_default().to_owned(),
            ));
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
}

fn open_ones(recs: &[(String, String, String, String)]) -> Vec<(&str, &str)> {
    recs.iter()
        .filter(|r| r.2 == "OPEN")
        .map(|r| (r.0.as_str(), r.1.as_str()))
        .collect()
}

/// What `dns-records` prints as records (no comments), split into DKIM and MAIL FROM lines.
pub(crate) fn records_of(server: &Server, name: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let lines: Vec<String> = dns_records(server, name, None)
        .into_iter()
        .filter(|l| !l.starts_with(';'))
        .collect();
    let mail_from = |l: &String| l.contains(" IN MX ") || l.contains("v=spf1");
    let dmarc = |l: &String| l.starts_with("_dmarc.");
    (
        lines
            .iter()
            .filter(|l| !mail_from(l) && !dmarc(l))
            .cloned()
            .collect(),
        lines.iter().filter(|l| mail_from(l)).cloned().collect(),
        lines.iter().filter(|l| dmarc(l)).cloned().collect(),
    )
}

/// MAIL FROM against a real authoritative server (NSD): PENDING while nothing is published,
/// still PENDING with the reason while the MX names another host, SUCCESS once it names
/// `--mail-from-mx`; and ListRecommendations following the DNS: MX, SPF and DMARC open at
/// first, two SPF records a HIGH one, each FIXED as the zone is corrected, paged and filtered.
#[tokio::test]
async fn mail_from_verifies_through_nsd_and_recommendations_turn_fixed() {
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
            ("SESAME_VERIFY_INTERVAL", "300ms"),
        ],
    );
    let c = server.client();
    c.create_email_identity()
        .email_identity("example.test")
        .send()
        .await
        .unwrap();
    c.put_email_identity_mail_from_attributes()
        .email_identity("example.test")
        .mail_from_domain("bounce.example.test")
        .send()
        .await
        .unwrap();
    let (dkim, mail_from, dmarc) = records_of(&server, "example.test");
    assert_eq!((dkim.len(), mail_from.len(), dmarc.len()), (3, 2, 1));
    assert_eq!(
        mail_from,
        [
            "bounce.example.test. 1800 IN MX 10 feedback-smtp.dkim.sesame.internal.",
            "bounce.example.test. 1800 IN TXT \"v=spf1 include:spf.dkim.sesame.internal ~all\"",
        ]
    );
    nsd.publish(&dkim);
    wait_for(&c, "example.test", "DKIM SUCCESS", |g| {
        status(g) == Some(&aws_sdk_sesv2::types::DkimStatus::Success)
    })
    .await;
    // Nothing of MAIL FROM or DMARC yet: all three open, MAIL FROM pending.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let recs = loop {
        let recs = recommendations(&c, &[]).await;
        if open_ones(&recs).len() == 3 || std::time::Instant::now() > deadline {
            break recs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let mut open = open_ones(&recs);
    open.sort();
    assert_eq!(
        open,
        [("DMARC", "HIGH"), ("SPF", "LOW"), ("SPF", "LOW")],
        "{recs:#?}"
    );
    let dmarc_text = &recs.iter().find(|r| r.0 == "DMARC").unwrap().3;
    assert!(
        dmarc_text.contains("_dmarc.example.test") && dmarc_text.contains("v=DMARC1; p=quarantine"),
        "{dmarc_text}"
    );
    let only_dmarc = recommendations(&c, &[(ListRecommendationsFilterKey::Type, "DMARC")]).await;
    assert_eq!(only_dmarc.len(), 1, "{only_dmarc:?}");
    let high_open = recommendations(
        &c,
        &[
            (ListRecommendationsFilterKey::Status, "OPEN"),
            (ListRecommendationsFilterKey::Impact, "HIGH"),
        ],
    )
    .await;
    assert_eq!(high_open.len(), 1);
    let got = c
        .get_email_identity()
        .email_identity("example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(mail_from_of(&got), Some(MailFromDomainStatus::Pending));

    // An MX naming another host: still PENDING, and the check says why.
    let mut zone = dkim.clone();
    zone.push("bounce.example.test. 1800 IN MX 10 mx.elsewhere.example.".into());
    nsd.publish(&zone);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let lines = dns_records(&server, "example.test", Some(nsd.addr()));
        let at = lines.iter().position(|l| l.contains(" IN MX ")).unwrap();
        if lines[at + 1].contains("wrong value: found MX 10 mx.elsewhere.example.") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{lines:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let got = c
        .get_email_identity()
        .email_identity("example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(mail_from_of(&got), Some(MailFromDomainStatus::Pending));
    let mx = recommendations(&c, &[(ListRecommendationsFilterKey::Status, "OPEN")]).await;
    assert!(
        mx.iter().any(|r| r
            .3
            .contains("MX record of the MAIL FROM domain bounce.example.test")
            && r.3.contains("MX 10 feedback-smtp.dkim.sesame.internal")),
        "{mx:#?}"
    );

    // Everything dns-records prints, plus a second SPF record: SUCCESS, DMARC and MX fixed,
    // and a HIGH recommendation for the two SPF records.
    let mut zone = dkim.clone();
    zone.extend(mail_from.iter().cloned());
    zone.extend(dmarc.iter().cloned());
    zone.push("bounce.example.test. 1800 IN TXT \"v=spf1 a -all\"".into());
    nsd.publish(&zone);
    let got = wait_for(&c, "example.test", "MAIL FROM SUCCESS", |g| {
        mail_from_of(g) == Some(MailFromDomainStatus::Success)
    })
    .await;
    assert_eq!(
        got.mail_from_attributes().unwrap().mail_from_domain(),
        "bounce.example.test"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let recs = loop {
        let recs = recommendations(&c, &[]).await;
        if open_ones(&recs) == [("SPF", "HIGH")] || std::time::Instant::now() > deadline {
            break recs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(open_ones(&recs), [("SPF", "HIGH")], "{recs:#?}");
    assert!(
        recs.iter().any(|r| r.0 == "DMARC" && r.2 == "FIXED"),
        "{recs:#?}"
    );
    let lines = dns_records(&server, "example.test", Some(nsd.addr()));
    assert!(
        lines.iter().any(|l| l.contains("recommendation SPF HIGH")),
        "dns-records --check prints the same finding: {lines:#?}"
    );

    // The zone as printed: nothing open.
    nsd.publish(&[dkim, mail_from, dmarc].concat());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let recs = loop {
        let recs = recommendations(&c, &[]).await;
        if open_ones(&recs).is_empty() || std::time::Instant::now() > deadline {
            break recs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(open_ones(&recs).is_empty(), "{recs:#?}");
    assert_eq!(
        recommendations(&c, &[(ListRecommendationsFilterKey::Status, "FIXED")])
            .await
            .len(),
        4,
        "MX, SPF (missing, then several), DMARC: {recs:#?}"
    );
    let lines = dns_records(&server, "example.test", Some(nsd.addr()));
    assert!(
        lines.iter().any(|l| l == "; recommendations: none"),
        "{lines:#?}"
    );
}

/// A resolver that never answers: MAIL FROM goes TEMPORARY_FAILURE, never SUCCESS or FAILED.
#[tokio::test]
async fn a_resolver_outage_leaves_mail_from_temporary_failure() {
    let silent = crate::dns::SilentResolver::start();
    let dir = tempfile::tempdir().unwrap();
    let resolver = silent.addr.to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "200ms"),
        ],
    );
    let c = server.client();
    c.create_email_identity()
        .email_identity("me@quiet.example")
        .send()
        .await
        .unwrap();
    c.put_email_identity_mail_from_attributes()
        .email_identity("me@quiet.example")
        .mail_from_domain("bounce.quiet.example")
        .send()
        .await
        .unwrap();
    let got = wait_for(&c, "me@quiet.example", "TEMPORARY_FAILURE", |g| {
        mail_from_of(g) == Some(MailFromDomainStatus::TemporaryFailure)
    })
    .await;
    assert_eq!(
        got.mail_from_attributes().unwrap().mail_from_domain(),
        "bounce.quiet.example"
    );
    assert!(silent.queries() > 0);
}

/// Mail relayed to an SMTP server (aiosmtpd) as SES sends it: with REJECT_MESSAGE and the
/// MAIL FROM domain unverified, refused and nothing relayed; with USE_DEFAULT_VALUE, the
/// envelope sender in the default MAIL FROM domain, which the key zone makes pass SPF
/// (unaligned); once verified, `<id>@bounce.example.test`: pyspf says `pass` through the DNS
/// (the customer's include: resolved at Sesame's key zone), dkimpy verifies, and both align
/// with the From: domain for DMARC.
#[tokio::test]
async fn relayed_mail_passes_spf_and_aligns_from_its_mail_from_domain() {
    if !have("nsd") {
        return;
    }
    let Some(python) = crate::send::python_with_dkimpy() else {
        return;
    };
    let mut nsd = Nsd::start("example.test");
    let sink = crate::harness::SmtpSink::start(&python);
    let dir = tempfile::tempdir().unwrap();
    let resolver = nsd.addr().to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "300ms"),
            ("SESAME_SMTP_RELAY", &sink.addr),
            ("SESAME_SMTP_TLS", "none"),
            ("SESAME_SPF_IPS", "127.0.0.1"),
        ],
    );
    let c = server.client();
    c.create_email_identity()
        .email_identity("example.test")
        .send()
        .await
        .unwrap();
    c.put_email_identity_mail_from_attributes()
        .email_identity("example.test")
        .mail_from_domain("bounce.example.test")
        .behavior_on_mx_failure(BehaviorOnMxFailure::RejectMessage)
        .send()
        .await
        .unwrap();
    let (dkim, mail_from, dmarc) = records_of(&server, "example.test");
    let mut zone = [dkim.clone(), dmarc.clone()].concat();
    nsd.publish(&zone);
    wait_for(&c, "example.test", "DKIM SUCCESS", |g| {
        status(g) == Some(&aws_sdk_sesv2::types::DkimStatus::Success)
    })
    .await;
    let send = || {
        let c = c.clone();
        async move {
            c.send_email()
                .from_email_address("News <news@example.test>")
                .destination(
                    aws_sdk_sesv2::types::Destination::builder()
                        .to_addresses("rcpt@example.net")
                        .build(),
                )
                .content(crate::send::simple("SPF and DMARC"))
                .send()
                .await
        }
    };
    let e = send().await.unwrap_err();
    assert_eq!(
        e.code(),
        Some("MailFromDomainNotVerifiedException"),
        "{e:?}"
    );
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
    assert!(
        e.message().unwrap().contains("bounce.example.test"),
        "{e:?}"
    );
    let relayed = |n: usize| sink.message(n);
    assert!(!relayed(1).exists(), "a refused message is not relayed");

    let customer_dns = nsd.addr();
    let judge = |n: usize| {
        let sender = sink.envelope(n)[0].clone();
        let forward =
            crate::forwarddns::ForwardDns::start(customer_dns, server.dns, "dkim.sesame.internal");
        let out = std::process::Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/spf/check.py"
            ))
            .arg(relayed(n))
            .arg(&sender)
            .arg("127.0.0.1")
            .arg(forward.addr.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (sender, v)
    };
    // USE_DEFAULT_VALUE: sent from the default MAIL FROM domain; SPF passes there, unaligned.
    c.put_email_identity_mail_from_attributes()
        .email_identity("example.test")
        .mail_from_domain("bounce.example.test")
        .behavior_on_mx_failure(BehaviorOnMxFailure::UseDefaultValue)
        .send()
        .await
        .unwrap();
    let id = send().await.unwrap().message_id().unwrap().to_owned();
    sink.wait(1);
    let (sender, v) = judge(1);
    assert_eq!(sender, format!("{id}@mail.dkim.sesame.internal"));
    assert_eq!(v["spf"], "pass", "{v}");
    assert_eq!(v["dkim"], true, "{v}");
    assert_eq!(v["spf_aligned"], false, "{v}");
    assert_eq!(v["dkim_aligned"], true, "{v}");

    // The MAIL FROM domain's records published: SUCCESS, and mail from it aligns both ways.
    zone.extend(mail_from);
    nsd.publish(&zone);
    wait_for(&c, "example.test", "MAIL FROM SUCCESS", |g| {
        mail_from_of(g) == Some(MailFromDomainStatus::Success)
    })
    .await;
    let id = send().await.unwrap().message_id().unwrap().to_owned();
    sink.wait(2);
    let (sender, v) = judge(2);
    assert_eq!(sender, format!("{id}@bounce.example.test"));
    assert_eq!(v["spf"], "pass", "{v}");
    assert_eq!(v["spf_domain"], "bounce.example.test");
    assert_eq!(v["dkim"], true, "{v}");
    assert_eq!(v["dkim_domain"], "example.test");
    assert_eq!(v["spf_aligned"], true, "{v}");
    assert_eq!(v["dkim_aligned"], true, "{v}");
    let message = std::fs::read_to_string(relayed(2)).unwrap();
    assert!(
        !message.starts_with("Return-Path:"),
        "the relay is given the envelope, not a Return-Path header"
    );
}
