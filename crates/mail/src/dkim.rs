//! DKIM signing with mail-auth (RFC 6376): RSA-SHA256, relaxed/relaxed, `t=` set, over an
//! OpenSSL private key. mail-auth's own RSA backends (ring, aws-lc-rs) refuse 1024-bit keys,
//! which SES allows, so this module implements mail-auth's public `SigningKey` trait on OpenSSL.

use crate::MailError;
use mail_auth::common::crypto::{Algorithm, Sha256, SigningKey};
use mail_auth::common::headers::{HeaderWriter, Writable, Writer};
use mail_auth::dkim::{Canonicalization, DkimSigner};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};

/// The headers signed when present (SES's usual set); From is always present.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "In-Reply-To",
    "References",
    "Content-Transfer-Encoding",
];

/// An OpenSSL RSA key as mail-auth's signing key.
pub struct OpenSslRsaKey<'k>(pub &'k PKey<Private>);

/// Feeds mail-auth's canonical data into an OpenSSL signer.
struct SignerWriter<'a> {
    signer: openssl::sign::Signer<'a>,
    failed: bool,
}

impl Writer for SignerWriter<'_> {
    fn write(&mut self, buf: &[u8]) {
        if self.signer.update(buf).is_err() {
            self.failed = true;
        }
    }
}

impl SigningKey for OpenSslRsaKey<'_> {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        let lib = |e: openssl::error::ErrorStack| {
            mail_auth::Error::Crypto(mail_auth::common::crypto::CryptoError::Library(
                e.to_string(),
            ))
        };
        let signer = openssl::sign::Signer::new(MessageDigest::sha256(), self.0).map_err(lib)?;
        let mut w = SignerWriter {
            signer,
            failed: false,
        };
        input.write(&mut w);
        if w.failed {
            return Err(mail_auth::Error::Crypto(
                mail_auth::common::crypto::CryptoError::Library("feeding the signer failed".into()),
            ));
        }
        w.signer.sign_to_vec().map_err(lib)
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::RsaSha256
    }
}

/// The names of the header fields in `message`'s header block, lower-cased.
fn present_headers(message: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for line in message.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            names.push(
                String::from_utf8_lossy(&line[..colon])
                    .trim()
                    .to_ascii_lowercase(),
            );
        }
    }
    names
}

/// Returns `message` with a `DKIM-Signature` header for `d=domain`, `s=selector` prepended.
pub fn sign(
    message: &[u8],
    key: &PKey<Private>,
    domain: &str,
    selector: &str,
) -> Result<Vec<u8>, MailError> {
    // Sign the usual headers that are present; From always (RFC 6376 section 5.4).
    let present = present_headers(message);
    let headers: Vec<&str> = SIGNED_HEADERS
        .iter()
        .copied()
        .filter(|h| *h == "From" || present.contains(&h.to_ascii_lowercase()))
        .collect();
    let signature = DkimSigner::from_key(OpenSslRsaKey(key))
        .domain(domain)
        .selector(selector)
        .headers(headers)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .sign(message)
        .map_err(|e| MailError::Sign(e.to_string()))?;
    let mut out = signature.to_header().into_bytes();
    out.extend_from_slice(message);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_with_1024_and_2048_bit_keys() {
        let msg = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n";
        for bits in [1024, 2048] {
            let key = PKey::from_rsa(openssl::rsa::Rsa::generate(bits).unwrap()).unwrap();
            let signed = String::from_utf8(sign(msg, &key, "example.com", "sel").unwrap()).unwrap();
            assert!(
                signed.starts_with(
                    "DKIM-Signature: v=1; a=rsa-sha256; s=sel; d=example.com; c=relaxed/relaxed;"
                ),
                "{signed}"
            );
            assert!(signed.contains(" t=") && signed.contains("bh="), "{signed}");
            let h = signed
                .split("h=")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .replace(['\r', '\n', '\t', ' '], "");
            let mut h: Vec<&str> = h.split(':').collect();
            h.sort();
            assert_eq!(
                h,
                ["From", "Subject", "To"],
                "only present headers are signed"
            );
            assert!(signed.ends_with("\r\n\r\nbody\r\n"));
        }
    }
}
