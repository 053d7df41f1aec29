//! Row codec shared by the backends: flattens an `Identity` into plain column values and
//! rebuilds it, re-validating every value through the core's `parse()` constructors so a
//! corrupted row surfaces as an error instead of an invalid domain value.

use crate::row::Cell;
pub use crate::row::{IdentityRow, corrupt};
use sesame_core::StoreError;
use sesame_core::dkim::KeyLengthHistory;
use sesame_core::model::{
    AccountId, Dkim, DkimKey, DkimOrigin, DkimStatus, DkimToken, Identity, IdentityName,
    IdentityType, KeyLength, Selector, SoaRecord, Tag, Timestamp, Verification, VerificationError,
};

fn error_text(e: VerificationError) -> &'static str {
    match e {
        VerificationError::HostNotFound => "HOST_NOT_FOUND",
        VerificationError::TypeNotFound => "TYPE_NOT_FOUND",
        VerificationError::InvalidValue => "INVALID_VALUE",
        VerificationError::DnsServerError => "DNS_SERVER_ERROR",
        VerificationError::ServiceError => "SERVICE_ERROR",
    }
}

fn parse_error(s: &str) -> Result<VerificationError, StoreError> {
    Ok(match s {
        "HOST_NOT_FOUND" => VerificationError::HostNotFound,
        "TYPE_NOT_FOUND" => VerificationError::TypeNotFound,
        "INVALID_VALUE" => VerificationError::InvalidValue,
        "DNS_SERVER_ERROR" => VerificationError::DnsServerError,
        "SERVICE_ERROR" => VerificationError::ServiceError,
        other => return Err(corrupt(format!("verification error {other}"))),
    })
}

/// One DKIM key row.
pub struct KeyRow {
    pub selector: String,
    pub bits: u32,
    pub public_der: Vec<u8>,
    pub sealed_private: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// A stored key row as both backends read it back: selector, public key, sealed private key,
/// retirement time.
pub type StoredKey = (String, Vec<u8>, Vec<u8>, Option<i64>);

/// Whether the stored key rows already equal the identity's keys, so a write that changes only
/// flags, tags or verification state leaves the key rows (and the key-zone generation) alone.
pub fn keys_unchanged(stored: &[StoredKey], identity: &Identity) -> bool {
    let keys = identity
        .dkim
        .as_ref()
        .map(|d| d.keys.as_slice())
        .unwrap_or_default();
    stored.len() == keys.len()
        && stored.iter().zip(keys).all(|(s, k)| {
            s.0 == k.selector.as_str()
                && s.1 == k.public_der
                && s.2 == k.sealed_private
                && s.3 == k.retired_at.map(|t| t.0)
        })
}

pub fn type_text(t: IdentityType) -> &'static str {
    match t {
        IdentityType::EmailAddress => "EMAIL_ADDRESS",
        IdentityType::Domain => "DOMAIN",
    }
}

pub fn status_text(s: DkimStatus) -> &'static str {
    match s {
        DkimStatus::Pending => "PENDING",
        DkimStatus::Success => "SUCCESS",
        DkimStatus::Failed => "FAILED",
        DkimStatus::TemporaryFailure => "TEMPORARY_FAILURE",
        DkimStatus::NotStarted => "NOT_STARTED",
    }
}

pub fn parse_status(s: &str) -> Result<DkimStatus, StoreError> {
    Ok(match s {
        "PENDING" => DkimStatus::Pending,
        "SUCCESS" => DkimStatus::Success,
        "FAILED" => DkimStatus::Failed,
        "TEMPORARY_FAILURE" => DkimStatus::TemporaryFailure,
        "NOT_STARTED" => DkimStatus::NotStarted,
        other => return Err(corrupt(format!("status {other}"))),
    })
}

fn length_of(bits: i64) -> Result<KeyLength, StoreError> {
    u32::try_from(bits)
        .ok()
        .and_then(KeyLength::from_bits)
        .ok_or_else(|| corrupt(format!("key length {bits}")))
}

pub fn encode_identity(identity: &Identity, version: u64) -> IdentityRow {
    let v = &identity.verification;
    let tags: Vec<(&str, &str)> = identity.tags.iter().map(|t| (t.key(), t.value())).collect();
    let mut row = IdentityRow {
        name: identity.name.as_str().to_owned(),
        version: version as i64,
        created_at: identity.created_at.0,
        feedback_forwarding: identity.feedback_forwarding,
        signing_override: identity.signing_override,
        verification_status: status_text(identity.verification_status).to_owned(),
        dkim_origin: None,
        dkim_signing_enabled: None,
        dkim_status: None,
        dkim_tokens: None,
        dkim_selector: None,
        dkim_next_length: None,
        dkim_length_changed_at: None,
        dkim_downgraded_at: None,
        // Serialising a Vec of string pairs cannot fail.
        tags: serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()),
        v_last_checked: v.last_checked.map(|t| t.0),
        v_last_success: v.last_success.map(|t| t.0),
        v_error: v.error.map(|e| error_text(e).to_owned()),
        v_soa: v.soa.as_ref().map(|s| {
            serde_json::json!([s.primary_name_server, s.admin_email, s.serial]).to_string()
        }),
        v_pending_since: v.pending_since.map(|t| t.0),
        v_failing_since: v.failing_since.map(|t| t.0),
        v_next_check_at: v.next_check_at.map(|t| t.0),
        v_attempts: i64::from(v.attempts),
        dkim_active: 0,
        dkim_staged: None,
    };
    if let Some(d) = &identity.dkim {
        row.dkim_active = d.active as i64;
        row.dkim_staged = d.staged.map(|s| s as i64);
        row.dkim_signing_enabled = Some(d.signing_enabled);
        row.dkim_status = Some(status_text(d.status).to_owned());
        match &d.origin {
            DkimOrigin::Easy { tokens, lengths } => {
                row.dkim_origin = Some("AWS_SES".into());
                let t: Vec<&str> = tokens.iter().map(|t| t.as_str()).collect();
                row.dkim_tokens = Some(t.join(" "));
                row.dkim_next_length = Some(i64::from(lengths.next_length.bits()));
                row.dkim_length_changed_at = lengths.changed_at.map(|t| t.0);
                row.dkim_downgraded_at = lengths.downgraded_at.map(|t| t.0);
            }
            DkimOrigin::External { selector } => {
                row.dkim_origin = Some("EXTERNAL".into());
                row.dkim_selector = Some(selector.as_str().to_owned());
            }
        }
    }
    row
}

pub fn decode_identity(
    account: &AccountId,
    row: IdentityRow,
    keys: Vec<KeyRow>,
) -> Result<Identity, StoreError> {
    let name = IdentityName::parse(&row.name).map_err(corrupt)?;
    let pairs: Vec<(String, String)> = serde_json::from_str(&row.tags).map_err(corrupt)?;
    let tags = pairs
        .iter()
        .map(|(k, v)| Tag::parse(k, v).map_err(corrupt))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = keys
        .into_iter()
        .map(|k| {
            Ok(DkimKey {
                selector: Selector::parse(&k.selector).map_err(corrupt)?,
                bits: k.bits,
                public_der: k.public_der,
                sealed_private: k.sealed_private,
                created_at: Timestamp(k.created_at),
                retired_at: k.retired_at.map(Timestamp),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let dkim = match row.dkim_origin.as_deref() {
        None => None,
        Some(origin_text) => {
            let origin = match origin_text {
                "AWS_SES" => DkimOrigin::Easy {
                    tokens: row
                        .dkim_tokens
                        .as_deref()
                        .unwrap_or_default()
                        .split(' ')
                        .map(|t| DkimToken::parse(t).map_err(corrupt))
                        .collect::<Result<Vec<_>, _>>()?,
                    lengths: KeyLengthHistory {
                        next_length: length_of(row.dkim_next_length.unwrap_or(2048))?,
                        changed_at: row.dkim_length_changed_at.map(Timestamp),
                        downgraded_at: row.dkim_downgraded_at.map(Timestamp),
                    },
                },
                "EXTERNAL" => DkimOrigin::External {
                    selector: Selector::parse(row.dkim_selector.as_deref().unwrap_or_default())
                        .map_err(corrupt)?,
                },
                other => return Err(corrupt(format!("DKIM origin {other}"))),
            };
            let index = |i: i64| {
                usize::try_from(i)
                    .ok()
                    .filter(|i| *i < keys.len())
                    .ok_or_else(|| corrupt(format!("key index {i}")))
            };
            let active = index(row.dkim_active)?;
            let staged = row.dkim_staged.map(index).transpose()?;
            Some(Dkim {
                signing_enabled: row.dkim_signing_enabled.unwrap_or(false),
                status: parse_status(row.dkim_status.as_deref().unwrap_or("NOT_STARTED"))?,
                origin,
                keys,
                active,
                staged,
            })
        }
    };
    let soa = match row.v_soa.as_deref() {
        None => None,
        Some(text) => {
            let (primary, admin, serial): (String, String, u64) =
                serde_json::from_str(text).map_err(corrupt)?;
            Some(SoaRecord {
                primary_name_server: primary,
                admin_email: admin,
                serial,
            })
        }
    };
    let verification = Verification {
        last_checked: row.v_last_checked.map(Timestamp),
        last_success: row.v_last_success.map(Timestamp),
        error: row.v_error.as_deref().map(parse_error).transpose()?,
        soa,
        pending_since: row.v_pending_since.map(Timestamp),
        failing_since: row.v_failing_since.map(Timestamp),
        next_check_at: row.v_next_check_at.map(Timestamp),
        attempts: u32::try_from(row.v_attempts).unwrap_or(u32::MAX),
    };
    Ok(Identity {
        account: account.clone(),
        name,
        version: row.version as u64,
        created_at: Timestamp(row.created_at),
        feedback_forwarding: row.feedback_forwarding,
        dkim,
        signing_override: row.signing_override,
        verification_status: parse_status(&row.verification_status)?,
        tags,
        verification,
    })
}

/// What `IdentitySql::upsert` binds for `identity` stored at `version`: `row::KEY_COLUMNS`,
/// then the row's own columns.
pub fn upsert_cells(identity: &Identity, version: u64) -> Vec<Cell> {
    let key = [identity.account.as_str(), type_text(identity.name.kind())];
    key.into_iter()
        .map(|v| Cell::Text(Some(v.to_owned())))
        .chain(encode_identity(identity, version).into_cells())
        .collect()
}
