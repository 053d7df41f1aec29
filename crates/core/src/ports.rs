//! The only doors out of the core: storage, the clock, the key vault and the mail system.
//! Implementations live in `sesame-store`, `sesame-crypto`, `sesame-mail` and the server; tests
//! use the fakes in `testing`.

use crate::error::{Error, StoreError};
use crate::model::{
    AccountId, DkimToken, EmailAddress, Identity, IdentityFilter, IdentityName, IdentitySummary,
    KeyLength, Timestamp,
};
use std::fmt;

/// Where time comes from. Injected so 24-hour and 72-hour rules are tested without waiting.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// An account (tenant). Every identity belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The twelve-digit id used in ARNs.
    pub id: AccountId,
    /// A unique human name (`default` for the bootstrap account).
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// An access key of an account; the secret is sealed by the vault.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// The public key id (`AKIA…`).
    pub id: String,
    /// The owning account.
    pub account: AccountId,
    /// The secret access key, sealed.
    pub sealed_secret: Vec<u8>,
    /// Disabled keys authenticate nothing.
    pub enabled: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("account", &self.account)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// Durable storage. Every method is one transaction: it either happens entirely or not at all,
/// and once it returns `Ok` the change survives a crash.
pub trait Store: Send + Sync {
    /// Inserts a new identity unless the name is taken (`AlreadyExists`) or the account already
    /// holds `max_identities` (`LimitExceeded`); both checks happen inside the transaction.
    fn insert_identity(&self, identity: &Identity, max_identities: u64) -> Result<(), StoreError>;
    /// Reads one identity with its keys and tags.
    fn get_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Option<Identity>, StoreError>;
    /// Replaces an identity if its stored version still equals `identity.version` (`Conflict`
    /// otherwise, `NotFound` if it is gone); stores `version + 1` and returns it.
    fn update_identity(&self, identity: &Identity) -> Result<u64, StoreError>;
    /// Deletes an identity with its keys and tags (`NotFound` if absent).
    fn delete_identity(&self, account: &AccountId, name: &IdentityName) -> Result<(), StoreError>;
    /// Up to `limit` identities of the account matching `filter` whose canonical names sort
    /// after `after`, in ascending byte order of the name (stable for pagination).
    fn list_identities(
        &self,
        account: &AccountId,
        filter: &IdentityFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IdentitySummary>, StoreError>;

    /// Atomically picks up to `limit` identities whose `next_check_at` is due and that no live
    /// lease holds, leases them until `lease_until`, and returns them. Two callers never get
    /// the same identity while the lease lasts; any write of the identity ends the lease.
    fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Identity>, StoreError>;
    /// Every Easy DKIM public key currently published: `(token, DER SubjectPublicKeyInfo)`.
    fn published_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// A number that changes whenever the published keys may have changed (cheap to poll).
    fn key_generation(&self) -> Result<u64, StoreError>;

    /// Creates an account (`AlreadyExists` if the name or id is taken).
    fn insert_account(&self, account: &Account) -> Result<(), StoreError>;
    /// Finds an account by its name.
    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError>;
    /// All accounts, by name.
    fn list_accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// Inserts or replaces an access key.
    fn put_access_key(&self, key: &AccessKey) -> Result<(), StoreError>;
    /// Finds an access key by id.
    fn access_key(&self, id: &str) -> Result<Option<AccessKey>, StoreError>;
    /// All access keys of an account.
    fn access_keys_of(&self, account: &AccountId) -> Result<Vec<AccessKey>, StoreError>;
}

/// A fresh or imported key pair, private half already sealed.
#[derive(Clone)]
pub struct NewKey {
    /// The modulus size in bits.
    pub bits: u32,
    /// DER SubjectPublicKeyInfo.
    pub public_der: Vec<u8>,
    /// The sealed private key.
    pub sealed_private: Vec<u8>,
}

/// A private key handed in by a client (BYODKIM), DER bytes. The core only passes it on to the
/// vault; its `Debug` never shows the bytes.
pub struct PrivateKeyInput(pub Vec<u8>);

impl fmt::Debug for PrivateKeyInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyInput(<redacted>)")
    }
}

/// Key generation, import and sealing; the only holder of plaintext private keys.
pub trait KeyVault: Send + Sync {
    /// Generates an RSA key pair of `length`.
    fn generate(&self, length: KeyLength) -> Result<NewKey, Error>;
    /// Generates `n` distinct key pairs of `length`. The default calls `generate` on `n`
    /// parallel threads (one inline when `n` is 1), since an RSA-2048 key costs a CPU-bound
    /// 50..400 ms; a vault with keys made in advance overrides it to hand them out without
    /// spawning anything.
    fn generate_many(&self, length: KeyLength, n: usize) -> Result<Vec<NewKey>, Error> {
        generate_parallel(self, length, n)
    }
    /// Validates and seals a customer's RSA private key (PKCS#1 or PKCS#8 DER, 1024..=2048
    /// bits). Anything else is a `BadRequest` that says what is wrong.
    fn import(&self, key: &PrivateKeyInput) -> Result<NewKey, Error>;
    /// A fresh Easy DKIM token from a CSPRNG.
    fn new_token(&self) -> Result<DkimToken, Error>;
    /// A fresh SendEmail message id from a CSPRNG: a UUID v4 in its usual text form, the shape
    /// SES's `MessageId` has.
    fn new_message_id(&self) -> Result<String, Error>;
    /// `message` with a DKIM-Signature for `d=domain`, `s=selector`, signed at `now` (its `t=`)
    /// prepended, made with the sealed private key; the vault unseals it (and may keep the
    /// unsealed key, so only this trait's implementation ever holds it).
    fn sign(
        &self,
        sealed_private: &[u8],
        message: &[u8],
        domain: &str,
        selector: &str,
        now: Timestamp,
    ) -> Result<Vec<u8>, Error>;
}

/// `n` calls of `vault.generate(length)`, on parallel scoped threads when there is more than
/// one (the default `KeyVault::generate_many`, also for wrappers that need it for a remainder).
pub fn generate_parallel<V: KeyVault + ?Sized>(
    vault: &V,
    length: KeyLength,
    n: usize,
) -> Result<Vec<NewKey>, Error> {
    if n <= 1 {
        return (0..n).map(|_| vault.generate(length)).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(|| vault.generate(length))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| Error::Internal("key generation thread panicked".into()))?
            })
            .collect()
    })
}

/// A mailbox as a client wrote it (`"Name" <addr>` or a bare address) with its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The text as given, display name included; written into the message as it is.
    pub written: String,
    /// The address inside it.
    pub address: EmailAddress,
}

impl Mailbox {
    /// Reads `written`; `field` names where it came from in a refusal.
    pub fn parse(field: &'static str, written: &str) -> Result<Mailbox, Error> {
        // A control character in a display name would end up inside a header we write (CR or
        // LF start a new field: header injection).
        if written.chars().any(char::is_control) {
            return Err(Error::bad_request(
                field,
                format!(
                    "{written:?} is not a valid email address: it contains a control character"
                ),
            ));
        }
        let inner = match (written.rfind('<'), written.rfind('>')) {
            (Some(o), Some(c)) if o < c => written[o + 1..c].trim(),
            _ => written.trim(),
        };
        let address = EmailAddress::parse(inner).map_err(|_| {
            Error::bad_request(field, format!("'{written}' is not a valid email address"))
        })?;
        Ok(Mailbox {
            written: written.to_owned(),
            address,
        })
    }
}

/// Whom a message goes to, as the request names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destination {
    /// `To:` recipients.
    pub to: Vec<Mailbox>,
    /// `Cc:` recipients.
    pub cc: Vec<Mailbox>,
    /// Recipients of the envelope only, never written into the message.
    pub bcc: Vec<Mailbox>,
}

impl Destination {
    /// Every recipient's address, To then Cc then Bcc (the SMTP envelope).
    pub fn recipients(&self) -> Vec<EmailAddress> {
        self.to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .map(|m| m.address.clone())
            .collect()
    }
}

/// A message to compose from its parts (SendEmail's `Simple` content), validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleMessage {
    /// The author, also the envelope sender.
    pub from: Mailbox,
    /// `Reply-To:` mailboxes.
    pub reply_to: Vec<Mailbox>,
    /// The subject line.
    pub subject: String,
    /// The text part.
    pub text: Option<String>,
    /// The HTML part.
    pub html: Option<String>,
    /// Extra header fields (name, value), none of those the composer writes itself.
    pub headers: Vec<(String, String)>,
}

/// The addresses a whole message names in its header section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderAddresses {
    /// Every mailbox of its one `From:` field, in order.
    pub from: Vec<String>,
    /// The mailbox of its `Sender:` field, if any.
    pub sender: Option<String>,
    /// Its To, Cc and Bcc addresses, in that order.
    pub recipients: Vec<String>,
}

/// Why a whole message's header section is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderFault {
    /// It cannot be read reliably at all (no headers, inconsistent line ends): a bad request.
    Malformed(String),
    /// It reads, but names its author in a way that cannot be checked (no or several `From:`
    /// fields, a mailbox without an address): the message is refused.
    Refused(String),
}

/// The mail system: the message format (composing, reading headers) and delivery (a directory,
/// an SMTP relay). Delivering `Ok` means the message is safe.
pub trait Mailer: Send + Sync {
    /// `message` as MIME with `Message-ID: <message_id>` and `Date:` at `now`; Bcc recipients
    /// of `destination` are never written into it.
    fn compose(
        &self,
        message: &SimpleMessage,
        destination: &Destination,
        message_id: &str,
        now: Timestamp,
    ) -> Result<Vec<u8>, Error>;
    /// Who a whole message says it is from and for.
    fn read_headers(&self, message: &[u8]) -> Result<HeaderAddresses, HeaderFault>;
    /// Delivers `message` under `message_id` from `from` to `recipients` (the SMTP envelope:
    /// Bcc recipients are here, not in the message).
    fn deliver(
        &self,
        message_id: &str,
        from: &EmailAddress,
        recipients: &[EmailAddress],
        message: &[u8],
    ) -> Result<(), Error>;
}
