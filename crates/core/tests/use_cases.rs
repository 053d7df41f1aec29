//! The use cases end to end over the in-memory fakes: the daily key-length rule, limits,
//! origin switches, verification with an injected clock, rotation (on request, by age and by
//! length change) never breaking a signature, and optimistic concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sesame_core::app::{Config, UseCases};
use sesame_core::dkim::DkimSetup;
use sesame_core::error::{Error, Invalid, StoreError};
use sesame_core::identities::CreateIdentity;
use sesame_core::keys::RotationPolicy;
use sesame_core::model::{
    AccountId, DkimOrigin, DkimStatus, DomainName, Identity, IdentityFilter, IdentityName,
    IdentitySummary, KeyLength, Selector, Timestamp,
};
use sesame_core::ports::{
    AccessKey, Account, AccountStore, CheckQueue, Clock, IdentityStore, KeyZoneSource,
    PrivateKeyInput, Store,
};
use sesame_core::testing::{FakeVault, ManualClock, MemMailer, MemStore};
use sesame_core::verification::{
    CheckOutcome, MailFromHosts, Observation, RecordCheck, VerifyPolicy,
};

/// A check's outcome that moved DKIM from `from` to `to` and did not look at MAIL FROM.
fn dkim_only(from: DkimStatus, to: DkimStatus) -> CheckOutcome {
    CheckOutcome {
        dkim: (from, to),
        mail_from: None,
    }
}
use std::sync::Arc;

struct Svc {
    uc: UseCases,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
}

fn build(store: Arc<dyn Store>, rotation: RotationPolicy, max: u64) -> Svc {
    let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000_000)));
    let uc = UseCases::new(
        store.clone(),
        Arc::new(FakeVault::default()),
        clock.clone(),
        Arc::new(MemMailer::default()),
        Config {
            max_identities: max,
            dkim_zone: "dkim.sesame.test".into(),
            verify: VerifyPolicy::default(),
            rotation,
            mail_from: MailFromHosts {
                mx: "feedback.sesame.test".into(),
                spf_domain: "spf.sesame.test".into(),
            },
            envelope_domain: DomainName::parse("mail.sesame.test").unwrap(),
            links: Config::with_zone("dkim.sesame.test", max).unwrap().links,
            revoked_key_mail: Default::default(),
        },
    );
    Svc { uc, store, clock }
}

/// The selector that signs for the domain now: DKIM enabled and verified, the signing slot.
fn signing_selector(s: &Svc, a: &AccountId, n: &IdentityName) -> String {
    let id = s.uc.identities.get_identity(a, n).unwrap().identity;
    assert_eq!(id.verification_status, DkimStatus::Success);
    let dkim = id.dkim.unwrap();
    assert!(dkim.signing_enabled);
    dkim.keys.signing().selector.as_str().to_owned()
}

fn svc() -> (Svc, Arc<ManualClock>, AccountId) {
    let s = build(Arc::new(MemStore::default()), RotationPolicy::default(), 3);
    let clock = s.clock.clone();
    (s, clock, AccountId::parse("123456789012").unwrap())
}

fn create(s: &Svc, a: &AccountId, name: &str, dkim: Option<DkimSetup>) -> Result<Identity, Error> {
    s.uc.identities.create_identity(
        a,
        CreateIdentity {
            name: IdentityName::parse(name).unwrap(),
            tags: vec![],
            dkim,
            configuration_set: None,
        },
    )
}

fn length(s: &Svc, a: &AccountId, l: KeyLength) -> Result<sesame_core::model::Dkim, Error> {
    let n = IdentityName::parse("example.com").unwrap();
    s.uc.dkim
        .put_dkim_signing_attributes(a, &n, DkimSetup::Easy { length: Some(l) })
        .map(|id| id.dkim.unwrap())
}

#[test]
fn key_length_change_follows_the_daily_rule_with_an_injected_clock() {
    let (s, clock, a) = svc();
    let created = create(&s, &a, "example.com", None).unwrap();
    let dkim = created.dkim.unwrap();
    let DkimOrigin::Easy { tokens, .. } = &dkim.origin else {
        panic!()
    };
    assert_eq!(dkim.current_length(), Some(KeyLength::Rsa2048));

    assert_eq!(
        length(&s, &a, KeyLength::Rsa2048).unwrap_err(),
        Error::Invalid(Invalid::KeyLengthUnchanged(2048))
    );
    clock.advance_hours(1);
    let down = length(&s, &a, KeyLength::Rsa1024).unwrap();
    // The new length arrives through a staged key: the signing key is unchanged until the
    // new one has been seen in DNS, so CurrentSigningKeyLength stays truthful.
    assert_eq!(down.current_length(), Some(KeyLength::Rsa2048));
    let (staged, staged_key) = down
        .keys
        .staged()
        .expect("a key of the new length is staged");
    assert_eq!(staged_key.bits, 1024);
    assert_ne!(staged, down.keys.signing_slot());
    let DkimOrigin::Easy { tokens: same, .. } = &down.origin else {
        panic!()
    };
    assert_eq!(same, tokens, "tokens survive a key-length change");
    assert_eq!(
        down.keys.signing(),
        dkim.keys.signing(),
        "the signing key stays"
    );
    assert!(down.keys.last_generation() > dkim.keys.last_generation());

    clock.advance_hours(23);
    let before =
        s.uc.identities
            .get_identity(&a, &IdentityName::parse("example.com").unwrap())
            .unwrap();
    assert_eq!(
        length(&s, &a, KeyLength::Rsa2048).unwrap_err(),
        Error::Invalid(Invalid::KeyLengthChangedRecently)
    );
    let after =
        s.uc.identities
            .get_identity(&a, &IdentityName::parse("example.com").unwrap())
            .unwrap();
    assert_eq!(
        before.identity, after.identity,
        "a refused change changes nothing"
    );
    clock.advance_hours(1);
    assert!(
        length(&s, &a, KeyLength::Rsa2048).is_ok(),
        "24 hours later it is allowed"
    );
}

#[test]
fn limits_duplicates_and_addresses() {
    let (s, _, a) = svc();
    create(&s, &a, "a@example.com", None).unwrap();
    assert!(matches!(
        create(&s, &a, "a@example.com", None),
        Err(Error::AlreadyExists(_))
    ));
    assert!(
        create(&s, &a, "A@example.com", None).is_ok(),
        "addresses are case-sensitive"
    );
    assert!(create(&s, &a, "EXAMPLE.org", None).is_ok());
    assert!(
        matches!(
            create(&s, &a, "example.ORG", None),
            Err(Error::AlreadyExists(_))
        ),
        "domains are not"
    );
    assert!(matches!(
        create(&s, &a, "new.example.net", None),
        Err(Error::LimitExceeded(_))
    ));
    let (s, _, a) = svc();
    assert!(matches!(
        create(
            &s,
            &a,
            "b@example.com",
            Some(DkimSetup::Easy { length: None })
        ),
        Err(Error::Invalid(Invalid::DkimOnAddressAtCreate))
    ));
}

#[test]
fn switching_origin_replaces_keys_and_tokens() {
    let (s, _, a) = svc();
    let n = IdentityName::parse("example.com").unwrap();
    let easy = create(&s, &a, "example.com", None).unwrap().dkim.unwrap();
    let ext_id =
        s.uc.dkim
            .put_dkim_signing_attributes(
                &a,
                &n,
                DkimSetup::External {
                    selector: Selector::parse("sel").unwrap(),
                    private_key: PrivateKeyInput(vec![1, 2, 3]),
                },
            )
            .unwrap();
    assert_eq!(ext_id.verification_status, DkimStatus::Pending);
    let ext = ext_id.dkim.unwrap();
    assert!(matches!(ext.origin, DkimOrigin::External { .. }));
    assert_eq!(ext.keys.len(), 1);
    let back =
        s.uc.dkim
            .put_dkim_signing_attributes(&a, &n, DkimSetup::Easy { length: None })
            .unwrap()
            .dkim
            .unwrap();
    let (DkimOrigin::Easy { tokens: t1, .. }, DkimOrigin::Easy { tokens: t2, .. }) =
        (&easy.origin, &back.origin)
    else {
        panic!()
    };
    assert_ne!(t1, t2, "a switch back to Easy DKIM makes new tokens");
}

#[test]
fn verification_claims_checks_and_records_results_with_an_injected_clock() {
    let (s, clock, a) = svc();
    create(&s, &a, "example.com", None).unwrap();
    create(&s, &a, "me@example.com", None).unwrap();
    // Due right after configuration; an address only when the link mailed at its create
    // expires (24 h).
    let due = s.uc.checks.claim_due_checks(10).unwrap();
    assert_eq!(due.len(), 1);
    // Three DKIM records, then the DMARC record that recommendations look at.
    assert_eq!(due[0].records.len(), 4);
    assert_eq!(due[0].records[3].name, "_dmarc.example.com");
    assert!(due[0].records[0].name.ends_with("._domainkey.example.com"));
    assert!(
        s.uc.checks.claim_due_checks(10).unwrap().is_empty(),
        "leased"
    );
    let missing = Observation {
        records: vec![RecordCheck::HostNotFound; 3],
        soa: None,
    };
    let change =
        s.uc.checks
            .record_check(due[0].identity.clone(), &missing)
            .unwrap();
    assert_eq!(
        change,
        Some(dkim_only(DkimStatus::Pending, DkimStatus::Pending))
    );
    assert!(
        s.uc.checks.claim_due_checks(10).unwrap().is_empty(),
        "backoff: not due yet"
    );
    clock.advance_hours(1);
    let due = s.uc.checks.claim_due_checks(10).unwrap();
    let found = Observation {
        records: vec![RecordCheck::Valid; 3],
        soa: None,
    };
    let change =
        s.uc.checks
            .record_check(due[0].identity.clone(), &found)
            .unwrap();
    assert_eq!(
        change,
        Some(dkim_only(DkimStatus::Pending, DkimStatus::Success))
    );
    let n = IdentityName::parse("example.com").unwrap();
    let view = s.uc.identities.get_identity(&a, &n).unwrap();
    assert_eq!(view.identity.verification_status, DkimStatus::Success);
    assert!(view.identity.verified_for_sending());
    // A result computed before a configuration change is stale and dropped.
    clock.advance_hours(25);
    let mut due = s.uc.checks.claim_due_checks(10).unwrap();
    due.sort_by(|x, y| x.identity.name.as_str().cmp(y.identity.name.as_str()));
    assert_eq!(
        due.len(),
        2,
        "the daily re-check, and the address at its link's expiry"
    );
    assert_eq!(due[0].identity.name, n);
    s.uc.dkim
        .put_dkim_signing_attributes(
            &a,
            &n,
            DkimSetup::External {
                selector: Selector::parse("mine").unwrap(),
                private_key: PrivateKeyInput(vec![1]),
            },
        )
        .unwrap();
    assert_eq!(
        s.uc.checks
            .record_check(due[0].identity.clone(), &found)
            .unwrap(),
        None
    );
    let view = s.uc.identities.get_identity(&a, &n).unwrap();
    assert_eq!(
        view.identity.verification_status,
        DkimStatus::Pending,
        "a new method: verify again"
    );
}

/// Signatures made before, during and after a rotation and a key-length change all verify
/// against what the key zone serves then and for the whole retention: the key that signed
/// is the one published under its selector at signing time and stays so.
#[test]
fn rotation_never_breaks_a_signature() {
    let (s, clock, a) = svc();
    let n = IdentityName::parse("example.com").unwrap();
    create(&s, &a, "example.com", None).unwrap();
    let all_valid = Observation {
        records: vec![RecordCheck::Valid; 3],
        soa: None,
    };
    let check = |s: &Svc| {
        for due in s.uc.checks.claim_due_checks(10).unwrap() {
            s.uc.checks.record_check(due.identity, &all_valid).unwrap();
        }
    };
    check(&s);
    // (selector, public key) that signed, and when.
    let mut signatures: Vec<(String, Vec<u8>, i64)> = Vec::new();
    let sign = |s: &Svc, sigs: &mut Vec<(String, Vec<u8>, i64)>| {
        let selector = signing_selector(s, &a, &n);
        let view = s.uc.identities.get_identity(&a, &n).unwrap();
        let dkim = view.identity.dkim.unwrap();
        let key = dkim
            .keys
            .keys()
            .find(|x| x.selector.as_str() == selector)
            .unwrap();
        sigs.push((selector, key.public_der.clone(), s.clock.now().0));
    };
    // What receivers can verify now: every published key by selector.
    let zone = |s: &Svc| -> Vec<(String, Vec<u8>)> { s.store.published_keys().unwrap() };
    let verifiable = |s: &Svc, sigs: &[(String, Vec<u8>, i64)]| {
        let z = zone(s);
        sigs.iter()
            .all(|(sel, der, _)| z.contains(&(sel.clone(), der.clone())))
    };

    sign(&s, &mut signatures); // before
    let first = signatures[0].clone();
    let staged = s.uc.dkim.rotate(&a, &n).unwrap();
    assert!(staged.dkim.unwrap().keys.staged().is_some());
    assert_eq!(
        s.uc.dkim.rotate(&a, &n).unwrap_err(),
        Error::Invalid(Invalid::RotationInProgress),
        "one at a time"
    );
    sign(&s, &mut signatures); // during: still the old key
    assert_eq!(signatures[1].0, first.0, "the staged key does not sign yet");
    assert!(verifiable(&s, &signatures));
    clock.advance_hours(1); // past the activation delay
    check(&s);
    sign(&s, &mut signatures); // after
    assert_ne!(
        signatures[2].0, first.0,
        "the new key signs once seen and delayed"
    );
    assert!(verifiable(&s, &signatures));
    // A key-length change goes through the same staging.
    clock.advance_hours(1);
    let changed = length(&s, &a, KeyLength::Rsa1024).unwrap();
    assert_eq!(changed.current_length(), Some(KeyLength::Rsa2048));
    sign(&s, &mut signatures);
    clock.advance_hours(1);
    check(&s);
    sign(&s, &mut signatures);
    let view = s.uc.identities.get_identity(&a, &n).unwrap();
    assert_eq!(
        view.identity.dkim.as_ref().unwrap().current_length(),
        Some(KeyLength::Rsa1024)
    );
    assert!(verifiable(&s, &signatures));
    // Every token has now signed or is retained: a third rotation must wait for the
    // retention of the first key to end, and all signatures stay verifiable meanwhile.
    clock.advance_hours(1);
    check(&s);
    assert!(
        matches!(
            s.uc.dkim.rotate(&a, &n),
            Err(Error::Invalid(Invalid::NoFreeToken(_)))
        ),
        "no free token"
    );
    for _ in 0..7 {
        clock.advance_hours(24);
        check(&s);
        let within: Vec<_> = signatures
            .iter()
            .filter(|(_, _, at)| s.clock.now().0 < at + RotationPolicy::default().retention_ms)
            .cloned()
            .collect();
        assert!(
            verifiable(&s, &within),
            "within the retention every signature verifies"
        );
    }
    clock.advance_hours(1);
    assert!(
        s.uc.dkim.rotate(&a, &n).is_ok(),
        "after the retention the first token is free again"
    );
}

#[test]
fn rotate_every_stages_and_activates_on_the_daily_checks() {
    let s = build(
        Arc::new(MemStore::default()),
        RotationPolicy {
            rotate_every_ms: Some(90 * 24 * Timestamp::HOUR),
            ..RotationPolicy::default()
        },
        10,
    );
    let clock = s.clock.clone();
    let a = AccountId::parse("123456789012").unwrap();
    let n = IdentityName::parse("example.com").unwrap();
    create(&s, &a, "example.com", None).unwrap();
    let valid = Observation {
        records: vec![RecordCheck::Valid; 3],
        soa: None,
    };
    let check = || {
        for due in s.uc.checks.claim_due_checks(10).unwrap() {
            s.uc.checks.record_check(due.identity, &valid).unwrap();
        }
    };
    check();
    let first = signing_selector(&s, &a, &n);
    let mut days = 0;
    loop {
        clock.advance_hours(24);
        days += 1;
        check();
        let view = s.uc.identities.get_identity(&a, &n).unwrap();
        if view.identity.dkim.unwrap().keys.staged().is_some() {
            break;
        }
        assert_eq!(signing_selector(&s, &a, &n), first);
        assert!(days < 92, "never staged");
    }
    assert_eq!(days, 90, "staged on the first daily check at 90 days");
    assert_eq!(
        signing_selector(&s, &a, &n),
        first,
        "staged, not yet signing"
    );
    clock.advance_hours(1);
    check();
    assert_ne!(
        signing_selector(&s, &a, &n),
        first,
        "and signs after the delay"
    );
}

/// A store whose first update loses a race: another writer commits just before it.
struct RacingStore {
    inner: MemStore,
    raced: std::sync::atomic::AtomicBool,
}

impl IdentityStore for RacingStore {
    fn insert_identity(&self, i: &Identity, m: u64) -> Result<(), StoreError> {
        self.inner.insert_identity(i, m)
    }
    fn get_identity(
        &self,
        a: &AccountId,
        n: &IdentityName,
    ) -> Result<Option<Identity>, StoreError> {
        self.inner.get_identity(a, n)
    }
    fn identity_by_link(
        &self,
        h: &sesame_core::model::LinkHash,
    ) -> Result<Option<Identity>, StoreError> {
        self.inner.identity_by_link(h)
    }
    fn update_identity(&self, i: &Identity) -> Result<u64, StoreError> {
        if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // The verifier, say, records a check first.
            let mut other = self.inner.get_identity(&i.account, &i.name)?.unwrap();
            other.verification.attempts += 1;
            self.inner.update_identity(&other)?;
        }
        self.inner.update_identity(i)
    }
    fn delete_identity(&self, a: &AccountId, n: &IdentityName) -> Result<(), StoreError> {
        self.inner.delete_identity(a, n)
    }
    fn list_identities(
        &self,
        a: &AccountId,
        f: &IdentityFilter,
        after: Option<&str>,
        l: usize,
    ) -> Result<Vec<IdentitySummary>, StoreError> {
        self.inner.list_identities(a, f, after, l)
    }
    fn count_identities(
        &self,
        a: Option<&AccountId>,
    ) -> Result<Vec<sesame_core::model::IdentityCount>, StoreError> {
        self.inner.count_identities(a)
    }
}

impl CheckQueue for RacingStore {
    fn claim_due(&self, n: Timestamp, l: Timestamp, c: usize) -> Result<Vec<Identity>, StoreError> {
        self.inner.claim_due(n, l, c)
    }
}

impl KeyZoneSource for RacingStore {
    fn published_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.published_keys()
    }
    fn key_generation(&self) -> Result<u64, StoreError> {
        self.inner.key_generation()
    }
}

impl AccountStore for RacingStore {
    fn insert_account(&self, a: &Account) -> Result<(), StoreError> {
        self.inner.insert_account(a)
    }
    fn account_by_name(&self, n: &str) -> Result<Option<Account>, StoreError> {
        self.inner.account_by_name(n)
    }
    fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.inner.list_accounts()
    }
    fn put_access_key(&self, k: &AccessKey) -> Result<(), StoreError> {
        self.inner.put_access_key(k)
    }
    fn access_key(&self, id: &str) -> Result<Option<AccessKey>, StoreError> {
        self.inner.access_key(id)
    }
    fn access_keys_of(&self, a: &AccountId) -> Result<Vec<AccessKey>, StoreError> {
        self.inner.access_keys_of(a)
    }
}

impl sesame_core::ports::PublisherStore for RacingStore {
    fn put_publisher(&self, p: &sesame_core::model::Publisher) -> Result<(), StoreError> {
        self.inner.put_publisher(p)
    }
    fn publisher(
        &self,
        a: &AccountId,
        d: &sesame_core::model::DomainName,
    ) -> Result<Option<sesame_core::model::Publisher>, StoreError> {
        self.inner.publisher(a, d)
    }
    fn list_publishers(&self) -> Result<Vec<sesame_core::model::Publisher>, StoreError> {
        self.inner.list_publishers()
    }
    fn delete_publisher(
        &self,
        a: &AccountId,
        d: &sesame_core::model::DomainName,
    ) -> Result<(), StoreError> {
        self.inner.delete_publisher(a, d)
    }
    fn save_publish_state(
        &self,
        a: &AccountId,
        d: &sesame_core::model::DomainName,
        v: u64,
        s: &sesame_core::model::PublishState,
    ) -> Result<u64, StoreError> {
        self.inner.save_publish_state(a, d, v, s)
    }
}

impl sesame_core::ports::TemplateStore for RacingStore {
    fn insert_template(
        &self,
        t: &sesame_core::model::VerificationTemplate,
        max: u64,
    ) -> Result<(), StoreError> {
        self.inner.insert_template(t, max)
    }
    fn get_template(
        &self,
        a: &AccountId,
        n: &sesame_core::model::TemplateName,
    ) -> Result<Option<sesame_core::model::VerificationTemplate>, StoreError> {
        self.inner.get_template(a, n)
    }
    fn update_template(
        &self,
        t: &sesame_core::model::VerificationTemplate,
    ) -> Result<(), StoreError> {
        self.inner.update_template(t)
    }
    fn delete_template(
        &self,
        a: &AccountId,
        n: &sesame_core::model::TemplateName,
    ) -> Result<(), StoreError> {
        self.inner.delete_template(a, n)
    }
    fn list_templates(
        &self,
        a: &AccountId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<sesame_core::model::VerificationTemplate>, StoreError> {
        self.inner.list_templates(a, after, limit)
    }
}

#[test]
fn a_write_that_loses_a_race_is_applied_again_to_the_fresh_record() {
    let store = Arc::new(RacingStore {
        inner: MemStore::default(),
        raced: std::sync::atomic::AtomicBool::new(true),
    });
    let s = build(store.clone(), RotationPolicy::default(), 10);
    let a = AccountId::parse("123456789012").unwrap();
    let n = IdentityName::parse("example.com").unwrap();
    create(&s, &a, "example.com", None).unwrap();
    store
        .raced
        .store(false, std::sync::atomic::Ordering::SeqCst);
    s.uc.identities
        .put_feedback_attributes(&a, &n, false)
        .unwrap();
    let got = s.uc.identities.get_identity(&a, &n).unwrap().identity;
    assert!(!got.feedback_forwarding, "the change landed");
    assert_eq!(
        got.verification.attempts, 1,
        "and so did the other writer's"
    );
    assert_eq!(got.version, 3);
}

/// "Check now" makes a domain's check due at once (in the middle of its backoff), ends any
/// lease on it, and has nothing to do for an address.
#[test]
fn check_now_makes_a_backed_off_check_due_at_once() {
    let (s, _clock, a) = svc();
    create(&s, &a, "example.com", None).unwrap();
    create(&s, &a, "me@example.com", None).unwrap();
    let due = s.uc.checks.claim_due_checks(10).unwrap();
    let missing = Observation {
        records: vec![RecordCheck::HostNotFound; 3],
        soa: None,
    };
    s.uc.checks
        .record_check(due[0].identity.clone(), &missing)
        .unwrap();
    assert!(
        s.uc.checks.claim_due_checks(10).unwrap().is_empty(),
        "backed off"
    );
    let domain = IdentityName::parse("example.com").unwrap();
    assert!(s.uc.checks.check_now(&a, &domain).unwrap());
    let due = s.uc.checks.claim_due_checks(10).unwrap();
    assert_eq!(due.len(), 1, "due at once");
    assert_eq!(due[0].identity.name, domain);
    assert!(
        s.uc.checks.check_now(&a, &domain).unwrap(),
        "a leased one too"
    );
    assert_eq!(
        s.uc.checks.claim_due_checks(10).unwrap().len(),
        1,
        "the lease ended"
    );
    let address = IdentityName::parse("me@example.com").unwrap();
    assert!(!s.uc.checks.check_now(&a, &address).unwrap());
    let other = IdentityName::parse("nope.example").unwrap();
    assert!(matches!(
        s.uc.checks.check_now(&a, &other),
        Err(Error::NotFound(_))
    ));
    let counts = s.uc.identities.count_identities(Some(&a)).unwrap();
    assert_eq!(counts.iter().map(|c| c.count).sum::<u64>(), 2);
}

/// MAIL FROM: a proper subdomain is set PENDING with its check due now; set again it keeps its
/// record; a refusal changes nothing; no domain removes it and keeps the behaviour.
#[test]
fn mail_from_domains_follow_the_identity_and_refusals_change_nothing() {
    use sesame_core::model::MxFailure;
    let (s, clock, a) = svc();
    create(&s, &a, "example.com", None).unwrap();
    let n = IdentityName::parse("example.com").unwrap();
    let put = |d: &str, b| s.uc.identities.put_mail_from_attributes(&a, &n, d, b);
    let set = put("bounce.example.com", MxFailure::RejectMessage).unwrap();
    let mf = set.mail_from.clone().unwrap();
    assert_eq!(mf.domain.as_str(), "bounce.example.com");
    assert_eq!(mf.status, DkimStatus::Pending);
    assert_eq!(mf.verification.next_check_at, Some(clock.now()), "due now");
    assert_eq!(set.mx_failure, MxFailure::RejectMessage);
    let before = s.store.get_identity(&a, &n).unwrap().unwrap();
    for bad in ["example.com", "other.com", "bad_label.example.com"] {
        assert!(
            matches!(put(bad, MxFailure::UseDefaultValue), Err(Error::Invalid(_))),
            "{bad}"
        );
    }
    assert_eq!(
        s.store.get_identity(&a, &n).unwrap().unwrap(),
        before,
        "refusals wrote nothing"
    );
    clock.advance_hours(1);
    let again = put("bounce.example.com", MxFailure::UseDefaultValue).unwrap();
    assert_eq!(
        again.mail_from.unwrap().verification,
        mf.verification,
        "kept"
    );
    let moved = put("mail.example.com", MxFailure::UseDefaultValue).unwrap();
    assert_eq!(
        moved.mail_from.unwrap().verification.pending_since,
        Some(clock.now())
    );
    let off = put("", MxFailure::RejectMessage).unwrap();
    assert!(off.mail_from.is_none());
    assert_eq!(off.mx_failure, MxFailure::RejectMessage);
    let nobody = IdentityName::parse("nobody.example.com").unwrap();
    assert!(matches!(
        s.uc.identities.put_mail_from_attributes(
            &a,
            &nobody,
            "x.nobody.example.com",
            MxFailure::UseDefaultValue
        ),
        Err(Error::NotFound(_))
    ));
}

/// Runs every due check, answering each record with `answer(record)`; returns how many ran.
fn check_all(
    s: &Svc,
    answer: &dyn Fn(&sesame_core::verification::ExpectedRecord) -> RecordCheck,
) -> usize {
    let due = s.uc.checks.claim_due_checks(100).unwrap();
    for d in &due {
        let obs = Observation {
            records: d.records.iter().map(answer).collect(),
            soa: None,
        };
        s.uc.checks.record_check(d.identity.clone(), &obs).unwrap();
    }
    due.len()
}

fn mail_from_status(s: &Svc, a: &AccountId, n: &IdentityName) -> DkimStatus {
    let id = s.uc.identities.get_identity(a, n).unwrap().identity;
    id.mail_from.unwrap().status
}

/// MAIL FROM follows DKIM's state machine on its own schedule, with the injected clock: PENDING
/// until the MX is seen, FAILED 72 hours after configuration without it (and no more checks);
/// after SUCCESS a missing MX keeps SUCCESS through a 72-hour grace, then FAILED; a new domain
/// starts again. The DKIM status is untouched by all of it, and the recommendations follow.
#[test]
fn mail_from_verification_keeps_the_72_hour_and_grace_rules() {
    use sesame_core::model::{AdviceKind, AdviceStatus, MxFailure};
    use sesame_core::verification::{Expect, Purpose};
    let (s, clock, a) = svc();
    let n = IdentityName::parse("example.com").unwrap();
    create(&s, &a, "example.com", None).unwrap();
    s.uc.identities
        .put_mail_from_attributes(&a, &n, "bounce.example.com", MxFailure::UseDefaultValue)
        .unwrap();
    let mx_missing = |r: &sesame_core::verification::ExpectedRecord| match r.purpose() {
        Purpose::MailFrom => RecordCheck::HostNotFound,
        _ => RecordCheck::Valid,
    };
    let all_valid = |_: &sesame_core::verification::ExpectedRecord| RecordCheck::Valid;
    let due = s.uc.checks.claim_due_checks(10).unwrap();
    let kinds: Vec<Purpose> = due[0].records.iter().map(|r| r.purpose()).collect();
    assert_eq!(
        kinds,
        [
            Purpose::Dkim,
            Purpose::Dkim,
            Purpose::Dkim,
            Purpose::MailFrom,
            Purpose::Advice,
            Purpose::Advice
        ]
    );
    assert!(
        matches!(&due[0].records[3].expect, Expect::Mx { exchange } if exchange == "feedback.sesame.test")
    );
    let obs = Observation {
        records: due[0].records.iter().map(mx_missing).collect(),
        soa: None,
    };
    let outcome =
        s.uc.checks
            .record_check(due[0].identity.clone(), &obs)
            .unwrap()
            .unwrap();
    assert_eq!(outcome.dkim, (DkimStatus::Pending, DkimStatus::Success));
    assert_eq!(
        outcome.mail_from,
        Some((DkimStatus::Pending, DkimStatus::Pending))
    );
    let open = |s: &Svc| -> Vec<AdviceKind> {
        let id = s.uc.identities.get_identity(&a, &n).unwrap().identity;
        id.recommendations
            .items
            .iter()
            .filter(|r| r.status == AdviceStatus::Open)
            .map(|r| r.kind)
            .collect()
    };
    assert_eq!(open(&s), [AdviceKind::MailFromMx]);

    // 71 hours of missing MX: still PENDING; the 72nd: FAILED, and no MAIL FROM check after.
    for _ in 0..71 {
        clock.advance_hours(1);
        check_all(&s, &mx_missing);
        assert_eq!(mail_from_status(&s, &a, &n), DkimStatus::Pending);
    }
    clock.advance_hours(1);
    check_all(&s, &mx_missing);
    assert_eq!(mail_from_status(&s, &a, &n), DkimStatus::Failed);
    let id = s.uc.identities.get_identity(&a, &n).unwrap().identity;
    assert_eq!(
        id.mail_from.as_ref().unwrap().verification.next_check_at,
        None
    );
    assert_eq!(
        id.verification_status,
        DkimStatus::Success,
        "DKIM is its own"
    );
    // FAILED stays FAILED even once the record appears (SES: set it again to restart).
    clock.advance_hours(25);
    check_all(&s, &all_valid);
    assert_eq!(mail_from_status(&s, &a, &n), DkimStatus::Failed);

    // A new domain: PENDING, then SUCCESS when seen.
    s.uc.identities
        .put_mail_from_attributes(&a, &n, "mail.example.com", MxFailure::RejectMessage)
        .unwrap();
    assert_eq!(mail_from_status(&s, &a, &n), DkimStatus::Pending);
    assert!(check_all(&s, &all_valid) >= 1, "due at once");
    assert_eq!(mail_from_status(&s, &a, &n), DkimStatus::Success);
    assert!(open(&s).is_empty(), "{:?}", open(&s));
    // The MX disappears: SUCCESS through the 72-hour grace, then FAILED.
    clock.advance_hours(24);
    check_all(&s, &mx_missing);
    assert_eq!(mail_from_status(&s, &a, &n), DkimStatus::Success);
    assert_eq!(open(&s), [AdviceKind::MailFromMx]);
    for _ in 0..71 {
        clock.advance_hours(1);
        check_all(&s, &mx_missing);
    }
    assert_eq!(
        mail_from_status(&s, &a, &n),
        DkimStatus::Success,
        "within the grace"
    );
    clock.advance_hours(2);
    check_all(&s, &mx_missing);
    assert_eq!(mail_from_status(&s, &a, &n), DkimStatus::Failed);
    // A resolver outage never fails a fresh one, only TEMPORARY_FAILURE.
    s.uc.identities
        .put_mail_from_attributes(&a, &n, "outage.example.com", MxFailure::RejectMessage)
        .unwrap();
    let outage = |r: &sesame_core::verification::ExpectedRecord| match r.purpose() {
        Purpose::MailFrom => RecordCheck::ServerError("SERVFAIL".into()),
        _ => RecordCheck::Valid,
    };
    for _ in 0..100 {
        clock.advance_hours(1);
        check_all(&s, &outage);
    }
    assert_eq!(mail_from_status(&s, &a, &n), DkimStatus::TemporaryFailure);
}

#[test]
fn a_revoked_key_is_erased_signs_nothing_and_its_replacement_follows_the_staging() {
    use sesame_core::error::Rejection;
    use sesame_core::sending::signing_key;
    let (s, clock, a) = svc();
    let n = IdentityName::parse("example.com").unwrap();
    create(&s, &a, "example.com", None).unwrap();
    // Every record of every due identity found right.
    let check = |s: &Svc| {
        for due in s.uc.checks.claim_due_checks(10).unwrap() {
            let all_valid = Observation {
                records: vec![RecordCheck::Valid; s.uc.checks.records_of(&due.identity).len()],
                soa: None,
            };
            s.uc.checks.record_check(due.identity, &all_valid).unwrap();
        }
    };
    check(&s);
    let old = signing_selector(&s, &a, &n);
    assert_eq!(
        s.uc.dkim
            .revoke(&a, &n, Some("nosuchtoken"), "ops")
            .unwrap_err(),
        Error::Invalid(Invalid::NoSuchToken("nosuchtoken".into()))
    );
    let (stored, revocation) = s.uc.dkim.revoke(&a, &n, None, "ops@example.com").unwrap();
    assert_eq!(revocation.selector.as_str(), old);
    assert_eq!(revocation.by, "ops@example.com");
    let dkim = stored.dkim.unwrap();
    assert_eq!(dkim.revocations, vec![revocation.clone()]);
    assert!(dkim.keys.signing_key().is_none(), "nothing signs");
    let (_, staged) = dkim.keys.staged().expect("a replacement is staged");
    assert_ne!(staged.selector.as_str(), old);
    // The key zone publishes the token with an empty key: revoked.
    let zone = s.store.published_keys().unwrap();
    assert!(zone.contains(&(old.clone(), vec![])), "{zone:?}");
    assert_eq!(
        signing_key(s.store.clone(), &a, &n).unwrap_err(),
        Error::MessageRejected(Rejection::KeyRevoked {
            domain: "example.com".into(),
            selector: old.clone()
        })
    );
    assert_eq!(
        s.uc.dkim.revoke(&a, &n, Some(&old), "ops").unwrap_err(),
        Error::Invalid(Invalid::AlreadyRevoked(old.clone()))
    );
    // The replacement signs after a check past the activation delay, as any staged key.
    check(&s);
    assert!(
        signing_key(s.store.clone(), &a, &n).is_err(),
        "not before the delay"
    );
    clock.advance_hours(1);
    check(&s);
    let now = signing_key(s.store.clone(), &a, &n).unwrap();
    assert_eq!(now.selector, staged.selector.as_str());
    let dkim =
        s.uc.identities
            .get_identity(&a, &n)
            .unwrap()
            .identity
            .dkim
            .unwrap();
    let slot = dkim.keys.slot_of(&old).unwrap();
    assert!(
        dkim.keys.key(slot).unwrap().is_revoked(),
        "still published as revoked"
    );
    assert_eq!(dkim.revocations.len(), 1, "the trail stays");

    // BYODKIM: signing stops until a new key is uploaded; nothing is staged.
    let b = IdentityName::parse("byo.example.com").unwrap();
    create(
        &s,
        &a,
        "byo.example.com",
        Some(DkimSetup::External {
            selector: Selector::parse("sel").unwrap(),
            private_key: sesame_core::ports::PrivateKeyInput(vec![7]),
        }),
    )
    .unwrap();
    check(&s);
    assert!(signing_key(s.store.clone(), &a, &b).is_ok());
    let (stored, _) = s.uc.dkim.revoke(&a, &b, None, "ops").unwrap();
    let dkim = stored.dkim.unwrap();
    assert!(dkim.keys.signing_key().is_none() && dkim.keys.staged().is_none());
    assert!(signing_key(s.store.clone(), &a, &b).is_err());
}
