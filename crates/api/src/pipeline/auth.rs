//! Stages 2 and 3, authentication. `precheck` is pure: it parses the signature and checks its
//! scope, signed headers and date, so a stale, misdirected or malformed request is refused
//! before any storage is touched. `verify` needs what only `precheck` makes, and it is the only
//! code of the edge that calls `CredentialLookup` (s3s's order: no I/O before the skew check).

use super::read::Received;
use crate::errors::{ApiError, EdgeError};
use crate::sigv4::{self, Parsed, PathRules, SigError, SigningKeyCache};
use crate::state::CredentialLookup;
use sesame_core::model::AccountId;

/// The SigV4 signing name of SESv2 (`signingName` in the model).
pub const SIGNING_NAME: &str = "ses";

/// A signature that parsed and passed every check that needs no secret. Its field is private,
/// so only `precheck` makes one.
pub struct Prechecked {
    sig: Parsed,
}

/// Parses the request's signature and checks its scope, signed headers and clock skew against
/// `now` (Unix seconds), without any I/O.
pub fn precheck(req: &Received, region: &str, now: i64) -> Result<Prechecked, EdgeError> {
    let sig = sigv4::parse(&req.signed()).map_err(EdgeError::Auth)?;
    sigv4::check_scope_and_time(&sig, region, SIGNING_NAME, now).map_err(EdgeError::Auth)?;
    Ok(Prechecked { sig })
}

/// A caller whose signature matched its key's secret. Only `verify` makes one.
pub struct Authenticated {
    /// The account of the access key.
    pub account: AccountId,
    _proof: (),
}

/// Looks up the secret of the prechecked signature's key and recomputes the signature with it.
/// An unknown or disabled key is refused before the signature is computed, as AWS does.
pub fn verify(
    pre: Prechecked,
    req: &Received,
    credentials: &dyn CredentialLookup,
    signing_keys: &SigningKeyCache,
) -> Result<Authenticated, ApiError> {
    let sig = pre.sig;
    let credential = credentials
        .lookup(&sig.access_key_id)?
        .filter(|c| c.enabled)
        .ok_or(EdgeError::Auth(SigError::UnrecognizedClient))?;
    sigv4::verify_with_key(
        &req.signed(),
        &sig,
        &signing_keys.signing_key(&credential.secret.0, &sig),
        PathRules::AWS_SERVICE,
    )
    .map_err(EdgeError::Auth)?;
    Ok(Authenticated {
        account: credential.account,
        _proof: (),
    })
}
