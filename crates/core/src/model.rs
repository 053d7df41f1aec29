//! Validated domain newtypes: identity names, selectors, tokens, key lengths, tags and the
//! identity record itself. Every value is built by `parse()` and is valid for its whole life.

use crate::error::Error;
use std::fmt;

/// Milliseconds since the Unix epoch. The core never reads the system clock; it is handed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// One hour in milliseconds.
    pub const HOUR: i64 = 3_600_000;

    /// The timestamp `hours` later.
    pub fn plus_hours(self, hours: i64) -> Timestamp {
        Timestamp(self.0 + hours * Self::HOUR)
    }
}

/// A twelve-digit AWS account id, as it appears in ARNs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// Accepts exactly twelve ASCII digits, the AWS account id format.
    pub fn parse(s: &str) -> Result<AccountId, Error> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(Error::bad_request("AccountId", "must be twelve digits"))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A DNS domain name in canonical (lower-case, no trailing dot) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// Validates a host name: labels of 1..63 letters, digits and hyphens that do not start or
    /// end with a hyphen, at least two labels, at most 253 characters (RFC 1035 section 2.3.4),
    /// and a last label that is not all digits, so an IPv4 literal such as `192.0.2.1` is no
    /// domain (RFC 3696 section 2). As SES, no `_` (it marks service names such as
    /// `_domainkey`, which are not mail domains). Domain names are case-insensitive (SES
    /// developer guide), so they are lower-cased here and compared in that form everywhere.
    pub fn parse(s: &str) -> Result<DomainName, Error> {
        let field = "EmailIdentity";
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Err(Error::bad_request(field, "the domain name is empty"));
        }
        if s.len() > 253 {
            return Err(Error::bad_request(
                field,
                "a domain name has at most 253 characters",
            ));
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return Err(Error::bad_request(
                field,
                format!("'{s}' is not a valid domain name: it needs at least two labels"),
            ));
        }
        for label in &labels {
            let ok_chars = label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if label.is_empty()
                || label.len() > 63
                || !ok_chars
                || label.starts_with('-')
                || label.ends_with('-')
            {
                return Err(Error::bad_request(
                    field,
                    format!(
                        "'{s}' is not a valid domain name: each label must be 1 to 63 letters, \
                         digits or hyphens, not starting or ending with a hyphen"
                    ),
                ));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Error::bad_request(
                field,
                format!(
                    "'{s}' is not a valid domain name: its last label is all digits (an IP address is not a domain)"
                ),
            ));
        }
        Ok(DomainName(s.to_ascii_lowercase()))
    }

    /// The canonical name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address. Local parts are case-sensitive (SES developer guide), so the address is
/// kept exactly as given; only its domain part is lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress {
    full: String,
    at: usize,
}

impl EmailAddress {
    /// Validates `local@domain`: a local part of 1..64 printable ASCII characters without
    /// spaces, quotes or angle brackets (RFC 5321 section 4.5.3.1.1), and a valid domain.
    pub fn parse(s: &str) -> Result<EmailAddress, Error> {
        let field = "EmailIdentity";
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(Error::bad_request(field, "an email address needs an '@'"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(Error::bad_request(
                field,
                format!("'{s}': the local part of an email address has 1 to 64 characters"),
            ));
        }
        let bad = |b: u8| {
            !(0x21..=0x7e).contains(&b) || matches!(b, b'"' | b'<' | b'>' | b'(' | b')' | b',')
        };
        if local.bytes().any(bad) || local.contains('@') {
            return Err(Error::bad_request(
                field,
                format!("'{s}' is not a valid email address"),
            ));
        }
        let domain = DomainName::parse(domain)?;
        let full = format!("{local}@{}", domain.as_str());
        Ok(EmailAddress {
            at: local.len(),
            full,
        })
    }

    /// The address as stored.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The domain part.
    pub fn domain(&self) -> DomainName {
        DomainName(self.full[self.at + 1..].to_owned())
    }
}

/// The name of an email identity: a domain or an address. SES decides the type by the `@`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityName {
    /// A domain identity.
    Domain(DomainName),
    /// An email-address identity.
    Email(EmailAddress),
}

impl IdentityName {
    /// Parses an identity name; the model's only limit is `min: 1`, the rest is DNS and SMTP.
    pub fn parse(s: &str) -> Result<IdentityName, Error> {
        if s.is_empty() {
            return Err(Error::bad_request("EmailIdentity", "must not be empty"));
        }
        if s.len() > 320 {
            return Err(Error::bad_request(
                "EmailIdentity",
                "an identity name has at most 320 characters",
            ));
        }
        if s.contains('@') {
            EmailAddress::parse(s).map(IdentityName::Email)
        } else {
            DomainName::parse(s).map(IdentityName::Domain)
        }
    }

    /// The canonical name used as the storage key and in ARNs.
    pub fn as_str(&self) -> &str {
        match self {
            IdentityName::Domain(d) => d.as_str(),
            IdentityName::Email(e) => e.as_str(),
        }
    }

    /// The identity's type.
    pub fn kind(&self) -> IdentityType {
        match self {
            IdentityName::Domain(_) => IdentityType::Domain,
            IdentityName::Email(_) => IdentityType::EmailAddress,
        }
    }
}

impl fmt::Display for IdentityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The model's `IdentityType` (MANAGED_DOMAIN is not supported by SES either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityType {
    /// `EMAIL_ADDRESS`
    EmailAddress,
    /// `DOMAIN`
    Domain,
}

/// A BYODKIM selector: the model's `Selector` shape, 1..63 characters matching
/// `^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selector(String);

impl Selector {
    /// Validates against the model's pattern and length.
    pub fn parse(s: &str) -> Result<Selector, Error> {
        let field = "SigningAttributes.DomainSigningSelector";
        if s.is_empty() || s.len() > 63 {
            return Err(Error::bad_request(
                field,
                "a selector has 1 to 63 characters",
            ));
        }
        let body_ok = s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !body_ok || s.starts_with('-') || s.ends_with('-') {
            return Err(Error::bad_request(
                field,
                format!(
                    "'{s}' is not a valid selector: use letters, digits and hyphens only, \
                     not starting or ending with a hyphen (no dots)"
                ),
            ));
        }
        Ok(Selector(s.to_owned()))
    }

    /// Builds the selector of an Easy DKIM token (tokens are valid selectors by construction).
    pub fn from_token(t: &DkimToken) -> Selector {
        Selector(t.0.clone())
    }

    /// The selector text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An Easy DKIM token: 32 characters of `[a-z2-7]` (lower-case base32 of 160 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DkimToken(String);

impl DkimToken {
    /// Validates the token format.
    pub fn parse(s: &str) -> Result<DkimToken, Error> {
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        {
            Ok(DkimToken(s.to_owned()))
        } else {
            Err(Error::bad_request(
                "Token",
                "a DKIM token is 32 characters of [a-z2-7]",
            ))
        }
    }

    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The model's `DkimSigningKeyLength`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyLength {
    /// `RSA_1024_BIT`
    Rsa1024,
    /// `RSA_2048_BIT`
    Rsa2048,
}

impl KeyLength {
    /// The modulus size in bits.
    pub fn bits(self) -> u32 {
        match self {
            KeyLength::Rsa1024 => 1024,
            KeyLength::Rsa2048 => 2048,
        }
    }

    /// The length for a modulus size, if SES supports it.
    pub fn from_bits(bits: u32) -> Option<KeyLength> {
        match bits {
            1024 => Some(KeyLength::Rsa1024),
            2048 => Some(KeyLength::Rsa2048),
            _ => None,
        }
    }
}

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

/// A resource tag. Limits from the SES tagging documentation (the model states none): key
/// 1..128, value 0..256 characters of Unicode letters, digits, whitespace and `_.:/=+-@`;
/// the `aws:` prefix is reserved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    key: String,
    value: String,
}

/// The most tags one resource may carry.
pub const MAX_TAGS: usize = 50;

fn tag_chars_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

impl Tag {
    /// Validates a key and a value.
    pub fn parse(key: &str, value: &str) -> Result<Tag, Error> {
        Ok(Tag {
            key: Self::parse_key(key)?,
            value: Self::parse_value(value)?,
        })
    }

    /// Validates a tag key on its own (UntagResource takes bare keys).
    pub fn parse_key(key: &str) -> Result<String, Error> {
        let n = key.chars().count();
        if n == 0 || n > 128 {
            return Err(Error::bad_request(
                "Tag.Key",
                "a tag key has 1 to 128 characters",
            ));
        }
        if !tag_chars_ok(key) {
            return Err(Error::bad_request(
                "Tag.Key",
                format!(
                    "tag key '{key}' may contain only letters, digits, whitespace and _ . : / = + - @"
                ),
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(Error::bad_request(
                "Tag.Key",
                "the prefix 'aws:' is reserved",
            ));
        }
        Ok(key.to_owned())
    }

    fn parse_value(value: &str) -> Result<String, Error> {
        if value.chars().count() > 256 {
            return Err(Error::bad_request(
                "Tag.Value",
                "a tag value has at most 256 characters",
            ));
        }
        if !tag_chars_ok(value) {
            return Err(Error::bad_request(
                "Tag.Value",
                format!(
                    "tag value '{value}' may contain only letters, digits, whitespace and _ . : / = + - @"
                ),
            ));
        }
        Ok(value.to_owned())
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// Merges `incoming` into `existing` (same key: value replaced) and enforces [`MAX_TAGS`].
/// Keys repeated within `incoming` are a client mistake, as in AWS tagging APIs.
pub fn merge_tags(existing: &[Tag], incoming: &[Tag]) -> Result<Vec<Tag>, Error> {
    for (i, t) in incoming.iter().enumerate() {
        if incoming[..i].iter().any(|u| u.key == t.key) {
            return Err(Error::bad_request(
                "Tags",
                format!("tag key '{}' appears more than once", t.key),
            ));
        }
    }
    let mut out: Vec<Tag> = existing
        .iter()
        .filter(|t| !incoming.iter().any(|u| u.key == t.key))
        .cloned()
        .collect();
    out.extend(incoming.iter().cloned());
    if out.len() > MAX_TAGS {
        return Err(Error::bad_request(
            "Tags",
            format!("a resource can have at most {MAX_TAGS} tags"),
        ));
    }
    Ok(out)
}

/// A DKIM key pair as the core sees it: public half in the clear, private half sealed by the
/// `KeyVault` (the core never holds plaintext private keys).
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// The selector the key is published under (token or BYODKIM selector).
    pub selector: Selector,
    /// The modulus size in bits (BYODKIM allows any size from 1024 to 2048).
    pub bits: u32,
    /// DER SubjectPublicKeyInfo, the value behind `p=` in the DKIM TXT record.
    pub public_der: Vec<u8>,
    /// The private key sealed by the vault; opaque to everyone else.
    pub sealed_private: Vec<u8>,
    /// When the pair was generated or imported (and, within a second, published).
    pub created_at: Timestamp,
    /// When it stopped being the signing key; it stays published for the retention after.
    pub retired_at: Option<Timestamp>,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("selector", &self.selector)
            .field("bits", &self.bits)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// How an identity's DKIM is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimOrigin {
    /// Easy DKIM (`AWS_SES`): Sesame's keys behind three tokens.
    Easy {
        /// The three CNAME tokens, stable across key-length changes.
        tokens: Vec<DkimToken>,
        /// `NextSigningKeyLength` and when it last changed (for the once-a-day rule).
        lengths: crate::dkim::KeyLengthHistory,
    },
    /// Bring Your Own DKIM (`EXTERNAL`).
    External {
        /// The customer's selector.
        selector: Selector,
    },
}

/// The DKIM part of a domain identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dkim {
    /// Whether mail from the identity is signed.
    pub signing_enabled: bool,
    /// The DKIM verification status.
    pub status: DkimStatus,
    /// Easy DKIM or BYODKIM.
    pub origin: DkimOrigin,
    /// The keys: three for Easy DKIM (in token order), one for BYODKIM.
    pub keys: Vec<DkimKey>,
    /// Which key signs (an index into `keys`).
    pub active: usize,
    /// Easy DKIM rotation: the key published and waiting to become the signing key.
    pub staged: Option<usize>,
}

impl Dkim {
    /// The key that signs now.
    pub fn signing_key(&self) -> Option<&DkimKey> {
        self.keys.get(self.active)
    }

    /// The length of the key now in use (`CurrentSigningKeyLength`).
    pub fn current_length(&self) -> Option<KeyLength> {
        self.signing_key()
            .and_then(|k| KeyLength::from_bits(k.bits))
    }

    /// When the keys now in use were generated.
    pub fn last_key_generation(&self) -> Option<Timestamp> {
        self.keys.iter().map(|k| k.created_at).max()
    }
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
    /// The DNS verifier's record for this identity (domains only; default for addresses).
    pub verification: Verification,
}

impl Identity {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        let got = IdentityName::parse(input);
        match (got, expected) {
            (Ok(n), Ok(e)) => assert_eq!(n.as_str(), e, "{input}"),
            (Err(Error::BadRequest { reason, .. }), Err(e)) => {
                assert!(reason.contains(e), "{input}: {reason}")
            }
            (g, e) => panic!("{input}: got {g:?}, expected {e:?}"),
        }
    }

    #[test]
    fn identity_names() {
        check("Example.COM", Ok("example.com"));
        check("example.com.", Ok("example.com"));
        // Issue 12: SES refuses both; the probe created them.
        check("mail_1.example.com", Err("not a valid domain"));
        check("192.0.2.1", Err("last label is all digits"));
        check("user@192.0.2.1", Err("last label is all digits"));
        check("1.2.example.com", Ok("1.2.example.com"));
        check("xn--bcher-kva.example", Ok("xn--bcher-kva.example"));
        check("User+Tag@Example.com", Ok("User+Tag@example.com"));
        check("localhost", Err("at least two labels"));
        check("-bad.example.com", Err("not a valid domain"));
        check("a..b", Err("not a valid domain"));
        check("sp ace.com", Err("not a valid domain"));
        check("@example.com", Err("local part"));
        check("a b@example.com", Err("not a valid email"));
        check("", Err("must not be empty"));
        check(
            &format!("{}.com", "a".repeat(64)),
            Err("not a valid domain"),
        );
    }

    #[test]
    fn selectors() {
        assert!(Selector::parse("s1").is_ok());
        assert!(Selector::parse("a-b").is_ok());
        assert!(Selector::parse("a.b").is_err());
        assert!(Selector::parse("-a").is_err());
        assert!(Selector::parse(&"a".repeat(64)).is_err());
        assert!(Selector::parse(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn tags_merge_and_limits() {
        let a = Tag::parse("a", "1").unwrap();
        let a2 = Tag::parse("a", "2").unwrap();
        let b = Tag::parse("b", "").unwrap();
        let merged = merge_tags(&[a.clone(), b.clone()], std::slice::from_ref(&a2)).unwrap();
        assert_eq!(merged, vec![b, a2.clone()]);
        assert!(merge_tags(&[], &[a.clone(), a2]).is_err());
        assert!(Tag::parse("aws:x", "v").is_err());
        assert!(Tag::parse("", "v").is_err());
        assert!(Tag::parse(&"k".repeat(129), "v").is_err());
        assert!(Tag::parse("k", &"v".repeat(257)).is_err());
        assert!(Tag::parse("k!", "v").is_err());
        let many: Vec<Tag> = (0..51)
            .map(|i| Tag::parse(&format!("k{i}"), "").unwrap())
            .collect();
        assert!(merge_tags(&[], &many).is_err());
        assert!(merge_tags(&[], &many[..50]).is_ok());
    }
}
