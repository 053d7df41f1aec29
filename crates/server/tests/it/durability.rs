//! Acknowledged writes survive `kill -9` and a restart; SIGTERM shuts down cleanly.

use crate::harness::Server;
use std::collections::BTreeMap;

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
            .unwrap();
        if name.contains('@') {
            assert!(tokens.is_empty());
        } else {
            assert_eq!(
                got.dkim_attributes().unwrap().tokens(),
                tokens.as_slice(),
                "{name}"
            );
        }
    }
    let tags = c
        .list_tags_for_resource()
        .resource_arn(restarted.arn("d0.example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    let listed = c.list_email_identities().send().await.unwrap();
    assert_eq!(listed.email_identities().len(), acknowledged.len());
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let mut server = Server::start();
    server
        .client()
        .create_email_identity()
        .email_identity("a@example.com")
        .send()
        .await
        .unwrap();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let output = server.output();
    assert!(output.contains("sesame stopped"));
    // The key pool's threads do not hold the exit up.
    assert!(output.contains("key pool"), "{output}");
}

#[tokio::test]
async fn first_start_without_credentials_writes_a_private_credentials_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd_env = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"));
    cmd_env
        .args(["serve", "--api-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("SESAME_ACCESS_KEY_ID")
        .env_remove("SESAME_SECRET_ACCESS_KEY")
        .env_remove("SESAME_MASTER_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd_env.spawn().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut seen = Vec::new();
    let api = loop {
        let line = lines.next().unwrap().unwrap();
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
    child.kill().unwrap();
    child.wait().unwrap();
}
