//! A DNS publisher: the customer's primary server that takes RFC 2136 updates for a domain's
//! zone, and what Sesame has published there. The secret is sealed by the server's sealer
//! before it reaches this type; nothing here can print it.

use super::names::{AccountId, DomainName};
use super::time::Timestamp;
use std::fmt;

/// One record as published: owner name, type and value in zone-file form (the value as the
/// DNS layer writes and reads it back). `dkim` marks a DKIM record, which stays published for
/// the key retention after it stops being needed (mail signed under it may be in transit).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PublishedRecord {
    /// The owner name, without a trailing dot.
    pub name: String,
    /// `CNAME`, `TXT` or `MX`.
    pub rtype: String,
    /// The value.
    pub value: String,
    /// Whether it is a DKIM record.
    pub dkim: bool,
}

impl fmt::Display for PublishedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.name, self.rtype, self.value)
    }
}

/// A record that stopped being needed and is removed at `remove_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retiring {
    /// The record.
    pub record: PublishedRecord,
    /// When it is removed.
    pub remove_at: Timestamp,
}

/// What Sesame published through a publisher, and how the last attempt went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishState {
    /// Records Sesame added and has not removed.
    pub published: Vec<PublishedRecord>,
    /// Published records waiting for their removal time.
    pub retiring: Vec<Retiring>,
    /// Records not added because the zone holds something else at their name, each with what
    /// is there: reported, never overwritten.
    pub conflicts: Vec<String>,
    /// When the server was last sent an update.
    pub last_attempt_at: Option<Timestamp>,
    /// When an update last succeeded.
    pub last_success_at: Option<Timestamp>,
    /// Why the last update failed (NOTAUTH, REFUSED, a timeout…); `None` after a success.
    pub last_error: Option<String>,
    /// Failed attempts (and attempts with conflicts) in a row.
    pub failures: u32,
    /// No attempt before this time (the backoff after a failure).
    pub retry_at: Option<Timestamp>,
}

/// Where updates for a domain go. The secret is sealed; `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Publisher {
    /// The account whose domain identity it publishes for.
    pub account: AccountId,
    /// The domain identity.
    pub domain: DomainName,
    /// The primary server, `HOST:PORT`.
    pub server: String,
    /// The zone the records go into (the domain or a parent of it).
    pub zone: DomainName,
    /// The TSIG key's name.
    pub key_name: String,
    /// The TSIG algorithm (`hmac-sha256`).
    pub algorithm: String,
    /// The TSIG secret, sealed.
    pub sealed_secret: Vec<u8>,
    /// Whether a BYODKIM key's TXT record is published too (the key is the customer's own, so
    /// only when asked).
    pub byodkim: bool,
    /// What was published, and the last attempt.
    pub state: PublishState,
    /// Bumped by every write; a write of an older version is refused.
    pub version: u64,
    /// When it was set.
    pub created_at: Timestamp,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("account", &self.account)
            .field("domain", &self.domain)
            .field("server", &self.server)
            .field("zone", &self.zone)
            .field("key_name", &self.key_name)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
