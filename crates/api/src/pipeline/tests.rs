//! The pipeline's order, shown with a credential lookup that panics if called: every request
//! that fails before verification (read, precheck, query) gets its AWS error without a lookup,
//! and a good request is looked up exactly once.

use super::handle;
use crate::sigv4::{self, PathRules};
use crate::state::{Credential, CredentialLookup};
use crate::testing::{self, KEY, SECRET};
use axum::body::Body;
use axum::extract::State;
use sesame_core::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `testing::NOW_MS` as an `X-Amz-Date`.
const NOW: &str = "20261126T120000Z";
const HOST: &str = "email.us-east-1.amazonaws.com";

/// Counts its calls; with `panics` it fails the test the moment storage would be touched.
struct Lookup {
    calls: AtomicUsize,
    panics: bool,
}

impl CredentialLookup for Lookup {
    fn lookup(&self, access_key_id: &str) -> Result<Option<Credential>, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert!(
            !self.panics,
            "the credential of {access_key_id} was looked up"
        );
        Ok(testing::known_key(access_key_id))
    }
}

/// A request to `path` (with `query`) whose `Authorization` names `credential` and
/// `signed_headers`, signed with `SECRET` over the headers `extra` and `host`/`x-amz-date`.
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    amz_date: Option<&'a str>,
    credential: String,
    signed_headers: &'a str,
    algorithm: &'a str,
    extra: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
    authorization: bool,
}

impl<'a> Req<'a> {
    /// A correctly signed `POST /v2/email/list-identities`.
    fn good() -> Req<'a> {
        Req {
            method: "POST",
            path: "/v2/email/list-identities",
            query: None,
            amz_date: Some(NOW),
            credential: format!("{KEY}/20261126/us-east-1/ses/aws4_request"),
            signed_headers: "host;x-amz-date",
            algorithm: sigv4::ALGORITHM,
            extra: vec![],
            body: b"{}",
            authorization: true,
        }
    }

    fn build(&self) -> axum::extract::Request {
        let mut headers = vec![("host".to_owned(), HOST.to_owned())];
        if let Some(d) = self.amz_date {
            headers.push(("x-amz-date".to_owned(), d.to_owned()));
        }
        for (k, v) in &self.extra {
            headers.push(((*k).to_owned(), (*v).to_owned()));
        }
        if self.authorization {
            let auth = |sig: &str| {
                format!(
                    "{} Credential={}, SignedHeaders={}, Signature={sig}",
                    self.algorithm, self.credential, self.signed_headers
                )
            };
            headers.push(("authorization".to_owned(), auth("00")));
            let req = sigv4::Request {
                method: self.method,
                raw_path: self.path,
                raw_query: self.query,
                headers: &headers,
                body: self.body,
            };
            // A request the precheck refuses may not parse, and one with a wrong body hash has
            // no canonical form: they keep the signature `00`.
            if let Ok(parsed) = sigv4::parse(&req)
                && let Ok(canonical) =
                    sigv4::canonical_request(&req, &parsed, PathRules::AWS_SERVICE)
            {
                let sig = sigv4::signature(
                    &sigv4::signing_key(SECRET, &parsed),
                    &sigv4::string_to_sign(&parsed, &canonical),
                );
                headers.last_mut().unwrap().1 = auth(&sig);
            }
        }
        let uri = match self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.to_owned(),
        };
        let mut b = axum::http::Request::builder().method(self.method).uri(uri);
        for (k, v) in &headers {
            b = b.header(k, v);
        }
        b.body(Body::from(self.body.to_vec())).unwrap()
    }
}

/// Sends `req` through the whole pipeline; returns the status, the AWS error code (empty on
/// success) and how often the credential was looked up.
async fn run(req: &Req<'_>, panics: bool) -> (u16, String, usize) {
    let lookup = Arc::new(Lookup {
        calls: AtomicUsize::new(0),
        panics,
    });
    let resp = handle(State(Arc::new(testing::state(lookup.clone()))), req.build()).await;
    let status = resp.status().as_u16();
    let code = resp
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, code, lookup.calls.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_failing_the_precheck_never_reach_the_credential_lookup() {
    let scope = |date: &str, region: &str, service: &str| {
        format!("{KEY}/{date}/{region}/{service}/aws4_request")
    };
    let big = vec![b' '; crate::limits::MAX_BODY_BYTES + 1];
    let cases: Vec<(&str, Req<'_>, &str)> = vec![
        (
            "no signature",
            Req {
                authorization: false,
                ..Req::good()
            },
            "MissingAuthenticationTokenException",
        ),
        (
            "wrong region",
            Req {
                credential: scope("20261126", "eu-west-1", "ses"),
                ..Req::good()
            },
            "InvalidSignatureException",
        ),
        (
            "wrong service",
            Req {
                credential: scope("20261126", "us-east-1", "s3"),
                ..Req::good()
            },
            "InvalidSignatureException",
        ),
        (
            "scope date not the request's",
            Req {
                credential: scope("20261125", "us-east-1", "ses"),
                ..Req::good()
            },
            "InvalidSignatureException",
        ),
        (
            "stale",
            Req {
                amz_date: Some("20261126T114400Z"),
                ..Req::good()
            },
            "InvalidSignatureException",
        ),
        (
            "from the future",
            Req {
                amz_date: Some("20261126T121600Z"),
                ..Req::good()
            },
            "InvalidSignatureException",
        ),
        (
            "no X-Amz-Date",
            Req {
                amz_date: None,
                ..Req::good()
            },
            "IncompleteSignatureException",
        ),
        (
            "host not signed",
            Req {
                signed_headers: "x-amz-date",
                ..Req::good()
            },
            "InvalidSignatureException",
        ),
        (
            "another algorithm",
            Req {
                algorithm: "AWS4-HMAC-SHA512",
                ..Req::good()
            },
            "IncompleteSignatureException",
        ),
        (
            "malformed credential",
            Req {
                credential: format!("{KEY}/20261126/us-east-1"),
                ..Req::good()
            },
            "IncompleteSignatureException",
        ),
        (
            "a session token",
            Req {
                extra: vec![("x-amz-security-token", "token")],
                ..Req::good()
            },
            "UnrecognizedClientException",
        ),
        (
            "a query that is not UTF-8",
            Req {
                query: Some("NextToken=%FF"),
                ..Req::good()
            },
            "BadRequestException",
        ),
        (
            "a body over the limit",
            Req {
                body: &big,
                ..Req::good()
            },
            "RequestEntityTooLargeException",
        ),
    ];
    for (what, req, expected) in &cases {
        let (status, code, calls) = run(req, true).await;
        assert_eq!(code, *expected, "{what}");
        assert!(matches!(status, 400 | 403 | 413), "{what}: {status}");
        assert_eq!(calls, 0, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_passing_the_precheck_is_looked_up_exactly_once() {
    assert_eq!(run(&Req::good(), false).await, (200, String::new(), 1));
    // An unknown key passes the precheck too; only the lookup can refuse it.
    let unknown = Req {
        credential: "AKIDUNKNOWN/20261126/us-east-1/ses/aws4_request".into(),
        ..Req::good()
    };
    assert_eq!(
        run(&unknown, false).await,
        (403, "UnrecognizedClientException".into(), 1)
    );
    // So does a bad signature of a known key: the lookup comes first, then the HMAC.
    let forged = Req {
        extra: vec![("x-amz-content-sha256", "00")],
        ..Req::good()
    };
    assert_eq!(
        run(&forged, false).await,
        (403, "InvalidSignatureException".into(), 1)
    );
}
