//! Sesame's DNS: the verifier's lookups of customers' records and the authoritative responder
//! for Sesame's own key zone. It reports what it sees and serves what it is given; it never
//! decides a DKIM status and never writes domain state.
//!
//! - `records`: DKIM TXT values, string splitting, zone-file lines, tag parsing.
//! - `verifier`: `Verifier`, hickory-resolver lookups turned into `Observation`s.
//! - `responder`: key-zone `Snapshot`s and `respond`, one query's bytes to its answer's.
//! - `listener`: the key zone's UDP (response-rate limited) and TCP sockets.
//! - `update`: RFC 2136 updates signed with TSIG, to publish records in a customer's zone.

pub mod listener;
pub mod records;
pub mod responder;
pub mod sandbox;
pub mod update;
pub mod verifier;
