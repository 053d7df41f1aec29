//! Sesame's storage backends, each implementing the core `Store` trait, and the conformance
//! suite every backend must pass. Backends hold only sealed private keys.
//!
//! - `sqlite`: the embedded default (`SqliteStore`).
//! - `postgres`: several nodes over one PostgreSQL database (`PostgresStore`).
//! - `codec`: identity ⇄ row mapping shared by backends.
//! - `conformance`: the one storage test suite, run against every backend.

pub mod codec;
pub mod conformance;
pub mod postgres;
pub mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
