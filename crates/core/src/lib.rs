//! Sesame's domain: email identities and their DKIM set-up, and the use cases that manage them.
//! It knows nothing of HTTP, SQL, DNS sockets or AWS names; it talks to the world only through
//! the traits in `ports`.
//!
//! - `model`: validated newtypes and the identity record.
//! - `dkim`: time-dependent DKIM rules (the once-a-day key-length change).
//! - `service`: the use cases (`Service`).
//! - `sending`: SendEmail (`Sending`: a validated `Draft` authorised, signed by the vault and
//!   delivered by the mail port), and the key that signs for an identity.
//! - `ports`: `Store`, `Clock`, `KeyVault`, `Mailer`.
//! - `error`: the one domain `Error` enum and `StoreError`.
//! - `testing`: in-memory fakes of the ports for tests of this and other crates.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod dkim;
pub mod error;
pub mod model;
pub mod ports;
pub mod sending;
pub mod service;
pub mod testing;

pub use error::{Error, StoreError};
