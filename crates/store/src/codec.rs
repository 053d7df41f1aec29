//! Row codec shared by the backends: flattens an `Identity` into plain column values and
//! rebuilds it, re-validating every value through the core's `parse()` constructors so a
//! corrupted row surfaces as an error instead of an invalid domain value.

use crate::row::Cell;
pub use crate::row::{IdentityRow, corrupt};
use sesame_core::StoreError;
use sesame_core::model::{
    AccountId, Advice, AdviceKind, AdviceStatus, Dkim, DkimKey, DkimKeys, DkimOrigin, DkimStatus,
    DkimToken, DomainName, Identity, IdentityCount, IdentityName, IdentityType, KeyLength,
    KeyLengthHistory, LinkHash, MailFrom, MxFailure, Recommendations, Revocation, Selector,
    SlotState, SoaRecord, Tag, Timestamp, Verification, VerificationError, VerificationLink,
};
use sesame_core::model::{
    EmailAddress, RedirectUrl, TemplateContent, TemplateName, VerificationTemplate,
};
use sesame_core::model::{PublishState, PublishedRecord, Publisher, Retiring};

fn parse_error(s: &str) -> Result<VerificationError, StoreError> {
    VerificationError::from_name(s).ok_or_else(|| corrupt(format!("verification error {s}")))
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

/// Whether the stored key rows already equal `keys` (the identity's `key_rows`), so a write that
/// changes only flags, tags or verification state leaves the key rows (and the key-zone
/// generation) alone.
pub fn keys_unchanged(stored: &[StoredKey], keys: &[KeyRow]) -> bool {
    stored.len() == keys.len()
        && stored.iter().zip(keys).all(|(s, k)| {
            s.0 == k.selector
                && s.1 == k.public_der
                && s.2 == k.sealed_private
                && s.3 == k.retired_at
        })
}

/// The identity's key rows in slot order, each with its retirement time (the signing and the
/// staged slot are told by the identity row's `dkim_active`/`dkim_staged`).
pub fn key_rows(identity: &Identity) -> Vec<KeyRow> {
    let Some(d) = &identity.dkim else {
        return vec![];
    };
    d.keys
        .slots()
        .map(|(k, state)| KeyRow {
            selector: k.selector.as_str().to_owned(),
            bits: k.bits,
            public_der: k.public_der.clone(),
            sealed_private: k.sealed_private.clone(),
            created_at: k.created_at.0,
            retired_at: match state {
                SlotState::Retired(at) => Some(at.0),
                _ => None,
            },
        })
        .collect()
}

/// The counts by type and status, in one account (`$1`/`?1`) or in all (NULL); both backends
/// accept the same text (SQLite reads `$1` as a numbered parameter too).
pub const COUNT_IDENTITIES: &str = "SELECT identity_type, dkim_status, verification_status, \
     COUNT(*) FROM identities WHERE ($1 IS NULL OR account_id = $1) \
     GROUP BY identity_type, dkim_status, verification_status";

/// One row of `COUNT_IDENTITIES`, re-validated.
pub fn count_row(
    identity_type: &str,
    dkim_status: Option<&str>,
    verification_status: &str,
    count: i64,
) -> Result<IdentityCount, StoreError> {
    Ok(IdentityCount {
        identity_type: IdentityType::from_name(identity_type)
            .ok_or_else(|| corrupt(format!("identity type {identity_type}")))?,
        dkim_status: dkim_status.map(parse_status).transpose()?,
        verification_status: parse_status(verification_status)?,
        count: u64::try_from(count).map_err(|_| corrupt(format!("count {count}")))?,
    })
}

/// The stored spelling of a status (the model's, as everywhere).
pub fn parse_status(s: &str) -> Result<DkimStatus, StoreError> {
    DkimStatus::from_name(s).ok_or_else(|| corrupt(format!("status {s}")))
}

fn length_of(bits: i64) -> Result<KeyLength, StoreError> {
    u32::try_from(bits)
        .ok()
        .and_then(KeyLength::from_bits)
        .ok_or_else(|| corrupt(format!("key length {bits}")))
}

fn encode_revocations(items: &[Revocation]) -> String {
    let rows: Vec<(&str, i64, &str)> = items
        .iter()
        .map(|r| (r.selector.as_str(), r.at.0, r.by.as_str()))
        .collect();
    // Serialising a Vec of plain tuples cannot fail.
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
}

fn decode_revocations(text: &str) -> Result<Vec<Revocation>, StoreError> {
    let rows: Vec<(String, i64, String)> = serde_json::from_str(text).map_err(corrupt)?;
    rows.into_iter()
        .map(|(selector, at, by)| {
            Ok(Revocation {
                selector: Selector::parse(&selector).map_err(corrupt)?,
                at: Timestamp(at),
                by,
            })
        })
        .collect()
}

fn encode_recommendations(items: &[Advice]) -> String {
    let rows: Vec<(&str, &str, i64, i64)> = items
        .iter()
        .map(|a| {
            (
                a.kind.name(),
                a.status.name(),
                a.created_at.0,
                a.updated_at.0,
            )
        })
        .collect();
    // Serialising a Vec of plain tuples cannot fail.
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
}

fn decode_recommendations(text: &str) -> Result<Vec<Advice>, StoreError> {
    let rows: Vec<(String, String, i64, i64)> = serde_json::from_str(text).map_err(corrupt)?;
    rows.into_iter()
        .map(|(kind, status, created, updated)| {
            Ok(Advice {
                kind: AdviceKind::from_name(&kind)
                    .ok_or_else(|| corrupt(format!("recommendation kind {kind}")))?,
                status: AdviceStatus::from_name(&status)
                    .ok_or_else(|| corrupt(format!("recommendation status {status}")))?,
                created_at: Timestamp(created),
                updated_at: Timestamp(updated),
            })
        })
        .collect()
}

pub fn encode_identity(identity: &Identity, version: u64) -> IdentityRow {
    let v = &identity.verification;
    let mut row = IdentityRow {
        name: identity.name.as_str().to_owned(),
        version: version as i64,
        created_at: identity.created_at.0,
        feedback_forwarding: identity.feedback_forwarding,
        signing_override: identity.signing_override,
        verification_status: identity.verification_status.name().to_owned(),
        dkim_origin: None,
        dkim_signing_enabled: None,
        dkim_status: None,
        dkim_tokens: None,
        dkim_selector: None,
        dkim_next_length: None,
        dkim_length_changed_at: None,
        dkim_downgraded_at: None,
        tags: encode_tags(&identity.tags),
        v_last_checked: v.last_checked.map(|t| t.0),
        v_last_success: v.last_success.map(|t| t.0),
        v_error: v.error.map(|e| e.name().to_owned()),
        v_soa: v.soa.as_ref().map(|s| {
            serde_json::json!([s.primary_name_server, s.admin_email, s.serial]).to_string()
        }),
        v_pending_since: v.pending_since.map(|t| t.0),
        v_failing_since: v.failing_since.map(|t| t.0),
        v_next_check_at: v.next_check_at.map(|t| t.0),
        v_attempts: i64::from(v.attempts),
        dkim_active: 0,
        dkim_staged: None,
        mail_from_domain: None,
        mail_from_behavior: identity.mx_failure.name().to_owned(),
        mail_from_status: None,
        mf_last_checked: None,
        mf_last_success: None,
        mf_error: None,
        mf_pending_since: None,
        mf_failing_since: None,
        mf_next_check_at: None,
        mf_attempts: 0,
        recommendations: encode_recommendations(&identity.recommendations.items),
        rec_next_check_at: identity.recommendations.next_check_at.map(|t| t.0),
        rec_attempts: i64::from(identity.recommendations.attempts),
        due_at: identity.next_check_at().map(|t| t.0),
        link_hash: identity.link.as_ref().map(|l| l.hash.as_str().to_owned()),
        link_sent_at: identity.link.as_ref().map(|l| l.sent_at.0),
        link_expires_at: identity.link.as_ref().map(|l| l.expires_at.0),
        link_success_url: identity.link.as_ref().and_then(|l| l.success_url.clone()),
        link_failure_url: identity.link.as_ref().and_then(|l| l.failure_url.clone()),
        dkim_revocations: "[]".into(),
    };
    if let Some(mf) = &identity.mail_from {
        let v = &mf.verification;
        row.mail_from_domain = Some(mf.domain.as_str().to_owned());
        row.mail_from_status = Some(mf.status.name().to_owned());
        row.mf_last_checked = v.last_checked.map(|t| t.0);
        row.mf_last_success = v.last_success.map(|t| t.0);
        row.mf_error = v.error.map(|e| e.name().to_owned());
        row.mf_pending_since = v.pending_since.map(|t| t.0);
        row.mf_failing_since = v.failing_since.map(|t| t.0);
        row.mf_next_check_at = v.next_check_at.map(|t| t.0);
        row.mf_attempts = i64::from(v.attempts);
    }
    if let Some(d) = &identity.dkim {
        row.dkim_active = d.keys.signing_slot() as i64;
        row.dkim_staged = d.keys.staged().map(|(s, _)| s as i64);
        row.dkim_signing_enabled = Some(d.signing_enabled);
        row.dkim_revocations = encode_revocations(&d.revocations);
        // The column predates the one status record: a domain's DKIM status is its
        // verification status, written to both so older readers see the same.
        row.dkim_status = Some(identity.verification_status.name().to_owned());
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
    let tags = decode_tags(&row.tags)?;
    let keys = keys
        .into_iter()
        .map(|k| {
            Ok((
                DkimKey {
                    selector: Selector::parse(&k.selector).map_err(corrupt)?,
                    bits: k.bits,
                    public_der: k.public_der,
                    sealed_private: k.sealed_private,
                    created_at: Timestamp(k.created_at),
                },
                k.retired_at.map(Timestamp),
            ))
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
            let keys = DkimKeys::from_stored(keys, active, staged).ok_or_else(|| {
                corrupt(format!("key slots: signing {active}, staged {staged:?}"))
            })?;
            Some(Dkim {
                signing_enabled: row.dkim_signing_enabled.unwrap_or(false),
                origin,
                keys,
                revocations: decode_revocations(&row.dkim_revocations)?,
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
    let mail_from = match row.mail_from_domain.as_deref() {
        None => None,
        Some(domain) => Some(MailFrom {
            domain: DomainName::parse(domain).map_err(corrupt)?,
            status: parse_status(row.mail_from_status.as_deref().unwrap_or("PENDING"))?,
            verification: Verification {
                last_checked: row.mf_last_checked.map(Timestamp),
                last_success: row.mf_last_success.map(Timestamp),
                error: row.mf_error.as_deref().map(parse_error).transpose()?,
                soa: None,
                pending_since: row.mf_pending_since.map(Timestamp),
                failing_since: row.mf_failing_since.map(Timestamp),
                next_check_at: row.mf_next_check_at.map(Timestamp),
                attempts: u32::try_from(row.mf_attempts).unwrap_or(u32::MAX),
            },
        }),
    };
    let recommendations = Recommendations {
        items: decode_recommendations(&row.recommendations)?,
        next_check_at: row.rec_next_check_at.map(Timestamp),
        attempts: u32::try_from(row.rec_attempts).unwrap_or(u32::MAX),
    };
    let mx_failure = MxFailure::from_name(&row.mail_from_behavior)
        .ok_or_else(|| corrupt(format!("BehaviorOnMxFailure {}", row.mail_from_behavior)))?;
    let link = match (row.link_hash, row.link_sent_at, row.link_expires_at) {
        (None, _, _) => None,
        (Some(hash), Some(sent), Some(expires)) => Some(VerificationLink {
            hash: LinkHash::parse(&hash).map_err(corrupt)?,
            sent_at: Timestamp(sent),
            expires_at: Timestamp(expires),
            success_url: row.link_success_url,
            failure_url: row.link_failure_url,
        }),
        _ => return Err(corrupt("a verification link without its times")),
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
        mail_from,
        mx_failure,
        recommendations,
        link,
    })
}

/// What `IdentitySql::upsert` binds for `identity` stored at `version`: `row::KEY_COLUMNS`,
/// then the row's own columns.
pub fn upsert_cells(identity: &Identity, version: u64) -> Vec<Cell> {
    let key = [identity.account.as_str(), identity.name.kind().name()];
    key.into_iter()
        .map(|v| Cell::Text(Some(v.to_owned())))
        .chain(encode_identity(identity, version).into_cells())
        .collect()
}

/// A template's stored columns, in the order both backends select them.
pub const TEMPLATE_COLUMNS: &str =
    "name, from_address, subject, content, success_url, failure_url, tags, created_at";

/// A template's row as both backends read it (`TEMPLATE_COLUMNS`, in order).
pub struct TemplateRow {
    pub name: String,
    pub from: String,
    pub subject: String,
    pub content: String,
    pub success_url: String,
    pub failure_url: String,
    pub tags: String,
    pub created_at: i64,
}

/// The tags of a template or an identity as stored: JSON `[key, value]` pairs.
pub fn encode_tags(tags: &[Tag]) -> String {
    let pairs: Vec<(&str, &str)> = tags.iter().map(|t| (t.key(), t.value())).collect();
    // Serialising a Vec of string pairs cannot fail.
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

fn decode_tags(text: &str) -> Result<Vec<Tag>, StoreError> {
    let pairs: Vec<(String, String)> = serde_json::from_str(text).map_err(corrupt)?;
    pairs
        .iter()
        .map(|(k, v)| Tag::parse(k, v).map_err(corrupt))
        .collect()
}

/// A template read back, re-validated through the core's parsers.
pub fn decode_template(
    account: &AccountId,
    r: TemplateRow,
) -> Result<VerificationTemplate, StoreError> {
    let url = |u: &str| RedirectUrl::parse(u).map_err(corrupt);
    Ok(VerificationTemplate {
        account: account.clone(),
        name: TemplateName::parse(&r.name).map_err(corrupt)?,
        content: TemplateContent::new(
            EmailAddress::parse(&r.from).map_err(corrupt)?,
            &r.subject,
            &r.content,
            url(&r.success_url)?,
            url(&r.failure_url)?,
        )
        .map_err(corrupt)?,
        tags: decode_tags(&r.tags)?,
        created_at: Timestamp(r.created_at),
    })
}

/// The publisher columns, in the order both backends select them.
pub const PUBLISHER_COLUMNS: &str = "account_id, domain, server, zone, key_name, algorithm, \
     sealed_secret, byodkim, state, version, created_at";

/// One `dns_publishers` row.
pub struct PublisherRow {
    pub account_id: String,
    pub domain: String,
    pub server: String,
    pub zone: String,
    pub key_name: String,
    pub algorithm: String,
    pub sealed_secret: Vec<u8>,
    pub byodkim: bool,
    pub state: String,
    pub version: i64,
    pub created_at: i64,
}

type RecordCells = (String, String, String, bool);

fn record_cells(r: &PublishedRecord) -> RecordCells {
    (r.name.clone(), r.rtype.clone(), r.value.clone(), r.dkim)
}

fn record_of((name, rtype, value, dkim): RecordCells) -> PublishedRecord {
    PublishedRecord {
        name,
        rtype,
        value,
        dkim,
    }
}

/// Everything a publisher's state holds, as one JSON document (it is read and written whole).
#[derive(serde::Serialize, serde::Deserialize)]
struct StateDoc {
    published: Vec<RecordCells>,
    retiring: Vec<(RecordCells, i64)>,
    conflicts: Vec<String>,
    last_attempt_at: Option<i64>,
    last_success_at: Option<i64>,
    last_error: Option<String>,
    failures: u32,
    retry_at: Option<i64>,
}

/// A publisher's state as stored.
pub fn encode_publish_state(s: &PublishState) -> String {
    let doc = StateDoc {
        published: s.published.iter().map(record_cells).collect(),
        retiring: s
            .retiring
            .iter()
            .map(|r| (record_cells(&r.record), r.remove_at.0))
            .collect(),
        conflicts: s.conflicts.clone(),
        last_attempt_at: s.last_attempt_at.map(|t| t.0),
        last_success_at: s.last_success_at.map(|t| t.0),
        last_error: s.last_error.clone(),
        failures: s.failures,
        retry_at: s.retry_at.map(|t| t.0),
    };
    // Plain data: serialising cannot fail.
    serde_json::to_string(&doc).unwrap_or_else(|_| "{}".into())
}

fn decode_publish_state(text: &str) -> Result<PublishState, StoreError> {
    let doc: StateDoc = serde_json::from_str(text).map_err(corrupt)?;
    Ok(PublishState {
        published: doc.published.into_iter().map(record_of).collect(),
        retiring: doc
            .retiring
            .into_iter()
            .map(|(r, at)| Retiring {
                record: record_of(r),
                remove_at: Timestamp(at),
            })
            .collect(),
        conflicts: doc.conflicts,
        last_attempt_at: doc.last_attempt_at.map(Timestamp),
        last_success_at: doc.last_success_at.map(Timestamp),
        last_error: doc.last_error,
        failures: doc.failures,
        retry_at: doc.retry_at.map(Timestamp),
    })
}

/// A publisher back from its row, re-validated.
pub fn decode_publisher(r: PublisherRow) -> Result<Publisher, StoreError> {
    Ok(Publisher {
        account: AccountId::parse(&r.account_id).map_err(corrupt)?,
        domain: DomainName::parse(&r.domain).map_err(corrupt)?,
        server: r.server,
        zone: DomainName::parse(&r.zone).map_err(corrupt)?,
        key_name: r.key_name,
        algorithm: r.algorithm,
        sealed_secret: r.sealed_secret,
        byodkim: r.byodkim,
        state: decode_publish_state(&r.state)?,
        version: u64::try_from(r.version).map_err(corrupt)?,
        created_at: Timestamp(r.created_at),
    })
}
