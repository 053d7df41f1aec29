//! Accounts and access keys in SQLite.

use super::SqliteStore;
use super::sql::{Cached, unavailable};
use crate::codec;
use rusqlite::{OptionalExtension, params};
use sesame_core::StoreError;
use sesame_core::model::{AccountId, Timestamp};
use sesame_core::ports::{AccessKey, Account, AccountStore};

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn to_account((id, name, created_at): (String, String, i64)) -> Result<Account, StoreError> {
    Ok(Account {
        id: AccountId::parse(&id).map_err(codec::corrupt)?,
        name,
        created_at: Timestamp(created_at),
    })
}

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, Vec<u8>, bool, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_key(
    (id, account, sealed_secret, enabled, created_at): (String, String, Vec<u8>, bool, i64),
) -> Result<AccessKey, StoreError> {
    Ok(AccessKey {
        id,
        account: AccountId::parse(&account).map_err(codec::corrupt)?,
        sealed_secret,
        enabled,
        created_at: Timestamp(created_at),
    })
}

impl AccountStore for SqliteStore {
    fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        let account = account.clone();
        self.write(move |tx| {
            let taken: i64 = tx
                .row(
                    "SELECT COUNT(*) FROM accounts WHERE id = ?1 OR name = ?2",
                    params![account.id.as_str(), account.name],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            if taken > 0 {
                return Err(StoreError::AlreadyExists);
            }
            tx.exec(
                "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![account.id.as_str(), account.name, account.created_at.0],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.read(|tx| {
            tx.row(
                "SELECT id, name, created_at FROM accounts WHERE name = ?1",
                params![name],
                account_row,
            )
            .optional()
            .map_err(unavailable)?
            .map(to_account)
            .transpose()
        })
    }

    fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached("SELECT id, name, created_at FROM accounts ORDER BY name")
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([], account_row)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter().map(to_account).collect()
        })
    }

    fn put_access_key(&self, key: &AccessKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |tx| {
            tx.exec(
                "INSERT OR REPLACE INTO access_keys (id, account_id, sealed_secret, enabled, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    key.id,
                    key.account.as_str(),
                    key.sealed_secret,
                    key.enabled,
                    key.created_at.0
                ],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn access_key(&self, id: &str) -> Result<Option<AccessKey>, StoreError> {
        // Every API request reads its access key: a cached statement skips the SQL compile.
        self.read_one(|tx| {
            tx.prepare_cached(
                "SELECT id, account_id, sealed_secret, enabled, created_at FROM access_keys \
                 WHERE id = ?1",
            )
            .and_then(|mut stmt| stmt.query_row(params![id], key_row))
            .optional()
            .map_err(unavailable)?
            .map(to_key)
            .transpose()
        })
    }

    fn access_keys_of(&self, account: &AccountId) -> Result<Vec<AccessKey>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, account_id, sealed_secret, enabled, created_at FROM access_keys \
                     WHERE account_id = ?1 ORDER BY created_at, id",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![account.as_str()], key_row)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter().map(to_key).collect()
        })
    }
}
