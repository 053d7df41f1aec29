//! The one place where errors become AWS errors: domain errors and protocol (edge) errors are
//! mapped onto `(status, code, message)` and rendered in the restJson1 error shape that
//! botocore and aws-sdk-rust parse: an `x-amzn-ErrorType` header plus `{"__type","message"}`.

use crate::refusals;
use crate::sigv4::SigError;
use axum::http::StatusCode;
use sesame_core::Error;
use sesame_core::error::{Invalid, Rejection};

/// Failures of the protocol itself; they never reach the domain.
#[derive(Debug)]
pub enum EdgeError {
    /// No operation for this method and path. `path_known`: the path exists for another method.
    UnknownOperation {
        /// The request method.
        method: String,
        /// The raw path.
        path: String,
        /// Whether some operation has this path.
        path_known: bool,
    },
    /// A model operation Sesame does not implement.
    Unsupported(&'static str),
    /// A URI label that is not valid percent-encoded UTF-8.
    BadLabel(&'static str),
    /// A query string that is not valid percent-encoded UTF-8.
    BadQuery,
    /// A body that is not the JSON the operation expects.
    Serialization(String),
    /// A body over the size limit.
    TooLarge(usize),
    /// The request is not authenticated (SigV4).
    Auth(SigError),
    /// The account's request rate is over its limit.
    Throttled,
    /// Too many requests from this source address failed authentication.
    SourceThrottled,
    /// The client sent the body slower than the body-read timeout allows.
    BodyTimeout(u64),
    /// A NextToken that was altered, or issued for another account or filter.
    InvalidNextToken,
}

/// An error ready to be rendered.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The AWS error code (`x-amzn-ErrorType` and `__type`).
    pub code: &'static str,
    /// The message for the client.
    pub message: String,
    /// Detail for the log only (internal errors); never sent.
    pub log_detail: Option<String>,
    /// The request member a refusal is about (for the log; SES's messages name it already).
    pub member: Option<&'static str>,
}

/// The codes of authentication failures (`EdgeError::Auth`).
const AUTH_FAILURES: &[&str] = &[
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
];

impl ApiError {
    /// Whether the request failed authentication (the caller is unknown).
    pub fn is_auth_failure(&self) -> bool {
        AUTH_FAILURES.contains(&self.code)
    }
}

fn api(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        code,
        message: message.into(),
        log_detail: None,
        member: None,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        // Statuses are the model's `error.httpStatusCode` for each exception shape; the test
        // below checks them against tests/data/model-facts.json. Every text is `refusals`'.
        match e {
            Error::NotFound(m) => api(404, "NotFoundException", refusals::missing(&m)),
            Error::AlreadyExists(name) => api(
                400,
                "AlreadyExistsException",
                refusals::already_exists(&name),
            ),
            Error::Invalid(i) => api(400, "BadRequestException", refusals::invalid(&i)),
            Error::LimitExceeded(limit) => api(
                400,
                "LimitExceededException",
                refusals::limit_exceeded(limit),
            ),
            Error::MessageRejected(r @ Rejection::MailFromNotVerified { .. }) => api(
                400,
                "MailFromDomainNotVerifiedException",
                refusals::rejection(&r),
            ),
            Error::MessageRejected(r) => api(400, "MessageRejected", refusals::rejection(&r)),
            Error::ConcurrentModification(name) => api(
                500,
                "ConcurrentModificationException",
                refusals::concurrent(&name),
            ),
            Error::Unavailable(detail) => ApiError {
                log_detail: Some(detail),
                ..api(
                    503,
                    "ServiceUnavailable",
                    "The service is temporarily unavailable; retry the request.",
                )
            },
            Error::Internal(detail) => ApiError {
                log_detail: Some(detail),
                ..api(
                    500,
                    "InternalServiceErrorException",
                    "The request failed because of an internal error.",
                )
            },
        }
    }
}

/// A request member that fails the operation's validation: a BadRequestException whose
/// message is `message`, recorded against `member` (the model's path, e.g. `Tag.Key`).
pub fn invalid(member: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        member: Some(member),
        ..api(400, "BadRequestException", message)
    }
}

/// A resource the edge itself finds missing (an ARN that names nothing of the caller's).
pub fn not_found(message: impl Into<String>) -> ApiError {
    api(404, "NotFoundException", message)
}

/// Attaches the request member to a domain refusal of a value parsed from it.
pub fn at(member: &'static str) -> impl Fn(Invalid) -> ApiError {
    move |i| invalid(member, refusals::invalid(&i))
}

/// Attaches the request member a use case's refusal is about, when it is an invalid input.
pub fn about(member: &'static str) -> impl Fn(Error) -> ApiError {
    move |e| match e {
        Error::Invalid(i) => at(member)(i),
        other => other.into(),
    }
}

impl From<EdgeError> for ApiError {
    fn from(e: EdgeError) -> ApiError {
        match e {
            EdgeError::UnknownOperation {
                method,
                path,
                path_known,
            } => {
                let why = if path_known {
                    format!("{method} is not a valid method for {path}")
                } else {
                    format!("no SESv2 operation matches {method} {path}")
                };
                api(404, "UnknownOperationException", why)
            }
            // 501 tells the client the operation exists but is not implemented here; SDKs do
            // not retry it (they retry 500, 502, 503 and 504).
            EdgeError::Unsupported(op) => api(
                501,
                "UnsupportedOperationException",
                format!("The operation {op} is not supported by Sesame."),
            ),
            EdgeError::BadLabel(label) => api(
                400,
                "BadRequestException",
                format!("The URI label {label} is not valid percent-encoded UTF-8."),
            ),
            EdgeError::BadQuery => api(
                400,
                "BadRequestException",
                "The query string is not valid percent-encoded UTF-8.",
            ),
            EdgeError::Serialization(m) => api(
                400,
                "BadRequestException",
                format!("The request body is not valid for this operation: {m}"),
            ),
            EdgeError::TooLarge(limit) => api(
                413,
                "RequestEntityTooLargeException",
                format!("The request body exceeds {limit} bytes."),
            ),
            // The codes and messages AWS JSON services answer, so SDKs show something useful.
            EdgeError::Auth(SigError::Missing) => api(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            EdgeError::Auth(SigError::Incomplete(m)) => api(403, "IncompleteSignatureException", m),
            EdgeError::Auth(SigError::Invalid(m)) => api(403, "InvalidSignatureException", m),
            EdgeError::Auth(SigError::UnrecognizedClient) => api(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
            EdgeError::Throttled => api(429, "TooManyRequestsException", "Too many requests."),
            EdgeError::SourceThrottled => api(
                429,
                "TooManyRequestsException",
                "Too many unauthenticated requests from this address.",
            ),
            // S3's code for the same condition; SESv2's model has none.
            EdgeError::BodyTimeout(secs) => api(
                408,
                "RequestTimeout",
                format!(
                    "Your socket connection to the server was not read from within {secs} seconds; the request body did not arrive in time."
                ),
            ),
            // ListEmailIdentities lists BadRequestException, not InvalidNextTokenException.
            EdgeError::InvalidNextToken => {
                api(400, "BadRequestException", "The NextToken is invalid.")
            }
        }
    }
}

#[cfg(test)]
mod tests;
