//! The domain's data: validated values and the identity record. Every value is built by
//! `parse()` (or a checked constructor) and is valid for its whole life.
//!
//! - `time`: `Timestamp`.
//! - `names`: account ids, domains, addresses, identity names, selectors, tokens.
//! - `tags`: resource tags and their merge rule.
//! - `dkim`: a domain's DKIM set-up and its key slots (`DkimKeys`).
//! - `identity`: the identity record, its verification state and the list filters.
//! - `link`: an address identity's verification link (its token, its hash, what is kept).
//! - `publisher`: a domain's DNS publisher (RFC 2136 target) and what it published.
//! - `advice`: deliverability recommendations (`Recommendation`) and their state.
//! - `mail`: mailboxes, destinations and message parts as SendEmail hands them over.
//! - `template`: custom verification email templates.
//! - `spelling`: the one spelling of each enumerated value (`SUCCESS`, `RSA_2048_BIT`, ...).

mod advice;
mod dkim;
mod identity;
mod link;
mod mail;
mod names;
mod publisher;
mod spelling;
mod tags;
mod template;
mod time;

pub use advice::{Advice, AdviceArea, AdviceImpact, AdviceKind, AdviceStatus, Recommendations};
pub use dkim::{
    Dkim, DkimKey, DkimKeys, DkimOrigin, KeyLength, KeyLengthHistory, Revocation, SlotState,
};
pub use identity::{
    DkimStatus, Identity, IdentityCount, IdentityFilter, IdentitySummary, MailFrom, MxFailure,
    SoaRecord, Verification, VerificationError,
};
pub use link::{LINK_LIFETIME_MS, LINK_TOKEN_LEN, LinkHash, LinkToken, NewLink, VerificationLink};
pub use mail::{Destination, HeaderAddresses, Mailbox, SimpleMessage};
pub use names::{
    AccountId, DkimToken, DomainName, EmailAddress, IdentityName, IdentityType, Selector,
};
pub use publisher::{PublishState, PublishedRecord, Publisher, Retiring};
pub use tags::{MAX_TAGS, Tag, merge_tags};
pub use template::{
    MAX_TEMPLATE_CONTENT, MAX_TEMPLATES, RedirectUrl, TemplateContent, TemplateName,
    VerificationTemplate,
};
pub use time::Timestamp;
