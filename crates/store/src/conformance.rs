//! The storage conformance suite: one battery of checks that every `Store` backend must pass,
//! called from each backend's tests with a fresh, empty store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sesame_core::StoreError;
use sesame_core::model::{
    AccountId, Dkim, DkimKey, DkimKeys, DkimOrigin, DkimStatus, DkimToken, Identity,
    IdentityFilter, IdentityName, IdentityType, KeyLength, KeyLengthHistory, Selector, SlotState,
    SoaRecord, Tag, Timestamp, Verification, VerificationError,
};
use sesame_core::ports::{AccessKey, Account, Store};

/// Edits an identity's keys in their stored form (each key with its retirement time, the
/// signing slot, the staged slot): the battery writes shapes the use cases never make, to
/// check the store keeps exactly what it is given.
fn edit_keys(
    identity: &mut Identity,
    f: impl FnOnce(&mut Vec<(DkimKey, Option<Timestamp>)>, &mut usize, &mut Option<usize>),
) {
    let dkim = identity.dkim.as_mut().unwrap();
    let mut keys: Vec<(DkimKey, Option<Timestamp>)> = dkim
        .keys
        .slots()
        .map(|(k, s)| {
            let retired = match s {
                SlotState::Retired(t) => Some(t),
                _ => None,
            };
            (k.clone(), retired)
        })
        .collect();
    let mut signing = dkim.keys.signing_slot();
    let mut staged = dkim.keys.staged().map(|(i, _)| i);
    f(&mut keys, &mut signing, &mut staged);
    dkim.keys = DkimKeys::from_stored(keys, signing, staged).unwrap();
}

pub(crate) fn account(store: &dyn Store, id: &str, name: &str) -> AccountId {
    let a = Account {
        id: AccountId::parse(id).unwrap(),
        name: name.into(),
        created_at: Timestamp(1),
    };
    store.insert_account(&a).unwrap();
    a.id
}

fn token(c: char) -> DkimToken {
    DkimToken::parse(&c.to_string().repeat(32)).unwrap()
}

pub(crate) fn easy_domain(account: &AccountId, name: &str) -> Identity {
    let tokens = vec![token('a'), token('b'), token('c')];
    Identity {
        account: account.clone(),
        name: IdentityName::parse(name).unwrap(),
        version: 1,
        created_at: Timestamp(1_000),
        feedback_forwarding: true,
        dkim: Some(Dkim {
            signing_enabled: true,
            keys: DkimKeys::from_stored(
                tokens
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let key = DkimKey {
                            selector: Selector::from_token(t),
                            bits: 2048,
                            public_der: vec![i as u8; 10],
                            sealed_private: vec![0xee, i as u8],
                            created_at: Timestamp(1_000),
                        };
                        (key, (i == 2).then_some(Timestamp(900)))
                    })
                    .collect(),
                1,
                Some(0),
            )
            .unwrap(),
            origin: DkimOrigin::Easy {
                tokens,
                lengths: KeyLengthHistory {
                    next_length: KeyLength::Rsa2048,
                    changed_at: Some(Timestamp(5)),
                    downgraded_at: None,
                },
            },
        }),
        signing_override: None,
        verification_status: DkimStatus::Pending,
        tags: vec![
            Tag::parse("team", "mail").unwrap(),
            Tag::parse("empty", "").unwrap(),
        ],
        verification: Verification {
            last_checked: Some(Timestamp(900)),
            last_success: None,
            error: Some(VerificationError::HostNotFound),
            soa: Some(SoaRecord {
                primary_name_server: "ns1.example.com".into(),
                admin_email: "hostmaster.example.com".into(),
                serial: 2026112601,
            }),
            pending_since: Some(Timestamp(1_000)),
            failing_since: None,
            next_check_at: Some(Timestamp(9_000_000_000_000)),
            attempts: 3,
        },
    }
}

fn address(account: &AccountId, name: &str) -> Identity {
    Identity {
        account: account.clone(),
        name: IdentityName::parse(name).unwrap(),
        version: 1,
        created_at: Timestamp(2_000),
        feedback_forwarding: false,
        dkim: None,
        signing_override: Some(false),
        verification_status: DkimStatus::Pending,
        tags: vec![],
        verification: Verification::default(),
    }
}

/// Runs every check against `store`, which must be empty. `concurrent` gives a second handle
/// on the same data (for backends whose handles differ per thread) or the same store again.
pub fn suite(store: &(dyn Store + 'static)) {
    accounts_and_keys(store);
    identity_round_trip(store);
    updates_are_versioned(store);
    delete_removes_everything(store);
    listing_pages_filters_and_tenancy(store);
    concurrent_writers_lose_no_update(store);
    due_checks_are_leased_once(store);
    published_keys_follow_writes(store);
}

/// Due identities are handed out once per lease; a write ends the lease.
fn due_checks_are_leased_once(store: &(dyn Store + 'static)) {
    let a = account(store, "800000000001", "verifier");
    let mut names = Vec::new();
    for (i, due) in [(0, 100), (1, 200), (2, 5_000), (3, 150)] {
        let mut d = easy_domain(&a, &format!("due{i}.example.com"));
        d.verification.next_check_at = Some(Timestamp(due));
        store.insert_identity(&d, 100).unwrap();
        names.push(d.name);
    }
    let mut off = easy_domain(&a, "never.example.com");
    off.verification.next_check_at = None;
    store.insert_identity(&off, 100).unwrap();

    let first = store
        .claim_due(Timestamp(1_000), Timestamp(61_000), 2)
        .unwrap();
    let got: Vec<&str> = first.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        got,
        ["due0.example.com", "due3.example.com"],
        "earliest due first, limited"
    );
    let second = store
        .claim_due(Timestamp(1_000), Timestamp(61_000), 10)
        .unwrap();
    let got: Vec<&str> = second.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        got,
        ["due1.example.com"],
        "leased ones are not handed out again"
    );
    assert!(
        store
            .claim_due(Timestamp(1_000), Timestamp(61_000), 10)
            .unwrap()
            .is_empty()
    );
    // Writing the result ends the lease; the new schedule decides the next claim.
    let mut done = first[0].clone();
    done.verification.next_check_at = Some(Timestamp(90_000));
    store.update_identity(&done).unwrap();
    // An expired lease (a node that died mid-check) makes the identity claimable again.
    let later = store
        .claim_due(Timestamp(61_000), Timestamp(121_000), 10)
        .unwrap();
    let got: Vec<&str> = later.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        got,
        ["due3.example.com", "due1.example.com", "due2.example.com"]
    );
    let read = store.get_identity(&a, &names[0]).unwrap().unwrap();
    assert_eq!(read.verification.next_check_at, Some(Timestamp(90_000)));

    // Claims from several threads at once never hand one identity out twice.
    let b = account(store, "800000000002", "verifier-race");
    for i in 0..40 {
        let mut d = address(&b, &format!("r{i}@example.com"));
        d.verification.next_check_at = Some(Timestamp(10));
        store.insert_identity(&d, 100).unwrap();
    }
    let claimed = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let got = store
                        .claim_due(Timestamp(500_000), Timestamp(900_000), 3)
                        .unwrap();
                    if got.is_empty() {
                        break;
                    }
                    claimed
                        .lock()
                        .unwrap()
                        .extend(got.into_iter().map(|i| i.name.as_str().to_owned()));
                }
            });
        }
    });
    let mut claimed = claimed.into_inner().unwrap();
    let total = claimed.len();
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), total, "no identity claimed twice");
    assert!(claimed.iter().filter(|n| n.starts_with('r')).count() == 40);
}

/// The key-zone generation moves when keys change and only then: every change to an
/// identity's keys through the Store API (insert, a staged rotation key, a retirement, a key
/// replaced under the same selector, a BYODKIM key replaced, a key dropped, delete) moves it,
/// and writes that change anything else (tags, verification state, which key is active,
/// signing on or off) do not. Each write reads back as written, and `published_keys` follows
/// the Easy DKIM keys.
fn published_keys_follow_writes(store: &dyn Store) {
    let a = account(store, "900000000001", "publisher");
    let g0 = store.key_generation().unwrap();
    let mut d = easy_domain(&a, "pub.example.com");
    edit_keys(&mut d, |keys, _, _| {
        for (i, (k, _)) in keys.iter_mut().enumerate() {
            k.public_der = format!("unique-public-key-{i}").into_bytes();
        }
    });
    store.insert_identity(&d, 100).unwrap();
    let mut g = store.key_generation().unwrap();
    assert_ne!(g0, g, "inserting keys moves the generation");
    assert_eq!(published_here(store), keys_of(&d));

    // Writes that leave the keys alone do not move it.
    let still = Change::Keeps;
    step(store, &mut g, &mut d, still, "a tag change", |d| {
        d.tags.clear()
    });
    step(store, &mut g, &mut d, still, "a verification result", |d| {
        d.verification.last_checked = Some(Timestamp(5_000));
        d.verification.error = Some(VerificationError::TypeNotFound);
        d.verification.next_check_at = Some(Timestamp(6_000));
        d.verification_status = DkimStatus::TemporaryFailure;
    });
    step(
        store,
        &mut g,
        &mut d,
        still,
        "activating the staged key",
        |d| {
            edit_keys(d, |_, signing, staged| {
                *signing = 0;
                *staged = None;
            })
        },
    );
    step(store, &mut g, &mut d, still, "disabling signing", |d| {
        d.dkim.as_mut().unwrap().signing_enabled = false;
    });
    assert_eq!(published_here(store), keys_of(&d));

    // Every key change moves it, and the zone's keys follow.
    let moves = Change::Moves;
    step(
        store,
        &mut g,
        &mut d,
        moves,
        "staging a rotation key",
        |d| {
            edit_keys(d, |keys, _, staged| {
                let key = DkimKey {
                    selector: Selector::from_token(&token('d')),
                    bits: 2048,
                    public_der: b"unique-public-key-staged".to_vec(),
                    sealed_private: vec![0xee, 9],
                    created_at: Timestamp(7_000),
                };
                keys.push((key, None));
                *staged = Some(3);
            })
        },
    );
    assert_eq!(published_here(store), keys_of(&d));
    let staged = (
        token('d').as_str().to_owned(),
        b"unique-public-key-staged".to_vec(),
    );
    assert!(
        published_here(store).contains(&staged),
        "the staged key is published"
    );
    step(store, &mut g, &mut d, moves, "retiring a key", |d| {
        edit_keys(d, |keys, _, _| keys[1].1 = Some(Timestamp(8_000)))
    });
    step(
        store,
        &mut g,
        &mut d,
        moves,
        "a new key under a selector",
        |d| {
            edit_keys(d, |keys, _, _| {
                keys[1].0.public_der = b"unique-public-key-replaced".to_vec();
                keys[1].0.sealed_private = vec![0xee, 10];
            })
        },
    );
    let now = published_here(store);
    assert_eq!(now, keys_of(&d));
    assert!(
        !now.iter().any(|(_, der)| der == b"unique-public-key-1"),
        "the replaced key is no longer published"
    );
    step(
        store,
        &mut g,
        &mut d,
        moves,
        "dropping a retired key",
        |d| {
            edit_keys(d, |keys, signing, staged| {
                keys.remove(2);
                *signing = 0;
                *staged = Some(2);
            })
        },
    );
    assert_eq!(published_here(store), keys_of(&d));

    // BYODKIM: a new imported key under the same selector moves it too (the key zone does not
    // publish it: the customer does).
    let mut byo = easy_domain(&a, "byo-pub.example.com");
    {
        let dkim = byo.dkim.as_mut().unwrap();
        dkim.origin = DkimOrigin::External {
            selector: Selector::parse("sel-1").unwrap(),
        };
    }
    edit_keys(&mut byo, |keys, signing, staged| {
        keys.truncate(1);
        *signing = 0;
        *staged = None;
        keys[0].0.selector = Selector::parse("sel-1").unwrap();
        keys[0].0.public_der = b"unique-public-key-byo-1".to_vec();
    });
    store.insert_identity(&byo, 100).unwrap();
    let now = store.key_generation().unwrap();
    assert_ne!(now, g, "inserting a BYODKIM key moves the generation");
    g = now;
    step(
        store,
        &mut g,
        &mut byo,
        still,
        "a BYODKIM tag change",
        |d| d.tags.clear(),
    );
    step(store, &mut g, &mut byo, moves, "a new BYODKIM key", |d| {
        edit_keys(d, |keys, _, _| {
            keys[0].0.public_der = b"unique-public-key-byo-2".to_vec();
            keys[0].0.sealed_private = vec![0xbb, 2];
        })
    });
    assert_eq!(
        published_here(store),
        keys_of(&d),
        "BYODKIM keys are not in the key zone"
    );

    store.delete_identity(&a, &d.name).unwrap();
    assert_ne!(
        store.key_generation().unwrap(),
        g,
        "a delete moves the generation"
    );
    assert!(published_here(store).is_empty());
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Moves,
    Keeps,
}

/// Applies `change` to `identity`, writes it as an update, checks that it reads back as
/// written and that the key generation moved (or not) as `expect` says.
fn step(
    store: &dyn Store,
    generation: &mut u64,
    identity: &mut Identity,
    expect: Change,
    what: &str,
    change: impl FnOnce(&mut Identity),
) {
    change(identity);
    identity.version = store.update_identity(identity).unwrap();
    let read = store
        .get_identity(&identity.account, &identity.name)
        .unwrap()
        .unwrap();
    assert_eq!(&read, identity, "{what}: reads back as written");
    let now = store.key_generation().unwrap();
    match expect {
        Change::Moves => assert_ne!(now, *generation, "{what} must move the generation"),
        Change::Keeps => assert_eq!(now, *generation, "{what} must not move the generation"),
    }
    *generation = now;
}

/// The published keys this check wrote (other checks' identities share its tokens), sorted.
fn published_here(store: &dyn Store) -> Vec<(String, Vec<u8>)> {
    let mut p: Vec<_> = store
        .published_keys()
        .unwrap()
        .into_iter()
        .filter(|(_, der)| der.starts_with(b"unique-public-key-"))
        .collect();
    p.sort();
    p
}

/// `(selector, public key)` of every key of `identity`, sorted.
fn keys_of(identity: &Identity) -> Vec<(String, Vec<u8>)> {
    let mut p: Vec<_> = identity
        .dkim
        .as_ref()
        .unwrap()
        .keys
        .keys()
        .map(|k| (k.selector.as_str().to_owned(), k.public_der.clone()))
        .collect();
    p.sort();
    p
}

fn accounts_and_keys(store: &dyn Store) {
    let a = account(store, "100000000001", "alpha");
    let dup = Account {
        id: AccountId::parse("100000000002").unwrap(),
        name: "alpha".into(),
        created_at: Timestamp(1),
    };
    assert!(matches!(
        store.insert_account(&dup),
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(store.account_by_name("alpha").unwrap().unwrap().id, a);
    assert!(store.account_by_name("nobody").unwrap().is_none());
    let mut key = AccessKey {
        id: "AKIAEXAMPLE".into(),
        account: a.clone(),
        sealed_secret: vec![1, 2, 3],
        enabled: true,
        created_at: Timestamp(3),
    };
    store.put_access_key(&key).unwrap();
    assert_eq!(store.access_key("AKIAEXAMPLE").unwrap().unwrap(), key);
    key.enabled = false;
    store.put_access_key(&key).unwrap();
    assert!(!store.access_key("AKIAEXAMPLE").unwrap().unwrap().enabled);
    assert_eq!(store.access_keys_of(&a).unwrap(), vec![key]);
    assert!(store.access_key("AKIANONE").unwrap().is_none());
    assert!(
        store
            .list_accounts()
            .unwrap()
            .iter()
            .any(|x| x.name == "alpha")
    );
}

fn identity_round_trip(store: &dyn Store) {
    let a = account(store, "200000000001", "roundtrip");
    let d = easy_domain(&a, "example.com");
    store.insert_identity(&d, 100).unwrap();
    assert_eq!(store.get_identity(&a, &d.name).unwrap().unwrap(), d);
    let e = address(&a, "User+x@example.com");
    store.insert_identity(&e, 100).unwrap();
    assert_eq!(store.get_identity(&a, &e.name).unwrap().unwrap(), e);
    let lower = IdentityName::parse("user+x@example.com").unwrap();
    assert!(
        store.get_identity(&a, &lower).unwrap().is_none(),
        "addresses are case-sensitive"
    );
    assert!(matches!(
        store.insert_identity(&d, 100),
        Err(StoreError::AlreadyExists)
    ));
    let mut ext = easy_domain(&a, "byo.example.com");
    if let Some(dkim) = &mut ext.dkim {
        dkim.origin = DkimOrigin::External {
            selector: Selector::parse("sel-1").unwrap(),
        };
    }
    edit_keys(&mut ext, |keys, signing, staged| {
        keys.truncate(1);
        *signing = 0;
        *staged = None;
        keys[0].0.selector = Selector::parse("sel-1").unwrap();
        keys[0].0.bits = 1536;
    });
    store.insert_identity(&ext, 100).unwrap();
    assert_eq!(store.get_identity(&a, &ext.name).unwrap().unwrap(), ext);
    // The quota counts per account and is checked inside the insert.
    let full = easy_domain(&a, "full.example.com");
    assert!(matches!(
        store.insert_identity(&full, 3),
        Err(StoreError::LimitExceeded)
    ));
    assert!(store.get_identity(&a, &full.name).unwrap().is_none());
}

fn updates_are_versioned(store: &dyn Store) {
    let a = account(store, "300000000001", "versions");
    let d = easy_domain(&a, "v.example.com");
    store.insert_identity(&d, 100).unwrap();
    let mut changed = d.clone();
    changed.feedback_forwarding = false;
    changed.tags = vec![];
    edit_keys(&mut changed, |keys, signing, staged| {
        keys.truncate(1);
        *signing = 0;
        *staged = None;
    });
    assert_eq!(store.update_identity(&changed).unwrap(), 2);
    let read = store.get_identity(&a, &d.name).unwrap().unwrap();
    assert_eq!(read.version, 2);
    assert!(!read.feedback_forwarding);
    assert!(read.tags.is_empty());
    assert_eq!(
        read.dkim.unwrap().keys.len(),
        1,
        "keys are replaced, not appended"
    );
    // A writer holding version 1 lost the race and must not overwrite version 2.
    assert!(matches!(
        store.update_identity(&d),
        Err(StoreError::Conflict)
    ));
    let gone = easy_domain(&a, "gone.example.com");
    assert!(matches!(
        store.update_identity(&gone),
        Err(StoreError::NotFound)
    ));
}

fn delete_removes_everything(store: &dyn Store) {
    let a = account(store, "400000000001", "deletes");
    let d = easy_domain(&a, "del.example.com");
    store.insert_identity(&d, 100).unwrap();
    store.delete_identity(&a, &d.name).unwrap();
    assert!(store.get_identity(&a, &d.name).unwrap().is_none());
    assert!(matches!(
        store.delete_identity(&a, &d.name),
        Err(StoreError::NotFound)
    ));
    // Re-creating starts clean: no keys or tags from the deleted one survive.
    let mut again = easy_domain(&a, "del.example.com");
    again.tags.clear();
    edit_keys(&mut again, |keys, _, _| keys.truncate(2));
    store.insert_identity(&again, 100).unwrap();
    assert_eq!(store.get_identity(&a, &d.name).unwrap().unwrap(), again);
}

fn listing_pages_filters_and_tenancy(store: &dyn Store) {
    let a = account(store, "500000000001", "lister");
    let b = account(store, "500000000002", "other");
    let names = [
        "b.example.com",
        "a@example.com",
        "c.example.org",
        "B@example.com",
        "zz.test.com",
    ];
    for n in names {
        let i = if n.contains('@') {
            address(&a, n)
        } else {
            easy_domain(&a, n)
        };
        store.insert_identity(&i, 100).unwrap();
    }
    let mut done = easy_domain(&a, "ok.example.net");
    done.verification_status = DkimStatus::Success;
    store.insert_identity(&done, 100).unwrap();
    store
        .insert_identity(&easy_domain(&b, "b.example.com"), 100)
        .unwrap();

    let all = IdentityFilter::default();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_identities(&a, &all, after.as_deref(), 2)
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|p| p.name.as_str().to_owned());
        seen.extend(page.into_iter().map(|p| p.name.as_str().to_owned()));
    }
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.push("ok.example.net".into());
    expected.sort();
    assert_eq!(
        seen, expected,
        "byte order, every identity exactly once, no other account's"
    );

    let by = |f: IdentityFilter| -> Vec<String> {
        store
            .list_identities(&a, &f, None, 100)
            .unwrap()
            .into_iter()
            .map(|s| s.name.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        by(IdentityFilter {
            identity_type: Some(IdentityType::EmailAddress),
            ..Default::default()
        }),
        vec!["B@example.com", "a@example.com"]
    );
    assert_eq!(
        by(IdentityFilter {
            name_contains: Some("EXAMPLE.ORG".into()),
            ..Default::default()
        }),
        vec!["c.example.org"]
    );
    assert_eq!(
        by(IdentityFilter {
            verification_status: Some(DkimStatus::Success),
            ..Default::default()
        }),
        vec!["ok.example.net"]
    );
    let other = store.list_identities(&b, &all, None, 100).unwrap();
    assert_eq!(other.len(), 1);
    let name = IdentityName::parse("c.example.org").unwrap();
    assert!(
        store.get_identity(&b, &name).unwrap().is_none(),
        "accounts are isolated"
    );
    assert!(matches!(
        store.delete_identity(&b, &name),
        Err(StoreError::NotFound)
    ));
}

/// Several threads each read-modify-write one identity, retrying on `Conflict`: every
/// increment must land exactly once.
fn concurrent_writers_lose_no_update(store: &(dyn Store + 'static)) {
    let a = account(store, "600000000001", "racers");
    let mut d = address(&a, "race@example.com");
    d.tags.clear();
    store.insert_identity(&d, 100).unwrap();
    let threads = 4;
    let per_thread = 10;
    std::thread::scope(|s| {
        for t in 0..threads {
            let a = a.clone();
            let name = d.name.clone();
            s.spawn(move || {
                for i in 0..per_thread {
                    loop {
                        let mut cur = store.get_identity(&a, &name).unwrap().unwrap();
                        let key = format!("t{t}-{i}");
                        let mut tags = cur.tags.clone();
                        tags.push(Tag::parse(&key, "").unwrap());
                        cur.tags = tags;
                        match store.update_identity(&cur) {
                            Ok(_) => break,
                            Err(StoreError::Conflict) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let end = store.get_identity(&a, &d.name).unwrap().unwrap();
    assert_eq!(end.tags.len(), threads * per_thread, "no lost update");
    assert_eq!(end.version, 1 + (threads * per_thread) as u64);
}

#[cfg(test)]
mod tests {
    use sesame_core::ports::{AccountStore, KeyZoneSource};

    /// How many migration files a backend has (`migrations/<backend>/*.sql`): the schema
    /// version a current database must record.
    fn migration_files(backend: &str) -> usize {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "sql")
            })
            .count()
    }

    #[test]
    fn sqlite_passes_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("sesame.db")).unwrap();
        super::suite(&store);
    }

    /// Each migration runs exactly once: a fresh database records every migration in
    /// `user_version`, and opening it again twice runs none of them again (the last one bumps
    /// the key generation, so a re-run would show there) and keeps the data.
    #[test]
    fn sqlite_survives_reopen_with_migrations_applied_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sesame.db");
        let version = || -> i64 {
            rusqlite::Connection::open(&path)
                .unwrap()
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap()
        };
        let generation = {
            let store = crate::SqliteStore::open(&path).unwrap();
            super::account(&store, "700000000001", "persist");
            store.key_generation().unwrap()
        };
        let want = migration_files("sqlite") as i64;
        assert_eq!(
            version(),
            want,
            "every migration recorded after the first open"
        );
        for reopen in 1..=2 {
            let store = crate::SqliteStore::open(&path).unwrap();
            assert!(store.account_by_name("persist").unwrap().is_some());
            assert_eq!(
                store.key_generation().unwrap(),
                generation,
                "open {reopen} re-ran a migration"
            );
            drop(store);
            assert_eq!(version(), want, "open {reopen} changed the schema version");
        }
    }

    /// Runs against `DATABASE_URL` (e.g. `postgres://root@127.0.0.1/test`) in a fresh schema
    /// that is dropped afterwards. Without it, panics when `SESAME_REQUIRE_POSTGRES=1`
    /// (`scripts/test` sets it) and otherwise says loudly that this half did not run.
    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_passes_the_suite() {
        let Ok(url) = std::env::var("DATABASE_URL") else {
            let required = std::env::var("SESAME_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "SESAME_REQUIRE_POSTGRES=1 but DATABASE_URL is not set: the PostgreSQL conformance suite cannot run"
            );
            // Past the output capture, so the skipped half shows in every run.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"NOT RUN: the PostgreSQL conformance suite needs DATABASE_URL (CI sets it)\n",
            );
            return;
        };
        let schema = format!(
            "sesame_test_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let store = crate::PostgresStore::open(&url, Some(&schema)).unwrap();
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::suite(&store);
            // Each migration ran exactly once and is recorded once; opening again twice runs
            // none of them again and keeps the data.
            let recorded = |admin: &mut postgres::Client| -> Vec<i32> {
                admin
                    .query(
                        &format!("SELECT version FROM {schema}.schema_migrations ORDER BY version"),
                        &[],
                    )
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            };
            let want: Vec<i32> = (1..=migration_files("postgres") as i32).collect();
            assert_eq!(recorded(&mut admin), want);
            let generation = store.key_generation().unwrap();
            for reopen in 1..=2 {
                let again = crate::PostgresStore::open(&url, Some(&schema)).unwrap();
                assert!(again.account_by_name("alpha").unwrap().is_some());
                assert_eq!(
                    again.key_generation().unwrap(),
                    generation,
                    "open {reopen} re-ran a migration"
                );
                assert_eq!(recorded(&mut admin), want, "open {reopen}");
            }
        }));
        admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }

    #[test]
    fn the_in_memory_fake_passes_the_suite_too() {
        super::suite(&sesame_core::testing::MemStore::default());
    }
}
