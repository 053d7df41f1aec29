//! Tagging operations on identity ARNs (`arn:aws:ses:<region>:<account>:identity/<name>`).

use super::identities::{tags_from_wire, tags_to_wire};
use super::{Ctx, Input, body, json, missing, required};
use crate::errors::{ApiError, about, at, invalid, not_found};
use crate::wire::{input as win, output as wout};
use sesame_core::model::{IdentityName, Tag};

/// The identity an ARN names, if it is an identity of the caller in this region. Another
/// account's or region's ARN is simply not found: tenants cannot probe each other.
pub(super) fn identity_of(ctx: &Ctx<'_>, arn: &str) -> Result<IdentityName, ApiError> {
    let member = "ResourceArn";
    if arn.is_empty() {
        return Err(invalid(member, "ResourceArn must not be empty"));
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return Err(invalid(member, format!("'{arn}' is not a valid ARN")));
    };
    if prefix != "arn" || partition.is_empty() || service != "ses" {
        return Err(invalid(
            member,
            format!("'{arn}' is not an SES resource ARN"),
        ));
    }
    let Some(name) = resource.strip_prefix("identity/") else {
        return Err(invalid(
            member,
            format!("'{arn}': Sesame supports tags on email identities (…:identity/<name>) only"),
        ));
    };
    let name = IdentityName::parse(name).map_err(at(member))?;
    if region != ctx.region || account != ctx.account.as_str() || partition != "aws" {
        return Err(not_found(format!("Resource {arn} does not exist.")));
    }
    Ok(name)
}

fn arn_param(input: &Input<'_>) -> Result<String, ApiError> {
    required(
        input
            .query
            .iter()
            .find(|(k, _)| k == "ResourceArn")
            .map(|(_, v)| v.clone()),
        "ResourceArn",
    )
}

pub(super) fn tag(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::TagResourceRequest = body(input)?;
    let name = identity_of(ctx, &required(req.resource_arn, "ResourceArn")?)?;
    let tags = tags_from_wire(Some(required(req.tags, "Tags")?))?;
    ctx.service
        .identities
        .tag_identity(ctx.account, &name, &tags)
        .map_err(about("Tags"))?;
    json(&wout::Empty {})
}

pub(super) fn untag(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let name = identity_of(ctx, &arn_param(input)?)?;
    let keys: Vec<String> = input
        .query
        .iter()
        .filter(|(k, _)| k == "TagKeys")
        .map(|(_, v)| Tag::parse_key(v).map_err(at("TagKeys")))
        .collect::<Result<_, _>>()?;
    if keys.is_empty() {
        return Err(missing("TagKeys"));
    }
    ctx.service
        .identities
        .untag_identity(ctx.account, &name, &keys)?;
    json(&wout::Empty {})
}

pub(super) fn list(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let name = identity_of(ctx, &arn_param(input)?)?;
    let tags = ctx.service.identities.identity_tags(ctx.account, &name)?;
    json(&wout::ListTagsForResourceResponse {
        tags: tags_to_wire(&tags),
    })
}
