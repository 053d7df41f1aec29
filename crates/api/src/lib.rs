//! Sesame's AWS edge: the SESv2 rest-json protocol over HTTP. It authenticates the caller
//! with SigV4, throttles per account, routes the request to an `Operation`, turns wire DTOs into validated domain
//! values, calls the core `Service`, and renders results and errors the way AWS SDKs expect.
//!
//! - `routes`: `Operation` and the router over the model's URI templates (`model_routes`).
//! - `handlers`: one function per operation (wire → domain → wire).
//! - `wire`: request and response DTOs in the model's casing.
//! - `sigv4`: Signature Version 4 verification.
//! - `throttle`: per-account token buckets.
//! - `errors`: the one mapping of domain and protocol errors onto AWS error codes.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod errors;
pub mod handlers;
pub mod model_routes;
pub mod routes;
pub mod sigv4;
pub mod throttle;
// DTO members mirror the model one to one; the model documents them.
#[allow(missing_docs)]
pub mod wire;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use errors::{ApiError, EdgeError};
use handlers::{Ctx, Input, PageTokens};
use sesame_core::Error;
use sesame_core::model::AccountId;
use sesame_core::ports::Clock;
use sesame_core::service::Service;
use std::sync::Arc;
use std::time::Instant;
use throttle::Throttle;

/// The largest request body accepted. The biggest identity request is a 20,480-character
/// private key plus 50 tags; this leaves room without letting a client make us buffer much.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The largest SendEmail body: a 40 MB message is 53.4 MB in base64, plus the JSON around it.
pub const MAX_SEND_BODY_BYTES: usize = 56 * 1024 * 1024;

/// A secret access key; its `Debug` never shows it.
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What the edge needs to know about an access key.
#[derive(Debug)]
pub struct Credential {
    /// The owning account.
    pub account: AccountId,
    /// The secret, to recompute signatures with.
    pub secret: Secret,
    /// Disabled keys authenticate nothing.
    pub enabled: bool,
}

/// The only storage access authentication makes: "give me the secret of this key".
pub trait CredentialLookup: Send + Sync {
    /// The key's credential, if the key exists.
    fn lookup(&self, access_key_id: &str) -> Result<Option<Credential>, Error>;
}

/// The peer of the connection a request came on; the listener puts it in the request's
/// extensions.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Everything the edge needs, shared by all requests.
pub struct ApiState {
    /// The use cases.
    pub service: Arc<Service>,
    /// SendEmail.
    pub sending: Arc<sesame_core::sending::Sending>,
    /// The region this endpoint serves: SigV4 scopes and ARNs must name it.
    pub region: String,
    /// Access key → account and secret.
    pub credentials: Arc<dyn CredentialLookup>,
    /// Page-token sealing.
    pub pages: Arc<dyn PageTokens>,
    /// The clock SigV4's skew check reads.
    pub clock: Arc<dyn Clock>,
    /// Per-account request throttling.
    pub throttle: Throttle,
    /// Per-source budget of failed authentications.
    pub auth_failures: throttle::SourceThrottle,
    /// How long a request body may take to arrive once the headers are in.
    pub body_timeout: std::time::Duration,
    /// SigV4 signing keys derived for recent requests.
    pub signing_keys: sigv4::SigningKeyCache,
    /// Run read-only operations on the async worker instead of the blocking pool: right when
    /// a read takes microseconds (the embedded store's page cache), wrong when it waits on a
    /// network round trip (PostgreSQL).
    pub inline_reads: bool,
}

/// The SigV4 signing name of SESv2 (`signingName` in the model).
pub const SIGNING_NAME: &str = "ses";

/// The HTTP application: every request goes through one handler, since routing follows the
/// model's templates on the raw path rather than axum's router.
pub fn app(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

async fn handle(State(st): State<Arc<ApiState>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let mut op = "-";
    let mut account_id = String::new();
    let result: Result<Vec<u8>, ApiError> = async {
        // Resolved once, up front (no I/O); an unknown route is still reported only after
        // authentication, as AWS does.
        let route = routes::resolve(&method, &path);
        let limit = route
            .as_ref()
            .map_or(MAX_BODY_BYTES, |r| r.operation.max_body_bytes());
        // A declared length over the limit is refused before a byte of the body is read.
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(EdgeError::TooLarge(limit).into());
        }
        let body = tokio::time::timeout(st.body_timeout, axum::body::to_bytes(body, limit))
            .await
            .map_err(|_| EdgeError::BodyTimeout(st.body_timeout.as_secs()))?
            .map_err(|_| EdgeError::TooLarge(limit))?;
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let raw_query = parts.uri.query().map(str::to_owned);
        let signed = sigv4::Request {
            method: &method,
            raw_path: &path,
            raw_query: raw_query.as_deref(),
            headers: &headers,
            body: &body,
        };
        // Parse, scope and clock skew first: no storage is touched for a stale or misdirected
        // request.
        let sig = sigv4::parse(&signed).map_err(EdgeError::Auth)?;
        let now = st.clock.now().0.div_euclid(1000);
        sigv4::check_scope_and_time(&sig, &st.region, SIGNING_NAME, now)
            .map_err(EdgeError::Auth)?;
        if let Ok(r) = &route {
            op = r.operation.name();
        }
        let query = routes::parse_query(raw_query.as_deref())?;
        let st = st.clone();
        let inline = st.inline_reads && route.as_ref().is_ok_and(|r| r.operation.is_read_only());
        let work = move || {
            let signed = sigv4::Request {
                method: &method,
                raw_path: &path,
                raw_query: raw_query.as_deref(),
                headers: &headers,
                body: &body,
            };
            let credential = st
                .credentials
                .lookup(&sig.access_key_id)?
                .filter(|c| c.enabled)
                .ok_or(EdgeError::Auth(sigv4::SigError::UnrecognizedClient))?;
            sigv4::verify_with_key(
                &signed,
                &sig,
                &st.signing_keys.signing_key(&credential.secret.0, &sig),
                sigv4::PathRules::AWS_SERVICE,
            )
            .map_err(EdgeError::Auth)?;
            let account = credential.account;
            // Only an authenticated caller learns whether the route exists (AWS answers an
            // unsigned request for an unknown path 403, not 404).
            let route = match route {
                Ok(r) => r,
                Err(e) => return Ok((account.as_str().to_owned(), Err(e.into()))),
            };
            // After authentication (the bucket is the account's) and before any work, so a
            // throttled request has changed nothing and a retry is safe.
            if !st.throttle.admit(&account) {
                return Ok::<_, ApiError>((
                    account.as_str().to_owned(),
                    Err(EdgeError::Throttled.into()),
                ));
            }
            let ctx = Ctx {
                service: &st.service,
                sending: &st.sending,
                account: &account,
                region: &st.region,
                pages: st.pages.as_ref(),
            };
            let out = handlers::dispatch(
                &ctx,
                &Input {
                    route: &route,
                    query: &query,
                    body: &body,
                },
            );
            Ok::<_, ApiError>((account.as_str().to_owned(), out))
        };
        // The blocking pool's hand-off (a queue and two thread wake-ups) costs more than a
        // read from the page cache, so such reads run right here; anything that may wait on an
        // fsync, key generation or the network goes to the blocking pool.
        let (account, out) = if inline {
            work()?
        } else {
            tokio::task::spawn_blocking(work).await.map_err(|e| {
                ApiError::from(Error::Internal(format!("handler task failed: {e}")))
            })??
        };
        account_id = account;
        out
    }
    .await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    // Past its budget of failed authentications a source gets 429s and no log line each, so
    // nobody without credentials can flood the log.
    let mut quiet = false;
    let result = match result {
        Err(e) if e.is_auth_failure() => match peer.map(|ip| st.auth_failures.admit_failure(ip)) {
            Some(false) => {
                quiet = true;
                Err(EdgeError::SourceThrottled.into())
            }
            _ => Err(e),
        },
        other => other,
    };
    let (status, body, error_code) = match result {
        Ok(body) => (axum::http::StatusCode::OK, body, None),
        Err(e) => {
            if let Some(detail) = &e.log_detail {
                tracing::error!(request_id, op, detail, "request failed");
            }
            let body = serde_json::json!({"__type": e.code, "message": e.message});
            (e.status, body.to_string().into_bytes(), Some(e.code))
        }
    };
    // Never the body, headers or signature: they can carry keys and secrets.
    if quiet {
        tracing::debug!(request_id, op, status = status.as_u16(), ms, "request");
    } else {
        tracing::info!(
            request_id,
            account = account_id,
            op,
            status = status.as_u16(),
            error = error_code.unwrap_or(""),
            ms,
            "request"
        );
    }
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Some(code) = error_code {
        h.insert("x-amzn-errortype", HeaderValue::from_static(code));
    }
    // The unread body of a refused or stalled request stays on the connection: close it.
    if matches!(status.as_u16(), 408 | 413) {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
