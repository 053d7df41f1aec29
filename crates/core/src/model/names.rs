//! Names: domains, addresses, identity names, selectors and Easy DKIM tokens. Each is built by
//! `parse()` and valid for its whole life; a refusal says what is wrong in a typed [`Invalid`].

use crate::error::Invalid;
use std::fmt;

/// A twelve-digit AWS account id, as it appears in ARNs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// Accepts exactly twelve ASCII digits, the AWS account id format.
    pub fn parse(s: &str) -> Result<AccountId, Invalid> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_owned()))
        } else {
            Err(Invalid::AccountId)
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
    pub fn parse(s: &str) -> Result<DomainName, Invalid> {
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Err(Invalid::DomainEmpty);
        }
        if s.len() > 253 {
            return Err(Invalid::DomainTooLong);
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return Err(Invalid::DomainOneLabel(s.to_owned()));
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
                return Err(Invalid::DomainLabel(s.to_owned()));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Invalid::DomainNumeric(s.to_owned()));
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
    pub fn parse(s: &str) -> Result<EmailAddress, Invalid> {
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(Invalid::AddressNoAt);
        };
        if local.is_empty() || local.len() > 64 {
            return Err(Invalid::AddressLocalLength(s.to_owned()));
        }
        let bad = |b: u8| {
            !(0x21..=0x7e).contains(&b) || matches!(b, b'"' | b'<' | b'>' | b'(' | b')' | b',')
        };
        if local.bytes().any(bad) || local.contains('@') {
            return Err(Invalid::Address(s.to_owned()));
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
    pub fn parse(s: &str) -> Result<IdentityName, Invalid> {
        if s.is_empty() {
            return Err(Invalid::NameEmpty);
        }
        if s.len() > 320 {
            return Err(Invalid::NameTooLong);
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
    pub fn parse(s: &str) -> Result<Selector, Invalid> {
        if s.is_empty() || s.len() > 63 {
            return Err(Invalid::SelectorLength);
        }
        let body_ok = s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !body_ok || s.starts_with('-') || s.ends_with('-') {
            return Err(Invalid::SelectorChars(s.to_owned()));
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
    pub fn parse(s: &str) -> Result<DkimToken, Invalid> {
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        {
            Ok(DkimToken(s.to_owned()))
        } else {
            Err(Invalid::Token)
        }
    }

    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, Invalid>) {
        match (IdentityName::parse(input), expected) {
            (Ok(n), Ok(e)) => assert_eq!(n.as_str(), e, "{input}"),
            (Err(got), Err(e)) => assert_eq!(got, e, "{input}"),
            (g, e) => panic!("{input}: got {g:?}, expected {e:?}"),
        }
    }

    #[test]
    fn identity_names() {
        let s = |x: &str| x.to_owned();
        check("Example.COM", Ok("example.com"));
        check("example.com.", Ok("example.com"));
        // Issue 12: SES refuses both; the probe created them.
        check(
            "mail_1.example.com",
            Err(Invalid::DomainLabel(s("mail_1.example.com"))),
        );
        check("192.0.2.1", Err(Invalid::DomainNumeric(s("192.0.2.1"))));
        check(
            "user@192.0.2.1",
            Err(Invalid::DomainNumeric(s("192.0.2.1"))),
        );
        check("1.2.example.com", Ok("1.2.example.com"));
        check("xn--bcher-kva.example", Ok("xn--bcher-kva.example"));
        check("User+Tag@Example.com", Ok("User+Tag@example.com"));
        check("localhost", Err(Invalid::DomainOneLabel(s("localhost"))));
        check(
            "-bad.example.com",
            Err(Invalid::DomainLabel(s("-bad.example.com"))),
        );
        check("a..b", Err(Invalid::DomainLabel(s("a..b"))));
        check("sp ace.com", Err(Invalid::DomainLabel(s("sp ace.com"))));
        check(
            "@example.com",
            Err(Invalid::AddressLocalLength(s("@example.com"))),
        );
        check(
            "a b@example.com",
            Err(Invalid::Address(s("a b@example.com"))),
        );
        check("", Err(Invalid::NameEmpty));
        check(&"a".repeat(321), Err(Invalid::NameTooLong));
        check(
            &format!("{}.com", "a".repeat(254)),
            Err(Invalid::DomainTooLong),
        );
        check("example.com@", Err(Invalid::DomainEmpty));
        let long = format!("{}.com", "a".repeat(64));
        check(&long, Err(Invalid::DomainLabel(long.clone())));
        assert_eq!(AccountId::parse("12345678901"), Err(Invalid::AccountId));
        assert!(AccountId::parse("123456789012").is_ok());
        assert_eq!(DkimToken::parse("abc"), Err(Invalid::Token));
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
}
