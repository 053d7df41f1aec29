//! SigV4 parsing and canonicalisation on arbitrary strings: `sigv4::parse` (header and
//! presigned forms), the scope check, `canonical_request`/`canonical_uri`/`canonical_query`,
//! and `verify` accepting the signature it computes itself; and, as a differential check,
//! `verify` accepting what the aws-sigv4 crate (the Rust SDK's signer) signs for the same
//! method, path, query, headers and body.
//!
//! Input: line 1 the method, line 2 the raw path, line 3 the query (`?` first, or absent),
//! then `name: value` header lines up to an empty line, then the body.
#![no_main]

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use libfuzzer_sys::fuzz_target;
use sesame_api::sigv4::{self, PathRules, Request};
use std::time::{Duration, SystemTime};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const ALL_RULES: [PathRules; 4] = [
    PathRules::AWS_SERVICE,
    PathRules {
        double_encode: false,
        normalize: true,
    },
    PathRules {
        double_encode: true,
        normalize: false,
    },
    PathRules {
        double_encode: false,
        normalize: false,
    },
];

/// What `UriEncode` may emit, plus the `/` separators.
fn is_encoded(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if i + 2 >= b.len() {
                    return false;
                }
                let hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
                if !(hex(b[i + 1]) && hex(b[i + 2])) {
                    return false;
                }
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) || extra.contains(&c) => i += 1,
            _ => return false,
        }
    }
    true
}

/// Signs the request with aws-sigv4 and checks that `sigv4::verify` accepts it. Inputs
/// aws-sigv4 cannot sign, or whose path or query `http::Uri` would change, are skipped; so
/// are the divergences already reported in fuzz/artifacts-found/README.md (non-space
/// whitespace in header values) and `X-Amz-*` query parameters, which a header-signed
/// request has no business carrying.
fn aws_sigv4_agrees(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(String, String)],
    body: &[u8],
) {
    const HOST: &str = "email.us-east-1.amazonaws.com";
    if http::Method::from_bytes(method.as_bytes()).is_err()
        || query.is_some_and(|q| q.to_ascii_lowercase().contains("x-amz-"))
    {
        return;
    }
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let Ok(uri) = format!("http://{HOST}{target}").parse::<http::Uri>() else {
        return;
    };
    if uri.path() != path || uri.query() != query {
        return;
    }
    let mut sent: Vec<(String, String)> = Vec::new();
    for (n, v) in headers {
        if [
            "authorization",
            "x-amz-date",
            "x-amz-security-token",
            "x-amz-content-sha256",
        ]
        .contains(&n.as_str())
            || http::HeaderName::from_bytes(n.as_bytes()).is_err()
            || http::HeaderValue::from_str(v).is_err()
            || v.chars().any(|c| c.is_whitespace() && c != ' ')
        {
            continue;
        }
        sent.push((n.clone(), v.clone()));
    }
    if !sent.iter().any(|(n, _)| n == "host") {
        sent.push(("host".into(), HOST.into()));
    }
    let identity = Credentials::new("AKIDEXAMPLE", SECRET, None, None, "fuzz").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ses")
        .time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_126_400))
        .settings(SigningSettings::default())
        .build()
        .expect("complete signing parameters")
        .into();
    let Ok(signable) = SignableRequest::new(
        method,
        format!("http://{HOST}{target}"),
        sent.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    ) else {
        return;
    };
    let Ok(signed) = sign(signable, &params) else {
        return;
    };
    let (instructions, _) = signed.into_parts();
    for (n, v) in instructions.headers() {
        sent.push((n.to_owned(), v.to_owned()));
    }
    let req = Request {
        method,
        raw_path: path,
        raw_query: query,
        headers: &sent,
        body,
    };
    let parsed = sigv4::parse(&req).expect("aws-sigv4's Authorization header parses");
    if let Err(e) = sigv4::verify(&req, &parsed, SECRET, PathRules::AWS_SERVICE) {
        panic!("Sesame refuses what aws-sigv4 signed: {e:?}");
    }
    if std::env::var_os("FUZZ_TRACE").is_some() {
        // For judging seeds: which inputs reached the differential check.
        eprintln!("aws-sigv4 agrees: {method} {target}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or_default();
    let path = lines.next().unwrap_or_default();
    let query = lines.next().and_then(|q| q.strip_prefix('?'));
    let mut headers = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(':').unwrap_or((line, ""));
        headers.push((n.trim().to_ascii_lowercase(), v.to_owned()));
    }
    let body: Vec<String> = lines.map(str::to_owned).collect();
    let body = body.join("\n");
    let req = Request {
        method,
        raw_path: path,
        raw_query: query,
        headers: &headers,
        body: body.as_bytes(),
    };
    aws_sigv4_agrees(method, path, query, &headers, body.as_bytes());

    for rules in ALL_RULES {
        let uri = sigv4::canonical_uri(path, rules);
        assert!(is_encoded(&uri, b"/"), "{path:?} -> {uri:?}");
        if !rules.normalize && !rules.double_encode {
            // Decoding then re-encoding is a fixed point once applied.
            assert_eq!(sigv4::canonical_uri(&uri, rules), uri, "{path:?}");
        }
    }
    let cq = sigv4::canonical_query(query);
    assert!(is_encoded(&cq, b"=&"), "{query:?} -> {cq:?}");
    assert_eq!(sigv4::canonical_query(Some(&cq)), cq, "{query:?}");

    let Ok(parsed) = sigv4::parse(&req) else {
        return;
    };
    // Dates the parser accepts format back to themselves, unless they normalise (Feb 30).
    let again = sigv4::parse_amz_date(&sigv4::format_amz_date(parsed.timestamp));
    assert_eq!(again, Some(parsed.timestamp), "{}", parsed.amz_date);
    for now in [
        parsed.timestamp,
        0,
        parsed.timestamp - 901,
        parsed.timestamp + 901,
    ] {
        let _ = sigv4::check_scope_and_time(&parsed, "us-east-1", "ses", now);
    }
    let cache = sigv4::SigningKeyCache::new();
    for rules in ALL_RULES {
        let Ok(canonical) = sigv4::canonical_request(&req, &parsed, rules) else {
            continue;
        };
        let sts = sigv4::string_to_sign(&parsed, &canonical);
        let key = sigv4::signing_key(SECRET, &parsed);
        assert_eq!(cache.signing_key(SECRET, &parsed), key);
        let mut good = parsed.clone();
        good.signature = sigv4::signature(&key, &sts);
        assert_eq!(
            sigv4::verify(&req, &good, SECRET, rules),
            Ok(()),
            "verify refused its own signature"
        );
        if good.signature != parsed.signature.to_ascii_lowercase() {
            assert!(sigv4::verify(&req, &parsed, SECRET, rules).is_err());
        }
    }
});
