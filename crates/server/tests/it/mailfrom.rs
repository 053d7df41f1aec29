//! PutEmailIdentityMailFromAttributes through aws-sdk-sesv2 (issue 16, first part): a MAIL FROM
//! subdomain is set, shown by GetEmailIdentity as PENDING with the behaviour, kept (status and
//! all) when set again, and removed by an empty domain, the behaviour staying; every refusal
//! (not a subdomain, the domain itself, a bad host name, a bad behaviour, an unknown identity)
//! is the model's error and changes nothing. Addresses take a subdomain of their own domain.

use crate::harness::Server;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{BehaviorOnMxFailure, MailFromDomainStatus};

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
