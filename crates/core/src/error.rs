//! The one domain error enum. Its variants follow the exception shapes of the SESv2 model so
//! the API edge can map each onto exactly one AWS error code; it knows no HTTP or AWS names.

use std::fmt;

/// Everything a use case can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing asked for does not exist (in the caller's account).
    #[error("{0}")]
    NotFound(String),
    /// A create found the thing already there.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is invalid; `field` names the input member, `reason` says what is wrong.
    #[error("{reason}")]
    BadRequest {
        /// The input member at fault.
        field: &'static str,
        /// A sentence for the client.
        reason: String,
    },
    /// An account quota is exhausted.
    #[error("{0}")]
    LimitExceeded(String),
    /// Mail that may not be sent (e.g. an unverified sender).
    #[error("{0}")]
    MessageRejected(String),
    /// Another writer changed the record first; the client may retry.
    #[error("{0}")]
    ConcurrentModification(String),
    /// The backing store is unreachable or failed; nothing was changed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the client gets a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::BadRequest`].
    pub fn bad_request(field: &'static str, reason: impl fmt::Display) -> Error {
        Error::BadRequest {
            field,
            reason: reason.to_string(),
        }
    }
}

/// What a `Store` can fail with; use cases turn these into [`Error`]s with context.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row is not there.
    #[error("not found")]
    NotFound,
    /// A unique key is taken.
    #[error("already exists")]
    AlreadyExists,
    /// The account's identity quota would be exceeded.
    #[error("limit exceeded")]
    LimitExceeded,
    /// The row's version moved since it was read.
    #[error("version conflict")]
    Conflict,
    /// The database failed or is unreachable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}
