//! What the use cases share: identity records with their concurrency rule, and key making.

mod keymaker;
mod records;

pub use keymaker::DEFAULT_KEY_LENGTH;
pub(crate) use keymaker::KeyMaker;
pub(crate) use records::{Records, bulk_err, not_found, store_err};
