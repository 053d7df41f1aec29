//! The checks that need no secret: credential scope, signed host and clock skew. The edge runs
//! them before it looks up the secret, so a stale or misdirected request touches no storage.

use super::date::format_amz_date;
use super::request::{Parsed, SigError};

/// How far `X-Amz-Date` may be from the server's clock, either way (AWS: 15 minutes).
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// Scope and time checks; they need no storage, so they run before the secret lookup.
pub fn check_scope_and_time(
    p: &Parsed,
    region: &str,
    service: &str,
    now: i64,
) -> Result<(), SigError> {
    if p.session_token {
        // Sesame issues no temporary credentials, so no session token can be valid.
        return Err(SigError::UnrecognizedClient);
    }
    if !p.signed_headers.iter().any(|h| h == "host") {
        return Err(SigError::Invalid(
            "The host header must be signed (it is missing from SignedHeaders).".into(),
        ));
    }
    if p.region != region {
        return Err(SigError::Invalid(format!(
            "Credential should be scoped to a valid region: '{region}', not '{}'.",
            p.region
        )));
    }
    if p.service != service {
        return Err(SigError::Invalid(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    if !p.amz_date.starts_with(&p.scope_date) || p.scope_date.len() != 8 {
        return Err(SigError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'.",
            p.scope_date,
            p.amz_date.get(..8).unwrap_or_default()
        )));
    }
    match p.expires {
        // Presigned: valid from (X-Amz-Date - skew) to (X-Amz-Date + X-Amz-Expires).
        Some(expires) if now > p.timestamp + expires => Err(SigError::Invalid(format!(
            "Signature expired: {} is now earlier than {} ({} - {expires} sec.)",
            format_amz_date(p.timestamp + expires),
            format_amz_date(now),
            format_amz_date(now),
        ))),
        None if p.timestamp < now - MAX_SKEW_SECS => Err(SigError::Invalid(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            p.amz_date,
            format_amz_date(now - MAX_SKEW_SECS),
            format_amz_date(now)
        ))),
        _ if p.timestamp > now + MAX_SKEW_SECS => Err(SigError::Invalid(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            p.amz_date,
            format_amz_date(now + MAX_SKEW_SECS),
            format_amz_date(now)
        ))),
        _ => Ok(()),
    }
}
