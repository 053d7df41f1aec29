//! Every refusal answers the right AWS error and leaves the stored state exactly as it was.

use crate::harness::{Server, client_for, raw_request, rsa_key_b64, send};
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{
    DkimSigningAttributes, DkimSigningAttributesOrigin, DkimSigningKeyLength,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;

/// The error code, status and message of a failed SDK call.
fn code<E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<impl std::fmt::Debug, SdkError<E, Response>>,
) -> (String, u16, String) {
    let err = r.expect_err("the call should fail");
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    (
        err.code().unwrap_or("?").to_owned(),
        status,
        err.message().unwrap_or("").to_owned(),
    )
}

/// A snapshot of everything the account holds, to compare before and after a refusal.
async fn snapshot(c: &Client) -> String {
    let mut out = String::new();
    let list = c
        .list_email_identities()
        .page_size(1000)
        .send()
        .await
        .unwrap();
    for i in list.email_identities() {
        let name = i.identity_name().unwrap();
        let got = c
            .get_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap();
        out.push_str(&format!(
            "{name}: {:?} {:?} {:?} {:?}\n",
            got.dkim_attributes(),
            got.tags(),
            got.feedback_forwarding_status(),
            got.verification_status()
        ));
    }
    out
}

#[tokio::test]
async fn refused_requests_change_nothing() {
    let server = Server::start();
    let c = server.client();
    c.create_email_identity()
        .email_identity("keep.example.com")
        .send()
        .await
        .unwrap();
    c.create_email_identity()
        .email_identity("me@keep.example.com")
        .send()
        .await
        .unwrap();
    let before = snapshot(&c).await;

    let attrs = |sel: Option<&str>, key: Option<String>, len: Option<DkimSigningKeyLength>| {
        DkimSigningAttributes::builder()
            .set_domain_signing_selector(sel.map(str::to_owned))
            .set_domain_signing_private_key(key)
            .set_next_signing_key_length(len)
            .build()
    };
    let pem = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
        rsa_key_b64(1024, false)
    );
    let ec_key = {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let ec = openssl::ec::EcKey::generate(&group).unwrap();
        data_encoding::BASE64.encode(
            &openssl::pkey::PKey::from_ec_key(ec)
                .unwrap()
                .private_key_to_pkcs8()
                .unwrap(),
        )
    };
    let cases: Vec<(&str, DkimSigningAttributes, &str)> = vec![
        (
            "bad selector",
            attrs(Some("bad.selector"), Some(rsa_key_b64(1024, false)), None),
            "selector",
        ),
        (
            "long selector",
            attrs(Some(&"s".repeat(64)), Some(rsa_key_b64(1024, false)), None),
            "selector",
        ),
        (
            "not base64",
            attrs(Some("s1"), Some("not base64!".into()), None),
            "base64",
        ),
        (
            "PEM headers",
            attrs(Some("s1"), Some(pem), None),
            "BEGIN/END",
        ),
        (
            "garbage DER",
            attrs(Some("s1"), Some("AAAAAAAA".into()), None),
            "PKCS#1 or PKCS#8",
        ),
        (
            "512 bits",
            attrs(Some("s1"), Some(rsa_key_b64(512, false)), None),
            "512 bits",
        ),
        (
            "4096 bits",
            attrs(Some("s1"), Some(rsa_key_b64(4096, true)), None),
            "4096 bits",
        ),
        (
            "EC key",
            attrs(Some("s1"), Some(ec_key), None),
            "not an RSA key",
        ),
        (
            "selector only",
            attrs(Some("s1"), None, None),
            "private key is missing",
        ),
        (
            "key only",
            attrs(None, Some(rsa_key_b64(1024, false)), None),
            "selector is missing",
        ),
        (
            "length with key",
            attrs(
                Some("s1"),
                Some(rsa_key_b64(1024, false)),
                Some(DkimSigningKeyLength::Rsa2048Bit),
            ),
            "Easy DKIM only",
        ),
        (
            "unknown length",
            attrs(None, None, Some(DkimSigningKeyLength::from("RSA_4096_BIT"))),
            "enum value set",
        ),
    ];
    for (what, a, expect) in &cases {
        let (code_, status, msg) = code(
            c.create_email_identity()
                .email_identity("new.example.com")
                .dkim_signing_attributes(a.clone())
                .send()
                .await,
        );
        assert_eq!(
            (code_.as_str(), status),
            ("BadRequestException", 400),
            "create, {what}: {msg}"
        );
        assert!(msg.contains(expect), "create, {what}: {msg}");
        // EXTERNAL updates of an existing identity are refused the same way.
        if a.next_signing_key_length().is_none() {
            let (code_, _, msg) = code(
                c.put_email_identity_dkim_signing_attributes()
                    .email_identity("keep.example.com")
                    .signing_attributes_origin(DkimSigningAttributesOrigin::External)
                    .signing_attributes(a.clone())
                    .send()
                    .await,
            );
            assert_eq!(code_, "BadRequestException", "put, {what}: {msg}");
        }
    }

    let (c1, s1, _) = code(
        c.create_email_identity()
            .email_identity("keep.example.com")
            .send()
            .await,
    );
    assert_eq!((c1.as_str(), s1), ("AlreadyExistsException", 400));
    let (c1, _, _) = code(
        c.create_email_identity()
            .email_identity("KEEP.example.com.")
            .send()
            .await,
    );
    assert_eq!(
        c1, "AlreadyExistsException",
        "domains compare case-insensitively"
    );
    for bad_name in [
        "not a domain",
        "localhost",
        "a..b.com",
        "@example.com",
        "x@-bad.com",
        "",
    ] {
        let (c1, s1, m) = code(
            c.create_email_identity()
                .email_identity(bad_name)
                .send()
                .await,
        );
        assert_eq!(
            (c1.as_str(), s1),
            ("BadRequestException", 400),
            "{bad_name:?}: {m}"
        );
    }
    let (c1, s1, m) = code(
        c.create_email_identity()
            .email_identity("cs.example.com")
            .configuration_set_name("nope")
            .send()
            .await,
    );
    assert_eq!((c1.as_str(), s1), ("NotFoundException", 404), "{m}");
    let (c1, _, _) = code(
        c.create_email_identity()
            .email_identity("deed.example.com")
            .dkim_signing_attributes(
                DkimSigningAttributes::builder()
                    .domain_signing_attributes_origin(DkimSigningAttributesOrigin::AwsSesEuWest1)
                    .build(),
            )
            .send()
            .await,
    );
    assert_eq!(c1, "BadRequestException");

    // Unknown identities.
    let (c1, s1, m) = code(
        c.get_email_identity()
            .email_identity("nope.example.com")
            .send()
            .await,
    );
    assert_eq!((c1.as_str(), s1), ("NotFoundException", 404));
    assert_eq!(m, "Email identity nope.example.com does not exist.");
    let (c1, _, _) = code(
        c.delete_email_identity()
            .email_identity("nope.example.com")
            .send()
            .await,
    );
    assert_eq!(c1, "NotFoundException");
    let (c1, _, _) = code(
        c.put_email_identity_feedback_attributes()
            .email_identity("nope.example.com")
            .send()
            .await,
    );
    assert_eq!(c1, "NotFoundException");
    let (c1, _, _) = code(
        c.put_email_identity_dkim_signing_attributes()
            .email_identity("nope.example.com")
            .signing_attributes_origin(DkimSigningAttributesOrigin::AwsSes)
            .send()
            .await,
    );
    assert_eq!(c1, "NotFoundException");
    // SES answers this one with BadRequestException (SES-SEMANTICS.md 3.5).
    let (c1, s1, m) = code(
        c.put_email_identity_dkim_attributes()
            .email_identity("nope.example.com")
            .signing_enabled(true)
            .send()
            .await,
    );
    assert_eq!((c1.as_str(), s1), ("BadRequestException", 400));
    assert!(m.contains("not verified for DKIM signing"), "{m}");

    // Origin rules of PutEmailIdentityDkimSigningAttributes.
    for (origin, a) in [
        (DkimSigningAttributesOrigin::External, None),
        (
            DkimSigningAttributesOrigin::AwsSes,
            Some(attrs(Some("s"), Some(rsa_key_b64(1024, false)), None)),
        ),
        (DkimSigningAttributesOrigin::AwsSesUsEast1, None),
        (DkimSigningAttributesOrigin::from("MADE_UP"), None),
        (
            DkimSigningAttributesOrigin::AwsSes,
            Some(
                DkimSigningAttributes::builder()
                    .domain_signing_attributes_origin(DkimSigningAttributesOrigin::AwsSes)
                    .build(),
            ),
        ),
    ] {
        let (c1, s1, m) = code(
            c.put_email_identity_dkim_signing_attributes()
                .email_identity("keep.example.com")
                .signing_attributes_origin(origin.clone())
                .set_signing_attributes(a)
                .send()
                .await,
        );
        assert_eq!(
            (c1.as_str(), s1),
            ("BadRequestException", 400),
            "{origin:?}: {m}"
        );
    }

    // Unsupported operations name themselves and are not retried into success.
    let (c1, s1, m) = code(c.get_account().send().await);
    assert_eq!((c1.as_str(), s1), ("UnsupportedOperationException", 501));
    assert!(m.contains("GetAccount"), "{m}");
    let (c1, _, m) = code(
        c.create_configuration_set()
            .configuration_set_name("x")
            .send()
            .await,
    );
    assert_eq!(c1, "UnsupportedOperationException");
    assert!(m.contains("CreateConfigurationSet"), "{m}");
    let (c1, _, m) = code(
        c.create_email_identity_policy()
            .email_identity("keep.example.com")
            .policy_name("p")
            .policy("{}")
            .send()
            .await,
    );
    assert_eq!(c1, "UnsupportedOperationException", "{m}");

    assert_eq!(snapshot(&c).await, before, "nothing changed");
}

#[tokio::test]
async fn protocol_errors_are_aws_shaped() {
    let server = Server::start();
    let c = server.client();
    c.create_email_identity()
        .email_identity("keep.example.com")
        .send()
        .await
        .unwrap();
    let before = snapshot(&c).await;
    let check = |r: crate::harness::RawResponse, status: u16, code: &str| {
        assert_eq!(r.status, status, "{r:?}");
        assert_eq!(r.header("x-amzn-ErrorType"), Some(code), "{r:?}");
        assert!(r.header("x-amzn-RequestId").is_some_and(|v| v.len() == 36));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        assert_eq!(v["__type"], code);
        assert!(!v["message"].as_str().unwrap().is_empty());
    };
    let put = "/v2/email/identities/keep.example.com/dkim";
    check(
        raw_request(server.api, "PUT", put, b"{not json"),
        400,
        "BadRequestException",
    );
    check(
        raw_request(server.api, "PUT", put, br#"{"SigningEnabled":"yes"}"#),
        400,
        "BadRequestException",
    );
    check(
        raw_request(server.api, "PUT", put, b"[1,2]"),
        400,
        "BadRequestException",
    );
    check(
        raw_request(
            server.api,
            "POST",
            "/v2/email/identities",
            br#"{"EmailIdentity":7}"#,
        ),
        400,
        "BadRequestException",
    );
    check(
        raw_request(server.api, "POST", "/v2/email/identities", br#"{}"#),
        400,
        "BadRequestException",
    );
    check(
        raw_request(
            server.api,
            "POST",
            "/v2/email/identities",
            br#"{"EmailIdentity":"t.example.com","Tags":[{"Key":"k"}]}"#,
        ),
        400,
        "BadRequestException",
    );
    check(
        raw_request(server.api, "GET", "/v2/email/identities/%FF%FE", b""),
        400,
        "BadRequestException",
    );
    check(
        raw_request(server.api, "GET", "/nothing/here", b""),
        404,
        "UnknownOperationException",
    );
    check(
        raw_request(
            server.api,
            "PATCH",
            "/v2/email/identities/keep.example.com",
            b"",
        ),
        404,
        "UnknownOperationException",
    );
    check(
        raw_request(server.api, "DELETE", "/v2/email/tags?ResourceArn=x", b""),
        400,
        "BadRequestException",
    );
    let huge = vec![b' '; sesame_api::MAX_BODY_BYTES + 1];
    check(
        raw_request(server.api, "PUT", put, &huge),
        413,
        "RequestEntityTooLargeException",
    );

    // Unauthenticated and unknown-key requests.
    let anon = format!(
        "GET /v2/email/identities/keep.example.com HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        server.api
    );
    check(
        send(server.api, anon.as_bytes(), b""),
        403,
        "MissingAuthenticationTokenException",
    );
    let stranger = client_for(server.api, "AKIAUNKNOWNKEY000000", "whatever");
    let (c1, s1, _) = code(
        stranger
            .get_email_identity()
            .email_identity("keep.example.com")
            .send()
            .await,
    );
    assert_eq!((c1.as_str(), s1), ("UnrecognizedClientException", 403));

    assert_eq!(snapshot(&c).await, before);
}

#[tokio::test]
async fn the_identity_quota_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[("SESAME_MAX_IDENTITIES", "2")]);
    let c = server.client();
    c.create_email_identity()
        .email_identity("a@example.com")
        .send()
        .await
        .unwrap();
    c.create_email_identity()
        .email_identity("b@example.com")
        .send()
        .await
        .unwrap();
    let (c1, s1, _) = code(
        c.create_email_identity()
            .email_identity("c@example.com")
            .send()
            .await,
    );
    assert_eq!((c1.as_str(), s1), ("LimitExceededException", 400));
    assert_eq!(
        c.list_email_identities()
            .send()
            .await
            .unwrap()
            .email_identities()
            .len(),
        2
    );
}
