//! The key zone's source: the published keys and the generation that says they changed.

use super::{account, easy_domain, edit_keys, token};
use sesame_core::model::{
    DkimKey, DkimOrigin, DkimStatus, Identity, Selector, Timestamp, VerificationError,
};
use sesame_core::ports::Store;

/// The key-zone generation moves when keys change and only then: every change to an
/// identity's keys through the Store API (insert, a staged rotation key, a retirement, a key
/// replaced under the same selector, a BYODKIM key replaced, a key dropped, delete) moves it,
/// and writes that change anything else (tags, verification state, which key is active,
/// signing on or off) do not. Each write reads back as written, and `published_keys` follows
/// the Easy DKIM keys.
pub(super) fn published_keys_follow_writes(store: &dyn Store) {
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
