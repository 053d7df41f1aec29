//! The PostgreSQL store: the same `Store` contract as SQLite, for several Sesame nodes over one
//! database. Every method is one transaction; optimistic versions are checked under
//! `SELECT … FOR UPDATE`, the identity quota under a per-account advisory lock, and due
//! verifications are claimed with `FOR UPDATE SKIP LOCKED` so two nodes never take the same
//! identity. Uses the synchronous `postgres` client: the core is synchronous and the API runs
//! it on tokio's blocking pool.

use crate::codec;
use postgres::{Client, NoTls, Row, Transaction};
use sesame_core::StoreError;
use sesame_core::model::{
    AccountId, Dkim, Identity, IdentityFilter, IdentityName, IdentitySummary, Timestamp,
};
use sesame_core::ports::{AccessKey, Account, Store};
use std::sync::Mutex;

/// Versioned migrations, applied in order under an advisory lock (nodes may start together).
const MIGRATIONS: &[&str] = &[include_str!("../migrations/postgres/0001_init.sql")];
const MIGRATION_LOCK: i64 = 0x5e5a_3e00;
/// Connections per node; requests beyond this wait for a free one rather than exhausting the
/// server's `max_connections` (100 by default) when several nodes share it.
const MAX_CONNECTIONS: usize = 16;

struct Pool {
    idle: Vec<Client>,
    open: usize,
}

const IDENTITY_COLUMNS: &str = "name, version, created_at, feedback_forwarding, signing_override, verification_status, dkim_origin, dkim_signing_enabled, dkim_status, dkim_tokens, dkim_selector, dkim_next_length, dkim_length_changed_at, dkim_downgraded_at, tags, v_last_checked, v_last_success, v_error, v_soa, v_pending_since, v_failing_since, v_next_check_at, v_attempts, dkim_active, dkim_staged";
const UPSERT: &str = "INSERT INTO identities (account_id, identity_type, name, version, created_at, feedback_forwarding, signing_override, verification_status, dkim_origin, dkim_signing_enabled, dkim_status, dkim_tokens, dkim_selector, dkim_next_length, dkim_length_changed_at, dkim_downgraded_at, tags, v_last_checked, v_last_success, v_error, v_soa, v_pending_since, v_failing_since, v_next_check_at, v_attempts, dkim_active, dkim_staged) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27) ON CONFLICT (account_id, name) DO UPDATE SET identity_type = EXCLUDED.identity_type, version = EXCLUDED.version, created_at = EXCLUDED.created_at, feedback_forwarding = EXCLUDED.feedback_forwarding, signing_override = EXCLUDED.signing_override, verification_status = EXCLUDED.verification_status, dkim_origin = EXCLUDED.dkim_origin, dkim_signing_enabled = EXCLUDED.dkim_signing_enabled, dkim_status = EXCLUDED.dkim_status, dkim_tokens = EXCLUDED.dkim_tokens, dkim_selector = EXCLUDED.dkim_selector, dkim_next_length = EXCLUDED.dkim_next_length, dkim_length_changed_at = EXCLUDED.dkim_length_changed_at, dkim_downgraded_at = EXCLUDED.dkim_downgraded_at, tags = EXCLUDED.tags, v_last_checked = EXCLUDED.v_last_checked, v_last_success = EXCLUDED.v_last_success, v_error = EXCLUDED.v_error, v_soa = EXCLUDED.v_soa, v_pending_since = EXCLUDED.v_pending_since, v_failing_since = EXCLUDED.v_failing_since, v_next_check_at = EXCLUDED.v_next_check_at, v_attempts = EXCLUDED.v_attempts, dkim_active = EXCLUDED.dkim_active, dkim_staged = EXCLUDED.dkim_staged, v_lease_until = NULL";

/// A PostgreSQL database (optionally one schema of it).
pub struct PostgresStore {
    url: String,
    schema: Option<String>,
    pool: Mutex<Pool>,
    freed: std::sync::Condvar,
}

fn unavailable(e: postgres::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("a store lock was poisoned by a panic".into())
}

impl PostgresStore {
    /// Connects to `url`, in `schema` if given (created if missing; tests use one per run),
    /// and applies pending migrations.
    pub fn open(url: &str, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        if let Some(s) = schema
            && !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::Unavailable(format!(
                "invalid schema name {s:?}"
            )));
        }
        let store = PostgresStore {
            url: url.to_owned(),
            schema: schema.map(str::to_owned),
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                open: 1,
            }),
            freed: std::sync::Condvar::new(),
        };
        let mut client = store.connect()?;
        let mut tx = client.transaction().map_err(unavailable)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(unavailable)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)",
        )
        .map_err(unavailable)?;
        let done: i64 = tx
            .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
            .map_err(unavailable)?
            .get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            tx.batch_execute(sql).map_err(unavailable)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&((i + 1) as i32)],
            )
            .map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
        store.pool.lock().map_err(poisoned)?.idle.push(client);
        Ok(store)
    }

    fn connect(&self) -> Result<Client, StoreError> {
        let mut client = Client::connect(&self.url, NoTls).map_err(unavailable)?;
        if let Some(s) = &self.schema {
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}"
                ))
                .map_err(unavailable)?;
        }
        Ok(client)
    }

    /// Runs `f` in one transaction on a pooled connection; a broken connection is dropped, so
    /// the next call reconnects (a database restart needs no Sesame restart).
    fn tx<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.checkout()?;
        let result = (|| {
            let mut tx = client.transaction().map_err(unavailable)?;
            let out = f(&mut tx)?;
            tx.commit().map_err(unavailable)?;
            Ok(out)
        })();
        let mut pool = self.pool.lock().map_err(poisoned)?;
        if client.is_closed() {
            pool.open -= 1;
        } else {
            pool.idle.push(client);
        }
        self.freed.notify_one();
        result
    }

    /// An idle connection, a new one while under the limit, or the next one freed.
    fn checkout(&self) -> Result<Client, StoreError> {
        let mut pool = self.pool.lock().map_err(poisoned)?;
        loop {
            while let Some(c) = pool.idle.pop() {
                if !c.is_closed() {
                    return Ok(c);
                }
                pool.open -= 1;
            }
            if pool.open < MAX_CONNECTIONS {
                pool.open += 1;
                drop(pool);
                return self.connect().inspect_err(|_| {
                    if let Ok(mut p) = self.pool.lock() {
                        p.open -= 1;
                    }
                    self.freed.notify_one();
                });
            }
            pool = self.freed.wait(pool).map_err(poisoned)?;
        }
    }
}

fn identity_row(r: &Row) -> codec::IdentityRow {
    codec::IdentityRow {
        name: r.get(0),
        version: r.get(1),
        created_at: r.get(2),
        feedback_forwarding: r.get(3),
        signing_override: r.get(4),
        verification_status: r.get(5),
        dkim_origin: r.get(6),
        dkim_signing_enabled: r.get(7),
        dkim_status: r.get(8),
        dkim_tokens: r.get(9),
        dkim_selector: r.get(10),
        dkim_next_length: r.get(11),
        dkim_length_changed_at: r.get(12),
        dkim_downgraded_at: r.get(13),
        tags: r.get(14),
        v_last_checked: r.get(15),
        v_last_success: r.get(16),
        v_error: r.get(17),
        v_soa: r.get(18),
        v_pending_since: r.get(19),
        v_failing_since: r.get(20),
        v_next_check_at: r.get(21),
        v_attempts: r.get(22),
        dkim_active: r.get(23),
        dkim_staged: r.get(24),
    }
}

fn load_identity(
    tx: &mut Transaction<'_>,
    account: &AccountId,
    name: &str,
) -> Result<Option<Identity>, StoreError> {
    let sql =
        format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE account_id = $1 AND name = $2");
    let Some(row) = tx
        .query_opt(&sql, &[&account.as_str(), &name])
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
    codec::decode_identity(account, identity_row(&row), keys).map(Some)
}

fn save_identity(
    tx: &mut Transaction<'_>,
    identity: &Identity,
    version: u64,
) -> Result<(), StoreError> {
    let row = codec::encode_identity(identity, version);
    let kind = codec::type_text(identity.name.kind());
    tx.execute(
        UPSERT,
        &[
            &identity.account.as_str(),
            &kind,
            &row.name,
            &row.version,
            &row.created_at,
            &row.feedback_forwarding,
            &row.signing_override,
            &row.verification_status,
            &row.dkim_origin,
            &row.dkim_signing_enabled,
            &row.dkim_status,
            &row.dkim_tokens,
            &row.dkim_selector,
            &row.dkim_next_length,
            &row.dkim_length_changed_at,
            &row.dkim_downgraded_at,
            &row.tags,
            &row.v_last_checked,
            &row.v_last_success,
            &row.v_error,
            &row.v_soa,
            &row.v_pending_since,
            &row.v_failing_since,
            &row.v_next_check_at,
            &row.v_attempts,
            &row.dkim_active,
            &row.dkim_staged,
        ],
    )
    .map_err(unavailable)?;
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
    let unchanged = codec::keys_unchanged(&stored, identity);
    let keys = identity
        .dkim
        .as_ref()
        .map(|d: &Dkim| d.keys.as_slice())
        .unwrap_or_default();
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
                &k.selector.as_str(),
                &i64::from(k.bits),
                &k.public_der,
                &k.sealed_private,
                &k.created_at.0,
                &k.retired_at.map(|t| t.0),
            ],
        )
        .map_err(unavailable)?;
    }
    Ok(())
}

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

impl Store for PostgresStore {
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
                    "SELECT version FROM identities WHERE account_id = $1 AND name = $2 FOR UPDATE",
                    &[&identity.account.as_str(), &identity.name.as_str()],
                )
                .map_err(unavailable)?;
            match row.map(|r| r.get::<_, i64>(0) as u64) {
                None => Err(StoreError::NotFound),
                Some(v) if v != identity.version => Err(StoreError::Conflict),
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
                        &filter.identity_type.map(codec::type_text),
                        &filter.verification_status.map(codec::status_text),
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
                     WHERE v_next_check_at <= $1 AND (v_lease_until IS NULL OR v_lease_until <= $1) \
                     ORDER BY v_next_check_at LIMIT $2 FOR UPDATE SKIP LOCKED",
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
        self.tx(|tx| {
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
