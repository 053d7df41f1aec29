//! Identities: round trips, versions, deletes, listing and concurrent writers.

use super::{account, address, easy_domain, edit_keys, link_hash};
use sesame_core::StoreError;
use sesame_core::model::{
    DkimOrigin, DkimStatus, IdentityFilter, IdentityName, IdentityType, Selector, Tag, Timestamp,
};
use sesame_core::ports::Store;

pub(super) fn identity_round_trip(store: &dyn Store) {
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

pub(super) fn updates_are_versioned(store: &dyn Store) {
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

pub(super) fn delete_removes_everything(store: &dyn Store) {
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
    again.created_at = Timestamp(d.created_at.0 + 1);
    store.insert_identity(&again, 100).unwrap();
    assert_eq!(store.get_identity(&a, &d.name).unwrap().unwrap(), again);
    // A copy of the deleted identity (a verifier's claim, say) has the new one's version but
    // is not a state of it: writing it is a conflict and changes nothing (found by the crash
    // trials: a recorded check overwrote a re-created identity).
    assert_eq!(d.version, again.version);
    assert!(matches!(
        store.update_identity(&d),
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.get_identity(&a, &d.name).unwrap().unwrap(), again);
}

pub(super) fn listing_pages_filters_and_tenancy(store: &dyn Store) {
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
pub(super) fn concurrent_writers_lose_no_update(store: &(dyn Store + 'static)) {
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

/// Counts group by type, DKIM status and verification status; an account's counts are its
/// own, and the counts of all accounts are the sum of each one's.
pub(super) fn counts_follow_types_statuses_and_accounts(store: &dyn Store) {
    use sesame_core::model::IdentityCount;
    let a = account(store, "260000000001", "counts-a");
    let b = account(store, "260000000002", "counts-b");
    for name in ["one.example", "two.example", "three.example"] {
        store.insert_identity(&easy_domain(&a, name), 100).unwrap();
    }
    let mut ok = store
        .get_identity(&a, &IdentityName::parse("two.example").unwrap())
        .unwrap()
        .unwrap();
    ok.verification_status = DkimStatus::Success;
    store.update_identity(&ok).unwrap();
    store
        .insert_identity(&address(&a, "x@one.example"), 100)
        .unwrap();
    store
        .insert_identity(&easy_domain(&b, "other.example"), 100)
        .unwrap();
    let sorted = |mut v: Vec<IdentityCount>| {
        v.sort_by_key(|c| {
            (
                c.identity_type.name(),
                c.dkim_status.map(DkimStatus::name),
                c.verification_status.name(),
            )
        });
        v
    };
    let count = |identity_type, dkim_status, verification_status, count| IdentityCount {
        identity_type,
        dkim_status,
        verification_status,
        count,
    };
    assert_eq!(
        sorted(store.count_identities(Some(&a)).unwrap()),
        vec![
            count(
                IdentityType::Domain,
                Some(DkimStatus::Pending),
                DkimStatus::Pending,
                2
            ),
            count(
                IdentityType::Domain,
                Some(DkimStatus::Success),
                DkimStatus::Success,
                1
            ),
            count(IdentityType::EmailAddress, None, DkimStatus::Pending, 1),
        ]
    );
    assert_eq!(
        store.count_identities(Some(&b)).unwrap(),
        vec![count(
            IdentityType::Domain,
            Some(DkimStatus::Pending),
            DkimStatus::Pending,
            1
        )]
    );
    store
        .delete_identity(&a, &IdentityName::parse("one.example").unwrap())
        .unwrap();
    let total = |v: Vec<IdentityCount>| v.iter().map(|c| c.count).sum::<u64>();
    assert_eq!(
        total(store.count_identities(Some(&a)).unwrap()),
        3,
        "a delete counts"
    );
    let each: u64 = store
        .list_accounts()
        .unwrap()
        .iter()
        .map(|acc| total(store.count_identities(Some(&acc.id)).unwrap()))
        .sum();
    assert_eq!(total(store.count_identities(None).unwrap()), each);
}

pub(super) fn links_are_found_by_their_hash_in_any_account(store: &dyn Store) {
    let a = account(store, "200000000071", "links-a");
    let b = account(store, "200000000072", "links-b");
    let in_a = address(&a, "owner@links.example");
    let in_b = address(&b, "owner@links.example");
    store.insert_identity(&in_a, 100).unwrap();
    store.insert_identity(&in_b, 100).unwrap();
    let hash = |id: &sesame_core::model::Identity| id.link.clone().unwrap().hash;
    assert_eq!(
        store.identity_by_link(&hash(&in_a)).unwrap(),
        Some(in_a.clone())
    );
    assert_eq!(
        store.identity_by_link(&hash(&in_b)).unwrap(),
        Some(in_b.clone())
    );
    assert_eq!(store.identity_by_link(&link_hash("nobody")).unwrap(), None);

    // A newer link replaces the older one: the old hash finds nothing.
    let mut renewed = in_a.clone();
    let old = hash(&in_a);
    if let Some(l) = renewed.link.as_mut() {
        l.hash = link_hash("renewed");
        l.failure_url = Some("https://app.example/failed".into());
    }
    renewed.version = store.update_identity(&renewed).unwrap();
    assert_eq!(store.identity_by_link(&old).unwrap(), None);
    assert_eq!(
        store.identity_by_link(&link_hash("renewed")).unwrap(),
        Some(renewed.clone())
    );

    // A link dropped, and an identity deleted, find nothing.
    let mut dropped = renewed.clone();
    dropped.link = None;
    store.update_identity(&dropped).unwrap();
    assert_eq!(store.identity_by_link(&link_hash("renewed")).unwrap(), None);
    store.delete_identity(&b, &in_b.name).unwrap();
    assert_eq!(store.identity_by_link(&hash(&in_b)).unwrap(), None);
}
