//! The life of identities through `aws-sdk-sesv2`: Easy DKIM, BYODKIM, addresses, switching
//! origins, key-length changes, pagination and tags.

use crate::harness::{Server, raw_request, rsa_key_b64};
use aws_sdk_sesv2::types::{
    DkimSigningAttributes, DkimSigningAttributesOrigin, DkimSigningKeyLength, DkimStatus,
    IdentityType, Tag,
};

fn is_token(t: &str) -> bool {
    t.len() == 32
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn easy_dkim_domain_full_life() {
    let server = Server::start();
    let c = server.client();
    let before = now_secs() - 1.0;
    let created = c
        .create_email_identity()
        .email_identity("Example.COM")
        .tags(tag("team", "mail"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.identity_type(), Some(&IdentityType::Domain));
    assert!(!created.verified_for_sending_status());
    let dkim = created.dkim_attributes().unwrap();
    assert_eq!(
        dkim.status(),
        Some(&DkimStatus::Pending),
        "never SUCCESS without DNS"
    );
    assert!(dkim.signing_enabled());
    assert_eq!(
        dkim.signing_attributes_origin(),
        Some(&DkimSigningAttributesOrigin::AwsSes)
    );
    assert_eq!(
        dkim.next_signing_key_length(),
        Some(&DkimSigningKeyLength::Rsa2048Bit)
    );
    assert_eq!(
        dkim.current_signing_key_length(),
        Some(&DkimSigningKeyLength::Rsa2048Bit)
    );
    assert_eq!(dkim.signing_hosted_zone(), Some("dkim.sesame.internal"));
    let generated = dkim.last_key_generation_timestamp().unwrap().as_secs_f64();
    assert!(generated >= before && generated <= now_secs() + 1.0);
    let tokens: Vec<String> = dkim.tokens().to_vec();
    assert_eq!(tokens.len(), 3);
    assert!(tokens.iter().all(|t| is_token(t)), "{tokens:?}");
    assert_ne!(tokens[0], tokens[1]);

    // Domain names are case-insensitive.
    let got = c
        .get_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(got.identity_type(), Some(&IdentityType::Domain));
    assert!(got.feedback_forwarding_status());
    assert_eq!(
        got.verification_status(),
        Some(&aws_sdk_sesv2::types::VerificationStatus::Pending)
    );
    assert_eq!(got.dkim_attributes().unwrap().tokens(), tokens.as_slice());
    assert_eq!(got.tags(), &[tag("team", "mail")]);
    assert_eq!(
        got.mail_from_attributes().unwrap().behavior_on_mx_failure(),
        &aws_sdk_sesv2::types::BehaviorOnMxFailure::UseDefaultValue
    );

    // Signing off leaves the status alone.
    c.put_email_identity_dkim_attributes()
        .email_identity("example.com")
        .signing_enabled(false)
        .send()
        .await
        .unwrap();
    c.put_email_identity_feedback_attributes()
        .email_identity("example.com")
        .email_forwarding_enabled(false)
        .send()
        .await
        .unwrap();
    let got = c
        .get_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap();
    assert!(!got.dkim_attributes().unwrap().signing_enabled());
    assert_eq!(
        got.dkim_attributes().unwrap().status(),
        Some(&DkimStatus::Pending)
    );
    assert!(!got.feedback_forwarding_status());

    // Key length: new keys behind the same tokens.
    let out = c
        .put_email_identity_dkim_signing_attributes()
        .email_identity("example.com")
        .signing_attributes_origin(DkimSigningAttributesOrigin::AwsSes)
        .signing_attributes(
            DkimSigningAttributes::builder()
                .next_signing_key_length(DkimSigningKeyLength::Rsa1024Bit)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.dkim_tokens(), tokens.as_slice());
    assert_eq!(out.dkim_status(), Some(&DkimStatus::Pending));
    assert_eq!(out.signing_hosted_zone(), Some("dkim.sesame.internal"));
    let got = c
        .get_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap();
    let d = got.dkim_attributes().unwrap();
    assert_eq!(d.tokens(), tokens.as_slice());
    assert_eq!(
        d.next_signing_key_length(),
        Some(&DkimSigningKeyLength::Rsa1024Bit)
    );
    // The new length is staged: a key of it is published now, and signs only once DNS has
    // been seen to lead to it, so the current length stays truthful until then.
    assert_eq!(
        d.current_signing_key_length(),
        Some(&DkimSigningKeyLength::Rsa2048Bit)
    );
    assert!(d.last_key_generation_timestamp().unwrap().as_secs_f64() >= generated);
    assert!(
        !d.signing_enabled(),
        "the signing flag survives a key change"
    );

    // A second change within 24 hours is refused and changes nothing.
    let err = c
        .put_email_identity_dkim_signing_attributes()
        .email_identity("example.com")
        .signing_attributes_origin(DkimSigningAttributesOrigin::AwsSes)
        .signing_attributes(
            DkimSigningAttributes::builder()
                .next_signing_key_length(DkimSigningKeyLength::Rsa2048Bit)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    let e = err.into_service_error();
    assert!(e.is_bad_request_exception(), "{e:?}");
    assert!(format!("{e:?}").contains("24 hours"));
    let again = c
        .get_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(again.dkim_attributes(), got.dkim_attributes());

    // The same length as now is refused too.
    let e = c
        .put_email_identity_dkim_signing_attributes()
        .email_identity("example.com")
        .signing_attributes_origin(DkimSigningAttributesOrigin::AwsSes)
        .signing_attributes(
            DkimSigningAttributes::builder()
                .next_signing_key_length(DkimSigningKeyLength::Rsa1024Bit)
                .build(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_bad_request_exception(), "{e:?}");

    let list = c.list_email_identities().send().await.unwrap();
    assert_eq!(list.email_identities().len(), 1);
    assert_eq!(
        list.email_identities()[0].identity_name(),
        Some("example.com")
    );
    assert!(list.next_token().is_none());

    c.delete_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap();
    let e = c
        .get_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_not_found_exception(), "{e:?}");
    let e = c
        .delete_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_not_found_exception(), "{e:?}");
}

#[tokio::test]
async fn easy_dkim_with_rsa_1024_on_create() {
    let server = Server::start();
    let c = server.client();
    let out = c
        .create_email_identity()
        .email_identity("small.example.com")
        .dkim_signing_attributes(
            DkimSigningAttributes::builder()
                .next_signing_key_length(DkimSigningKeyLength::Rsa1024Bit)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let d = out.dkim_attributes().unwrap();
    assert_eq!(
        d.current_signing_key_length(),
        Some(&DkimSigningKeyLength::Rsa1024Bit)
    );
    assert_eq!(d.tokens().len(), 3);
}

#[tokio::test]
async fn byodkim_pkcs1_and_pkcs8_of_1024_and_2048_bits() {
    let server = Server::start();
    let c = server.client();
    for (i, (bits, pkcs8)) in [(1024, false), (1024, true), (2048, false), (2048, true)]
        .into_iter()
        .enumerate()
    {
        let domain = format!("byo{i}.example.com");
        let selector = format!("sel-{bits}-{i}");
        let out = c
            .create_email_identity()
            .email_identity(&domain)
            .dkim_signing_attributes(
                DkimSigningAttributes::builder()
                    .domain_signing_selector(&selector)
                    .domain_signing_private_key(rsa_key_b64(bits, pkcs8))
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("{bits} bits pkcs8={pkcs8}: {e:?}"));
        let d = out.dkim_attributes().unwrap();
        assert_eq!(
            d.signing_attributes_origin(),
            Some(&DkimSigningAttributesOrigin::External)
        );
        assert_eq!(d.status(), Some(&DkimStatus::Pending));
        assert!(
            d.next_signing_key_length().is_none(),
            "key lengths are Easy DKIM only"
        );

        // Replace the key and selector of a BYODKIM domain.
        let out = c
            .put_email_identity_dkim_signing_attributes()
            .email_identity(&domain)
            .signing_attributes_origin(DkimSigningAttributesOrigin::External)
            .signing_attributes(
                DkimSigningAttributes::builder()
                    .domain_signing_selector("rotated")
                    .domain_signing_private_key(rsa_key_b64(bits, !pkcs8))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(out.dkim_tokens(), ["rotated".to_owned()]);
        assert_eq!(out.dkim_status(), Some(&DkimStatus::Pending));
        let got = c
            .get_email_identity()
            .email_identity(&domain)
            .send()
            .await
            .unwrap();
        let d = got.dkim_attributes().unwrap();
        assert_eq!(
            d.signing_attributes_origin(),
            Some(&DkimSigningAttributesOrigin::External)
        );
        assert!(d.tokens().is_empty());
    }
}

#[tokio::test]
async fn switching_origins_replaces_tokens_and_restarts_verification() {
    let server = Server::start();
    let c = server.client();
    let first = c
        .create_email_identity()
        .email_identity("switch.example.com")
        .send()
        .await
        .unwrap();
    let easy_tokens = first.dkim_attributes().unwrap().tokens().to_vec();
    let out = c
        .put_email_identity_dkim_signing_attributes()
        .email_identity("switch.example.com")
        .signing_attributes_origin(DkimSigningAttributesOrigin::External)
        .signing_attributes(
            DkimSigningAttributes::builder()
                .domain_signing_selector("mine")
                .domain_signing_private_key(rsa_key_b64(2048, false))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.dkim_tokens(), ["mine".to_owned()]);
    assert_eq!(out.dkim_status(), Some(&DkimStatus::Pending));
    assert!(out.signing_hosted_zone().is_none());

    let back = c
        .put_email_identity_dkim_signing_attributes()
        .email_identity("switch.example.com")
        .signing_attributes_origin(DkimSigningAttributesOrigin::AwsSes)
        .send()
        .await
        .unwrap();
    let new_tokens = back.dkim_tokens().to_vec();
    assert_eq!(new_tokens.len(), 3);
    assert!(
        new_tokens
            .iter()
            .all(|t| is_token(t) && !easy_tokens.contains(t))
    );
    let got = c
        .get_email_identity()
        .email_identity("switch.example.com")
        .send()
        .await
        .unwrap();
    let d = got.dkim_attributes().unwrap();
    assert_eq!(
        d.signing_attributes_origin(),
        Some(&DkimSigningAttributesOrigin::AwsSes)
    );
    assert_eq!(d.tokens(), new_tokens.as_slice());
    assert_eq!(d.status(), Some(&DkimStatus::Pending));
    assert_eq!(
        got.verification_status(),
        Some(&aws_sdk_sesv2::types::VerificationStatus::Pending)
    );

    // Easy DKIM again with no length: nothing to change, the same tokens come back.
    let same = c
        .put_email_identity_dkim_signing_attributes()
        .email_identity("switch.example.com")
        .signing_attributes_origin(DkimSigningAttributesOrigin::AwsSes)
        .send()
        .await
        .unwrap();
    assert_eq!(same.dkim_tokens(), new_tokens.as_slice());
}

#[tokio::test]
async fn email_address_identities() {
    let server = Server::start();
    let c = server.client();
    let out = c
        .create_email_identity()
        .email_identity("User+Tag@Example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(out.identity_type(), Some(&IdentityType::EmailAddress));
    assert!(
        out.dkim_attributes().is_none(),
        "SES returns no DkimAttributes for addresses"
    );

    // The local part is case-sensitive, the domain part is not.
    let got = c
        .get_email_identity()
        .email_identity("User+Tag@example.COM")
        .send()
        .await
        .unwrap();
    let d = got.dkim_attributes().unwrap();
    assert_eq!(d.status(), Some(&DkimStatus::NotStarted));
    assert!(!d.signing_enabled());
    let e = c
        .get_email_identity()
        .email_identity("user+tag@example.com")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_not_found_exception(), "{e:?}");

    // Once the domain is an identity, the address shows the domain's DKIM.
    let domain = c
        .create_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap();
    let got = c
        .get_email_identity()
        .email_identity("User+Tag@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.dkim_attributes().unwrap().tokens(),
        domain.dkim_attributes().unwrap().tokens()
    );

    // DKIM signing attributes belong to domains.
    let e = c
        .put_email_identity_dkim_signing_attributes()
        .email_identity("User+Tag@example.com")
        .signing_attributes_origin(DkimSigningAttributesOrigin::AwsSes)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_bad_request_exception(), "{e:?}");
    let e = c
        .create_email_identity()
        .email_identity("other@example.com")
        .dkim_signing_attributes(
            DkimSigningAttributes::builder()
                .next_signing_key_length(DkimSigningKeyLength::Rsa2048Bit)
                .build(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_bad_request_exception(), "{e:?}");
    let e = c
        .get_email_identity()
        .email_identity("other@example.com")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        e.is_not_found_exception(),
        "a refused create leaves nothing behind"
    );

    // The address may carry its own signing override.
    c.put_email_identity_dkim_attributes()
        .email_identity("User+Tag@example.com")
        .signing_enabled(false)
        .send()
        .await
        .unwrap();
    c.delete_email_identity()
        .email_identity("User+Tag@example.com")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn pagination_across_pages_filters_and_tokens() {
    let server = Server::start();
    let c = server.client();
    let mut names: Vec<String> = (0..7).map(|i| format!("user{i}@example.com")).collect();
    for n in &names {
        c.create_email_identity()
            .email_identity(n)
            .send()
            .await
            .unwrap();
    }
    c.create_email_identity()
        .email_identity("example.org")
        .send()
        .await
        .unwrap();
    names.push("example.org".into());
    names.sort();

    // By hand, three at a time.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = c
            .list_email_identities()
            .page_size(3)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.email_identities().len() <= 3);
        seen.extend(
            page.email_identities()
                .iter()
                .map(|i| i.identity_name().unwrap().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, names, "every identity once, in a stable order");

    // The SDK's own paginator.
    let pages = c
        .list_email_identities()
        .page_size(2)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(pages.len(), 4);
    let all: Vec<&str> = pages
        .iter()
        .flat_map(|p| {
            p.email_identities()
                .iter()
                .map(|i| i.identity_name().unwrap())
        })
        .collect();
    assert_eq!(all, names);

    // Filters (POST form only).
    let domains = c
        .list_email_identities()
        .filter(
            aws_sdk_sesv2::types::IdentityFilterKey::IdentityType,
            "DOMAIN",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(domains.email_identities().len(), 1);
    assert_eq!(
        domains.email_identities()[0].identity_type(),
        Some(&IdentityType::Domain)
    );
    let contains = c
        .list_email_identities()
        .filter(
            aws_sdk_sesv2::types::IdentityFilterKey::IdentityNameContains,
            "user3",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(contains.email_identities().len(), 1);

    // A token is tamper-proof and bound to its filter.
    let first = c.list_email_identities().page_size(2).send().await.unwrap();
    let token = first.next_token().unwrap().to_owned();
    let mut bytes = token.clone().into_bytes();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    for bad in [tampered.as_str(), "not-a-token", ""] {
        let e = c
            .list_email_identities()
            .next_token(bad)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(e.is_bad_request_exception(), "{bad}: {e:?}");
    }
    let e = c
        .list_email_identities()
        .next_token(&token)
        .filter(
            aws_sdk_sesv2::types::IdentityFilterKey::IdentityType,
            "DOMAIN",
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_bad_request_exception(), "{e:?}");
    for size in [0, 1001, -1] {
        let e = c
            .list_email_identities()
            .page_size(size)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(e.is_bad_request_exception(), "PageSize {size}: {e:?}");
    }

    // The legacy GET form that older clients send.
    let mut seen = Vec::new();
    let mut query = "PageSize=5".to_owned();
    loop {
        let r = raw_request(
            server.api,
            "GET",
            &format!("/v2/email/identities?{query}"),
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        for i in v["EmailIdentities"].as_array().unwrap() {
            seen.push(i["IdentityName"].as_str().unwrap().to_owned());
        }
        match v["NextToken"].as_str() {
            Some(t) => query = format!("PageSize=5&NextToken={t}"),
            None => break,
        }
    }
    assert_eq!(seen, names);
}

#[tokio::test]
async fn tags_on_identity_arns() {
    let server = Server::start();
    let c = server.client();
    c.create_email_identity()
        .email_identity("tags.example.com")
        .tags(tag("a", "1"))
        .send()
        .await
        .unwrap();
    let arn = server.arn("tags.example.com");
    c.tag_resource()
        .resource_arn(&arn)
        .tags(tag("b", ""))
        .tags(tag("a", "2"))
        .send()
        .await
        .unwrap();
    let tags = c
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags(), &[tag("b", ""), tag("a", "2")]);
    let got = c
        .get_email_identity()
        .email_identity("tags.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.tags(),
        tags.tags(),
        "GetEmailIdentity reflects TagResource"
    );
    c.untag_resource()
        .resource_arn(&arn)
        .tag_keys("a")
        .tag_keys("not-there")
        .send()
        .await
        .unwrap();
    let tags = c
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags(), &[tag("b", "")]);

    // Address ARNs carry '@' and '+'.
    c.create_email_identity()
        .email_identity("a+b@example.com")
        .send()
        .await
        .unwrap();
    let addr_arn = server.arn("a+b@example.com");
    c.tag_resource()
        .resource_arn(&addr_arn)
        .tags(tag("k", "v w"))
        .send()
        .await
        .unwrap();
    let t = c
        .list_tags_for_resource()
        .resource_arn(&addr_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(t.tags(), &[tag("k", "v w")]);
    c.untag_resource()
        .resource_arn(&addr_arn)
        .tag_keys("k")
        .send()
        .await
        .unwrap();
    assert!(
        c.list_tags_for_resource()
            .resource_arn(&addr_arn)
            .send()
            .await
            .unwrap()
            .tags()
            .is_empty()
    );

    // Bad tags are refused and change nothing.
    let bad_sets: Vec<Vec<Tag>> = vec![
        vec![tag("aws:reserved", "x")],
        vec![tag(&"k".repeat(129), "x")],
        vec![tag("k", &"v".repeat(257))],
        vec![tag("bad!", "x")],
        vec![tag("dup", "1"), tag("dup", "2")],
        (0..50).map(|i| tag(&format!("t{i}"), "")).collect(),
    ];
    for tags in bad_sets {
        let e = c
            .tag_resource()
            .resource_arn(&arn)
            .set_tags(Some(tags.clone()))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(e.is_bad_request_exception(), "{tags:?}: {e:?}");
        let now = c
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .unwrap();
        assert_eq!(now.tags(), &[tag("b", "")]);
    }

    // Unknown identities, other accounts and regions are not found; malformed ARNs are bad.
    let other_account = arn.replace(&server.account, "999999999999");
    let other_region = arn.replace("us-east-1", "eu-west-1");
    for missing in [server.arn("nope.example.com"), other_account, other_region] {
        let e = c
            .list_tags_for_resource()
            .resource_arn(&missing)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(e.is_not_found_exception(), "{missing}: {e:?}");
        let e = c
            .tag_resource()
            .resource_arn(&missing)
            .tags(tag("x", "y"))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(e.is_not_found_exception(), "{missing}: {e:?}");
    }
    for malformed in [
        "nonsense",
        "arn:aws:ses:us-east-1:123",
        "arn:aws:ses:us-east-1:1:configuration-set/x",
    ] {
        let e = c
            .list_tags_for_resource()
            .resource_arn(malformed)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(e.is_bad_request_exception(), "{malformed}: {e:?}");
    }
}
