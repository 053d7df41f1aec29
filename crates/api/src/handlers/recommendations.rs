//! ListRecommendations (SES's VDM recommendations): what the verifier found about each domain's
//! DKIM, SPF and DMARC, filtered and paged, each with a sentence that says what to publish.

use super::tags::identity_of;
use super::{Ctx, Input, bad_enum, body, json, open_page_token, seal_page_token};
use crate::errors::{ApiError, EdgeError, invalid};
use crate::wire::{input as win, output as wout};
use sesame_core::mail_from::{DMARC_RECOMMENDED, spf_record};
use sesame_core::model::{AdviceArea, AdviceImpact, AdviceKind, AdviceStatus};
use sesame_core::verification::{AdviceFilter, AdviceItem, Expect};

const DEFAULT_PAGE_SIZE: usize = 100;
/// The model's documentation: "at least 1, and can be no more than 100".
const MAX_PAGE_SIZE: i64 = 100;
const TOKEN_VERSION: &str = "sesame-recommendations-v1";
/// `ListRecommendationFilterValue`'s length limit.
const MAX_FILTER_VALUE: usize = 512;
/// The model's `RecommendationType` values; Sesame produces the first three.
const TYPES: &[&str] = &[
    "DKIM",
    "DMARC",
    "SPF",
    "BIMI",
    "COMPLAINT",
    "BOUNCE",
    "FEEDBACK_3P",
    "IP_LISTING",
];

/// The filter, whether it can match anything (a type Sesame never produces cannot), and its
/// canonical text (page tokens are bound to it).
fn parse_filter(
    ctx: &Ctx<'_>,
    raw: Option<std::collections::BTreeMap<String, String>>,
) -> Result<(AdviceFilter, bool, String), ApiError> {
    let raw = match raw {
        None => return Ok((AdviceFilter::default(), true, String::new())),
        Some(r) => r,
    };
    if raw.is_empty() || raw.len() > 2 {
        return Err(invalid(
            "Filter",
            format!(
                "1 validation error detected: Value at 'filter' failed to satisfy constraint: Member must have length between 1 and 2 (got {})",
                raw.len()
            ),
        ));
    }
    // The shape first, before any value is looked up. The model: one filter, or STATUS with IMPACT, or STATUS with TYPE.
    if raw.len() == 2
        && !(raw.contains_key("STATUS") && (raw.contains_key("IMPACT") || raw.contains_key("TYPE")))
    {
        let keys: Vec<&str> = raw.keys().map(String::as_str).collect();
        return Err(invalid(
            "Filter",
            format!(
                "Filter may combine STATUS with IMPACT or STATUS with TYPE only, not {}",
                keys.join(" and ")
            ),
        ));
    }
    let mut filter = AdviceFilter::default();
    let mut possible = true;
    let mut canonical = String::new();
    for (key, value) in &raw {
        if value.is_empty() || value.chars().count() > MAX_FILTER_VALUE {
            return Err(invalid(
                "Filter",
                format!(
                    "the value of filter {key} must be 1 to {MAX_FILTER_VALUE} characters long"
                ),
            ));
        }
        let member = match key.as_str() {
            "TYPE" => "Filter.TYPE",
            "IMPACT" => "Filter.IMPACT",
            "STATUS" => "Filter.STATUS",
            "RESOURCE_ARN" => "Filter.RESOURCE_ARN",
            other => {
                return Err(bad_enum(
                    "Filter",
                    other,
                    &["TYPE", "IMPACT", "STATUS", "RESOURCE_ARN"],
                ));
            }
        };
        match key.as_str() {
            "TYPE" => match AdviceArea::from_name(value) {
                Some(a) => filter.area = Some(a),
                None if TYPES.contains(&value.as_str()) => possible = false,
                None => return Err(bad_enum(member, value, TYPES)),
            },
            "IMPACT" => {
                filter.impact = Some(
                    AdviceImpact::from_name(value)
                        .ok_or_else(|| bad_enum(member, value, AdviceImpact::NAMES))?,
                )
            }
            "STATUS" => {
                filter.status = Some(
                    AdviceStatus::from_name(value)
                        .ok_or_else(|| bad_enum(member, value, AdviceStatus::NAMES))?,
                )
            }
            _ => filter.identity = Some(identity_of(ctx, value)?),
        }
        canonical.push_str(&format!("{key}={value}\n"));
    }
    Ok((filter, possible, canonical))
}

/// What a recommendation says, with the record that fixes it where one does.
fn description(item: &AdviceItem) -> String {
    let domain = item.identity.as_str();
    let mail_from = item.mail_from.as_deref().unwrap_or("the MAIL FROM domain");
    let publish = |what: String| match &item.record {
        Some(r) => format!("Publish {what} at {}.", r.name),
        None => String::new(),
    };
    let spf_value = match item.record.as_ref().map(|r| &r.expect) {
        Some(Expect::Spf { include }) => spf_record(include),
        _ => String::new(),
    };
    let mx_value = match item.record.as_ref().map(|r| &r.expect) {
        Some(Expect::Mx { exchange }) => format!("MX 10 {exchange}"),
        _ => String::new(),
    };
    match item.advice.kind {
        AdviceKind::DkimFailed => format!(
            "DKIM verification of {domain} FAILED, so its mail is not DKIM-signed and cannot pass DMARC through DKIM. Publish the DKIM records (sesame dns-records, or GetEmailIdentity's DkimAttributes) and set DKIM up again to restart verification."
        ),
        AdviceKind::DkimWeakKey => format!(
            "{domain} signs with a 1024-bit DKIM key, which receivers increasingly treat as weak. Switch to RSA_2048_BIT with PutEmailIdentityDkimSigningAttributes (NextSigningKeyLength)."
        ),
        AdviceKind::MailFromMissing => format!(
            "{domain} has no custom MAIL FROM domain, so SPF passes only for Sesame's own envelope domain and does not align with {domain} under DMARC. Set one with PutEmailIdentityMailFromAttributes (e.g. bounce.{domain}) and publish its MX and SPF records."
        ),
        AdviceKind::MailFromMx => format!(
            "The MX record of the MAIL FROM domain {mail_from} is missing or names another host, so the domain is not verified and mail falls back to the default envelope (or is rejected). {}",
            publish(mx_value)
        ),
        AdviceKind::SpfMissing => format!(
            "The MAIL FROM domain {mail_from} has no SPF record, so receivers cannot check SPF for {domain}'s mail. {}",
            publish(format!("TXT \"{spf_value}\""))
        ),
        AdviceKind::SpfWrong => format!(
            "The SPF record of the MAIL FROM domain {mail_from} does not authorise Sesame's sending addresses, so SPF fails for {domain}'s mail. {}",
            publish(format!("TXT \"{spf_value}\" (or add its include: to the record)"))
        ),
        AdviceKind::SpfMultiple => format!(
            "The MAIL FROM domain {mail_from} has more than one SPF (v=spf1) record: every receiver's SPF check ends in a permanent error. Merge them into one record, e.g. TXT \"{spf_value}\"."
        ),
        AdviceKind::DmarcMissing => format!(
            "{domain} has no DMARC record, so receivers apply no policy to mail that fails authentication and send no reports. {}",
            publish(format!("TXT \"{DMARC_RECOMMENDED}\""))
        ),
        AdviceKind::DmarcUnparsable => format!(
            "The DMARC record of {domain} does not parse (v=DMARC1 must come first and p= right after it), so receivers ignore it. {}",
            publish(format!("TXT \"{DMARC_RECOMMENDED}\""))
        ),
        AdviceKind::DmarcPolicyNone => format!(
            "The DMARC record of {domain} has had p=none for over 30 days: failures are only reported, never acted on. Once the reports show your mail aligns, move to p=quarantine or p=reject."
        ),
    }
    .trim_end()
    .to_owned()
}

pub(super) fn list(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::ListRecommendationsRequest = body(input)?;
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
    let (filter, possible, canonical) = parse_filter(ctx, req.filter)?;
    let bound = format!("{TOKEN_VERSION}\n{}\n{canonical}\n", ctx.account.as_str());
    let after = match open_page_token(ctx, req.next_token.as_deref(), &bound)? {
        None => None,
        Some(rest) => {
            let (name, kind) = rest.split_once('\n').ok_or(EdgeError::InvalidNextToken)?;
            let kind = AdviceKind::from_name(kind).ok_or(EdgeError::InvalidNextToken)?;
            Some((name.to_owned(), kind))
        }
    };
    let page = if possible {
        ctx.service.checks.list_recommendations(
            ctx.account,
            &filter,
            after.as_ref().map(|(n, k)| (n.as_str(), *k)),
            page_size,
        )?
    } else {
        sesame_core::verification::AdvicePage {
            items: vec![],
            continue_after: None,
        }
    };
    let last = page
        .continue_after
        .map(|(name, kind)| format!("{name}\n{}", kind.name()));
    let next_token = seal_page_token(ctx, &bound, last)?;
    let epoch = |t: sesame_core::model::Timestamp| t.0 as f64 / 1000.0;
    json(&wout::ListRecommendationsResponse {
        recommendations: page
            .items
            .iter()
            .map(|i| wout::Recommendation {
                resource_arn: format!(
                    "arn:aws:ses:{}:{}:identity/{}",
                    ctx.region,
                    ctx.account.as_str(),
                    i.identity.as_str()
                ),
                r#type: i.advice.kind.area().name(),
                description: description(i),
                status: i.advice.status.name(),
                created_timestamp: epoch(i.advice.created_at),
                last_updated_timestamp: epoch(i.advice.updated_at),
                impact: i.advice.kind.impact().name(),
            })
            .collect(),
        next_token,
    })
}
