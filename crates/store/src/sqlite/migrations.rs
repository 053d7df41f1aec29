//! The SQLite schema's migrations, applied in order at open; `PRAGMA user_version` records how
//! many ran. Never edit an applied migration: add the next file.

use super::sql::unavailable;
use rusqlite::Connection;
use sesame_core::StoreError;

/// The migrations, applied in order; `PRAGMA user_version` records how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_verification.sql"),
    include_str!("../../migrations/sqlite/0003_rotation.sql"),
    include_str!("../../migrations/sqlite/0004_keys_rowid.sql"),
    include_str!("../../migrations/sqlite/0005_mail_from.sql"),
    include_str!("../../migrations/sqlite/0006_recommendations.sql"),
    include_str!("../../migrations/sqlite/0007_templates.sql"),
    include_str!("../../migrations/sqlite/0008_links.sql"),
    include_str!("../../migrations/sqlite/0009_publishers.sql"),
];

/// Applies the migrations the database lacks, up to schema version `to` (tests stop short of
/// the newest to build a database as an older binary left it).
pub(super) fn migrate(conn: &Connection, to: usize) -> Result<(), StoreError> {
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
    for (i, sql) in MIGRATIONS.iter().enumerate().take(to).skip(done) {
        let batch = format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        );
        conn.execute_batch(&batch).map_err(unavailable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::SqliteStore;
    use super::super::identities::insert_identity;
    use super::super::sql::unavailable;
    use super::super::test_support::name;
    use super::migrate;
    use crate::conformance::easy_domain;
    use sesame_core::ports::{IdentityStore, KeyZoneSource};

    #[test]
    fn keys_written_before_the_rowid_migration_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sesame.db");
        let acc = sesame_core::model::AccountId::parse("900000000005").unwrap();
        let old = easy_domain(&acc, "old.example.com");
        // A database as schema 3 left it, written by the same row code (0004 changes only how
        // `dkim_keys` is stored, not its columns).
        let generation_before: i64 = {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            conn.pragma_update(None, "foreign_keys", "ON").unwrap();
            migrate(&conn, 3).unwrap();
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(version, 3);
            conn.execute(
                "INSERT INTO accounts (id, name, created_at) VALUES (?1, 'old', 1)",
                [acc.as_str()],
            )
            .unwrap();
            // Today's row code also writes the columns of 0005 and later: add them for the
            // insert and drop them again, so the open below migrates a schema-3 database.
            let later = [
                include_str!("../../migrations/sqlite/0005_mail_from.sql"),
                include_str!("../../migrations/sqlite/0006_recommendations.sql"),
                include_str!("../../migrations/sqlite/0008_links.sql"),
                // 0009's identity column (its new table is no identity column).
                "ALTER TABLE identities ADD COLUMN dkim_revocations TEXT NOT NULL DEFAULT '[]';",
            ];
            for sql in later {
                conn.execute_batch(sql).unwrap();
            }
            let tx = conn.transaction().unwrap();
            insert_identity(&tx, &old, 10).unwrap();
            tx.commit().unwrap();
            conn.execute_batch(
                "DROP INDEX identities_due; CREATE INDEX identities_due ON \
                 identities(v_next_check_at) WHERE v_next_check_at IS NOT NULL; \
                 DROP INDEX identities_link;",
            )
            .unwrap();
            for line in later.iter().flat_map(|sql| sql.lines()) {
                if let Some(rest) = line.strip_prefix("ALTER TABLE identities ADD COLUMN ") {
                    let column = rest.split_whitespace().next().unwrap();
                    conn.execute_batch(&format!("ALTER TABLE identities DROP COLUMN {column}"))
                        .unwrap();
                }
            }
            conn.query_row("SELECT value FROM key_generation", [], |r| r.get(0))
                .unwrap()
        };
        let store = SqliteStore::open(&path).unwrap();
        let got = store
            .get_identity(&acc, &name("old.example.com"))
            .unwrap()
            .unwrap();
        // A revocation trail is newer than schema 3: such a database has none.
        let mut want = old.dkim.clone();
        if let Some(d) = want.as_mut() {
            d.revocations.clear();
        }
        assert_eq!(got.dkim, want);
        assert_eq!(store.published_keys().unwrap().len(), 3);
        let schema: String = store
            .read_one(|c| {
                c.query_row(
                    "SELECT sql FROM sqlite_master WHERE name = 'dkim_keys'",
                    [],
                    |r| r.get(0),
                )
                .map_err(unavailable)
            })
            .unwrap();
        assert!(!schema.contains("WITHOUT ROWID"), "{schema}");
        // The key zone sees the move, and the new table's triggers keep it informed.
        let moved = store.key_generation().unwrap();
        assert!(moved > u64::try_from(generation_before).unwrap());
        store
            .delete_identity(&acc, &name("old.example.com"))
            .unwrap();
        assert!(store.key_generation().unwrap() > moved);
        assert!(store.published_keys().unwrap().is_empty());
    }
}
