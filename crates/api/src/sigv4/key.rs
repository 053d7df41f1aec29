//! The signing key (step 3) and signature (step 4), and the cache that derives a key once per
//! secret and scope.

use super::request::Parsed;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail; an empty MAC would never verify.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// The signing key (step 3): HMAC chain over date, region, service and `aws4_request`.
pub fn signing_key(secret: &str, p: &Parsed) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), p.scope_date.as_bytes());
    let k_region = hmac(&k_date, p.region.as_bytes());
    let k_service = hmac(&k_region, p.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The hex signature of a string to sign (step 4).
pub fn signature(key: &[u8], string_to_sign: &str) -> String {
    data_encoding::HEXLOWER.encode(&hmac(key, string_to_sign.as_bytes()))
}

/// The most signing keys `SigningKeyCache` holds before it starts over.
pub const MAX_CACHED_KEYS: usize = 10_000;

/// Derived signing keys by access key id. A signing key depends only on the secret and the
/// scope's date, region and service, so a client signing all day costs one derivation (four
/// HMAC-SHA256) per day rather than one per request. An entry serves only a request whose
/// secret (compared by its SHA-256, so the cache holds no secret) and scope are the ones it was
/// derived from: a changed secret never meets a stale key. The signature itself is still
/// recomputed and compared in constant time on every request. Past `MAX_CACHED_KEYS` entries
/// the cache is emptied.
#[derive(Default)]
pub struct SigningKeyCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedKey>>,
}

struct CachedKey {
    secret_sha256: Vec<u8>,
    date: String,
    region: String,
    service: String,
    key: Vec<u8>,
}

impl CachedKey {
    fn serves(&self, secret_sha256: &[u8], p: &Parsed) -> bool {
        self.secret_sha256 == secret_sha256
            && self.date == p.scope_date
            && self.region == p.region
            && self.service == p.service
    }
}

impl SigningKeyCache {
    /// An empty cache.
    pub fn new() -> SigningKeyCache {
        SigningKeyCache::default()
    }

    /// `signing_key(secret, p)` for the key `p.access_key_id`, derived at most once per
    /// secret and scope.
    pub fn signing_key(&self, secret: &str, p: &Parsed) -> Vec<u8> {
        let secret_sha256 = Sha256::digest(secret.as_bytes()).to_vec();
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cached) = entries.get(&p.access_key_id)
            && cached.serves(&secret_sha256, p)
        {
            return cached.key.clone();
        }
        // Derived under the lock: four HMACs take a few microseconds, and a day's first
        // requests for one key then derive it once.
        let key = signing_key(secret, p);
        if entries.len() >= MAX_CACHED_KEYS && !entries.contains_key(&p.access_key_id) {
            entries.clear();
        }
        entries.insert(
            p.access_key_id.clone(),
            CachedKey {
                secret_sha256,
                date: p.scope_date.clone(),
                region: p.region.clone(),
                service: p.service.clone(),
                key: key.clone(),
            },
        );
        key
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
