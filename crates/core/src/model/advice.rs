//! Deliverability recommendations (SES's VDM `Recommendation`): what the verifier found wrong or
//! weak in a domain's DKIM, SPF and DMARC set-up, each opened when first seen and marked fixed
//! when a later check sees it right.

use super::time::Timestamp;

/// One thing that can be wrong with a domain's set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdviceKind {
    /// DKIM verification FAILED: mail from the domain is not signed.
    DkimFailed,
    /// The signing key is 1024 bits.
    DkimWeakKey,
    /// No custom MAIL FROM domain: SPF cannot align with the From: domain.
    MailFromMissing,
    /// The MAIL FROM domain's MX record is missing or names another host.
    MailFromMx,
    /// No SPF record on the MAIL FROM domain.
    SpfMissing,
    /// An SPF record on the MAIL FROM domain that does not include Sesame's SPF domain.
    SpfWrong,
    /// More than one SPF record on the MAIL FROM domain (a permanent error everywhere).
    SpfMultiple,
    /// No DMARC record at `_dmarc.<domain>`.
    DmarcMissing,
    /// A DMARC record that does not parse.
    DmarcUnparsable,
    /// A DMARC record with `p=none`, for a long time.
    DmarcPolicyNone,
}

/// The recommendation's `Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdviceArea {
    /// `DKIM`
    Dkim,
    /// `SPF`
    Spf,
    /// `DMARC`
    Dmarc,
}

/// The recommendation's `Impact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdviceImpact {
    /// `LOW`
    Low,
    /// `HIGH`
    High,
}

/// The recommendation's `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdviceStatus {
    /// `OPEN`: the last check still saw it.
    Open,
    /// `FIXED`: a later check saw it right.
    Fixed,
}

impl AdviceKind {
    /// Every kind, in the order a list shows them.
    pub const ALL: [AdviceKind; 10] = [
        AdviceKind::DkimFailed,
        AdviceKind::DkimWeakKey,
        AdviceKind::MailFromMissing,
        AdviceKind::MailFromMx,
        AdviceKind::SpfMissing,
        AdviceKind::SpfWrong,
        AdviceKind::SpfMultiple,
        AdviceKind::DmarcMissing,
        AdviceKind::DmarcUnparsable,
        AdviceKind::DmarcPolicyNone,
    ];

    /// Its `Type`.
    pub fn area(self) -> AdviceArea {
        use AdviceKind::*;
        match self {
            DkimFailed | DkimWeakKey => AdviceArea::Dkim,
            MailFromMissing | MailFromMx | SpfMissing | SpfWrong | SpfMultiple => AdviceArea::Spf,
            DmarcMissing | DmarcUnparsable | DmarcPolicyNone => AdviceArea::Dmarc,
        }
    }

    /// Its `Impact`: HIGH where receivers reject or fail every message's check, LOW where
    /// mail still authenticates but less well than it could.
    pub fn impact(self) -> AdviceImpact {
        use AdviceKind::*;
        match self {
            DkimFailed | SpfMultiple | DmarcMissing => AdviceImpact::High,
            _ => AdviceImpact::Low,
        }
    }

    /// Whether publishing a DNS record closes it, so it is re-checked soon (on the PENDING
    /// backoff) while open. The others close when the identity is reconfigured, which
    /// schedules its own check, or (`p=none`) are a policy decision the daily check follows.
    pub fn recheck_soon(self) -> bool {
        !matches!(
            self,
            AdviceKind::DkimFailed
                | AdviceKind::DkimWeakKey
                | AdviceKind::MailFromMissing
                | AdviceKind::DmarcPolicyNone
        )
    }
}

/// One recommendation about one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    /// What it is about.
    pub kind: AdviceKind,
    /// Open or fixed.
    pub status: AdviceStatus,
    /// When it was first seen (`CreatedTimestamp`).
    pub created_at: Timestamp,
    /// When its status last changed (`LastUpdatedTimestamp`).
    pub updated_at: Timestamp,
}

/// An identity's recommendations and when they are next looked at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recommendations {
    /// At most one per kind, in `AdviceKind` order.
    pub items: Vec<Advice>,
    /// While one that DNS can fix is open: the next re-check, on the PENDING backoff.
    pub next_check_at: Option<Timestamp>,
    /// Re-checks in a row that found one still open (drives the backoff).
    pub attempts: u32,
}
