//! Verification: the signature recomputed and compared with the one sent, in constant time.

use super::canonical::{CanonicalRequest, PathRules, string_to_sign};
use super::key::signing_key;
use super::request::{Parsed, Request, SigError};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Recomputes the signature with `secret` and compares it with the one sent, in constant time.
/// A mismatch carries the canonical request and string to sign, as AWS's message does.
pub fn verify(
    req: &Request<'_>,
    p: &Parsed,
    secret: &str,
    rules: PathRules,
) -> Result<(), SigError> {
    verify_with_key(req, p, &signing_key(secret, p), rules)
}

/// `verify` with the signing key already derived (`signing_key`, `SigningKeyCache`).
pub fn verify_with_key(
    req: &Request<'_>,
    p: &Parsed,
    signing_key: &[u8],
    rules: PathRules,
) -> Result<(), SigError> {
    check(&CanonicalRequest::build(req, p, rules)?, p, signing_key)
}

/// Compares the signature sent with the one of either reading of the canonical request. A
/// mismatch carries botocore's reading and its string to sign, as AWS's message does.
fn check(canonical: &CanonicalRequest, p: &Parsed, signing_key: &[u8]) -> Result<(), SigError> {
    let sent = data_encoding::HEXLOWER_PERMISSIVE
        .decode(p.signature.as_bytes())
        .unwrap_or_default();
    let matches = |sts: &str| match Hmac::<Sha256>::new_from_slice(signing_key) {
        Ok(mut m) => {
            m.update(sts.as_bytes());
            m.verify_slice(&sent).is_ok()
        }
        Err(_) => false,
    };
    let sts = string_to_sign(p, &canonical.any_whitespace);
    // Only a signed value with whitespace other than ' ' reads differently under the other
    // SDK's rule, so only then is the second reading worth an HMAC.
    let ok = matches(&sts)
        || canonical
            .spaces_only
            .as_ref()
            .is_some_and(|c| matches(&string_to_sign(p, c)));
    if ok {
        Ok(())
    } else {
        let canonical = &canonical.any_whitespace;
        Err(SigError::Invalid(format!(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.\n\nThe Canonical String for this request should have \
             been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{sts}'\n"
        )))
    }
}
