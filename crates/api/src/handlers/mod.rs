//! Handlers: wire → domain → wire, one function per operation. They run on the blocking pool
//! (the core is synchronous and key generation is CPU-bound) and never touch SQL, DNS or
//! private keys themselves.

mod identities;
#[cfg(test)]
mod limits_tests;
mod recommendations;
mod send;
mod tags;
mod templates;

use crate::errors::{ApiError, EdgeError, at, invalid};
use crate::routes::{Operation, Route};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sesame_core::Error;
use sesame_core::app::UseCases;
use sesame_core::model::{AccountId, DkimStatus, IdentityName, KeyLength};

/// Seals and opens ListEmailIdentities page tokens, so they are opaque and tamper-proof.
pub trait PageTokens: Send + Sync {
    /// Encrypts and authenticates a token payload.
    fn seal(&self, payload: &[u8]) -> Result<Vec<u8>, Error>;
    /// Returns the payload if the token is authentic.
    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>>;
}

/// What a handler needs besides its input.
pub struct Ctx<'a> {
    /// The use cases.
    pub service: &'a UseCases,
    /// The caller's account.
    pub account: &'a AccountId,
    /// The region this endpoint serves (for ARNs).
    pub region: &'a str,
    /// The page-token sealer.
    pub pages: &'a dyn PageTokens,
}

/// The request after routing.
pub struct Input<'a> {
    /// The resolved route with decoded labels.
    pub route: &'a Route,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    /// The raw body.
    pub body: &'a [u8],
}

/// Runs the operation and returns the JSON body of its 200 response.
pub fn dispatch(ctx: &Ctx<'_>, input: &Input<'_>) -> Result<Vec<u8>, ApiError> {
    match input.route.operation {
        Operation::CreateEmailIdentity => identities::create(ctx, input),
        Operation::GetEmailIdentity => identities::get(ctx, input),
        Operation::ListEmailIdentities => identities::list(ctx, input),
        Operation::DeleteEmailIdentity => identities::delete(ctx, input),
        Operation::PutEmailIdentityDkimAttributes => identities::put_dkim(ctx, input),
        Operation::PutEmailIdentityDkimSigningAttributes => {
            identities::put_dkim_signing(ctx, input)
        }
        Operation::PutEmailIdentityFeedbackAttributes => identities::put_feedback(ctx, input),
        Operation::PutEmailIdentityMailFromAttributes => identities::put_mail_from(ctx, input),
        Operation::ListRecommendations => recommendations::list(ctx, input),
        Operation::TagResource => tags::tag(ctx, input),
        Operation::UntagResource => tags::untag(ctx, input),
        Operation::ListTagsForResource => tags::list(ctx, input),
        Operation::SendEmail => send::send_email(ctx, input),
        Operation::CreateCustomVerificationEmailTemplate => templates::create(ctx, input),
        Operation::GetCustomVerificationEmailTemplate => templates::get(ctx, input),
        Operation::ListCustomVerificationEmailTemplates => templates::list(ctx, input),
        Operation::UpdateCustomVerificationEmailTemplate => templates::update(ctx, input),
        Operation::DeleteCustomVerificationEmailTemplate => templates::delete(ctx, input),
        Operation::SendCustomVerificationEmail => templates::send(ctx, input),
        Operation::Unsupported(name) => Err(EdgeError::Unsupported(name).into()),
    }
}

/// What a page token continues after: the payload sealed into it, which must start with
/// `bound` (the listing's version, account and filter), so a token only continues the listing
/// it came from. Anything else is `InvalidNextToken`.
fn open_page_token(
    ctx: &Ctx<'_>,
    token: Option<&str>,
    bound: &str,
) -> Result<Option<String>, ApiError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let payload = data_encoding::BASE64URL_NOPAD
        .decode(token.as_bytes())
        .ok()
        .and_then(|sealed| ctx.pages.open(&sealed))
        .and_then(|p| String::from_utf8(p).ok())
        .ok_or(EdgeError::InvalidNextToken)?;
    let rest = payload
        .strip_prefix(bound)
        .ok_or(EdgeError::InvalidNextToken)?;
    Ok(Some(rest.to_owned()))
}

/// The page token that continues a listing bound by `bound` after `last`, if more follow.
fn seal_page_token(
    ctx: &Ctx<'_>,
    bound: &str,
    last: Option<String>,
) -> Result<Option<String>, ApiError> {
    let Some(last) = last else {
        return Ok(None);
    };
    let sealed = ctx.pages.seal(format!("{bound}{last}").as_bytes())?;
    Ok(Some(data_encoding::BASE64URL_NOPAD.encode(&sealed)))
}

/// Parses a JSON body; an empty body counts as `{}` (clients omit it when no member is set).
fn body<T: DeserializeOwned>(input: &Input<'_>) -> Result<T, ApiError> {
    let bytes: &[u8] = if input.body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        input.body
    };
    crate::wire::strict::from_slice(bytes)
        .map_err(|e| EdgeError::Serialization(e.to_string()).into())
}

fn json(value: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(format!("encoding response: {e}")).into())
}

/// A required member that is absent, in the wording AWS's validation uses.
fn required<T>(value: Option<T>, member: &'static str) -> Result<T, ApiError> {
    value.ok_or_else(|| missing(member))
}

fn missing(member: &'static str) -> ApiError {
    invalid(
        member,
        format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ),
    )
}

/// An enum member with a value outside the model's set.
fn bad_enum(member: &'static str, value: &str, allowed: &[&str]) -> ApiError {
    invalid(
        member,
        format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        ),
    )
}

/// The identity named by the `{EmailIdentity}` label.
fn identity_label(input: &Input<'_>) -> Result<IdentityName, ApiError> {
    let raw = input.route.label("EmailIdentity").unwrap_or_default();
    IdentityName::parse(raw).map_err(at("EmailIdentity"))
}

fn parse_status(member: &'static str, s: &str) -> Result<DkimStatus, ApiError> {
    DkimStatus::from_name(s).ok_or_else(|| bad_enum(member, s, DkimStatus::NAMES))
}

fn parse_key_length(member: &'static str, s: &str) -> Result<KeyLength, ApiError> {
    KeyLength::from_name(s).ok_or_else(|| bad_enum(member, s, KeyLength::NAMES))
}
