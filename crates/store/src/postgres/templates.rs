//! Custom verification email templates on PostgreSQL.

use super::{PostgresStore, unavailable};
use crate::codec::{self, TEMPLATE_COLUMNS, TemplateRow};
use postgres::Row;
use sesame_core::StoreError;
use sesame_core::model::{AccountId, TemplateName, VerificationTemplate};
use sesame_core::ports::TemplateStore;

fn row(r: &Row) -> TemplateRow {
    TemplateRow {
        name: r.get(0),
        from: r.get(1),
        subject: r.get(2),
        content: r.get(3),
        success_url: r.get(4),
        failure_url: r.get(5),
        tags: r.get(6),
        created_at: r.get(7),
    }
}

impl TemplateStore for PostgresStore {
    fn insert_template(&self, t: &VerificationTemplate, max: u64) -> Result<(), StoreError> {
        self.tx(|tx| {
            // One creator per account at a time, so the quota holds across nodes (the same
            // lock as identities': creates of either kind are rare).
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[&t.account.as_str()],
            )
            .map_err(unavailable)?;
            let r = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM verification_templates WHERE account_id = $1 \
                     AND name = $2), (SELECT COUNT(*) FROM verification_templates WHERE account_id = $1)",
                    &[&t.account.as_str(), &t.name.as_str()],
                )
                .map_err(unavailable)?;
            let (taken, count): (bool, i64) = (r.get(0), r.get(1));
            if taken {
                return Err(StoreError::AlreadyExists);
            }
            if count as u64 >= max {
                return Err(StoreError::LimitExceeded);
            }
            let c = &t.content;
            tx.execute(
                "INSERT INTO verification_templates (account_id, name, from_address, subject, \
                 content, success_url, failure_url, tags, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &t.account.as_str(),
                    &t.name.as_str(),
                    &c.from.as_str(),
                    &c.subject,
                    &c.content,
                    &c.success_url.as_str(),
                    &c.failure_url.as_str(),
                    &codec::encode_tags(&t.tags),
                    &t.created_at.0,
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
        self.tx(|tx| {
            tx.query_opt(
                &format!(
                    "SELECT {TEMPLATE_COLUMNS} FROM verification_templates \
                     WHERE account_id = $1 AND name = $2"
                ),
                &[&account.as_str(), &name.as_str()],
            )
            .map_err(unavailable)?
            .as_ref()
            .map(|r| codec::decode_template(account, row(r)))
            .transpose()
        })
    }

    fn update_template(&self, t: &VerificationTemplate) -> Result<(), StoreError> {
        self.tx(|tx| {
            let c = &t.content;
            let n = tx
                .execute(
                    "UPDATE verification_templates SET from_address = $3, subject = $4, \
                     content = $5, success_url = $6, failure_url = $7 \
                     WHERE account_id = $1 AND name = $2",
                    &[
                        &t.account.as_str(),
                        &t.name.as_str(),
                        &c.from.as_str(),
                        &c.subject,
                        &c.content,
                        &c.success_url.as_str(),
                        &c.failure_url.as_str(),
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
        self.tx(|tx| {
            let n = tx
                .execute(
                    "DELETE FROM verification_templates WHERE account_id = $1 AND name = $2",
                    &[&account.as_str(), &name.as_str()],
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
        self.tx(|tx| {
            tx.query(
                &format!(
                    "SELECT {TEMPLATE_COLUMNS} FROM verification_templates \
                     WHERE account_id = $1 AND name > $2 ORDER BY name LIMIT $3"
                ),
                &[&account.as_str(), &after.unwrap_or(""), &(limit as i64)],
            )
            .map_err(unavailable)?
            .iter()
            .map(|r| codec::decode_template(account, row(r)))
            .collect()
        })
    }
}
