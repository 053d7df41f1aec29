//! The sandbox (`sesame dev`): from a fresh data dir, with only the printed environment, an
//! Easy DKIM and a BYODKIM domain reach SUCCESS within seconds through DNS queries the
//! sandbox's own DNS answered and logged; a record removed on purpose loses SUCCESS by the
//! normal rules (grace, then FAILED with a short `--verification-window`); the outage switch
//! gives TEMPORARY_FAILURE; names outside the identities are refused; `serve` is no sandbox.

use crate::harness::{Server, client_for, raw_request, rsa_key_b64, send};
use aws_sdk_sesv2::types::DkimSigningAttributes;
use hickory_resolver::proto::op::{Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The `export NAME=value` lines `sesame dev` printed.
fn exported(output: &str, name: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("export {name}=")))
        .unwrap_or_else(|| panic!("no {name} in:\n{output}"))
        .to_owned()
}

/// One UDP question to the sandbox DNS.
fn ask(dns: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let mut q = Message::query();
    q.add_query(Query::query(
        Name::from_ascii(format!("{name}.")).unwrap(),
        rtype,
    ));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    socket.send_to(&q.to_vec().unwrap(), dns).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

/// An unsigned request to the sandbox's own endpoints.
fn sandbox_post(api: SocketAddr, path: &str, body: &str) -> u16 {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    send(api, head.as_bytes(), body.as_bytes()).status
}

fn sandbox_get(api: SocketAddr, path: &str) -> serde_json::Value {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n");
    let r = send(api, head.as_bytes(), b"");
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

async fn status_of(c: &aws_sdk_sesv2::Client, name: &str) -> String {
    c.get_email_identity()
        .email_identity(name)
        .send()
        .await
        .unwrap()
        .verification_status()
        .unwrap()
        .as_str()
        .to_owned()
}

/// Waits until `name` is `want`; returns every status seen on the way.
async fn wait_for(
    c: &aws_sdk_sesv2::Client,
    name: &str,
    want: &str,
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let got = status_of(c, name).await;
        if seen.last() != Some(&got) {
            seen.push(got.clone());
        }
        if got == want {
            return seen;
        }
        assert!(Instant::now() < deadline, "{name} is {got}, not {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_dev_sandbox_verifies_through_its_own_dns_and_breaks_on_purpose() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_as(
        &["dev"],
        data.path(),
        &[
            ("SESAME_VERIFICATION_WINDOW", "3s"),
            // A rebuild a second apart: a check that did not wait for the zones to hold a new
            // identity would be answered REFUSED.
            ("SESAME_KEY_ZONE_POLL", "1s"),
        ],
    );
    let out = server.wait_output("the sandbox's environment", |o| {
        o.contains("export AWS_REGION=")
    });
    assert!(out.contains("SANDBOX"), "{out}");
    // Only what it printed.
    let endpoint = exported(&out, "AWS_ENDPOINT_URL_SESV2");
    let api: SocketAddr = endpoint.strip_prefix("http://").unwrap().parse().unwrap();
    let c = client_for(
        api,
        &exported(&out, "AWS_ACCESS_KEY_ID"),
        &exported(&out, "AWS_SECRET_ACCESS_KEY"),
    );
    assert_eq!(exported(&out, "AWS_REGION"), "us-east-1");

    let started = Instant::now();
    let easy = c
        .create_email_identity()
        .email_identity("easy.example.com")
        .send()
        .await
        .unwrap();
    let tokens: Vec<String> = easy.dkim_attributes().unwrap().tokens().to_vec();
    c.create_email_identity()
        .email_identity("byo.example.com")
        .dkim_signing_attributes(
            DkimSigningAttributes::builder()
                .domain_signing_selector("sel")
                .domain_signing_private_key(rsa_key_b64(2048, false))
                .build(),
        )
        .send()
        .await
        .unwrap();
    // PENDING, then SUCCESS: never a TEMPORARY_FAILURE from a check made before the sandbox
    // zones held the new domain (its names would be REFUSED).
    for domain in ["easy.example.com", "byo.example.com"] {
        let seen = wait_for(&c, domain, "SUCCESS", Duration::from_secs(10)).await;
        assert!(
            !seen.iter().any(|s| s == "TEMPORARY_FAILURE"),
            "{domain}: {seen:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));

    // The README's CI example: boto3 with nothing but the printed environment.
    let python = std::env::var("SESAME_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_boto3 = std::process::Command::new(&python)
        .args(["-c", "import boto3"])
        .status()
        .is_ok_and(|s| s.success());
    if has_boto3 {
        let mut cmd = std::process::Command::new(&python);
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/sandbox/ci_example.py"
        ));
        for k in [
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
        ] {
            cmd.env_remove(k);
        }
        for k in [
            "AWS_ENDPOINT_URL_SESV2",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
        ] {
            cmd.env(k, exported(&out, k));
        }
        let ran = cmd.output().unwrap();
        assert!(
            ran.status.success(),
            "ci_example.py: {}{}",
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        );
    } else {
        assert!(
            std::env::var("SESAME_REQUIRE_DNS_TOOLS").is_err(),
            "{python} lacks boto3"
        );
    }

    // Caused by DNS queries the sandbox answered and logged.
    let shown = sandbox_get(api, "/sandbox/dns");
    let asked = |name: &str, rtype: &str| {
        shown["Queries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["Name"] == name && q["Type"] == rtype && q["Rcode"] == "NOERROR")
    };
    assert!(
        asked(
            &format!("{}._domainkey.easy.example.com", tokens[0]),
            "CNAME"
        ),
        "{shown}"
    );
    assert!(asked("sel._domainkey.byo.example.com", "TXT"), "{shown}");
    // No check ran before the zones held the new identities (REFUSED would have made it
    // TEMPORARY_FAILURE for a moment).
    assert!(
        !shown["Queries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["Rcode"] == "REFUSED" || q["Rcode"] == "SERVFAIL"),
        "{shown}"
    );
    assert!(server.output().contains("sandbox DNS query"));

    // Its own identities' names only.
    assert_eq!(
        ask(server.dns, "example.org", RecordType::TXT)
            .metadata
            .response_code,
        ResponseCode::Refused
    );
    assert_eq!(
        ask(server.dns, "nothing.easy.example.com", RecordType::TXT)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );

    // Mail stays in the outbox, readable with its DKIM result against the sandbox DNS, which
    // dkimpy confirms; a simulator address gets SES's outcome.
    let sent = c
        .send_email()
        .from_email_address("app@easy.example.com")
        .destination(
            aws_sdk_sesv2::types::Destination::builder()
                .to_addresses("success@simulator.amazonses.com")
                .to_addresses("bounce+t1@simulator.amazonses.com")
                .build(),
        )
        .content(crate::send::simple("from the sandbox"))
        .send()
        .await
        .unwrap();
    let id = sent.message_id().unwrap().to_owned();
    let listed = sandbox_get(api, "/sandbox/messages");
    let ours = listed["Messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["MessageId"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} is not listed: {listed}"));
    assert_eq!(ours["Subject"], "from the sandbox");
    let outcomes = &ours["Simulator"];
    assert_eq!(outcomes[0]["Outcome"], "delivered", "{listed}");
    assert_eq!(outcomes[1]["Outcome"], "bounce", "{listed}");
    let one = sandbox_get(api, &format!("/sandbox/messages/{id}"));
    assert_eq!(one["Dkim"]["Result"], "pass", "{one}");
    assert!(
        one["Headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "DKIM-Signature")
    );
    if let Some(python) = crate::send::python_with_dkimpy() {
        let path = data.path().join("outbox").join(format!("{id}.eml"));
        let (ok, said) = crate::send::dkimpy(&python, &path, server.dns, server.dns);
        assert!(ok, "dkimpy against the sandbox DNS: {said}");
    }
    let head =
        format!("DELETE /sandbox/messages HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n");
    assert_eq!(send(api, head.as_bytes(), b"").status, 204);
    assert_eq!(
        sandbox_get(api, "/sandbox/messages")["Messages"],
        serde_json::json!([])
    );
    let head = format!(
        "GET /sandbox/messages/../../x HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"
    );
    assert_ne!(send(api, head.as_bytes(), b"").status, 200);

    // A record removed on purpose: SUCCESS through the grace, then FAILED (window 3 s).
    let name = format!("{}._domainkey.easy.example.com", tokens[0]);
    assert_eq!(
        sandbox_post(
            api,
            "/sandbox/dns",
            &format!(r#"{{"Action":"remove","Name":"{name}","Type":"CNAME"}}"#)
        ),
        204
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = c
            .get_email_identity()
            .email_identity("easy.example.com")
            .send()
            .await
            .unwrap();
        let error = got
            .verification_info()
            .and_then(|v| v.error_type())
            .map(|e| e.as_str().to_owned());
        if error.as_deref() == Some("HOST_NOT_FOUND") {
            assert_eq!(
                got.verification_status().unwrap().as_str(),
                "SUCCESS",
                "the grace"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the removal was not seen: {error:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for(&c, "easy.example.com", "FAILED", Duration::from_secs(15)).await;

    // The outage switch: a domain checked while the sandbox DNS fails is TEMPORARY_FAILURE.
    assert_eq!(
        sandbox_post(api, "/sandbox/dns/outage", r#"{"Enabled":true}"#),
        204
    );
    c.create_email_identity()
        .email_identity("later.example.com")
        .send()
        .await
        .unwrap();
    wait_for(
        &c,
        "later.example.com",
        "TEMPORARY_FAILURE",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        sandbox_post(api, "/sandbox/dns/outage", r#"{"Enabled":false}"#),
        204
    );
    wait_for(&c, "later.example.com", "SUCCESS", Duration::from_secs(10)).await;
    assert_eq!(
        sandbox_post(api, "/sandbox/dns", r#"{"Action":"explode"}"#),
        400
    );
}

#[tokio::test]
async fn serve_is_no_sandbox() {
    let server = Server::start();
    // Its DNS answers no identity's names.
    let created = server
        .client()
        .create_email_identity()
        .email_identity("real.example.com")
        .send()
        .await
        .unwrap();
    let token = created.dkim_attributes().unwrap().tokens()[0].clone();
    assert_eq!(
        ask(
            server.dns,
            &format!("{token}._domainkey.real.example.com"),
            RecordType::CNAME
        )
        .metadata
        .response_code,
        ResponseCode::Refused
    );
    // No sandbox endpoints (an unsigned request is refused as any other), no sandbox zones.
    let r = raw_request(server.api, "GET", "/sandbox/dns", b"");
    assert_ne!(r.status, 200, "{r:?}");
    let head = format!(
        "GET /sandbox/dns HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.api
    );
    let unsigned = send(server.api, head.as_bytes(), b"").status;
    assert!((400..500).contains(&unsigned), "{unsigned}");
    // A shortened window is refused outside the sandbox.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["serve", "--verification-window", "3s", "--data-dir"])
        .arg(server.data_dir.join("other"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sandbox setting"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dev_without_a_data_dir_runs_on_a_throwaway_one() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args([
            "dev",
            "--api-addr",
            "127.0.0.1:0",
            "--dns-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .env_remove("SESAME_DATA_DIR")
        .env_remove("SESAME_ACCESS_KEY_ID")
        .env_remove("SESAME_SECRET_ACCESS_KEY")
        .env_remove("SESAME_MASTER_KEY")
        .env("SESAME_KEY_POOL_2048", "0")
        .env("SESAME_KEY_POOL_1024", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let dir = loop {
        let line = lines.next().expect("sesame dev ended").unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some(d) = line.split(", data dir ").nth(1) {
            break std::path::PathBuf::from(d.trim());
        }
    };
    assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
    assert!(dir.join("sesame.db").exists());
    assert!(
        exported(&printed, "AWS_SECRET_ACCESS_KEY").len() >= 40,
        "{printed}"
    );
    terminate(&child);
    assert!(child.wait().unwrap().success());
    assert!(!dir.exists(), "the throwaway data dir is removed at exit");
}

/// SIGTERM, as `kill` sends it.
fn terminate(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}
