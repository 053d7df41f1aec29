//! Reading the signature out of a request: the `Authorization` header or the presigned query.

use super::date::parse_amz_date;
use super::request::{ALGORITHM, Parsed, Request, SigError};

/// The longest `X-Amz-Expires` of a presigned request (AWS: 7 days).
pub const MAX_EXPIRES_SECS: i64 = 7 * 24 * 3600;

/// Reads the signature from the `Authorization` header or, failing that, the query string.
pub fn parse(req: &Request<'_>) -> Result<Parsed, SigError> {
    // Two credentials in one request: front ends and back ends may each pick a different one,
    // so a request must carry exactly one.
    let auths = req
        .headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .count();
    if auths > 1 {
        return Err(SigError::Incomplete(format!(
            "The request has {auths} Authorization headers; exactly one is allowed."
        )));
    }
    if let Some(auth) = req.header("authorization") {
        if req.query_param("X-Amz-Signature").is_some()
            || req.query_param("X-Amz-Credential").is_some()
        {
            return Err(SigError::Incomplete(
                "Only one authentication mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified."
                    .into(),
            ));
        }
        return parse_header(req, auth);
    }
    if req.query_param("X-Amz-Signature").is_some() || req.query_param("X-Amz-Credential").is_some()
    {
        return parse_presigned(req);
    }
    Err(SigError::Missing)
}

fn parse_header(req: &Request<'_>, auth: &str) -> Result<Parsed, SigError> {
    let (algorithm, rest) = auth.split_once(' ').unwrap_or((auth, ""));
    if algorithm != ALGORITHM {
        return Err(SigError::Incomplete(format!(
            "Authorization header requires the {ALGORITHM} algorithm; got '{algorithm}'."
        )));
    }
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').unwrap_or((part.trim(), ""));
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    fn need<'a>(v: Option<&'a str>, name: &str) -> Result<&'a str, SigError> {
        v.filter(|v| !v.is_empty()).ok_or_else(|| {
            SigError::Incomplete(format!("Authorization header requires '{name}' parameter."))
        })
    }
    let credential = need(credential, "Credential")?;
    let signed = need(signed, "SignedHeaders")?;
    let signature = need(signature, "Signature")?;
    let amz_date = req.header("x-amz-date").ok_or_else(|| {
        SigError::Incomplete(
            "Authorization header requires existence of a 'X-Amz-Date' header.".into(),
        )
    })?;
    build(
        credential,
        signed,
        signature,
        amz_date,
        None,
        req.header("x-amz-security-token").is_some(),
    )
}

fn parse_presigned(req: &Request<'_>) -> Result<Parsed, SigError> {
    let get = |name: &str| {
        req.query_param(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                SigError::Incomplete(format!(
                    "A presigned request requires the '{name}' parameter."
                ))
            })
    };
    let algorithm = get("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(SigError::Incomplete(format!(
            "X-Amz-Algorithm must be {ALGORITHM}; got '{algorithm}'."
        )));
    }
    let expires = get("X-Amz-Expires")?;
    let expires: i64 = expires
        .parse()
        .ok()
        .filter(|e| (1..=MAX_EXPIRES_SECS).contains(e))
        .ok_or_else(|| {
            SigError::Incomplete(format!(
                "X-Amz-Expires must be a number of seconds from 1 to {MAX_EXPIRES_SECS}."
            ))
        })?;
    build(
        &get("X-Amz-Credential")?,
        &get("X-Amz-SignedHeaders")?,
        &get("X-Amz-Signature")?,
        &get("X-Amz-Date")?,
        Some(expires),
        req.query_param("X-Amz-Security-Token").is_some(),
    )
}

fn build(
    credential: &str,
    signed: &str,
    signature: &str,
    amz_date: &str,
    expires: Option<i64>,
    session_token: bool,
) -> Result<Parsed, SigError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminal] = parts[..] else {
        return Err(SigError::Incomplete(format!(
            "Credential must have the form <key>/<date>/<region>/<service>/aws4_request; got '{credential}'."
        )));
    };
    if terminal != "aws4_request" || key.is_empty() {
        return Err(SigError::Incomplete(format!(
            "Credential must have the form <key>/<date>/<region>/<service>/aws4_request; got '{credential}'."
        )));
    }
    let timestamp = parse_amz_date(amz_date).ok_or_else(|| {
        SigError::Incomplete(format!(
            "X-Amz-Date must have the form YYYYMMDD'T'HHMMSS'Z'; got '{amz_date}'."
        ))
    })?;
    Ok(Parsed {
        access_key_id: key.to_owned(),
        scope_date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: signed.split(';').map(str::to_owned).collect(),
        signature: signature.to_owned(),
        amz_date: amz_date.to_owned(),
        timestamp,
        expires,
        session_token,
    })
}
