//! The HTTP edge under fuzzing: `sesame_api::app` over in-memory fakes (core's `MemStore`,
//! `FakeVault` and `ManualClock`, sesame-mail's real `Mail` over a sink, plus a fixed
//! credential and plain page tokens defined here), a parser from raw HTTP/1.1 bytes to an `http::Request`, SigV4 signing with
//! the real `aws-sigv4` crate at the fake clock's time, and the checks every response must pass.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use axum::body::Body;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sesame_api::handlers::PageTokens;
use sesame_api::throttle::{SourceThrottle, Throttle};
use sesame_api::{ApiState, Credential, CredentialLookup, Secret};
use sesame_core::Error;
use sesame_core::app::{Config, UseCases};
use sesame_core::model::{AccountId, EmailAddress, Timestamp};
use sesame_core::testing::{FakeVault, ManualClock, MemStore};
use sesame_core::verification::{Observation, RecordCheck, VerifyPolicy};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use tower::ServiceExt;

/// The one enabled access key.
pub const KEY_ID: &str = "AKIDFUZZEXAMPLE";
/// A key that exists but is disabled: it must authenticate nothing.
pub const DISABLED_KEY_ID: &str = "AKIDFUZZDISABLED";
/// The secret of both keys.
pub const SECRET: &str = "fuzzSecretKey/EXAMPLE+wJalrXUtnFEMI/K7MDENG";
/// The account both keys belong to.
pub const ACCOUNT: &str = "123456789012";
/// The region the state serves.
pub const REGION: &str = "us-east-1";
/// The `Host` given to requests that carry none (signing needs one).
pub const HOST: &str = "email.us-east-1.amazonaws.com";
/// The fake clock's time, 2026-12-01T12:00:00Z: signatures are made and checked at it.
pub const NOW_SECS: u64 = 1_796_126_400;

/// SigV4 `UriEncode`: RFC 3986 unreserved characters stay.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The error codes that mean "not authenticated"; a correctly signed request never gets one.
const AUTH_CODES: [&str; 4] = [
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
];

struct FixedCredentials;

impl CredentialLookup for FixedCredentials {
    fn lookup(&self, access_key_id: &str) -> Result<Option<Credential>, Error> {
        let enabled = match access_key_id {
            KEY_ID => true,
            DISABLED_KEY_ID => false,
            _ => return Ok(None),
        };
        Ok(Some(Credential {
            account: AccountId::parse(ACCOUNT)?,
            secret: Secret(SECRET.to_owned()),
            enabled,
        }))
    }
}

/// Unsealed page tokens: the fuzzer can then forge any payload, which reaches the handler's
/// own payload checks (account and filter binding) instead of stopping at the seal.
struct PlainPageTokens;

const PAGE_PREFIX: &[u8] = b"page:";

impl PageTokens for PlainPageTokens {
    fn seal(&self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        Ok([PAGE_PREFIX, payload].concat())
    }
    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        sealed.strip_prefix(PAGE_PREFIX).map(<[u8]>::to_vec)
    }
}

/// SendEmail's delivery: a sink. Composing and reading messages is sesame-mail's own code, so
/// the fuzzer reaches it; `FakeVault` signs with a placeholder header.
struct NullMail;

impl sesame_mail::Delivery for NullMail {
    fn deliver(
        &self,
        _message_id: &str,
        _from: &EmailAddress,
        _recipients: &[EmailAddress],
        _message: &[u8],
    ) -> Result<(), Error> {
        Ok(())
    }
}

/// A fresh state for one input, so an input's outcome never depends on earlier inputs.
pub fn state(inline_reads: bool) -> Arc<ApiState> {
    let clock = Arc::new(ManualClock::new(Timestamp(NOW_SECS as i64 * 1000)));
    let store = Arc::new(MemStore::default());
    let vault = Arc::new(FakeVault::default());
    let service = UseCases::new(
        store,
        vault,
        clock.clone(),
        Arc::new(sesame_mail::Mail::new(NullMail)),
        Config {
            max_identities: 20,
            dkim_zone: "dkim.sesame.test".into(),
            // Due at once, so the setup can verify its domain without moving the clock.
            verify: VerifyPolicy {
                first_interval_ms: 0,
                ..Default::default()
            },
            rotation: Default::default(),
            mail_from: sesame_core::verification::MailFromHosts::under("dkim.sesame.test"),
            envelope_domain: sesame_core::model::DomainName::parse("mail.dkim.sesame.test")
                .expect("a valid domain"),
            links: Config::with_zone("dkim.sesame.test", 20)
                .expect("a valid zone")
                .links,
            revoked_key_mail: Default::default(),
        },
    );
    Arc::new(ApiState {
        service: Arc::new(service),
        region: REGION.into(),
        credentials: Arc::new(FixedCredentials),
        pages: Arc::new(PlainPageTokens),
        clock,
        // Unlimited: a throttled request stops before the handlers the fuzzer should reach.
        throttle: Throttle::new(0, 0),
        // No `PeerAddr` reaches the edge here, so this budget is never consulted.
        auth_failures: SourceThrottle::new(0, 0),
        body_timeout: Duration::from_secs(10),
        signing_keys: Default::default(),
        inline_reads,
        metrics: Arc::new(sesame_metrics::Metrics::new("fuzz")),
        access_log: sesame_api::AccessLog::inline(),
        request_scope: None,
    })
}

/// A request before it is handed to axum.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The method.
    pub method: Method,
    /// The request target.
    pub uri: Uri,
    /// Headers, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Everything after the header section.
    pub body: Vec<u8>,
}

/// Parses an HTTP/1.1 request head with httparse; the rest of the input is the body (the
/// edge sees a complete body whatever `Content-Length` says, as hyper would hand it one).
pub fn parse_request(raw: &[u8]) -> Option<RawRequest> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head_len) = req.parse(raw).ok()? else {
        return None;
    };
    let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
    let uri: Uri = req.path?.parse().ok()?;
    let mut out = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        out.push((
            HeaderName::from_bytes(h.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(h.value).ok()?,
        ));
    }
    Some(RawRequest {
        method,
        uri,
        headers: out,
        body: raw[head_len..].to_vec(),
    })
}

/// Where the signature goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// The `Authorization` header.
    Header,
    /// A presigned URL (`X-Amz-*` query parameters).
    Query,
}

fn form_decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Signs `req` in place as an SDK would, with `key_id` and the fixed secret at `NOW_SECS`.
/// Whatever signature material the input carried is removed first, since it would compete
/// with ours. `false` if aws-sigv4 cannot sign this request (the request is then unsigned).
pub fn sign_request(req: &mut RawRequest, signing: Signing, key_id: &str) -> bool {
    const STRIP: [&str; 4] = [
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    ];
    req.headers.retain(|(n, v)| {
        !(STRIP.contains(&n.as_str()) && (signing == Signing::Header || n != "x-amz-date"))
            && std::str::from_utf8(v.as_bytes()).is_ok()
    });
    // aws-sigv4 collapses only runs of spaces in header values (as S3 does), Sesame collapses
    // every Unicode whitespace run (as botocore does): a tab or NBSP in a signed header breaks
    // the signature (fuzz/artifacts-found/README.md). Until that is settled, spaces only.
    for (_, v) in req.headers.iter_mut() {
        if let Ok(text) = std::str::from_utf8(v.as_bytes())
            && text.chars().any(|c| c.is_whitespace() && c != ' ')
        {
            let spaced: String = text
                .chars()
                .map(|c| if c.is_whitespace() { ' ' } else { c })
                .collect();
            if let Ok(spaced) = HeaderValue::from_str(&spaced) {
                *v = spaced;
            }
        }
    }
    if !req.headers.iter().any(|(n, _)| n == "host") {
        req.headers
            .insert(0, (http::header::HOST, HeaderValue::from_static(HOST)));
    }
    let path = req.uri.path().to_owned();
    let query: Option<String> = req.uri.query().map(|q| {
        q.split('&')
            .filter(|p| {
                let key = p.split_once('=').map_or(*p, |(k, _)| k);
                !form_decode(key).to_ascii_lowercase().starts_with("x-amz-")
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    let target = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    // aws-sigv4 signs the `host` header given, so the URL's authority only has to parse: the
    // input's own host could carry a path (`h/x`) and move the path aws-sigv4 signs.
    let url = format!("http://{HOST}{target}");
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), std::str::from_utf8(v.as_bytes()).ok()?)))
        .collect();
    let mut settings = SigningSettings::default();
    if signing == Signing::Query {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(300));
    }
    let identity = Credentials::new(key_id, SECRET, None, None, "fuzz").into();
    let Ok(params) = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(sesame_api::SIGNING_NAME)
        .time(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS))
        .settings(settings)
        .build()
    else {
        return false;
    };
    let params = params.into();
    let Ok(signable) = SignableRequest::new(
        req.method.as_str(),
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&req.body),
    ) else {
        return false;
    };
    let Ok(out) = sign(signable, &params) else {
        return false;
    };
    let (instructions, _) = out.into_parts();
    let mut added = Vec::new();
    for (name, value) in instructions.headers() {
        let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) else {
            return false;
        };
        added.push((n, v));
    }
    let extra: Vec<String> = instructions
        .params()
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, UNRESERVED),
                utf8_percent_encode(v, UNRESERVED)
            )
        })
        .collect();
    if !extra.is_empty() {
        let joined = match query.as_deref() {
            Some(q) if !q.is_empty() => format!("{q}&{}", extra.join("&")),
            _ => extra.join("&"),
        };
        let Ok(uri) = format!("{path}?{joined}").parse() else {
            return false;
        };
        req.uri = uri;
    } else if let Ok(uri) = target.parse() {
        // The input's own X-Amz-* parameters are gone from what was signed, so they go from
        // what is sent too.
        req.uri = uri;
    } else {
        return false;
    }
    for (n, v) in added {
        req.headers.retain(|(old, _)| *old != n);
        req.headers.push((n, v));
    }
    true
}

/// The response as the checks read it.
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `x-amzn-ErrorType`.
    pub error_type: Option<String>,
    /// Whether `x-amzn-RequestId` was set.
    pub request_id: bool,
    /// The body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("error_type", &self.error_type)
            .field("request_id", &self.request_id)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        // The edge times body reads, so the time driver is needed.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    })
}

/// Sends `req` through the whole edge (`sesame_api::app`) and reads the whole response.
pub fn send(state: &Arc<ApiState>, req: RawRequest) -> Answer {
    let mut builder = Request::builder().method(req.method).uri(req.uri);
    for (n, v) in req.headers {
        builder = builder.header(n, v);
    }
    let request = builder
        .body(Body::from(req.body))
        .expect("parts that were valid one by one make a request");
    let app = sesame_api::app(state.clone());
    runtime().block_on(async move {
        let response = app
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("a complete in-memory body");
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        Answer {
            status: parts.status,
            content_type: header("content-type"),
            error_type: header("x-amzn-errortype"),
            request_id: parts.headers.contains_key("x-amzn-requestid"),
            body: body.to_vec(),
        }
    })
}

/// How the request was sent, for the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// As the input gave it: no valid signature unless the input replays one.
    AsIs,
    /// Correctly signed with the enabled key.
    Signed,
    /// Correctly signed with the disabled key.
    SignedDisabled,
}

/// What every response must satisfy: the restJson1 shape AWS SDKs parse, no 5xx but the 501
/// of an unsupported operation, and authentication agreeing with aws-sigv4's signature.
pub fn check(answer: &Answer, sent: Sent) {
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/json"),
        "{answer:?}"
    );
    assert!(answer.request_id, "no x-amzn-RequestId: {answer:?}");
    let json: serde_json::Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {answer:?}"));
    assert!(json.is_object(), "body is not a JSON object: {answer:?}");
    let code = if answer.status.is_success() {
        assert!(
            answer.error_type.is_none(),
            "a success with an error type: {answer:?}"
        );
        None
    } else {
        let code = answer
            .error_type
            .as_deref()
            .unwrap_or_else(|| panic!("an error without x-amzn-ErrorType: {answer:?}"));
        assert_eq!(
            json["__type"].as_str(),
            Some(code),
            "__type disagrees with x-amzn-ErrorType: {answer:?}"
        );
        assert!(
            json["message"].is_string(),
            "an error without a message: {answer:?}"
        );
        Some(code)
    };
    if answer.status.is_server_error() {
        assert!(
            answer.status == StatusCode::NOT_IMPLEMENTED
                && code == Some("UnsupportedOperationException"),
            "a client's request got a server error: {answer:?}"
        );
    }
    match sent {
        Sent::AsIs => {}
        Sent::Signed => assert!(
            !code.is_some_and(|c| AUTH_CODES.contains(&c)),
            "a request aws-sigv4 signed correctly was not authenticated: {answer:?}"
        ),
        Sent::SignedDisabled => assert!(
            !answer.status.is_success() && code != Some("UnsupportedOperationException"),
            "a disabled key authenticated a request: {answer:?}"
        ),
    }
}

/// The identities every input's state starts with, so Get/Put/Delete/SendEmail reach an
/// existing identity: one domain (Easy DKIM) and one address.
const SETUP: [&[u8]; 2] = [
    b"POST /v2/email/identities HTTP/1.1\r\ncontent-type: application/json\r\n\r\n{\"EmailIdentity\":\"example.com\"}",
    b"POST /v2/email/identities HTTP/1.1\r\ncontent-type: application/json\r\n\r\n{\"EmailIdentity\":\"sender@example.org\"}",
];

/// A state for one input, with the `SETUP` identities created through the edge itself and
/// the domain verified (every DKIM record seen), so SendEmail from it reaches signing.
pub fn populated_state(inline_reads: bool) -> Arc<ApiState> {
    let st = state(inline_reads);
    for raw in SETUP {
        let mut req = parse_request(raw).expect("setup requests parse");
        assert!(sign_request(&mut req, Signing::Header, KEY_ID));
        let answer = send(&st, req);
        assert_eq!(answer.status, StatusCode::OK, "setup failed: {answer:?}");
    }
    for due in st.service.checks.claim_due_checks(10).expect("claim") {
        let seen = Observation {
            records: due.records.iter().map(|_| RecordCheck::Valid).collect(),
            soa: None,
        };
        st.service
            .checks
            .record_check(due.identity, &seen)
            .expect("record a check");
    }
    st
}

/// One fuzz input: the first byte picks how the rest (raw HTTP/1.1 request bytes) is sent.
/// Bits 0-1: 0 and 1 as is, 2 signed in the header, 3 presigned; bit 2: the disabled key;
/// bit 3: reads inline on the worker rather than on the blocking pool.
pub fn run(data: &[u8]) {
    let Some((&mode, raw)) = data.split_first() else {
        return;
    };
    let Some(mut req) = parse_request(raw) else {
        return;
    };
    let signing = match mode & 3 {
        2 => Some(Signing::Header),
        3 => Some(Signing::Query),
        _ => None,
    };
    let disabled = mode & 4 != 0;
    let key = if disabled { DISABLED_KEY_ID } else { KEY_ID };
    let sent = match signing {
        Some(s) if sign_request(&mut req, s, key) => {
            if disabled {
                Sent::SignedDisabled
            } else {
                Sent::Signed
            }
        }
        _ => Sent::AsIs,
    };
    let st = populated_state(mode & 8 != 0);
    let answer = send(&st, req);
    if std::env::var_os("FUZZ_TRACE").is_some() {
        // For judging seeds: what each input reached.
        eprintln!(
            "{sent:?} {} {:?} {}",
            answer.status,
            answer.error_type,
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
        );
    }
    check(&answer, sent);
}
