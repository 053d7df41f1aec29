//! Sesame's mail handling, the parts that know the message format and nothing of AWS, storage
//! or keys; `Mail` is the core's `Mailer` port over them:
//!
//! - `compose`: builds a MIME message from SendEmail's `Simple` content (mail-builder).
//! - `raw`: reads the sender and recipients of a whole MIME message (mail-parser).
//! - `spool`: a write-ahead log of accepted messages with group commit.
//! - `outbox`: writes signed messages as `.eml` files, atomically.
//! - `spooled`: the embedded delivery, the outbox made durable by the spool.
//! - `relay`: one attempt to hand a signed message to an SMTP relay (lettre, pooled).
//! - `relayed`: delivery through the relay off the request path: spooled, retried, reported.
//! - `mailer`: `Mail` (the `Mailer`: compose, read, deliver) over one `Delivery` back end, the
//!   outbox or the relay.
//!
//! DKIM signing is not here: it needs the unsealed key, which only `sesame-crypto` holds.

pub mod compose;
pub mod mailer;
pub mod outbox;
pub mod raw;
pub mod relay;
pub mod relayed;
pub mod spool;
pub mod spooled;

pub use mailer::{Delivery, Mail};

/// What can go wrong handling mail.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message cannot be built or parsed.
    #[error("{0}")]
    Format(String),
    /// The outbox could not take the message.
    #[error("outbox: {0}")]
    Io(#[from] std::io::Error),
}
