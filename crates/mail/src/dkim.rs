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
    use std::process::Command;

    /// `SESAME_PYTHON` (default `python3`) when it has dkimpy; otherwise `None` after saying
    /// SKIPPED, or a failure where `SESAME_REQUIRE_DNS_TOOLS=1` (scripts/test sets it).
    fn python_with_dkimpy() -> Option<String> {
        let python = std::env::var("SESAME_PYTHON").unwrap_or_else(|_| "python3".into());
        let ok = Command::new(&python)
            .args(["-c", "import dkim, dns.message"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(python);
        }
        assert!(
            std::env::var("SESAME_REQUIRE_DNS_TOOLS").as_deref() != Ok("1"),
            "{python} needs dkimpy and dnspython (scripts/test makes a venv with them)"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {python} lacks dkimpy; the signatures were not checked independently"
        );
        None
    }

    /// The `v=DKIM1` TXT record that publishes `key`.
    fn txt_for(key: &PKey<Private>) -> String {
        let der = key.public_key_to_der().unwrap();
        format!("v=DKIM1; k=rsa; p={}", openssl::base64::encode_block(&der))
    }

    /// Whether dkimpy verifies `message` when `sel._domainkey.domain` has `txt` (and nothing
    /// else exists): an independent verifier, given the key directly instead of through DNS.
    fn dkimpy_verifies(python: &str, message: &[u8], name: &str, txt: &str) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.eml");
        std::fs::write(&path, message).unwrap();
        let out = Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/dkim/verify.py"
            ))
            .arg(&path)
            .args(["--txt", name, txt])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => true,
            Some(1) if said.contains("FAIL") => false,
            _ => panic!("verify.py did not run: {said}"),
        }
    }

    fn signed_headers_of(signed: &str) -> Vec<String> {
        let h = signed
            .split("h=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .replace(['\r', '\n', '\t', ' '], "");
        let mut h: Vec<String> = h.split(':').map(str::to_owned).collect();
        h.sort();
        h
    }

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
            assert_eq!(
                signed_headers_of(&signed),
                ["From", "Subject", "To"],
                "only present headers are signed"
            );
            assert!(signed.ends_with("\r\n\r\nbody\r\n"));
        }
    }

    /// dkimpy, not mail-auth (the library that signs), checks what we sign: both key sizes,
    /// messages whose relaxed canonical form differs from their bytes, and changes that must
    /// and must not break the signature.
    #[test]
    fn dkimpy_verifies_what_we_sign_and_refuses_what_was_changed() {
        let Some(python) = python_with_dkimpy() else {
            return;
        };
        let messages: [&[u8]; 4] = [
            b"From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n",
            // Folded and oddly spaced headers, trailing blanks and blank lines in the body.
            b"From: \"A  B\" <a@example.com>\r\nTo: b@example.net,\r\n\tc@example.net\r\nSubject:   a   folded\r\n  subject  \r\nDate: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one   \r\n\tline two\r\n\r\n\r\n",
            // No body at all.
            b"From: a@example.com\r\nSubject: empty\r\n\r\n",
            // A long body line and headers we do not sign.
            b"From: a@example.com\r\nX-Mailer: test\r\nReceived: from x by y\r\nSubject: long\r\n\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        ];
        for bits in [1024, 2048] {
            let key = PKey::from_rsa(openssl::rsa::Rsa::generate(bits).unwrap()).unwrap();
            let txt = txt_for(&key);
            let name = "sel._domainkey.example.com";
            for msg in messages {
                let signed = sign(msg, &key, "example.com", "sel").unwrap();
                let text = String::from_utf8_lossy(&signed).into_owned();
                assert!(
                    dkimpy_verifies(&python, &signed, name, &txt),
                    "{bits}-bit: dkimpy refused\n{text}"
                );
                // Another key published under the selector: refused.
                let other = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
                assert!(
                    !dkimpy_verifies(&python, &signed, name, &txt_for(&other)),
                    "{bits}-bit: verified with the wrong key\n{text}"
                );
                // A signed header changed: refused.
                let changed = text.replacen("From: ", "From: x", 1);
                assert!(
                    !dkimpy_verifies(&python, changed.as_bytes(), name, &txt),
                    "{bits}-bit: a changed From verified\n{changed}"
                );
                // A body byte changed, or a line added: refused.
                let mut body_changed = signed.clone();
                body_changed.extend_from_slice(b"added\r\n");
                assert!(
                    !dkimpy_verifies(&python, &body_changed, name, &txt),
                    "{bits}-bit: a longer body verified\n{text}"
                );
                // An unsigned header added: still verifies (it is not covered).
                let unsigned_added = format!("X-Added: yes\r\n{text}");
                assert!(
                    dkimpy_verifies(&python, unsigned_added.as_bytes(), name, &txt),
                    "{bits}-bit: an unsigned header broke the signature\n{text}"
                );
            }
        }
    }
}
