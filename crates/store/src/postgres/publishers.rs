//! DNS publishers on PostgreSQL.

use super::{PostgresStore, unavailable};
use crate::codec::{self, PUBLISHER_COLUMNS, PublisherRow};
use postgres::Row;
use sesame_core::StoreError;
use sesame_core::model::{AccountId, DomainName, PublishState, Publisher};
use sesame_core::ports::PublisherStore;

fn row(r: &Row) -> PublisherRow {
    PublisherRow {
        account_id: r.get(0),
        domain: r.get(1),
        server: r.get(2),
        zone: r.get(3),
        key_name: r.get(4),
        algorithm: r.get(5),
        sealed_secret: r.get(6),
        byodkim: r.get(7),
        state: r.get(8),
        version: r.get(9),
        created_at: r.get(10),
    }
}

impl PublisherStore for PostgresStore {
    fn put_publisher(&self, p: &Publisher) -> Result<(), StoreError> {
        let state = codec::encode_publish_state(&p.state);
        self.tx(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO dns_publishers ({PUBLISHER_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10) \
                     ON CONFLICT (account_id, domain) DO UPDATE SET server = excluded.server, \
                     zone = excluded.zone, key_name = excluded.key_name, \
                     algorithm = excluded.algorithm, sealed_secret = excluded.sealed_secret, \
                     byodkim = excluded.byodkim, state = excluded.state, \
                     version = dns_publishers.version + 1"
                ),
                &[
                    &p.account.as_str(),
                    &p.domain.as_str(),
                    &p.server,
                    &p.zone.as_str(),
                    &p.key_name,
                    &p.algorithm,
                    &p.sealed_secret,
                    &p.byodkim,
                    &state,
                    &p.created_at.0,
                ],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn publisher(
        &self,
        account: &AccountId,
        domain: &DomainName,
    ) -> Result<Option<Publisher>, StoreError> {
        self.one(|tx| {
            tx.query_opt(
                &format!(
                    "SELECT {PUBLISHER_COLUMNS} FROM dns_publishers \
                     WHERE account_id = $1 AND domain = $2"
                ),
                &[&account.as_str(), &domain.as_str()],
            )
            .map_err(unavailable)?
            .map(|r| codec::decode_publisher(row(&r)))
            .transpose()
        })
    }

    fn list_publishers(&self) -> Result<Vec<Publisher>, StoreError> {
        self.tx(|tx| {
            tx.query(
                &format!(
                    "SELECT {PUBLISHER_COLUMNS} FROM dns_publishers ORDER BY account_id, domain"
                ),
                &[],
            )
            .map_err(unavailable)?
            .iter()
            .map(|r| codec::decode_publisher(row(r)))
            .collect()
        })
    }

    fn delete_publisher(&self, account: &AccountId, domain: &DomainName) -> Result<(), StoreError> {
        self.tx(|tx| {
            let n = tx
                .execute(
                    "DELETE FROM dns_publishers WHERE account_id = $1 AND domain = $2",
                    &[&account.as_str(), &domain.as_str()],
                )
                .map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn save_publish_state(
        &self,
        account: &AccountId,
        domain: &DomainName,
        version: u64,
        state: &PublishState,
    ) -> Result<u64, StoreError> {
        let state = codec::encode_publish_state(state);
        let version = version as i64;
        self.tx(|tx| {
            let n = tx
                .execute(
                    "UPDATE dns_publishers SET state = $4, version = version + 1 \
                     WHERE account_id = $1 AND domain = $2 AND version = $3",
                    &[&account.as_str(), &domain.as_str(), &version, &state],
                )
                .map_err(unavailable)?;
            if n == 1 {
                return Ok((version + 1) as u64);
            }
            let exists: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM dns_publishers WHERE account_id = $1 \
                     AND domain = $2)",
                    &[&account.as_str(), &domain.as_str()],
                )
                .map_err(unavailable)?
                .get(0);
            Err(if exists {
                StoreError::Conflict
            } else {
                StoreError::NotFound
            })
        })
    }
}
