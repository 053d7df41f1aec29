//! Sesame's DNS: the verifier's lookups of customers' records and the authoritative responder
//! for Sesame's own key zone. It reports what it sees and serves what it is given; it never
//! decides a DKIM status and never writes domain state.
//!
//! - `records`: DKIM TXT values, string splitting, zone-file lines, tag parsing.
//! - `verifier`: `Verifier`, hickory-resolver lookups turned into `Observation`s.
//! - `responder`: `KeyZone` snapshots and the hickory-server `RequestHandler` serving them.

pub mod records;
pub mod responder;
pub mod verifier;
