//! The one spelling of each enumerated value: SES's model names the values (`SUCCESS`,
//! `RSA_2048_BIT`, ...) and Sesame's storage has always stored those same words, so the wire
//! edge and both database back ends read and write them through this table alone.

use super::advice::{AdviceArea, AdviceImpact, AdviceKind, AdviceStatus};
use super::dkim::KeyLength;
use super::identity::{DkimStatus, MxFailure, VerificationError};
use super::names::IdentityType;

macro_rules! spelled {
    ($ty:ty { $($variant:path => $text:literal,)+ }) => {
        impl $ty {
            /// Every value's spelling, in the model's order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value's spelling.
            pub fn name(self) -> &'static str {
                match self {
                    $($variant => $text,)+
                }
            }

            /// The value a spelling names, if any (exact, case-sensitive).
            pub fn from_name(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($variant),)+
                    _ => None,
                }
            }
        }
    };
}

spelled!(MxFailure {
    MxFailure::UseDefaultValue => "USE_DEFAULT_VALUE",
    MxFailure::RejectMessage => "REJECT_MESSAGE",
});

spelled!(AdviceArea {
    AdviceArea::Dkim => "DKIM",
    AdviceArea::Spf => "SPF",
    AdviceArea::Dmarc => "DMARC",
});

spelled!(AdviceImpact {
    AdviceImpact::Low => "LOW",
    AdviceImpact::High => "HIGH",
});

spelled!(AdviceStatus {
    AdviceStatus::Open => "OPEN",
    AdviceStatus::Fixed => "FIXED",
});

// Stored only (the wire shows a kind as its description).
spelled!(AdviceKind {
    AdviceKind::DkimFailed => "DKIM_FAILED",
    AdviceKind::DkimWeakKey => "DKIM_WEAK_KEY",
    AdviceKind::MailFromMissing => "MAIL_FROM_MISSING",
    AdviceKind::MailFromMx => "MAIL_FROM_MX",
    AdviceKind::SpfMissing => "SPF_MISSING",
    AdviceKind::SpfWrong => "SPF_WRONG",
    AdviceKind::SpfMultiple => "SPF_MULTIPLE",
    AdviceKind::DmarcMissing => "DMARC_MISSING",
    AdviceKind::DmarcUnparsable => "DMARC_UNPARSABLE",
    AdviceKind::DmarcPolicyNone => "DMARC_POLICY_NONE",
});

spelled!(DkimStatus {
    DkimStatus::Pending => "PENDING",
    DkimStatus::Success => "SUCCESS",
    DkimStatus::Failed => "FAILED",
    DkimStatus::TemporaryFailure => "TEMPORARY_FAILURE",
    DkimStatus::NotStarted => "NOT_STARTED",
});

spelled!(KeyLength {
    KeyLength::Rsa1024 => "RSA_1024_BIT",
    KeyLength::Rsa2048 => "RSA_2048_BIT",
});

spelled!(IdentityType {
    IdentityType::EmailAddress => "EMAIL_ADDRESS",
    IdentityType::Domain => "DOMAIN",
});

spelled!(VerificationError {
    VerificationError::ServiceError => "SERVICE_ERROR",
    VerificationError::DnsServerError => "DNS_SERVER_ERROR",
    VerificationError::HostNotFound => "HOST_NOT_FOUND",
    VerificationError::InvalidValue => "INVALID_VALUE",
    VerificationError::TypeNotFound => "TYPE_NOT_FOUND",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_reads_back_as_its_value() {
        for n in DkimStatus::NAMES {
            assert_eq!(DkimStatus::from_name(n).map(DkimStatus::name), Some(*n));
        }
        for n in KeyLength::NAMES {
            assert_eq!(KeyLength::from_name(n).map(KeyLength::name), Some(*n));
        }
        for n in IdentityType::NAMES {
            assert_eq!(IdentityType::from_name(n).map(IdentityType::name), Some(*n));
        }
        for n in VerificationError::NAMES {
            let v = VerificationError::from_name(n);
            assert_eq!(v.map(VerificationError::name), Some(*n));
        }
        assert_eq!(DkimStatus::from_name("success"), None);
    }
}
