//! `--rotate-every` and `--key-retention` as the server wires them: the signing key is
//! replaced by the server itself once it is older than `--rotate-every` (no `sesame rotate`),
//! the replaced key stays in the key zone under its token for `--key-retention`, and only then
//! may its token take a new key, which is what takes the old key out of the zone.
//!
//! Why it takes API calls after the first rotation: after a rotation's activation the next
//! verification (the only moment `--rotate-every` acts) is the daily re-check, so a second
//! automatic rotation would take a day. The later rotations are key-length changes through
//! PutEmailIdentityDkimSigningAttributes, which stage keys under the server's own rotation
//! policy. (`sesame rotate` would not do: the CLI applies the default 7-day retention, not the
//! server's `--key-retention`.) An Easy DKIM identity has three tokens, so a retired key's token
//! is needed again at the third rotation, and that one must wait for the retention.

use crate::DEADLINE;
use crate::customerdns::CustomerDns;
use crate::harness::Server;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{
    DkimSigningAttributes, DkimSigningAttributesOrigin, DkimSigningKeyLength,
};
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use sesame_core::model::{AccountId, Dkim, DkimStatus, Identity, IdentityName, SlotState};
use sesame_core::ports::IdentityStore;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

const DOMAIN: &str = "rot.example.com";
const ZONE: &str = "dkim.sesame.internal";
const ROTATE_EVERY_MS: i64 = 2_000;
const DELAY_MS: i64 = 500;
const RETENTION_MS: i64 = 12_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The key zone over TCP (a 2048-bit key's TXT does not fit a plain UDP answer).
fn key_zone(dns: SocketAddr) -> TokioResolver {
    let mut nsc = NameServerConfig::tcp(dns.ip());
    for c in nsc.connections.iter_mut() {
        c.port = dns.port();
    }
    let mut b = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![nsc]),
        TokioRuntimeProvider::default(),
    );
    b.options_mut().cache_size = 0;
    b.build().unwrap()
}

/// The public key (DER) the key zone serves under `token`, or `None` for NXDOMAIN.
async fn served(zone: &TokioResolver, token: &str) -> Option<Vec<u8>> {
    let name = format!("{token}.{ZONE}.");
    match zone.lookup(name.as_str(), RecordType::TXT).await {
        Ok(l) => {
            let RData::TXT(txt) = &l.answers()[0].data else {
                panic!("{name}: not a TXT answer: {l:?}")
            };
            let strings: Vec<String> = txt
                .txt_data
                .iter()
                .map(|s| String::from_utf8(s.to_vec()).unwrap())
                .collect();
            Some(
                sesame_dns::records::published_key(&strings)
                    .unwrap_or_else(|| panic!("{name}: no key in {strings:?}")),
            )
        }
        Err(e) if e.is_nx_domain() => None,
        Err(e) => panic!("{name}: {e}"),
    }
}

struct Watch {
    store: sesame_store::SqliteStore,
    account: AccountId,
    name: IdentityName,
    zone: TokioResolver,
}

impl Watch {
    fn identity(&self) -> Identity {
        self.store
            .get_identity(&self.account, &self.name)
            .unwrap()
            .expect("the identity exists")
    }

    fn dkim(&self) -> Dkim {
        self.identity().dkim.expect("a domain has DKIM")
    }

    /// Polls the store until `done` holds, checking on every poll that `retired` (a key that
    /// stopped signing at `since`) is still served under `token` within the retention.
    async fn wait(
        &self,
        what: &str,
        retired: Option<(&str, &[u8], i64)>,
        done: impl Fn(&Dkim) -> bool,
    ) -> Dkim {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some((token, key, since)) = retired {
                self.still_served(token, key, since).await;
            }
            let d = self.dkim();
            if done(&d) {
                return d;
            }
            assert!(Instant::now() < deadline, "never {what}: {d:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A key retired at `since` is served under `token` until the retention has passed.
    async fn still_served(&self, token: &str, key: &[u8], since: i64) {
        let now = served(&self.zone, token).await;
        let answered = now_ms();
        if now.as_deref() != Some(key) && answered < since + RETENTION_MS {
            panic!(
                "{token}: the key retired at {since} is no longer served {} ms later, within the \
                 {RETENTION_MS} ms retention (served: {})",
                answered - since,
                if now.is_some() {
                    "another key"
                } else {
                    "NXDOMAIN"
                }
            );
        }
    }
}

#[tokio::test]
async fn the_server_rotates_by_itself_and_keeps_a_retired_key_published_for_the_retention() {
    let customers = CustomerDns::start(ZONE);
    // Withheld until the first key is older than --rotate-every, so the first successful
    // check is one at which the rotation is due.
    customers.withhold(DOMAIN, true);
    let dir = tempfile::tempdir().unwrap();
    let resolver = customers.addr.to_string();
    let server = Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "200ms"),
            ("SESAME_ROTATE_EVERY", "2s"),
            ("SESAME_ROTATION_DELAY", "500ms"),
            ("SESAME_KEY_RETENTION", "12s"),
        ],
    );
    let c = server.client();
    c.create_email_identity()
        .email_identity(DOMAIN)
        .dkim_signing_attributes(
            DkimSigningAttributes::builder()
                .next_signing_key_length(DkimSigningKeyLength::Rsa1024Bit)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let w = Watch {
        store: sesame_store::SqliteStore::open(&dir.path().join("sesame.db")).unwrap(),
        account: AccountId::parse(&server.account).unwrap(),
        name: IdentityName::parse(DOMAIN).unwrap(),
        zone: key_zone(server.dns),
    };
    let first = w.dkim();
    let a0 = first.keys.signing_slot();
    let token0 = first.keys.signing().selector.as_str().to_owned();
    let key0 = first.keys.signing().public_der.clone();
    let deadline = Instant::now() + DEADLINE;
    while served(&w.zone, &token0).await.as_deref() != Some(key0.as_slice()) {
        assert!(
            Instant::now() < deadline,
            "{token0}: the signing key never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while now_ms() < first.keys.signing().created_at.0 + ROTATE_EVERY_MS {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    customers.withhold(DOMAIN, false);

    // 1. --rotate-every: the server stages a key, and activates it after a successful check
    // made after the activation delay. Nothing but the verifier runs.
    let d = w
        .wait("rotated by --rotate-every", None, |d| {
            d.keys.signing_slot() != a0 && d.keys.staged().is_none()
        })
        .await;
    assert_eq!(w.identity().verification_status, DkimStatus::Success);
    let a1 = d.keys.signing_slot();
    let Some(SlotState::Retired(retired_at)) = d.keys.state(a0) else {
        panic!("the replaced key is marked retired: {d:?}");
    };
    let retired_at = retired_at.0;
    assert_ne!(
        d.keys.signing().public_der,
        first.keys.key(a1).unwrap().public_der,
        "a fresh key signs"
    );
    assert!(
        retired_at >= d.keys.signing().created_at.0 + DELAY_MS,
        "activated only after --rotation-delay"
    );
    let retired = Some((token0.as_str(), key0.as_slice(), retired_at));
    let token1 = d.keys.signing().selector.as_str().to_owned();
    let key1 = d.keys.signing().public_der.clone();
    let deadline = Instant::now() + DEADLINE;
    while served(&w.zone, &token1).await.as_deref() != Some(key1.as_slice()) {
        assert!(
            Instant::now() < deadline,
            "{token1}: the new signing key never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.still_served(&token0, &key0, retired_at).await;

    let change = |length: DkimSigningKeyLength| {
        c.put_email_identity_dkim_signing_attributes()
            .email_identity(DOMAIN)
            .signing_attributes_origin(DkimSigningAttributesOrigin::AwsSes)
            .signing_attributes(
                DkimSigningAttributes::builder()
                    .next_signing_key_length(length)
                    .build(),
            )
            .send()
    };
    // 2. A second rotation takes the third token, the one that never signed.
    change(DkimSigningKeyLength::Rsa2048Bit).await.unwrap();
    let d = w
        .wait("rotated to 2048 bits", retired, |d| {
            d.keys.signing_slot() != a1 && d.keys.staged().is_none()
        })
        .await;
    assert_ne!(
        d.keys.signing_slot(),
        a0,
        "the token of the key retired {} ms ago took a new key within the retention",
        now_ms() - retired_at
    );
    assert_eq!(
        d.keys.key(a0).unwrap().public_der,
        key0,
        "the retired key is kept"
    );

    // 3. A third needs a retired key's token: refused until the first retired key's retention
    // is over, then accepted, and that key leaves the zone.
    let mut refusals = 0;
    let deadline = Instant::now() + DEADLINE;
    loop {
        w.still_served(&token0, &key0, retired_at).await;
        let asked = now_ms();
        match change(DkimSigningKeyLength::Rsa1024Bit).await {
            Ok(_) => {
                let answered = now_ms();
                assert!(
                    answered >= retired_at + RETENTION_MS,
                    "a retired key's token was given a new key {} ms after its retirement, \
                     within the {RETENTION_MS} ms retention",
                    answered - retired_at
                );
                break;
            }
            Err(e) => {
                let e = e.into_service_error();
                assert!(e.is_bad_request_exception(), "{e:?}");
                let message = e.message().unwrap_or_default().to_owned();
                let until: i64 = message
                    .split("try again after ")
                    .nth(1)
                    .and_then(|m| m.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("no time in {message:?}"));
                assert_eq!(
                    until,
                    retired_at + RETENTION_MS,
                    "the refusal names the end of --key-retention: {message}"
                );
                assert!(
                    asked < until,
                    "refused at {asked}, after the retention ended at {until}: {message}"
                );
                refusals += 1;
            }
        }
        assert!(
            Instant::now() < deadline,
            "never accepted after the retention"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        refusals > 0,
        "inconclusive: the first attempt came after the whole {RETENTION_MS} ms retention"
    );
    let d = w.dkim();
    assert!(
        matches!(
            d.keys.state(a0),
            Some(SlotState::Staged | SlotState::Signing)
        ),
        "the first retired key's token took the new key: {d:?}"
    );
    let replacement = d.keys.key(a0).unwrap().public_der.clone();
    assert_ne!(replacement, key0);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = served(&w.zone, &token0).await;
        if now.as_deref() == Some(replacement.as_slice()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{token0}: still serving {} after the retention",
            if now.as_deref() == Some(key0.as_slice()) {
                "the retired key"
            } else {
                "something else"
            }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
