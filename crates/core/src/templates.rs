//! The custom verification email template use cases: create, read, list (paged), update,
//! delete, per account, within SES's quota.

use crate::error::{Error, Limit, Missing, StoreError};
use crate::model::{
    AccountId, MAX_TEMPLATES, Tag, TemplateContent, TemplateName, VerificationTemplate,
};
use crate::ports::{Clock, TemplateStore};
use std::sync::Arc;

/// A page of templates; `continue_after` is the last name when more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatePage {
    /// This page's templates, by name.
    pub items: Vec<VerificationTemplate>,
    /// The last name on this page when more pages follow.
    pub continue_after: Option<String>,
}

/// The template use cases.
pub struct Templates {
    store: Arc<dyn TemplateStore>,
    clock: Arc<dyn Clock>,
}

fn store_err(e: StoreError, name: &TemplateName) -> Error {
    match e {
        StoreError::NotFound => Error::NotFound(Missing::Template(name.as_str().to_owned())),
        StoreError::AlreadyExists => Error::AlreadyExists(name.as_str().to_owned()),
        StoreError::LimitExceeded => Error::LimitExceeded(Limit::Templates),
        StoreError::Conflict => Error::ConcurrentModification(name.as_str().to_owned()),
        StoreError::Unavailable(m) => Error::Unavailable(m),
    }
}

impl Templates {
    /// Wires the use cases to the store and the clock.
    pub fn new(store: Arc<dyn TemplateStore>, clock: Arc<dyn Clock>) -> Templates {
        Templates { store, clock }
    }

    /// CreateCustomVerificationEmailTemplate.
    pub fn create(
        &self,
        account: &AccountId,
        name: TemplateName,
        content: TemplateContent,
        tags: Vec<Tag>,
    ) -> Result<(), Error> {
        let tags = crate::model::merge_tags(&[], &tags)?;
        let t = VerificationTemplate {
            account: account.clone(),
            name,
            content,
            tags,
            created_at: self.clock.now(),
        };
        self.store
            .insert_template(&t, MAX_TEMPLATES)
            .map_err(|e| store_err(e, &t.name))
    }

    /// GetCustomVerificationEmailTemplate.
    pub fn get(
        &self,
        account: &AccountId,
        name: &TemplateName,
    ) -> Result<VerificationTemplate, Error> {
        self.store
            .get_template(account, name)
            .map_err(|e| store_err(e, name))?
            .ok_or_else(|| store_err(StoreError::NotFound, name))
    }

    /// UpdateCustomVerificationEmailTemplate: every member replaced; tags stay.
    pub fn update(
        &self,
        account: &AccountId,
        name: TemplateName,
        content: TemplateContent,
    ) -> Result<(), Error> {
        let mut t = self.get(account, &name)?;
        t.content = content;
        self.store
            .update_template(&t)
            .map_err(|e| store_err(e, &name))
    }

    /// DeleteCustomVerificationEmailTemplate.
    pub fn delete(&self, account: &AccountId, name: &TemplateName) -> Result<(), Error> {
        self.store
            .delete_template(account, name)
            .map_err(|e| store_err(e, name))
    }

    /// ListCustomVerificationEmailTemplates: `page_size` at a time, by name, after `after`.
    pub fn list(
        &self,
        account: &AccountId,
        after: Option<&str>,
        page_size: usize,
    ) -> Result<TemplatePage, Error> {
        let mut items = self
            .store
            .list_templates(account, after, page_size + 1)
            .map_err(crate::shared::bulk_err)?;
        let more = items.len() > page_size;
        items.truncate(page_size);
        let continue_after = if more {
            items.last().map(|t| t.name.as_str().to_owned())
        } else {
            None
        };
        Ok(TemplatePage {
            items,
            continue_after,
        })
    }
}
