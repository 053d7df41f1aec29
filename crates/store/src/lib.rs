//! Sesame's storage backends, each implementing the core's store traits (`IdentityStore`,
//! `CheckQueue`, `KeyZoneSource`, `AccountStore`), and the conformance suite every backend
//! must pass. Backends hold only sealed private keys.
//!
//! - `sqlite`: the embedded default (`SqliteStore`).
//! - `postgres`: several nodes over one PostgreSQL database (`PostgresStore`; feature
//!   `postgres`, on by default).
//! - `cached`: the hot reads served from memory, kept current by the backend's change signal.
//! - `row`: the identity row's columns, defined once, and the SQL derived from them.
//! - `codec`: identity ⇄ row mapping shared by backends.
//! - `pool`: the connection pool both backends use.
//! - `conformance`: the one storage test suite, run against every backend.

pub mod cached;
pub mod codec;
pub mod conformance;
mod pool;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod row;
pub mod sqlite;

pub use cached::{Cached, ChangeSignal, Pinned, Stamp, pin_thread};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
