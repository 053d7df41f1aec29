//! Sesame's domain: email identities and their DKIM set-up, and the use cases that manage them.
//! It knows nothing of HTTP, SQL, DNS sockets or AWS names; it talks to the world only through
//! the traits in `ports`.
//!
//! Data and rules (pure):
//! - `model`: validated values, the identity record, and the DKIM key slots.
//! - `keys`: the once-a-day key-length rule and the rotation planner.
//! - `verification` (its `rules`): the records a set-up needs and the check state machine.
//! - `mail_from`: the MAIL FROM rules (subdomain, MX, SPF, DMARC judgements).
//! - `advice`: the recommendation rules (what a check opens and fixes, and when to look again).
//! - `publishing` (its rules): which records a publisher adds and removes, and when.
//! - `error`: the one domain `Error` enum with typed refusals, and `StoreError`.
//!
//! Use cases, each holding only the ports it uses:
//! - `identities`: create, read, list, delete, feedback, tags.
//! - `dkim`: DKIM signing attributes and rotation on request.
//! - `verification` (its `Checks`): claim due checks and record their results.
//! - `templates`: custom verification email templates.
//! - `addresses`: address identities verified by a mailed link (the rules, `Invitations`,
//!   SendCustomVerificationEmail, following a link).
//! - `sending`: SendEmail (`Sending`: a validated `Draft` authorised, signed by the vault and
//!   delivered by the mail port), and the key that signs for an identity.
//! - `publishing` (its `Publishers`): DNS publishers set, shown and removed; the
//!   publisher loop's due work and its results.
//! - `app`: all of them wired for a server.
//!
//! Doors out: `ports` (the stores, `Clock`, `KeyVault`, `Mailer`); `testing` has fakes of them.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod addresses;
pub mod advice;
pub mod app;
pub mod backoff;
pub mod dkim;
pub mod error;
pub mod identities;
pub mod keys;
pub mod mail_from;
pub mod model;
pub mod ports;
pub mod publishing;
pub mod sending;
mod shared;
pub mod templates;
pub mod testing;
pub mod verification;

pub use error::{Error, StoreError};
pub use shared::DEFAULT_KEY_LENGTH;
