//! The storage conformance suite: one battery of checks that every `Store` backend must pass,
//! called from each backend's tests with a fresh, empty store. One module per store concern:
//! `identities`, `queue` (the check queue), `keyzone` (the key zone's source), `accounts`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sesame_core::model::{
    AccountId, Advice, AdviceKind, AdviceStatus, Dkim, DkimKey, DkimKeys, DkimOrigin, DkimStatus,
    DkimToken, DomainName, Identity, IdentityName, KeyLength, KeyLengthHistory, LinkHash, MailFrom,
    MxFailure, Recommendations, Revocation, Selector, SlotState, SoaRecord, Tag, Timestamp,
    Verification, VerificationError, VerificationLink,
};
use sesame_core::ports::{Account, Store};

/// Edits an identity's keys in their stored form (each key with its retirement time, the
/// signing slot, the staged slot): the battery writes shapes the use cases never make, to
/// check the store keeps exactly what it is given.
pub(crate) fn edit_keys(
    identity: &mut Identity,
    f: impl FnOnce(&mut Vec<(DkimKey, Option<Timestamp>)>, &mut usize, &mut Option<usize>),
) {
    let dkim = identity.dkim.as_mut().unwrap();
    let mut keys: Vec<(DkimKey, Option<Timestamp>)> = dkim
        .keys
        .slots()
        .map(|(k, s)| {
            let retired = match s {
                SlotState::Retired(t) => Some(t),
                _ => None,
            };
            (k.clone(), retired)
        })
        .collect();
    let mut signing = dkim.keys.signing_slot();
    let mut staged = dkim.keys.staged().map(|(i, _)| i);
    f(&mut keys, &mut signing, &mut staged);
    dkim.keys = DkimKeys::from_stored(keys, signing, staged).unwrap();
}

mod accounts;
mod identities;
mod keyzone;
mod publishers;
mod queue;
mod templates;

pub(crate) fn account(store: &dyn Store, id: &str, name: &str) -> AccountId {
    let a = Account {
        id: AccountId::parse(id).unwrap(),
        name: name.into(),
        created_at: Timestamp(1),
    };
    store.insert_account(&a).unwrap();
    a.id
}

pub(crate) fn token(c: char) -> DkimToken {
    DkimToken::parse(&c.to_string().repeat(32)).unwrap()
}

pub(crate) fn easy_domain(account: &AccountId, name: &str) -> Identity {
    let tokens = vec![token('a'), token('b'), token('c')];
    Identity {
        account: account.clone(),
        name: IdentityName::parse(name).unwrap(),
        version: 1,
        created_at: Timestamp(1_000),
        feedback_forwarding: true,
        dkim: Some(Dkim {
            signing_enabled: true,
            keys: DkimKeys::from_stored(
                tokens
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let key = DkimKey {
                            selector: Selector::from_token(t),
                            bits: 2048,
                            public_der: vec![i as u8; 10],
                            sealed_private: vec![0xee, i as u8],
                            created_at: Timestamp(1_000),
                        };
                        (key, (i == 2).then_some(Timestamp(900)))
                    })
                    .collect(),
                1,
                Some(0),
            )
            .unwrap(),
            origin: DkimOrigin::Easy {
                tokens,
                lengths: KeyLengthHistory {
                    next_length: KeyLength::Rsa2048,
                    changed_at: Some(Timestamp(5)),
                    downgraded_at: None,
                },
            },
            revocations: vec![Revocation {
                selector: Selector::parse("old").unwrap(),
                at: Timestamp(950),
                by: "ops@example.com".into(),
            }],
        }),
        signing_override: None,
        verification_status: DkimStatus::Pending,
        tags: vec![
            Tag::parse("team", "mail").unwrap(),
            Tag::parse("empty", "").unwrap(),
        ],
        verification: Verification {
            last_checked: Some(Timestamp(900)),
            last_success: None,
            error: Some(VerificationError::HostNotFound),
            soa: Some(SoaRecord {
                primary_name_server: "ns1.example.com".into(),
                admin_email: "hostmaster.example.com".into(),
                serial: 2026112601,
            }),
            pending_since: Some(Timestamp(1_000)),
            failing_since: None,
            next_check_at: Some(Timestamp(9_000_000_000_000)),
            attempts: 3,
        },
        mail_from: Some(MailFrom {
            domain: DomainName::parse(&format!("bounce.{name}")).unwrap(),
            status: DkimStatus::TemporaryFailure,
            verification: Verification {
                last_checked: Some(Timestamp(950)),
                last_success: Some(Timestamp(940)),
                error: Some(VerificationError::DnsServerError),
                soa: None,
                pending_since: Some(Timestamp(1_001)),
                failing_since: Some(Timestamp(960)),
                next_check_at: Some(Timestamp(8_000_000_000_000)),
                attempts: 2,
            },
        }),
        mx_failure: MxFailure::RejectMessage,
        recommendations: Recommendations {
            items: vec![
                Advice {
                    kind: AdviceKind::SpfMultiple,
                    status: AdviceStatus::Open,
                    created_at: Timestamp(970),
                    updated_at: Timestamp(970),
                },
                Advice {
                    kind: AdviceKind::DmarcMissing,
                    status: AdviceStatus::Fixed,
                    created_at: Timestamp(900),
                    updated_at: Timestamp(980),
                },
            ],
            next_check_at: Some(Timestamp(8_500_000_000_000)),
            attempts: 4,
        },
        link: None,
    }
}

pub(crate) fn address(account: &AccountId, name: &str) -> Identity {
    Identity {
        account: account.clone(),
        name: IdentityName::parse(name).unwrap(),
        version: 1,
        created_at: Timestamp(2_000),
        feedback_forwarding: false,
        dkim: None,
        signing_override: Some(false),
        verification_status: DkimStatus::Pending,
        tags: vec![],
        verification: Verification::default(),
        mail_from: None,
        mx_failure: MxFailure::UseDefaultValue,
        recommendations: Recommendations::default(),
        link: Some(VerificationLink {
            hash: link_hash(&format!("{account:?}/{name}")),
            sent_at: Timestamp(2_000),
            expires_at: Timestamp(2_000 + 24 * Timestamp::HOUR),
            success_url: Some("https://app.example/verified?x=1".into()),
            failure_url: None,
        }),
    }
}

/// A link hash made from `seed` (distinct seeds, distinct hashes; a store keeps hashes unique).
pub(crate) fn link_hash(seed: &str) -> LinkHash {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let part = |salt: u8| {
        let mut h = DefaultHasher::new();
        (salt, seed).hash(&mut h);
        format!("{:016x}", h.finish())
    };
    LinkHash::parse(&(0..4).map(part).collect::<String>()).unwrap()
}

/// Runs every check against `store`, which must be empty. `concurrent` gives a second handle
/// on the same data (for backends whose handles differ per thread) or the same store again.
pub fn suite(store: &(dyn Store + 'static)) {
    accounts::accounts_and_keys(store);
    identities::identity_round_trip(store);
    identities::updates_are_versioned(store);
    identities::delete_removes_everything(store);
    identities::listing_pages_filters_and_tenancy(store);
    identities::concurrent_writers_lose_no_update(store);
    identities::counts_follow_types_statuses_and_accounts(store);
    identities::links_are_found_by_their_hash_in_any_account(store);
    queue::due_checks_are_leased_once(store);
    queue::every_schedule_makes_an_identity_due(store);
    templates::templates_round_trip_with_quota_paging_and_tenancy(store);
    keyzone::published_keys_follow_writes(store);
    publishers::publishers_round_trip_versioned_per_account(store);
}

/// `DATABASE_URL` for a test that needs PostgreSQL; `None` (after saying so past the output
/// capture) when it is unset, and a panic instead when `SESAME_REQUIRE_POSTGRES=1`
/// (`scripts/test` sets it), so no PostgreSQL half is skipped unnoticed.
#[cfg(all(test, feature = "postgres"))]
pub(crate) fn postgres_url(what: &str) -> Option<String> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Some(url);
    }
    let required = std::env::var("SESAME_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "SESAME_REQUIRE_POSTGRES=1 but DATABASE_URL is not set: {what} cannot run"
    );
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("NOT RUN: {what} needs DATABASE_URL (CI sets it)\n").as_bytes(),
    );
    None
}

/// A schema name no other test run uses.
#[cfg(all(test, feature = "postgres"))]
pub(crate) fn fresh_schema(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    )
}

#[cfg(test)]
mod tests {
    use sesame_core::ports::{AccountStore, KeyZoneSource};

    /// How many migration files a backend has (`migrations/<backend>/*.sql`): the schema
    /// version a current database must record.
    fn migration_files(backend: &str) -> usize {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "sql")
            })
            .count()
    }

    #[test]
    fn sqlite_passes_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("sesame.db")).unwrap();
        super::suite(&store);
    }

    /// The cache in front of SQLite keeps every promise of the store.
    #[test]
    fn the_cached_sqlite_store_passes_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("sesame.db")).unwrap();
        super::suite(&crate::Cached::new(store));
    }

    /// Each migration runs exactly once: a fresh database records every migration in
    /// `user_version`, and opening it again twice runs none of them again (the last one bumps
    /// the key generation, so a re-run would show there) and keeps the data.
    #[test]
    fn sqlite_survives_reopen_with_migrations_applied_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sesame.db");
        let version = || -> i64 {
            rusqlite::Connection::open(&path)
                .unwrap()
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap()
        };
        let generation = {
            let store = crate::SqliteStore::open(&path).unwrap();
            super::account(&store, "700000000001", "persist");
            store.key_generation().unwrap()
        };
        let want = migration_files("sqlite") as i64;
        assert_eq!(
            version(),
            want,
            "every migration recorded after the first open"
        );
        for reopen in 1..=2 {
            let store = crate::SqliteStore::open(&path).unwrap();
            assert!(store.account_by_name("persist").unwrap().is_some());
            assert_eq!(
                store.key_generation().unwrap(),
                generation,
                "open {reopen} re-ran a migration"
            );
            drop(store);
            assert_eq!(version(), want, "open {reopen} changed the schema version");
        }
    }

    /// Runs against `DATABASE_URL` (e.g. `postgres://root@127.0.0.1/test`) in a fresh schema
    /// that is dropped afterwards. Without it, panics when `SESAME_REQUIRE_POSTGRES=1`
    /// (`scripts/test` sets it) and otherwise says loudly that this half did not run.
    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_passes_the_suite() {
        let Some(url) = super::postgres_url("the PostgreSQL conformance suite") else {
            return;
        };
        let schema = super::fresh_schema("sesame_test");
        let store = crate::PostgresStore::open(&url, Some(&schema)).unwrap();
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let cached_schema = format!("{schema}_cached");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::suite(&store);
            // The cache in front of PostgreSQL keeps every promise of the store too.
            super::suite(&crate::Cached::new(
                crate::PostgresStore::open(&url, Some(&cached_schema)).unwrap(),
            ));
            // Each migration ran exactly once and is recorded once; opening again twice runs
            // none of them again and keeps the data.
            let recorded = |admin: &mut postgres::Client| -> Vec<i32> {
                admin
                    .query(
                        &format!("SELECT version FROM {schema}.schema_migrations ORDER BY version"),
                        &[],
                    )
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            };
            let want: Vec<i32> = (1..=migration_files("postgres") as i32).collect();
            assert_eq!(recorded(&mut admin), want);
            let generation = store.key_generation().unwrap();
            for reopen in 1..=2 {
                let again = crate::PostgresStore::open(&url, Some(&schema)).unwrap();
                assert!(again.account_by_name("alpha").unwrap().is_some());
                assert_eq!(
                    again.key_generation().unwrap(),
                    generation,
                    "open {reopen} re-ran a migration"
                );
                assert_eq!(recorded(&mut admin), want, "open {reopen}");
            }
        }));
        admin
            .batch_execute(&format!(
                "DROP SCHEMA {schema} CASCADE; DROP SCHEMA IF EXISTS {cached_schema} CASCADE"
            ))
            .unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }

    #[test]
    fn the_in_memory_fake_passes_the_suite_too() {
        super::suite(&sesame_core::testing::MemStore::default());
    }
}
