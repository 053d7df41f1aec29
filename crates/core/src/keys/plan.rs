//! Easy DKIM rotation as a pure planner: from the key slots, the policy, what happened and
//! `now`, it decides what to do; the use cases carry the plan out (generate a key, apply it,
//! store once). Keeping the decision free of key generation and storage is what lets the
//! table below test every rule without a clock or a vault.
//!
//! The rules that make a rotation never break a signature: a new key is published under a
//! token whose key is not signing, not staged, and either never signed or retired longer ago
//! than the retention (mail signed with it may still be in transit); it starts signing only
//! after the activation delay (DNS caches of the key record) and a successful DNS check made
//! after it was published.

use crate::error::Invalid;
use crate::model::{DkimKeys, DkimStatus, KeyLength, SlotState, Timestamp};

/// How Easy DKIM keys rotate without breaking a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long a staged key is published before it may sign (covers DNS caches of the
    /// key record, whose TTL is 5 minutes).
    pub activation_delay_ms: i64,
    /// How long a retired key stays published for mail in transit.
    pub retention_ms: i64,
    /// Rotate the signing key when it is this old; `None`: only on request.
    pub rotate_every_ms: Option<i64>,
}

impl Default for RotationPolicy {
    fn default() -> RotationPolicy {
        RotationPolicy {
            activation_delay_ms: 15 * 60 * 1000,
            retention_ms: 7 * 24 * Timestamp::HOUR,
            rotate_every_ms: None,
        }
    }
}

/// What asks for a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A DNS check was recorded: the status it gave and the last successful check.
    Checked {
        /// The DKIM status after the check.
        status: DkimStatus,
        /// When the records were last all found right.
        last_success: Option<Timestamp>,
    },
    /// `sesame rotate`: a new key of the configured length, now.
    Rotate,
    /// A key-length change: a key of this length (a staged one is replaced; it never signed).
    LengthChange(KeyLength),
    /// `sesame revoke` revoked the key of this slot: a revoked staged key is replaced in place;
    /// a revoked signing key is followed by the staged one, or else by a new key staged now, in
    /// a free slot or, when every other slot keeps a retired key, in the one retired longest
    /// ago (a compromise outranks the retention).
    Revoked(usize),
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing.
    Keep,
    /// A staged key is waiting for its delay: check again no later than this.
    RecheckBy(Timestamp),
    /// The staged key starts signing; the signing one retires.
    Activate,
    /// Generate a key of `length`, stage it in `slot`, and check DNS again at `check_at`.
    Stage {
        /// The slot (token) that gets the key.
        slot: usize,
        /// The new key's length.
        length: KeyLength,
        /// When the next DNS check should run.
        check_at: Timestamp,
    },
}

/// Decides the next rotation step of an Easy DKIM key set whose configured length is
/// `next_length`. Refusals are for requests (`Rotate`, `LengthChange`); after a check nothing
/// is refused, at worst nothing happens.
pub fn plan(
    keys: &DkimKeys,
    next_length: KeyLength,
    trigger: Trigger,
    policy: &RotationPolicy,
    now: Timestamp,
) -> Result<Plan, Invalid> {
    let staged = keys.staged();
    match trigger {
        Trigger::Checked {
            status,
            last_success,
        } => {
            if let Some((_, key)) = staged {
                let ready = Timestamp(key.created_at.0 + policy.activation_delay_ms);
                let seen = last_success.is_some_and(|t| t >= key.created_at);
                if now >= ready && seen && status == DkimStatus::Success {
                    return Ok(Plan::Activate);
                }
                return Ok(Plan::RecheckBy(ready));
            }
            let old = policy
                .rotate_every_ms
                .is_some_and(|every| now.0 >= keys.signing().created_at.0 + every);
            if !old || status != DkimStatus::Success {
                return Ok(Plan::Keep);
            }
            Ok(
                free_slot(keys, policy, now).map_or(Plan::Keep, |slot| Plan::Stage {
                    slot,
                    length: next_length,
                    check_at: Timestamp(now.0 + policy.activation_delay_ms),
                }),
            )
        }
        Trigger::Rotate => {
            if staged.is_some() {
                return Err(Invalid::RotationInProgress);
            }
            stage_now(keys, next_length, policy, now)
        }
        Trigger::LengthChange(length) => match staged {
            Some((slot, _)) => Ok(Plan::Stage {
                slot,
                length,
                check_at: now,
            }),
            None => stage_now(keys, length, policy, now),
        },
        Trigger::Revoked(slot) => match (keys.state(slot), staged) {
            (Some(SlotState::Staged), _) => Ok(Plan::Stage {
                slot,
                length: next_length,
                check_at: now,
            }),
            (Some(SlotState::Signing), Some(_)) => Ok(Plan::RecheckBy(now)),
            (Some(SlotState::Signing), None) => {
                let oldest_retired = keys
                    .slots()
                    .enumerate()
                    .filter_map(|(i, (_, s))| match s {
                        SlotState::Retired(at) => Some((at, i)),
                        _ => None,
                    })
                    .min()
                    .map(|(_, i)| i);
                Ok(free_slot(keys, policy, now)
                    .or(oldest_retired)
                    .map_or(Plan::Keep, |slot| Plan::Stage {
                        slot,
                        length: next_length,
                        check_at: now,
                    }))
            }
            _ => Ok(Plan::Keep),
        },
    }
}

fn stage_now(
    keys: &DkimKeys,
    length: KeyLength,
    policy: &RotationPolicy,
    now: Timestamp,
) -> Result<Plan, Invalid> {
    let slot = free_slot(keys, policy, now).ok_or_else(|| {
        let until = keys
            .slots()
            .filter_map(|(_, s)| match s {
                SlotState::Retired(at) => Some(at.0 + policy.retention_ms),
                _ => None,
            })
            .min()
            .unwrap_or(now.0);
        Invalid::NoFreeToken(until)
    })?;
    Ok(Plan::Stage {
        slot,
        length,
        check_at: now,
    })
}

/// The first slot whose key may be replaced: never signed, or retired beyond the retention.
fn free_slot(keys: &DkimKeys, policy: &RotationPolicy, now: Timestamp) -> Option<usize> {
    keys.slots().position(|(_, s)| match s {
        SlotState::Free => true,
        SlotState::Retired(at) => now.0 >= at.0 + policy.retention_ms,
        SlotState::Signing | SlotState::Staged => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DkimKey, Selector};
    use DkimStatus::{Pending, Success};
    use KeyLength::{Rsa1024, Rsa2048};

    const MIN: i64 = 60_000;
    const T0: Timestamp = Timestamp(1_700_000_000_000);

    fn at(minutes: i64) -> Timestamp {
        Timestamp(T0.0 + minutes * MIN)
    }

    fn key(created_min: i64) -> DkimKey {
        DkimKey {
            selector: Selector::parse("s").unwrap(),
            bits: 2048,
            public_der: vec![],
            sealed_private: vec![],
            created_at: at(created_min),
        }
    }

    /// Three slots: `s` signing, `t` staged, `r(m)` retired at minute m, `f` free; each key was
    /// made at minute 0 except a staged one, made at minute 100.
    fn slots(spec: &str) -> DkimKeys {
        let mut stored = Vec::new();
        let (mut signing, mut staged) = (0, None);
        for (i, part) in spec.split(' ').enumerate() {
            match part.as_bytes()[0] {
                b's' => {
                    signing = i;
                    stored.push((key(0), None));
                }
                b't' => {
                    staged = Some(i);
                    stored.push((key(100), None));
                }
                b'r' => {
                    let m: i64 = part[2..part.len() - 1].parse().unwrap();
                    stored.push((key(0), Some(at(m))));
                }
                _ => stored.push((key(0), None)),
            }
        }
        DkimKeys::from_stored(stored, signing, staged).unwrap()
    }

    fn policy(every_min: Option<i64>) -> RotationPolicy {
        RotationPolicy {
            activation_delay_ms: 15 * MIN,
            retention_ms: 60 * MIN,
            rotate_every_ms: every_min.map(|m| m * MIN),
        }
    }

    fn checked(status: DkimStatus, success_min: Option<i64>) -> Trigger {
        Trigger::Checked {
            status,
            last_success: success_min.map(at),
        }
    }

    fn stage(slot: usize, length: KeyLength, check_min: i64) -> Result<Plan, Invalid> {
        Ok(Plan::Stage {
            slot,
            length,
            check_at: at(check_min),
        })
    }

    /// (slots, trigger, rotate-every minutes, now in minutes, expected plan)
    type Case = (
        &'static str,
        Trigger,
        Option<i64>,
        i64,
        Result<Plan, Invalid>,
    );

    #[test]
    fn rotation_plan_table() {
        let cases: Vec<Case> = vec![
            // A check with nothing staged and no rotate-every: nothing.
            (
                "s f f",
                checked(Success, Some(10)),
                None,
                10,
                Ok(Plan::Keep),
            ),
            // Staged at minute 100: before the delay, recheck when it is over.
            (
                "s t f",
                checked(Success, Some(110)),
                None,
                110,
                Ok(Plan::RecheckBy(at(115))),
            ),
            // Delay over but the last success predates the key: not seen in DNS yet.
            (
                "s t f",
                checked(Success, Some(99)),
                None,
                120,
                Ok(Plan::RecheckBy(at(115))),
            ),
            // Delay over, seen, but the status is not SUCCESS: wait.
            (
                "s t f",
                checked(Pending, Some(116)),
                None,
                120,
                Ok(Plan::RecheckBy(at(115))),
            ),
            // Delay over, seen after publication, SUCCESS: activate.
            (
                "s t f",
                checked(Success, Some(116)),
                None,
                116,
                Ok(Plan::Activate),
            ),
            (
                "s t f",
                checked(Success, Some(100)),
                None,
                115,
                Ok(Plan::Activate),
            ),
            // Rotate-every: the signing key (minute 0) is 60 minutes old at 60, not before.
            (
                "s f f",
                checked(Success, Some(59)),
                Some(60),
                59,
                Ok(Plan::Keep),
            ),
            (
                "s f f",
                checked(Success, Some(60)),
                Some(60),
                60,
                stage(1, Rsa2048, 75),
            ),
            // ... and only after a SUCCESS.
            (
                "s f f",
                checked(Pending, None),
                Some(60),
                60,
                Ok(Plan::Keep),
            ),
            // ... into a slot retired beyond the retention, not one within it.
            (
                "r(10) s f",
                checked(Success, Some(70)),
                Some(60),
                70,
                stage(0, Rsa2048, 85),
            ),
            (
                "r(50) s r(40)",
                checked(Success, Some(70)),
                Some(60),
                70,
                Ok(Plan::Keep),
            ),
            // Rotate on request: the first free slot; refused while one is staged.
            ("s f f", Trigger::Rotate, None, 5, stage(1, Rsa2048, 5)),
            ("f s f", Trigger::Rotate, None, 5, stage(0, Rsa2048, 5)),
            (
                "s t f",
                Trigger::Rotate,
                None,
                5,
                Err(Invalid::RotationInProgress),
            ),
            // No free slot: refused, saying when the first retired key's retention ends.
            (
                "r(50) s r(40)",
                Trigger::Rotate,
                None,
                70,
                Err(Invalid::NoFreeToken(at(100).0)),
            ),
            (
                "r(50) s r(40)",
                Trigger::Rotate,
                None,
                100,
                stage(2, Rsa2048, 100),
            ),
            // A length change stages a key of that length; a staged key is replaced in place.
            (
                "s f f",
                Trigger::LengthChange(Rsa1024),
                None,
                5,
                stage(1, Rsa1024, 5),
            ),
            (
                "s f t",
                Trigger::LengthChange(Rsa1024),
                None,
                5,
                stage(2, Rsa1024, 5),
            ),
            (
                "r(50) s r(40)",
                Trigger::LengthChange(Rsa1024),
                None,
                70,
                Err(Invalid::NoFreeToken(at(100).0)),
            ),
            // A revoked signing key: the staged key follows as usual, checked now ...
            (
                "s t f",
                Trigger::Revoked(0),
                None,
                5,
                Ok(Plan::RecheckBy(at(5))),
            ),
            // ... else a new key is staged now in a free slot ...
            (
                "r(1) s f",
                Trigger::Revoked(1),
                None,
                5,
                stage(2, Rsa2048, 5),
            ),
            // ... or, with none, in the slot retired longest ago, retention or not.
            (
                "r(50) s r(40)",
                Trigger::Revoked(1),
                None,
                60,
                stage(2, Rsa2048, 60),
            ),
            // A revoked staged key is replaced in place; a retired or free one needs nothing.
            ("s t f", Trigger::Revoked(1), None, 5, stage(1, Rsa2048, 5)),
            ("s r(1) f", Trigger::Revoked(1), None, 5, Ok(Plan::Keep)),
            ("s f f", Trigger::Revoked(2), None, 5, Ok(Plan::Keep)),
        ];
        for (i, (spec, trigger, every, now, want)) in cases.into_iter().enumerate() {
            let got = plan(&slots(spec), Rsa2048, trigger, &policy(every), at(now));
            assert_eq!(got, want, "case {i}: {spec} {trigger:?} at minute {now}");
        }
    }
}
