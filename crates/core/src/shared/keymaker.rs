//! Makes DKIM keys through the vault and carries out rotation plans: the slow, impure half of
//! DKIM set-up, kept apart from the rules that decide (`keys::plan`) and from storage.

use crate::error::Error;
use crate::keys::Plan;
use crate::model::{
    Dkim, DkimKey, DkimKeys, DkimOrigin, KeyLength, KeyLengthHistory, Selector, Timestamp,
    Verification,
};
use crate::ports::{KeyVault, NewKey, PrivateKeyInput};
use std::sync::Arc;

/// The key length of new Easy DKIM identities (SES developer guide: RSA_2048_BIT).
pub const DEFAULT_KEY_LENGTH: KeyLength = KeyLength::Rsa2048;

/// Key generation and import.
#[derive(Clone)]
pub(crate) struct KeyMaker {
    vault: Arc<dyn KeyVault>,
}

fn to_key(selector: Selector, k: NewKey, now: Timestamp) -> DkimKey {
    DkimKey {
        selector,
        bits: k.bits,
        public_der: k.public_der,
        sealed_private: k.sealed_private,
        created_at: now,
    }
}

fn no_keys() -> Error {
    Error::Internal("a DKIM set-up without keys".into())
}

impl KeyMaker {
    pub(crate) fn new(vault: Arc<dyn KeyVault>) -> KeyMaker {
        KeyMaker { vault }
    }

    /// A new Easy DKIM set-up: three fresh tokens, each with a fresh key of `length`.
    pub(crate) fn easy(
        &self,
        length: KeyLength,
        signing_enabled: bool,
        now: Timestamp,
    ) -> Result<Dkim, Error> {
        let tokens = (0..3)
            .map(|_| self.vault.new_token())
            .collect::<Result<Vec<_>, _>>()?;
        let keys = self.generate(
            tokens.iter().map(Selector::from_token).collect(),
            length,
            now,
        )?;
        Ok(Dkim {
            signing_enabled,
            origin: DkimOrigin::Easy {
                tokens,
                lengths: KeyLengthHistory {
                    next_length: length,
                    changed_at: None,
                    downgraded_at: None,
                },
            },
            keys: DkimKeys::new(keys).ok_or_else(no_keys)?,
            revocations: Vec::new(),
        })
    }

    /// A BYODKIM set-up with the customer's selector and key.
    pub(crate) fn external(
        &self,
        selector: &Selector,
        private_key: &PrivateKeyInput,
        signing_enabled: bool,
        now: Timestamp,
    ) -> Result<Dkim, Error> {
        let key = self.vault.import(private_key)?;
        Ok(Dkim {
            signing_enabled,
            origin: DkimOrigin::External {
                selector: selector.clone(),
            },
            keys: DkimKeys::new(vec![to_key(selector.clone(), key, now)]).ok_or_else(no_keys)?,
            revocations: Vec::new(),
        })
    }

    /// Carries out a rotation plan on an Easy DKIM set-up and its verification schedule.
    pub(crate) fn carry_out(
        &self,
        plan: Plan,
        dkim: &mut Dkim,
        v: &mut Verification,
        now: Timestamp,
    ) -> Result<(), Error> {
        match plan {
            Plan::Keep => {}
            Plan::RecheckBy(at) => {
                v.next_check_at = Some(v.next_check_at.map_or(at, |n| n.min(at)).max(now));
            }
            Plan::Activate => {
                dkim.keys.activate(now);
            }
            Plan::Stage {
                slot,
                length,
                check_at,
            } => {
                let DkimOrigin::Easy { tokens, .. } = &dkim.origin else {
                    return Err(Error::Internal("a rotation planned for BYODKIM".into()));
                };
                let token = tokens
                    .get(slot)
                    .ok_or_else(|| Error::Internal(format!("no token for key slot {slot}")))?;
                let key = self
                    .generate(vec![Selector::from_token(token)], length, now)?
                    .remove(0);
                if !dkim.keys.stage(slot, key) {
                    return Err(Error::Internal(format!("key slot {slot} cannot be staged")));
                }
                v.next_check_at = Some(check_at);
            }
        }
        Ok(())
    }

    /// One key per selector through `KeyVault::generate_many` (parallel threads, or keys the
    /// vault made in advance).
    fn generate(
        &self,
        selectors: Vec<Selector>,
        length: KeyLength,
        now: Timestamp,
    ) -> Result<Vec<DkimKey>, Error> {
        let keys = self.vault.generate_many(length, selectors.len())?;
        if keys.len() != selectors.len() {
            return Err(Error::Internal(format!(
                "the key vault made {} keys, not {}",
                keys.len(),
                selectors.len()
            )));
        }
        Ok(selectors
            .into_iter()
            .zip(keys)
            .map(|(s, k)| to_key(s, k, now))
            .collect())
    }
}
