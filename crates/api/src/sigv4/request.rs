//! What a signed request is: the parts a signature covers, the signature parsed out of it, and
//! why a request may not be authenticated.

use percent_encoding::percent_decode_str;

/// The only algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The parts of a request that a signature covers.
pub struct Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The path exactly as received (percent-encoded).
    pub raw_path: &'a str,
    /// The query string exactly as received, without `?`.
    pub raw_query: Option<&'a str>,
    /// Headers with lower-case names, in the order received.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

impl Request<'_> {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(self.raw_query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Why a request is not authenticated. The edge maps each onto an AWS error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// No signature at all (`MissingAuthenticationTokenException`).
    Missing,
    /// A signature with parts missing or malformed (`IncompleteSignatureException`).
    Incomplete(String),
    /// Wrong scope, stale or future date, or a signature that does not match
    /// (`InvalidSignatureException`); the message is the client's to read.
    Invalid(String),
    /// Unknown or disabled access key, or a session token (`UnrecognizedClientException`).
    UnrecognizedClient,
}

/// A parsed signature, from the `Authorization` header or the presigned query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The access key id.
    pub access_key_id: String,
    /// Credential scope date, `YYYYMMDD`.
    pub scope_date: String,
    /// Credential scope region.
    pub region: String,
    /// Credential scope service.
    pub service: String,
    /// `SignedHeaders`, as sent.
    pub signed_headers: Vec<String>,
    /// The hex signature, as sent.
    pub signature: String,
    /// `X-Amz-Date`, as sent (`YYYYMMDDTHHMMSSZ`).
    pub amz_date: String,
    /// `X-Amz-Date` in Unix seconds.
    pub timestamp: i64,
    /// `Some(X-Amz-Expires)` for presigned requests.
    pub expires: Option<i64>,
    /// Whether a session token came with the request.
    pub session_token: bool,
}

impl Parsed {
    /// `<date>/<region>/<service>/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.scope_date, self.region, self.service
        )
    }
}

/// Query parameters decoded as HTML forms decode them (`+` is a space), as SDKs parse them
/// before re-encoding for the canonical query.
pub(super) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    raw.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}
