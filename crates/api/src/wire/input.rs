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
pub struct TagResourceRequest {
    pub resource_arn: Option<String>,
    pub tags: Option<Vec<Tag>>,
}
