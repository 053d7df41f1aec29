//! Every variant of both error enums, each with the code and status a client must see,
//! checked against the SESv2 model and rendered through the real handler.
//!
//! The model is the vendored `tests/data/sesv2-service-2.json` (its exception shapes:
//! `httpStatusCode`, and `fault` for the server's faults, which model-facts.json omits).
use super::*;
use serde_json::Value;
use sesame_core::error::{Limit, Missing, Rejection};

/// What a client must see for one error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    code: &'static str,
    status: u16,
    /// `ApiError::is_auth_failure`: counted against the source's failure budget.
    auth: bool,
    /// The cause goes to the log only (`log_detail`), never to the client.
    logged: bool,
}

const fn x(code: &'static str, status: u16) -> Expected {
    Expected {
        code,
        status,
        auth: false,
        logged: false,
    }
}

/// One table per enum: each line is a pattern, a sample of it and what the client sees.
/// The match in `expected` is generated from the same lines and has no wildcard, so a new
/// variant compiles only once it has a line here, and with it a sample that is checked.
macro_rules! cases {
    ($expected:ident, $samples:ident, $ty:ty; $( $pat:pat => $sample:expr, $want:expr; )*) => {
        fn $expected(e: &$ty) -> Expected {
            match e {
                $( $pat => $want, )*
            }
        }
        /// A sample of every line, with the pattern it must match.
        fn $samples() -> Vec<($ty, fn(&$ty) -> bool, &'static str)> {
            vec![$( ($sample, |e: &$ty| matches!(e, $pat), stringify!($pat)) ),*]
        }
    };
}

cases! {
    expected_domain, domain_samples, Error;
    Error::NotFound(_) => Error::NotFound(Missing::Identity("example.com".into())),
        x("NotFoundException", 404);
    Error::AlreadyExists(_) => Error::AlreadyExists("example.com".into()),
        x("AlreadyExistsException", 400);
    Error::Invalid(_) => Error::Invalid(Invalid::NameTooLong),
        x("BadRequestException", 400);
    Error::LimitExceeded(_) => Error::LimitExceeded(Limit::Templates),
        x("LimitExceededException", 400);
    Error::MessageRejected(_) => Error::MessageRejected(Rejection::NotVerified(vec!["a@example.com".into()])),
        x("MessageRejected", 400);
    Error::ConcurrentModification(_) => Error::ConcurrentModification("example.com".into()),
        x("ConcurrentModificationException", 500);
    Error::Unavailable(_) => Error::Unavailable("sqlite: database is locked at /secret/db".into()),
        Expected { logged: true, ..x("ServiceUnavailable", 503) };
    Error::Internal(_) => Error::Internal("sqlite: disk I/O error at /secret/db".into()),
        Expected { logged: true, ..x("InternalServiceErrorException", 500) };
}

const fn auth(code: &'static str) -> Expected {
    Expected {
        auth: true,
        ..x(code, 403)
    }
}

cases! {
    expected_edge, edge_samples, EdgeError;
    EdgeError::UnknownOperation { path_known: false, .. } => EdgeError::UnknownOperation {
        method: "GET".into(), path: "/v2/nothing".into(), path_known: false },
        x("UnknownOperationException", 404);
    EdgeError::UnknownOperation { path_known: true, .. } => EdgeError::UnknownOperation {
        method: "PATCH".into(), path: "/v2/email/identities".into(), path_known: true },
        x("UnknownOperationException", 404);
    EdgeError::Unsupported(_) => EdgeError::Unsupported("GetAccount"),
        x("UnsupportedOperationException", 501);
    EdgeError::BadLabel(_) => EdgeError::BadLabel("EmailIdentity"),
        x("BadRequestException", 400);
    EdgeError::BadQuery => EdgeError::BadQuery,
        x("BadRequestException", 400);
    EdgeError::Serialization(_) => EdgeError::Serialization("expected value".into()),
        x("BadRequestException", 400);
    EdgeError::TooLarge(_) => EdgeError::TooLarge(262_144),
        x("RequestEntityTooLargeException", 413);
    EdgeError::Auth(SigError::Missing) => EdgeError::Auth(SigError::Missing),
        auth("MissingAuthenticationTokenException");
    EdgeError::Auth(SigError::Incomplete(_)) =>
        EdgeError::Auth(SigError::Incomplete("requires 'Signature' parameter".into())),
        auth("IncompleteSignatureException");
    EdgeError::Auth(SigError::Invalid(_)) =>
        EdgeError::Auth(SigError::Invalid("Signature expired".into())),
        auth("InvalidSignatureException");
    EdgeError::Auth(SigError::UnrecognizedClient) => EdgeError::Auth(SigError::UnrecognizedClient),
        auth("UnrecognizedClientException");
    EdgeError::Throttled => EdgeError::Throttled,
        x("TooManyRequestsException", 429);
    EdgeError::SourceThrottled => EdgeError::SourceThrottled,
        x("TooManyRequestsException", 429);
    EdgeError::BodyTimeout(_) => EdgeError::BodyTimeout(10),
        x("RequestTimeout", 408);
    EdgeError::InvalidNextToken => EdgeError::InvalidNextToken,
        x("BadRequestException", 400);
}

/// Codes Sesame answers that are not SESv2 model shapes: AWS's protocol-level codes
/// (what its JSON endpoints answer for a missing or bad signature, an unknown key or
/// operation) and ours for conditions the model does not name.
const PROTOCOL_CODES: &[&str] = &[
    "ServiceUnavailable",
    "UnknownOperationException",
    "UnsupportedOperationException",
    "RequestEntityTooLargeException",
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
    "RequestTimeout",
];

fn facts() -> Value {
    serde_json::from_str(include_str!("../../../../tests/data/model-facts.json")).unwrap()
}

/// The model's exception shapes: `{code: {httpStatusCode, senderFault, operations}}`,
/// `senderFault` being the absence of `"fault": true` and `operations` how many
/// operations list the shape among their errors.
fn model_exceptions() -> Value {
    let model: Value =
        serde_json::from_str(include_str!("../../../../tests/data/sesv2-service-2.json")).unwrap();
    let operations = model["operations"].as_object().unwrap();
    let mut out = serde_json::Map::new();
    for (name, shape) in model["shapes"].as_object().unwrap() {
        if shape["exception"] != true {
            continue;
        }
        let listed = operations
            .values()
            .filter(|op| {
                op["errors"]
                    .as_array()
                    .is_some_and(|es| es.iter().any(|e| e["shape"] == name.as_str()))
            })
            .count();
        out.insert(
            name.clone(),
            serde_json::json!({
                "httpStatusCode": shape["error"]["httpStatusCode"],
                "senderFault": shape["fault"] != true,
                "operations": listed,
            }),
        );
    }
    assert!(out.len() >= 13, "{} exception shapes", out.len());
    Value::Object(out)
}

/// The model and model-facts.json (what the matrix test reads) agree on the exception
/// shapes, their statuses and who lists them, and a fault is a 5xx as in every AWS model.
#[test]
fn the_exception_table_agrees_with_the_model_facts() {
    let facts = facts();
    let exceptions = model_exceptions();
    let names = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(names(&exceptions), names(&facts["errors"]));
    for (name, e) in exceptions.as_object().unwrap() {
        assert_eq!(e["httpStatusCode"], facts["errors"][name], "{name}");
        let listed = facts["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|op| op["errors"].as_array().unwrap().iter().any(|n| n == name))
            .count();
        assert_eq!(e["operations"], listed, "{name}");
        let status = e["httpStatusCode"].as_u64().unwrap();
        assert_eq!(e["senderFault"], status < 500, "{name}");
    }
}

/// Checks one mapped error against its table line and the model.
fn check(what: &str, got: &ApiError, want: Expected, samples_message: &str) {
    assert_eq!(got.code, want.code, "{what}: code");
    assert_eq!(got.status.as_u16(), want.status, "{what}: status");
    assert_eq!(got.is_auth_failure(), want.auth, "{what}: auth failure");
    assert_eq!(got.log_detail.is_some(), want.logged, "{what}: logged");
    assert!(!got.message.is_empty(), "{what}: a message for the client");
    if want.logged {
        // The cause stays in the log.
        assert!(!got.message.contains("/secret/"), "{what}: {}", got.message);
        assert!(
            got.log_detail.as_deref().unwrap().contains(samples_message),
            "{what}"
        );
    }
    let exceptions = model_exceptions();
    match exceptions.get(want.code) {
        Some(shape) => {
            assert!(!PROTOCOL_CODES.contains(&want.code), "{what}");
            assert_eq!(
                shape["httpStatusCode"],
                u64::from(want.status),
                "{what}: the model's httpStatusCode of {}",
                want.code
            );
            assert_eq!(
                shape["senderFault"],
                want.status < 500,
                "{what}: the model's fault of {}",
                want.code
            );
            assert!(
                shape["operations"].as_u64().unwrap() > 0,
                "{what}: {} is returned by some operation",
                want.code
            );
        }
        None => assert!(
            PROTOCOL_CODES.contains(&want.code),
            "{what}: {} is neither a model shape nor a protocol code",
            want.code
        ),
    }
}

fn detail(e: &Error) -> String {
    match e {
        Error::Unavailable(d) | Error::Internal(d) => d.clone(),
        other => other.to_string(),
    }
}

#[test]
fn every_domain_error_has_its_code_and_status() {
    let samples = domain_samples();
    for (i, (sample, is_line, pattern)) in samples.into_iter().enumerate() {
        // Each sample belongs to its own line (and so the lines cover distinct variants).
        assert!(is_line(&sample), "sample {i} does not match {pattern}");
        let want = expected_domain(&sample);
        let message = detail(&sample);
        check(pattern, &ApiError::from(sample), want, &message);
    }
}

#[test]
fn every_edge_error_has_its_code_and_status() {
    for (i, (sample, is_line, pattern)) in edge_samples().into_iter().enumerate() {
        assert!(is_line(&sample), "sample {i} does not match {pattern}");
        let want = expected_edge(&sample);
        check(pattern, &ApiError::from(sample), want, "");
    }
    // Every code the auth failures can have is known as one, and nothing else is.
    for code in AUTH_FAILURES {
        assert!(
            edge_samples()
                .into_iter()
                .any(|(e, _, _)| expected_edge(&e) == auth(code)),
            "{code}"
        );
    }
}

/// Each sample matches its own line only: two lines with overlapping patterns would let
/// one variant's mapping go untested.
#[test]
fn every_line_has_a_sample_of_its_own() {
    let domain = domain_samples();
    for (i, (sample, _, _)) in domain.iter().enumerate() {
        let hits: Vec<usize> = domain
            .iter()
            .enumerate()
            .filter(|(_, (_, is_line, _))| is_line(sample))
            .map(|(j, _)| j)
            .collect();
        assert_eq!(hits, [i]);
    }
    let edge = edge_samples();
    for (i, (sample, _, _)) in edge.iter().enumerate() {
        let hits: Vec<usize> = edge
            .iter()
            .enumerate()
            .filter(|(_, (_, is_line, _))| is_line(sample))
            .map(|(j, _)| j)
            .collect();
        assert_eq!(hits, [i]);
    }
}

/// The rendering: every domain error and every edge error a request can provoke, through
/// `crate::app` over a loopback socket, as an SDK sees it: the status, an
/// `x-amzn-ErrorType` header with the code, and a body that is exactly
/// `{"__type": code, "message": ...}`.
mod rendered {
    use super::*;
    use crate::sigv4::{self, PathRules};
    use crate::testing::{KEY, NOW_MS, SECRET, known_key};
    use crate::throttle::{SourceThrottle, Throttle};
    use crate::{Credential, CredentialLookup, PeerAddr};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// Every network step of a test is bounded by this.
    const DEADLINE: Duration = Duration::from_secs(30);

    /// Credentials: the next lookup fails with a queued domain error, else `KEY` is known.
    #[derive(Default)]
    struct Keys {
        fail_next: Mutex<Option<Error>>,
    }

    impl CredentialLookup for Keys {
        fn lookup(&self, access_key_id: &str) -> Result<Option<Credential>, Error> {
            if let Some(e) = self.fail_next.lock().unwrap().take() {
                return Err(e);
            }
            Ok(known_key(access_key_id))
        }
    }

    struct Server {
        addr: std::net::SocketAddr,
        keys: Arc<Keys>,
    }

    /// Serves `crate::app` on 127.0.0.1:0 with the given budgets; the task ends with the
    /// test's runtime.
    async fn serve(throttle: (u32, u32), source: (u32, u32), body_timeout: Duration) -> Server {
        let keys = Arc::new(Keys::default());
        let mut state = crate::testing::state(keys.clone());
        state.throttle = Throttle::new(throttle.0, throttle.1);
        state.auth_failures = SourceThrottle::new(source.0, source.1);
        state.body_timeout = body_timeout;
        let state = Arc::new(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The listener of the server crate puts the peer in the extensions; here a
        // layer does, so the per-source budget applies.
        let app =
            crate::app(state).layer(axum::Extension(PeerAddr("192.0.2.7:4000".parse().unwrap())));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { addr, keys }
    }

    /// The headers of a request to `path`, signed with `secret` (None: unsigned).
    fn headers(
        method: &str,
        path: &str,
        query: Option<&str>,
        body: &[u8],
        secret: Option<&str>,
        amz_date: &str,
    ) -> Vec<(String, String)> {
        let mut headers = vec![
            (
                "host".to_owned(),
                "email.us-east-1.amazonaws.com".to_owned(),
            ),
            ("x-amz-date".to_owned(), amz_date.to_owned()),
        ];
        let Some(secret) = secret else {
            return headers;
        };
        let scope = format!("{KEY}/{}/us-east-1/ses/aws4_request", &amz_date[..8]);
        let auth = |sig: &str| {
            format!(
                "{} Credential={scope}, SignedHeaders=host;x-amz-date, Signature={sig}",
                sigv4::ALGORITHM
            )
        };
        headers.push(("authorization".to_owned(), auth("00")));
        let req = sigv4::Request {
            method,
            raw_path: path,
            raw_query: query,
            headers: &headers,
            body,
        };
        let parsed = sigv4::parse(&req).unwrap();
        let canonical = sigv4::canonical_request(&req, &parsed, PathRules::AWS_SERVICE).unwrap();
        let sig = sigv4::signature(
            &sigv4::signing_key(secret, &parsed),
            &sigv4::string_to_sign(&parsed, &canonical),
        );
        headers.last_mut().unwrap().1 = auth(&sig);
        headers
    }

    struct Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    /// Sends one HTTP/1.1 request and reads the whole answer (the connection closes).
    /// `declared`: a Content-Length to send instead of the body's.
    async fn send(
        server: &Server,
        head: (&str, &str, Option<&str>),
        headers: &[(String, String)],
        body: &[u8],
        declared: Option<usize>,
    ) -> Answer {
        let (method, path, query) = head;
        let target = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        let mut text = format!("{method} {target} HTTP/1.1\r\nconnection: close\r\n");
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str(&format!(
            "content-length: {}\r\n\r\n",
            declared.unwrap_or(body.len())
        ));
        let exchange = async {
            let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
            conn.write_all(text.as_bytes()).await.unwrap();
            conn.write_all(body).await.unwrap();
            let mut raw = Vec::new();
            conn.read_to_end(&mut raw).await.unwrap();
            raw
        };
        let raw = tokio::time::timeout(DEADLINE, exchange)
            .await
            .unwrap_or_else(|_| panic!("{method} {target}: no answer within {DEADLINE:?}"));
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("{method} {target}: not HTTP: {raw:?}"));
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        Answer {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    /// The answer is `want` in the restJson1 error shape.
    fn assert_rendered(what: &str, got: &Answer, want: Expected) -> String {
        assert_eq!(got.status, want.status, "{what}: status");
        let header = |name: &str| -> Vec<&str> {
            got.headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(
            header("x-amzn-errortype"),
            [want.code],
            "{what}: x-amzn-ErrorType"
        );
        assert_eq!(header("content-type"), ["application/json"], "{what}");
        assert_eq!(header("x-amzn-requestid").len(), 1, "{what}: a request id");
        let body: Value = serde_json::from_slice(&got.body)
            .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {:?}", got.body));
        let members: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(members, ["__type", "message"], "{what}: {body}");
        assert_eq!(body["__type"], want.code, "{what}");
        let message = body["message"].as_str().unwrap().to_owned();
        assert!(!message.is_empty(), "{what}");
        assert!(!message.contains("/secret/"), "{what}: {message}");
        message
    }

    fn now() -> String {
        sigv4::format_amz_date(NOW_MS / 1000)
    }

    /// Method, path and query of a request.
    type Head = (&'static str, &'static str, Option<&'static str>);
    /// Header names and values.
    type Headers = Vec<(String, String)>;

    const GET_IDENTITY: Head = ("GET", "/v2/email/identities/example.com", None);

    /// A signed GET of `GET_IDENTITY`.
    fn signed_get() -> Vec<(String, String)> {
        headers("GET", GET_IDENTITY.1, None, b"", Some(SECRET), &now())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_domain_error_renders_as_rest_json1() {
        let server = serve((0, 0), (0, 0), DEADLINE).await;
        for (sample, _, pattern) in domain_samples() {
            let want = expected_domain(&sample);
            *server.keys.fail_next.lock().unwrap() = Some(sample);
            let got = send(&server, GET_IDENTITY, &signed_get(), b"", None).await;
            assert!(server.keys.fail_next.lock().unwrap().is_none(), "{pattern}");
            let message = assert_rendered(pattern, &got, want);
            if !want.logged {
                // The domain's sentence reaches the client as it is.
                assert!(!message.contains("sqlite"), "{pattern}");
            }
        }
        // And from the service itself, past authentication.
        let got = send(&server, GET_IDENTITY, &signed_get(), b"", None).await;
        assert_rendered(
            "a missing identity",
            &got,
            expected_domain(&Error::NotFound(Missing::Identity(String::new()))),
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_reachable_edge_error_renders_as_rest_json1() {
        let server = serve((0, 0), (0, 0), Duration::from_secs(1)).await;
        let get = GET_IDENTITY.1;
        let stale = sigv4::format_amz_date(NOW_MS / 1000 - 16 * 60);
        let cases: Vec<(&str, Head, Headers, EdgeError)> = vec![
            (
                "no signature",
                GET_IDENTITY,
                headers("GET", get, None, b"", None, &now()),
                EdgeError::Auth(SigError::Missing),
            ),
            (
                "a signature without SignedHeaders",
                GET_IDENTITY,
                {
                    let mut h = headers("GET", get, None, b"", None, &now());
                    h.push((
                        "authorization".into(),
                        format!(
                            "{} Credential={KEY}/20261126/us-east-1/ses/aws4_request, Signature=00",
                            sigv4::ALGORITHM
                        ),
                    ));
                    h
                },
                EdgeError::Auth(SigError::Incomplete(String::new())),
            ),
            (
                "a wrong signature",
                GET_IDENTITY,
                headers("GET", get, None, b"", Some("another secret"), &now()),
                EdgeError::Auth(SigError::Invalid(String::new())),
            ),
            (
                "an expired signature",
                GET_IDENTITY,
                headers("GET", get, None, b"", Some(SECRET), &stale),
                EdgeError::Auth(SigError::Invalid(String::new())),
            ),
            (
                "an unknown access key",
                GET_IDENTITY,
                headers("GET", get, None, b"", Some(SECRET), &now())
                    .into_iter()
                    .map(|(k, v)| (k, v.replace(KEY, "AKIDUNKNOWN")))
                    .collect(),
                EdgeError::Auth(SigError::UnrecognizedClient),
            ),
            (
                "an unknown path",
                ("GET", "/v2/email/nothing", None),
                headers("GET", "/v2/email/nothing", None, b"", Some(SECRET), &now()),
                EdgeError::UnknownOperation {
                    method: String::new(),
                    path: String::new(),
                    path_known: false,
                },
            ),
            (
                "a method the path does not have",
                ("PATCH", "/v2/email/identities", None),
                headers(
                    "PATCH",
                    "/v2/email/identities",
                    None,
                    b"",
                    Some(SECRET),
                    &now(),
                ),
                EdgeError::UnknownOperation {
                    method: String::new(),
                    path: String::new(),
                    path_known: true,
                },
            ),
            (
                "an operation Sesame does not implement",
                ("GET", "/v2/email/account", None),
                headers("GET", "/v2/email/account", None, b"", Some(SECRET), &now()),
                EdgeError::Unsupported("GetAccount"),
            ),
            (
                "a label that is not UTF-8",
                ("GET", "/v2/email/identities/%FF", None),
                headers(
                    "GET",
                    "/v2/email/identities/%FF",
                    None,
                    b"",
                    Some(SECRET),
                    &now(),
                ),
                EdgeError::BadLabel("EmailIdentity"),
            ),
            (
                "a query that is not UTF-8",
                ("GET", "/v2/email/identities", Some("PageSize=%FF")),
                headers(
                    "GET",
                    "/v2/email/identities",
                    Some("PageSize=%FF"),
                    b"",
                    Some(SECRET),
                    &now(),
                ),
                EdgeError::BadQuery,
            ),
            (
                "a NextToken that was never issued",
                (
                    "GET",
                    "/v2/email/identities",
                    Some("NextToken=bm90LWEtdG9rZW4"),
                ),
                headers(
                    "GET",
                    "/v2/email/identities",
                    Some("NextToken=bm90LWEtdG9rZW4"),
                    b"",
                    Some(SECRET),
                    &now(),
                ),
                EdgeError::InvalidNextToken,
            ),
        ];
        for (what, head, h, edge) in cases {
            let got = send(&server, head, &h, b"", None).await;
            assert_rendered(what, &got, expected_edge(&edge));
        }

        let body = b"{\"EmailIdentity\": ";
        let post = ("POST", "/v2/email/identities", None);
        let h = headers("POST", post.1, None, body, Some(SECRET), &now());
        let got = send(&server, post, &h, body, None).await;
        assert_rendered(
            "a body that is not JSON",
            &got,
            expected_edge(&EdgeError::Serialization(String::new())),
        );

        // Refused on the declared length, before a byte of the body is read.
        let h = headers("POST", post.1, None, b"", Some(SECRET), &now());
        let got = send(&server, post, &h, b"", Some(crate::MAX_BODY_BYTES + 1)).await;
        assert_rendered(
            "a body over the limit",
            &got,
            expected_edge(&EdgeError::TooLarge(0)),
        );

        // Ten bytes declared, none sent: the server's body timeout (1 s here) answers.
        let got = send(&server, post, &h, b"", Some(10)).await;
        assert_rendered(
            "a body that never arrives",
            &got,
            expected_edge(&EdgeError::BodyTimeout(0)),
        );
    }

    /// The two budgets: the account's request rate and the source's failed
    /// authentications. A bucket of one refills after a second, so each is asked until it
    /// refuses (a bounded number of times) rather than exactly twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn throttled_requests_render_as_rest_json1() {
        let server = serve((1, 1), (1, 1), DEADLINE).await;
        let mut answers = Vec::new();
        for _ in 0..50 {
            let got = send(&server, GET_IDENTITY, &signed_get(), b"", None).await;
            let throttled = got.status == 429;
            answers.push(got);
            if throttled {
                break;
            }
        }
        let last = answers.last().unwrap();
        assert_eq!(
            last.status,
            429,
            "never throttled in {} requests",
            answers.len()
        );
        assert_rendered("throttled", last, expected_edge(&EdgeError::Throttled));
        assert_rendered(
            "admitted",
            &answers[0],
            expected_domain(&Error::NotFound(Missing::Identity(String::new()))),
        );

        let unsigned = headers("GET", GET_IDENTITY.1, None, b"", None, &now());
        let mut answers = Vec::new();
        for _ in 0..50 {
            let got = send(&server, GET_IDENTITY, &unsigned, b"", None).await;
            let throttled = got.status == 429;
            answers.push(got);
            if throttled {
                break;
            }
        }
        let last = answers.last().unwrap();
        assert_eq!(
            last.status,
            429,
            "source never throttled in {} requests",
            answers.len()
        );
        let message = assert_rendered(
            "source throttled",
            last,
            expected_edge(&EdgeError::SourceThrottled),
        );
        assert!(message.contains("unauthenticated"), "{message}");
        assert_rendered(
            "first failure",
            &answers[0],
            expected_edge(&EdgeError::Auth(SigError::Missing)),
        );
    }
}
