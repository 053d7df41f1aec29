//! The database goes away under a node: its connections are killed, then it refuses
//! connections for a while. Every request that fails meanwhile fails with exactly 503 and the
//! AWS error shape, no acknowledged write is lost, and the node answers again once the database
//! is back, without a restart.

use crate::db::execute;
use crate::{TestDb, master_key, node, sdk_client};
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use std::time::{Duration, Instant};

/// Asserts that a failed call was answered 503 `ServiceUnavailable`, in the restJson1 error
/// shape: the `x-amzn-ErrorType` header and a `{"__type", "message"}` body
/// (`crates/api/src/errors.rs`).
fn assert_unavailable<E: std::fmt::Debug + ProvideErrorMetadata>(
    what: &str,
    e: &SdkError<E, HttpResponse>,
) {
    let r = e
        .raw_response()
        .unwrap_or_else(|| panic!("{what}: no HTTP response: {e:?}"));
    let status = r.status().as_u16();
    let header = r.headers().get("x-amzn-ErrorType");
    let body = String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).into_owned();
    let json: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|err| panic!("{what}: the body is not JSON ({err}): {body:?}"));
    assert_eq!(
        (status, header, json["__type"].as_str()),
        (503, Some("ServiceUnavailable"), Some("ServiceUnavailable")),
        "{what}: {body}"
    );
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no message: {body}"
    );
    assert_eq!(
        e.code(),
        Some("ServiceUnavailable"),
        "{what}: the SDK's view"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_heals_without_a_restart() {
    let Some(db) = TestDb::create() else { return };
    let master = master_key();
    let node = node(&db, "node", &master, &[("SESAME_RATE_LIMIT", "0")]);
    let c = sdk_client(node.api, false);
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    let mut i = 0;
    let terminate = || {
        execute(
            &db.admin,
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{}' AND pid <> pg_backend_pid()",
                db.name
            ),
        )
    };

    // Connections killed under load, three times: a request on a killed connection fails, the
    // next one reconnects.
    let mut terminations = 0;
    let mut ok_since_last = 0;
    while terminations < 3 || ok_since_last < 10 {
        let name = format!("u{i:04}@example.com");
        i += 1;
        match c.create_email_identity().email_identity(&name).send().await {
            Ok(_) => {
                acknowledged.push(name);
                ok_since_last += 1;
            }
            Err(e) => {
                assert_unavailable(&format!("creating {name} after a kill"), &e);
                failed += 1;
            }
        }
        if i % 15 == 0 && terminations < 3 {
            terminate();
            terminations += 1;
            ok_since_last = 0;
        }
        assert!(i < 2000, "the node did not recover: {failed} failures");
    }

    let ready = crate::scrape::get(node.admin, "/health/ready", &[]);
    assert_eq!(ready.status, 200, "ready before the outage: {ready:?}");

    // The outage: no connection is possible for a while. Every request reads its access key
    // from the store, so every one fails, writes and reads alike.
    execute(
        &db.admin,
        format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", db.name),
    );
    terminate();
    let mut during = 0;
    for j in 0..10 {
        let name = format!("outage{j}@example.com");
        match c.create_email_identity().email_identity(&name).send().await {
            Ok(_) => panic!("creating {name} succeeded with the database refusing connections"),
            Err(e) => assert_unavailable(&format!("creating {name} in the outage"), &e),
        }
        match c
            .get_email_identity()
            .email_identity(&acknowledged[0])
            .send()
            .await
        {
            Ok(_) => panic!("a read succeeded with the database refusing connections"),
            Err(e) => assert_unavailable("reading in the outage", &e),
        }
        during += 2;
    }
    // The readiness probe says so, with a reason, while liveness holds.
    let ready = crate::scrape::get(node.admin, "/health/ready", &[]);
    assert_eq!(ready.status, 503, "ready in the outage: {ready:?}");
    let why = ready.json();
    assert_eq!(why["status"], "unavailable", "{why}");
    assert!(
        why["reason"].as_str().is_some_and(|r| r.contains("store")),
        "{why}"
    );
    assert_eq!(
        crate::scrape::get(node.admin, "/health/live", &[]).status,
        200
    );
    eprintln!("in the outage: /health/ready 503 {why}");

    // Back: the same process answers 200 again once it reconnects.
    execute(
        &db.admin,
        format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let name = format!("u{i:04}@example.com");
        i += 1;
        match c.create_email_identity().email_identity(&name).send().await {
            Ok(_) => {
                acknowledged.push(name);
                break;
            }
            Err(e) => {
                assert_unavailable(&format!("creating {name} after the outage"), &e);
                failed += 1;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the node still fails 30 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // And ready again, the same process.
    let deadline = Instant::now() + Duration::from_secs(30);
    while crate::scrape::get(node.admin, "/health/ready", &[]).status != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready 30 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every acknowledged identity is there, read through the same node.
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_email_identities()
            .page_size(1000)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        listed.extend(
            page.email_identities()
                .iter()
                .map(|x| x.identity_name().unwrap().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    for name in &acknowledged {
        assert!(listed.contains(name), "acknowledged {name} was lost");
    }
    assert!(
        !listed.iter().any(|n| n.starts_with("outage")),
        "a create refused in the outage was stored: {listed:?}"
    );
    eprintln!(
        "{} acknowledged; {failed} failed around 3 kills and the reconnect, {during} in the outage, all 503",
        acknowledged.len()
    );
}
