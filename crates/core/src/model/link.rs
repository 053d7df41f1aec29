//! The verification link of an address identity (SES's verification mail): the secret a person
//! follows, of which only a hash is stored, and what the identity keeps of it.

use super::time::Timestamp;
use crate::error::Invalid;
use std::fmt;

/// How long a link works after it is mailed: SES's window.
pub const LINK_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// The secret in a verification link, as mailed: 32 random bytes in unpadded base64url
/// (43 characters). Only the vault makes one, and its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkToken(String);

/// The length of a token's text.
pub const LINK_TOKEN_LEN: usize = 43;

impl LinkToken {
    /// Reads a token from a link: 43 characters of the base64url alphabet whose last one
    /// carries no stray bits (so each token has one spelling). Anything else is no token of
    /// ours, refused without a lookup.
    pub fn parse(s: &str) -> Result<LinkToken, Invalid> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let shaped = bytes.len() == LINK_TOKEN_LEN && bytes.iter().all(|b| ALPHABET.contains(b));
        // 43 characters hold 258 bits; the last character's low two bits must be zero.
        let canonical = shaped
            && ALPHABET
                .iter()
                .position(|b| *b == bytes[LINK_TOKEN_LEN - 1])
                .is_some_and(|v| v & 0b11 == 0);
        if canonical {
            Ok(LinkToken(s.to_owned()))
        } else {
            Err(Invalid::LinkToken)
        }
    }

    /// The token's text, for the link only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkToken(<redacted>)")
    }
}

/// The SHA-256 of a token, in lower-case hex: what the store keeps and looks links up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkHash(String);

impl LinkHash {
    /// Validates a stored or computed hash (64 lower-case hex digits).
    pub fn parse(s: &str) -> Result<LinkHash, Invalid> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(LinkHash(s.to_owned()))
        } else {
            Err(Invalid::LinkToken)
        }
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A fresh link's secret and its hash, as the vault makes them.
#[derive(Debug, Clone)]
pub struct NewLink {
    /// What goes into the mail.
    pub token: LinkToken,
    /// What the store keeps.
    pub hash: LinkHash,
}

/// The last verification link mailed to an address identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationLink {
    /// The token's hash; the token itself is only in the mail.
    pub hash: LinkHash,
    /// When it was mailed.
    pub sent_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Where the browser goes after a successful click (the template's), else Sesame's page.
    pub success_url: Option<String>,
    /// Where it goes after a click on an expired link (the template's), else Sesame's page.
    pub failure_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_has_one_spelling() {
        let good = format!("{}A", "a".repeat(42));
        assert!(LinkToken::parse(&good).is_ok());
        // 'B' sets a bit past the 256 the token holds: another spelling of the 'A' token.
        for bad in [
            format!("{}B", "a".repeat(42)),
            "a".repeat(42),
            "a".repeat(44),
            format!("{}+A", "a".repeat(41)),
            format!("{}=A", "a".repeat(41)),
            String::new(),
        ] {
            assert_eq!(LinkToken::parse(&bad), Err(Invalid::LinkToken), "{bad}");
        }
        assert_eq!(
            format!("{:?}", LinkToken::parse(&good).unwrap()),
            "LinkToken(<redacted>)"
        );
    }

    #[test]
    fn hashes_are_64_lower_hex() {
        assert!(LinkHash::parse(&"0f".repeat(32)).is_ok());
        assert!(LinkHash::parse(&"0F".repeat(32)).is_err());
        assert!(LinkHash::parse(&"0f".repeat(31)).is_err());
    }
}
