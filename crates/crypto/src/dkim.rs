//! DKIM signing with mail-auth (RFC 6376): RSA-SHA256, relaxed/relaxed, `t=` the time the
//! caller gives, over an OpenSSL private key. mail-auth's own RSA backends (ring, aws-lc-rs)
//! refuse 1024-bit keys, which SES allows, so this module implements mail-auth's public
//! `SigningKey` trait on OpenSSL.
//!
//! mail-auth's `DkimSigner::sign` stamps `t=` from the system clock and its header iterator is
//! private to the crate, so the signature is assembled here from mail-auth's public parts
//! (`Signature::canonicalize`, the key's hash, `Signature::write`), with a header scanner that
//! mirrors mail-auth's own. The time is then an input: the clock stays injected, and a fixed
//! key, message and time give one signature, which the golden tests pin (`testdata/golden-*`).
//! It lives in the crypto crate so the unsealed key it signs with never leaves it:
//! `OpenSslVault::sign` is the only way in.

use mail_auth::common::crypto::{Algorithm, Sha256, SigningKey};
use mail_auth::common::headers::{HeaderStream, HeaderWriter, Writable, Writer};
use mail_auth::dkim::{Canonicalization, Signature};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use sesame_core::Error;

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
pub(crate) struct OpenSslRsaKey<'k>(pub(crate) &'k PKey<Private>);

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

/// The header fields of a message, then its body, the way mail-auth's crate-private
/// `HeaderIterator` reads them (`scan_field`/`scan_value` in mail-auth 0.13): a field is its
/// name before the colon and its value up to the line end that no continuation line follows,
/// that line end included; a line without a colon is a field with that line as its name and
/// no value; the header section ends at an empty line.
struct Fields<'x> {
    message: &'x [u8],
    pos: usize,
    body: Option<usize>,
}

impl<'x> Fields<'x> {
    fn new(message: &'x [u8]) -> Self {
        Fields {
            message,
            pos: 0,
            body: None,
        }
    }

    /// The end of the field whose value starts after `colon`: past the `\n` of its last line.
    fn value_end(&self, colon: usize) -> Option<usize> {
        let m = self.message;
        let mut cur = colon + 1;
        while let Some(offset) = m
            .get(cur..)
            .and_then(|r| r.iter().position(|b| *b == b'\n'))
        {
            let nl = cur + offset;
            match m.get(nl + 1) {
                Some(b' ' | b'\t') => cur = nl + 1,
                _ => return Some(nl + 1),
            }
        }
        None
    }
}

impl<'x> HeaderStream<'x> for Fields<'x> {
    fn next_header(&mut self) -> Option<(&'x [u8], &'x [u8])> {
        if self.body.is_some() {
            return None;
        }
        let m = self.message;
        let start = self.pos;
        let mut cur = start;
        loop {
            let Some(offset) = m
                .get(cur..)
                .and_then(|r| r.iter().position(|b| *b == b':' || *b == b'\n'))
            else {
                self.body = Some(m.len());
                return None;
            };
            let at = cur + offset;
            if m[at] == b':' {
                let Some(end) = self.value_end(at) else {
                    self.body = Some(m.len());
                    return None;
                };
                self.pos = end;
                return Some((&m[start..at], &m[at + 1..end]));
            }
            // A line end before any colon: the empty line that ends the header section, or a
            // line without a colon (continued, or a field of its own with no value).
            if (at > start && m[at - 1] == b'\r') || at == start {
                self.body = Some(at + 1);
                return None;
            }
            match m.get(at + 1) {
                Some(b' ' | b'\t') => cur = at + 1,
                _ => {
                    self.pos = at + 1;
                    return Some((&m[start..at + 1], b""));
                }
            }
        }
    }

    fn body(&mut self) -> &'x [u8] {
        let at = self.body.unwrap_or(self.message.len());
        self.message.get(at..).unwrap_or_default()
    }
}

/// What the signature's `b=` covers: the signed header fields, canonical, then the
/// DKIM-Signature field itself with `b=` empty.
struct Signable<'a, H: Writable> {
    headers: H,
    signature: &'a Signature,
}

impl<H: Writable> Writable for Signable<'_, H> {
    fn write(self, writer: &mut impl Writer) {
        self.headers.write(writer);
        self.signature.write(writer, false);
    }
}

/// Returns `message` with a `DKIM-Signature` header for `d=domain`, `s=selector` and
/// `t=unix_time` prepended.
pub(crate) fn sign(
    message: &[u8],
    key: &PKey<Private>,
    domain: &str,
    selector: &str,
    unix_time: u64,
) -> Result<Vec<u8>, Error> {
    // Sign the usual headers that are present; From always (RFC 6376 section 5.4).
    let present = present_headers(message);
    let key = OpenSslRsaKey(key);
    let mut signature = Signature {
        v: 1,
        a: key.algorithm(),
        d: domain.to_owned(),
        s: selector.to_owned(),
        h: SIGNED_HEADERS
            .iter()
            .filter(|h| **h == "From" || present.contains(&h.to_ascii_lowercase()))
            .map(|h| (*h).to_owned())
            .collect(),
        ch: Canonicalization::Relaxed,
        cb: Canonicalization::Relaxed,
        ..Default::default()
    };
    let (_, headers, signed, body) = signature.canonicalize(Fields::new(message));
    signature.bh = key.hash(body).as_ref().to_vec();
    signature.t = unix_time;
    signature.h = signed;
    signature.b = key
        .sign(Signable {
            headers,
            signature: &signature,
        })
        .map_err(|e| Error::Internal(format!("DKIM signing failed: {e}")))?;
    let mut out = signature.to_header().into_bytes();
    out.extend_from_slice(message);
    Ok(out)
}

/// The golden data (`testdata/`): committed test keys, never used for anything else, a message
/// and a time, and the signature each key gives them.
#[cfg(test)]
pub(crate) mod golden {
    use openssl::pkey::{PKey, Private};

    /// A key of the golden tests: committed test keys, never used for anything else.
    pub(crate) fn golden_key(bits: u32) -> PKey<Private> {
        let pem = match bits {
            1024 => include_bytes!("../testdata/golden-1024.pem").as_slice(),
            _ => include_bytes!("../testdata/golden-2048.pem").as_slice(),
        };
        PKey::private_key_from_pem(pem).unwrap()
    }

    /// The golden message; its bytes are the file's (CRLF line ends, trailing blanks).
    pub(crate) const GOLDEN_MESSAGE: &[u8] = include_bytes!("../testdata/golden-message.eml");
    /// 2026-12-02T07:00:00Z.
    pub(crate) const GOLDEN_TIME: u64 = 1_796_194_800;
    /// The DKIM-Signature header each golden key gives the golden message at the golden time.
    pub(crate) const GOLDEN: [(u32, &str); 2] = [
        (1024, include_str!("../testdata/golden-1024.dkim")),
        (2048, include_str!("../testdata/golden-2048.dkim")),
    ];
}

#[cfg(test)]
mod tests {
    use super::golden::*;
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

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// A fixed key, message and time give exactly this signature: any change to what is
    /// signed, how it is canonicalized or how the header is written shows here first.
    #[test]
    fn golden_signatures() {
        for (bits, expected) in GOLDEN {
            let signed = sign(
                GOLDEN_MESSAGE,
                &golden_key(bits),
                "example.com",
                "golden",
                GOLDEN_TIME,
            )
            .unwrap();
            let header = &signed[..signed.len() - GOLDEN_MESSAGE.len()];
            assert_eq!(
                String::from_utf8_lossy(header),
                expected,
                "{bits}-bit golden signature"
            );
            assert!(signed.ends_with(GOLDEN_MESSAGE));
        }
    }

    /// The golden signatures are good ones: dkimpy verifies them.
    #[test]
    fn dkimpy_verifies_the_golden_signatures() {
        let Some(python) = python_with_dkimpy() else {
            return;
        };
        for bits in [1024, 2048] {
            let key = golden_key(bits);
            let signed = sign(GOLDEN_MESSAGE, &key, "example.com", "golden", GOLDEN_TIME).unwrap();
            assert!(dkimpy_verifies(
                &python,
                &signed,
                "golden._domainkey.example.com",
                &txt_for(&key)
            ));
        }
    }

    /// The same signature as mail-auth's own signer, made in the same second: the header
    /// scanner here reads messages the way mail-auth's does.
    #[test]
    fn signs_exactly_as_mail_auths_signer() {
        use mail_auth::dkim::DkimSigner;
        let key = golden_key(1024);
        let messages: [&[u8]; 5] = [
            GOLDEN_MESSAGE,
            b"From: a@example.com\r\n\r\n",
            b"From: a@example.com\nTo: b@example.net\n\nbare LF\n",
            b"Subject: no body\r\nFrom: a@example.com\r\n",
            b"From: a@example.com\r\nno colon here\nTo: b@example.net\r\n\r\nbody\r\n",
        ];
        for msg in messages {
            let present = present_headers(msg);
            let h: Vec<&str> = SIGNED_HEADERS
                .iter()
                .copied()
                .filter(|h| *h == "From" || present.contains(&h.to_ascii_lowercase()))
                .collect();
            let (theirs, at) = (0..5)
                .find_map(|_| {
                    let before = now();
                    let sig = DkimSigner::from_key(OpenSslRsaKey(&key))
                        .domain("example.com")
                        .selector("sel")
                        .headers(h.clone())
                        .header_canonicalization(Canonicalization::Relaxed)
                        .body_canonicalization(Canonicalization::Relaxed)
                        .sign(msg)
                        .unwrap();
                    (now() == before).then(|| (sig.to_header(), before))
                })
                .expect("five tries within one second each");
            let ours = sign(msg, &key, "example.com", "sel", at).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours[..ours.len() - msg.len()]),
                theirs,
                "{}",
                String::from_utf8_lossy(msg)
            );
        }
    }

    #[test]
    fn signs_with_1024_and_2048_bit_keys() {
        let msg = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n";
        for bits in [1024, 2048] {
            let key = PKey::from_rsa(openssl::rsa::Rsa::generate(bits).unwrap()).unwrap();
            let signed =
                String::from_utf8(sign(msg, &key, "example.com", "sel", now()).unwrap()).unwrap();
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
                let signed = sign(msg, &key, "example.com", "sel", now()).unwrap();
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
