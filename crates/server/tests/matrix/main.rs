//! The bad-input matrix, its own test binary: for every implemented operation, every input
//! member of `tests/data/model-facts.json` (body members at any depth, URI labels, query-string
//! members) gets each of its constraints broken in turn, starting from a valid request, plus
//! whole-body faults and unauthenticated variants. Every case must answer exactly the AWS error
//! its kind calls for (status, `x-amzn-ErrorType`, `__type`) and leave the store and the outbox
//! byte for byte as they were. All cases run in sequence against one server.
//!
//! The server runs with `--verify-interval 24h`, and the cases start only once the verifier
//! has checked every seeded identity (none is due for an hour after that), so from then on
//! only requests write. A resolver of our own (`dns.rs`) verifies `verified.test`, so SendEmail
//! has a valid base request. Two readings of the model are deliberate: an optional member sent
//! as `null` is the member left out (restJson1), so only required members and list or map
//! elements get a null case; and members of structures Sesame does not support (`Template`,
//! `Attachments`, `ListManagementOptions`) are refused as unsupported whatever is wrong in them.
//! `SESAME_MATRIX_LOG=<file>` writes every case with its request and answer.

#[path = "../it/fakedns.rs"]
#[allow(dead_code)]
mod fakedns;
#[path = "../it/harness.rs"]
#[allow(dead_code)]
mod harness;

mod cases;
mod dns;
mod state;

use cases::Kind;
use harness::{RawResponse, Server, raw_request, raw_request_as, rsa_key_b64, say, send};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

const FACTS: &str = include_str!("../../../../tests/data/model-facts.json");

/// The operations Sesame implements (`crates/api/src/routes.rs`); the rest answer 501.
const IMPLEMENTED: &[&str] = &[
    "CreateEmailIdentity",
    "GetEmailIdentity",
    "ListEmailIdentities",
    "DeleteEmailIdentity",
    "PutEmailIdentityDkimAttributes",
    "PutEmailIdentityDkimSigningAttributes",
    "PutEmailIdentityFeedbackAttributes",
    "PutEmailIdentityMailFromAttributes",
    "ListRecommendations",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "SendEmail",
    "CreateCustomVerificationEmailTemplate",
    "GetCustomVerificationEmailTemplate",
    "ListCustomVerificationEmailTemplates",
    "UpdateCustomVerificationEmailTemplate",
    "DeleteCustomVerificationEmailTemplate",
    "SendCustomVerificationEmail",
];

const BAD_REQUEST: (u16, &str) = (400, "BadRequestException");
const NOT_FOUND: (u16, &str) = (404, "NotFoundException");

/// The answer each kind of bad input must get. Anything the edge or a handler refuses as
/// invalid is the model's BadRequestException (400); a valid reference to something that does
/// not exist is NotFoundException (404), except that PutEmailIdentityDkimAttributes answers an
/// unknown identity with BadRequestException as SES does (SES-SEMANTICS.md 3.5).
fn expected(op: &str, kind: Kind) -> (u16, &'static str) {
    use Kind::*;
    match kind {
        TooLong | TooShort | Pattern | NotInEnum | WrongType | Missing | Null | NullElement
        | NotBase64 | BadPercent | Documented => BAD_REQUEST,
        InvalidJson | InvalidUtf8 | JsonArray | DeepNesting | DuplicateMember | TrailingData => {
            BAD_REQUEST
        }
        Unknown if op == "PutEmailIdentityDkimAttributes" => BAD_REQUEST,
        Unknown | Foreign => NOT_FOUND,
        Exists => (400, "AlreadyExistsException"),
        NotVerified => (400, "MessageRejected"),
        // An empty `{EmailIdentity}` leaves a path no operation has: the router's answer.
        EmptyLabel => (404, "UnknownOperationException"),
        OverSize => (413, "RequestEntityTooLargeException"),
        Unsigned => (403, "MissingAuthenticationTokenException"),
        MalformedAuth => (403, "IncompleteSignatureException"),
        BadSignature | WrongSecret | StaleSignature | TamperedBody => {
            (403, "InvalidSignatureException")
        }
        UnknownKey => (403, "UnrecognizedClientException"),
    }
}

/// Errors of the edge, not of the model (which has no shape for them): AWS's codes for them.
const EDGE_ERRORS: &[(&str, u16)] = &[
    ("UnknownOperationException", 404),
    ("RequestEntityTooLargeException", 413),
    ("MissingAuthenticationTokenException", 403),
    ("IncompleteSignatureException", 403),
    ("InvalidSignatureException", 403),
    ("UnrecognizedClientException", 403),
];

/// Cases that answer wrongly or change the store today: product bugs, reported to the lead.
/// Each entry is the start of case ids (`<operation> <member> <kind> <detail>`) and what those
/// cases do now. They run after all other cases, so their effects cannot hide or cause other
/// failures. An entry none of whose cases fails any more fails the test: it goes with the fix.
// Empty since the fixes of issue 12 (ConfigurationOverrides, FeedbackForwardingEmailAddress-
// IdentityArn and EmailTags checked; a body part's Data and a header's Value required; a
// structure written as an array, a member given twice, or 10 000-deep nesting anywhere refused).
const KNOWN_FAILURES: &[(&str, &str)] = &[];

fn known_failure(id: &str) -> Option<usize> {
    KNOWN_FAILURES.iter().position(|(p, _)| id.starts_with(p))
}

/// How a case authenticates.
#[derive(Clone)]
enum Auth {
    Signed,
    Unsigned,
    Malformed,
    /// A correct signature with its last hex digit changed.
    FlippedSignature,
    WrongSecret,
    UnknownKey,
    /// Signed an hour ago (the allowed skew is 5 minutes).
    Stale,
    /// Signed over these bytes, sent with the request's body.
    SignedOver(Vec<u8>),
    /// Signed, with this Content-Length declared and no body sent.
    DeclaredLength(usize),
}

#[derive(Clone)]
struct Req {
    method: String,
    /// Percent-encoded.
    path: String,
    /// Percent-encoded names and values.
    query: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn target(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}?{}", self.path, q.join("&"))
    }
}

struct Case {
    id: String,
    op: &'static str,
    kind: Kind,
    req: Req,
    auth: Auth,
}

/// Percent-encoding of a label or query value: everything but unreserved characters.
fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// An operation with its valid base requests.
struct Op {
    name: &'static str,
    method: String,
    uri: String,
    errors: Vec<String>,
    /// The decoded `{EmailIdentity}` label.
    label: Option<String>,
    /// Decoded query parameters.
    query: Vec<(String, String)>,
    /// Valid bodies: a member is broken in the first one that has it (or its parent).
    bodies: Vec<Value>,
}

impl Op {
    fn request(&self, label: Option<&str>, body: Option<&Value>) -> Req {
        let mut path = self.uri.clone();
        if let Some(l) = label.or(self.label.as_deref()) {
            path = path
                .replace("{EmailIdentity}", &enc(l))
                .replace("{TemplateName}", &enc(l));
        }
        Req {
            method: self.method.clone(),
            path,
            query: self
                .query
                .iter()
                .map(|(k, v)| (k.clone(), enc(v)))
                .collect(),
            body: body
                .map(|b| serde_json::to_vec(b).unwrap())
                .unwrap_or_default(),
        }
    }

    fn base(&self) -> Req {
        self.request(None, self.bodies.first())
    }

    /// The operation's body cap, as the router declares it.
    fn body_limit(&self) -> usize {
        sesame_api::routes::Operation::IMPLEMENTED
            .iter()
            .find(|o| o.name() == self.name)
            .map_or(sesame_api::MAX_BODY_BYTES, |o| o.max_body_bytes())
    }
}

struct Cases<'a> {
    op: &'a Op,
    out: Vec<Case>,
}

impl Cases<'_> {
    fn push(&mut self, what: &str, kind: Kind, detail: &str, req: Req, auth: Auth) {
        self.out.push(Case {
            id: format!("{} {what} {kind:?} {detail}", self.op.name),
            op: self.op.name,
            kind,
            req,
            auth,
        });
    }

    fn signed(&mut self, what: &str, kind: Kind, detail: &str, req: Req) {
        self.push(what, kind, detail, req, Auth::Signed);
    }

    /// The base body `i` changed by `f`.
    fn body(&mut self, what: &str, kind: Kind, detail: &str, i: usize, f: impl FnOnce(&mut Value)) {
        let mut b = self.op.bodies[i].clone();
        f(&mut b);
        let req = self.op.request(None, Some(&b));
        self.signed(what, kind, detail, req);
    }

    /// The base request with query parameter `name` replaced by a raw (encoded) value, or
    /// removed.
    fn query(&mut self, name: &str, kind: Kind, detail: &str, raw: Option<&str>) {
        let mut req = self.op.base();
        let at = req.query.iter().position(|(k, _)| k == name).unwrap();
        match raw {
            Some(v) => req.query[at].1 = v.to_owned(),
            None => {
                req.query.remove(at);
            }
        }
        self.signed(name, kind, detail, req);
    }
}

/// The facts' member cases of one operation, plus its whole-body and authentication cases.
fn model_cases(
    limits: &Map<String, Value>,
    op: &Op,
    arn: &dyn Fn(&str, &str, &str) -> String,
) -> Vec<Case> {
    let mut c = Cases { op, out: vec![] };
    let inputs = cases::inputs(limits, &format!("{}Request", op.name));
    for (name, f) in &inputs.labels {
        assert!(
            name == "EmailIdentity" || name == "TemplateName",
            "the labels of the implemented operations: {name}"
        );
        assert_eq!(f["min"], 1);
        let with_label = |raw: &str| {
            let mut req = op.base();
            req.path = op.uri.replace(&format!("{{{name}}}"), raw);
            req
        };
        if name == "TemplateName" {
            if op.method != "GET" {
                c.signed(name, Kind::EmptyLabel, "\"\"", with_label(""));
            }
            c.signed(name, Kind::BadPercent, "%FF", with_label("%FF"));
            c.signed(
                name,
                Kind::Documented,
                "with space",
                with_label("with%20space"),
            );
            c.signed(
                name,
                Kind::Documented,
                "65 characters",
                with_label(&"t".repeat(65)),
            );
            c.signed(
                name,
                Kind::Unknown,
                "nobody-template",
                with_label("nobody-template"),
            );
            continue;
        }
        // min 1: an empty label. `GET /v2/email/identities/` is not a GetEmailIdentity at all
        // but the legacy ListEmailIdentities form (a valid read), so GET has no such case.
        if op.method != "GET" {
            c.signed(name, Kind::EmptyLabel, "\"\"", with_label(""));
        }
        c.signed(name, Kind::BadPercent, "%FF", with_label("%FF"));
        c.signed(
            name,
            Kind::Documented,
            "not a domain",
            with_label("not%20a%20domain"),
        );
        c.signed(name, Kind::Documented, "a..b.com", with_label("a..b.com"));
        c.signed(
            name,
            Kind::Unknown,
            "nobody.example.com",
            with_label("nobody.example.com"),
        );
    }
    for (name, f) in &inputs.query {
        match name.as_str() {
            "ResourceArn" => {
                assert_eq!(f["min"], 1);
                c.query(name, Kind::TooShort, "0 characters", Some(""));
                c.query(name, Kind::Missing, "absent", None);
                c.query(name, Kind::BadPercent, "%FF", Some("%FF"));
                c.query(name, Kind::Documented, "not an ARN", Some("not-an-arn"));
                let unknown = enc(&arn("us-east-1", "", "nobody.example.com"));
                c.query(name, Kind::Unknown, "nobody.example.com", Some(&unknown));
                let foreign = enc(&arn("us-east-1", "000000000000", "matrix.example.com"));
                c.query(name, Kind::Foreign, "another account", Some(&foreign));
                let region = enc(&arn("eu-west-1", "", "matrix.example.com"));
                c.query(name, Kind::Foreign, "another region", Some(&region));
            }
            "TagKeys" => {
                assert_eq!(f["required"], true);
                c.query(name, Kind::Missing, "absent", None);
                c.query(name, Kind::Documented, "empty key", Some(""));
                c.query(
                    name,
                    Kind::Documented,
                    "129 characters",
                    Some(&"k".repeat(129)),
                );
                c.query(name, Kind::BadPercent, "%FF", Some("%FF"));
            }
            "PageSize" => {
                c.query(name, Kind::Documented, "0", Some("0"));
                c.query(name, Kind::Documented, "51", Some("51"));
                c.query(name, Kind::WrongType, "not a number", Some("ten"));
            }
            "NextToken" => {}
            other => panic!("{}: no query cases for {other}", op.name),
        }
    }
    for member in &inputs.body {
        // The first base that has the member, else the first that has its parent, else the
        // first (its parents are then made from valid samples).
        let has = |steps: &[(cases::Step, Value)]| {
            op.bodies
                .iter()
                .position(|b| cases::get(b, steps).is_some())
        };
        let (_, parent) = member.steps.split_last().unwrap();
        let i = has(&member.steps).or_else(|| has(parent)).unwrap_or(0);
        let current = cases::get(&op.bodies[i], &member.steps).cloned();
        for (kind, detail, m) in cases::member_mutations(limits, member, current.as_ref()) {
            let steps = member.steps.clone();
            c.body(&member.display(), kind, &detail, i, |b| {
                cases::apply(limits, b, &steps, &m)
            });
        }
    }
    if let Some(b) = op.bodies.first() {
        let bytes = serde_json::to_vec(b).unwrap();
        for (kind, detail, raw) in cases::body_faults(&bytes) {
            let mut req = op.base();
            req.body = raw;
            c.signed("body", kind, &detail, req);
        }
    }
    // One byte over the operation's limit: the base body padded with spaces, so the size is
    // the only thing wrong (JSON allows the whitespace).
    let mut req = op.base();
    let limit = op.body_limit();
    if req.body.is_empty() {
        req.body = b"{}".to_vec();
    }
    req.body.resize(limit + 1, b' ');
    c.signed("body", Kind::OverSize, &format!("{} bytes", limit + 1), req);
    // The same declared in Content-Length only: refused before any of the body is read.
    let req = op.base();
    c.push(
        "body",
        Kind::OverSize,
        &format!("Content-Length {} declared, no body sent", limit + 1),
        req,
        Auth::DeclaredLength(limit + 1),
    );
    c.out
}

/// Authentication faults of the base request; they must change nothing.
fn auth_cases(op: &Op) -> Vec<Case> {
    let mut c = Cases { op, out: vec![] };
    let base = op.base();
    c.push(
        "auth",
        Kind::Unsigned,
        "no Authorization",
        base.clone(),
        Auth::Unsigned,
    );
    c.push(
        "auth",
        Kind::MalformedAuth,
        "garbage",
        base.clone(),
        Auth::Malformed,
    );
    c.push(
        "auth",
        Kind::BadSignature,
        "last digit changed",
        base.clone(),
        Auth::FlippedSignature,
    );
    c.push(
        "auth",
        Kind::WrongSecret,
        "another secret",
        base.clone(),
        Auth::WrongSecret,
    );
    c.push(
        "auth",
        Kind::UnknownKey,
        "unknown key id",
        base.clone(),
        Auth::UnknownKey,
    );
    c.push(
        "auth",
        Kind::StaleSignature,
        "an hour old",
        base.clone(),
        Auth::Stale,
    );
    let mut signed_over = base.body.clone();
    signed_over.extend_from_slice(b" ");
    c.push(
        "auth",
        Kind::TamperedBody,
        "body changed after signing",
        base,
        Auth::SignedOver(signed_over),
    );
    c.out
}

/// SigV4 headers for a request, signed at `time` (the harness's `raw_request` signs at now
/// and sends at once; these cases need the headers in hand).
fn sign_headers(
    api: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
    time: SystemTime,
) -> Vec<(String, String)> {
    harness::signed_headers(
        api,
        harness::KEY_ID,
        harness::SECRET,
        method,
        target,
        body,
        time,
    )
}

fn send_with(api: SocketAddr, req: &Req, headers: &[(String, String)]) -> RawResponse {
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        req.body.len()
    ));
    send(api, head.as_bytes(), &req.body)
}

/// Sends a case; `None` if no HTTP response came back (the harness panics on that).
fn run(api: SocketAddr, case: &Case) -> Option<RawResponse> {
    let req = &case.req;
    let target = req.target();
    let plain = || {
        vec![
            ("host".to_owned(), api.to_string()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ]
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &case.auth {
        Auth::Signed => raw_request(api, &req.method, &target, &req.body),
        Auth::WrongSecret => raw_request_as(
            api,
            harness::KEY_ID,
            "not-the-secret-0000000000000000000000000",
            &req.method,
            &target,
            &req.body,
        ),
        Auth::UnknownKey => raw_request_as(
            api,
            "AKIAUNKNOWNMATRIX000",
            harness::SECRET,
            &req.method,
            &target,
            &req.body,
        ),
        Auth::Unsigned => send_with(api, req, &plain()),
        Auth::Malformed => {
            let mut h = plain();
            h.push(("authorization".into(), "AWS4-HMAC-SHA256 garbage".into()));
            send_with(api, req, &h)
        }
        Auth::FlippedSignature => {
            let mut h = sign_headers(api, &req.method, &target, &req.body, SystemTime::now());
            let auth = h.iter_mut().find(|(k, _)| k == "authorization").unwrap();
            let last = auth.1.pop().unwrap();
            auth.1.push(if last == '0' { '1' } else { '0' });
            send_with(api, req, &h)
        }
        Auth::Stale => {
            let then = SystemTime::now() - Duration::from_secs(3600);
            send_with(
                api,
                req,
                &sign_headers(api, &req.method, &target, &req.body, then),
            )
        }
        Auth::DeclaredLength(n) => {
            let mut h = sign_headers(api, &req.method, &target, &req.body, SystemTime::now());
            h.push(("content-length".into(), n.to_string()));
            let mut head = format!("{} {target} HTTP/1.1\r\n", req.method);
            for (k, v) in &h {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("connection: close\r\n\r\n");
            send(api, head.as_bytes(), b"")
        }
        Auth::SignedOver(other) => {
            let h = sign_headers(api, &req.method, &target, other, SystemTime::now());
            send_with(api, req, &h)
        }
    }))
    .ok()
}

/// Whether the response is exactly the expected AWS error (then its message); otherwise what
/// it was.
fn check(resp: Option<&RawResponse>, want: (u16, &str)) -> Result<String, String> {
    let Some(r) = resp else {
        return Err("no HTTP response".into());
    };
    let body: Option<Value> = serde_json::from_str(&r.body).ok();
    let ty = body
        .as_ref()
        .and_then(|v| v["__type"].as_str().map(str::to_owned));
    let message = body
        .as_ref()
        .and_then(|v| v["message"].as_str().map(str::to_owned));
    let header = r.header("x-amzn-ErrorType");
    if r.status == want.0
        && header == Some(want.1)
        && ty.as_deref() == Some(want.1)
        && let Some(m) = message.filter(|m| !m.is_empty())
    {
        return Ok(m);
    }
    let mut shown = r.body.clone();
    if shown.len() > 300 {
        let mut end = 300;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push('…');
    }
    Err(format!(
        "{} x-amzn-ErrorType={header:?} body={shown}",
        r.status
    ))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Waits until the verifier has nothing to do for the next half hour: every DKIM identity
/// checked after its last change, none leased, none due soon (with `--verify-interval 24h` a
/// pending identity's next check is an hour away, a verified one's a day). From then on only
/// requests write to the store.
fn wait_until_verifier_idle(st: &state::State, what: &str, done: impl Fn(&[Vec<String>]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = st.query_strings(
            "SELECT name, dkim_status, v_next_check_at, v_lease_until, v_last_checked FROM identities \
             WHERE dkim_origin IS NOT NULL ORDER BY name",
        );
        let soon = now_ms() + 30 * 60 * 1000;
        let idle = rows.iter().all(|r| {
            r[3] == "NULL"
                && r[4] != "NULL"
                && (r[2] == "NULL" || r[2].parse::<i64>().unwrap() > soon)
        });
        if idle && done(&rows) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the verifier did not settle ({what}): {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ok(r: RawResponse, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what} must succeed: {}", r.body);
    r.json()
}

#[test]
fn bad_input_matrix() {
    let started = Instant::now();
    let facts: Value = serde_json::from_str(FACTS).unwrap();
    let limits = facts["limits"].as_object().unwrap();
    let model_errors = facts["errors"].as_object().unwrap();
    let model_ops: BTreeMap<&str, &Value> = facts["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o))
        .collect();

    let key_zone = "dkim.sesame.internal";
    let resolver = dns::VerifyingDns::start("verified.test", key_zone);
    let dir = tempfile::tempdir().unwrap();
    let resolver_addr = resolver.addr.to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", resolver_addr.as_str()),
            // After its first check an identity is not due again for an hour or more.
            ("SESAME_VERIFY_INTERVAL", "24h"),
            ("SESAME_DKIM_ZONE", key_zone),
            // A thousand requests in a few seconds: the per-account bucket would answer 429.
            ("SESAME_RATE_LIMIT", "0"),
        ],
    );
    let api = server.api;
    let account = server.account.clone();
    let arn = |region: &str, acct: &str, name: &str| {
        let acct = if acct.is_empty() {
            account.as_str()
        } else {
            acct
        };
        format!("arn:aws:ses:{region}:{acct}:identity/{name}")
    };
    let st = state::State::open(dir.path());

    // The identities the cases start from.
    let create = |body: Value| {
        ok(
            raw_request(
                api,
                "POST",
                "/v2/email/identities",
                body.to_string().as_bytes(),
            ),
            &format!("seeding {body}"),
        )
    };
    for name in [
        "matrix.example.com",
        "delete-me.example.com",
        "probe-delete.example.com",
        "me@matrix.example.com",
        "verified.test",
    ] {
        create(json!({"EmailIdentity": name, "Tags": [{"Key": "keep", "Value": "1"}]}));
    }
    let template = |name: &str| {
        json!({
            "TemplateName": name,
            "FromEmailAddress": "verify@verified.test",
            "TemplateSubject": "Confirm",
            "TemplateContent": "<p>Confirm</p>",
            "Tags": [{"Key": "keep", "Value": "1"}],
            "SuccessRedirectionURL": "https://app.example.com/ok",
            "FailureRedirectionURL": "https://app.example.com/no"
        })
    };
    for name in [
        "matrix-template",
        "probe-delete-template",
        "matrix-unverified",
    ] {
        let mut body = template(name);
        if name == "matrix-unverified" {
            // From a domain that stays PENDING: SendCustomVerificationEmail refuses it.
            body["FromEmailAddress"] = json!("verify@matrix.example.com");
        }
        ok(
            raw_request(
                api,
                "POST",
                "/v2/email/custom-verification-email-templates",
                body.to_string().as_bytes(),
            ),
            &format!("seeding the template {name}"),
        );
    }
    wait_until_verifier_idle(&st, "verified.test verified", |rows| {
        rows.iter()
            .any(|r| r[0] == "verified.test" && r[1] == "SUCCESS")
    });
    let token = ok(
        raw_request(
            api,
            "POST",
            "/v2/email/list-identities",
            br#"{"Filter":{"IDENTITY_TYPE":"DOMAIN"},"PageSize":1}"#,
        ),
        "a first page",
    )["NextToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_filter_token = ok(
        raw_request(
            api,
            "POST",
            "/v2/email/list-identities",
            br#"{"Filter":{"VERIFICATION_STATUS":"PENDING"},"PageSize":1}"#,
        ),
        "a first page",
    )["NextToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let byo_key = rsa_key_b64(1024, false);
    let raw_message = data_encoding::BASE64.encode(
        b"From: from@verified.test\r\nTo: to@example.net\r\nSubject: raw\r\n\r\nRaw body.\r\n",
    );
    let matrix_arn = arn("us-east-1", "", "matrix.example.com");
    let op =
        |name: &'static str, label: Option<&str>, query: Vec<(&str, &str)>, bodies: Vec<Value>| {
            let m = model_ops[name];
            Op {
                name,
                method: m["method"].as_str().unwrap().to_owned(),
                uri: m["uri"].as_str().unwrap().to_owned(),
                errors: m["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap().to_owned())
                    .collect(),
                label: label.map(str::to_owned),
                query: query
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                bodies,
            }
        };
    let ops = vec![
        op(
            "CreateEmailIdentity",
            None,
            vec![],
            vec![
                json!({
                    "EmailIdentity": "new.example.com",
                    "Tags": [{"Key": "team", "Value": "matrix"}],
                    "DkimSigningAttributes": {"NextSigningKeyLength": "RSA_1024_BIT"}
                }),
                json!({
                    "EmailIdentity": "new.example.com",
                    "DkimSigningAttributes": {
                        "DomainSigningSelector": "s1",
                        "DomainSigningPrivateKey": byo_key
                    }
                }),
            ],
        ),
        op(
            "GetEmailIdentity",
            Some("matrix.example.com"),
            vec![],
            vec![],
        ),
        op(
            "ListEmailIdentities",
            None,
            vec![],
            vec![json!({
                "Filter": {"IDENTITY_TYPE": "DOMAIN"},
                "PageSize": 1,
                "NextToken": token
            })],
        ),
        op(
            "DeleteEmailIdentity",
            Some("delete-me.example.com"),
            vec![],
            vec![],
        ),
        op(
            "PutEmailIdentityDkimAttributes",
            Some("matrix.example.com"),
            vec![],
            vec![json!({"SigningEnabled": true})],
        ),
        op(
            "PutEmailIdentityDkimSigningAttributes",
            Some("matrix.example.com"),
            vec![],
            vec![
                json!({
                    "SigningAttributesOrigin": "AWS_SES",
                    "SigningAttributes": {"NextSigningKeyLength": "RSA_1024_BIT"}
                }),
                json!({
                    "SigningAttributesOrigin": "EXTERNAL",
                    "SigningAttributes": {
                        "DomainSigningSelector": "s1",
                        "DomainSigningPrivateKey": byo_key
                    }
                }),
            ],
        ),
        op(
            "PutEmailIdentityFeedbackAttributes",
            Some("matrix.example.com"),
            vec![],
            vec![json!({"EmailForwardingEnabled": true})],
        ),
        op(
            "PutEmailIdentityMailFromAttributes",
            Some("matrix.example.com"),
            vec![],
            vec![json!({
                "MailFromDomain": "bounce.matrix.example.com",
                "BehaviorOnMxFailure": "REJECT_MESSAGE"
            })],
        ),
        op(
            "ListRecommendations",
            None,
            vec![],
            vec![json!({"Filter": {"STATUS": "OPEN", "TYPE": "DMARC"}, "PageSize": 10})],
        ),
        op(
            "TagResource",
            None,
            vec![],
            vec![json!({"ResourceArn": matrix_arn, "Tags": [{"Key": "team", "Value": "matrix"}]})],
        ),
        op(
            "UntagResource",
            None,
            vec![("ResourceArn", &matrix_arn), ("TagKeys", "team")],
            vec![],
        ),
        op(
            "ListTagsForResource",
            None,
            vec![("ResourceArn", &matrix_arn)],
            vec![],
        ),
        op(
            "SendEmail",
            None,
            vec![],
            vec![
                json!({
                    "FromEmailAddress": "Matrix <from@verified.test>",
                    "Destination": {
                        "ToAddresses": ["to@example.net"],
                        "CcAddresses": ["cc@example.net"],
                        "BccAddresses": ["bcc@example.net"]
                    },
                    "ReplyToAddresses": ["reply@verified.test"],
                    "FeedbackForwardingEmailAddress": "bounces@verified.test",
                    "Content": {"Simple": {
                        "Subject": {"Data": "Matrix", "Charset": "UTF-8"},
                        "Body": {
                            "Text": {"Data": "Hello.", "Charset": "UTF-8"},
                            "Html": {"Data": "<p>Hello.</p>", "Charset": "UTF-8"}
                        },
                        "Headers": [{"Name": "X-Matrix", "Value": "1"}]
                    }}
                }),
                json!({
                    "FromEmailAddress": "from@verified.test",
                    "Destination": {"ToAddresses": ["to@example.net"]},
                    "Content": {"Raw": {"Data": raw_message}}
                }),
            ],
        ),
        op(
            "CreateCustomVerificationEmailTemplate",
            None,
            vec![],
            vec![template("matrix-new-template")],
        ),
        op(
            "GetCustomVerificationEmailTemplate",
            Some("matrix-template"),
            vec![],
            vec![],
        ),
        op(
            "ListCustomVerificationEmailTemplates",
            None,
            vec![("PageSize", "10")],
            vec![],
        ),
        op(
            "UpdateCustomVerificationEmailTemplate",
            Some("matrix-template"),
            vec![],
            vec![{
                let mut t = template("matrix-template");
                let m = t.as_object_mut().unwrap();
                m.remove("TemplateName");
                m.remove("Tags");
                t
            }],
        ),
        op(
            "DeleteCustomVerificationEmailTemplate",
            Some("matrix-template"),
            vec![],
            vec![],
        ),
        op(
            "SendCustomVerificationEmail",
            None,
            vec![],
            vec![json!({
                "EmailAddress": "invitee@example.net",
                "TemplateName": "matrix-template"
            })],
        ),
    ];
    let names: Vec<&str> = ops.iter().map(|o| o.name).collect();
    assert_eq!(names, IMPLEMENTED, "one entry per implemented operation");

    // Every base request is valid: it succeeds (on a twin identity where it would consume its
    // own; before the snapshots start).
    for o in &ops {
        let n = o.bodies.len().max(1);
        for i in 0..n {
            let mut body = o.bodies.get(i).cloned();
            let mut label = None;
            match o.name {
                "CreateEmailIdentity" => {
                    body.as_mut().unwrap()["EmailIdentity"] = json!(format!("probe{i}.example.com"))
                }
                "DeleteEmailIdentity" => label = Some("probe-delete.example.com"),
                "CreateCustomVerificationEmailTemplate" => {
                    body.as_mut().unwrap()["TemplateName"] = json!(format!("probe-template{i}"))
                }
                "DeleteCustomVerificationEmailTemplate" => label = Some("probe-delete-template"),
                _ => {}
            }
            let req = o.request(label, body.as_ref());
            ok(
                raw_request(api, &req.method, &req.target(), &req.body),
                &format!("the base request {i} of {}", o.name),
            );
        }
    }
    wait_until_verifier_idle(&st, "after the base requests", |_| true);

    let mut all: Vec<Case> = Vec::new();
    for o in &ops {
        all.extend(model_cases(limits, o, &arn));
    }
    all.extend(documented_cases(&ops, &arn, &other_filter_token));
    all.extend(positional_cases(&ops, &matrix_arn));
    for o in &ops {
        if matches!(
            o.name,
            "CreateEmailIdentity"
                | "DeleteEmailIdentity"
                | "PutEmailIdentityDkimSigningAttributes"
                | "PutEmailIdentityFeedbackAttributes"
                | "PutEmailIdentityMailFromAttributes"
                | "CreateCustomVerificationEmailTemplate"
                | "UpdateCustomVerificationEmailTemplate"
                | "DeleteCustomVerificationEmailTemplate"
                | "SendCustomVerificationEmail"
                | "TagResource"
                | "UntagResource"
                | "SendEmail"
        ) {
            all.extend(auth_cases(o));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for c in &all {
        assert!(seen.insert(c.id.clone()), "duplicate case id {}", c.id);
    }

    // The expectation table agrees with the model: a model error is one the operation lists,
    // with the model's status; anything else is one of the edge's.
    for c in &all {
        let (status, code) = expected(c.op, c.kind);
        let o = ops.iter().find(|o| o.name == c.op).unwrap();
        match model_errors.get(code) {
            Some(s) => {
                assert_eq!(s.as_u64(), Some(u64::from(status)), "{code}");
                assert!(
                    o.errors.iter().any(|e| e == code),
                    "{}: {code} is not in the model's list",
                    c.op
                );
            }
            None => assert!(
                EDGE_ERRORS.contains(&(code, status)),
                "{code} {status} is neither a model nor an edge error"
            ),
        }
    }
    for (prefix, _) in KNOWN_FAILURES {
        assert!(
            seen.iter().any(|id| id.starts_with(prefix)),
            "KNOWN_FAILURES names no case: {prefix}"
        );
    }
    // Known failures last: what they change cannot touch the other cases.
    all.sort_by_key(|c| known_failure(&c.id).is_some());
    let log_path = std::env::var_os("SESAME_MATRIX_LOG");
    let mut log = String::new();

    let mut before = st.snapshot();
    let first = before.digest();
    let mut unexpected: Vec<String> = Vec::new();
    let mut changed: Vec<String> = Vec::new();
    let mut known_seen: Vec<String> = Vec::new();
    let mut known_failing = vec![false; KNOWN_FAILURES.len()];
    let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut success_or_5xx = 0;
    let mut clean_digest = None;
    for c in &all {
        if clean_digest.is_none() && known_failure(&c.id).is_some() {
            clean_digest = Some(before.digest());
        }
        *by_kind.entry(c.kind).or_default() += 1;
        let resp = run(api, c);
        let after = st.snapshot();
        let want = expected(c.op, c.kind);
        let answer = check(resp.as_ref(), want);
        if resp
            .as_ref()
            .is_none_or(|r| r.status == 200 || r.status >= 500)
        {
            success_or_5xx += 1;
        }
        let diff = after.changed_sections(&before);
        let known = known_failure(&c.id);
        let failed = answer.is_err() || !diff.is_empty();
        let report = format!(
            "{}\n    request: {} {} body={}\n    expected: {} {}\n    got: {}{}",
            c.id,
            c.req.method,
            c.req.target(),
            shorten(&c.req.body),
            want.0,
            want.1,
            match &answer {
                Ok(m) => format!("as expected: {m}"),
                Err(e) => e.clone(),
            },
            if diff.is_empty() {
                String::new()
            } else {
                format!("\n    changed: {}", diff.join(", "))
            }
        );
        if log_path.is_some() {
            log.push_str(&format!("{report}\n"));
        }
        match (failed, known) {
            (true, Some(k)) => {
                known_failing[k] = true;
                known_seen.push(report);
            }
            (true, None) => {
                if answer.is_err() {
                    unexpected.push(report.clone());
                }
                if !diff.is_empty() {
                    changed.push(report);
                }
            }
            (false, _) => {}
        }
        before = after;
    }
    let last = before.digest();
    if let Some(p) = log_path {
        std::fs::write(p, log).unwrap();
    }
    let fixed: Vec<&str> = KNOWN_FAILURES
        .iter()
        .zip(&known_failing)
        .filter(|(_, failing)| !**failing)
        .map(|((prefix, _), _)| *prefix)
        .collect();

    for r in unexpected.iter().chain(changed.iter()) {
        say(&format!("matrix: FAILED {r}"));
    }
    for r in &known_seen {
        say(&format!("matrix: known failure {r}"));
    }
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k:?} {n}")).collect();
    say(&format!("matrix: kinds: {}", kinds.join(", ")));
    let clean = clean_digest.unwrap_or_else(|| last.clone());
    say(&format!(
        "matrix: store+outbox sha256 {first} before the cases, {clean} before the known \
         failures, {last} after them"
    ));
    say(&format!(
        "matrix: {} cases, {} unexpected, {} changed snapshots; {} cases of the {} KNOWN_FAILURES entries failed as listed; {} answered 200 or 5xx; {:.1}s",
        all.len(),
        unexpected.len(),
        changed.len(),
        known_seen.len(),
        KNOWN_FAILURES.len(),
        success_or_5xx,
        started.elapsed().as_secs_f64()
    ));
    assert!(
        fixed.is_empty(),
        "these KNOWN_FAILURES pass now; remove them: {fixed:#?}"
    );
    assert!(
        unexpected.is_empty() && changed.is_empty(),
        "{} unexpected answers, {} changed snapshots:\n{}",
        unexpected.len(),
        changed.len(),
        unexpected
            .iter()
            .chain(changed.iter())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(resolver);
}

fn shorten(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > 200 {
        format!(
            "{}… ({} bytes)",
            chars[..200].iter().collect::<String>(),
            body.len()
        )
    } else {
        text.into_owned()
    }
}

/// Structures written as JSON arrays of their members' values, in the order of the wire DTOs'
/// fields: a JSON object is the only form restJson1 has for a structure, whatever a
/// deserializer would take.
fn positional_cases(ops: &[Op], matrix_arn: &str) -> Vec<Case> {
    let find = |n: &str| ops.iter().find(|o| o.name == n).unwrap();
    let mut out = Vec::new();
    for (name, body) in [
        ("PutEmailIdentityFeedbackAttributes", json!([true])),
        ("PutEmailIdentityDkimAttributes", json!([true])),
        (
            "CreateEmailIdentity",
            json!(["new.example.com", null, null, null]),
        ),
        ("TagResource", json!([matrix_arn, [["team", "matrix"]]])),
    ] {
        let o = find(name);
        let mut c = Cases { op: o, out: vec![] };
        let mut req = o.base();
        req.body = serde_json::to_vec(&body).unwrap();
        c.signed("body", Kind::JsonArray, "the members' values in order", req);
        out.extend(c.out);
    }
    let mut c = Cases {
        op: find("CreateEmailIdentity"),
        out: vec![],
    };
    c.body(
        "Tags[0]",
        Kind::WrongType,
        "[\"team\",\"matrix\"]",
        0,
        |b| b["Tags"][0] = json!(["team", "matrix"]),
    );
    out.extend(c.out);
    out
}

/// Limits the SES documentation states beyond the model, which Sesame enforces, and references
/// to things that do not exist or are not the caller's.
fn documented_cases(
    ops: &[Op],
    arn: &dyn Fn(&str, &str, &str) -> String,
    other_filter_token: &str,
) -> Vec<Case> {
    let find = |n: &str| ops.iter().find(|o| o.name == n).unwrap();
    let mut out = Vec::new();
    let many_tags: Vec<Value> = (0..51)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    let tag_limits = |c: &mut Cases| {
        c.body("Tags[0].Key", Kind::Documented, "129 characters", 0, |b| {
            b["Tags"][0]["Key"] = json!("k".repeat(129))
        });
        c.body("Tags[0].Key", Kind::Documented, "empty", 0, |b| {
            b["Tags"][0]["Key"] = json!("")
        });
        c.body("Tags[0].Key", Kind::Documented, "aws: prefix", 0, |b| {
            b["Tags"][0]["Key"] = json!("aws:reserved")
        });
        c.body(
            "Tags[0].Value",
            Kind::Documented,
            "257 characters",
            0,
            |b| b["Tags"][0]["Value"] = json!("v".repeat(257)),
        );
        c.body(
            "Tags[0].Value",
            Kind::Documented,
            "a control character",
            0,
            |b| b["Tags"][0]["Value"] = json!("a\u{7}b"),
        );
        c.body("Tags", Kind::Documented, "51 tags", 0, |b| {
            b["Tags"] = Value::Array(many_tags.clone())
        });
    };

    // Custom verification email templates: SES's name rule, absolute http(s) URLs, a subject
    // on one line, a name taken; the same for an Update's members.
    for name in [
        "CreateCustomVerificationEmailTemplate",
        "UpdateCustomVerificationEmailTemplate",
    ] {
        let mut c = Cases {
            op: find(name),
            out: vec![],
        };
        for (member, bad) in [
            ("SuccessRedirectionURL", "app.example.com/ok"),
            ("FailureRedirectionURL", "javascript:alert(1)"),
            ("TemplateSubject", "two\r\nlines"),
            ("FromEmailAddress", "not an address"),
            ("TemplateContent", ""),
        ] {
            c.body(member, Kind::Documented, bad, 0, |b| b[member] = json!(bad));
        }
        if name.starts_with("Create") {
            c.body("TemplateName", Kind::Documented, "with space", 0, |b| {
                b["TemplateName"] = json!("with space")
            });
            c.body("TemplateName", Kind::Exists, "matrix-template", 0, |b| {
                b["TemplateName"] = json!("matrix-template")
            });
        }
        out.extend(c.out);
    }

    // ListRecommendations: the model's filter combinations only, a page of 1 to 100, and
    // its own tokens.
    let mut c = Cases {
        op: find("ListRecommendations"),
        out: vec![],
    };
    c.body("Filter", Kind::Documented, "TYPE with IMPACT", 0, |b| {
        b["Filter"] = json!({"TYPE": "DKIM", "IMPACT": "HIGH"})
    });
    c.body("Filter", Kind::Documented, "RESOURCE_ARN with STATUS", 0, |b| {
        b["Filter"] = json!({"RESOURCE_ARN": "arn:aws:ses:us-east-1:000000000000:identity/x.example.com", "STATUS": "OPEN"})
    });
    c.body("Filter.STATUS", Kind::Documented, "not a status", 0, |b| {
        b["Filter"] = json!({"STATUS": "CLOSED"})
    });
    c.body(
        "Filter.RESOURCE_ARN",
        Kind::Documented,
        "not an ARN",
        0,
        |b| b["Filter"] = json!({"RESOURCE_ARN": "example.com"}),
    );
    for n in [0, 101] {
        c.body("PageSize", Kind::Documented, &format!("{n}"), 0, |b| {
            b["PageSize"] = json!(n)
        });
    }
    c.body("NextToken", Kind::Documented, "a forged token", 0, |b| {
        b["NextToken"] = json!("bm90LWEtdG9rZW4")
    });
    out.extend(c.out);

    // A MAIL FROM domain must be a proper subdomain of the identity's domain, and a host name.
    let mut c = Cases {
        op: find("PutEmailIdentityMailFromAttributes"),
        out: vec![],
    };
    for bad in [
        "matrix.example.com",
        "example.com",
        "other.example.org",
        "xmatrix.example.com",
        "bad_label.matrix.example.com",
        "-x.matrix.example.com",
        "bounce..matrix.example.com",
    ] {
        c.body("MailFromDomain", Kind::Documented, bad, 0, |b| {
            b["MailFromDomain"] = json!(bad)
        });
    }
    out.extend(c.out);

    let mut c = Cases {
        op: find("CreateEmailIdentity"),
        out: vec![],
    };
    for bad in [
        "not a domain",
        "a..b.com",
        "@example.com",
        "x@-bad.com",
        "localhost",
    ] {
        c.body("EmailIdentity", Kind::Documented, bad, 0, |b| {
            b["EmailIdentity"] = json!(bad)
        });
    }
    c.body(
        "EmailIdentity",
        Kind::Exists,
        "matrix.example.com",
        0,
        |b| b["EmailIdentity"] = json!("matrix.example.com"),
    );
    c.body(
        "EmailIdentity",
        Kind::Exists,
        "MATRIX.example.com.",
        0,
        |b| b["EmailIdentity"] = json!("MATRIX.example.com."),
    );
    c.body(
        "EmailIdentity",
        Kind::Documented,
        "an address with DKIM attributes",
        0,
        |b| b["EmailIdentity"] = json!("me@new.example.com"),
    );
    c.body("ConfigurationSetName", Kind::Unknown, "nope", 0, |b| {
        b["ConfigurationSetName"] = json!("nope")
    });
    c.body(
        "DkimSigningAttributes",
        Kind::Documented,
        "selector without key",
        1,
        |b| {
            b["DkimSigningAttributes"]
                .as_object_mut()
                .unwrap()
                .remove("DomainSigningPrivateKey");
        },
    );
    c.body(
        "DkimSigningAttributes",
        Kind::Documented,
        "key without selector",
        1,
        |b| {
            b["DkimSigningAttributes"]
                .as_object_mut()
                .unwrap()
                .remove("DomainSigningSelector");
        },
    );
    c.body(
        "DkimSigningAttributes",
        Kind::Documented,
        "key and length",
        1,
        |b| b["DkimSigningAttributes"]["NextSigningKeyLength"] = json!("RSA_2048_BIT"),
    );
    c.body(
        "DkimSigningAttributes.DomainSigningPrivateKey",
        Kind::Documented,
        "not DER",
        1,
        |b| b["DkimSigningAttributes"]["DomainSigningPrivateKey"] = json!("AAAAAAAA"),
    );
    c.body(
        "DkimSigningAttributes.DomainSigningPrivateKey",
        Kind::Documented,
        "PEM",
        1,
        |b| {
            let k = b["DkimSigningAttributes"]["DomainSigningPrivateKey"]
                .as_str()
                .unwrap()
                .to_owned();
            b["DkimSigningAttributes"]["DomainSigningPrivateKey"] = json!(format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{k}\n-----END RSA PRIVATE KEY-----"
            ))
        },
    );
    tag_limits(&mut c);
    out.extend(c.out);

    let mut c = Cases {
        op: find("ListEmailIdentities"),
        out: vec![],
    };
    for (detail, v) in [
        ("1001", json!(1001)),
        ("-1", json!(-1)),
        ("2^63", json!(9_223_372_036_854_775_808u64)),
    ] {
        c.body("PageSize", Kind::Documented, detail, 0, |b| {
            b["PageSize"] = v
        });
    }
    c.body("NextToken", Kind::Documented, "not a token", 0, |b| {
        b["NextToken"] = json!("bm90LWEtdG9rZW4")
    });
    c.body(
        "NextToken",
        Kind::Documented,
        "another filter's token",
        0,
        |b| b["NextToken"] = json!(other_filter_token),
    );
    c.body("Filter", Kind::Documented, "IDENTITY_TYPE=CAT", 0, |b| {
        b["Filter"] = json!({"IDENTITY_TYPE": "CAT"})
    });
    c.body(
        "Filter",
        Kind::Documented,
        "VERIFICATION_STATUS=DONE",
        0,
        |b| b["Filter"] = json!({"VERIFICATION_STATUS": "DONE"}),
    );
    let legacy = Req {
        method: "GET".into(),
        path: "/v2/email/identities".into(),
        query: vec![("PageSize".into(), "abc".into())],
        body: vec![],
    };
    c.signed("PageSize (legacy GET)", Kind::WrongType, "abc", legacy);
    out.extend(c.out);

    let mut c = Cases {
        op: find("PutEmailIdentityDkimSigningAttributes"),
        out: vec![],
    };
    let address = find("PutEmailIdentityDkimSigningAttributes").request(
        Some("me@matrix.example.com"),
        Some(&find("PutEmailIdentityDkimSigningAttributes").bodies[0]),
    );
    c.signed("EmailIdentity", Kind::Documented, "an address", address);
    c.body(
        "SigningAttributes",
        Kind::Documented,
        "EXTERNAL without a key",
        1,
        |b| {
            b["SigningAttributes"]
                .as_object_mut()
                .unwrap()
                .remove("DomainSigningPrivateKey");
        },
    );
    c.body(
        "SigningAttributes",
        Kind::Documented,
        "EXTERNAL without attributes",
        1,
        |b| {
            b.as_object_mut().unwrap().remove("SigningAttributes");
        },
    );
    c.body(
        "SigningAttributes",
        Kind::Documented,
        "AWS_SES with a selector",
        0,
        |b| b["SigningAttributes"]["DomainSigningSelector"] = json!("s1"),
    );
    c.body(
        "SigningAttributesOrigin",
        Kind::Documented,
        "AWS_SES_EU_WEST_1",
        0,
        |b| b["SigningAttributesOrigin"] = json!("AWS_SES_EU_WEST_1"),
    );
    c.body(
        "SigningAttributes.DomainSigningPrivateKey",
        Kind::Documented,
        "not DER",
        1,
        |b| b["SigningAttributes"]["DomainSigningPrivateKey"] = json!("AAAAAAAA"),
    );
    out.extend(c.out);

    let mut c = Cases {
        op: find("TagResource"),
        out: vec![],
    };
    tag_limits(&mut c);
    c.body("ResourceArn", Kind::Documented, "not an ARN", 0, |b| {
        b["ResourceArn"] = json!("not-an-arn")
    });
    let cs = arn("us-east-1", "", "x").replace(":identity/", ":configuration-set/");
    c.body(
        "ResourceArn",
        Kind::Documented,
        "a configuration set",
        0,
        |b| b["ResourceArn"] = json!(cs),
    );
    c.body("ResourceArn", Kind::Unknown, "nobody.example.com", 0, |b| {
        b["ResourceArn"] = json!(arn("us-east-1", "", "nobody.example.com"))
    });
    c.body("ResourceArn", Kind::Foreign, "another account", 0, |b| {
        b["ResourceArn"] = json!(arn("us-east-1", "000000000000", "matrix.example.com"))
    });
    c.body("ResourceArn", Kind::Foreign, "another region", 0, |b| {
        b["ResourceArn"] = json!(arn("eu-west-1", "", "matrix.example.com"))
    });
    out.extend(c.out);

    let mut c = Cases {
        op: find("SendEmail"),
        out: vec![],
    };
    for bad in ["not an address", "@verified.test", "a@", "Name <>"] {
        c.body("FromEmailAddress", Kind::Documented, bad, 0, |b| {
            b["FromEmailAddress"] = json!(bad)
        });
    }
    c.body(
        "FromEmailAddress",
        Kind::NotVerified,
        "a pending domain",
        0,
        |b| b["FromEmailAddress"] = json!("a@matrix.example.com"),
    );
    c.body(
        "FromEmailAddress",
        Kind::NotVerified,
        "an unknown domain",
        0,
        |b| b["FromEmailAddress"] = json!("a@nobody.example.com"),
    );
    c.body(
        "FromEmailAddress",
        Kind::NotVerified,
        "raw, From header unverified",
        1,
        |b| {
            b["Content"]["Raw"]["Data"] = json!(data_encoding::BASE64.encode(
                b"From: a@nobody.example.com\r\nTo: to@example.net\r\nSubject: raw\r\n\r\nx\r\n"
            ))
        },
    );
    c.body(
        "Destination.ToAddresses[0]",
        Kind::Documented,
        "not an address",
        0,
        |b| b["Destination"]["ToAddresses"][0] = json!("nope"),
    );
    c.body(
        "ReplyToAddresses[0]",
        Kind::Documented,
        "not an address",
        0,
        |b| b["ReplyToAddresses"][0] = json!("nope"),
    );
    c.body(
        "FeedbackForwardingEmailAddress",
        Kind::Documented,
        "not an address",
        0,
        |b| b["FeedbackForwardingEmailAddress"] = json!("nope"),
    );
    c.body("Destination", Kind::Documented, "51 recipients", 0, |b| {
        b["Destination"] = json!({
            "ToAddresses": (0..51).map(|i| format!("r{i}@example.net")).collect::<Vec<_>>()
        })
    });
    c.body("Destination", Kind::Documented, "no recipients", 0, |b| {
        b.as_object_mut().unwrap().remove("Destination");
    });
    c.body(
        "Content.Simple.Headers[0].Name",
        Kind::Documented,
        "From (set by the service)",
        0,
        |b| b["Content"]["Simple"]["Headers"][0]["Name"] = json!("From"),
    );
    c.body(
        "Content.Simple.Body",
        Kind::Documented,
        "neither Text nor Html",
        0,
        |b| b["Content"]["Simple"]["Body"] = json!({}),
    );
    c.body(
        "Content.Simple.Subject.Charset",
        Kind::Documented,
        "KOI8-R",
        0,
        |b| b["Content"]["Simple"]["Subject"]["Charset"] = json!("KOI8-R"),
    );
    c.body("Content", Kind::Documented, "Simple and Raw", 0, |b| {
        b["Content"]["Raw"] = json!({"Data": "YQ=="})
    });
    c.body("Content", Kind::Documented, "empty", 0, |b| {
        b["Content"] = json!({})
    });
    c.body("ConfigurationSetName", Kind::Unknown, "nope", 0, |b| {
        b["ConfigurationSetName"] = json!("nope")
    });
    out.extend(c.out);

    // SendCustomVerificationEmail: a bad address, an unknown template or configuration set,
    // and a template whose sender is not verified; none mails or creates anything.
    let mut c = Cases {
        op: find("SendCustomVerificationEmail"),
        out: vec![],
    };
    for bad in ["not an address", "@example.net", "a@", "a b@example.net"] {
        c.body("EmailAddress", Kind::Documented, bad, 0, |b| {
            b["EmailAddress"] = json!(bad)
        });
    }
    c.body("TemplateName", Kind::Documented, "a space", 0, |b| {
        b["TemplateName"] = json!("bad name")
    });
    c.body("TemplateName", Kind::Unknown, "nope", 0, |b| {
        b["TemplateName"] = json!("nope")
    });
    c.body("ConfigurationSetName", Kind::Unknown, "nope", 0, |b| {
        b["ConfigurationSetName"] = json!("nope")
    });
    c.body(
        "TemplateName",
        Kind::NotVerified,
        "its sender's domain is pending",
        0,
        |b| b["TemplateName"] = json!("matrix-unverified"),
    );
    c.body(
        "TemplateName",
        Kind::NotVerified,
        "a new address, its sender unverified",
        0,
        |b| {
            b["TemplateName"] = json!("matrix-unverified");
            b["EmailAddress"] = json!("someone-new@example.net")
        },
    );
    out.extend(c.out);
    out
}
