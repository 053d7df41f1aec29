//! Sesame's cryptography, on OpenSSL: RSA key generation and import for DKIM, DKIM signing,
//! AES-256-GCM sealing of secrets at rest, and CSPRNG values (tokens, credentials, account ids,
//! message ids). OpenSSL is the backend because SES allows RSA-1024 DKIM keys, which aws-lc-rs
//! and ring refuse to generate or load (see docs/MEASURED.md); plaintext private keys never
//! leave this crate (no public item hands one out) and are never formatted or logged.
//!
//! - `seal`: `MasterKey` and `Sealer` (versioned AES-256-GCM envelopes with a purpose label).
//! - `keys`: `OpenSslVault`, the `KeyVault` implementation; it signs with sealed keys, each
//!   unsealed once and cached.
//! - `dkim`: the DKIM-Signature itself (mail-auth's parts over an OpenSSL key, `t=` given).
//! - `pool`: `PooledVault`, a `KeyVault` wrapper handing out keys generated in the background.
//! - `random`: tokens, access keys, account ids.

mod dkim;
pub mod keys;
pub mod pool;
pub mod random;
pub mod seal;

pub use keys::OpenSslVault;
pub use pool::{PoolConfig, PooledVault};
pub use seal::{MasterKey, SealError, Sealer};
