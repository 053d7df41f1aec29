//! Configuration at the edges: a flag beats its `SESAME_*` environment variable (an address
//! and a duration), and a server whose API or DNS port (TCP or UDP) is already taken exits
//! non-zero at once with an error naming the address, not a panic and not a hang.

use crate::{DEADLINE, Proc};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_address_flags_beat_their_environment_variables() {
    let dns = crate::fakedns::FakeDns::start();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Proc::serve(
        dir.path(),
        &["--api-addr", "127.0.0.1:0", "--dns-addr", "127.0.0.1:0"],
        &[
            ("SESAME_API_ADDR", "127.0.0.1:1"),
            ("SESAME_DNS_ADDR", "127.0.0.1:1"),
        ],
        dns.addr,
    );
    let (api, dns_addr) = server.listening();
    assert_ne!(api.port(), 1, "the API listens where the environment said");
    assert_ne!(dns_addr.port(), 1, "DNS listens where the environment said");
    // And it is the server that answers there.
    let listed = crate::harness::client_for(api, crate::harness::KEY_ID, crate::harness::SECRET)
        .list_email_identities()
        .send()
        .await
        .unwrap();
    assert!(listed.email_identities().is_empty());
}

/// With `--verify-interval 100ms` on the command line and an hour in the environment, a
/// PENDING identity whose records are missing is re-checked within seconds, many times.
#[tokio::test]
async fn the_verify_interval_flag_beats_its_environment_variable() {
    let dns = crate::fakedns::FakeDns::start();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Proc::serve(
        dir.path(),
        &[
            "--api-addr",
            "127.0.0.1:0",
            "--dns-addr",
            "127.0.0.1:0",
            "--verify-interval",
            "100ms",
        ],
        &[("SESAME_VERIFY_INTERVAL", "1h")],
        dns.addr,
    );
    let (api, _) = server.listening();
    let c = crate::harness::client_for(api, crate::harness::KEY_ID, crate::harness::SECRET);
    let created = c
        .create_email_identity()
        .email_identity("flag.example.com")
        .send()
        .await
        .unwrap();
    let token = created.dkim_attributes().unwrap().tokens()[0].clone();
    let name = format!("{token}._domainkey.flag.example.com.");
    // The first check is at once; each later one waits the interval (doubling). An hour's
    // interval would ask once in this test's lifetime.
    const CHECKS: usize = 4;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let asked = dns.counts.lock().unwrap().get(&name).copied().unwrap_or(0);
        if asked >= CHECKS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{name} asked {asked} times in {DEADLINE:?}; the environment's interval won:\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a server on `api` and `dns`, which the test made sure are taken, and checks that it
/// fails at once with `message` and no panic.
fn refused(api: SocketAddr, dns: SocketAddr, message: &str) {
    let resolver = crate::fakedns::FakeDns::start();
    let dir = tempfile::tempdir().unwrap();
    let (api, dns) = (api.to_string(), dns.to_string());
    let mut server = Proc::serve(
        dir.path(),
        &["--api-addr", &api, "--dns-addr", &dns],
        &[],
        resolver.addr,
    );
    let status = server.failed_start();
    let out = server.output();
    assert!(!status.success(), "started on a taken port:\n{out}");
    assert_eq!(
        status.code(),
        Some(1),
        "an error exit, not a crash: {status}\n{out}"
    );
    assert!(out.contains(message), "no {message:?} in:\n{out}");
    assert!(out.contains("Address already in use"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    assert!(!out.contains("listening api="), "{out}");
}

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn a_taken_api_port_fails_the_start_clearly() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    refused(addr, any(), &format!("binding the API to {addr}"));
}

/// A port free for UDP, with a TCP listener on it kept by the test (and the reverse).
fn half_taken(tcp: bool) -> (SocketAddr, Box<dyn std::any::Any>) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(listener) = TcpListener::bind(addr) {
            return if tcp {
                (addr, Box::new(listener))
            } else {
                (addr, Box::new(udp))
            };
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

#[test]
fn a_taken_dns_tcp_port_fails_the_start_clearly() {
    let (addr, _kept) = half_taken(true);
    refused(any(), addr, &format!("binding DNS to {addr}"));
}

#[test]
fn a_taken_dns_udp_port_fails_the_start_clearly() {
    let (addr, _kept) = half_taken(false);
    refused(any(), addr, &format!("binding DNS to {addr}"));
}
