//! Accounts and access keys on PostgreSQL.

use super::{PostgresStore, unavailable};
use crate::codec;
use postgres::Row;
use sesame_core::StoreError;
use sesame_core::model::{AccountId, Timestamp};
use sesame_core::ports::{AccessKey, Account, AccountStore};

fn to_account(r: &Row) -> Result<Account, StoreError> {
    Ok(Account {
        id: AccountId::parse(r.get::<_, &str>(0)).map_err(codec::corrupt)?,
        name: r.get(1),
        created_at: Timestamp(r.get(2)),
    })
}

fn to_key(r: &Row) -> Result<AccessKey, StoreError> {
    Ok(AccessKey {
        id: r.get(0),
        account: AccountId::parse(r.get::<_, &str>(1)).map_err(codec::corrupt)?,
        sealed_secret: r.get(2),
        enabled: r.get(3),
        created_at: Timestamp(r.get(4)),
    })
}

impl AccountStore for PostgresStore {
    fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        self.tx(|tx| {
            let taken = tx
                .query_opt(
                    "SELECT 1 FROM accounts WHERE id = $1 OR name = $2",
                    &[&account.id.as_str(), &account.name],
                )
                .map_err(unavailable)?;
            if taken.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            tx.execute(
                "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)",
                &[&account.id.as_str(), &account.name, &account.created_at.0],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.tx(|tx| {
            tx.query_opt(
                "SELECT id, name, created_at FROM accounts WHERE name = $1",
                &[&name],
            )
            .map_err(unavailable)?
            .as_ref()
            .map(to_account)
            .transpose()
        })
    }

    fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.tx(|tx| {
            tx.query(
                "SELECT id, name, created_at FROM accounts ORDER BY name",
                &[],
            )
            .map_err(unavailable)?
            .iter()
            .map(to_account)
            .collect()
        })
    }

    fn put_access_key(&self, key: &AccessKey) -> Result<(), StoreError> {
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO access_keys (id, account_id, sealed_secret, enabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET account_id = EXCLUDED.account_id, \
                 sealed_secret = EXCLUDED.sealed_secret, enabled = EXCLUDED.enabled, created_at = EXCLUDED.created_at",
                &[&key.id, &key.account.as_str(), &key.sealed_secret, &key.enabled, &key.created_at.0],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn access_key(&self, id: &str) -> Result<Option<AccessKey>, StoreError> {
        self.one(|tx| {
            tx.query_opt(
                "SELECT id, account_id, sealed_secret, enabled, created_at FROM access_keys WHERE id = $1",
                &[&id],
            )
            .map_err(unavailable)?
            .as_ref()
            .map(to_key)
            .transpose()
        })
    }

    fn access_keys_of(&self, account: &AccountId) -> Result<Vec<AccessKey>, StoreError> {
        self.tx(|tx| {
            tx.query(
                "SELECT id, account_id, sealed_secret, enabled, created_at FROM access_keys \
                 WHERE account_id = $1 ORDER BY created_at, id",
                &[&account.as_str()],
            )
            .map_err(unavailable)?
            .iter()
            .map(to_key)
            .collect()
        })
    }
}
