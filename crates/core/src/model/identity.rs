//! The identity record as stored: its name, its DKIM set-up, its verification status and the
//! DNS verifier's schedule.

use super::advice::Recommendations;
use super::dkim::Dkim;
use super::link::VerificationLink;
use super::names::{AccountId, DomainName, IdentityName, IdentityType};
use super::tags::Tag;
use super::time::Timestamp;

/// The model's `DkimStatus` (which is also `VerificationStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DkimStatus {
    /// `PENDING`
    Pending,
    /// `SUCCESS`
    Success,
    /// `FAILED`
    Failed,
    /// `TEMPORARY_FAILURE`
    TemporaryFailure,
    /// `NOT_STARTED`
    NotStarted,
}

/// The model's `VerificationError` values that a DNS check can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerificationError {
    /// `HOST_NOT_FOUND`: a name does not exist (NXDOMAIN).
    HostNotFound,
    /// `TYPE_NOT_FOUND`: the name exists but has no record of the expected type.
    TypeNotFound,
    /// `INVALID_VALUE`: a record exists with the wrong value.
    InvalidValue,
    /// `DNS_SERVER_ERROR`: the resolver failed (SERVFAIL, REFUSED, timeout).
    DnsServerError,
    /// `SERVICE_ERROR`: Sesame itself failed to check.
    ServiceError,
}

/// The zone's SOA as seen during a check (`SOARecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoaRecord {
    /// `PrimaryNameServer` (MNAME).
    pub primary_name_server: String,
    /// `AdminEmail` (RNAME).
    pub admin_email: String,
    /// `SerialNumber`.
    pub serial: u64,
}

/// What the DNS verifier knows and plans for one identity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verification {
    /// When the records were last looked at.
    pub last_checked: Option<Timestamp>,
    /// When they were last all found and right.
    pub last_success: Option<Timestamp>,
    /// What was wrong at the last check, if anything.
    pub error: Option<VerificationError>,
    /// The customer zone's SOA, when known.
    pub soa: Option<SoaRecord>,
    /// Start of the 72-hour window: when the set-up was (re)configured.
    pub pending_since: Option<Timestamp>,
    /// After SUCCESS: when the records were first found missing (start of the grace period).
    pub failing_since: Option<Timestamp>,
    /// When the next check is due; `None` when nobody looks any more (FAILED).
    pub next_check_at: Option<Timestamp>,
    /// Checks in a row that did not succeed (drives the backoff).
    pub attempts: u32,
}

/// `BehaviorOnMxFailure`: what SendEmail does while the MAIL FROM domain is not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum MxFailure {
    /// `USE_DEFAULT_VALUE`: send with the default envelope domain.
    #[default]
    UseDefaultValue,
    /// `REJECT_MESSAGE`: refuse the mail (`MailFromDomainNotVerifiedException`).
    RejectMessage,
}

/// A custom MAIL FROM domain and what the verifier knows of its MX record
/// (`MailFromAttributes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom {
    /// The domain, a proper subdomain of the identity's domain.
    pub domain: DomainName,
    /// `MailFromDomainStatus` (PENDING, SUCCESS, FAILED or TEMPORARY_FAILURE).
    pub status: DkimStatus,
    /// The verifier's record of its checks.
    pub verification: Verification,
}

/// An email identity of one account, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The owning account.
    pub account: AccountId,
    /// The identity's name.
    pub name: IdentityName,
    /// Optimistic-concurrency version, bumped by every stored update.
    pub version: u64,
    /// When it was created.
    pub created_at: Timestamp,
    /// `FeedbackForwardingStatus`; true for new identities.
    pub feedback_forwarding: bool,
    /// DKIM for domain identities; `None` for addresses.
    pub dkim: Option<Dkim>,
    /// For an address: its own DKIM signing override (PutEmailIdentityDkimAttributes).
    pub signing_override: Option<bool>,
    /// The identity's own verification status.
    pub verification_status: DkimStatus,
    /// Tags in insertion order.
    pub tags: Vec<Tag>,
    /// The DNS verifier's record for this identity; for an address, its link's: pending since
    /// it was mailed, due when it expires, `last_success` when it was followed.
    pub verification: Verification,
    /// The custom MAIL FROM domain, if one is set.
    pub mail_from: Option<MailFrom>,
    /// `BehaviorOnMxFailure`, kept whether or not a MAIL FROM domain is set.
    pub mx_failure: MxFailure,
    /// What the verifier recommends about the domain's DKIM, SPF and DMARC.
    pub recommendations: Recommendations,
    /// An address: the last verification link mailed to it (a domain: `None`).
    pub link: Option<VerificationLink>,
}

impl Identity {
    /// When the verifier should next look at the identity: the earliest of its DKIM check,
    /// its MAIL FROM check and its recommendations' re-check; `None` when none is scheduled.
    pub fn next_check_at(&self) -> Option<Timestamp> {
        [
            self.verification.next_check_at,
            self.mail_from
                .as_ref()
                .and_then(|m| m.verification.next_check_at),
            self.recommendations.next_check_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether this identity may be used to send (`VerifiedForSendingStatus`).
    pub fn verified_for_sending(&self) -> bool {
        self.verification_status == DkimStatus::Success
    }
}

/// One row of ListEmailIdentities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySummary {
    /// The name.
    pub name: IdentityName,
    /// The verification status.
    pub verification_status: DkimStatus,
}

/// How many identities share a type and a status: one row of the counts the metrics and the
/// console show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityCount {
    /// Domain or address.
    pub identity_type: IdentityType,
    /// The DKIM status; `None` for an address, which has no DKIM set-up of its own.
    pub dkim_status: Option<DkimStatus>,
    /// The verification status.
    pub verification_status: DkimStatus,
    /// How many.
    pub count: u64,
}

/// The filters of ListEmailIdentities (`IdentityFilter`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityFilter {
    /// `IDENTITY_NAME_CONTAINS`: a substring of the canonical name.
    pub name_contains: Option<String>,
    /// `IDENTITY_TYPE`.
    pub identity_type: Option<IdentityType>,
    /// `VERIFICATION_STATUS`.
    pub verification_status: Option<DkimStatus>,
}
