//! Identity SQL on PostgreSQL: the identity store, the check queue (claimed with `FOR UPDATE
//! SKIP LOCKED`) and the key zone's source (columns from `row`, values from `codec`).

use super::{PostgresStore, Tx, unavailable};
use crate::codec;
use crate::row::{Cell, IDENTITY_COLUMNS, IdentityRow, IdentitySql, Kind};
use postgres::Row;
use postgres::types::ToSql;
use sesame_core::StoreError;
use sesame_core::model::{
    AccountId, DkimStatus, Identity, IdentityCount, IdentityFilter, IdentityName, IdentitySummary,
    IdentityType, LinkHash, Timestamp,
};
use sesame_core::ports::{CheckQueue, IdentityStore, KeyZoneSource};
use std::sync::LazyLock;

static SQL: LazyLock<IdentitySql> = LazyLock::new(|| IdentitySql::new(|n| format!("${n}")));

fn bind(cell: &Cell) -> &(dyn ToSql + Sync) {
    match cell {
        Cell::Text(v) => v,
        Cell::Int(v) => v,
        Cell::Bool(v) => v,
    }
}

fn identity_row(r: &Row) -> Result<IdentityRow, StoreError> {
    let cells = IDENTITY_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| match kind {
            Kind::Text => Cell::Text(r.get(i)),
            Kind::Int => Cell::Int(r.get(i)),
            Kind::Bool => Cell::Bool(r.get(i)),
        })
        .collect();
    IdentityRow::from_cells(cells)
}

fn load_identity(
    tx: &mut Tx<'_, '_>,
    account: &AccountId,
    name: &str,
) -> Result<Option<Identity>, StoreError> {
    let Some(row) = tx
        .query_opt(&SQL.select_one, &[&account.as_str(), &name])
        .map_err(unavailable)?
    else {
        return Ok(None);
    };
    let keys = tx
        .query(
            "SELECT selector, bits, public_der, sealed_private, created_at, retired_at FROM dkim_keys \
             WHERE account_id = $1 AND identity_name = $2 ORDER BY position",
            &[&account.as_str(), &name],
        )
        .map_err(unavailable)?
        .iter()
        .map(|r| codec::KeyRow {
            selector: r.get(0),
            bits: u32::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            public_der: r.get(2),
            sealed_private: r.get(3),
            created_at: r.get(4),
            retired_at: r.get(5),
        })
        .collect();
    codec::decode_identity(account, identity_row(&row)?, keys).map(Some)
}

fn save_identity(tx: &mut Tx<'_, '_>, identity: &Identity, version: u64) -> Result<(), StoreError> {
    let cells = codec::upsert_cells(identity, version);
    let values: Vec<&(dyn ToSql + Sync)> = cells.iter().map(bind).collect();
    tx.execute(&SQL.upsert, &values).map_err(unavailable)?;
    // Rewrite the key rows only when they changed, so the key-zone generation moves only then.
    let stored: Vec<codec::StoredKey> = tx
        .query(
            "SELECT selector, public_der, sealed_private, retired_at FROM dkim_keys \
             WHERE account_id = $1 AND identity_name = $2 ORDER BY position",
            &[&identity.account.as_str(), &identity.name.as_str()],
        )
        .map_err(unavailable)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let keys = codec::key_rows(identity);
    let unchanged = codec::keys_unchanged(&stored, &keys);
    if unchanged {
        return Ok(());
    }
    tx.execute(
        "DELETE FROM dkim_keys WHERE account_id = $1 AND identity_name = $2",
        &[&identity.account.as_str(), &identity.name.as_str()],
    )
    .map_err(unavailable)?;
    for (i, k) in keys.iter().enumerate() {
        tx.execute(
            "INSERT INTO dkim_keys (account_id, identity_name, position, selector, bits, public_der, \
             sealed_private, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &identity.account.as_str(),
                &identity.name.as_str(),
                &(i as i64),
                &k.selector,
                &i64::from(k.bits),
                &k.public_der,
                &k.sealed_private,
                &k.created_at,
                &k.retired_at,
            ],
        )
        .map_err(unavailable)?;
    }
    Ok(())
}

impl IdentityStore for PostgresStore {
    fn insert_identity(&self, identity: &Identity, max_identities: u64) -> Result<(), StoreError> {
        self.tx(|tx| {
            // One creator per account at a time, so the quota holds across nodes.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[&identity.account.as_str()],
            )
            .map_err(unavailable)?;
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM identities WHERE account_id = $1 AND name = $2",
                    &[&identity.account.as_str(), &identity.name.as_str()],
                )
                .map_err(unavailable)?;
            if exists.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            let count: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM identities WHERE account_id = $1",
                    &[&identity.account.as_str()],
                )
                .map_err(unavailable)?
                .get(0);
            if count as u64 >= max_identities {
                return Err(StoreError::LimitExceeded);
            }
            save_identity(tx, identity, identity.version)
        })
    }

    fn get_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Option<Identity>, StoreError> {
        self.tx(|tx| load_identity(tx, account, name.as_str()))
    }

    fn update_identity(&self, identity: &Identity) -> Result<u64, StoreError> {
        self.tx(|tx| {
            let row = tx
                .query_opt(
                    "SELECT version, created_at FROM identities WHERE account_id = $1 AND name = $2 FOR UPDATE",
                    &[&identity.account.as_str(), &identity.name.as_str()],
                )
                .map_err(unavailable)?;
            match row.map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1))) {
                None => Err(StoreError::NotFound),
                // A copy read before a delete and re-create: same version, another identity.
                Some((v, created)) if v != identity.version || created != identity.created_at.0 => {
                    Err(StoreError::Conflict)
                }
                Some(_) => {
                    let next = identity.version + 1;
                    save_identity(tx, identity, next)?;
                    Ok(next)
                }
            }
        })
    }

    fn delete_identity(&self, account: &AccountId, name: &IdentityName) -> Result<(), StoreError> {
        self.tx(|tx| {
            let n = tx
                .execute(
                    "DELETE FROM identities WHERE account_id = $1 AND name = $2",
                    &[&account.as_str(), &name.as_str()],
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
        self.tx(|tx| {
            let found = tx
                .query_opt(
                    "SELECT account_id, name FROM identities WHERE link_hash = $1",
                    &[&hash.as_str()],
                )
                .map_err(unavailable)?
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)));
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
        let sql = codec::COUNT_IDENTITIES.replace("$1 IS NULL", "$1::text IS NULL");
        self.tx(|tx| {
            let rows = tx
                .query(&sql, &[&account.map(AccountId::as_str)])
                .map_err(unavailable)?;
            rows.iter()
                .map(|r| {
                    codec::count_row(
                        r.get::<_, &str>(0),
                        r.get::<_, Option<&str>>(1),
                        r.get::<_, &str>(2),
                        r.get::<_, i64>(3),
                    )
                })
                .collect()
        })
    }

    fn list_identities(
        &self,
        account: &AccountId,
        filter: &IdentityFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IdentitySummary>, StoreError> {
        self.tx(|tx| {
            let rows = tx
                .query(
                    "SELECT name, verification_status FROM identities \
                     WHERE account_id = $1 AND ($2::text IS NULL OR name > $2::text) \
                     AND ($3::text IS NULL OR strpos(lower(name), lower($3::text)) > 0) \
                     AND ($4::text IS NULL OR identity_type = $4::text) \
                     AND ($5::text IS NULL OR verification_status = $5::text) \
                     ORDER BY name LIMIT $6",
                    &[
                        &account.as_str(),
                        &after,
                        &filter.name_contains,
                        &filter.identity_type.map(IdentityType::name),
                        &filter.verification_status.map(DkimStatus::name),
                        &(limit as i64),
                    ],
                )
                .map_err(unavailable)?;
            rows.iter()
                .map(|r| {
                    Ok(IdentitySummary {
                        name: IdentityName::parse(r.get::<_, &str>(0)).map_err(codec::corrupt)?,
                        verification_status: codec::parse_status(r.get::<_, &str>(1))?,
                    })
                })
                .collect()
        })
    }
}

impl CheckQueue for PostgresStore {
    fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Identity>, StoreError> {
        self.tx(|tx| {
            // SKIP LOCKED: a node never waits for, nor takes, what another node is claiming.
            let due = tx
                .query(
                    "SELECT account_id, name FROM identities \
                     WHERE due_at <= $1 AND (v_lease_until IS NULL OR v_lease_until <= $1) \
                     ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                    &[&now.0, &(limit as i64)],
                )
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(due.len());
            for r in &due {
                let (account, name): (String, String) = (r.get(0), r.get(1));
                tx.execute(
                    "UPDATE identities SET v_lease_until = $3 WHERE account_id = $1 AND name = $2",
                    &[&account, &name, &lease_until.0],
                )
                .map_err(unavailable)?;
                let account = AccountId::parse(&account).map_err(codec::corrupt)?;
                if let Some(i) = load_identity(tx, &account, &name)? {
                    out.push(i);
                }
            }
            Ok(out)
        })
    }
}

impl KeyZoneSource for PostgresStore {
    fn published_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.tx(|tx| {
            Ok(tx
                .query(
                    "SELECT k.selector, k.public_der FROM dkim_keys k JOIN identities i \
                     ON i.account_id = k.account_id AND i.name = k.identity_name \
                     WHERE i.dkim_origin = 'AWS_SES'",
                    &[],
                )
                .map_err(unavailable)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
    }

    fn key_generation(&self) -> Result<u64, StoreError> {
        self.tx(|tx| {
            Ok(tx
                .query_one("SELECT value FROM key_generation WHERE id = 0", &[])
                .map_err(unavailable)?
                .get::<_, i64>(0) as u64)
        })
    }
}
