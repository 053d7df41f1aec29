//! Response bodies. Absent members are omitted, never `null`; timestamps are epoch seconds as
//! JSON numbers (aws-sdk-rust rejects strings).

use serde::Serialize;
use std::collections::BTreeMap;

/// Epoch seconds with millisecond precision.
pub type EpochSeconds = f64;

#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DkimAttributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_hosted_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_attributes_origin: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_signing_key_length: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_signing_key_length: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_key_generation_timestamp: Option<EpochSeconds>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEmailIdentityResponse {
    pub identity_type: &'static str,
    pub verified_for_sending_status: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dkim_attributes: Option<DkimAttributes>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct MailFromAttributes {
    /// Absent, with the status, when no custom MAIL FROM is set (as SES answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_from_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_from_domain_status: Option<&'static str>,
    pub behavior_on_mx_failure: &'static str,
}

#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct VerificationInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_checked_timestamp: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_timestamp: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<&'static str>,
    #[serde(rename = "SOARecord", skip_serializing_if = "Option::is_none")]
    pub soa_record: Option<SoaRecord>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct SoaRecord {
    pub primary_name_server: String,
    pub admin_email: String,
    pub serial_number: u64,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct GetEmailIdentityResponse {
    pub identity_type: &'static str,
    pub feedback_forwarding_status: bool,
    pub verified_for_sending_status: bool,
    pub dkim_attributes: DkimAttributes,
    pub mail_from_attributes: MailFromAttributes,
    pub policies: BTreeMap<String, String>,
    pub tags: Vec<Tag>,
    pub verification_status: &'static str,
    pub verification_info: VerificationInfo,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct IdentityInfo {
    pub identity_type: &'static str,
    pub identity_name: String,
    pub sending_enabled: bool,
    pub verification_status: &'static str,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListEmailIdentitiesResponse {
    pub email_identities: Vec<IdentityInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct PutEmailIdentityDkimSigningAttributesResponse {
    pub dkim_status: &'static str,
    pub dkim_tokens: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_hosted_zone: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceResponse {
    pub tags: Vec<Tag>,
}

/// The `{}` of operations without output members.
#[derive(Serialize, Debug)]
pub struct Empty {}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct SendEmailResponse {
    pub message_id: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Recommendation {
    pub resource_arn: String,
    pub r#type: &'static str,
    pub description: String,
    pub status: &'static str,
    pub created_timestamp: EpochSeconds,
    pub last_updated_timestamp: EpochSeconds,
    pub impact: &'static str,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListRecommendationsResponse {
    pub recommendations: Vec<Recommendation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct GetCustomVerificationEmailTemplateResponse {
    pub template_name: String,
    pub from_email_address: String,
    pub template_subject: String,
    pub template_content: String,
    pub tags: Vec<Tag>,
    #[serde(rename = "SuccessRedirectionURL")]
    pub success_redirection_url: String,
    #[serde(rename = "FailureRedirectionURL")]
    pub failure_redirection_url: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct CustomVerificationEmailTemplateMetadata {
    pub template_name: String,
    pub from_email_address: String,
    pub template_subject: String,
    #[serde(rename = "SuccessRedirectionURL")]
    pub success_redirection_url: String,
    #[serde(rename = "FailureRedirectionURL")]
    pub failure_redirection_url: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListCustomVerificationEmailTemplatesResponse {
    pub custom_verification_email_templates: Vec<CustomVerificationEmailTemplateMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
