//! Sesame's AWS edge: the SESv2 rest-json protocol over HTTP. It resolves the caller's
//! account, routes the request to an `Operation`, turns wire DTOs into validated domain
//! values, calls the core `Service`, and renders results and errors the way AWS SDKs expect.
//!
//! - `routes`: `Operation` and the router over the model's URI templates (`model_routes`).
//! - `handlers`: one function per operation (wire → domain → wire).
//! - `wire`: request and response DTOs in the model's casing.
//! - `errors`: the one mapping of domain and protocol errors onto AWS error codes.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod errors;
pub mod handlers;
pub mod model_routes;
pub mod routes;
// DTO members mirror the model one to one; the model documents them.
#[allow(missing_docs)]
pub mod wire;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use errors::{ApiError, EdgeError};
use handlers::{Ctx, Input, PageTokens};
use sesame_core::Error;
use sesame_core::model::AccountId;
use sesame_core::service::Service;
use std::sync::Arc;
use std::time::Instant;

/// The largest request body accepted. The biggest identity request is a 20,480-character
/// private key plus 50 tags; this leaves room without letting a client make us buffer much.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Finds the account behind an access key id.
pub trait CredentialLookup: Send + Sync {
    /// The account of an enabled access key; `None` for unknown or disabled keys.
    fn account_for_key(&self, access_key_id: &str) -> Result<Option<AccountId>, Error>;
}

/// Everything the edge needs, shared by all requests.
pub struct ApiState {
    /// The use cases.
    pub service: Arc<Service>,
    /// The region this endpoint serves.
    pub region: String,
    /// Access key → account.
    pub credentials: Arc<dyn CredentialLookup>,
    /// Page-token sealing.
    pub pages: Arc<dyn PageTokens>,
}

/// The HTTP application: every request goes through one handler, since routing follows the
/// model's templates on the raw path rather than axum's router.
pub fn app(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

/// The access key id of a SigV4 request: from `Authorization: AWS4-HMAC-SHA256
/// Credential=<id>/<date>/<region>/<service>/aws4_request, …` or the presigned
/// `X-Amz-Credential` query parameter. Verifying the signature is the authentication issue's.
fn access_key_id(headers: &HeaderMap, query: &[(String, String)]) -> Option<String> {
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| {
            auth.split([' ', ','])
                .find_map(|part| part.strip_prefix("Credential="))
                .map(str::to_owned)
        })
        .or_else(|| {
            query
                .iter()
                .find(|(k, _)| k == "X-Amz-Credential")
                .map(|(_, v)| v.clone())
        })?;
    let id = credential.split('/').next()?.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

async fn handle(State(st): State<Arc<ApiState>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let mut op = "-";
    let result: Result<Vec<u8>, ApiError> = async {
        let query = routes::parse_query(parts.uri.query())?;
        let key_id =
            access_key_id(&parts.headers, &query).ok_or(EdgeError::MissingAuthentication)?;
        let route = routes::resolve(&method, &path)?;
        op = route.operation.name();
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| EdgeError::TooLarge(MAX_BODY_BYTES))?;
        let st = st.clone();
        tokio::task::spawn_blocking(move || {
            let account = st
                .credentials
                .account_for_key(&key_id)?
                .ok_or(EdgeError::UnrecognizedClient)?;
            let ctx = Ctx {
                service: &st.service,
                account: &account,
                region: &st.region,
                pages: st.pages.as_ref(),
            };
            handlers::dispatch(
                &ctx,
                &Input {
                    route: &route,
                    query: &query,
                    body: &body,
                },
            )
        })
        .await
        .map_err(|e| ApiError::from(Error::Internal(format!("handler task failed: {e}"))))?
    }
    .await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
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
    tracing::info!(
        request_id,
        %method,
        path,
        op,
        status = status.as_u16(),
        error = error_code.unwrap_or(""),
        ms,
        "request"
    );
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
    resp
}
