//! The custom verification email template operations through aws-sdk-sesv2 (issue 17, first
//! part): create, get (every member, tags), list (paged, per account), update (content
//! replaced, tags kept), delete; every validation error is the model's and changes nothing; the
//! quota of 50 per account.

use crate::harness::Server;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::Tag;

#[tokio::test]
async fn templates_are_created_read_listed_updated_and_deleted_and_bad_ones_change_nothing() {
    let server = Server::start();
    let c = server.client();
    let create = |name: &str, subject: &str| {
        c.create_custom_verification_email_template()
            .template_name(name)
            .from_email_address("verify@example.com")
            .template_subject(subject)
            .template_content("<h1>Welcome</h1><p>Click to confirm \"your\" address.</p>\n")
            .success_redirection_url("https://app.example.com/verified")
            .failure_redirection_url("https://app.example.com/failed?retry=1")
    };
    create("welcome", "Confirm your address")
        .tags(Tag::builder().key("team").value("growth").build().unwrap())
        .send()
        .await
        .unwrap();
    let got = c
        .get_custom_verification_email_template()
        .template_name("welcome")
        .send()
        .await
        .unwrap();
    assert_eq!(got.template_name(), Some("welcome"));
    assert_eq!(got.from_email_address(), Some("verify@example.com"));
    assert_eq!(got.template_subject(), Some("Confirm your address"));
    assert_eq!(
        got.template_content(),
        Some("<h1>Welcome</h1><p>Click to confirm \"your\" address.</p>\n")
    );
    assert_eq!(
        got.success_redirection_url(),
        Some("https://app.example.com/verified")
    );
    assert_eq!(
        got.failure_redirection_url(),
        Some("https://app.example.com/failed?retry=1")
    );
    assert_eq!(got.tags().len(), 1);
    assert_eq!(got.tags()[0].key(), "team");

    // Refusals: the model's errors, and nothing changes.
    let e = create("welcome", "again").send().await.unwrap_err();
    assert_eq!(e.code(), Some("AlreadyExistsException"), "{e:?}");
    for name in ["has space", "", "dot.ted"] {
        let e = create(name, "x").send().await.unwrap_err();
        assert_eq!(e.code(), Some("BadRequestException"), "{name}: {e:?}");
        assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
        assert!(e.message().unwrap().contains("template name"), "{e:?}");
    }
    let e = create("bad-url", "x")
        .success_redirection_url("app.example.com/verified")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("BadRequestException"));
    assert!(e.message().unwrap().contains("https://"), "{e:?}");
    let e = create("bad-subject", "two\r\nlines")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("BadRequestException"), "{e:?}");
    let e = create("bad-from", "x")
        .from_email_address("not an address")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("BadRequestException"), "{e:?}");
    let e = c
        .get_custom_verification_email_template()
        .template_name("nobody")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"), "{e:?}");
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 404);
    let listed = c
        .list_custom_verification_email_templates()
        .send()
        .await
        .unwrap();
    assert_eq!(listed.custom_verification_email_templates().len(), 1);

    // Update replaces every member; the tags stay.
    c.update_custom_verification_email_template()
        .template_name("welcome")
        .from_email_address("hello@example.com")
        .template_subject("Please confirm")
        .template_content("<p>New</p>")
        .success_redirection_url("https://app.example.com/ok")
        .failure_redirection_url("https://app.example.com/no")
        .send()
        .await
        .unwrap();
    let got = c
        .get_custom_verification_email_template()
        .template_name("welcome")
        .send()
        .await
        .unwrap();
    assert_eq!(got.template_subject(), Some("Please confirm"));
    assert_eq!(got.from_email_address(), Some("hello@example.com"));
    assert_eq!(got.tags().len(), 1, "tags kept");
    let e = c
        .update_custom_verification_email_template()
        .template_name("nobody")
        .from_email_address("hello@example.com")
        .template_subject("x")
        .template_content("x")
        .success_redirection_url("https://app.example.com/ok")
        .failure_redirection_url("https://app.example.com/no")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"), "{e:?}");

    // The quota: 50 per account; paging by name, 20 at a time.
    for i in 1..50 {
        create(&format!("t{i:02}"), "x").send().await.unwrap();
    }
    let e = create("one-too-many", "x").send().await.unwrap_err();
    assert_eq!(e.code(), Some("LimitExceededException"), "{e:?}");
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = c
            .list_custom_verification_email_templates()
            .page_size(20)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        assert!(page.custom_verification_email_templates().len() <= 20);
        for t in page.custom_verification_email_templates() {
            names.push(t.template_name().unwrap().to_owned());
            assert_eq!(
                t.template_subject(),
                Some(if t.template_name() == Some("welcome") {
                    "Please confirm"
                } else {
                    "x"
                })
            );
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names.len(), 50);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let e = c
        .list_custom_verification_email_templates()
        .page_size(51)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("BadRequestException"), "{e:?}");

    c.delete_custom_verification_email_template()
        .template_name("welcome")
        .send()
        .await
        .unwrap();
    let e = c
        .delete_custom_verification_email_template()
        .template_name("welcome")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"), "{e:?}");
    create("room-again", "x").send().await.unwrap();
}
