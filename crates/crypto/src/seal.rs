//! Sealing at rest: AES-256-GCM under the master key, with a fresh random 96-bit nonce per
//! envelope and a purpose label as associated data, so a sealed access-key secret can never be
//! opened as a DKIM key or a page token (and vice versa).

use openssl::rand::rand_bytes;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use std::fmt;

const VERSION: u8 = 1;
const NONCE: usize = 12;
const TAG: usize = 16;

/// The 256-bit master key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The master key text is not 32 bytes of base64 or hex.
    #[error("the master key must be 32 bytes, as 44 characters of base64 or 64 hex digits")]
    BadMasterKey,
    /// The envelope was altered, is for another purpose, or was sealed under another key.
    #[error("sealed data failed authentication")]
    Tampered,
    /// OpenSSL failed.
    #[error("crypto backend failure: {0}")]
    Backend(#[from] openssl::error::ErrorStack),
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Result<MasterKey, SealError> {
        let mut k = [0u8; 32];
        rand_bytes(&mut k)?;
        Ok(MasterKey(k))
    }

    /// Parses the key from base64 (as written to the data dir) or hex.
    pub fn parse(text: &str) -> Result<MasterKey, SealError> {
        let t = text.trim();
        // 64 characters are read as hex: as base64 they would be 48 bytes, never a key.
        let bytes = if t.len() == 64 {
            data_encoding::HEXLOWER_PERMISSIVE.decode(t.as_bytes())
        } else {
            data_encoding::BASE64.decode(t.as_bytes())
        }
        .map_err(|_| SealError::BadMasterKey)?;
        let k: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadMasterKey)?;
        Ok(MasterKey(k))
    }

    /// The key as base64 text, for the key file.
    pub fn to_base64(&self) -> String {
        data_encoding::BASE64.encode(&self.0)
    }
}

/// Seals and opens envelopes under one master key.
#[derive(Clone, Debug)]
pub struct Sealer {
    key: MasterKey,
}

impl Sealer {
    /// A sealer for `key`.
    pub fn new(key: MasterKey) -> Sealer {
        Sealer { key }
    }

    /// Encrypts and authenticates `plaintext` for `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE];
        rand_bytes(&mut nonce)?;
        let mut tag = [0u8; TAG];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key.0,
            Some(&nonce),
            purpose.as_bytes(),
            plaintext,
            &mut tag,
        )?;
        let mut out = Vec::with_capacity(1 + NONCE + ct.len() + TAG);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens an envelope sealed for `purpose`; any alteration is `Tampered`.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + NONCE + TAG || sealed[0] != VERSION {
            return Err(SealError::Tampered);
        }
        let nonce = &sealed[1..1 + NONCE];
        let (ct, tag) = sealed[1 + NONCE..].split_at(sealed.len() - 1 - NONCE - TAG);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key.0,
            Some(nonce),
            purpose.as_bytes(),
            ct,
            tag,
        )
        .map_err(|_| SealError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let s = Sealer::new(MasterKey::generate().unwrap());
        let sealed = s.seal("dkim", b"secret bytes").unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "ciphertext hides the plaintext"
        );
        assert_eq!(s.open("dkim", &sealed).unwrap(), b"secret bytes");
        assert!(matches!(s.open("token", &sealed), Err(SealError::Tampered)));
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(s.open("dkim", &bad), Err(SealError::Tampered)));
        let other = Sealer::new(MasterKey::generate().unwrap());
        assert!(matches!(
            other.open("dkim", &sealed),
            Err(SealError::Tampered)
        ));
        assert!(matches!(s.open("dkim", &[1, 2]), Err(SealError::Tampered)));
    }

    #[test]
    fn master_key_text_forms() {
        let k = MasterKey::generate().unwrap();
        let again = MasterKey::parse(&k.to_base64()).unwrap();
        assert_eq!(k.0, again.0);
        let hex = data_encoding::HEXLOWER.encode(&k.0);
        assert_eq!(MasterKey::parse(&hex).unwrap().0, k.0);
        assert!(MasterKey::parse("short").is_err());
        assert_eq!(format!("{k:?}"), "MasterKey(<redacted>)");
    }
}
