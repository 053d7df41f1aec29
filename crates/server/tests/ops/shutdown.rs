//! SIGINT and SIGTERM during requests: every request the server had already read gets its
//! whole 200 response, a connection made after the signal is refused, and the process exits 0.
//!
//! A request is held in flight by its client: the headers and half of the body are sent, and
//! the rest only after the server logged the signal. That it is the server's (and not still in
//! the kernel's accept queue) is read from `/proc/net/tcp`: the server-side socket has an inode
//! (it was accepted, so it is a file of the server) and an empty receive queue (the server read
//! every byte sent so far).

use crate::harness::{KEY_ID, SECRET, signed_headers};
use crate::{DEADLINE, Proc};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

const REQUESTS: usize = 3;

/// The server side of the connection from `client` to `api` in `/proc/net/tcp`:
/// `(accepted, unread bytes)`.
fn server_side(api: SocketAddr, client: SocketAddr) -> Option<(bool, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || port(f[1])? != api.port() || port(f[2])? != client.port() {
            return None;
        }
        let rx = u64::from_str_radix(f[4].split(':').nth(1)?, 16).ok()?;
        Some((f[9] != "0", rx))
    })
}

/// Reads one HTTP/1.1 response with a Content-Length: (status, body).
fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or_else(|| panic!("no content-length: {head}"));
            if body.len() >= length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap();
                return (status, body[..length].to_owned());
            }
        }
        match s.read(&mut buf) {
            Ok(0) => panic!("connection closed before a whole response: {text:?}"),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading the response: {e}; got {text:?}"),
        }
    }
}

fn in_flight_requests_finish_on(signal: &str) {
    let dns = crate::fakedns::FakeDns::start();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Proc::serve(
        dir.path(),
        &["--api-addr", "127.0.0.1:0", "--dns-addr", "127.0.0.1:0"],
        &[],
        dns.addr,
    );
    let (api, _) = server.listening();

    let mut pending = Vec::new();
    for i in 0..REQUESTS {
        let name = format!("inflight{i}.example.com");
        let body = format!(
            r#"{{"EmailIdentity":"{name}","DkimSigningAttributes":{{"NextSigningKeyLength":"RSA_1024_BIT"}}}}"#
        )
        .into_bytes();
        let path = "/v2/email/identities";
        let headers = signed_headers(api, KEY_ID, SECRET, "POST", path, &body, SystemTime::now());
        let mut head = format!("POST {path} HTTP/1.1\r\n");
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut s = TcpStream::connect(api).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let half = body.len() / 2;
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body[..half]).unwrap();
        pending.push((name, s, body[half..].to_vec()));
    }
    // In flight: accepted by the server, which read the headers and the first half.
    let deadline = Instant::now() + DEADLINE;
    for (name, s, _) in &pending {
        let client = s.local_addr().unwrap();
        loop {
            let seen = server_side(api, client);
            if seen == Some((true, 0)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: the server never read the request (accepted, unread) = {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    server.signal(signal);
    server.wait_output("the shutdown signal logged", |o| {
        o.contains("shutdown signal received")
    });
    // The listener is closed once shutdown began: a new client is told at once.
    match TcpStream::connect(api) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("a new connection was accepted after SIG{signal}"),
    }

    for (name, mut s, rest) in pending {
        s.write_all(&rest).unwrap();
        let (status, body) = read_response(&mut s);
        assert_eq!(status, 200, "{name}: {body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"));
        assert_eq!(v["IdentityType"], "DOMAIN", "{name}: {body}");
        assert_eq!(
            v["DkimAttributes"]["Tokens"].as_array().map(Vec::len),
            Some(3),
            "{name}: {body}"
        );
    }
    let status = server.wait_exit();
    let out = server.output();
    assert_eq!(status.code(), Some(0), "SIG{signal}: {status}\n{out}");
    assert!(out.contains("sesame stopped"), "{out}");
    let answered = out
        .lines()
        .filter(|l| l.contains("CreateEmailIdentity") && l.contains("status=200"))
        .count();
    assert_eq!(answered, REQUESTS, "{out}");
}

#[test]
fn sigint_lets_in_flight_requests_finish_refuses_new_ones_and_exits_0() {
    in_flight_requests_finish_on("INT");
}

#[test]
fn sigterm_lets_in_flight_requests_finish_refuses_new_ones_and_exits_0() {
    in_flight_requests_finish_on("TERM");
}
