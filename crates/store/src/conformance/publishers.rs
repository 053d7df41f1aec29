//! DNS publishers: round trip of the set-up and the whole state, the version a state write
//! must match (the operator's `put` always wins and bumps it), tenancy, delete.

use super::account;
use sesame_core::StoreError;
use sesame_core::model::{
    DomainName, PublishState, PublishedRecord, Publisher, Retiring, Timestamp,
};
use sesame_core::ports::Store;

fn record(name: &str, rtype: &str, value: &str, dkim: bool) -> PublishedRecord {
    PublishedRecord {
        name: name.into(),
        rtype: rtype.into(),
        value: value.into(),
        dkim,
    }
}

pub(super) fn publishers_round_trip_versioned_per_account(store: &dyn Store) {
    let a = account(store, "900000000071", "publishers-a");
    let b = account(store, "900000000072", "publishers-b");
    let domain = DomainName::parse("pub.example.com").unwrap();
    let mut p = Publisher {
        account: a.clone(),
        domain: domain.clone(),
        server: "192.0.2.53:53".into(),
        zone: DomainName::parse("example.com").unwrap(),
        key_name: "sesame-key".into(),
        algorithm: "hmac-sha256".into(),
        sealed_secret: vec![0, 1, 2, 0xff],
        byodkim: true,
        state: PublishState::default(),
        version: 0,
        created_at: Timestamp(7_000),
    };
    store.put_publisher(&p).unwrap();
    let got = store.publisher(&a, &domain).unwrap().unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(
        Publisher {
            version: 0,
            ..got.clone()
        },
        p
    );
    assert!(
        store.publisher(&b, &domain).unwrap().is_none(),
        "per account"
    );

    let state = PublishState {
        published: vec![
            record(
                "t._domainkey.pub.example.com",
                "CNAME",
                "t.dkim.sesame.test.",
                true,
            ),
            record(
                "pub.example.com",
                "TXT",
                "\"v=spf1 include:spf.sesame.test ~all\"",
                false,
            ),
        ],
        retiring: vec![Retiring {
            record: record(
                "old._domainkey.pub.example.com",
                "CNAME",
                "old.dkim.sesame.test.",
                true,
            ),
            remove_at: Timestamp(9_000),
        }],
        conflicts: vec!["mail.pub.example.com MX 10 x.: not added, the zone has MX 5 y.".into()],
        last_attempt_at: Some(Timestamp(8_000)),
        last_success_at: Some(Timestamp(7_500)),
        last_error: Some("NOTAUTH: the server refused the TSIG key (BADSIG)".into()),
        failures: 3,
        retry_at: Some(Timestamp(8_040)),
    };
    assert_eq!(store.save_publish_state(&a, &domain, 1, &state).unwrap(), 2);
    assert!(matches!(
        store.save_publish_state(&a, &domain, 1, &PublishState::default()),
        Err(StoreError::Conflict)
    ));
    let got = store.publisher(&a, &domain).unwrap().unwrap();
    assert_eq!((got.version, &got.state), (2, &state));

    // The operator's put wins over a state computed from the old set-up.
    p.sealed_secret = vec![9; 32];
    p.state = got.state.clone();
    store.put_publisher(&p).unwrap();
    let got = store.publisher(&a, &domain).unwrap().unwrap();
    assert_eq!((got.version, got.sealed_secret.clone()), (3, vec![9; 32]));
    assert!(matches!(
        store.save_publish_state(&a, &domain, 2, &state),
        Err(StoreError::Conflict)
    ));

    let other = Publisher {
        account: b.clone(),
        ..p.clone()
    };
    store.put_publisher(&other).unwrap();
    let all: Vec<_> = store
        .list_publishers()
        .unwrap()
        .into_iter()
        .filter(|x| x.domain == domain)
        .map(|x| x.account)
        .collect();
    assert_eq!(all, vec![a.clone(), b.clone()]);
    store.delete_publisher(&a, &domain).unwrap();
    assert!(matches!(
        store.delete_publisher(&a, &domain),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.save_publish_state(&a, &domain, 3, &state),
        Err(StoreError::NotFound)
    ));
    assert!(store.publisher(&b, &domain).unwrap().is_some());
    store.delete_publisher(&b, &domain).unwrap();
}
