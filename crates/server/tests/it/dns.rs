//! DNS for real: NSD (a Debian package nobody here wrote) serves the customer's zone with the
//! records `sesame dns-records` prints, and the status moves PENDING → SUCCESS through the SDK;
//! `kdig` and hickory's resolver query the key-zone responder over UDP and TCP; a resolver that
//! never answers keeps identities out of SUCCESS while the API keeps answering.

use crate::harness::{Server, rsa_key_b64};
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{DkimSigningAttributes, DkimStatus, VerificationStatus};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether a tool is installed; without it the test says so loudly and, unless CI requires the
/// tools (`SESAME_REQUIRE_DNS_TOOLS=1`, set by `.ci/run` after installing them), skips.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let required = std::env::var("SESAME_REQUIRE_DNS_TOOLS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{tool} is required (apt-get install nsd knot-dnsutils)"
        );
        crate::harness::say(&format!(
            "SKIPPED: {tool} is not installed (apt-get install nsd knot-dnsutils); .ci/run installs it"
        ));
    }
    found
}

/// NSD serving one zone from a zone file, on a port of its own.
pub struct Nsd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    zone: String,
}

impl Nsd {
    pub fn start(zone: &str) -> Nsd {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut nsd = Nsd {
            child: None,
            dir,
            port,
            zone: zone.to_owned(),
        };
        nsd.publish(&[]);
        nsd
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    /// Writes the zone with `records` (zone-file lines) and (re)starts NSD on it.
    pub fn publish(&mut self, records: &[String]) {
        self.stop();
        let d = self.dir.path().display();
        let zone = &self.zone;
        std::fs::write(
            self.path("nsd.conf"),
            format!(
                "server:\n  ip-address: 127.0.0.1@{}\n  username: \"\"\n  zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  database: \"\"\n  zonelistfile: \"{d}/zone.list\"\n  xfrdfile: \"{d}/xfrd.state\"\n  xfrdir: \"{d}\"\n  logfile: \"{d}/nsd.log\"\n  server-count: 1\nremote-control:\n  control-enable: no\nzone:\n  name: {zone}\n  zonefile: {zone}.zone\n",
                self.port
            ),
        )
        .unwrap();
        let mut text = format!(
            "$ORIGIN {zone}.\n$TTL 60\n@ IN SOA ns1.{zone}. hostmaster.{zone}. 2026112601 3600 600 86400 60\n@ IN NS ns1.{zone}.\nns1 IN A 127.0.0.1\n"
        );
        for r in records {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(self.path(&format!("{zone}.zone")), text).unwrap();
        let child = Command::new("nsd")
            .args(["-d", "-c"])
            .arg(self.path("nsd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nsd");
        self.child = Some(child);
        // Ready when it answers for its zone over TCP.
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(
                Instant::now() < deadline,
                "nsd did not start: {}",
                std::fs::read_to_string(self.path("nsd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port free on UDP and TCP, below the kernel's ephemeral range (32768 and up on Linux).
/// A port from that range could be handed meanwhile to another test's port-0 listener or to
/// an outgoing connection while NSD is between a stop and a restart, and NSD would then fail
/// to bind while our readiness probe connected to the stranger.
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Test processes running at once start at different offsets.
    let offset = (std::process::id() % 500) as u16 * 24;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % 12_000;
        let port = 20_000 + (offset + n) % 12_000;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
}

/// Runs `sesame dns-records` and returns its lines.
pub fn dns_records(server: &Server, identity: &str, check: Option<SocketAddr>) -> Vec<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesame"));
    cmd.args(["dns-records", identity, "--data-dir"])
        .arg(&server.data_dir);
    cmd.env_remove("SESAME_RESOLVER")
        .env_remove("SESAME_MASTER_KEY");
    if let Some(r) = check {
        cmd.args(["--check", "--resolver", &r.to_string()]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls GetEmailIdentity until `done` holds or the deadline passes.
pub async fn wait_for(
    c: &Client,
    name: &str,
    what: &str,
    done: impl Fn(&aws_sdk_sesv2::operation::get_email_identity::GetEmailIdentityOutput) -> bool,
) -> aws_sdk_sesv2::operation::get_email_identity::GetEmailIdentityOutput {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let got = c
            .get_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap();
        if done(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{name}: never {what}: {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn status(
    g: &aws_sdk_sesv2::operation::get_email_identity::GetEmailIdentityOutput,
) -> Option<&DkimStatus> {
    g.dkim_attributes().and_then(|d| d.status())
}

#[tokio::test]
async fn nsd_published_records_move_pending_to_success() {
    if !have("nsd") {
        return;
    }
    let mut nsd = Nsd::start("example.test");
    let dir = tempfile::tempdir().unwrap();
    let resolver = nsd.addr().to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "500ms"),
        ],
    );
    let c = server.client();
    c.create_email_identity()
        .email_identity("example.test")
        .send()
        .await
        .unwrap();
    let byo = |key: String| {
        DkimSigningAttributes::builder()
            .domain_signing_selector("sel1")
            .domain_signing_private_key(key)
            .build()
    };
    c.create_email_identity()
        .email_identity("byo.example.test")
        .dkim_signing_attributes(byo(rsa_key_b64(2048, false)))
        .send()
        .await
        .unwrap();
    c.create_email_identity()
        .email_identity("wrong.example.test")
        .dkim_signing_attributes(byo(rsa_key_b64(1024, true)))
        .send()
        .await
        .unwrap();

    // First checks: nothing published yet.
    for name in ["example.test", "byo.example.test", "wrong.example.test"] {
        let got = wait_for(&c, name, "checked", |g| {
            g.verification_info()
                .is_some_and(|v| v.last_checked_timestamp().is_some())
        })
        .await;
        assert_eq!(status(&got), Some(&DkimStatus::Pending), "{name}");
        assert!(!got.verified_for_sending_status());
        let info = got.verification_info().unwrap();
        assert_eq!(
            info.error_type().map(|e| e.as_str()),
            Some("HOST_NOT_FOUND"),
            "{name}"
        );
        let soa = info.soa_record().expect("the SOA of the customer's zone");
        assert_eq!(soa.primary_name_server(), Some("ns1.example.test"));
        assert_eq!(soa.serial_number(), 2026112601);
    }

    // Publish what dns-records prints; for "wrong", the record of another key.
    let mut records: Vec<String> = Vec::new();
    for name in ["example.test", "byo.example.test"] {
        records.extend(
            dns_records(&server, name, None)
                .into_iter()
                .filter(|l| !l.starts_with(';')),
        );
    }
    let other = Server::start();
    let oc = other.client();
    oc.create_email_identity()
        .email_identity("wrong.example.test")
        .dkim_signing_attributes(byo(rsa_key_b64(1024, true)))
        .send()
        .await
        .unwrap();
    records.extend(
        dns_records(&other, "wrong.example.test", None)
            .into_iter()
            .filter(|l| !l.starts_with(';')),
    );
    // Five DKIM records and each domain's recommended DMARC record.
    assert_eq!(records.len(), 8, "{records:?}");
    nsd.publish(&records);

    for name in ["example.test", "byo.example.test"] {
        let got = wait_for(&c, name, "SUCCESS", |g| {
            status(g) == Some(&DkimStatus::Success)
        })
        .await;
        assert!(got.verified_for_sending_status(), "{name}");
        assert_eq!(
            got.verification_status(),
            Some(&VerificationStatus::Success)
        );
        let info = got.verification_info().unwrap();
        assert!(info.last_success_timestamp().is_some());
        assert!(info.error_type().is_none());
    }
    let listed = c.list_email_identities().send().await.unwrap();
    for i in listed.email_identities() {
        let expect = i.identity_name() != Some("wrong.example.test");
        assert_eq!(i.sending_enabled(), expect, "{:?}", i.identity_name());
    }

    // The wrong key is seen, reported, and never accepted.
    let got = wait_for(&c, "wrong.example.test", "INVALID_VALUE", |g| {
        g.verification_info()
            .and_then(|v| v.error_type())
            .is_some_and(|e| e.as_str() == "INVALID_VALUE")
    })
    .await;
    assert_eq!(status(&got), Some(&DkimStatus::Pending));
    let lines = dns_records(&server, "wrong.example.test", Some(nsd.addr()));
    assert!(
        lines.iter().any(|l| l.contains("wrong value: found TXT")),
        "{lines:?}"
    );
    let lines = dns_records(&server, "example.test", Some(nsd.addr()));
    assert_eq!(
        lines.iter().filter(|l| l.trim() == ";   found").count(),
        4,
        "{lines:?}"
    );
    // A few more checks later it is still not SUCCESS.
    let checked = got
        .verification_info()
        .unwrap()
        .last_checked_timestamp()
        .unwrap()
        .secs();
    let later = wait_for(&c, "wrong.example.test", "re-checked", |g| {
        g.verification_info()
            .and_then(|v| v.last_checked_timestamp())
            .is_some_and(|t| t.secs() > checked)
    })
    .await;
    assert_eq!(status(&later), Some(&DkimStatus::Pending));

    server.wait_output("a status change", |o| o.contains("DKIM status changed"));
}

/// The key-zone responder answers real DNS clients over UDP and TCP.
#[tokio::test]
async fn key_zone_answers_over_udp_and_tcp() {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    use hickory_resolver::proto::rr::{RData, RecordType};
    let server = Server::start();
    let c = server.client();
    let mut tokens = Vec::new();
    for (name, len) in [
        ("big.example.com", "RSA_2048_BIT"),
        ("small.example.com", "RSA_1024_BIT"),
    ] {
        let out = c
            .create_email_identity()
            .email_identity(name)
            .dkim_signing_attributes(
                DkimSigningAttributes::builder()
                    .next_signing_key_length(aws_sdk_sesv2::types::DkimSigningKeyLength::from(len))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let bits = if len == "RSA_2048_BIT" { 2048 } else { 1024 };
        for t in out.dkim_attributes().unwrap().tokens() {
            tokens.push((name, t.clone(), bits));
        }
    }
    // Each identity's own keys, by selector, from its sealed private halves in the store.
    let own_keys: std::collections::BTreeMap<&str, IdentityKeys> =
        ["big.example.com", "small.example.com"]
            .into_iter()
            .map(|n| (n, identity_keys(&server.data_dir, &server.account, n)))
            .collect();
    for (name, keys) in &own_keys {
        assert_eq!(keys.by_selector.len(), 3, "{name}: three keys");
        let distinct: std::collections::BTreeSet<_> = keys.by_selector.values().collect();
        assert_eq!(distinct.len(), 3, "{name}: three different keys");
    }

    for udp in [true, false] {
        let mut nsc = if udp {
            NameServerConfig::udp(server.dns.ip())
        } else {
            NameServerConfig::tcp(server.dns.ip())
        };
        for cc in nsc.connections.iter_mut() {
            cc.port = server.dns.port();
        }
        let mut b = hickory_resolver::Resolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![nsc]),
            TokioRuntimeProvider::default(),
        );
        b.options_mut().cache_size = 0;
        let resolver = b.build().unwrap();
        for (name, token, bits) in &tokens {
            let fqdn = format!("{token}.dkim.sesame.internal.");
            // The zone follows the store every 200 ms: poll (generously) for the first lookup.
            let deadline = Instant::now() + Duration::from_secs(30);
            let lookup = loop {
                match resolver.lookup(fqdn.as_str(), RecordType::TXT).await {
                    Ok(l) => break l,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "{fqdn}: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            };
            let RData::TXT(txt) = &lookup.answers()[0].data else {
                panic!("not TXT")
            };
            let strings: Vec<String> = txt
                .txt_data
                .iter()
                .map(|s| String::from_utf8(s.to_vec()).unwrap())
                .collect();
            assert!(strings.iter().all(|s| s.len() <= 255));
            if *bits == 2048 {
                assert_eq!(strings.len(), 2, "a 2048-bit key needs two strings");
                assert_eq!(strings[0].len(), 255);
            }
            let value = strings.concat();
            assert!(value.starts_with("v=DKIM1; k=rsa; p="), "{value}");
            let der = data_encoding::BASE64
                .decode(value.split("p=").nth(1).unwrap().as_bytes())
                .unwrap();
            let key = openssl::pkey::PKey::public_key_from_der(&der).unwrap();
            assert_eq!(key.bits(), *bits, "{name}");
            // The key served for this token is this identity's key under this selector, and
            // the identity's signing key is served under its own selector.
            let keys = &own_keys[name];
            assert_eq!(
                keys.by_selector.get(token.as_str()),
                Some(&der),
                "{name}: {fqdn} serves another key than the identity's key for {token}"
            );
            if *token == keys.signing_selector {
                assert_eq!(
                    der, keys.signing,
                    "{name}: the published key is the signing key"
                );
            }
        }
        let e = resolver
            .lookup("nope.dkim.sesame.internal.", RecordType::TXT)
            .await
            .unwrap_err();
        assert!(e.is_nx_domain(), "{e}");
    }

    if !have("kdig") {
        return;
    }
    let (_, token, _) = &tokens[0];
    let kdig = |args: &[&str]| {
        let out = Command::new("kdig")
            .arg(format!("@{}", server.dns.ip()))
            .args(["-p", &server.dns.port().to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let name = format!("{token}.dkim.sesame.internal");
    // UDP with an EDNS buffer large enough for a 2048-bit key's record, and TCP.
    for transport in [&["+notcp", "+bufsize=1232", "+ignore"][..], &["+tcp"][..]] {
        let out = kdig(&[transport, &["TXT", &name]].concat());
        assert!(
            out.contains("status: NOERROR") && out.contains("v=DKIM1; k=rsa; p="),
            "{out}"
        );
        assert!(out.contains("Flags: qr aa"), "authoritative: {out}");
    }
    // Without EDNS a 2048-bit answer does not fit 512 bytes: TC, then kdig retries over TCP.
    let out = kdig(&["+noedns", "+ignore", "TXT", &name]);
    assert!(out.contains(" tc") && !out.contains("malformed"), "{out}");
    let out = kdig(&["+noedns", "TXT", &name]);
    assert!(
        out.contains("retrying over TCP") && out.contains("v=DKIM1"),
        "{out}"
    );
    let out = kdig(&["TXT", "nope.dkim.sesame.internal"]);
    assert!(
        out.contains("status: NXDOMAIN") && out.contains("SOA"),
        "{out}"
    );
    let out = kdig(&["SOA", "dkim.sesame.internal"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("hostmaster.dkim.sesame.internal"),
        "{out}"
    );
    let out = kdig(&["NS", "dkim.sesame.internal"]);
    assert!(out.contains("ns.dkim.sesame.internal"), "{out}");
}

/// One identity's DKIM keys as the store holds them: the public half of each sealed private
/// key, by selector, and the key that signs (`Dkim::signing_key`) with its selector.
struct IdentityKeys {
    by_selector: std::collections::BTreeMap<String, Vec<u8>>,
    signing_selector: String,
    signing: Vec<u8>,
}

/// Reads `identity`'s keys (and no other identity's) from the store in `data_dir`, opening
/// the private halves with the data dir's master key.
fn identity_keys(data_dir: &Path, account: &str, identity: &str) -> IdentityKeys {
    use sesame_core::ports::IdentityStore;
    let master = std::fs::read_to_string(data_dir.join("master.key")).unwrap();
    let vault = sesame_crypto::OpenSslVault::new(sesame_crypto::Sealer::new(
        sesame_crypto::MasterKey::parse(&master).unwrap(),
    ));
    let store = sesame_store::SqliteStore::open(&data_dir.join("sesame.db")).unwrap();
    let account = sesame_core::model::AccountId::parse(account).unwrap();
    let name = sesame_core::model::IdentityName::parse(identity).unwrap();
    let dkim = store
        .get_identity(&account, &name)
        .unwrap()
        .unwrap_or_else(|| panic!("{identity} is not in the store"))
        .dkim
        .unwrap_or_else(|| panic!("{identity} has no DKIM keys"));
    let public = |k: &sesame_core::model::DkimKey| vault.public_key_of(&k.sealed_private).unwrap();
    let signing = dkim.keys.signing();
    IdentityKeys {
        by_selector: dkim
            .keys
            .keys()
            .map(|k| (k.selector.as_str().to_owned(), public(k)))
            .collect(),
        signing_selector: signing.selector.as_str().to_owned(),
        signing: public(signing),
    }
}

/// A resolver that never answers: a UDP socket that counts the queries it swallows, and a TCP
/// listener that accepts nothing. Its counting thread stops when it is dropped.
pub(crate) struct SilentResolver {
    pub(crate) addr: SocketAddr,
    queries: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    _tcp: std::net::TcpListener,
}

impl SilentResolver {
    pub(crate) fn start() -> SilentResolver {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        // The UDP port may be taken for TCP by another process: try a few.
        let (udp, tcp) = (0..50)
            .find_map(|_| {
                let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let tcp = std::net::TcpListener::bind(udp.local_addr().unwrap()).ok()?;
                Some((udp, tcp))
            })
            .expect("no loopback port free for both UDP and TCP");
        let addr = udp.local_addr().unwrap();
        // The read timeout only lets the thread notice `stop`.
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let queries = std::sync::Arc::new(AtomicUsize::new(0));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (q, st) = (queries.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::SeqCst) {
                if udp.recv_from(&mut buf).is_ok() {
                    q.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        SilentResolver {
            addr,
            queries,
            stop,
            reader: Some(reader),
            _tcp: tcp,
        }
    }

    pub(crate) fn queries(&self) -> usize {
        self.queries.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for SilentResolver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// How many checks of `identity` the verifier has recorded, from the server's log (one
/// `checked` or `DKIM status changed` line per recorded check).
fn checks_logged(server: &Server, identity: &str) -> usize {
    server
        .output()
        .lines()
        .filter(|l| {
            l.contains(identity)
                && (l.contains("sesame::background: checked") || l.contains("DKIM status changed"))
        })
        .count()
}

/// A resolver that never answers: after the verifier demonstrably ran several checks against
/// it (each recorded in the log, each having sent queries the silent resolver swallowed) the
/// identity is TEMPORARY_FAILURE with DNS_SERVER_ERROR and was never SUCCESS; the API answered
/// every call in between.
#[tokio::test]
async fn a_silent_resolver_never_yields_success() {
    const CHECKS: usize = 3;
    let silent = SilentResolver::start();
    let addr = silent.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &addr),
            ("SESAME_VERIFY_INTERVAL", "200ms"),
        ],
    );
    let c = server.client();
    c.create_email_identity()
        .email_identity("silent.example.com")
        .send()
        .await
        .unwrap();
    // Each lookup waits out its 3 s timeout; the backoff between checks starts at 200 ms.
    let deadline = Instant::now() + Duration::from_secs(90);
    let got = loop {
        // The API answers while lookups hang.
        let got = c
            .get_email_identity()
            .email_identity("silent.example.com")
            .send()
            .await
            .unwrap();
        c.list_email_identities().send().await.unwrap();
        assert_ne!(
            status(&got),
            Some(&DkimStatus::Success),
            "SUCCESS from a resolver that never answered: {got:?}"
        );
        let checks = checks_logged(&server, "silent.example.com");
        if checks >= CHECKS {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "the verifier recorded {checks} checks in 90 s, not {CHECKS} (queries seen: {}): {got:?}",
            silent.queries()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status(&got), Some(&DkimStatus::TemporaryFailure), "{got:?}");
    assert_eq!(
        got.verification_info()
            .and_then(|v| v.error_type())
            .map(|e| e.as_str()),
        Some("DNS_SERVER_ERROR"),
        "{got:?}"
    );
    assert!(
        silent.queries() >= CHECKS,
        "the checks asked the silent resolver: {} queries",
        silent.queries()
    );
}

/// Splits a zone-file line of `sesame dns-records` into its owner name and the rest
/// (`TTL IN TYPE DATA`).
fn owner_and_rest(line: &str) -> (&str, &str) {
    line.split_once(' ').expect("a zone-file line")
}

/// `hops` CNAME records leading from `from` through names under `via` in the customer's zone
/// to `to` (all absolute names), as zone-file lines.
fn cname_chain(from: &str, via: &str, hops: usize, to: &str) -> Vec<String> {
    let mut names: Vec<String> = vec![from.to_owned()];
    names.extend((1..hops).map(|i| format!("hop{i}.{via}.")));
    names.push(to.to_owned());
    names
        .windows(2)
        .map(|w| format!("{} 60 IN CNAME {}", w[0], w[1]))
        .collect()
}

/// The verifier against a real authoritative server (NSD) for chains and NODATA: Easy DKIM
/// tokens and a BYODKIM selector published through CNAME chains of 3 hops inside the
/// customer's zone (and, for Easy DKIM, of exactly the verifier's limit of 8 hops) become
/// SUCCESS; a chain one hop past the limit (9 for Easy DKIM, 10 for BYODKIM) is INVALID_VALUE
/// and stays PENDING; selector names that exist with only an A record (NODATA) are
/// TYPE_NOT_FOUND, "the queried hostname exists but does not have the requested type of DNS
/// record" (the model's VerificationError documentation), with the customer zone's SOA.
#[tokio::test]
async fn the_verifier_follows_cname_chains_and_reports_nodata_through_nsd() {
    if !have("nsd") {
        return;
    }
    let mut nsd = Nsd::start("example.test");
    let dir = tempfile::tempdir().unwrap();
    let resolver = nsd.addr().to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "300ms"),
        ],
    );
    let c = server.client();
    let byo = || {
        DkimSigningAttributes::builder()
            .domain_signing_selector("sel1")
            .domain_signing_private_key(rsa_key_b64(1024, true))
            .build()
    };
    let easy = ["chain", "edge", "long", "nodata"].map(|l| format!("{l}.example.test"));
    let byodkim = ["byochain", "byolong", "byonodata"].map(|l| format!("{l}.example.test"));
    for name in &easy {
        c.create_email_identity()
            .email_identity(name)
            .send()
            .await
            .unwrap();
    }
    for name in &byodkim {
        c.create_email_identity()
            .email_identity(name)
            .dkim_signing_attributes(byo())
            .send()
            .await
            .unwrap();
    }

    let mut zone: Vec<String> = Vec::new();
    // Easy DKIM: each token's CNAME replaced by a chain of `hops` to the same target.
    for (label, hops) in [("chain", 3), ("edge", 8), ("long", 9)] {
        let name = format!("{label}.example.test");
        let lines = dns_records(&server, &name, None);
        let cnames: Vec<&String> = lines.iter().filter(|l| l.contains(" CNAME ")).collect();
        assert_eq!(cnames.len(), 3, "{lines:?}");
        for (i, line) in cnames.into_iter().enumerate() {
            let (owner, rest) = owner_and_rest(line);
            let target = rest.rsplit(' ').next().unwrap();
            zone.extend(cname_chain(
                owner,
                &format!("t{i}.{label}.example.test"),
                hops,
                target,
            ));
        }
    }
    // BYODKIM: the selector's TXT moved to the end of a chain.
    for (label, hops) in [("byochain", 3), ("byolong", 10)] {
        let name = format!("{label}.example.test");
        let lines = dns_records(&server, &name, None);
        let txt: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(" TXT ") && l.contains("._domainkey."))
            .collect();
        assert_eq!(txt.len(), 1, "{lines:?}");
        let (owner, rest) = owner_and_rest(txt[0]);
        let end = format!("key.{label}.example.test.");
        zone.extend(cname_chain(
            owner,
            &format!("{label}.example.test"),
            hops,
            &end,
        ));
        zone.push(format!("{end} {rest}"));
    }
    // NODATA: the names exist, with an A record only.
    for name in ["nodata.example.test", "byonodata.example.test"] {
        for line in dns_records(&server, name, None)
            .iter()
            .filter(|l| !l.starts_with(';'))
        {
            let (owner, _) = owner_and_rest(line);
            zone.push(format!("{owner} 60 IN A 127.0.0.1"));
        }
    }
    nsd.publish(&zone);

    for name in ["chain", "edge", "byochain"].map(|l| format!("{l}.example.test")) {
        let got = wait_for(&c, &name, "SUCCESS", |g| {
            status(g) == Some(&DkimStatus::Success)
        })
        .await;
        assert!(got.verified_for_sending_status(), "{name}");
        assert!(
            got.verification_info().unwrap().error_type().is_none(),
            "{name}"
        );
    }
    for (label, error) in [
        ("long", "INVALID_VALUE"),
        ("byolong", "INVALID_VALUE"),
        ("nodata", "TYPE_NOT_FOUND"),
        ("byonodata", "TYPE_NOT_FOUND"),
    ] {
        let name = format!("{label}.example.test");
        // Before the zone had these names the checks said HOST_NOT_FOUND; this is a check of
        // the published zone.
        let got = wait_for(&c, &name, error, |g| {
            assert_ne!(status(g), Some(&DkimStatus::Success), "{name}: {g:?}");
            g.verification_info()
                .and_then(|v| v.error_type())
                .is_some_and(|e| e.as_str() == error)
        })
        .await;
        assert_eq!(status(&got), Some(&DkimStatus::Pending), "{name}");
        assert!(!got.verified_for_sending_status(), "{name}");
        if error == "TYPE_NOT_FOUND" {
            let soa = got
                .verification_info()
                .unwrap()
                .soa_record()
                .expect("NODATA carries the zone's SOA");
            assert_eq!(soa.primary_name_server(), Some("ns1.example.test"));
        }
    }
}
