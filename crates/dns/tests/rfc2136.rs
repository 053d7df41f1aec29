//! RFC 2136 updates signed with TSIG against a real BIND 9 (Debian's `bind9`), authoritative
//! for a test zone with `allow-update { key … }`: records appear and go as asked, a retry is
//! harmless, and a wrong secret, an unknown key, a key the zone does not allow, a name outside
//! the zone and a server that is down are each their own error and change nothing.
//!
//! Without `named` the tests say `SKIPPED`; with `SESAME_REQUIRE_DNS_TOOLS=1` (as
//! `scripts/test` sets) that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use sesame_dns::update::{UpdateError, UpdateRecord, UpdateTarget, publish, remove};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ZONE: &str = "example.test";
const KEY: &str = "sesame-key";
const OTHER_KEY: &str = "not-allowed-key";

fn named() -> Option<&'static str> {
    let path = "/usr/sbin/named";
    if std::path::Path::new(path).exists() {
        return Some(path);
    }
    let required = std::env::var("SESAME_REQUIRE_DNS_TOOLS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "these tests need BIND 9's named (apt-get install bind9)"
    );
    eprintln!("SKIPPED: BIND 9's named is not installed (apt-get install bind9)");
    None
}

fn secret(seed: u8) -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(seed))
        .collect()
}

/// A BIND 9 primary for `example.test` on a free loopback port, in its own directory.
struct Bind {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Bind {
    fn start(binary: &str) -> Bind {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let b64 = |s: &[u8]| data_encoding::BASE64.encode(s);
        let conf = format!(
            r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    lock-file "{d}/named.lock";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-query {{ any; }};
}};
controls {{ }};
key "{KEY}" {{ algorithm hmac-sha256; secret "{}"; }};
key "{OTHER_KEY}" {{ algorithm hmac-sha256; secret "{}"; }};
zone "{ZONE}" {{
    type primary;
    file "{d}/{ZONE}.zone";
    allow-update {{ key "{KEY}"; }};
}};
"#,
            b64(&secret(1)),
            b64(&secret(2)),
        );
        std::fs::write(dir.path().join("named.conf"), conf).unwrap();
        std::fs::write(
            dir.path().join(format!("{ZONE}.zone")),
            format!(
                "$ORIGIN {ZONE}.\n$TTL 60\n@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60\n@ IN NS ns1.{ZONE}.\nns1 IN A 127.0.0.1\nkeep IN TXT \"untouched\"\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("named.log")).unwrap();
        let child = Command::new(binary)
            .args(["-g", "-4", "-n", "1", "-c"])
            .arg(dir.path().join("named.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Bind {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    /// Waits until the zone answers its SOA.
    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(m) = query(self.addr, ZONE, RecordType::SOA).await
                && m.response_code == ResponseCode::NoError
                && !m.answers.is_empty()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "BIND never served the zone:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn target(&self, key: &str, secret: Vec<u8>) -> UpdateTarget {
        UpdateTarget {
            server: self.addr,
            zone: ZONE.into(),
            key_name: key.into(),
            secret,
            timeout: Duration::from_secs(5),
        }
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One question over TCP, as an independent client asks it.
async fn query(server: SocketAddr, name: &str, rtype: RecordType) -> std::io::Result<Message> {
    let mut q = Message::query();
    q.add_query(hickory_proto::op::Query::query(
        Name::from_ascii(format!("{name}.")).unwrap(),
        rtype,
    ));
    let wire = q.to_vec().unwrap();
    let mut s = tokio::net::TcpStream::connect(server).await?;
    let mut out = (wire.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&wire);
    s.write_all(&out).await?;
    let n = usize::from(s.read_u16().await?);
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).await?;
    Message::from_vec(&buf).map_err(|e| std::io::Error::other(e.to_string()))
}

async fn cname_of(bind: &Bind, name: &str) -> Option<String> {
    let m = query(bind.addr, name, RecordType::CNAME).await.unwrap();
    m.answers.iter().find_map(|r| match &r.data {
        RData::CNAME(c) => Some(c.0.to_ascii()),
        _ => None,
    })
}

async fn serial(bind: &Bind) -> u32 {
    let m = query(bind.addr, ZONE, RecordType::SOA).await.unwrap();
    m.answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .unwrap()
}

fn cnames() -> Vec<UpdateRecord> {
    ["tok1", "tok2", "tok3"]
        .iter()
        .map(|t| UpdateRecord::Cname {
            name: format!("{t}._domainkey.{ZONE}"),
            target: format!("{t}.dkim.sesame.internal"),
        })
        .collect()
}

#[tokio::test]
async fn updates_publish_and_remove_records_and_each_refusal_changes_nothing() {
    let Some(binary) = named() else { return };
    let bind = Bind::start(binary);
    bind.ready().await;
    let ours = bind.target(KEY, secret(1));

    // Three CNAMEs in one update; a retry is harmless.
    publish(&ours, &cnames(), 300).await.unwrap();
    for t in ["tok1", "tok2", "tok3"] {
        assert_eq!(
            cname_of(&bind, &format!("{t}._domainkey.{ZONE}")).await,
            Some(format!("{t}.dkim.sesame.internal.")),
            "{}",
            bind.log()
        );
    }
    publish(&ours, &cnames(), 300).await.unwrap();
    let after_publish = serial(&bind).await;
    assert!(after_publish > 1, "the serial moved: {after_publish}");

    // Refusals: each its own error; the zone as it was.
    let wrong = bind.target(KEY, secret(9));
    match publish(&wrong, &cnames()[..1], 300).await {
        Err(UpdateError::NotAuthorized(Some(why))) => assert!(why.starts_with("BADSIG"), "{why}"),
        other => panic!("a wrong secret: {other:?}"),
    }
    let unknown = bind.target("nobody-key", secret(1));
    match remove(&unknown, &cnames()).await {
        Err(UpdateError::NotAuthorized(Some(why))) => assert!(why.starts_with("BADKEY"), "{why}"),
        other => panic!("an unknown key: {other:?}"),
    }
    let not_allowed = bind.target(OTHER_KEY, secret(2));
    assert_eq!(
        remove(&not_allowed, &cnames()).await,
        Err(UpdateError::Refused("REFUSED".into()))
    );
    let outside = [UpdateRecord::Cname {
        name: "tok._domainkey.example.org".into(),
        target: "tok.dkim.sesame.internal".into(),
    }];
    assert!(matches!(
        publish(&ours, &outside, 300).await,
        Err(UpdateError::BadName(_))
    ));
    assert_eq!(
        serial(&bind).await,
        after_publish,
        "no refusal changed the zone"
    );
    assert!(
        cname_of(&bind, &format!("tok1._domainkey.{ZONE}"))
            .await
            .is_some()
    );

    // A TXT record of more than one string (a DKIM key), then removing exactly one CNAME:
    // the others and the zone's own records stay.
    let txt = [UpdateRecord::Txt {
        name: format!("sel._domainkey.{ZONE}"),
        strings: vec![
            "v=DKIM1; k=rsa; p=".into(),
            "A".repeat(255),
            "B".repeat(100),
        ],
    }];
    publish(&ours, &txt, 300).await.unwrap();
    let m = query(
        bind.addr,
        &format!("sel._domainkey.{ZONE}"),
        RecordType::TXT,
    )
    .await
    .unwrap();
    let joined: String = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(
        joined,
        format!("v=DKIM1; k=rsa; p={}{}", "A".repeat(255), "B".repeat(100))
    );
    remove(&ours, &cnames()[1..2]).await.unwrap();
    assert_eq!(
        cname_of(&bind, &format!("tok2._domainkey.{ZONE}")).await,
        None
    );
    assert!(
        cname_of(&bind, &format!("tok1._domainkey.{ZONE}"))
            .await
            .is_some()
    );
    assert!(
        cname_of(&bind, &format!("tok3._domainkey.{ZONE}"))
            .await
            .is_some()
    );
    // Removing a CNAME with another target leaves the published one alone.
    let other_target = [UpdateRecord::Cname {
        name: format!("tok1._domainkey.{ZONE}"),
        target: "elsewhere.example.net".into(),
    }];
    remove(&ours, &other_target).await.unwrap();
    assert!(
        cname_of(&bind, &format!("tok1._domainkey.{ZONE}"))
            .await
            .is_some()
    );
    let keep = query(bind.addr, &format!("keep.{ZONE}"), RecordType::TXT)
        .await
        .unwrap();
    assert_eq!(keep.answers.len(), 1, "the zone's own record stays");
    remove(&ours, &cnames()).await.unwrap();
    remove(&ours, &cnames()).await.unwrap();
    for t in ["tok1", "tok2", "tok3"] {
        assert_eq!(
            cname_of(&bind, &format!("{t}._domainkey.{ZONE}")).await,
            None
        );
    }
}

#[tokio::test]
async fn a_server_that_is_down_is_unreachable_within_the_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = UpdateTarget {
        server: SocketAddr::from(([127, 0, 0, 1], port)),
        zone: ZONE.into(),
        key_name: KEY.into(),
        secret: secret(1),
        timeout: Duration::from_secs(2),
    };
    let began = Instant::now();
    assert!(matches!(
        publish(&target, &cnames(), 300).await,
        Err(UpdateError::Unreachable(_))
    ));
    assert!(began.elapsed() < Duration::from_secs(3));
    // The secret never shows in the target's Debug.
    let shown = format!("{target:?}");
    assert!(!shown.contains("secret"), "{shown}");
}

#[tokio::test]
async fn what_the_zone_already_holds_is_a_conflict_unless_it_is_the_same_record() {
    let Some(binary) = named() else { return };
    let bind = Bind::start(binary);
    bind.ready().await;
    let t = bind.target(KEY, secret(1));
    let cname = |name: &str, target: &str| UpdateRecord::Cname {
        name: format!("{name}.{ZONE}"),
        target: target.into(),
    };
    let txt = |name: &str, s: &str| UpdateRecord::Txt {
        name: format!("{name}.{ZONE}"),
        strings: vec![s.into()],
    };
    let mx = |name: &str, host: &str| UpdateRecord::Mx {
        name: format!("{name}.{ZONE}"),
        preference: 10,
        exchange: host.into(),
    };
    // The customer's own records, put there first.
    publish(
        &t,
        &[
            cname("theirs._domainkey", "elsewhere.example.net"),
            cname("ours._domainkey", "ours.dkim.sesame.internal"),
            mx("mail", "mx.example.net"),
            txt("mail", "google-site-verification=abc"),
            txt("spf", "v=spf1 include:other.example.net ~all"),
        ],
        60,
    )
    .await
    .unwrap();
    let wanted = [
        cname("theirs._domainkey", "theirs.dkim.sesame.internal"),
        cname("ours._domainkey", "ours.dkim.sesame.internal"),
        cname("keep", "keep.dkim.sesame.internal"),
        mx("mail", "feedback-smtp.sesame.internal"),
        txt("mail", "v=spf1 include:spf.sesame.internal ~all"),
        txt("spf", "v=spf1 include:spf.sesame.internal ~all"),
        cname("free._domainkey", "free.dkim.sesame.internal"),
    ];
    let found = sesame_dns::update::conflicts(&t, &wanted).await.unwrap();
    let got: Vec<(String, String)> = found
        .iter()
        .map(|(r, there)| (r.name().to_owned(), there.to_ascii_lowercase()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                format!("theirs._domainkey.{ZONE}"),
                "cname elsewhere.example.net.".to_owned()
            ),
            // `keep` holds a TXT: a CNAME cannot live beside it.
            (format!("keep.{ZONE}"), "txt \"untouched\"".to_owned()),
            (format!("mail.{ZONE}"), "mx 10 mx.example.net.".to_owned()),
            // Another SPF record (two make SPF fail); other TXT records are no conflict.
            (
                format!("spf.{ZONE}"),
                "txt \"v=spf1 include:other.example.net ~all\"".to_owned()
            ),
        ],
        "the same CNAME already there is no conflict, nor is a name with nothing"
    );
    // Value forms round-trip.
    for r in &wanted {
        assert_eq!(
            UpdateRecord::from_parts(r.name(), r.rtype(), &r.value()).as_ref(),
            Some(r)
        );
    }
}
