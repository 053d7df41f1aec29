//! `/metrics` on two nodes over one PostgreSQL database: each node counts the requests it
//! answered (and only those), and both report the same identities gauge, which is the
//! database's, whichever node made the identities.

use crate::scrape::{gauges_of_listed, identity_gauges, scrape, series, value};
use crate::{TestDb, byo, master_key, node, sdk_client};
use std::collections::BTreeMap;

/// `{operation="X",status="N"}` → count, of one scrape.
fn requests(text: &str) -> BTreeMap<(String, u16), u64> {
    series(text, "sesame_http_requests_total")
        .into_iter()
        .map(|(labels, v)| {
            let mut parts = labels.split('"');
            let op = parts.nth(1).unwrap().to_owned();
            let status = parts.nth(1).unwrap().parse().unwrap();
            ((op, status), v as u64)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_count_their_own_requests_and_agree_on_the_identities() {
    let Some(db) = TestDb::create() else { return };
    let master = master_key();
    let a = node(&db, "a", &master, &[("SESAME_RATE_LIMIT", "0")]);
    let b = node(&db, "b", &master, &[("SESAME_RATE_LIMIT", "0")]);
    let (ca, cb) = (sdk_client(a.api, false), sdk_client(b.api, false));
    let key = crate::harness::rsa_key_b64(1024, false);
    let mut want_a: BTreeMap<(String, u16), u64> = BTreeMap::new();
    let mut want_b: BTreeMap<(String, u16), u64> = BTreeMap::new();
    let count = |want: &mut BTreeMap<(String, u16), u64>, op: &str, status: u16| {
        *want.entry((op.to_owned(), status)).or_default() += 1;
    };
    for i in 0..4 {
        ca.create_email_identity()
            .email_identity(format!("a{i}.example.com"))
            .send()
            .await
            .unwrap();
        count(&mut want_a, "CreateEmailIdentity", 200);
    }
    for i in 0..3 {
        cb.create_email_identity()
            .email_identity(format!("b{i}.example.com"))
            .dkim_signing_attributes(byo(&key))
            .send()
            .await
            .unwrap();
        count(&mut want_b, "CreateEmailIdentity", 200);
    }
    cb.create_email_identity()
        .email_identity("me@example.com")
        .send()
        .await
        .unwrap();
    count(&mut want_b, "CreateEmailIdentity", 200);
    // B reads and deletes what A made; A reads what B made and misses one.
    cb.get_email_identity()
        .email_identity("a0.example.com")
        .send()
        .await
        .unwrap();
    count(&mut want_b, "GetEmailIdentity", 200);
    cb.delete_email_identity()
        .email_identity("a3.example.com")
        .send()
        .await
        .unwrap();
    count(&mut want_b, "DeleteEmailIdentity", 200);
    ca.get_email_identity()
        .email_identity("b0.example.com")
        .send()
        .await
        .unwrap();
    count(&mut want_a, "GetEmailIdentity", 200);
    let e = ca
        .get_email_identity()
        .email_identity("a3.example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 404);
    count(&mut want_a, "GetEmailIdentity", 404);
    let listed = ca.list_email_identities().send().await.unwrap();
    count(&mut want_a, "ListEmailIdentities", 200);
    assert_eq!(listed.email_identities().len(), 7);

    let (sa, sb) = (scrape(a.admin), scrape(b.admin));
    assert_eq!(
        requests(&sa),
        want_a,
        "node A counts its own requests:\n{sa}"
    );
    assert_eq!(
        requests(&sb),
        want_b,
        "node B counts its own requests:\n{sb}"
    );
    // What ListEmailIdentities says, by type and status.
    let from_list = gauges_of_listed(listed.email_identities());
    assert_eq!(
        identity_gauges(&sa),
        from_list,
        "A's gauge is the database's:\n{sa}"
    );
    assert_eq!(
        identity_gauges(&sb),
        from_list,
        "B's gauge is the database's:\n{sb}"
    );
    assert_eq!(
        value(
            &sa,
            "sesame_identities{type=\"EMAIL_ADDRESS\",dkim_status=\"NONE\"}"
        ),
        Some(1.0)
    );
    eprintln!(
        "multinode metrics: A counted {} requests, B {}, both gauges {from_list:?}",
        want_a.values().sum::<u64>(),
        want_b.values().sum::<u64>()
    );
}
