//! SendEmail: the request is validated member by member and becomes the core's `Draft`
//! (`Simple` parts or a `Raw` whole message); the core makes the message, decides whether the
//! sender may send and with which key it is signed, and delivers it. `Template` content,
//! attachments, contact lists, configuration sets and cross-account sending are not supported
//! and say so.

use super::{Ctx, Input, body, json, missing, required};
use crate::errors::{ApiError, at, invalid};
use crate::wire::{input as win, output as wout};
use sesame_core::Error;
use sesame_core::error::Missing;
use sesame_core::model::{Destination, EmailAddress, Mailbox, SimpleMessage};
use sesame_core::sending::{Content, Draft, RawMessage};

/// SES v2's message size limit.
pub const MAX_MESSAGE_BYTES: usize = 40 * 1024 * 1024;
/// `MessageHeaderList` allows at most 15 custom headers.
const MAX_HEADERS: usize = 15;

/// The headers Sesame writes itself; a custom header may not replace them.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "reply-to",
    "dkim-signature",
    "return-path",
    "sender",
];

fn parse_address(member: &'static str, s: &str) -> Result<EmailAddress, ApiError> {
    mailbox(member, s).map(|m| m.address)
}

fn mailbox(member: &'static str, s: &str) -> Result<Mailbox, ApiError> {
    Mailbox::parse(s).map_err(at(member))
}

/// Each of `list` as a mailbox; `member` names the list in a refusal.
fn mailboxes(member: &'static str, list: Vec<String>) -> Result<Vec<Mailbox>, ApiError> {
    list.iter().map(|a| mailbox(member, a)).collect()
}

fn unsupported(member: &'static str, what: &str) -> ApiError {
    invalid(member, format!("{what} is not supported by Sesame"))
}

fn utf8_charset(member: &'static str, c: &Option<win::Content>) -> Result<(), ApiError> {
    let charset = c
        .as_ref()
        .and_then(|c| c.charset.as_deref())
        .unwrap_or("UTF-8");
    if ["utf-8", "utf8", "us-ascii"].contains(&charset.to_ascii_lowercase().as_str()) {
        Ok(())
    } else {
        Err(invalid(
            member,
            format!("Charset {charset} is not supported; Sesame writes UTF-8"),
        ))
    }
}

fn header_ok(name: &str, value: &str) -> Result<(), ApiError> {
    let member = "Content.Simple.Headers";
    if name.is_empty()
        || name.len() > 126
        || !name
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b':')
    {
        return Err(invalid(
            member,
            format!("'{name}' is not a valid header name"),
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(invalid(
            member,
            format!("the header {name} is set by the service"),
        ));
    }
    // The model's MessageHeaderValue: 1 to 995 printable ASCII characters, so no CR or LF
    // can start new header fields (header injection).
    if value.is_empty() || value.len() > 995 || !value.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err(invalid(
            member,
            format!("the value of {name} must be 1 to 995 printable ASCII characters on one line"),
        ));
    }
    Ok(())
}

/// SES's rule for message tags (`EmailTags`): a name and a value, each 1 to 256 ASCII letters,
/// digits, `_` or `-`. They only label events, which Sesame does not publish, so they are
/// checked and then not used.
fn check_tags(tags: Vec<win::MessageTag>) -> Result<(), ApiError> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 256
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    for t in tags {
        let name = required(t.name, "EmailTags.Name")?;
        let value = required(t.value, "EmailTags.Value")?;
        for (member, text) in [("EmailTags.Name", &name), ("EmailTags.Value", &value)] {
            if !ok(text) {
                return Err(invalid(
                    member,
                    format!(
                        "'{text}' is not a valid message tag {}: 1 to 256 ASCII letters, digits, '_' or '-'",
                        if member.ends_with("Name") {
                            "name"
                        } else {
                            "value"
                        }
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A body part's text: `Data` is required once the part is given.
fn part_data(member: &'static str, part: Option<win::Content>) -> Result<Option<String>, ApiError> {
    part.map(|c| required(c.data, member)).transpose()
}

pub(super) fn send_email(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    let req: win::SendEmailRequest = body(input)?;
    if let Some(set) = req.configuration_set_name {
        return Err(Error::NotFound(Missing::ConfigurationSet(set)).into());
    }
    if req.list_management_options.is_some() {
        return Err(unsupported(
            "ListManagementOptions",
            "Contact list management",
        ));
    }
    if req.endpoint_id.is_some() {
        return Err(unsupported("EndpointId", "Multi-region endpoints"));
    }
    if req.tenant_name.is_some() {
        return Err(unsupported("TenantName", "Tenants"));
    }
    if req.from_email_address_identity_arn.is_some() {
        return Err(unsupported(
            "FromEmailAddressIdentityArn",
            "Sending authorization",
        ));
    }
    if req.feedback_forwarding_email_address_identity_arn.is_some() {
        return Err(unsupported(
            "FeedbackForwardingEmailAddressIdentityArn",
            "Sending authorization",
        ));
    }
    if req.configuration_overrides.is_some() {
        return Err(unsupported("ConfigurationOverrides", "Configuration sets"));
    }
    check_tags(req.email_tags.unwrap_or_default())?;
    if let Some(f) = &req.feedback_forwarding_email_address {
        parse_address("FeedbackForwardingEmailAddress", f)?;
    }
    let content = required(req.content, "Content")?;
    let dest = req.destination.unwrap_or_default();
    let destination = Destination {
        to: mailboxes(
            "Destination.ToAddresses",
            dest.to_addresses.unwrap_or_default(),
        )?,
        cc: mailboxes(
            "Destination.CcAddresses",
            dest.cc_addresses.unwrap_or_default(),
        )?,
        bcc: mailboxes(
            "Destination.BccAddresses",
            dest.bcc_addresses.unwrap_or_default(),
        )?,
    };
    let reply_to = mailboxes(
        "ReplyToAddresses",
        req.reply_to_addresses.unwrap_or_default(),
    )?;
    let content = match (content.simple, content.raw, content.template) {
        (Some(simple), None, None) => {
            let from_text = required(req.from_email_address, "FromEmailAddress")?;
            let from = mailbox("FromEmailAddress", &from_text)?;
            if simple.attachments.is_some() {
                return Err(unsupported("Content.Simple.Attachments", "Attachments"));
            }
            let subject = required(simple.subject, "Content.Simple.Subject")?;
            let subject_text = required(subject.data.clone(), "Content.Simple.Subject.Data")?;
            utf8_charset("Content.Simple.Subject.Charset", &Some(subject))?;
            let body = required(simple.body, "Content.Simple.Body")?;
            utf8_charset("Content.Simple.Body.Text.Charset", &body.text)?;
            utf8_charset("Content.Simple.Body.Html.Charset", &body.html)?;
            let text = part_data("Content.Simple.Body.Text.Data", body.text)?;
            let html = part_data("Content.Simple.Body.Html.Data", body.html)?;
            if text.is_none() && html.is_none() {
                return Err(invalid(
                    "Content.Simple.Body",
                    "the body needs Text or Html",
                ));
            }
            let headers = simple.headers.unwrap_or_default();
            if headers.len() > MAX_HEADERS {
                return Err(invalid(
                    "Content.Simple.Headers",
                    format!("at most {MAX_HEADERS} headers"),
                ));
            }
            let mut custom = Vec::new();
            for h in headers {
                let name = required(h.name, "Content.Simple.Headers.Name")?;
                let value = required(h.value, "Content.Simple.Headers.Value")?;
                header_ok(&name, &value)?;
                custom.push((name, value));
            }
            if destination.recipients().is_empty() {
                return Err(missing("Destination"));
            }
            Content::Simple(SimpleMessage {
                from,
                reply_to,
                subject: subject_text,
                text,
                html,
                headers: custom,
            })
        }
        (None, Some(raw), None) => {
            let data = required(raw.data, "Content.Raw.Data")?;
            let message = data_encoding::BASE64
                .decode(data.as_bytes())
                .map_err(|_| invalid("Content.Raw.Data", "Raw.Data is not valid base64"))?;
            if message.len() > MAX_MESSAGE_BYTES {
                return Err(invalid(
                    "Content.Raw.Data",
                    format!("the message exceeds {MAX_MESSAGE_BYTES} bytes"),
                ));
            }
            // Without FromEmailAddress the envelope sender is the message's own author, which
            // the core reads from its headers.
            let from = req
                .from_email_address
                .as_deref()
                .map(|f| parse_address("FromEmailAddress", f))
                .transpose()?;
            Content::Raw(RawMessage {
                from,
                data: message,
            })
        }
        (None, None, Some(_)) => {
            return Err(unsupported(
                "Content.Template",
                "Template content (use Simple or Raw content)",
            ));
        }
        _ => {
            return Err(invalid(
                "Content",
                "Content must have exactly one of Simple, Raw or Template",
            ));
        }
    };
    let id = ctx.service.sending.send_email(
        ctx.account,
        Draft {
            destination,
            content,
        },
    )?;
    json(&wout::SendEmailResponse { message_id: id })
}
