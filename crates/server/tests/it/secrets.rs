//! Private keys never leave: not in any response body, not in the log, not in plaintext on disk.

use crate::harness::{Server, raw_request, rsa_key_b64};
use sesame_core::model::{AccountId, DkimOrigin, IdentityName};
use sesame_core::ports::IdentityStore;
use sesame_crypto::keys::DKIM_KEY_PURPOSE;
use sesame_crypto::{MasterKey, Sealer};
use sesame_store::SqliteStore;

/// The forms a leaked key could take: base64 of its PKCS#1 and PKCS#8 DER (and a 48-character
/// piece from the middle of each, in case it was split), and the raw DER bytes.
fn needles(key: &openssl::pkey::PKey<openssl::pkey::Private>) -> (Vec<String>, Vec<Vec<u8>>) {
    let pkcs1 = key.rsa().unwrap().private_key_to_der().unwrap();
    let pkcs8 = key.private_key_to_pkcs8().unwrap();
    let mut text = Vec::new();
    for der in [&pkcs1, &pkcs8] {
        let b64 = data_encoding::BASE64.encode(der);
        text.push(b64[b64.len() / 2..b64.len() / 2 + 48].to_owned());
        text.push(b64);
    }
    // The middle of the DER (private exponent and primes), not the shared header bytes.
    let raw = vec![
        pkcs1[pkcs1.len() / 2..pkcs1.len() / 2 + 32].to_vec(),
        pkcs8[pkcs8.len() / 2..pkcs8.len() / 2 + 32].to_vec(),
    ];
    (text, raw)
}

#[tokio::test]
async fn no_response_log_or_database_page_holds_a_private_key() {
    let mut server = Server::start();
    let mut bodies = Vec::new();
    let mut call = |method: &str, path: &str, body: &str| {
        let r = raw_request(server.api, method, path, body.as_bytes());
        assert!(r.status < 500, "{method} {path}: {r:?}");
        bodies.push(r.body);
    };
    let mut uploaded = Vec::new();
    for (i, (bits, pkcs8)) in [(1024, false), (2048, true)].into_iter().enumerate() {
        let b64 = rsa_key_b64(bits, pkcs8);
        uploaded.push(b64.clone());
        call(
            "POST",
            "/v2/email/identities",
            &format!(
                r#"{{"EmailIdentity":"byo{i}.example.com","DkimSigningAttributes":{{"DomainSigningSelector":"s{i}","DomainSigningPrivateKey":"{b64}"}}}}"#
            ),
        );
        call(
            "GET",
            &format!("/v2/email/identities/byo{i}.example.com"),
            "",
        );
    }
    // A refused upload must not echo the key in its error either.
    let small = rsa_key_b64(512, false);
    uploaded.push(small.clone());
    call(
        "PUT",
        "/v2/email/identities/byo0.example.com/dkim/signing",
        &format!(
            r#"{{"SigningAttributesOrigin":"EXTERNAL","SigningAttributes":{{"DomainSigningSelector":"x","DomainSigningPrivateKey":"{small}"}}}}"#
        ),
    );
    call(
        "POST",
        "/v2/email/identities",
        r#"{"EmailIdentity":"easy.example.com"}"#,
    );
    call(
        "POST",
        "/v2/email/identities",
        r#"{"EmailIdentity":"small.example.com","DkimSigningAttributes":{"NextSigningKeyLength":"RSA_1024_BIT"}}"#,
    );
    call(
        "PUT",
        "/v2/email/identities/easy.example.com/dkim/signing",
        r#"{"SigningAttributesOrigin":"AWS_SES","SigningAttributes":{"NextSigningKeyLength":"RSA_1024_BIT"}}"#,
    );
    call("GET", "/v2/email/identities/easy.example.com", "");
    call("POST", "/v2/email/list-identities", "{}");
    call("GET", "/v2/email/identities", "");
    server.terminate();
    let log = server.output();

    // Open the store the way the server does, to learn the generated keys: unsealed here by
    // hand, since no public API of sesame-crypto hands out a private key.
    let master = std::fs::read_to_string(server.data_dir.join("master.key")).unwrap();
    let sealer = Sealer::new(MasterKey::parse(&master).unwrap());
    let open = |sealed: &[u8]| {
        let der = sealer.open(DKIM_KEY_PURPOSE, sealed).unwrap();
        openssl::pkey::PKey::private_key_from_pkcs8(&der).unwrap()
    };
    let store = SqliteStore::open(&server.data_dir.join("sesame.db")).unwrap();
    let account = AccountId::parse(&server.account).unwrap();
    let mut keys = Vec::new();
    for name in [
        "byo0.example.com",
        "byo1.example.com",
        "easy.example.com",
        "small.example.com",
    ] {
        let id = store
            .get_identity(&account, &IdentityName::parse(name).unwrap())
            .unwrap()
            .unwrap();
        let dkim = id.dkim.unwrap();
        let expected = if matches!(dkim.origin, DkimOrigin::Easy { .. }) {
            3
        } else {
            1
        };
        assert_eq!(dkim.keys.len(), expected, "{name}");
        for k in dkim.keys.keys() {
            keys.push(open(&k.sealed_private));
        }
    }
    assert_eq!(keys.len(), 8);
    drop(store);
    let mut disk = Vec::new();
    for f in ["sesame.db", "sesame.db-wal"] {
        if let Ok(b) = std::fs::read(server.data_dir.join(f)) {
            disk.extend(b);
        }
    }
    let haystacks: Vec<&str> = bodies
        .iter()
        .map(String::as_str)
        .chain([log.as_str()])
        .collect();
    let mut checked = 0;
    for key in &keys {
        let (texts, raws) = needles(key);
        for t in texts.iter().chain(uploaded.iter()) {
            for h in &haystacks {
                assert!(
                    !h.contains(t.as_str()),
                    "a private key leaked into a response or the log"
                );
                checked += 1;
            }
            assert!(
                !disk.windows(t.len()).any(|w| w == t.as_bytes()),
                "base64 key on disk"
            );
        }
        for r in &raws {
            assert!(
                !disk.windows(r.len()).any(|w| w == r.as_slice()),
                "plaintext key bytes on disk"
            );
        }
    }
    assert!(checked > 100);
    assert!(log.contains("request"), "the log was captured");
}

/// Regression (issue 12): a data directory an operator made 0755 held database files 0644.
/// Now the directory is tightened to 0700 and the database, its WAL and shared memory are 0600
/// whatever the umask.
#[tokio::test]
async fn an_operator_made_data_dir_and_its_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = Server::start_in(&dir, &[]);
    server
        .client()
        .create_email_identity()
        .email_identity("perm.example.com")
        .send()
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the data dir");
    for f in [
        "sesame.db",
        "sesame.db-wal",
        "sesame.db-shm",
        "master.key",
        "credentials",
    ] {
        let path = dir.join(f);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{f}");
        } else {
            assert!(f == "credentials", "{f} exists");
        }
    }
}
