//! The check queue: due identities leased once, a write ending the lease.

use super::{account, address, easy_domain};
use sesame_core::model::Timestamp;
use sesame_core::ports::Store;

/// Due identities are handed out once per lease; a write ends the lease.
pub(super) fn due_checks_are_leased_once(store: &(dyn Store + 'static)) {
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

/// An identity is due when any of its schedules is: its DKIM check, its MAIL FROM check or
/// its recommendations' re-check, earliest first.
pub(super) fn every_schedule_makes_an_identity_due(store: &(dyn Store + 'static)) {
    let a = account(store, "800000000007", "schedules");
    let mut dkim = easy_domain(&a, "dkim.due.example.com");
    dkim.verification.next_check_at = Some(Timestamp(300));
    let mut mf = easy_domain(&a, "mf.due.example.com");
    mf.verification.next_check_at = None;
    mf.mail_from.as_mut().unwrap().verification.next_check_at = Some(Timestamp(100));
    mf.recommendations.next_check_at = None;
    let mut rec = easy_domain(&a, "rec.due.example.com");
    rec.verification.next_check_at = Some(Timestamp(9_000));
    rec.mail_from = None;
    rec.recommendations.next_check_at = Some(Timestamp(200));
    let mut none = easy_domain(&a, "none.due.example.com");
    none.verification.next_check_at = None;
    none.mail_from = None;
    none.recommendations.next_check_at = None;
    for d in [&dkim, &mf, &rec, &none] {
        store.insert_identity(d, 100).unwrap();
    }
    let got = store
        .claim_due(Timestamp(1_000), Timestamp(61_000), 10)
        .unwrap();
    let names: Vec<&str> = got.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "mf.due.example.com",
            "rec.due.example.com",
            "dkim.due.example.com"
        ]
    );
    // A write moves the identity's place with its schedules.
    let mut moved = got[0].clone();
    moved.mail_from.as_mut().unwrap().verification.next_check_at = Some(Timestamp(70_000));
    store.update_identity(&moved).unwrap();
    let mut off = got[1].clone();
    off.recommendations.next_check_at = None;
    off.verification.next_check_at = None;
    store.update_identity(&off).unwrap();
    let later = store
        .claim_due(Timestamp(80_000), Timestamp(140_000), 10)
        .unwrap();
    let names: Vec<&str> = later.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["dkim.due.example.com", "mf.due.example.com"]);
    for d in [&dkim, &mf, &rec, &none] {
        store.delete_identity(&a, &d.name).unwrap();
    }
}
