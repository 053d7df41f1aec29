//! SigV4 against AWS's test suite (`tests/data/sigv4/`), stage by stage, plus the checks that
//! must happen before any storage lookup.

use super::*;
use std::path::{Path, PathBuf};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/sigv4")
}

/// A request file of the suite: request line, headers (continuation lines folded), body.
struct RawRequest {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(path: &Path) -> RawRequest {
    let text = std::fs::read_to_string(path).unwrap();
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h.to_owned(), b.trim_end_matches('\n').as_bytes().to_vec()),
        None => (text.trim_end_matches('\n').to_owned(), vec![]),
    };
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let target = request_line
        .strip_suffix(" HTTP/1.1")
        .and_then(|l| l.split_once(' '))
        .map(|(_, t)| t)
        .unwrap();
    let method = request_line.split(' ').next().unwrap().to_owned();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().unwrap();
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.to_ascii_lowercase(), v.to_owned()));
        }
    }
    RawRequest {
        method,
        path,
        query,
        headers,
        body,
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim_end_matches('\n')
        .to_owned()
}

/// Checks one signed form (`header` or `query`) of one vector.
fn check_form(
    cache: &SigningKeyCache,
    dir: &Path,
    form: &str,
    secret: &str,
    now: i64,
    token: bool,
    rules: PathRules,
) {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let raw = read_request(&dir.join(format!("{form}-signed-request.txt")));
    let req = Request {
        method: &raw.method,
        raw_path: &raw.path,
        raw_query: raw.query.as_deref(),
        headers: &raw.headers,
        body: &raw.body,
    };
    let parsed = parse(&req).unwrap_or_else(|e| panic!("{name}/{form}: {e:?}"));
    let canonical = canonical_request(&req, &parsed, rules).unwrap();
    assert_eq!(
        canonical,
        read(dir, &format!("{form}-canonical-request.txt")),
        "{name}/{form}: canonical request"
    );
    let sts = string_to_sign(&parsed, &canonical);
    assert_eq!(
        sts,
        read(dir, &format!("{form}-string-to-sign.txt")),
        "{name}/{form}: string to sign"
    );
    let sig = signature(&signing_key(secret, &parsed), &sts);
    assert_eq!(
        sig,
        read(dir, &format!("{form}-signature.txt")),
        "{name}/{form}: signature"
    );
    assert_eq!(
        verify(&req, &parsed, secret, rules),
        Ok(()),
        "{name}/{form}"
    );
    let wrong = verify(&req, &parsed, "not-the-secret", rules);
    assert!(
        matches!(&wrong, Err(SigError::Invalid(m)) if m.contains(&canonical) && m.contains(&sts)),
        "{name}/{form}"
    );
    // Through the cache: derived, then reused, and never reused for another secret.
    for _ in 0..2 {
        let key = cache.signing_key(secret, &parsed);
        assert_eq!(key, signing_key(secret, &parsed), "{name}/{form}");
        assert_eq!(verify_with_key(&req, &parsed, &key, rules), Ok(()));
    }
    let key = cache.signing_key("not-the-secret", &parsed);
    assert!(verify_with_key(&req, &parsed, &key, rules).is_err());
    let key = cache.signing_key(secret, &parsed);
    assert_eq!(verify_with_key(&req, &parsed, &key, rules), Ok(()));
    let time = check_scope_and_time(&parsed, "us-east-1", "service", now);
    if token {
        assert_eq!(
            time,
            Err(SigError::UnrecognizedClient),
            "{name}: session tokens are refused"
        );
    } else {
        assert_eq!(time, Ok(()), "{name}/{form}");
    }
}

#[test]
fn the_aws_sigv4_test_suite_stage_by_stage() {
    let cache = SigningKeyCache::new();
    let mut checked = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(suite_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let Ok(context) = std::fs::read_to_string(dir.join("context.json")) else {
            continue;
        };
        let ctx: serde_json::Value = serde_json::from_str(&context).unwrap();
        let secret = ctx["credentials"]["secret_access_key"].as_str().unwrap();
        let token = ctx["credentials"].get("token").is_some();
        let ts = ctx["timestamp"].as_str().unwrap().replace(['-', ':'], "");
        let now = parse_amz_date(&ts).unwrap();
        // The generic suite is written for single encoding; `normalize` varies per vector.
        let rules = PathRules {
            double_encode: false,
            normalize: ctx["normalize"] == true,
        };
        if ctx["omit_session_token"] == true {
            // Tokens added after signing (STS style): Sesame refuses any session token, so
            // only the refusal is checked for these vectors.
            for form in ["header", "query"] {
                let raw = read_request(&dir.join(format!("{form}-signed-request.txt")));
                let req = Request {
                    method: &raw.method,
                    raw_path: &raw.path,
                    raw_query: raw.query.as_deref(),
                    headers: &raw.headers,
                    body: &raw.body,
                };
                let parsed = parse(&req).unwrap();
                assert_eq!(
                    check_scope_and_time(&parsed, "us-east-1", "service", now),
                    Err(SigError::UnrecognizedClient)
                );
            }
            continue;
        }
        for form in ["header", "query"] {
            if dir.join(format!("{form}-signed-request.txt")).exists() {
                check_form(&cache, &dir, form, secret, now, token, rules);
                checked += 1;
            }
        }
    }
    assert!(checked >= 70, "only {checked} signed requests checked");
}

/// A cached signing key serves only its own secret and scope, and the cache stays bounded.
#[test]
fn cached_signing_keys_follow_the_secret_and_the_scope() {
    let cache = SigningKeyCache::new();
    let parsed = |key: &str, date: &str, region: &str| Parsed {
        access_key_id: key.to_owned(),
        scope_date: date.to_owned(),
        region: region.to_owned(),
        service: "ses".to_owned(),
        signed_headers: vec!["host".to_owned()],
        signature: String::new(),
        amz_date: format!("{date}T000000Z"),
        timestamp: 0,
        expires: None,
        session_token: false,
    };
    let a = parsed("AKIAA", "20250101", "us-east-1");
    assert_eq!(cache.signing_key("s1", &a), signing_key("s1", &a));
    assert_eq!(cache.signing_key("s1", &a), signing_key("s1", &a));
    assert_eq!(cache.len(), 1);
    // A rotated secret, a new day, another region: derived again, never the stale key.
    assert_eq!(cache.signing_key("s2", &a), signing_key("s2", &a));
    assert_ne!(signing_key("s1", &a), signing_key("s2", &a));
    let next_day = parsed("AKIAA", "20250102", "us-east-1");
    assert_eq!(
        cache.signing_key("s2", &next_day),
        signing_key("s2", &next_day)
    );
    let other_region = parsed("AKIAA", "20250102", "eu-west-1");
    assert_eq!(
        cache.signing_key("s2", &other_region),
        signing_key("s2", &other_region)
    );
    assert_eq!(cache.len(), 1);
    for i in 0..MAX_CACHED_KEYS + 5 {
        let p = parsed(&format!("AKIA{i}"), "20250101", "us-east-1");
        assert_eq!(cache.signing_key("s", &p), signing_key("s", &p));
        assert!(cache.len() <= MAX_CACHED_KEYS);
    }
    assert!(!cache.is_empty());
}

#[test]
fn non_s3_paths_are_encoded_twice() {
    let dir = suite_dir().join("double-encode-path");
    let raw = read_request(&dir.join("request.txt"));
    let expected = read(&dir, "header-canonical-request.txt");
    assert_eq!(
        canonical_uri(&raw.path, PathRules::AWS_SERVICE),
        expected.lines().nth(1).unwrap()
    );
    // An SES identity label as SDKs send it.
    assert_eq!(
        canonical_uri(
            "/v2/email/identities/user%2Btag%40example.com",
            PathRules::AWS_SERVICE
        ),
        "/v2/email/identities/user%252Btag%2540example.com"
    );
}

#[test]
fn amz_dates_round_trip() {
    for s in [
        "20150830T123600Z",
        "19700101T000000Z",
        "20000229T235959Z",
        "20261126T180000Z",
    ] {
        assert_eq!(format_amz_date(parse_amz_date(s).unwrap()), s);
    }
    assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
    for bad in [
        "2015-08-30T12:36:00Z",
        "20151330T123600Z",
        "20150830T123600",
        "",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
}

fn header_request(amz_date: &str, credential: &str, signed: &str) -> Vec<(String, String)> {
    vec![
        ("host".into(), "example.com".into()),
        ("x-amz-date".into(), amz_date.into()),
        (
            "authorization".into(),
            format!("{ALGORITHM} Credential={credential}, SignedHeaders={signed}, Signature=00"),
        ),
    ]
}

/// Scope, date and skew failures need no secret: they are decided from the request alone,
/// which is why the edge runs them before the (storage) lookup.
#[test]
fn scope_and_skew_are_checked_without_any_secret() {
    let now = parse_amz_date("20261126T120000Z").unwrap();
    let cases = [
        (
            "20261126T120000Z",
            "AKID/20261126/us-east-1/ses/aws4_request",
            "host;x-amz-date",
            None,
        ),
        (
            "20261126T114600Z",
            "AKID/20261126/us-east-1/ses/aws4_request",
            "host;x-amz-date",
            None,
        ),
        (
            "20261126T114400Z",
            "AKID/20261126/us-east-1/ses/aws4_request",
            "host;x-amz-date",
            Some("Signature expired"),
        ),
        (
            "20261126T121600Z",
            "AKID/20261126/us-east-1/ses/aws4_request",
            "host;x-amz-date",
            Some("Signature not yet current"),
        ),
        (
            "20261126T120000Z",
            "AKID/20261126/eu-west-1/ses/aws4_request",
            "host;x-amz-date",
            Some("valid region"),
        ),
        (
            "20261126T120000Z",
            "AKID/20261126/us-east-1/email/aws4_request",
            "host;x-amz-date",
            Some("correct service"),
        ),
        (
            "20261126T120000Z",
            "AKID/20261125/us-east-1/ses/aws4_request",
            "host;x-amz-date",
            Some("Date in Credential scope"),
        ),
        (
            "20261126T120000Z",
            "AKID/20261126/us-east-1/ses/aws4_request",
            "x-amz-date",
            Some("host header must be signed"),
        ),
    ];
    for (date, cred, signed, expect) in cases {
        let headers = header_request(date, cred, signed);
        let req = Request {
            method: "GET",
            raw_path: "/",
            raw_query: None,
            headers: &headers,
            body: b"",
        };
        let parsed = parse(&req).unwrap();
        let got = check_scope_and_time(&parsed, "us-east-1", "ses", now);
        match expect {
            None => assert_eq!(got, Ok(()), "{date} {cred}"),
            Some(text) => assert!(
                matches!(&got, Err(SigError::Invalid(m)) if m.contains(text)),
                "{date} {cred}: {got:?}"
            ),
        }
    }
}

#[test]
fn malformed_signatures_are_incomplete_or_missing() {
    let none: Vec<(String, String)> = vec![("host".into(), "h".into())];
    let req = Request {
        method: "GET",
        raw_path: "/",
        raw_query: None,
        headers: &none,
        body: b"",
    };
    assert_eq!(parse(&req), Err(SigError::Missing));
    for auth in [
        "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/ses/aws4_request, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/ses, SignedHeaders=host, Signature=00",
        "AWS3 Credential=x",
    ] {
        let headers = vec![
            ("host".to_owned(), "h".to_owned()),
            ("x-amz-date".to_owned(), "20261126T120000Z".to_owned()),
            ("authorization".to_owned(), auth.to_owned()),
        ];
        let req = Request {
            method: "GET",
            raw_path: "/",
            raw_query: None,
            headers: &headers,
            body: b"",
        };
        assert!(
            matches!(parse(&req), Err(SigError::Incomplete(_))),
            "{auth}"
        );
    }
    let presigned_without_expiry = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261126%2Fus-east-1%2Fses%2Faws4_request&X-Amz-Date=20261126T120000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    let req = Request {
        method: "GET",
        raw_path: "/",
        raw_query: Some(presigned_without_expiry),
        headers: &none,
        body: b"",
    };
    assert!(matches!(parse(&req), Err(SigError::Incomplete(m)) if m.contains("X-Amz-Expires")));
}

/// A second credential is refused even when the first one is valid: a proxy in front may read
/// the other one.
#[test]
fn one_request_carries_exactly_one_credential() {
    let mut two = header_request(
        "20261126T120000Z",
        "AKID/20261126/us-east-1/ses/aws4_request",
        "host;x-amz-date",
    );
    assert!(
        parse(&Request {
            method: "GET",
            raw_path: "/",
            raw_query: None,
            headers: &two,
            body: b"",
        })
        .is_ok()
    );
    let again = two[2].clone();
    two.push(again);
    assert!(matches!(
        parse(&Request { method: "GET", raw_path: "/", raw_query: None, headers: &two, body: b"" }),
        Err(SigError::Incomplete(m)) if m.contains("2 Authorization headers")
    ));
    two.pop();
    let both = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261126%2Fus-east-1%2Fses%2Faws4_request&X-Amz-Signature=00";
    assert!(matches!(
        parse(&Request { method: "GET", raw_path: "/", raw_query: Some(both), headers: &two, body: b"" }),
        Err(SigError::Incomplete(m)) if m.contains("Only one authentication mechanism")
    ));
}

/// Found by the http_edge fuzzer: a signed header value with a tab. aws-sigv4 collapses only
/// spaces (AWS's documented rule), botocore every whitespace run; a request signed either way
/// verifies.
#[test]
fn header_values_with_tabs_verify_under_both_sdk_rules() {
    let now = "20261126T120000Z";
    let headers = vec![
        ("host".to_owned(), "example.com".to_owned()),
        ("x-a".to_owned(), " a\tb  c ".to_owned()),
        ("x-amz-date".to_owned(), now.to_owned()),
        (
            "authorization".to_owned(),
            format!(
                "{ALGORITHM} Credential=AKID/20261126/us-east-1/ses/aws4_request, SignedHeaders=host;x-a;x-amz-date, Signature=00"
            ),
        ),
    ];
    let req = Request {
        method: "GET",
        raw_path: "/v2/email/identities",
        raw_query: None,
        headers: &headers,
        body: b"",
    };
    let mut p = parse(&req).unwrap();
    let key = signing_key("secret", &p);
    for collapse in [Collapse::Spaces, Collapse::AnyWhitespace] {
        let canonical = canonical_request_with(&req, &p, PathRules::AWS_SERVICE, collapse).unwrap();
        p.signature = signature(&key, &string_to_sign(&p, &canonical));
        assert_eq!(
            verify_with_key(&req, &p, &key, PathRules::AWS_SERVICE),
            Ok(()),
            "{collapse:?}"
        );
    }
    assert_eq!(canonical_value(" a\tb  c ", Collapse::Spaces), "a\tb c");
    assert_eq!(
        canonical_value(" a\tb  c ", Collapse::AnyWhitespace),
        "a b c"
    );
    p.signature = signature(&key, "something else");
    assert!(verify_with_key(&req, &p, &key, PathRules::AWS_SERVICE).is_err());
}
