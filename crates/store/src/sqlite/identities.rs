//! Identity SQL: the identity store, the check queue and the key zone's source, which all
//! read and write identity rows (columns from `row`, values from `codec`).

use super::SqliteStore;
use super::sql::{Cached, unavailable};
use crate::codec;
use crate::row::{Cell, IDENTITY_COLUMNS, IdentityRow, IdentitySql, Kind};
use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sesame_core::StoreError;
use sesame_core::model::{
    AccountId, DkimStatus, Identity, IdentityCount, IdentityFilter, IdentityName, IdentitySummary,
    IdentityType, LinkHash, Timestamp,
};
use sesame_core::ports::{CheckQueue, IdentityStore, KeyZoneSource};
use std::sync::LazyLock;

static SQL: LazyLock<IdentitySql> = LazyLock::new(|| IdentitySql::new(|n| format!("?{n}")));

fn bind(cell: &Cell) -> &dyn ToSql {
    match cell {
        Cell::Text(v) => v,
        Cell::Int(v) => v,
        Cell::Bool(v) => v,
    }
}

fn identity_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Vec<Cell>> {
    IDENTITY_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            Ok(match kind {
                Kind::Text => Cell::Text(r.get(i)?),
                Kind::Int => Cell::Int(r.get(i)?),
                Kind::Bool => Cell::Bool(r.get(i)?),
            })
        })
        .collect()
}

pub(super) fn load_identity(
    tx: &Connection,
    account: &AccountId,
    name: &str,
) -> Result<Option<Identity>, StoreError> {
    let row = tx
        .row(
            &SQL.select_one,
            params![account.as_str(), name],
            identity_row,
        )
        .optional()
        .map_err(unavailable)?;
    let Some(row) = row else { return Ok(None) };
    let row = IdentityRow::from_cells(row)?;
    let mut stmt = tx
        .prepare_cached(
            "SELECT selector, bits, public_der, sealed_private, created_at, retired_at \
             FROM dkim_keys WHERE account_id = ?1 AND identity_name = ?2 ORDER BY position",
        )
        .map_err(unavailable)?;
    let keys = stmt
        .query_map(params![account.as_str(), name], |r| {
            Ok(codec::KeyRow {
                selector: r.get(0)?,
                bits: r.get(1)?,
                public_der: r.get(2)?,
                sealed_private: r.get(3)?,
                created_at: r.get(4)?,
                retired_at: r.get(5)?,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    codec::decode_identity(account, row, keys).map(Some)
}

fn save_identity(
    tx: &Transaction<'_>,
    identity: &Identity,
    version: u64,
) -> Result<(), StoreError> {
    // The key rows are built once: compared with the stored ones, then written if they differ.
    let keys = codec::key_rows(identity);
    let unchanged = keys_unchanged(tx, identity, &keys)?;
    let cells = codec::upsert_cells(identity, version);
    let values: Vec<&dyn ToSql> = cells.iter().map(bind).collect();
    // An upsert, not INSERT OR REPLACE: a replace would delete the row and cascade to its keys.
    tx.exec(&SQL.upsert, values.as_slice())
        .map_err(unavailable)?;
    if unchanged {
        return Ok(());
    }
    tx.exec(
        "DELETE FROM dkim_keys WHERE account_id = ?1 AND identity_name = ?2",
        params![identity.account.as_str(), identity.name.as_str()],
    )
    .map_err(unavailable)?;
    if !keys.is_empty() {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO dkim_keys (account_id, identity_name, position, selector, bits, \
                 public_der, sealed_private, created_at, retired_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(unavailable)?;
        for (i, k) in keys.iter().enumerate() {
            stmt.execute(params![
                identity.account.as_str(),
                identity.name.as_str(),
                i as i64,
                k.selector,
                k.bits,
                k.public_der,
                k.sealed_private,
                k.created_at,
                k.retired_at,
            ])
            .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// The stored version and creation time: a version names a state of one incarnation of the
/// identity, since a deleted and re-created identity starts again at version 1.
fn stored_version(
    tx: &Transaction<'_>,
    account: &AccountId,
    name: &str,
) -> Result<Option<(u64, i64)>, StoreError> {
    tx.row(
        "SELECT version, created_at FROM identities WHERE account_id = ?1 AND name = ?2",
        params![account.as_str(), name],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )
    .optional()
    .map_err(unavailable)
    .map(|v| v.map(|(v, c)| (v as u64, c)))
}

/// Whether the stored keys already equal the identity's, so a write that changes only flags,
/// tags or verification state leaves the key rows (and the key-zone generation) alone.
fn keys_unchanged(
    tx: &Transaction<'_>,
    identity: &Identity,
    keys: &[codec::KeyRow],
) -> Result<bool, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT selector, public_der, sealed_private, retired_at FROM dkim_keys \
             WHERE account_id = ?1 AND identity_name = ?2 ORDER BY position",
        )
        .map_err(unavailable)?;
    let stored: Vec<codec::StoredKey> = stmt
        .query_map(
            params![identity.account.as_str(), identity.name.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    Ok(codec::keys_unchanged(&stored, keys))
}

pub(super) fn insert_identity(
    tx: &Transaction<'_>,
    identity: &Identity,
    max_identities: u64,
) -> Result<(), StoreError> {
    if stored_version(tx, &identity.account, identity.name.as_str())?.is_some() {
        return Err(StoreError::AlreadyExists);
    }
    let count: i64 = tx
        .row(
            "SELECT COUNT(*) FROM identities WHERE account_id = ?1",
            params![identity.account.as_str()],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if count as u64 >= max_identities {
        return Err(StoreError::LimitExceeded);
    }
    save_identity(tx, identity, identity.version)
}

pub(super) fn update_identity(
    tx: &Transaction<'_>,
    identity: &Identity,
) -> Result<u64, StoreError> {
    match stored_version(tx, &identity.account, identity.name.as_str())? {
        None => return Err(StoreError::NotFound),
        // A copy read before a delete and re-create matches the new identity's version but
        // not its creation time: it is stale, not a state of this identity.
        Some((v, created)) if v != identity.version || created != identity.created_at.0 => {
            return Err(StoreError::Conflict);
        }
        Some(_) => {}
    }
    let next = identity.version + 1;
    save_identity(tx, identity, next)?;
    Ok(next)
}

impl IdentityStore for SqliteStore {
    fn insert_identity(&self, identity: &Identity, max_identities: u64) -> Result<(), StoreError> {
        let identity = identity.clone();
        self.write(move |tx| insert_identity(tx, &identity, max_identities))
    }

    fn get_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Option<Identity>, StoreError> {
        self.read(|tx| load_identity(tx, account, name.as_str()))
    }

    fn update_identity(&self, identity: &Identity) -> Result<u64, StoreError> {
        let identity = identity.clone();
        self.write(move |tx| update_identity(tx, &identity))
    }

    fn delete_identity(&self, account: &AccountId, name: &IdentityName) -> Result<(), StoreError> {
        let (account, name) = (account.clone(), name.clone());
        self.write(move |tx| {
            // Keys go through ON DELETE CASCADE, in the same transaction.
            let n = tx
                .exec(
                    "DELETE FROM identities WHERE account_id = ?1 AND name = ?2",
                    params![account.as_str(), name.as_str()],
                )
                .map_err(unavailable)?;
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    fn identity_by_link(&self, hash: &LinkHash) -> Result<Option<Identity>, StoreError> {
        self.read(|tx| {
            let found = tx
                .row(
                    "SELECT account_id, name FROM identities WHERE link_hash = ?1",
                    params![hash.as_str()],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()
                .map_err(unavailable)?;
            match found {
                Some((account, name)) => {
                    let account = AccountId::parse(&account).map_err(crate::row::corrupt)?;
                    load_identity(tx, &account, &name)
                }
                None => Ok(None),
            }
        })
    }

    fn count_identities(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<IdentityCount>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(codec::COUNT_IDENTITIES)
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![account.map(AccountId::as_str)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (t, d, v, n) = row.map_err(unavailable)?;
                out.push(codec::count_row(&t, d.as_deref(), &v, n)?);
            }
            Ok(out)
        })
    }

    fn list_identities(
        &self,
        account: &AccountId,
        filter: &IdentityFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IdentitySummary>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT name, verification_status FROM identities \
                     WHERE account_id = ?1 AND (?2 IS NULL OR name > ?2) \
                     AND (?3 IS NULL OR instr(lower(name), lower(?3)) > 0) \
                     AND (?4 IS NULL OR identity_type = ?4) \
                     AND (?5 IS NULL OR verification_status = ?5) \
                     ORDER BY name LIMIT ?6",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(
                    params![
                        account.as_str(),
                        after,
                        filter.name_contains,
                        filter.identity_type.map(IdentityType::name),
                        filter.verification_status.map(DkimStatus::name),
                        limit as i64,
                    ],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (name, status) = row.map_err(unavailable)?;
                out.push(IdentitySummary {
                    name: IdentityName::parse(&name).map_err(codec::corrupt)?,
                    verification_status: codec::parse_status(&status)?,
                });
            }
            Ok(out)
        })
    }
}

impl CheckQueue for SqliteStore {
    fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Identity>, StoreError> {
        // The verifier polls several times a second: look first with a reader, so an idle
        // poll never takes the write lock that API writes need.
        let any_due = self.read(|tx| {
            tx.row(
                "SELECT EXISTS (SELECT 1 FROM identities WHERE due_at <= ?1 \
                 AND (v_lease_until IS NULL OR v_lease_until <= ?1))",
                params![now.0],
                |r| r.get::<_, bool>(0),
            )
            .map_err(unavailable)
        })?;
        if !any_due {
            return Ok(vec![]);
        }
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT account_id, name FROM identities \
                     WHERE due_at <= ?1 AND (v_lease_until IS NULL OR v_lease_until <= ?1) \
                     ORDER BY due_at LIMIT ?2",
                )
                .map_err(unavailable)?;
            let due = stmt
                .query_map(params![now.0, limit as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(due.len());
            for (account, name) in due {
                tx.exec(
                    "UPDATE identities SET v_lease_until = ?3 WHERE account_id = ?1 AND name = ?2",
                    params![account, name, lease_until.0],
                )
                .map_err(unavailable)?;
                let account = AccountId::parse(&account).map_err(codec::corrupt)?;
                if let Some(identity) = load_identity(tx, &account, &name)? {
                    out.push(identity);
                }
            }
            Ok(out)
        })
    }
}

impl KeyZoneSource for SqliteStore {
    fn published_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT k.selector, k.public_der FROM dkim_keys k JOIN identities i \
                     ON i.account_id = k.account_id AND i.name = k.identity_name \
                     WHERE i.dkim_origin = 'AWS_SES'",
                )
                .map_err(unavailable)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)
        })
    }

    fn key_generation(&self) -> Result<u64, StoreError> {
        self.read(|tx| {
            tx.row("SELECT value FROM key_generation WHERE id = 0", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v as u64)
            .map_err(unavailable)
        })
    }
}
