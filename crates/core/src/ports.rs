//! The only doors out of the core: storage, the clock, the key vault and the mail system.
//! Implementations live in `sesame-store`, `sesame-crypto`, `sesame-mail` and the server; tests
//! use the fakes in `testing`.

use crate::error::{Error, StoreError};
use crate::model::{
    AccountId, Destination, DkimToken, DomainName, EmailAddress, HeaderAddresses, Identity,
    IdentityCount, IdentityFilter, IdentityName, IdentitySummary, KeyLength, LinkHash, LinkToken,
    NewLink, PublishState, Publisher, SimpleMessage, TemplateName, Timestamp, VerificationTemplate,
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

/// Durable storage of identities. Like every store trait here, each method is one transaction:
/// it either happens entirely or not at all, and once it returns `Ok` the change survives a
/// crash.
pub trait IdentityStore: Send + Sync {
    /// Inserts a new identity unless the name is taken (`AlreadyExists`) or the account already
    /// holds `max_identities` (`LimitExceeded`); both checks happen inside the transaction.
    fn insert_identity(&self, identity: &Identity, max_identities: u64) -> Result<(), StoreError>;
    /// Reads one identity with its keys and tags.
    fn get_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Option<Identity>, StoreError>;
    /// Replaces an identity if its stored version and creation time still equal
    /// `identity.version` and `identity.created_at` (`Conflict` otherwise: a copy read before a
    /// delete and re-create is stale even where the versions match; `NotFound` if it is gone);
    /// stores `version + 1` and returns it. Any write of
    /// an identity ends its verification lease (see `CheckQueue`).
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
    /// The identity, of any account, whose verification link has this hash (hashes are
    /// unique: a token names one identity).
    fn identity_by_link(&self, hash: &LinkHash) -> Result<Option<Identity>, StoreError>;
    /// How many identities there are of each type and status, in one account or (`None`) in
    /// all; one consistent read, so that every node reports the same totals.
    fn count_identities(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<IdentityCount>, StoreError>;
}

/// The queue of due verifications, shared by every node's verifier (one transaction a call).
pub trait CheckQueue: Send + Sync {
    /// Atomically picks up to `limit` identities whose `next_check_at` is due and that no live
    /// lease holds, leases them until `lease_until`, and returns them. Two callers never get
    /// the same identity while the lease lasts; any write of the identity ends the lease.
    fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Identity>, StoreError>;
}

/// What the DNS key zone is built from: read-only, one consistent read a call.
pub trait KeyZoneSource: Send + Sync {
    /// Every Easy DKIM public key currently published: `(token, DER SubjectPublicKeyInfo)`.
    fn published_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// A number that changes whenever the published keys may have changed (cheap to poll).
    fn key_generation(&self) -> Result<u64, StoreError>;
}

/// Accounts and their access keys (one transaction a call, durable on `Ok`).
pub trait AccountStore: Send + Sync {
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

/// Custom verification email templates, per account (one transaction a call, durable on `Ok`).
pub trait TemplateStore: Send + Sync {
    /// Inserts a template unless its name is taken in the account (`AlreadyExists`) or the
    /// account already holds `max` (`LimitExceeded`); both checked inside the transaction.
    fn insert_template(&self, template: &VerificationTemplate, max: u64) -> Result<(), StoreError>;
    /// One template.
    fn get_template(
        &self,
        account: &AccountId,
        name: &TemplateName,
    ) -> Result<Option<VerificationTemplate>, StoreError>;
    /// Replaces a template's content (`NotFound` if absent); its tags and creation time stay.
    fn update_template(&self, template: &VerificationTemplate) -> Result<(), StoreError>;
    /// Deletes a template (`NotFound` if absent).
    fn delete_template(&self, account: &AccountId, name: &TemplateName) -> Result<(), StoreError>;
    /// Up to `limit` templates of the account whose names sort after `after`, by name.
    fn list_templates(
        &self,
        account: &AccountId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<VerificationTemplate>, StoreError>;
}

/// The DNS publishers (one per account and domain) and what each published.
pub trait PublisherStore: Send + Sync {
    /// Inserts or replaces a publisher (its set-up and state); stores `version + 1` of the
    /// stored one (or 1), whatever `publisher.version` says: the operator's word wins over a
    /// publisher loop's result computed from the old set-up, which is then refused.
    fn put_publisher(&self, publisher: &Publisher) -> Result<(), StoreError>;
    /// One publisher.
    fn publisher(
        &self,
        account: &AccountId,
        domain: &DomainName,
    ) -> Result<Option<Publisher>, StoreError>;
    /// Every publisher, of every account, by account and domain.
    fn list_publishers(&self) -> Result<Vec<Publisher>, StoreError>;
    /// Deletes one (`NotFound` if absent).
    fn delete_publisher(&self, account: &AccountId, domain: &DomainName) -> Result<(), StoreError>;
    /// Replaces a publisher's state if its stored version is still `version` (`Conflict`
    /// otherwise, `NotFound` if it is gone); returns the new version.
    fn save_publish_state(
        &self,
        account: &AccountId,
        domain: &DomainName,
        version: u64,
        state: &PublishState,
    ) -> Result<u64, StoreError>;
}

/// A whole store: every concern over one database, so that a backend implements the four and
/// code wiring the server holds one `Arc<dyn Store>` that it upcasts to the concern each part
/// needs (`Arc<dyn KeyZoneSource>` for the key-zone follower, say).
pub trait Store:
    IdentityStore + CheckQueue + KeyZoneSource + AccountStore + TemplateStore + PublisherStore
{
}

impl<
    T: IdentityStore
        + CheckQueue
        + KeyZoneSource
        + AccountStore
        + TemplateStore
        + PublisherStore
        + ?Sized,
> Store for T
{
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
    /// A fresh verification link secret (32 bytes from a CSPRNG) with its hash.
    fn new_link(&self) -> Result<NewLink, Error>;
    /// The hash a link's token is stored under (SHA-256: the token is 256 random bits, so a
    /// plain hash cannot be reversed, and a stolen database holds no working link).
    fn link_hash(&self, token: &LinkToken) -> LinkHash;
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
    /// Who a whole message says it is from and for. A header section that cannot be read
    /// reliably is `Invalid` (`RawUnparsable`, `RawLineEnds`); one that names its author in a
    /// way that cannot be checked is `MessageRejected` (`Rejection::Message`).
    fn read_headers(&self, message: &[u8]) -> Result<HeaderAddresses, Error>;
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
