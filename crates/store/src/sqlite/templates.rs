//! Custom verification email templates in SQLite.

use super::SqliteStore;
use super::sql::{Cached, unavailable};
use crate::codec::{self, TEMPLATE_COLUMNS, TemplateRow};
use rusqlite::{OptionalExtension, params};
use sesame_core::StoreError;
use sesame_core::model::{AccountId, TemplateName, VerificationTemplate};
use sesame_core::ports::TemplateStore;

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TemplateRow> {
    Ok(TemplateRow {
        name: r.get(0)?,
        from: r.get(1)?,
        subject: r.get(2)?,
        content: r.get(3)?,
        success_url: r.get(4)?,
        failure_url: r.get(5)?,
        tags: r.get(6)?,
        created_at: r.get(7)?,
    })
}

impl TemplateStore for SqliteStore {
    fn insert_template(&self, t: &VerificationTemplate, max: u64) -> Result<(), StoreError> {
        let t = t.clone();
        self.write(move |tx| {
            let (taken, count): (bool, i64) = tx
                .row(
                    "SELECT EXISTS (SELECT 1 FROM verification_templates WHERE account_id = ?1 \
                     AND name = ?2), (SELECT COUNT(*) FROM verification_templates WHERE account_id = ?1)",
                    params![t.account.as_str(), t.name.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(unavailable)?;
            if taken {
                return Err(StoreError::AlreadyExists);
            }
            if count as u64 >= max {
                return Err(StoreError::LimitExceeded);
            }
            let c = &t.content;
            tx.exec(
                "INSERT INTO verification_templates (account_id, name, from_address, subject, \
                 content, success_url, failure_url, tags, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    t.account.as_str(),
                    t.name.as_str(),
                    c.from.as_str(),
                    c.subject,
                    c.content,
                    c.success_url.as_str(),
                    c.failure_url.as_str(),
                    codec::encode_tags(&t.tags),
                    t.created_at.0
                ],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn get_template(
        &self,
        account: &AccountId,
        name: &TemplateName,
    ) -> Result<Option<VerificationTemplate>, StoreError> {
        self.read(|tx| {
            tx.row(
                &format!(
                    "SELECT {TEMPLATE_COLUMNS} FROM verification_templates \
                     WHERE account_id = ?1 AND name = ?2"
                ),
                params![account.as_str(), name.as_str()],
                row,
            )
            .optional()
            .map_err(unavailable)?
            .map(|r| codec::decode_template(account, r))
            .transpose()
        })
    }

    fn update_template(&self, t: &VerificationTemplate) -> Result<(), StoreError> {
        let t = t.clone();
        self.write(move |tx| {
            let c = &t.content;
            let n = tx
                .exec(
                    "UPDATE verification_templates SET from_address = ?3, subject = ?4, \
                     content = ?5, success_url = ?6, failure_url = ?7 \
                     WHERE account_id = ?1 AND name = ?2",
                    params![
                        t.account.as_str(),
                        t.name.as_str(),
                        c.from.as_str(),
                        c.subject,
                        c.content,
                        c.success_url.as_str(),
                        c.failure_url.as_str()
                    ],
                )
                .map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn delete_template(&self, account: &AccountId, name: &TemplateName) -> Result<(), StoreError> {
        let (account, name) = (account.as_str().to_owned(), name.as_str().to_owned());
        self.write(move |tx| {
            let n = tx
                .exec(
                    "DELETE FROM verification_templates WHERE account_id = ?1 AND name = ?2",
                    params![account, name],
                )
                .map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn list_templates(
        &self,
        account: &AccountId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<VerificationTemplate>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {TEMPLATE_COLUMNS} FROM verification_templates \
                     WHERE account_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3"
                ))
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(
                    params![account.as_str(), after.unwrap_or(""), limit as i64],
                    row,
                )
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|r| codec::decode_template(account, r))
                .collect()
        })
    }
}
