//! Request bodies. None of these derive `Debug`: `DkimSigningAttributes` carries a private key.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The model's `Tag`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// The model's `DkimSigningAttributes`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DkimSigningAttributes {
    pub domain_signing_selector: Option<String>,
    pub domain_signing_private_key: Option<String>,
    pub next_signing_key_length: Option<String>,
    pub domain_signing_attributes_origin: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEmailIdentityRequest {
    pub email_identity: Option<String>,
    pub tags: Option<Vec<Tag>>,
    pub dkim_signing_attributes: Option<DkimSigningAttributes>,
    pub configuration_set_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListEmailIdentitiesRequest {
    pub filter: Option<BTreeMap<String, String>>,
    pub next_token: Option<String>,
    pub page_size: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutEmailIdentityDkimAttributesRequest {
    pub signing_enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutEmailIdentityDkimSigningAttributesRequest {
    pub signing_attributes_origin: Option<String>,
    pub signing_attributes: Option<DkimSigningAttributes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutEmailIdentityFeedbackAttributesRequest {
    pub email_forwarding_enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutEmailIdentityMailFromAttributesRequest {
    pub mail_from_domain: Option<String>,
    pub behavior_on_mx_failure: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceRequest {
    pub resource_arn: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Destination {
    pub to_addresses: Option<Vec<String>>,
    pub cc_addresses: Option<Vec<String>>,
    pub bcc_addresses: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Content {
    pub data: Option<String>,
    pub charset: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Body {
    pub text: Option<Content>,
    pub html: Option<Content>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageHeader {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Message {
    pub subject: Option<Content>,
    pub body: Option<Body>,
    pub headers: Option<Vec<MessageHeader>>,
    pub attachments: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawMessage {
    pub data: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmailContent {
    pub simple: Option<Message>,
    pub raw: Option<RawMessage>,
    pub template: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageTag {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendEmailRequest {
    pub from_email_address: Option<String>,
    pub from_email_address_identity_arn: Option<String>,
    pub destination: Option<Destination>,
    pub reply_to_addresses: Option<Vec<String>>,
    pub feedback_forwarding_email_address: Option<String>,
    pub content: Option<EmailContent>,
    pub email_tags: Option<Vec<MessageTag>>,
    pub configuration_overrides: Option<serde_json::Value>,
    pub feedback_forwarding_email_address_identity_arn: Option<String>,
    pub configuration_set_name: Option<String>,
    pub endpoint_id: Option<String>,
    pub tenant_name: Option<String>,
    pub list_management_options: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListRecommendationsRequest {
    pub filter: Option<BTreeMap<String, String>>,
    pub next_token: Option<String>,
    pub page_size: Option<i64>,
}

/// Create and Update of a custom verification email template (Update has no tags).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CustomVerificationEmailTemplateRequest {
    pub template_name: Option<String>,
    pub from_email_address: Option<String>,
    pub template_subject: Option<String>,
    pub template_content: Option<String>,
    pub tags: Option<Vec<Tag>>,
    #[serde(rename = "SuccessRedirectionURL")]
    pub success_redirection_url: Option<String>,
    #[serde(rename = "FailureRedirectionURL")]
    pub failure_redirection_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SendCustomVerificationEmailRequest {
    pub email_address: Option<String>,
    pub template_name: Option<String>,
    pub configuration_set_name: Option<String>,
}
