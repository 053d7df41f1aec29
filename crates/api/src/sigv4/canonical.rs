//! The canonical request and the string to sign (steps 1 and 2 of SigV4), with the path and
//! query canonicalisation and the two SDKs' readings of whitespace in header values.

use super::request::{ALGORITHM, Parsed, Request, SigError, query_pairs};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (SigV4 `UriEncode`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How the canonical URI is derived from the path on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    /// Every AWS service but S3 percent-encodes the already-encoded path once more, so
    /// `user%2Btag%40example.com` is signed as `user%252Btag%2540example.com`; S3 and the
    /// generic AWS test suite encode it once.
    pub double_encode: bool,
    /// Remove `.`/`..` and empty segments first (RFC 3986 section 5.2.4), as SDKs do by default.
    pub normalize: bool,
}

impl PathRules {
    /// What AWS SDKs do for SESv2 (and every service but S3).
    pub const AWS_SERVICE: PathRules = PathRules {
        double_encode: true,
        normalize: true,
    };
}

fn hex_sha256(data: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(data))
}

/// Removes `.` and `..` segments and empty segments, keeping a trailing slash (RFC 3986
/// section 5.2.4, as the AWS SDKs normalise before signing).
fn normalize_path(path: &str) -> String {
    if !(path.contains('.') || path.contains("//")) {
        return if path.is_empty() {
            "/".into()
        } else {
            path.to_owned()
        };
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut result = format!("/{}", out.join("/"));
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if trailing && !result.ends_with('/') {
        result.push('/');
    }
    result
}

/// The canonical URI of a raw path.
pub fn canonical_uri(raw_path: &str, rules: PathRules) -> String {
    let path = if rules.normalize {
        normalize_path(raw_path)
    } else if raw_path.is_empty() {
        "/".to_owned()
    } else {
        raw_path.to_owned()
    };
    path.split('/')
        .map(|seg| {
            if rules.double_encode {
                utf8_percent_encode(seg, UNRESERVED).to_string()
            } else {
                let decoded = percent_decode_str(seg).decode_utf8_lossy();
                utf8_percent_encode(&decoded, UNRESERVED).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
/// The canonical query string: every parameter but the signature, encoded and sorted.
pub fn canonical_query(raw: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(raw)
        .into_iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| {
            (
                utf8_percent_encode(&k, UNRESERVED).to_string(),
                utf8_percent_encode(&v, UNRESERVED).to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Which whitespace a signer collapses in header values. AWS's rule says "sequential spaces";
/// botocore collapses every Unicode whitespace run (`' '.join(v.split())`), aws-sigv4 only
/// spaces, so a value with a tab or a no-break space is signed two ways by two SDKs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Collapse {
    /// Every whitespace run (botocore).
    AnyWhitespace,
    /// Runs of ' ' only (aws-sigv4, the documented rule).
    Spaces,
}

/// A header value as SigV4 canonicalises it: trimmed, runs of whitespace made one space.
pub(super) fn canonical_value(v: &str, collapse: Collapse) -> String {
    match collapse {
        Collapse::AnyWhitespace => v.split_whitespace().collect::<Vec<_>>().join(" "),
        Collapse::Spaces => v
            .trim_matches(' ')
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The canonical request (step 1 of SigV4).
pub fn canonical_request(
    req: &Request<'_>,
    p: &Parsed,
    rules: PathRules,
) -> Result<String, SigError> {
    canonical_request_with(req, p, rules, Collapse::AnyWhitespace)
}

pub(super) fn canonical_request_with(
    req: &Request<'_>,
    p: &Parsed,
    rules: PathRules,
    collapse: Collapse,
) -> Result<String, SigError> {
    Ok(render(req, p, rules, collapse, &body_hash(req)?))
}

/// A request's canonical form, built once for the verification: the body (up to a whole
/// SendEmail message) is hashed once, whichever reading of the whitespace matches.
pub(super) struct CanonicalRequest {
    /// botocore's reading, the one a mismatch message shows.
    pub(super) any_whitespace: String,
    /// aws-sigv4's reading, only where it differs: a signed header value with whitespace other
    /// than ' '.
    pub(super) spaces_only: Option<String>,
}

impl CanonicalRequest {
    pub(super) fn build(
        req: &Request<'_>,
        p: &Parsed,
        rules: PathRules,
    ) -> Result<CanonicalRequest, SigError> {
        let body_hash = body_hash(req)?;
        let odd_whitespace = req.headers.iter().any(|(n, v)| {
            p.signed_headers.contains(n) && v.chars().any(|c| c.is_whitespace() && c != ' ')
        });
        Ok(CanonicalRequest {
            any_whitespace: render(req, p, rules, Collapse::AnyWhitespace, &body_hash),
            spaces_only: odd_whitespace
                .then(|| render(req, p, rules, Collapse::Spaces, &body_hash)),
        })
    }
}

/// The body's hex SHA-256, refused if it differs from the `x-amz-content-sha256` the client
/// claims.
fn body_hash(req: &Request<'_>) -> Result<String, SigError> {
    let body_hash = hex_sha256(req.body);
    if let Some(claimed) = req.header("x-amz-content-sha256")
        && claimed != body_hash
    {
        return Err(SigError::Invalid(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
        ));
    }
    Ok(body_hash)
}

fn render(
    req: &Request<'_>,
    p: &Parsed,
    rules: PathRules,
    collapse: Collapse,
    body_hash: &str,
) -> String {
    let mut headers = String::new();
    for name in &p.signed_headers {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| canonical_value(v, collapse))
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.raw_path, rules),
        canonical_query(req.raw_query),
        headers,
        p.signed_headers.join(";"),
        body_hash
    )
}

/// The string to sign (step 2).
pub fn string_to_sign(p: &Parsed, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        p.amz_date,
        p.scope(),
        hex_sha256(canonical_request.as_bytes())
    )
}
