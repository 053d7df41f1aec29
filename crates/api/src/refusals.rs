//! The client-facing text of every domain refusal. The core says what is wrong in types; this
//! module alone says it in words, in the style of SES's own messages where SES has one.

use sesame_core::error::{Invalid, KeyProblem, MessageProblem, Missing, Rejection};
use sesame_core::model::KeyLength;

/// An invalid input, as a sentence.
pub fn invalid(i: &Invalid) -> String {
    use Invalid as I;
    match i {
        I::AccountId => "must be twelve digits".into(),
        I::NameEmpty => "must not be empty".into(),
        I::NameTooLong => "an identity name has at most 320 characters".into(),
        I::DomainEmpty => "the domain name is empty".into(),
        I::DomainTooLong => "a domain name has at most 253 characters".into(),
        I::DomainOneLabel(s) => {
            format!("'{s}' is not a valid domain name: it needs at least two labels")
        }
        I::DomainLabel(s) => format!(
            "'{s}' is not a valid domain name: each label must be 1 to 63 letters, digits or \
             hyphens, not starting or ending with a hyphen"
        ),
        I::DomainNumeric(s) => format!(
            "'{s}' is not a valid domain name: its last label is all digits (an IP address is not a domain)"
        ),
        I::AddressNoAt => "an email address needs an '@'".into(),
        I::AddressLocalLength(s) => {
            format!("'{s}': the local part of an email address has 1 to 64 characters")
        }
        I::Address(s) => format!("'{s}' is not a valid email address"),
        I::SelectorLength => "a selector has 1 to 63 characters".into(),
        I::SelectorChars(s) => format!(
            "'{s}' is not a valid selector: use letters, digits and hyphens only, not starting \
             or ending with a hyphen (no dots)"
        ),
        I::Token => "a DKIM token is 32 characters of [a-z2-7]".into(),
        I::TagKeyLength => "a tag key has 1 to 128 characters".into(),
        I::TagKeyChars(k) => format!(
            "tag key '{k}' may contain only letters, digits, whitespace and _ . : / = + - @"
        ),
        I::TagKeyReserved => "the prefix 'aws:' is reserved".into(),
        I::TagValueLength => "a tag value has at most 256 characters".into(),
        I::TagValueChars(v) => format!(
            "tag value '{v}' may contain only letters, digits, whitespace and _ . : / = + - @"
        ),
        I::TagKeyRepeated(k) => format!("tag key '{k}' appears more than once"),
        I::TooManyTags(n) => format!("a resource can have at most {n} tags"),
        I::DkimOnAddressAtCreate => {
            "DkimSigningAttributes can only be specified when the email identity is a domain".into()
        }
        I::DkimOnAddress => "DKIM signing attributes can only be set on a domain identity".into(),
        I::KeyLengthUnchanged(bits) => format!(
            "the DKIM key length is already {}; choose a different length",
            KeyLength::from_bits(*bits).map_or("unknown", KeyLength::name)
        ),
        I::KeyLengthChangedRecently => {
            "the DKIM key length can be changed at most once in 24 hours".into()
        }
        I::NoDkimKeys => "only domain identities have DKIM keys".into(),
        I::NotEasyDkim => "only Easy DKIM keys are rotated by Sesame".into(),
        I::RotationInProgress => "a rotation is already in progress".into(),
        I::NoFreeToken(until) => format!(
            "every DKIM token is signing or keeps a retired key for mail in transit; try again after {until} (Unix ms)"
        ),
        I::NotVerifiedForDkim(name) => format!("Domain {name} is not verified for DKIM signing."),
        I::PrivateKey(p) => private_key(p),
        I::MailboxControl(s) => {
            format!("{s:?} is not a valid email address: it contains a control character")
        }
        I::Mailbox(s) => format!("'{s}' is not a valid email address"),
        I::RawUnparsable => "the raw message has no parsable headers".into(),
        I::RawLineEnds => {
            "the raw message's header section has a bare CR or mixes CRLF and bare LF line ends"
                .into()
        }
        I::NoRecipients => "no recipients in Destination or the message's headers".into(),
        I::TooManyRecipients { max, got } => {
            format!("a message can have at most {max} recipients; got {got}")
        }
    }
}

fn private_key(p: &KeyProblem) -> String {
    match p {
        KeyProblem::NotDer => "the private key is not a DER-encoded PKCS#1 or PKCS#8 private key \
                               (give the base64 body only, without the BEGIN/END lines)"
            .into(),
        KeyProblem::NotRsa => {
            "the private key is not an RSA key; DKIM keys for SES must be RSA".into()
        }
        KeyProblem::Bits(bits) => {
            format!("the RSA key has {bits} bits; it must have 1024 to 2048 bits")
        }
        KeyProblem::MissingFactors => "the RSA private key must include its prime factors (p, q) \
                                       and CRT values (dP, dQ, qInv)"
            .into(),
        KeyProblem::MultiPrime => "the RSA private key has more than two primes (RFC 8017 \
                                   otherPrimeInfos); Sesame imports two-prime RSA keys, as DKIM \
                                   signers make them"
            .into(),
        KeyProblem::Inconsistent => "the RSA private key is inconsistent".into(),
    }
}

/// What was not found, as SES says it.
pub fn missing(m: &Missing) -> String {
    match m {
        Missing::Identity(name) => format!("Email identity {name} does not exist."),
        Missing::ConfigurationSet(set) => format!("Configuration set {set} does not exist."),
    }
}

/// Why mail was not sent.
pub fn rejection(r: &Rejection) -> String {
    match r {
        Rejection::NotVerified(addresses) => format!(
            "Email address is not verified. The following identities failed the check: {}",
            addresses.join(", ")
        ),
        Rejection::DoesNotSign(name) => {
            format!("{name} does not sign: its DKIM must be enabled and verified (SUCCESS)")
        }
        Rejection::Message(p) => message(p),
    }
}

fn listed(addresses: &[String]) -> String {
    if addresses.is_empty() {
        String::new()
    } else {
        format!(" ({})", addresses.join(", "))
    }
}

fn message(p: &MessageProblem) -> String {
    match p {
        MessageProblem::FromCount { count, addresses } => format!(
            "the raw message has {count} From headers{}; exactly one is required",
            listed(addresses)
        ),
        MessageProblem::SenderCount { count, addresses } => format!(
            "the raw message has {count} Sender headers{}; at most one is allowed",
            listed(addresses)
        ),
        MessageProblem::Mailbox { field, text } => {
            format!("the raw message's {field} header does not name a valid mailbox: '{text}'")
        }
        MessageProblem::SenderAddress(a) => {
            format!("the raw message names '{a}' as its sender, which is not a valid email address")
        }
        MessageProblem::NoOwnSender(n) => {
            format!("the raw message has {n} From mailboxes and no Sender header")
        }
    }
}

/// An identity the account already has, in SES's words (sic).
pub fn already_exists(name: &str) -> String {
    format!("Email identity {name} already exist.")
}

/// The account's identity quota.
pub const LIMIT_EXCEEDED: &str = "The maximum number of email identities has been reached.";

/// A write that kept losing to other writers.
pub fn concurrent(name: &str) -> String {
    format!("Email identity {name} was modified concurrently; retry the request.")
}
