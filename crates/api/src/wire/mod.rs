//! Wire DTOs in the model's member casing. Domain types never derive serde traits; these
//! counterparts are converted by hand, so a wire change cannot silently change storage.
//! Inputs are all-optional so a missing required member is our BadRequestException with a
//! clear message rather than a serde error.

pub mod input;
pub mod output;
pub mod strict;
