//! The one domain error enum. Its variants follow the exception shapes of the SESv2 model so
//! the API edge can map each onto exactly one AWS error code; every payload is typed, so the
//! edge also owns every message and knows which input member each refusal is about. The core
//! holds no member paths and no client-facing sentences. Names travel as their canonical text,
//! so this module depends on no other module of the crate.

/// Everything a use case can refuse or fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The thing asked for does not exist (in the caller's account).
    #[error("not found: {0:?}")]
    NotFound(Missing),
    /// A create found the identity already there.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The request is invalid.
    #[error("invalid: {0:?}")]
    Invalid(Invalid),
    /// An account quota is exhausted.
    #[error("{0:?} limit reached")]
    LimitExceeded(Limit),
    /// Mail that may not be sent.
    #[error("rejected: {0:?}")]
    MessageRejected(Rejection),
    /// Another writer kept changing the identity first; the client may retry.
    #[error("{0} was modified concurrently")]
    ConcurrentModification(String),
    /// The backing store is unreachable or failed; nothing was changed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the client gets a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

/// For logs and corrupt-row diagnostics only: what a client reads is the edge's sentence.
impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid value: {self:?}")
    }
}

impl std::error::Error for Invalid {}

impl From<Invalid> for Error {
    fn from(i: Invalid) -> Error {
        Error::Invalid(i)
    }
}

/// What was not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// An email identity of the caller's account.
    Identity(String),
    /// A configuration set (Sesame has none yet, so every name is unknown).
    ConfigurationSet(String),
    /// A custom verification email template of the caller's account.
    Template(String),
}

/// Which per-account quota a create would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Email identities (`--max-identities`).
    Identities,
    /// Custom verification email templates (SES: 50).
    Templates,
}

/// Why mail may not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// These addresses are not verified identities of the caller's (nor are their domains).
    NotVerified(Vec<String>),
    /// The domain (or the address's domain) does not sign: DKIM disabled or not verified.
    DoesNotSign(String),
    /// The raw message's own headers cannot be sent as they are.
    Message(MessageProblem),
    /// The sender's custom MAIL FROM domain is not verified and its `BehaviorOnMxFailure` is
    /// REJECT_MESSAGE.
    MailFromNotVerified {
        /// The MAIL FROM domain.
        mail_from: String,
        /// Its `MailFromDomainStatus` spelling.
        status: &'static str,
    },
    /// The domain's signing key was revoked (`sesame revoke`) and no replacement signs yet;
    /// the node refuses such mail rather than send it unsigned (`--revoked-key-mail`).
    KeyRevoked {
        /// The domain identity.
        domain: String,
        /// The revoked key's selector.
        selector: String,
    },
}

/// Why a raw message's own headers cannot be sent as they are (the mail port finds it): a
/// receiver could read its author differently from us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageProblem {
    /// Not exactly one `From:` header field.
    FromCount {
        /// How many there are.
        count: usize,
        /// Every address they name.
        addresses: Vec<String>,
    },
    /// More than one `Sender:` header field.
    SenderCount {
        /// How many there are.
        count: usize,
        /// Every address they name.
        addresses: Vec<String>,
    },
    /// A `From:` or `Sender:` field that does not read as mailboxes.
    Mailbox {
        /// `From` or `Sender`.
        field: &'static str,
        /// The field's text as written.
        text: String,
    },
    /// A `From:`/`Sender:` mailbox that is not a valid email address.
    SenderAddress(String),
    /// Several `From:` mailboxes and no `Sender:` to say who sent it.
    NoOwnSender(usize),
}

/// A refused input, typed; the edge decides which member it names and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// An AccountId that is not twelve digits.
    AccountId,
    /// A template name that is not 1 to 64 letters, digits, `_` or `-`.
    TemplateName(String),
    /// A redirection URL that is not an absolute http(s) URL (its start, as given).
    RedirectUrl(String),
    /// A template subject that is empty, over 998 characters or holds a line break.
    TemplateSubject,
    /// Text that is not a verification link's token.
    LinkToken,
    /// A template's content that is empty or too big.
    TemplateContentSize {
        /// The most bytes allowed.
        max: usize,
        /// How many it had.
        got: usize,
    },
    /// An identity name that is empty.
    NameEmpty,
    /// An identity name over 320 characters.
    NameTooLong,
    /// A domain name that is empty.
    DomainEmpty,
    /// A domain name over 253 characters.
    DomainTooLong,
    /// A domain name with one label.
    DomainOneLabel(String),
    /// A domain name with a label that is not 1..63 letters, digits or inner hyphens.
    DomainLabel(String),
    /// A domain name whose last label is all digits (an IP address).
    DomainNumeric(String),
    /// An address without an `@`.
    AddressNoAt,
    /// An address whose local part is empty or over 64 characters.
    AddressLocalLength(String),
    /// An address whose local part has a character SMTP forbids unquoted.
    Address(String),
    /// A selector that is empty or over 63 characters.
    SelectorLength,
    /// A selector with a character other than letters, digits and inner hyphens.
    SelectorChars(String),
    /// A DKIM token that is not 32 characters of `[a-z2-7]`.
    Token,
    /// A tag key that is empty or over 128 characters.
    TagKeyLength,
    /// A tag key with a character tags do not allow.
    TagKeyChars(String),
    /// A tag key with the reserved `aws:` prefix.
    TagKeyReserved,
    /// A tag value over 256 characters.
    TagValueLength,
    /// A tag value with a character tags do not allow.
    TagValueChars(String),
    /// The same tag key twice in one request.
    TagKeyRepeated(String),
    /// More tags than one resource may carry.
    TooManyTags(usize),
    /// DKIM signing attributes given for an address identity at creation.
    DkimOnAddressAtCreate,
    /// DKIM signing attributes set on an address identity.
    DkimOnAddress,
    /// The Easy DKIM key length asked for (in bits) is the one configured.
    KeyLengthUnchanged(u32),
    /// A second key-length change within 24 hours (not the first downgrade).
    KeyLengthChangedRecently,
    /// A rotation asked of an identity without DKIM keys (an address).
    NoDkimKeys,
    /// A rotation asked of a BYODKIM identity.
    NotEasyDkim,
    /// A rotation asked while one is in progress.
    RotationInProgress,
    /// Every token signs or keeps a retired key for mail in transit until this time (Unix ms).
    NoFreeToken(i64),
    /// A revocation named a token (selector) the identity has no key under.
    NoSuchToken(String),
    /// A revocation of a key already revoked.
    AlreadyRevoked(String),
    /// PutEmailIdentityDkimAttributes on an identity that does not exist.
    NotVerifiedForDkim(String),
    /// A MAIL FROM domain that is not a subdomain of the identity's domain (or is that domain).
    MailFromNotSubdomain {
        /// The MAIL FROM domain asked for.
        mail_from: String,
        /// The identity's domain.
        domain: String,
    },
    /// A BYODKIM private key that cannot be used.
    PrivateKey(KeyProblem),
    /// A mailbox with a control character (it would start a new header field).
    MailboxControl(String),
    /// A mailbox without a valid address in it.
    Mailbox(String),
    /// A raw message without a header section that can be parsed.
    RawUnparsable,
    /// A raw message whose header section has a bare CR or mixes CRLF and bare LF.
    RawLineEnds,
    /// No recipient in the request's destination nor in the message's headers.
    NoRecipients,
    /// More recipients than one message may have.
    TooManyRecipients {
        /// The limit.
        max: usize,
        /// How many there were.
        got: usize,
    },
}

/// What is wrong with a BYODKIM private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// Not DER PKCS#1 or PKCS#8.
    NotDer,
    /// Not an RSA key.
    NotRsa,
    /// A modulus outside 1024..=2048 bits.
    Bits(u32),
    /// The CRT factors are missing (a public-only or stripped key).
    MissingFactors,
    /// More than two primes.
    MultiPrime,
    /// The numbers do not belong together.
    Inconsistent,
}

/// What a `Store` can fail with; use cases turn these into [`Error`]s with context.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row is not there.
    #[error("not found")]
    NotFound,
    /// A unique key is taken.
    #[error("already exists")]
    AlreadyExists,
    /// The account's identity quota would be exceeded.
    #[error("limit exceeded")]
    LimitExceeded,
    /// The row's version moved since it was read.
    #[error("version conflict")]
    Conflict,
    /// The database failed or is unreachable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}
