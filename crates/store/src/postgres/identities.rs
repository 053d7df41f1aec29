//! Identity SQL on PostgreSQL: the identity store, the check queue (claimed with `FOR UPDATE
//! SKIP LOCKED`) and the key zone's source (columns from `row`, values from `codec`).

use super::{Db, PostgresStore, unavailable};
use crate::codec;
use crate::row::{Cell, IDENTITY_COLUMNS, IdentityRow, IdentitySql, KEY_COLUMNS, Kind};
use postgres::types::ToSql;
use postgres::{GenericClient, Row};
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

/// A key row's stored columns besides its identity and position, in the order every
/// statement here reads, binds and writes them.
const KEY_FIELDS: [&str; 6] = [
    "selector",
    "bits",
    "public_der",
    "sealed_private",
    "created_at",
    "retired_at",
];

/// `KEY_FIELDS` through `f`, comma-separated.
fn key_list(f: impl Fn(&str) -> String) -> String {
    KEY_FIELDS.map(f).join(", ")
}

/// An identity's keys as one array per column, in key order: what the key statements bind
/// (`KEY_SOURCE`), so the keys of one write go in one statement.
struct KeyArrays<'a> {
    selector: Vec<&'a str>,
    bits: Vec<i64>,
    public_der: Vec<&'a [u8]>,
    sealed_private: Vec<&'a [u8]>,
    created_at: Vec<i64>,
    retired_at: Vec<Option<i64>>,
    count: i64,
}

impl<'a> KeyArrays<'a> {
    fn of(keys: &'a [codec::KeyRow]) -> KeyArrays<'a> {
        KeyArrays {
            selector: keys.iter().map(|k| k.selector.as_str()).collect(),
            bits: keys.iter().map(|k| i64::from(k.bits)).collect(),
            public_der: keys.iter().map(|k| k.public_der.as_slice()).collect(),
            sealed_private: keys.iter().map(|k| k.sealed_private.as_slice()).collect(),
            created_at: keys.iter().map(|k| k.created_at).collect(),
            retired_at: keys.iter().map(|k| k.retired_at).collect(),
            count: keys.len() as i64,
        }
    }

    /// The arrays in `KEY_FIELDS` order, then the count.
    fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.selector,
            &self.bits,
            &self.public_der,
            &self.sealed_private,
            &self.created_at,
            &self.retired_at,
            &self.count,
        ]
    }
}

/// The SELECT of an `INSERT INTO dkim_keys`: one row `k` per key of the `KeyArrays` bound
/// from parameter `$first` on, under the account and name bound as `$account` and `$name`.
fn key_source(account: usize, name: usize, first: usize) -> String {
    let types = ["text", "bigint", "bytea", "bytea", "bigint", "bigint"];
    let arrays = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", first + i))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT ${account}, ${name}, k.ord - 1, {} FROM unnest({arrays}) WITH ORDINALITY \
         AS k({}, ord)",
        key_list(|c| format!("k.{c}")),
        key_list(str::to_owned)
    )
}

/// The columns an `INSERT INTO dkim_keys` of `key_source` rows names.
fn key_columns() -> String {
    format!(
        "account_id, identity_name, position, {}",
        key_list(str::to_owned)
    )
}

/// One identity and its keys in one statement (one snapshot, so it needs no transaction of
/// its own): the key columns come as arrays in key order.
static SELECT_WITH_KEYS: LazyLock<String> = LazyLock::new(|| {
    let keys = key_list(|c| {
        format!(
            "ARRAY(SELECT k.{c} FROM dkim_keys k WHERE k.account_id = i.account_id \
             AND k.identity_name = i.name ORDER BY k.position)"
        )
    });
    format!(
        "SELECT {}, {keys} FROM identities i WHERE i.account_id = $1 AND i.name = $2",
        SQL.columns
    )
});

/// A new identity's keys, bound as `KeyArrays` after the account and name.
static INSERT_KEYS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO dkim_keys ({}) {}",
        key_columns(),
        key_source(1, 2, 3)
    )
});

fn load_identity<C: GenericClient>(
    db: &mut Db<'_, C>,
    account: &AccountId,
    name: &str,
) -> Result<Option<Identity>, StoreError> {
    let Some(row) = db
        .query_opt(&SELECT_WITH_KEYS, &[&account.as_str(), &name])
        .map_err(unavailable)?
    else {
        return Ok(None);
    };
    let at = IDENTITY_COLUMNS.len();
    let selectors: Vec<String> = row.get(at);
    let bits: Vec<i64> = row.get(at + 1);
    let public: Vec<Vec<u8>> = row.get(at + 2);
    let sealed: Vec<Vec<u8>> = row.get(at + 3);
    let created: Vec<i64> = row.get(at + 4);
    let retired: Vec<Option<i64>> = row.get(at + 5);
    let keys = selectors
        .into_iter()
        .zip(bits)
        .zip(public.into_iter().zip(sealed))
        .zip(created.into_iter().zip(retired))
        .map(
            |(((selector, bits), (public_der, sealed_private)), (created_at, retired_at))| {
                codec::KeyRow {
                    selector,
                    bits: u32::try_from(bits).unwrap_or(0),
                    public_der,
                    sealed_private,
                    created_at,
                    retired_at,
                }
            },
        )
        .collect();
    codec::decode_identity(account, identity_row(&row)?, keys).map(Some)
}

/// `update_identity` in one statement, so it needs no transaction: the row is updated only at
/// the version (and incarnation) the caller read, and the keys follow only if it was. Binds
/// `upsert_cells` (`$1` the account, `name` among them), then the version and creation time
/// read, then `KeyArrays`. The keys are upserted by position, each only if it differs, and
/// positions past the count deleted: a row-level trigger (migration 0007) moves the key
/// generation only for a key that changed. Returns how many identity rows were updated (0:
/// not found, or another version).
static UPDATE_AT_VERSION: LazyLock<String> = LazyLock::new(|| {
    let all: Vec<&str> = KEY_COLUMNS
        .iter()
        .copied()
        .chain(IDENTITY_COLUMNS.iter().map(|(n, _)| *n))
        .collect();
    let at = |col: &str| {
        all.iter()
            .position(|c| *c == col)
            .map(|i| i + 1)
            .unwrap_or_else(|| unreachable!("{col} is an identity column"))
    };
    let sets = all
        .iter()
        .enumerate()
        .filter(|(_, c)| !["account_id", "name"].contains(c))
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let n = all.len();
    let (account, name) = (at("account_id"), at("name"));
    let (version, created, first_key) = (n + 1, n + 2, n + 3);
    let count = first_key + KEY_FIELDS.len();
    format!(
        "WITH upd AS (UPDATE identities SET {sets}, v_lease_until = NULL \
         WHERE account_id = ${account} AND name = ${name} AND version = ${version} \
         AND created_at = ${created} RETURNING 1), \
         up AS (INSERT INTO dkim_keys ({columns}) {source} WHERE EXISTS (SELECT 1 FROM upd) \
         ON CONFLICT (account_id, identity_name, position) DO UPDATE SET {set_keys} \
         WHERE ({current}) IS DISTINCT FROM ({excluded}) RETURNING 1), \
         trimmed AS (DELETE FROM dkim_keys WHERE account_id = ${account} \
         AND identity_name = ${name} AND position >= ${count} AND EXISTS (SELECT 1 FROM upd) \
         RETURNING 1) \
         SELECT (SELECT count(*) FROM upd)",
        columns = key_columns(),
        source = key_source(account, name, first_key),
        set_keys = key_list(|c| format!("{c} = EXCLUDED.{c}")),
        current = key_list(|c| format!("dkim_keys.{c}")),
        excluded = key_list(|c| format!("EXCLUDED.{c}")),
    )
});

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
            // A new identity: no key rows exist for it (a deleted one's went with it).
            let cells = codec::upsert_cells(identity, identity.version);
            let values: Vec<&(dyn ToSql + Sync)> = cells.iter().map(bind).collect();
            tx.execute(&SQL.upsert, &values).map_err(unavailable)?;
            let keys = codec::key_rows(identity);
            if !keys.is_empty() {
                let arrays = KeyArrays::of(&keys);
                let (account, name) = (identity.account.as_str(), identity.name.as_str());
                let mut values: Vec<&(dyn ToSql + Sync)> = vec![&account, &name];
                // The count is the update's, not this statement's.
                values.extend_from_slice(&arrays.params()[..KEY_FIELDS.len()]);
                tx.execute(&INSERT_KEYS, &values).map_err(unavailable)?;
            }
            Ok(())
        })
    }

    fn get_identity(
        &self,
        account: &AccountId,
        name: &IdentityName,
    ) -> Result<Option<Identity>, StoreError> {
        self.one(|c| load_identity(c, account, name.as_str()))
    }

    fn update_identity(&self, identity: &Identity) -> Result<u64, StoreError> {
        let next = identity.version + 1;
        let cells = codec::upsert_cells(identity, next);
        let keys = codec::key_rows(identity);
        let arrays = KeyArrays::of(&keys);
        let (version, created_at) = (identity.version as i64, identity.created_at.0);
        let mut values: Vec<&(dyn ToSql + Sync)> = cells.iter().map(bind).collect();
        values.extend_from_slice(&[&version, &created_at]);
        values.extend_from_slice(&arrays.params());
        self.one(|c| {
            let updated: i64 = c
                .query_one(&UPDATE_AT_VERSION, &values)
                .map_err(unavailable)?
                .get(0);
            if updated == 1 {
                return Ok(next);
            }
            // Why not: the identity is gone, or another write (or a delete and re-create: the
            // same version of another identity) came first.
            let exists = c
                .query_opt(
                    "SELECT 1 FROM identities WHERE account_id = $1 AND name = $2",
                    &[&identity.account.as_str(), &identity.name.as_str()],
                )
                .map_err(unavailable)?;
            Err(if exists.is_some() {
                StoreError::Conflict
            } else {
                StoreError::NotFound
            })
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

    /// The sum of the per-connection counters (migration 0007), in one statement.
    fn key_generation(&self) -> Result<u64, StoreError> {
        self.one(|c| {
            Ok(
                c.query_one("SELECT sum(value)::bigint FROM key_generation", &[])
                    .map_err(unavailable)?
                    .get::<_, i64>(0) as u64,
            )
        })
    }
}
