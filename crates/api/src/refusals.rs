//! The client-facing text of every domain refusal. The core says what is wrong in types; this
//! module alone says it in words, in the style of SES's own messages where SES has one.

use sesame_core::error::{Invalid, KeyProblem, Limit, MessageProblem, Missing, Rejection};
use sesame_core::model::KeyLength;

/// An invalid input, as a sentence.
pub fn invalid(i: &Invalid) -> String {
    use Invalid as I;
    match i {
        I::AccountId => "must be twelve digits".into(),
        I::TemplateName(n) => {
            format!("'{n}' is not a template name: 1 to 64 letters, digits, underscores or hyphens")
        }
        I::RedirectUrl(u) => {
            format!("'{u}' is not an absolute http:// or https:// URL of at most 2048 characters")
        }
        I::TemplateSubject => "a template subject is 1 to 998 characters on one line".into(),
        I::LinkToken => "not a verification link's token".into(),
        I::TemplateContentSize { max, got } => {
            format!("the template content must be 1 to {max} bytes; it is {got}")
        }
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
        I::NoSuchToken(t) => format!("the identity has no DKIM key under the token {t}"),
        I::AlreadyRevoked(t) => format!("the DKIM key under the token {t} is already revoked"),
        I::NotVerifiedForDkim(name) => format!("Domain {name} is not verified for DKIM signing."),
        I::MailFromNotSubdomain { mail_from, domain } => format!(
            "the MAIL FROM domain {mail_from} must be a subdomain of {domain}, not {domain} itself nor another domain"
        ),
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
        Missing::Template(name) => {
            format!("Custom verification email template {name} does not exist.")
        }
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
        Rejection::MailFromNotVerified { mail_from, status } => format!(
            "The MAIL FROM domain {mail_from} is not verified (MailFromDomainStatus {status}) and \
             BehaviorOnMxFailure is REJECT_MESSAGE: publish its MX record, or set \
             BehaviorOnMxFailure to USE_DEFAULT_VALUE to send from the default MAIL FROM domain"
        ),
        Rejection::KeyRevoked { domain, selector } => format!(
            "the DKIM key of {domain} (selector {selector}) was revoked and no replacement signs \
             yet; mail from {domain} is refused until the replacement is verified in DNS"
        ),
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
pub fn limit_exceeded(limit: Limit) -> &'static str {
    match limit {
        Limit::Identities => "The maximum number of email identities has been reached.",
        Limit::Templates => {
            "The maximum number of custom verification email templates (50) has been reached."
        }
    }
}

/// A write that kept losing to other writers.
pub fn concurrent(name: &str) -> String {
    format!("Email identity {name} was modified concurrently; retry the request.")
}

#[cfg(test)]
mod tests {
    //! Pins every refusal's words to what clients read before the typed errors (the texts the
    //! core and the crypto crate wrote themselves until issue 14).
    use super::*;
    use std::collections::BTreeSet;

    /// Each variant's place in the table; the match has no wildcard, so a new variant does not
    /// compile until it has one, and the table test then fails until it has a line.
    fn variant(i: &Invalid) -> usize {
        use Invalid as I;
        match i {
            I::AccountId => 0,
            I::NameEmpty => 1,
            I::NameTooLong => 2,
            I::DomainEmpty => 3,
            I::DomainTooLong => 4,
            I::DomainOneLabel(_) => 5,
            I::DomainLabel(_) => 6,
            I::DomainNumeric(_) => 7,
            I::AddressNoAt => 8,
            I::AddressLocalLength(_) => 9,
            I::Address(_) => 10,
            I::SelectorLength => 11,
            I::SelectorChars(_) => 12,
            I::Token => 13,
            I::TagKeyLength => 14,
            I::TagKeyChars(_) => 15,
            I::TagKeyReserved => 16,
            I::TagValueLength => 17,
            I::TagValueChars(_) => 18,
            I::TagKeyRepeated(_) => 19,
            I::TooManyTags(_) => 20,
            I::DkimOnAddressAtCreate => 21,
            I::DkimOnAddress => 22,
            I::KeyLengthUnchanged(_) => 23,
            I::KeyLengthChangedRecently => 24,
            I::NoDkimKeys => 25,
            I::NotEasyDkim => 26,
            I::RotationInProgress => 27,
            I::NoFreeToken(_) => 28,
            I::NotVerifiedForDkim(_) => 29,
            I::PrivateKey(_) => 30,
            I::MailboxControl(_) => 31,
            I::Mailbox(_) => 32,
            I::RawUnparsable => 33,
            I::RawLineEnds => 34,
            I::NoRecipients => 35,
            I::TooManyRecipients { .. } => 36,
            I::MailFromNotSubdomain { .. } => 37,
            I::TemplateName(_) => 38,
            I::RedirectUrl(_) => 39,
            I::TemplateSubject => 40,
            I::TemplateContentSize { .. } => 41,
            I::LinkToken => 42,
            I::NoSuchToken(_) => 43,
            I::AlreadyRevoked(_) => 44,
        }
    }
    const VARIANTS: usize = 45;

    #[test]
    fn every_invalid_input_reads_as_before() {
        use Invalid as I;
        let s = |x: &str| x.to_owned();
        let table: Vec<(Invalid, &str)> = vec![
            (I::AccountId, "must be twelve digits"),
            (I::NameEmpty, "must not be empty"),
            (
                I::NameTooLong,
                "an identity name has at most 320 characters",
            ),
            (I::DomainEmpty, "the domain name is empty"),
            (I::DomainTooLong, "a domain name has at most 253 characters"),
            (
                I::DomainOneLabel(s("localhost")),
                "'localhost' is not a valid domain name: it needs at least two labels",
            ),
            (
                I::DomainLabel(s("a..b")),
                "'a..b' is not a valid domain name: each label must be 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen",
            ),
            (
                I::DomainNumeric(s("192.0.2.1")),
                "'192.0.2.1' is not a valid domain name: its last label is all digits (an IP address is not a domain)",
            ),
            (I::AddressNoAt, "an email address needs an '@'"),
            (
                I::AddressLocalLength(s("@example.com")),
                "'@example.com': the local part of an email address has 1 to 64 characters",
            ),
            (
                I::Address(s("a b@x.com")),
                "'a b@x.com' is not a valid email address",
            ),
            (I::SelectorLength, "a selector has 1 to 63 characters"),
            (
                I::SelectorChars(s("a.b")),
                "'a.b' is not a valid selector: use letters, digits and hyphens only, not starting or ending with a hyphen (no dots)",
            ),
            (I::Token, "a DKIM token is 32 characters of [a-z2-7]"),
            (I::TagKeyLength, "a tag key has 1 to 128 characters"),
            (
                I::TagKeyChars(s("k!")),
                "tag key 'k!' may contain only letters, digits, whitespace and _ . : / = + - @",
            ),
            (I::TagKeyReserved, "the prefix 'aws:' is reserved"),
            (I::TagValueLength, "a tag value has at most 256 characters"),
            (
                I::TagValueChars(s("v!")),
                "tag value 'v!' may contain only letters, digits, whitespace and _ . : / = + - @",
            ),
            (
                I::TagKeyRepeated(s("a")),
                "tag key 'a' appears more than once",
            ),
            (I::TooManyTags(50), "a resource can have at most 50 tags"),
            (
                I::DkimOnAddressAtCreate,
                "DkimSigningAttributes can only be specified when the email identity is a domain",
            ),
            (
                I::DkimOnAddress,
                "DKIM signing attributes can only be set on a domain identity",
            ),
            (
                I::KeyLengthUnchanged(2048),
                "the DKIM key length is already RSA_2048_BIT; choose a different length",
            ),
            (
                I::KeyLengthChangedRecently,
                "the DKIM key length can be changed at most once in 24 hours",
            ),
            (I::NoDkimKeys, "only domain identities have DKIM keys"),
            (I::NotEasyDkim, "only Easy DKIM keys are rotated by Sesame"),
            (I::RotationInProgress, "a rotation is already in progress"),
            (
                I::NoFreeToken(1_700_000_000_000),
                "every DKIM token is signing or keeps a retired key for mail in transit; try again after 1700000000000 (Unix ms)",
            ),
            (
                I::NotVerifiedForDkim(s("example.com")),
                "Domain example.com is not verified for DKIM signing.",
            ),
            (
                I::NoSuchToken(s("t1")),
                "the identity has no DKIM key under the token t1",
            ),
            (
                I::AlreadyRevoked(s("t1")),
                "the DKIM key under the token t1 is already revoked",
            ),
            (
                I::MailFromNotSubdomain {
                    mail_from: s("example.org"),
                    domain: s("example.com"),
                },
                "the MAIL FROM domain example.org must be a subdomain of example.com, not example.com itself nor another domain",
            ),
            (
                I::TemplateName(s("a b")),
                "'a b' is not a template name: 1 to 64 letters, digits, underscores or hyphens",
            ),
            (
                I::RedirectUrl(s("x.example")),
                "'x.example' is not an absolute http:// or https:// URL of at most 2048 characters",
            ),
            (
                I::TemplateSubject,
                "a template subject is 1 to 998 characters on one line",
            ),
            (
                I::TemplateContentSize { max: 10, got: 11 },
                "the template content must be 1 to 10 bytes; it is 11",
            ),
            (I::LinkToken, "not a verification link's token"),
            (
                I::PrivateKey(KeyProblem::Bits(512)),
                "the RSA key has 512 bits; it must have 1024 to 2048 bits",
            ),
            (
                I::MailboxControl(s("a\nb")),
                "\"a\\nb\" is not a valid email address: it contains a control character",
            ),
            (
                I::Mailbox(s("nobody")),
                "'nobody' is not a valid email address",
            ),
            (I::RawUnparsable, "the raw message has no parsable headers"),
            (
                I::RawLineEnds,
                "the raw message's header section has a bare CR or mixes CRLF and bare LF line ends",
            ),
            (
                I::NoRecipients,
                "no recipients in Destination or the message's headers",
            ),
            (
                I::TooManyRecipients { max: 50, got: 51 },
                "a message can have at most 50 recipients; got 51",
            ),
        ];
        let mut seen = BTreeSet::new();
        for (i, want) in &table {
            assert_eq!(invalid(i), *want, "{i:?}");
            seen.insert(variant(i));
        }
        assert_eq!(seen, (0..VARIANTS).collect(), "a variant without a line");
    }

    #[test]
    fn every_key_problem_missing_thing_and_rejection_reads_as_before() {
        let keys = [
            (
                KeyProblem::NotDer,
                "the private key is not a DER-encoded PKCS#1 or PKCS#8 private key (give the base64 body only, without the BEGIN/END lines)",
            ),
            (
                KeyProblem::NotRsa,
                "the private key is not an RSA key; DKIM keys for SES must be RSA",
            ),
            (
                KeyProblem::Bits(3072),
                "the RSA key has 3072 bits; it must have 1024 to 2048 bits",
            ),
            (
                KeyProblem::MissingFactors,
                "the RSA private key must include its prime factors (p, q) and CRT values (dP, dQ, qInv)",
            ),
            (
                KeyProblem::MultiPrime,
                "the RSA private key has more than two primes (RFC 8017 otherPrimeInfos); Sesame imports two-prime RSA keys, as DKIM signers make them",
            ),
            (
                KeyProblem::Inconsistent,
                "the RSA private key is inconsistent",
            ),
        ];
        for (p, want) in keys {
            assert_eq!(private_key(&p), want, "{p:?}");
        }
        assert_eq!(
            missing(&Missing::Identity("example.com".into())),
            "Email identity example.com does not exist."
        );
        assert_eq!(
            missing(&Missing::ConfigurationSet("cs".into())),
            "Configuration set cs does not exist."
        );
        assert_eq!(
            rejection(&Rejection::NotVerified(vec![
                "a@x.com".into(),
                "b@y.org".into()
            ])),
            "Email address is not verified. The following identities failed the check: a@x.com, b@y.org"
        );
        assert_eq!(
            rejection(&Rejection::DoesNotSign("example.com".into())),
            "example.com does not sign: its DKIM must be enabled and verified (SUCCESS)"
        );
        let m = |p: MessageProblem| rejection(&Rejection::Message(p));
        assert_eq!(
            m(MessageProblem::FromCount {
                count: 2,
                addresses: vec!["a@x.com".into(), "b@x.com".into()]
            }),
            "the raw message has 2 From headers (a@x.com, b@x.com); exactly one is required"
        );
        assert_eq!(
            m(MessageProblem::SenderCount {
                count: 2,
                addresses: vec![]
            }),
            "the raw message has 2 Sender headers; at most one is allowed"
        );
        assert_eq!(
            m(MessageProblem::Mailbox {
                field: "From",
                text: "x".into()
            }),
            "the raw message's From header does not name a valid mailbox: 'x'"
        );
        assert_eq!(
            m(MessageProblem::SenderAddress("x".into())),
            "the raw message names 'x' as its sender, which is not a valid email address"
        );
        assert_eq!(
            m(MessageProblem::NoOwnSender(2)),
            "the raw message has 2 From mailboxes and no Sender header"
        );
        assert_eq!(
            already_exists("example.com"),
            "Email identity example.com already exist."
        );
        assert_eq!(
            concurrent("example.com"),
            "Email identity example.com was modified concurrently; retry the request."
        );
    }
}
