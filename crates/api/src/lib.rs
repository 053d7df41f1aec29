//! Sesame's AWS edge: the SESv2 rest-json protocol over HTTP. It authenticates the caller
//! with SigV4, throttles per account, routes the request to an `Operation`, turns wire DTOs into validated domain
//! values, calls the core `Service`, and renders results and errors the way AWS SDKs expect.
//!
//! - `pipeline`: one request's stages: read, precheck, verify, throttle, dispatch, render.
//! - `state`: `ApiState` and `CredentialLookup`, the one storage door of authentication.
//! - `access_log`: the request log line, written off the request thread.
//! - `limits`: the request body limits.
//! - `routes`: `Operation`, its table, and the router over the model's URI templates
//!   (`model_routes`).
//! - `handlers`: one function per operation (wire → domain → wire).
//! - `wire`: request and response DTOs in the model's casing.
//! - `sigv4`: Signature Version 4 verification.
//! - `throttle`: per-account token buckets.
//! - `errors`: the one mapping of domain and protocol errors onto AWS error codes.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod access_log;
pub mod errors;
pub mod handlers;
mod limits;
pub mod model_routes;
mod pipeline;
pub mod refusals;
pub mod routes;
pub mod sigv4;
mod state;
#[cfg(test)]
mod testing;
pub mod throttle;
// DTO members mirror the model one to one; the model documents them.
#[allow(missing_docs)]
pub mod wire;

pub use access_log::AccessLog;
pub use limits::{MAX_BODY_BYTES, MAX_SEND_BODY_BYTES};
pub use pipeline::{SIGNING_NAME, app};
pub use state::{ApiState, Credential, CredentialLookup, PeerAddr, Secret};
