//! Stage 6, render: the outcome as the response AWS SDKs parse (a JSON body, and for an error
//! the restJson1 shape with `x-amzn-ErrorType`), the request's one log line, and the budget of
//! failed authentications per source.

use crate::errors::{ApiError, EdgeError};
use crate::state::ApiState;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use std::net::IpAddr;
use std::time::Instant;

use crate::access_log::{LOG_TARGET, Line};

/// What happened to one request.
pub struct Outcome {
    /// The id the response carries in `x-amzn-RequestId`.
    pub request_id: String,
    /// The operation's name, once the signature passed the precheck; `-` before.
    pub op: &'static str,
    /// The authenticated account, or empty.
    pub account: String,
    /// The source of the request, if the listener knows it.
    pub peer: Option<IpAddr>,
    /// When the request came in.
    pub started: Instant,
    /// The 200 body, or why there is none.
    pub result: Result<Vec<u8>, ApiError>,
}

/// The response to `outcome`, logged.
pub fn render(st: &ApiState, outcome: Outcome) -> Response {
    let (request_id, operation) = (outcome.request_id, outcome.op);
    let seconds = outcome.started.elapsed().as_secs_f64();
    let duration_ms = seconds * 1000.0;
    // Past its budget of failed authentications a source gets 429s and no log line each, so
    // nobody without credentials can flood the log.
    let mut quiet = false;
    let result = match outcome.result {
        Err(e) if e.is_auth_failure() => {
            match outcome.peer.map(|ip| st.auth_failures.admit_failure(ip)) {
                Some(false) => {
                    quiet = true;
                    Err(EdgeError::SourceThrottled.into())
                }
                _ => Err(e),
            }
        }
        other => other,
    };
    let (status, body, error_code, member) = match result {
        Ok(body) => (StatusCode::OK, body, None, None),
        Err(e) => {
            if let Some(detail) = &e.log_detail {
                tracing::error!(target: LOG_TARGET, request_id, operation, detail, "request failed");
            }
            let body = serde_json::json!({"__type": e.code, "message": e.message});
            (
                e.status,
                body.to_string().into_bytes(),
                Some(e.code),
                e.member,
            )
        }
    };
    let label = if operation == "-" {
        "unknown"
    } else {
        operation
    };
    st.metrics.http_request(label, status.as_u16(), seconds);
    if operation == "SendEmail" {
        st.metrics
            .email(sesame_metrics::EmailResult::of_status(status.as_u16()));
    }
    // Never the body, headers or signature: they can carry keys and secrets.
    st.access_log.log(Line {
        request_id: request_id.clone(),
        account: outcome.account,
        operation,
        status: status.as_u16(),
        error: error_code.unwrap_or(""),
        member: member.unwrap_or(""),
        duration_ms,
        quiet,
    });
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
