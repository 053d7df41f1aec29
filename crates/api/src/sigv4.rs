//! AWS Signature Version 4 verification, header and presigned-query forms.
//!
//! Hand-written on purpose: the aws-sigv4 crate signs but cannot tell a server *why* a signature
//! does not match, and AWS answers a mismatch with the canonical request and the string to sign
//! it expected, so users can debug their client. The steps follow "Create a signed AWS API
//! request" (AWS IAM User Guide) and are checked stage by stage against the AWS SigV4 test
//! suite in `tests/data/sigv4/`.
//!
//! Order of checks (s3s's discipline): parse, then scope and clock skew — both without I/O —
//! and only then the secret lookup and the HMAC, compared in constant time.
//!
//! - `request`: the signed parts of a request, the parsed signature, `SigError`.
//! - `parse`: the signature out of the `Authorization` header or the presigned query.
//! - `scope`: scope, signed host and clock skew, checked without any secret.
//! - `canonical`: the canonical request and the string to sign.
//! - `key`: the signing key, the signature, and `SigningKeyCache`.
//! - `verify`: the constant-time comparison.
//! - `date`: `X-Amz-Date` conversions.

mod canonical;
mod date;
mod key;
mod parse;
mod request;
mod scope;
mod verify;

pub use canonical::{PathRules, canonical_query, canonical_request, canonical_uri, string_to_sign};
pub use date::{format_amz_date, parse_amz_date};
pub use key::{MAX_CACHED_KEYS, SigningKeyCache, signature, signing_key};
pub use parse::{MAX_EXPIRES_SECS, parse};
pub use request::{ALGORITHM, Parsed, Request, SigError};
pub use scope::{MAX_SKEW_SECS, check_scope_and_time};
pub use verify::{verify, verify_with_key};

// The vector tests check the stages one by one, including the whitespace readings that stay
// private to `canonical`.
#[cfg(test)]
use canonical::{Collapse, canonical_request_with, canonical_value};
#[cfg(test)]
use hmac::{Hmac, KeyInit, Mac};
#[cfg(test)]
use sha2::{Digest, Sha256};

#[cfg(test)]
mod tests;
