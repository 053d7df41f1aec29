//! The test harness: starts the real `sesame` binary on port 0 in a temporary data directory,
//! learns its address from the `listening` line, and hands out `aws-sdk-sesv2` clients. On drop
//! it kills the process, and prints the server's output if the test failed.

use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

pub const KEY_ID: &str = "AKIAINTEGRATIONTEST1";
pub const SECRET: &str = "integration-test-secret-key-000000000000";
pub const REGION: &str = "us-east-1";

pub struct Server {
    child: Option<Child>,
    pub api: SocketAddr,
    /// The key-zone DNS responder.
    pub dns: SocketAddr,
    /// The admin listener: `/metrics`, `/health/*`, `/console/`.
    pub admin: SocketAddr,
    // The verifier's resolver unless the test named one.
    _fake_dns: Option<crate::fakedns::FakeDns>,
    pub account: String,
    pub data_dir: PathBuf,
    // Keeps the directory alive for the server's lifetime when the harness made it.
    _tmp: Option<tempfile::TempDir>,
    output: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// A server on a fresh data directory.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = Server::start_in(tmp.path(), &[]);
        s._tmp = Some(tmp);
        s
    }

    /// A server on `data_dir` with extra environment variables. Unless `SESAME_RESOLVER` is
    /// among them, its verifier asks an in-process DNS server that answers NXDOMAIN.
    pub fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_as(&["serve"], data_dir, env)
    }

    /// A server started as `sesame <command…>` (`serve`, `serve --sandbox`, `dev`) on
    /// `data_dir`; otherwise as [`Server::start_in`].
    pub fn start_as(command: &[&str], data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let fake_dns = (!env.iter().any(|(k, _)| *k == "SESAME_RESOLVER"))
            .then(crate::fakedns::FakeDns::start);
        // `SESAME_TEST_NOFILE=N` runs the server under a descriptor limit of N (soft and hard),
        // through util-linux's prlimit.
        let mut cmd = match env.iter().find(|(k, _)| *k == "SESAME_TEST_NOFILE") {
            Some((_, n)) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_sesame"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_sesame")),
        };
        cmd.args(command)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--api-addr", "127.0.0.1:0", "--dns-addr", "127.0.0.1:0"])
            .env("SESAME_ADMIN_ADDR", "127.0.0.1:0")
            .env("SESAME_ACCESS_KEY_ID", KEY_ID)
            .env("SESAME_SECRET_ACCESS_KEY", SECRET)
            .env("SESAME_LOG", "debug")
            // Small key pools: creates still take pooled keys (and generate inline once a
            // pool runs dry), without every test server spending seconds of CPU filling
            // the default ones.
            .env("SESAME_KEY_POOL_2048", "3")
            .env("SESAME_KEY_POOL_1024", "3")
            .env_remove("SESAME_MASTER_KEY")
            .env_remove("SESAME_RESOLVER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(f) = &fake_dns {
            cmd.env("SESAME_RESOLVER", f.addr.to_string());
        }
        let mut child = cmd.spawn().expect("spawn sesame");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut readers = Vec::new();
        for (stream, tx) in [
            (Box::new(stdout) as Box<dyn Read + Send>, Some(tx)),
            (Box::new(stderr), None),
        ] {
            let output = output.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    output.lock().unwrap().push_str(&format!("{line}\n"));
                    if let Some(tx) = &tx {
                        let _ = tx.send(line);
                    }
                }
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut account = None;
        let api = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "sesame did not report listening:\n{}",
                    output.lock().unwrap()
                )
            });
            if let Some(a) = line.strip_prefix("default account=") {
                account = Some(a.trim().to_owned());
            }
            if let Some(rest) = line.split("listening api=").nth(1) {
                let mut parts = rest.split_whitespace();
                let api = parts.next().unwrap().parse::<SocketAddr>().unwrap();
                let dns = parts
                    .next()
                    .and_then(|d| d.strip_prefix("dns="))
                    .expect("dns=IP:PORT right after api=")
                    .parse::<SocketAddr>()
                    .unwrap();
                let admin = parts
                    .next()
                    .and_then(|d| d.strip_prefix("admin="))
                    .expect("admin=IP:PORT right after dns=")
                    .parse::<SocketAddr>()
                    .unwrap();
                break (api, dns, admin);
            }
        };
        let (api, dns, admin) = api;
        Server {
            child: Some(child),
            api,
            dns,
            admin,
            _fake_dns: fake_dns,
            account: account.expect("the default account line comes before listening"),
            data_dir: data_dir.to_owned(),
            _tmp: None,
            output,
            readers,
        }
    }

    pub fn client(&self) -> aws_sdk_sesv2::Client {
        client_for(self.api, KEY_ID, SECRET)
    }

    pub fn arn(&self, identity: &str) -> String {
        format!("arn:aws:ses:{REGION}:{}:identity/{identity}", self.account)
    }

    /// Everything the server printed so far (all of it once the process has exited).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until the output satisfies `done`; the log is read on other threads.
    pub fn wait_output(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.output();
            if done(&out) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "the server never logged {what}:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// After the process exited, the readers see EOF: joining them makes `output` complete.
    fn join_readers(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }

    /// `kill -9`: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
            self.join_readers();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                self.join_readers();
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("---- sesame output ----\n{}", self.output());
        }
    }
}

pub fn client_for(api: SocketAddr, key_id: &str, secret: &str) -> aws_sdk_sesv2::Client {
    let conf = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(format!("http://{api}"))
        .credentials_provider(Credentials::new(key_id, secret, None, None, "it"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_sesv2::Client::from_conf(conf)
}

/// A client for the test credentials that makes exactly one request per call (the SDK's own
/// retries would hide a 429 or wait a token bucket out).
pub fn client_without_retries(api: SocketAddr) -> aws_sdk_sesv2::Client {
    let conf = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(format!("http://{api}"))
        .credentials_provider(Credentials::new(KEY_ID, SECRET, None, None, "it"))
        .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_sesv2::Client::from_conf(conf)
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends a request the SDK cannot produce (bad JSON, unknown paths, oversized bodies),
/// SigV4-signed with the aws-sigv4 crate. Never used to claim wire compatibility: that is what
/// the SDK tests are for.
pub fn raw_request(
    api: SocketAddr,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> RawResponse {
    raw_request_as(api, KEY_ID, SECRET, method, path_and_query, body)
}

pub fn raw_request_as(
    api: SocketAddr,
    key_id: &str,
    secret: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> RawResponse {
    let headers = signed_headers(
        api,
        key_id,
        secret,
        method,
        path_and_query,
        body,
        SystemTime::now(),
    );
    let mut req = format!("{method} {path_and_query} HTTP/1.1\r\n");
    for (k, v) in &headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    send(api, req.as_bytes(), body)
}

/// The `host`, `content-type` and SigV4 headers of a request signed with the aws-sigv4 crate
/// as `key_id` at `time`.
pub fn signed_headers(
    api: SocketAddr,
    key_id: &str,
    secret: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    time: SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let host = api.to_string();
    let url = format!("http://{host}{path_and_query}");
    let identity = Credentials::new(key_id, secret, None, None, "raw").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("ses")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let base = [
        ("host", host.as_str()),
        ("content-type", "application/json"),
    ];
    let signable = SignableRequest::new(
        method,
        &url,
        base.iter().copied(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    base.iter()
        .copied()
        .chain(instructions.headers())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Writes a request as given and reads the whole response (HTTP/1.1, `connection: close`).
pub fn send(api: SocketAddr, head: &[u8], body: &[u8]) -> RawResponse {
    let mut s = TcpStream::connect(api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head).unwrap();
    // The server may answer (413) before reading a huge body; a reset then is fine.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A fresh RSA key as base64 DER, the form BYODKIM takes, in PKCS#1 or PKCS#8.
pub fn rsa_key_b64(bits: u32, pkcs8: bool) -> String {
    let rsa = openssl::rsa::Rsa::generate(bits).unwrap();
    let der = if pkcs8 {
        openssl::pkey::PKey::from_rsa(rsa)
            .unwrap()
            .private_key_to_pkcs8()
            .unwrap()
    } else {
        rsa.private_key_to_der().unwrap()
    };
    data_encoding::BASE64.encode(&der)
}

/// An outbox message without the `Return-Path: <envelope sender>` line the outbox writes first
/// (checked to be there, naming an address), and that sender.
pub fn outbox_parts(text: &str) -> (&str, &str) {
    let (first, rest) = text
        .split_once("\r\n")
        .unwrap_or_else(|| panic!("an outbox message of one line: {text}"));
    let sender = first
        .strip_prefix("Return-Path: <")
        .and_then(|s| s.strip_suffix('>'))
        .filter(|s| s.contains('@'))
        .unwrap_or_else(|| panic!("no Return-Path first: {first}"));
    (sender, rest)
}

/// Prints past the test harness's output capture, so a skipped part is visible in every run.
pub fn say(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// A UDP socket and a TCP listener on the same free loopback port (the UDP port may be taken
/// for TCP by another process, so try a few).
pub async fn bind_udp_and_tcp() -> (tokio::net::UdpSocket, tokio::net::TcpListener) {
    for _ in 0..50 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(udp.local_addr().unwrap()).await {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// A child process that is killed (and reaped) when the guard drops, also when the test
/// panics first: no test leaves a process behind.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// Kills the child now and waits for it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// aiosmtpd on a free loopback port keeping every message byte for byte
/// (`tests/smtp/sink.py`): message `n` (from 1) is `NNNN.eml`, its envelope `NNNN.envelope`.
pub struct SmtpSink {
    process: KillOnDrop,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`, for `SESAME_SMTP_RELAY`.
    pub addr: String,
}

impl SmtpSink {
    /// Starts the sink with `python` (which has aiosmtpd) and waits until it listens.
    pub fn start(python: &str) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = KillOnDrop(
            Command::new(python)
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "sink.RawSink"])
                .arg(dir.path())
                .env(
                    "PYTHONPATH",
                    concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/smtp"),
                )
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the SMTP sink never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink {
            process,
            dir,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// Stops it: the relay is down from now on.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Message `n`'s file (it may not exist yet).
    pub fn message(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("{n:04}.eml"))
    }

    /// Message `n`'s envelope: the sender, then the recipients.
    pub fn envelope(&self, n: usize) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join(format!("{n:04}.envelope")))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits up to 20 s for message `n`, and returns its path.
    pub fn wait(&self, n: usize) -> PathBuf {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.message(n).exists() {
            assert!(Instant::now() < deadline, "message {n} never relayed");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.message(n)
    }
}
