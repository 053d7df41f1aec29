//! Acknowledged writes survive `kill -9` and a restart; SIGTERM exits 0 without waiting on the
//! key pool's threads and loses no acknowledged write; a first start without credentials
//! writes a private credentials file that works.

use crate::harness::Server;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[tokio::test]
async fn acknowledged_identities_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    let c = server.client();
    let mut acknowledged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Concurrent creates, so commits overlap; the server is killed right after the last reply.
    let mut tasks = Vec::new();
    for i in 0..24 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let name = if i % 3 == 0 {
                format!("d{i}.example.com")
            } else {
                format!("user{i}@example.com")
            };
            let out = c
                .create_email_identity()
                .email_identity(&name)
                .send()
                .await
                .unwrap();
            let tokens = out
                .dkim_attributes()
                .map(|d| d.tokens().to_vec())
                .unwrap_or_default();
            (name, tokens)
        }));
    }
    for t in tasks {
        let (name, tokens) = t.await.unwrap();
        if name.contains('@') {
            assert!(tokens.is_empty(), "{name}: an address has no tokens");
        } else {
            assert_eq!(tokens.len(), 3, "{name}: Easy DKIM gives three tokens");
        }
        acknowledged.insert(name, tokens);
    }
    c.tag_resource()
        .resource_arn(server.arn("d0.example.com"))
        .tags(
            aws_sdk_sesv2::types::Tag::builder()
                .key("k")
                .value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    server.kill9();
    drop(c);

    // Everything below reads what the restarted server returns.
    let restarted = Server::start_in(dir.path(), &[]);
    assert_eq!(
        restarted.account, server.account,
        "same default account after restart"
    );
    let c = restarted.client();
    for (name, tokens) in &acknowledged {
        let got = c
            .get_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name} acknowledged but gone after restart: {e:?}"));
        let kind = got.identity_type().map(|t| t.as_str());
        let dkim = got.dkim_attributes().expect("DkimAttributes");
        if name.contains('@') {
            assert_eq!(kind, Some("EMAIL_ADDRESS"), "{name}");
            assert!(dkim.tokens().is_empty(), "{name}: {got:?}");
        } else {
            assert_eq!(kind, Some("DOMAIN"), "{name}");
            assert_eq!(dkim.tokens(), tokens.as_slice(), "{name}: same tokens");
        }
    }
    let tags = c
        .list_tags_for_resource()
        .resource_arn(restarted.arn("d0.example.com"))
        .send()
        .await
        .unwrap();
    let tags: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, [("k", "v")]);
    let listed = c
        .list_email_identities()
        .page_size(1000)
        .send()
        .await
        .unwrap();
    let mut names: Vec<&str> = listed
        .email_identities()
        .iter()
        .filter_map(|i| i.identity_name())
        .collect();
    names.sort();
    let want: Vec<&str> = acknowledged.keys().map(String::as_str).collect();
    assert_eq!(names, want, "exactly the acknowledged identities");
}

/// Polls the server's log until `done` holds, for up to a minute (the key pool's threads run
/// at idle priority, so filling it waits for a CPU no test wants).
fn wait_log(server: &Server, what: &str, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = server.output();
        if done(&out) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server never logged {what}:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM while creates are in flight: the process exits with status 0, its refill threads
/// (idle on a full key pool) do not hold the exit up, and every create it acknowledged is
/// there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    // The pool full, so its threads wait for room when SIGTERM comes.
    wait_log(&server, "a full key pool", |o| o.contains("key pool ready"));
    let c = server.client();
    c.create_email_identity()
        .email_identity("a@example.com")
        .send()
        .await
        .unwrap();
    // Address identities take no key, so the pool stays full while they are created.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(vec!["a@example.com".to_owned()]));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (c, acked) = (c.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{w}-{i}@example.com");
                match c.create_email_identity().email_identity(&name).send().await {
                    Ok(_) => acked.lock().unwrap().push(name),
                    // Refused or cut off by the shutdown: not acknowledged.
                    Err(_) => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 20 {
        assert!(Instant::now() < deadline, "the writers never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = tokio::task::block_in_place(|| server.terminate());
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(
        status.code(),
        Some(0),
        "clean exit after SIGTERM: {status:?}"
    );
    let output = server.output();
    assert!(output.contains("sesame stopped"), "{output}");
    drop(c);

    let restarted = Server::start_in(dir.path(), &[]);
    let c = restarted.client();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 20);
    for name in &acked {
        c.get_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name} acknowledged before SIGTERM, gone after: {e:?}"));
    }
}

/// Kills the child when dropped, also when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn first_start_without_credentials_writes_a_private_credentials_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // A resolver that never answers (address identities are never looked up anyway).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut cmd_env = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"));
    cmd_env
        .args([
            "serve",
            "--api-addr",
            "127.0.0.1:0",
            "--dns-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("SESAME_ACCESS_KEY_ID")
        .env_remove("SESAME_SECRET_ACCESS_KEY")
        .env_remove("SESAME_MASTER_KEY")
        .env("SESAME_RESOLVER", silent.local_addr().unwrap().to_string())
        .env("SESAME_KEY_POOL_2048", "0")
        .env("SESAME_KEY_POOL_1024", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = KillOnDrop(cmd_env.spawn().unwrap());
    // Lines read on a thread, so the wait for `listening` has a deadline.
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let api = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no listening line ({e}); saw {seen:?}"));
        seen.push(line.clone());
        if let Some(a) = line.strip_prefix("listening api=") {
            break a.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let path = dir.path().join("credentials");
    assert!(
        seen.iter().any(|l| l.contains(&path.display().to_string())),
        "{seen:?}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let master_mode = std::fs::metadata(dir.path().join("master.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(master_mode, 0o600);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
            })
            .unwrap()
    };
    assert!(text.starts_with("[default]\n"));
    let c = crate::harness::client_for(
        api,
        &field("aws_access_key_id"),
        &field("aws_secret_access_key"),
    );
    c.create_email_identity()
        .email_identity("x@example.com")
        .send()
        .await
        .unwrap();
    drop(child);
}
