//! Several nodes over one PostgreSQL database: what one node writes, another reads, changes and
//! serves in its key zone within a second, and the verifiers of both share the work so that no
//! identity is checked twice in one step.

use crate::fakedns::FakeDns;
use crate::harness::{Server, rsa_key_b64};
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::DkimSigningAttributes;
use std::time::{Duration, Instant};

/// Runs one statement on a thread of its own: the synchronous client must not run on the
/// test's async runtime.
fn admin_sql(url: &str, sql: String) {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.batch_execute(&sql).unwrap();
    })
    .join()
    .unwrap();
}

/// A database of its own for one test, dropped afterwards.
struct TestDb {
    admin: String,
    name: String,
    url: String,
}

impl TestDb {
    fn create() -> Option<TestDb> {
        let Ok(admin) = std::env::var("DATABASE_URL") else {
            crate::harness::say(
                "NOT RUN: the multi-node PostgreSQL tests need DATABASE_URL (CI sets it)",
            );
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("sesame_it_{}_{nanos}", std::process::id());
        admin_sql(&admin, format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').unwrap().0;
        Some(TestDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        admin_sql(
            &self.admin,
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

#[tokio::test]
async fn two_nodes_share_one_database() {
    let Some(db) = TestDb::create() else { return };
    let dns = FakeDns::start();
    let master = sesame_crypto::MasterKey::generate().unwrap().to_base64();
    let resolver = dns.addr.to_string();
    // A long first backoff step: every identity is checked exactly once in this test.
    let env = [
        ("SESAME_DATABASE_URL", db.url.as_str()),
        ("SESAME_MASTER_KEY", master.as_str()),
        ("SESAME_RESOLVER", resolver.as_str()),
        ("SESAME_VERIFY_INTERVAL", "1h"),
        ("SESAME_RATE_LIMIT", "0"),
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start_in(dir_a.path(), &env);
    let b = Server::start_in(dir_b.path(), &env);
    assert_eq!(a.account, b.account, "one default account for both nodes");
    let (ca, cb) = (a.client(), b.client());

    // Written on A, read, changed and deleted on B.
    let created = ca
        .create_email_identity()
        .email_identity("shared.example.com")
        .send()
        .await
        .unwrap();
    let tokens = created.dkim_attributes().unwrap().tokens().to_vec();
    let got = cb
        .get_email_identity()
        .email_identity("shared.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(got.dkim_attributes().unwrap().tokens(), tokens.as_slice());
    cb.put_email_identity_feedback_attributes()
        .email_identity("shared.example.com")
        .email_forwarding_enabled(false)
        .send()
        .await
        .unwrap();
    let got = ca
        .get_email_identity()
        .email_identity("shared.example.com")
        .send()
        .await
        .unwrap();
    assert!(!got.feedback_forwarding_status());

    // B's key zone serves A's new keys within a second.
    let resolver = {
        use hickory_resolver::config::{NameServerConfig, ResolverConfig};
        let mut nsc = NameServerConfig::udp_and_tcp(b.dns.ip());
        for c in nsc.connections.iter_mut() {
            c.port = b.dns.port();
        }
        let mut builder = hickory_resolver::Resolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![nsc]),
            hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
        );
        builder.options_mut().cache_size = 0;
        builder.build().unwrap()
    };
    let started = Instant::now();
    for t in &tokens {
        let name = format!("{t}.dkim.sesame.internal.");
        loop {
            if resolver.txt_lookup(name.as_str()).await.is_ok() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "node B did not serve {t} within a second"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    cb.delete_email_identity()
        .email_identity("shared.example.com")
        .send()
        .await
        .unwrap();
    let e = ca
        .get_email_identity()
        .email_identity("shared.example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"));

    // 500 pending identities, both verifiers running: each is checked exactly once.
    let key = rsa_key_b64(1024, false);
    let n = 500;
    let mut tasks = Vec::new();
    for i in 0..n {
        let c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            c.create_email_identity()
                .email_identity(format!("d{i:03}.example.org"))
                .dkim_signing_attributes(
                    DkimSigningAttributes::builder()
                        .domain_signing_selector("s1")
                        .domain_signing_private_key(key)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let expected: Vec<String> = (0..n)
        .map(|i| format!("s1._domainkey.d{i:03}.example.org."))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = {
            let counts = dns.counts.lock().unwrap();
            expected.iter().filter(|q| counts.contains_key(*q)).count()
        };
        if done == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {n} identities were checked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give any duplicate a chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = dns.counts.lock().unwrap().clone();
    let twice: Vec<_> = expected
        .iter()
        .filter(|q| counts.get(*q) != Some(&1))
        .collect();
    assert!(
        twice.is_empty(),
        "checked more than once: {:?}",
        &twice[..twice.len().min(5)]
    );
    let a_checks = a.output().matches("checked").count();
    let b_checks = b.output().matches("checked").count();
    eprintln!("verifications logged: node A {a_checks}, node B {b_checks}");
}

fn byo(key: &str) -> DkimSigningAttributes {
    DkimSigningAttributes::builder()
        .domain_signing_selector("s1")
        .domain_signing_private_key(key)
        .build()
}

/// Node A claims checks and dies (`kill -9`) before finishing them; node B takes the work over
/// once A's leases expire, and every identity gets checked.
#[tokio::test]
async fn a_node_killed_mid_check_has_its_work_finished_by_another() {
    let Some(db) = TestDb::create() else { return };
    let master = sesame_crypto::MasterKey::generate().unwrap().to_base64();
    // A's resolver never answers, so A's checks hang while it holds their leases.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let dir_a = tempfile::tempdir().unwrap();
    let mut a = Server::start_in(
        dir_a.path(),
        &[
            ("SESAME_DATABASE_URL", db.url.as_str()),
            ("SESAME_MASTER_KEY", master.as_str()),
            ("SESAME_RESOLVER", silent_addr.as_str()),
            ("SESAME_VERIFY_LEASE", "2s"),
            ("SESAME_VERIFY_INTERVAL", "1h"),
        ],
    );
    let key = rsa_key_b64(1024, false);
    let n = 20;
    for i in 0..n {
        a.client()
            .create_email_identity()
            .email_identity(format!("k{i:02}.example.net"))
            .dkim_signing_attributes(byo(&key))
            .send()
            .await
            .unwrap();
    }
    // A claims them within its 250 ms tick; its lookups wait for a 3 s timeout. Kill it now.
    tokio::time::sleep(Duration::from_millis(800)).await;
    a.kill9();
    let dns = FakeDns::start();
    let resolver = dns.addr.to_string();
    let dir_b = tempfile::tempdir().unwrap();
    let b = Server::start_in(
        dir_b.path(),
        &[
            ("SESAME_DATABASE_URL", db.url.as_str()),
            ("SESAME_MASTER_KEY", master.as_str()),
            ("SESAME_RESOLVER", resolver.as_str()),
            ("SESAME_VERIFY_LEASE", "2s"),
            ("SESAME_VERIFY_INTERVAL", "1h"),
        ],
    );
    let c = b.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..n {
        let name = format!("k{i:02}.example.net");
        loop {
            let got = c
                .get_email_identity()
                .email_identity(&name)
                .send()
                .await
                .unwrap();
            let info = got.verification_info().unwrap();
            if info.last_checked_timestamp().is_some() {
                assert_eq!(
                    info.error_type().map(|e| e.as_str()),
                    Some("HOST_NOT_FOUND")
                );
                break;
            }
            if Instant::now() >= deadline {
                let url = db.url.clone();
                let rows = std::thread::spawn(move || {
                    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                    c.query("SELECT name, v_next_check_at, v_lease_until, (extract(epoch from now())*1000)::bigint FROM identities ORDER BY name LIMIT 3", &[])
                        .unwrap()
                        .iter()
                        .map(|r| format!("{} next={:?} lease={:?} now={:?}", r.get::<_, String>(0), r.get::<_, Option<i64>>(1), r.get::<_, Option<i64>>(2), r.get::<_, Option<i64>>(3)))
                        .collect::<Vec<_>>()
                })
                .join()
                .unwrap();
                panic!("{name} was never checked after node A died: {rows:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let counts = dns.counts.lock().unwrap().clone();
    for i in 0..n {
        let q = format!("s1._domainkey.k{i:02}.example.net.");
        assert_eq!(counts.get(&q), Some(&1), "{q} checked once, by node B");
    }
    drop(silent);
}

/// The database drops every connection under load: requests fail with a clean 5xx while it
/// does, no acknowledged write is lost, and Sesame recovers without a restart.
#[tokio::test]
async fn dropped_database_connections_recover_without_a_restart() {
    let Some(db) = TestDb::create() else { return };
    let master = sesame_crypto::MasterKey::generate().unwrap().to_base64();
    let dir = tempfile::tempdir().unwrap();
    let node = Server::start_in(
        dir.path(),
        &[
            ("SESAME_DATABASE_URL", db.url.as_str()),
            ("SESAME_MASTER_KEY", master.as_str()),
            ("SESAME_RATE_LIMIT", "0"),
        ],
    );
    // One attempt per call, so the test sees every failure the SDK would otherwise retry.
    let conf = aws_sdk_sesv2::Config::builder()
        .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
        .region(aws_sdk_sesv2::config::Region::new(crate::harness::REGION))
        .endpoint_url(format!("http://{}", node.api))
        .credentials_provider(aws_sdk_sesv2::config::Credentials::new(
            crate::harness::KEY_ID,
            crate::harness::SECRET,
            None,
            None,
            "t",
        ))
        .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    let c = aws_sdk_sesv2::Client::from_conf(conf);
    let mut acknowledged = Vec::new();
    let mut failures = Vec::new();
    let mut i = 0;
    let terminate = || {
        admin_sql(
            &db.admin,
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{}' AND pid <> pg_backend_pid()",
                db.name
            ),
        )
    };
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
                let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
                assert!(
                    (500..600).contains(&status),
                    "a dropped connection is a 5xx, got {status}: {e:?}"
                );
                failures.push(e.code().unwrap_or("?").to_owned());
            }
        }
        if i % 15 == 0 && terminations < 3 {
            terminate();
            terminations += 1;
            ok_since_last = 0;
        }
        assert!(
            i < 2000,
            "Sesame did not recover: {} failures",
            failures.len()
        );
    }
    // Every acknowledged identity is there, read through the same recovered node.
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
    eprintln!(
        "{} acknowledged, {} failed cleanly ({:?}) across 3 rounds of pg_terminate_backend",
        acknowledged.len(),
        failures.len(),
        failures.iter().collect::<std::collections::BTreeSet<_>>()
    );
}
