//! The custom verification email template operations: wire → validated template → the
//! `Templates` use case → wire.

use super::identities::{tags_from_wire, tags_to_wire};
use super::{Ctx, Input, body, json, open_page_token, required, seal_page_token};
use crate::errors::{ApiError, EdgeError, at, invalid};
use crate::wire::{input as win, output as wout};
use sesame_core::model::{
    EmailAddress, RedirectUrl, TemplateContent, TemplateName, VerificationTemplate,
};

/// SES lists at most 50 a page (its quota is 50).
const MAX_PAGE_SIZE: i64 = 50;
const TOKEN_VERSION: &str = "sesame-templates-v1";

fn name_label(input: &Input<'_>) -> Result<TemplateName, ApiError> {
    let raw = input.route.label("TemplateName").unwrap_or_default();
    TemplateName::parse(raw).map_err(at("TemplateName"))
}

/// Every member a Create or an Update must carry, checked in the model's order.
fn content(req: &win::CustomVerificationEmailTemplateRequest) -> Result<TemplateContent, ApiError> {
    let from = required(req.from_email_address.as_deref(), "FromEmailAddress")?;
    let from = EmailAddress::parse(from).map_err(at("FromEmailAddress"))?;
    let subject = required(req.template_subject.as_deref(), "TemplateSubject")?;
    let text = required(req.template_content.as_deref(), "TemplateContent")?;
    let success = required(
        req.success_redirection_url.as_deref(),
        "SuccessRedirectionURL",
    )?;
    let success = RedirectUrl::parse(success).map_err(at("SuccessRedirectionURL"))?;
    let failure = required(
        req.failure_redirection_url.as_deref(),
        "FailureRedirectionURL",
    )?;
    let failure = RedirectUrl::parse(failure).map_err(at("FailureRedirectionURL"))?;
    TemplateContent::new(from, subject, text, success, failure).map_err(|i| {
        let member = match i {
            sesame_core::error::Invalid::TemplateSubject => "TemplateSubject",
            _ => "TemplateContent",
        };
        at(member)(i)
    })
}

pub(super) fn create(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::CustomVerificationEmailTemplateRequest = body(input)?;
    let name = required(req.template_name.as_deref(), "TemplateName")?;
    let name = TemplateName::parse(name).map_err(at("TemplateName"))?;
    let content = content(&req)?;
    let tags = tags_from_wire(req.tags)?;
    ctx.service
        .templates
        .create(ctx.account, name, content, tags)?;
    json(&wout::Empty {})
}

pub(super) fn get(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let name = name_label(input)?;
    let t = ctx.service.templates.get(ctx.account, &name)?;
    json(&wout::GetCustomVerificationEmailTemplateResponse {
        template_name: t.name.as_str().to_owned(),
        from_email_address: t.content.from.as_str().to_owned(),
        template_subject: t.content.subject.clone(),
        template_content: t.content.content.clone(),
        tags: tags_to_wire(&t.tags),
        success_redirection_url: t.content.success_url.as_str().to_owned(),
        failure_redirection_url: t.content.failure_url.as_str().to_owned(),
    })
}

pub(super) fn update(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::CustomVerificationEmailTemplateRequest = body(input)?;
    let name = name_label(input)?;
    if req.tags.is_some() {
        return Err(EdgeError::Serialization(
            "Tags is not a member of UpdateCustomVerificationEmailTemplate".into(),
        )
        .into());
    }
    let content = content(&req)?;
    ctx.service.templates.update(ctx.account, name, content)?;
    json(&wout::Empty {})
}

/// SendCustomVerificationEmail: the template's mail with a fresh link to the address, whose
/// identity is created if the account has none.
pub(super) fn send(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::SendCustomVerificationEmailRequest = body(input)?;
    let address = required(req.email_address.as_deref(), "EmailAddress")?;
    let address = EmailAddress::parse(address).map_err(at("EmailAddress"))?;
    let name = required(req.template_name.as_deref(), "TemplateName")?;
    let name = TemplateName::parse(name).map_err(at("TemplateName"))?;
    let message_id = ctx.service.addresses.send_custom(
        ctx.account,
        &address,
        &name,
        req.configuration_set_name,
    )?;
    json(&wout::SendEmailResponse { message_id })
}

pub(super) fn delete(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let name = name_label(input)?;
    ctx.service.templates.delete(ctx.account, &name)?;
    json(&wout::Empty {})
}

fn metadata(t: &VerificationTemplate) -> wout::CustomVerificationEmailTemplateMetadata {
    wout::CustomVerificationEmailTemplateMetadata {
        template_name: t.name.as_str().to_owned(),
        from_email_address: t.content.from.as_str().to_owned(),
        template_subject: t.content.subject.clone(),
        success_redirection_url: t.content.success_url.as_str().to_owned(),
        failure_redirection_url: t.content.failure_url.as_str().to_owned(),
    }
}

pub(super) fn list(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let mut page_size = MAX_PAGE_SIZE as usize;
    let mut token = None;
    for (k, v) in input.query {
        match k.as_str() {
            "PageSize" => {
                let n: i64 = v.parse().map_err(|_| {
                    invalid("PageSize", format!("PageSize '{v}' is not an integer"))
                })?;
                if !(1..=MAX_PAGE_SIZE).contains(&n) {
                    return Err(invalid(
                        "PageSize",
                        format!("PageSize must be between 1 and {MAX_PAGE_SIZE}; got {n}"),
                    ));
                }
                page_size = n as usize;
            }
            "NextToken" => token = Some(v.clone()),
            _ => {}
        }
    }
    let bound = format!("{TOKEN_VERSION}\n{}\n", ctx.account.as_str());
    let after = open_page_token(ctx, token.as_deref(), &bound)?;
    let page = ctx
        .service
        .templates
        .list(ctx.account, after.as_deref(), page_size)?;
    let next_token = seal_page_token(ctx, &bound, page.continue_after)?;
    json(&wout::ListCustomVerificationEmailTemplatesResponse {
        custom_verification_email_templates: page.items.iter().map(metadata).collect(),
        next_token,
    })
}
