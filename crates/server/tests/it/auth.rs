//! Authentication, tenancy and throttling through the real binary: SigV4 failures answer the
//! AWS 403 codes and change nothing, accounts made with the CLI are isolated from each other,
//! throttled writes complete exactly once through the SDK's retries, and no secret reaches the
//! log.

use crate::harness::{KEY_ID, REGION, SECRET, Server, client_for, send};
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Runs a management command against `data_dir` and parses its JSON output.
pub fn cli(data_dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("SESAME_MASTER_KEY")
        .env_remove("SESAME_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sesame {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A client making exactly one attempt per call, optionally with its clock shifted. Retries are
/// off because the SDK corrects its clock from the server's `Date` header and re-signs: that
/// second request would be a new, valid one, and this test is about the first.
fn client_at(api: SocketAddr, creds: Credentials, time: Option<SystemTime>) -> Client {
    let mut conf = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(format!("http://{api}"))
        .credentials_provider(creds)
        .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http());
    if let Some(t) = time {
        conf = conf.time_source(aws_smithy_async::time::StaticTimeSource::new(t));
    }
    Client::from_conf(conf.build())
}

/// The code, status and message of a failed call.
async fn attempt(c: &Client, name: &str, what: &str) -> (String, u16, String) {
    let err = c
        .create_email_identity()
        .email_identity(name)
        .send()
        .await
        .expect_err(what);
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    (
        err.code().unwrap_or("?").to_owned(),
        status,
        err.message().unwrap_or("").to_owned(),
    )
}

/// Fails if the log holds a secret or anything shaped like a signature (64 hex digits).
pub fn assert_log_has_no_secrets(log: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!log.contains(s), "a secret access key is in the log");
    }
    let mut run = 0;
    for c in log.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        assert!(run < 64, "something signature-shaped is in the log");
    }
}

#[tokio::test]
async fn bad_credentials_answer_the_aws_403_codes_and_change_nothing() {
    let server = Server::start();
    let good = server.client();
    good.create_email_identity()
        .email_identity("keep.example.com")
        .send()
        .await
        .unwrap();

    let extra = cli(&server.data_dir, &["key", "create", "default"]);
    let (extra_id, extra_secret) = (
        extra["AccessKeyId"].as_str().unwrap().to_owned(),
        extra["SecretAccessKey"].as_str().unwrap().to_owned(),
    );
    let extra_client = client_for(server.api, &extra_id, &extra_secret);
    extra_client
        .list_email_identities()
        .send()
        .await
        .expect("a new key works at once");
    cli(&server.data_dir, &["key", "disable", &extra_id]);

    let now = SystemTime::now();
    let twenty = Duration::from_secs(20 * 60);
    let creds = |id: &str, secret: &str| Credentials::new(id, secret, None, None, "test");
    let one = |id: &str, secret: &str| client_at(server.api, creds(id, secret), None);
    let cases: Vec<(&str, Client, &str, &str)> = vec![
        (
            "wrong secret",
            one(KEY_ID, "not-the-secret"),
            "InvalidSignatureException",
            "The Canonical String for this request should have been",
        ),
        (
            "unknown key",
            one("AKIANOSUCHKEY0000000", SECRET),
            "UnrecognizedClientException",
            "security token",
        ),
        (
            "disabled key",
            one(&extra_id, &extra_secret),
            "UnrecognizedClientException",
            "security token",
        ),
        (
            "20 minutes old",
            client_at(server.api, creds(KEY_ID, SECRET), Some(now - twenty)),
            "InvalidSignatureException",
            "Signature expired",
        ),
        (
            "20 minutes ahead",
            client_at(server.api, creds(KEY_ID, SECRET), Some(now + twenty)),
            "InvalidSignatureException",
            "Signature not yet current",
        ),
        (
            "session token",
            client_at(
                server.api,
                Credentials::new(KEY_ID, SECRET, Some("token".into()), None, "t"),
                None,
            ),
            "UnrecognizedClientException",
            "security token",
        ),
    ];
    for (i, (what, client, code, text)) in cases.iter().enumerate() {
        let name = format!("bad{i}.example.com");
        let (got, status, message) = attempt(client, &name, what).await;
        assert_eq!((got.as_str(), status), (*code, 403), "{what}: {message}");
        assert!(message.contains(text), "{what}: {message}");
        let e = good
            .get_email_identity()
            .email_identity(&name)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            Some("NotFoundException"),
            "{what} changed nothing"
        );
    }
    // With retries on, the SDK reads the server's clock from the 403's Date header, re-signs
    // and succeeds: AWS's clock-skew correction works against Sesame too.
    let skewed = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(format!("http://{}", server.api))
        .credentials_provider(creds(KEY_ID, SECRET))
        .time_source(aws_smithy_async::time::StaticTimeSource::new(now - twenty))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(skewed)
        .create_email_identity()
        .email_identity("skewed.example.com")
        .send()
        .await
        .expect("the SDK corrects its clock skew and retries");
    good.delete_email_identity()
        .email_identity("skewed.example.com")
        .send()
        .await
        .unwrap();
    // Unsigned: the SDK always signs, so this one goes over a plain socket.
    let body = br#"{"EmailIdentity":"unsigned.example.com"}"#;
    let head = format!(
        "POST /v2/email/identities HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        server.api,
        body.len()
    );
    let r = send(server.api, head.as_bytes(), body);
    assert_eq!(
        (r.status, r.header("x-amzn-ErrorType")),
        (403, Some("MissingAuthenticationTokenException"))
    );
    let list = good.list_email_identities().send().await.unwrap();
    let names: Vec<_> = list
        .email_identities()
        .iter()
        .map(|i| i.identity_name().unwrap())
        .collect();
    assert_eq!(
        names,
        ["keep.example.com"],
        "no refused request created anything"
    );
    assert_log_has_no_secrets(&server.output(), &[SECRET, &extra_secret]);
}

#[tokio::test]
async fn identities_with_plus_and_at_sign_correctly() {
    let server = Server::start();
    let c = server.client();
    let name = "user+tag@example.com";
    c.create_email_identity()
        .email_identity(name)
        .send()
        .await
        .unwrap();
    c.get_email_identity()
        .email_identity(name)
        .send()
        .await
        .unwrap();
    c.put_email_identity_feedback_attributes()
        .email_identity(name)
        .email_forwarding_enabled(false)
        .send()
        .await
        .unwrap();
    c.put_email_identity_dkim_attributes()
        .email_identity(name)
        .signing_enabled(true)
        .send()
        .await
        .unwrap();
    let arn = server.arn(name);
    c.tag_resource()
        .resource_arn(&arn)
        .tags(
            aws_sdk_sesv2::types::Tag::builder()
                .key("k")
                .value("a b+c")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    c.untag_resource()
        .resource_arn(&arn)
        .tag_keys("k")
        .send()
        .await
        .unwrap();
    c.delete_email_identity()
        .email_identity(name)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn accounts_made_with_the_cli_are_isolated() {
    let server = Server::start();
    let alice = cli(&server.data_dir, &["account", "create", "alice"]);
    let bob = cli(&server.data_dir, &["account", "create", "bob"]);
    let key = |v: &serde_json::Value, f: &str| v[f].as_str().unwrap().to_owned();
    let (alice_account, bob_account) = (key(&alice, "AccountId"), key(&bob, "AccountId"));
    assert_ne!(alice_account, bob_account);
    let a = client_for(
        server.api,
        &key(&alice, "AccessKeyId"),
        &key(&alice, "SecretAccessKey"),
    );
    let b = client_for(
        server.api,
        &key(&bob, "AccessKeyId"),
        &key(&bob, "SecretAccessKey"),
    );

    let created = a
        .create_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap();
    let alice_tokens = created.dkim_attributes().unwrap().tokens().to_vec();
    let alice_arn = format!("arn:aws:ses:{REGION}:{alice_account}:identity/example.com");
    a.tag_resource()
        .resource_arn(&alice_arn)
        .tags(
            aws_sdk_sesv2::types::Tag::builder()
                .key("owner")
                .value("alice")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let code = |e: Option<&str>| e.unwrap_or("?").to_owned();
    let e = b
        .get_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e.code()), "NotFoundException");
    assert!(
        b.list_email_identities()
            .send()
            .await
            .unwrap()
            .email_identities()
            .is_empty()
    );
    let e = b
        .put_email_identity_feedback_attributes()
        .email_identity("example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e.code()), "NotFoundException");
    let e = b
        .put_email_identity_dkim_attributes()
        .email_identity("example.com")
        .signing_enabled(false)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(e.code()),
        "BadRequestException",
        "SES's answer for an identity it does not know"
    );
    let e = b
        .put_email_identity_dkim_signing_attributes()
        .email_identity("example.com")
        .signing_attributes_origin(aws_sdk_sesv2::types::DkimSigningAttributesOrigin::AwsSes)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e.code()), "NotFoundException");
    let e = b
        .tag_resource()
        .resource_arn(&alice_arn)
        .tags(
            aws_sdk_sesv2::types::Tag::builder()
                .key("owner")
                .value("bob")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e.code()), "NotFoundException");
    let e = b
        .list_tags_for_resource()
        .resource_arn(&alice_arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e.code()), "NotFoundException");
    let e = b
        .untag_resource()
        .resource_arn(&alice_arn)
        .tag_keys("owner")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e.code()), "NotFoundException");
    let e = b
        .delete_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e.code()), "NotFoundException");

    // Bob may have his own example.com, with his own tokens and keys.
    let bobs = b
        .create_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap();
    let bob_tokens = bobs.dkim_attributes().unwrap().tokens().to_vec();
    assert!(bob_tokens.iter().all(|t| !alice_tokens.contains(t)));
    let bob_arn = format!("arn:aws:ses:{REGION}:{bob_account}:identity/example.com");
    assert!(
        b.list_tags_for_resource()
            .resource_arn(&bob_arn)
            .send()
            .await
            .unwrap()
            .tags()
            .is_empty()
    );

    // Alice's identity is untouched.
    let got = a
        .get_email_identity()
        .email_identity("example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.dkim_attributes().unwrap().tokens(),
        alice_tokens.as_slice()
    );
    assert_eq!(got.tags().len(), 1);
    assert_eq!(got.tags()[0].value(), "alice");
    // And the default account sees neither.
    assert!(
        server
            .client()
            .list_email_identities()
            .send()
            .await
            .unwrap()
            .email_identities()
            .is_empty()
    );

    let accounts = cli(&server.data_dir, &["account", "list"]);
    let names: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "default"]);
    let keys = cli(&server.data_dir, &["key", "list"]).to_string();
    for secret in [
        key(&alice, "SecretAccessKey"),
        key(&bob, "SecretAccessKey"),
        SECRET.to_owned(),
    ] {
        assert!(!keys.contains(&secret), "key list never shows secrets");
    }
    assert_log_has_no_secrets(
        &server.output(),
        &[
            SECRET,
            &key(&alice, "SecretAccessKey"),
            &key(&bob, "SecretAccessKey"),
        ],
    );
}

#[tokio::test]
async fn throttled_writes_complete_exactly_once_through_sdk_retries() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        dir.path(),
        &[("SESAME_RATE_LIMIT", "4"), ("SESAME_RATE_BURST", "4")],
    );
    let retry = aws_sdk_sesv2::config::retry::RetryConfig::standard()
        .with_max_attempts(50)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(1));
    let conf = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(format!("http://{}", server.api))
        .credentials_provider(Credentials::new(KEY_ID, SECRET, None, None, "t"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(retry)
        .build();
    let c = Client::from_conf(conf);
    // Twice the burst at once: some are throttled for sure, and the retries stay well inside
    // the SDK client's own retry quota (a burst of 20 could spend it on a slow day, and the
    // client then gives up without retrying).
    let n = 8;
    let mut tasks = Vec::new();
    for i in 0..n {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.create_email_identity()
                .email_identity(format!("burst{i:02}@example.com"))
                .send()
                .await
        }));
    }
    for t in tasks {
        t.await
            .unwrap()
            .expect("every write completes through retries");
    }
    // The harness reads the server's log on another thread: wait until it has every line.
    let count = |log: &str| {
        log.lines()
            .filter(|l| l.contains("CreateEmailIdentity") && l.contains("status=200"))
            .count()
    };
    let log = server.wait_output("every create", |o| count(o) >= n);
    let throttled = log.lines().filter(|l| l.contains("status=429")).count();
    assert!(throttled > 0, "the burst was throttled at least once");
    assert_eq!(count(&log), n, "each write applied exactly once");
    assert!(
        !log.contains("AlreadyExists"),
        "no retry found its write already applied"
    );
    // The burst spent the client's retry quota; the listing waits for the account's bucket
    // to refill (4 a second) rather than lean on retries it may no longer have.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_email_identities()
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        names.extend(
            page.email_identities()
                .iter()
                .map(|i| i.identity_name().unwrap().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let expected: Vec<String> = (0..n).map(|i| format!("burst{i:02}@example.com")).collect();
    assert_eq!(names, expected);
}

/// Presigned URLs (SigV4 in the query string), signed by the aws-sigv4 crate: valid ones work,
/// expired or tampered ones do not.
#[tokio::test]
async fn presigned_requests_are_verified() {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    use aws_sigv4::sign::v4;
    let server = Server::start();
    server
        .client()
        .create_email_identity()
        .email_identity("a+b@example.com")
        .send()
        .await
        .unwrap();
    let host = server.api.to_string();
    let presign = |path: &str, at: SystemTime, expires: u64| {
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(expires));
        let identity = Credentials::new(KEY_ID, SECRET, None, None, "p").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("ses")
            .time(at)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let url = format!("http://{host}{path}");
        let signable = SignableRequest::new(
            "GET",
            &url,
            [("host", host.as_str())].into_iter(),
            SignableBody::Bytes(b""),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let query: Vec<String> = instructions
            .params()
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        format!("{path}?{}", query.join("&"))
    };
    let get = |target: &str| {
        let head = format!("GET {target} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        send(server.api, head.as_bytes(), b"")
    };
    let path = "/v2/email/identities/a%2Bb%40example.com";
    let ok = get(&presign(path, SystemTime::now(), 300));
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.json()["IdentityType"], "EMAIL_ADDRESS");
    let expired = get(&presign(
        path,
        SystemTime::now() - Duration::from_secs(600),
        300,
    ));
    assert_eq!(
        (expired.status, expired.header("x-amzn-ErrorType")),
        (403, Some("InvalidSignatureException"))
    );
    assert!(
        expired.body.contains("Signature expired"),
        "{}",
        expired.body
    );
    let other = presign(path, SystemTime::now(), 300).replace("a%2Bb", "c%2Bd");
    let tampered = get(&other);
    assert_eq!(
        (tampered.status, tampered.header("x-amzn-ErrorType")),
        (403, Some("InvalidSignatureException"))
    );
}
