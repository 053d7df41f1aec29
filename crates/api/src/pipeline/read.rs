//! Stage 1, read: the route resolved (no I/O) and the body read within the route's limit and
//! the body timeout, before anything else looks at the request.

use crate::errors::{ApiError, EdgeError};
use crate::limits::MAX_BODY_BYTES;
use crate::routes::{self, Route};
use crate::sigv4;
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::http::request::Parts;
use std::time::Duration;

/// A request as read off the connection.
pub struct Received {
    /// HTTP method.
    pub method: String,
    /// The path exactly as received (percent-encoded).
    pub path: String,
    /// The query string exactly as received, without `?`.
    pub raw_query: Option<String>,
    /// Headers with lower-case names, in the order received.
    pub headers: Vec<(String, String)>,
    /// The whole body, at most the route's limit.
    pub body: Bytes,
    /// The route; an unknown one is still reported only after authentication, as AWS does.
    pub route: Result<Route, EdgeError>,
}

impl Received {
    /// The parts of the request its signature covers.
    pub fn signed(&self) -> sigv4::Request<'_> {
        sigv4::Request {
            method: &self.method,
            raw_path: &self.path,
            raw_query: self.raw_query.as_deref(),
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// Reads the request. A declared length over the limit is refused before a byte of the body is
/// read; a body that keeps coming past the limit, or too slowly, is refused as it arrives.
pub async fn read(parts: &Parts, body: Body, body_timeout: Duration) -> Result<Received, ApiError> {
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let route = routes::resolve(&method, &path);
    let limit = route
        .as_ref()
        .map_or(MAX_BODY_BYTES, |r| r.operation.max_body_bytes());
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(EdgeError::TooLarge(limit).into());
    }
    let body = tokio::time::timeout(body_timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| EdgeError::BodyTimeout(body_timeout.as_secs()))?
        .map_err(|_| EdgeError::TooLarge(limit))?;
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(Received {
        method,
        path,
        raw_query: parts.uri.query().map(str::to_owned),
        headers,
        body,
        route,
    })
}
