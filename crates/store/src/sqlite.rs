//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, so a committed transaction
//! is on disk before the call returns and survives `kill -9` and power loss. One connection
//! writes (SQLite allows one writer at a time anyway); readers take pooled connections so reads
//! never wait behind a write.

use crate::codec;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use sesame_core::StoreError;
use sesame_core::model::{
    AccountId, Dkim, Identity, IdentityFilter, IdentityName, IdentitySummary, Timestamp,
};
use sesame_core::ports::{AccessKey, Account, Store};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_verification.sql"),
    include_str!("../migrations/sqlite/0003_rotation.sql"),
];

/// Readers kept open for reuse; more are opened on demand under load.
const MAX_IDLE_READERS: usize = 8;

/// A SQLite database file.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let writer = Connection::open(path).map_err(unavailable)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(unavailable)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "could not switch {} to WAL mode (got {mode})",
                path.display()
            )));
        }
        configure(&writer).map_err(unavailable)?;
        migrate(&writer)?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().map_err(poisoned)?.pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(unavailable)?;
                configure(&c).map_err(unavailable)?;
                c
            }
        };
        // A deferred transaction gives the whole read one consistent snapshot.
        let out = {
            let tx = conn.transaction().map_err(unavailable)?;
            let out = f(&tx);
            tx.finish().map_err(unavailable)?;
            out
        };
        let mut pool = self.readers.lock().map_err(poisoned)?;
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        out
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer.lock().map_err(poisoned)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let out = f(&tx)?;
        tx.commit().map_err(unavailable)?;
        Ok(out)
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("a store lock was poisoned by a panic".into())
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let done: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unavailable)?;
    let done = usize::try_from(done).unwrap_or(0);
    if done > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "the database is at schema version {done}, newer than this binary knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let batch = format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        );
        conn.execute_batch(&batch).map_err(unavailable)?;
    }
    Ok(())
}

const IDENTITY_COLUMNS: &str = "name, version, created_at, feedback_forwarding, \
     signing_override, verification_status, dkim_origin, dkim_signing_enabled, dkim_status, \
     dkim_tokens, dkim_selector, dkim_next_length, dkim_length_changed_at, dkim_downgraded_at, tags, \
     v_last_checked, v_last_success, v_error, v_soa, v_pending_since, v_failing_since, \
     v_next_check_at, v_attempts, dkim_active, dkim_staged";

fn load_identity(
    tx: &Transaction<'_>,
    account: &AccountId,
    name: &str,
) -> Result<Option<Identity>, StoreError> {
    let sql =
        format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE account_id = ?1 AND name = ?2");
    let row = tx
        .query_row(&sql, params![account.as_str(), name], |r| {
            Ok(codec::IdentityRow {
                name: r.get(0)?,
                version: r.get(1)?,
                created_at: r.get(2)?,
                feedback_forwarding: r.get(3)?,
                signing_override: r.get(4)?,
                verification_status: r.get(5)?,
                dkim_origin: r.get(6)?,
                dkim_signing_enabled: r.get(7)?,
                dkim_status: r.get(8)?,
                dkim_tokens: r.get(9)?,
                dkim_selector: r.get(10)?,
                dkim_next_length: r.get(11)?,
                dkim_length_changed_at: r.get(12)?,
                dkim_downgraded_at: r.get(13)?,
                tags: r.get(14)?,
                v_last_checked: r.get(15)?,
                v_last_success: r.get(16)?,
                v_error: r.get(17)?,
                v_soa: r.get(18)?,
                v_pending_since: r.get(19)?,
                v_failing_since: r.get(20)?,
                v_next_check_at: r.get(21)?,
                v_attempts: r.get(22)?,
                dkim_active: r.get(23)?,
                dkim_staged: r.get(24)?,
            })
        })
        .optional()
        .map_err(unavailable)?;
    let Some(row) = row else { return Ok(None) };
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
    let row = codec::encode_identity(identity, version);
    let unchanged = keys_unchanged(tx, identity)?;
    // An upsert, not INSERT OR REPLACE: a replace would delete the row and cascade to its keys.
    // Any write ends a verification lease.
    tx.execute(
        "INSERT INTO identities (account_id, identity_type, name, version, created_at, \
         feedback_forwarding, signing_override, verification_status, dkim_origin, \
         dkim_signing_enabled, dkim_status, dkim_tokens, dkim_selector, dkim_next_length, \
         dkim_length_changed_at, dkim_downgraded_at, tags, v_last_checked, v_last_success, \
         v_error, v_soa, v_pending_since, v_failing_since, v_next_check_at, v_attempts, \
         dkim_active, dkim_staged) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27) \
         ON CONFLICT (account_id, name) DO UPDATE SET identity_type = excluded.identity_type, \
         version = excluded.version, created_at = excluded.created_at, \
         feedback_forwarding = excluded.feedback_forwarding, \
         signing_override = excluded.signing_override, \
         verification_status = excluded.verification_status, \
         dkim_origin = excluded.dkim_origin, \
         dkim_signing_enabled = excluded.dkim_signing_enabled, \
         dkim_status = excluded.dkim_status, dkim_tokens = excluded.dkim_tokens, \
         dkim_selector = excluded.dkim_selector, dkim_next_length = excluded.dkim_next_length, \
         dkim_length_changed_at = excluded.dkim_length_changed_at, \
         dkim_downgraded_at = excluded.dkim_downgraded_at, tags = excluded.tags, \
         v_last_checked = excluded.v_last_checked, v_last_success = excluded.v_last_success, \
         v_error = excluded.v_error, v_soa = excluded.v_soa, \
         v_pending_since = excluded.v_pending_since, \
         v_failing_since = excluded.v_failing_since, \
         v_next_check_at = excluded.v_next_check_at, v_attempts = excluded.v_attempts, \
         dkim_active = excluded.dkim_active, dkim_staged = excluded.dkim_staged, \
         v_lease_until = NULL",
        params![
            identity.account.as_str(),
            codec::type_text(identity.name.kind()),
            row.name,
            row.version,
            row.created_at,
            row.feedback_forwarding,
            row.signing_override,
            row.verification_status,
            row.dkim_origin,
            row.dkim_signing_enabled,
            row.dkim_status,
            row.dkim_tokens,
            row.dkim_selector,
            row.dkim_next_length,
            row.dkim_length_changed_at,
            row.dkim_downgraded_at,
            row.tags,
            row.v_last_checked,
            row.v_last_success,
            row.v_error,
            row.v_soa,
            row.v_pending_since,
            row.v_failing_since,
            row.v_next_check_at,
            row.v_attempts,
            row.dkim_active,
            row.dkim_staged,
        ],
    )
    .map_err(unavailable)?;
    if unchanged {
        return Ok(());
    }
    tx.execute(
        "DELETE FROM dkim_keys WHERE account_id = ?1 AND identity_name = ?2",
        params![identity.account.as_str(), identity.name.as_str()],
    )
    .map_err(unavailable)?;
    if let Some(Dkim { keys, .. }) = &identity.dkim {
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
                k.selector.as_str(),
                k.bits,
                k.public_der,
                k.sealed_private,
                k.created_at.0,
                k.retired_at.map(|t| t.0),
            ])
            .map_err(unavailable)?;
        }
    }
    Ok(())
}

fn stored_version(
    tx: &Transaction<'_>,
    account: &AccountId,
    name: &str,
) -> Result<Option<u64>, StoreError> {
    tx.query_row(
        "SELECT version FROM identities WHERE account_id = ?1 AND name = ?2",
        params![account.as_str(), name],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map_err(unavailable)
    .map(|v| v.map(|v| v as u64))
}

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

/// Whether the stored keys already equal the identity's, so a write that changes only flags,
/// tags or verification state leaves the key rows (and the key-zone generation) alone.
fn keys_unchanged(tx: &Transaction<'_>, identity: &Identity) -> Result<bool, StoreError> {
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
    Ok(codec::keys_unchanged(&stored, identity))
}

impl Store for SqliteStore {
    fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Identity>, StoreError> {
        // The verifier polls several times a second: look first with a reader, so an idle
        // poll never takes the write lock that API writes need.
        let any_due = self.read(|tx| {
            tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM identities WHERE v_next_check_at <= ?1 \
                 AND (v_lease_until IS NULL OR v_lease_until <= ?1))",
                params![now.0],
                |r| r.get::<_, bool>(0),
            )
            .map_err(unavailable)
        })?;
        if !any_due {
            return Ok(vec![]);
        }
        self.write(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT account_id, name FROM identities \
                     WHERE v_next_check_at <= ?1 AND (v_lease_until IS NULL OR v_lease_until <= ?1) \
                     ORDER BY v_next_check_at LIMIT ?2",
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
                tx.execute(
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
            tx.query_row("SELECT value FROM key_generation WHERE id = 0", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v as u64)
            .map_err(unavailable)
        })
    }

    fn insert_identity(&self, identity: &Identity, max_identities: u64) -> Result<(), StoreError> {
        self.write(|tx| {
            if stored_version(tx, &identity.account, identity.name.as_str())?.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            let count: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM identities WHERE account_id = ?1",
                    params![identity.account.as_str()],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
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
        self.read(|tx| load_identity(tx, account, name.as_str()))
    }

    fn update_identity(&self, identity: &Identity) -> Result<u64, StoreError> {
        self.write(|tx| {
            match stored_version(tx, &identity.account, identity.name.as_str())? {
                None => return Err(StoreError::NotFound),
                Some(v) if v != identity.version => return Err(StoreError::Conflict),
                Some(_) => {}
            }
            let next = identity.version + 1;
            save_identity(tx, identity, next)?;
            Ok(next)
        })
    }

    fn delete_identity(&self, account: &AccountId, name: &IdentityName) -> Result<(), StoreError> {
        self.write(|tx| {
            // Keys go through ON DELETE CASCADE, in the same transaction.
            let n = tx
                .execute(
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
                        filter.identity_type.map(codec::type_text),
                        filter.verification_status.map(codec::status_text),
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

    fn insert_account(&self, account: &Account) -> Result<(), StoreError> {
        self.write(|tx| {
            let taken: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM accounts WHERE id = ?1 OR name = ?2",
                    params![account.id.as_str(), account.name],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            if taken > 0 {
                return Err(StoreError::AlreadyExists);
            }
            tx.execute(
                "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![account.id.as_str(), account.name, account.created_at.0],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.read(|tx| {
            tx.query_row(
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
        self.write(|tx| {
            tx.execute(
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
        self.read(|tx| {
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
