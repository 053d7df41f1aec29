//! Identity operations: CreateEmailIdentity, GetEmailIdentity, ListEmailIdentities,
//! DeleteEmailIdentity and the three Put…Attributes operations.

use super::{
    Ctx, Input, bad_enum, body, identity_label, json, open_page_token, parse_key_length,
    parse_status, required, seal_page_token,
};
use crate::errors::{ApiError, about, at, invalid};
use crate::wire::{input as win, output as wout};
use sesame_core::Error;
use sesame_core::dkim::DkimSetup;
use sesame_core::error::Invalid;
use sesame_core::identities::{CreateIdentity, Page};
use sesame_core::model::{
    Dkim, DkimOrigin, DkimStatus, IdentityFilter, IdentityName, IdentityType, KeyLength, MxFailure,
    Selector, Tag, Timestamp, Verification, VerificationError,
};
use sesame_core::ports::PrivateKeyInput;

/// ListEmailIdentities' page size when the request names none (moto's; AWS documents none).
const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest PageSize (ListEmailIdentities documentation).
const MAX_PAGE_SIZE: i64 = 1000;
/// `PrivateKey` shape: `max: 20480`.
pub const PRIVATE_KEY_MAX: usize = 20480;

pub(super) fn tags_from_wire(tags: Option<Vec<win::Tag>>) -> Result<Vec<Tag>, ApiError> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| {
            let key = required(t.key, "Tag.Key")?;
            let value = required(t.value, "Tag.Value")?;
            Tag::parse(&key, &value).map_err(|i| at(tag_member(&i))(i))
        })
        .collect()
}

/// The member of a tag a refusal is about.
pub(super) fn tag_member(i: &Invalid) -> &'static str {
    match i {
        Invalid::TagValueLength | Invalid::TagValueChars(_) => "Tag.Value",
        _ => "Tag.Key",
    }
}

pub(super) fn tags_to_wire(tags: &[Tag]) -> Vec<wout::Tag> {
    tags.iter()
        .map(|t| wout::Tag {
            key: t.key().to_owned(),
            value: t.value().to_owned(),
        })
        .collect()
}

fn epoch(t: Timestamp) -> f64 {
    t.0 as f64 / 1000.0
}

/// Checks the `PrivateKey` shape (1..20480 characters of `^[a-zA-Z0-9+\/]+={0,2}$`) and
/// decodes it; the messages say what to fix, since PEM input is the common mistake.
fn private_key(member: &'static str, text: &str) -> Result<PrivateKeyInput, ApiError> {
    if text.contains("-----BEGIN") {
        return Err(invalid(
            member,
            "the private key must be the base64 DER body only: remove the -----BEGIN/END----- \
             lines and all line breaks",
        ));
    }
    if text.is_empty() || text.len() > PRIVATE_KEY_MAX {
        return Err(invalid(
            member,
            format!("the private key must have 1 to {PRIVATE_KEY_MAX} characters"),
        ));
    }
    let body = text.trim_end_matches('=');
    let pattern_ok = text.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if !pattern_ok {
        return Err(invalid(
            member,
            "the private key must be base64 (letters, digits, '+', '/', up to two '=' at the \
             end) without line breaks or spaces",
        ));
    }
    data_encoding::BASE64_NOPAD
        .decode(body.as_bytes())
        .map(PrivateKeyInput)
        .map_err(|_| invalid(member, "the private key is not valid base64"))
}

pub(super) fn is_deed_origin(origin: &str) -> bool {
    origin.strip_prefix("AWS_SES_").is_some_and(|r| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

fn unknown_origin(member: &'static str, value: &str) -> ApiError {
    bad_enum(member, value, &["AWS_SES", "EXTERNAL", "AWS_SES_<REGION>"])
}

/// The request members of a `DkimSigningAttributes`: CreateEmailIdentity calls it
/// `DkimSigningAttributes`, PutEmailIdentityDkimSigningAttributes `SigningAttributes`.
struct Members {
    selector: &'static str,
    private_key: &'static str,
    length: &'static str,
}

const AT_CREATE: Members = Members {
    selector: "DkimSigningAttributes.DomainSigningSelector",
    private_key: "DkimSigningAttributes.DomainSigningPrivateKey",
    length: "DkimSigningAttributes.NextSigningKeyLength",
};

const AT_PUT: Members = Members {
    selector: "SigningAttributes.DomainSigningSelector",
    private_key: "SigningAttributes.DomainSigningPrivateKey",
    length: "SigningAttributes.NextSigningKeyLength",
};

/// BYODKIM selector and key from a `DkimSigningAttributes`, if any is given.
fn external_setup(
    attrs: &mut win::DkimSigningAttributes,
    m: &Members,
) -> Result<Option<DkimSetup>, ApiError> {
    match (
        attrs.domain_signing_selector.take(),
        attrs.domain_signing_private_key.take(),
    ) {
        (None, None) => Ok(None),
        (Some(sel), Some(key)) => {
            if attrs.next_signing_key_length.is_some() {
                return Err(invalid(
                    m.length,
                    "NextSigningKeyLength applies to Easy DKIM only; do not send it with your own \
                     selector and private key",
                ));
            }
            Ok(Some(DkimSetup::External {
                selector: Selector::parse(&sel).map_err(at(m.selector))?,
                private_key: private_key(m.private_key, &key)?,
            }))
        }
        (Some(_), None) => Err(invalid(
            m.private_key,
            "Bring Your Own DKIM needs both DomainSigningSelector and DomainSigningPrivateKey; \
             the private key is missing",
        )),
        (None, Some(_)) => Err(invalid(
            m.selector,
            "Bring Your Own DKIM needs both DomainSigningSelector and DomainSigningPrivateKey; \
             the selector is missing",
        )),
    }
}

fn easy_length(
    attrs: &win::DkimSigningAttributes,
    m: &Members,
) -> Result<Option<KeyLength>, ApiError> {
    attrs
        .next_signing_key_length
        .as_deref()
        .map(|l| parse_key_length(m.length, l))
        .transpose()
}

/// The `DkimAttributes` of a DKIM set-up, as GetEmailIdentity and CreateEmailIdentity show it.
fn dkim_to_wire(dkim: &Dkim, status: DkimStatus, zone: &str) -> wout::DkimAttributes {
    let mut out = wout::DkimAttributes {
        signing_enabled: Some(dkim.signing_enabled),
        status: Some(status.name()),
        ..Default::default()
    };
    match &dkim.origin {
        DkimOrigin::Easy { tokens, lengths } => {
            out.tokens = Some(tokens.iter().map(|t| t.as_str().to_owned()).collect());
            out.signing_hosted_zone = Some(zone.to_owned());
            out.signing_attributes_origin = Some("AWS_SES");
            out.next_signing_key_length = Some(lengths.next_length.name());
            out.current_signing_key_length = dkim.current_length().map(KeyLength::name);
            out.last_key_generation_timestamp = Some(epoch(dkim.keys.last_generation()));
        }
        DkimOrigin::External { .. } => {
            // The BYODKIM guide's GetEmailIdentity example shows an empty token list
            // (SES-SEMANTICS.md section 7, question 2); key lengths are Easy DKIM only.
            out.tokens = Some(vec![]);
            out.signing_attributes_origin = Some("EXTERNAL");
        }
    }
    out
}

pub(super) fn create(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::CreateEmailIdentityRequest = body(input)?;
    let name = IdentityName::parse(&required(req.email_identity, "EmailIdentity")?)
        .map_err(at("EmailIdentity"))?;
    let tags = tags_from_wire(req.tags)?;
    let dkim = match req.dkim_signing_attributes {
        None => None,
        Some(mut attrs) => {
            if let Some(origin) = attrs.domain_signing_attributes_origin.as_deref() {
                let member = "DkimSigningAttributes.DomainSigningAttributesOrigin";
                return Err(
                    if is_deed_origin(origin) || origin == "AWS_SES" || origin == "EXTERNAL" {
                        invalid(
                            member,
                            "Deterministic Easy DKIM replication (DomainSigningAttributesOrigin) is \
                         not supported by Sesame",
                        )
                    } else {
                        unknown_origin(member, origin)
                    },
                );
            }
            match external_setup(&mut attrs, &AT_CREATE)? {
                Some(ext) => Some(ext),
                None => Some(DkimSetup::Easy {
                    length: easy_length(&attrs, &AT_CREATE)?,
                }),
            }
        }
    };
    let identity = ctx.service.identities.create_identity(
        ctx.account,
        CreateIdentity {
            name,
            tags,
            dkim,
            configuration_set: req.configuration_set_name,
        },
    )?;
    let zone = &ctx.service.config.dkim_zone;
    json(&wout::CreateEmailIdentityResponse {
        identity_type: identity.name.kind().name(),
        verified_for_sending_status: identity.verified_for_sending(),
        dkim_attributes: identity
            .dkim
            .as_ref()
            .map(|d| dkim_to_wire(d, identity.verification_status, zone)),
    })
}

pub(super) fn get(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let name = identity_label(input)?;
    let view = ctx.service.identities.get_identity(ctx.account, &name)?;
    let zone = &ctx.service.config.dkim_zone;
    let id = &view.identity;
    let dkim_attributes = match (&id.dkim, &view.inherited_dkim) {
        (Some(d), _) => dkim_to_wire(d, id.verification_status, zone),
        (None, Some(inherited)) => dkim_to_wire(&inherited.dkim, inherited.status, zone),
        // An address without a domain identity: what SES shows for it (SES-SEMANTICS.md 3.2).
        (None, None) => wout::DkimAttributes {
            signing_enabled: Some(false),
            status: Some("NOT_STARTED"),
            signing_attributes_origin: Some("AWS_SES"),
            next_signing_key_length: Some("RSA_1024_BIT"),
            ..Default::default()
        },
    };
    json(&wout::GetEmailIdentityResponse {
        identity_type: id.name.kind().name(),
        feedback_forwarding_status: id.feedback_forwarding,
        verified_for_sending_status: id.verified_for_sending(),
        dkim_attributes,
        mail_from_attributes: wout::MailFromAttributes {
            mail_from_domain: id.mail_from.as_ref().map(|m| m.domain.as_str().to_owned()),
            mail_from_domain_status: id.mail_from.as_ref().map(|m| m.status.name()),
            behavior_on_mx_failure: id.mx_failure.name(),
        },
        policies: Default::default(),
        tags: tags_to_wire(&id.tags),
        verification_status: id.verification_status.name(),
        verification_info: {
            let mut info = verification_to_wire(&id.verification);
            // A DNS publisher that could not update the customer's zone: the records may be
            // missing because their DNS server refused us, which the verifier's own finding
            // (HOST_NOT_FOUND, say) would not tell. The reason is in `sesame dns-publisher
            // show` and the console; the status stays the verifier's.
            if view
                .publisher
                .as_ref()
                .is_some_and(|p| p.state.last_error.is_some())
            {
                info.error_type = Some(VerificationError::DnsServerError.name());
            }
            info
        },
    })
}

fn verification_to_wire(v: &Verification) -> wout::VerificationInfo {
    wout::VerificationInfo {
        last_checked_timestamp: v.last_checked.map(epoch),
        last_success_timestamp: v.last_success.map(epoch),
        error_type: v.error.map(|e| e.name()),
        soa_record: v.soa.as_ref().map(|s| wout::SoaRecord {
            primary_name_server: s.primary_name_server.clone(),
            admin_email: s.admin_email.clone(),
            serial_number: s.serial,
        }),
    }
}

/// A filter, canonicalised so a page token can be bound to it.
fn parse_filter(
    raw: Option<std::collections::BTreeMap<String, String>>,
) -> Result<(IdentityFilter, bool, String), ApiError> {
    let mut filter = IdentityFilter::default();
    let mut matches_nothing = false;
    let mut canonical = String::new();
    for (key, value) in raw.unwrap_or_default() {
        if value.is_empty() {
            return Err(invalid(
                "Filter",
                format!("the value of filter {key} must not be empty"),
            ));
        }
        match key.as_str() {
            "IDENTITY_NAME_CONTAINS" => filter.name_contains = Some(value.clone()),
            "IDENTITY_TYPE" => match IdentityType::from_name(&value) {
                Some(t) => filter.identity_type = Some(t),
                // A valid type that Sesame (like SES) never creates.
                None if value == "MANAGED_DOMAIN" => matches_nothing = true,
                None => {
                    let other = value.as_str();
                    return Err(bad_enum(
                        "Filter.IDENTITY_TYPE",
                        other,
                        &["EMAIL_ADDRESS", "DOMAIN", "MANAGED_DOMAIN"],
                    ));
                }
            },
            "VERIFICATION_STATUS" => {
                filter.verification_status =
                    Some(parse_status("Filter.VERIFICATION_STATUS", &value)?)
            }
            other => {
                return Err(bad_enum(
                    "Filter",
                    other,
                    &[
                        "IDENTITY_NAME_CONTAINS",
                        "IDENTITY_TYPE",
                        "VERIFICATION_STATUS",
                    ],
                ));
            }
        }
        canonical.push_str(&format!("{key}={value}\u{1f}"));
    }
    Ok((filter, matches_nothing, canonical))
}

const TOKEN_VERSION: &str = "sesame-page-v1";

pub(super) fn list(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::ListEmailIdentitiesRequest =
        if input.route.labels.is_empty() && !input.query.is_empty() && input.body.is_empty() {
            // The legacy GET form carries NextToken and PageSize in the query string.
            let mut r = win::ListEmailIdentitiesRequest::default();
            for (k, v) in input.query {
                match k.as_str() {
                    "NextToken" => r.next_token = Some(v.clone()),
                    "PageSize" => {
                        r.page_size = Some(v.parse().map_err(|_| {
                            invalid("PageSize", format!("PageSize '{v}' is not an integer"))
                        })?)
                    }
                    _ => {}
                }
            }
            r
        } else {
            body(input)?
        };
    let page_size = match req.page_size {
        None => DEFAULT_PAGE_SIZE,
        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n as usize,
        Some(n) => {
            return Err(invalid(
                "PageSize",
                format!("PageSize must be between 1 and {MAX_PAGE_SIZE}; got {n}"),
            ));
        }
    };
    let (filter, matches_nothing, canonical) = parse_filter(req.filter)?;
    let bound = format!("{TOKEN_VERSION}\n{}\n{canonical}\n", ctx.account.as_str());
    let after = open_page_token(ctx, req.next_token.as_deref(), &bound)?;
    let page = if matches_nothing {
        Page {
            items: vec![],
            continue_after: None,
        }
    } else {
        ctx.service
            .identities
            .list_identities(ctx.account, &filter, after.as_deref(), page_size)?
    };
    let next_token = seal_page_token(ctx, &bound, page.continue_after)?;
    json(&wout::ListEmailIdentitiesResponse {
        email_identities: page
            .items
            .iter()
            .map(|i| wout::IdentityInfo {
                identity_type: i.name.kind().name(),
                identity_name: i.name.as_str().to_owned(),
                sending_enabled: i.verification_status == DkimStatus::Success,
                verification_status: i.verification_status.name(),
            })
            .collect(),
        next_token,
    })
}

pub(super) fn delete(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let name = identity_label(input)?;
    ctx.service.identities.delete_identity(ctx.account, &name)?;
    json(&wout::Empty {})
}

pub(super) fn put_dkim(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::PutEmailIdentityDkimAttributesRequest = body(input)?;
    let name = identity_label(input)?;
    // Absent means false: the member is a plain boolean in the model.
    let enabled = req.signing_enabled.unwrap_or(false);
    ctx.service
        .dkim
        .put_dkim_attributes(ctx.account, &name, enabled)
        .map_err(about("EmailIdentity"))?;
    json(&wout::Empty {})
}

pub(super) fn put_dkim_signing(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::PutEmailIdentityDkimSigningAttributesRequest = body(input)?;
    let name = identity_label(input)?;
    let member = "SigningAttributesOrigin";
    let origin = required(req.signing_attributes_origin, member)?;
    let mut attrs = req
        .signing_attributes
        .unwrap_or(win::DkimSigningAttributes {
            domain_signing_selector: None,
            domain_signing_private_key: None,
            next_signing_key_length: None,
            domain_signing_attributes_origin: None,
        });
    if attrs.domain_signing_attributes_origin.is_some() {
        return Err(invalid(
            "SigningAttributes.DomainSigningAttributesOrigin",
            "DomainSigningAttributesOrigin is not allowed in PutEmailIdentityDkimSigningAttributes",
        ));
    }
    let setup = match origin.as_str() {
        "AWS_SES" => {
            if attrs.domain_signing_selector.is_some() || attrs.domain_signing_private_key.is_some()
            {
                return Err(invalid(
                    "SigningAttributes",
                    "with SigningAttributesOrigin AWS_SES (Easy DKIM) Sesame makes the keys; do \
                     not send DomainSigningSelector or DomainSigningPrivateKey",
                ));
            }
            DkimSetup::Easy {
                length: easy_length(&attrs, &AT_PUT)?,
            }
        }
        "EXTERNAL" => external_setup(&mut attrs, &AT_PUT)?.ok_or_else(|| {
            invalid(
                "SigningAttributes",
                "SigningAttributesOrigin EXTERNAL needs SigningAttributes with \
                 DomainSigningSelector and DomainSigningPrivateKey",
            )
        })?,
        other if is_deed_origin(other) => {
            return Err(invalid(
                member,
                "only AWS_SES or EXTERNAL can be set with PutEmailIdentityDkimSigningAttributes",
            ));
        }
        other => return Err(unknown_origin(member, other)),
    };
    let identity = ctx
        .service
        .dkim
        .put_dkim_signing_attributes(ctx.account, &name, setup)
        .map_err(about("SigningAttributes"))?;
    let dkim = identity
        .dkim
        .as_ref()
        .ok_or_else(|| Error::Internal("a domain identity without DKIM".into()))?;
    let (tokens, zone) = match &dkim.origin {
        DkimOrigin::Easy { tokens, .. } => (
            tokens.iter().map(|t| t.as_str().to_owned()).collect(),
            Some(ctx.service.config.dkim_zone.clone()),
        ),
        DkimOrigin::External { selector } => (vec![selector.as_str().to_owned()], None),
    };
    json(&wout::PutEmailIdentityDkimSigningAttributesResponse {
        dkim_status: identity.verification_status.name(),
        dkim_tokens: tokens,
        signing_hosted_zone: zone,
    })
}

pub(super) fn put_feedback(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::PutEmailIdentityFeedbackAttributesRequest = body(input)?;
    let name = identity_label(input)?;
    let enabled = req.email_forwarding_enabled.unwrap_or(false);
    ctx.service
        .identities
        .put_feedback_attributes(ctx.account, &name, enabled)?;
    json(&wout::Empty {})
}

pub(super) fn put_mail_from(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::PutEmailIdentityMailFromAttributesRequest = body(input)?;
    let name = identity_label(input)?;
    let member = "BehaviorOnMxFailure";
    let behavior = match req.behavior_on_mx_failure.as_deref() {
        None => MxFailure::UseDefaultValue,
        Some(b) => MxFailure::from_name(b).ok_or_else(|| bad_enum(member, b, MxFailure::NAMES))?,
    };
    ctx.service
        .identities
        .put_mail_from_attributes(
            ctx.account,
            &name,
            req.mail_from_domain.as_deref().unwrap_or(""),
            behavior,
        )
        .map_err(about("MailFromDomain"))?;
    json(&wout::Empty {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_text_checks() {
        let member = AT_PUT.private_key;
        let reason = |t: &str| match private_key(member, t) {
            Err(e) => {
                assert_eq!(e.member, Some(member));
                e.message
            }
            Ok(_) => panic!("{t} accepted"),
        };
        assert!(
            reason("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----")
                .contains("BEGIN/END")
        );
        assert!(reason("abc def").contains("base64"));
        assert!(reason("abc===").contains("base64"));
        assert!(reason("").contains("1 to"));
        assert!(reason(&"A".repeat(PRIVATE_KEY_MAX + 4)).contains("1 to"));
        assert_eq!(private_key(member, "AAEC").unwrap().0, vec![0, 1, 2]);
        assert_eq!(private_key(member, "AAE=").unwrap().0, vec![0, 1]);
        assert_eq!(private_key(member, "AAE").unwrap().0, vec![0, 1]);
    }

    #[test]
    fn deed_origins() {
        assert!(is_deed_origin("AWS_SES_EU_WEST_1"));
        assert!(!is_deed_origin("AWS_SES"));
        assert!(!is_deed_origin("AWS_SES_"));
        assert!(!is_deed_origin("aws_ses_eu"));
    }
}
