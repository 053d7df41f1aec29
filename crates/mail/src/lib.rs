//! Sesame's mail handling, the parts that know the message format and nothing of AWS or storage:
//!
//! - `compose`: builds a MIME message from SendEmail's `Simple` content (mail-builder).
//! - `raw`: reads the sender and recipients of a whole MIME message (mail-parser).
//! - `dkim`: signs a message with mail-auth, RSA-SHA256 relaxed/relaxed, over an OpenSSL key.
//! - `outbox`: writes signed messages as `.eml` files, atomically and durably.
//! - `relay`: hands signed messages to an SMTP relay (lettre), with retries.

pub mod compose;
pub mod dkim;
pub mod outbox;
pub mod raw;
pub mod relay;

/// What can go wrong handling mail.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message cannot be built or parsed.
    #[error("{0}")]
    Format(String),
    /// Signing failed.
    #[error("DKIM signing failed: {0}")]
    Sign(String),
    /// The outbox could not take the message.
    #[error("outbox: {0}")]
    Io(#[from] std::io::Error),
}
