//! The publisher rules, pure: given the records an identity needs now (what `dns-records`
//! prints, or nothing when the identity is gone) and what a publisher has published, which
//! records to add and remove, and how an attempt's result changes the publisher's state.
//!
//! Removal follows the rotation's rule: a DKIM record that stops being needed while its
//! identity lives (a switch to BYODKIM, say) stays for the key retention, since mail signed
//! under it may be in transit; every other record, and everything of a deleted identity, goes
//! at once. A record the zone holds something else for is reported, never overwritten; the
//! DNS layer finds those conflicts when it adds.

use crate::model::{PublishState, PublishedRecord, Retiring, Timestamp};

/// What an attempt must send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Work {
    /// Records to add.
    pub add: Vec<PublishedRecord>,
    /// Records to remove.
    pub remove: Vec<PublishedRecord>,
}

impl Work {
    /// Whether nothing needs sending.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server applied the update; `conflicts` were not added (each with what the zone
    /// holds at its name).
    Applied {
        /// Records left out, and why.
        conflicts: Vec<(PublishedRecord, String)>,
    },
    /// The server refused or did not answer.
    Failed(String),
}

/// The wait before the next attempt after `failures` in a row: 5 s doubling, at most 15 min.
pub fn backoff_ms(failures: u32) -> i64 {
    crate::backoff::doubling(5_000, 15 * 60 * 1000, failures.saturating_sub(1))
}

/// The state with retirements applied, and the work due now. `desired` is `None` when the
/// identity is gone. Moving records between published and retiring needs no update, so it
/// happens here; the returned work is what must reach the server.
pub fn advance(
    state: &PublishState,
    desired: Option<&[PublishedRecord]>,
    now: Timestamp,
    retention_ms: i64,
) -> (PublishState, Work) {
    let mut next = state.clone();
    let mut work = Work::default();
    let Some(desired) = desired else {
        work.remove = next.published.clone();
        work.remove
            .extend(next.retiring.iter().map(|r| r.record.clone()));
        return (next, work);
    };
    // A retiring record needed again is simply kept.
    let (back, retiring): (Vec<Retiring>, Vec<Retiring>) = std::mem::take(&mut next.retiring)
        .into_iter()
        .partition(|r| desired.contains(&r.record));
    next.published.extend(back.into_iter().map(|r| r.record));
    next.retiring = retiring;
    let (kept, stale): (Vec<PublishedRecord>, Vec<PublishedRecord>) =
        std::mem::take(&mut next.published)
            .into_iter()
            .partition(|r| desired.contains(r));
    next.published = kept;
    for record in stale {
        if record.dkim {
            next.retiring.push(Retiring {
                record,
                remove_at: Timestamp(now.0.saturating_add(retention_ms)),
            });
        } else {
            work.remove.push(record);
        }
    }
    work.remove.extend(
        next.retiring
            .iter()
            .filter(|r| r.remove_at <= now)
            .map(|r| r.record.clone()),
    );
    work.add = desired
        .iter()
        .filter(|r| !next.published.contains(r))
        .cloned()
        .collect();
    (next, work)
}

/// Whether an attempt is due: work to send and no backoff running.
pub fn due(state: &PublishState, work: &Work, now: Timestamp) -> bool {
    !work.is_empty() && state.retry_at.is_none_or(|t| now >= t)
}

/// The state after an attempt at `work`.
pub fn settle(state: &PublishState, work: &Work, outcome: Outcome, now: Timestamp) -> PublishState {
    let mut next = state.clone();
    next.last_attempt_at = Some(now);
    match outcome {
        Outcome::Applied { conflicts } => {
            next.published.retain(|r| !work.remove.contains(r));
            next.retiring.retain(|r| !work.remove.contains(&r.record));
            for r in &work.add {
                if !next.published.contains(r) && !conflicts.iter().any(|(c, _)| c == r) {
                    next.published.push(r.clone());
                }
            }
            next.last_success_at = Some(now);
            next.last_error = None;
            next.conflicts = conflicts
                .iter()
                .map(|(r, there)| format!("{r}: not added, the zone has {there}"))
                .collect();
            if next.conflicts.is_empty() {
                next.failures = 0;
                next.retry_at = None;
            } else {
                // A conflict is looked at again, less and less often, until the customer
                // resolves it.
                next.failures = next.failures.saturating_add(1);
                next.retry_at = Some(Timestamp(now.0 + backoff_ms(next.failures)));
            }
        }
        Outcome::Failed(why) => {
            next.last_error = Some(why);
            next.failures = next.failures.saturating_add(1);
            next.retry_at = Some(Timestamp(now.0 + backoff_ms(next.failures)));
        }
    }
    next.published.sort();
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_700_000_000_000);
    const RETENTION: i64 = 60_000;

    fn rec(name: &str, dkim: bool) -> PublishedRecord {
        PublishedRecord {
            name: name.into(),
            rtype: if dkim { "CNAME" } else { "MX" }.into(),
            value: format!("{name}.target"),
            dkim,
        }
    }

    fn published(records: &[PublishedRecord]) -> PublishState {
        PublishState {
            published: records.to_vec(),
            ..PublishState::default()
        }
    }

    #[test]
    fn adds_what_is_missing_and_nothing_twice() {
        let (a, b) = (rec("a", true), rec("b", true));
        let (next, work) = advance(
            &published(std::slice::from_ref(&a)),
            Some(&[a.clone(), b.clone()]),
            T0,
            RETENTION,
        );
        assert_eq!(work.add, vec![b.clone()]);
        assert!(work.remove.is_empty());
        let after = settle(&next, &work, Outcome::Applied { conflicts: vec![] }, T0);
        assert_eq!(after.published, vec![a.clone(), b.clone()]);
        let (_, again) = advance(&after, Some(&[a, b]), T0, RETENTION);
        assert!(again.is_empty(), "published records are not sent again");
    }

    #[test]
    fn a_dkim_record_no_longer_needed_waits_for_the_retention_others_go_at_once() {
        let (a, mx) = (rec("a", true), rec("mail", false));
        let (next, work) = advance(
            &published(&[a.clone(), mx.clone()]),
            Some(&[]),
            T0,
            RETENTION,
        );
        assert_eq!(work.remove, vec![mx.clone()], "only the MX goes now");
        assert_eq!(next.retiring.len(), 1);
        let state = settle(&next, &work, Outcome::Applied { conflicts: vec![] }, T0);
        assert!(state.published.is_empty());
        let before = Timestamp(T0.0 + RETENTION - 1);
        assert!(advance(&state, Some(&[]), before, RETENTION).1.is_empty());
        let at = Timestamp(T0.0 + RETENTION);
        let (next, work) = advance(&state, Some(&[]), at, RETENTION);
        assert_eq!(work.remove, vec![a.clone()]);
        let done = settle(&next, &work, Outcome::Applied { conflicts: vec![] }, at);
        assert!(done.retiring.is_empty() && done.published.is_empty());
        // Needed again while retiring: kept, nothing sent.
        let (next, work) = advance(&state, Some(std::slice::from_ref(&a)), before, RETENTION);
        assert!(work.is_empty());
        assert_eq!(next.published, vec![a]);
        assert!(next.retiring.is_empty());
    }

    #[test]
    fn a_deleted_identity_loses_every_record_at_once() {
        let (a, mx) = (rec("a", true), rec("mail", false));
        let mut state = published(std::slice::from_ref(&a));
        state.retiring.push(Retiring {
            record: mx.clone(),
            remove_at: Timestamp(T0.0 + RETENTION),
        });
        let (next, work) = advance(&state, None, T0, RETENTION);
        assert_eq!(work.remove, vec![a, mx]);
        let done = settle(&next, &work, Outcome::Applied { conflicts: vec![] }, T0);
        assert!(done.published.is_empty() && done.retiring.is_empty());
    }

    #[test]
    fn a_failure_changes_no_record_and_backs_off() {
        let a = rec("a", true);
        let (next, work) = advance(
            &PublishState::default(),
            Some(std::slice::from_ref(&a)),
            T0,
            RETENTION,
        );
        let failed = settle(&next, &work, Outcome::Failed("NOTAUTH (BADSIG)".into()), T0);
        assert!(failed.published.is_empty());
        assert_eq!(failed.last_error.as_deref(), Some("NOTAUTH (BADSIG)"));
        assert_eq!(failed.failures, 1);
        assert_eq!(failed.retry_at, Some(Timestamp(T0.0 + 5_000)));
        assert!(!due(&failed, &work, Timestamp(T0.0 + 4_999)));
        assert!(due(&failed, &work, Timestamp(T0.0 + 5_000)));
        let twice = settle(&failed, &work, Outcome::Failed("timeout".into()), T0);
        assert_eq!(twice.retry_at, Some(Timestamp(T0.0 + 10_000)));
        assert_eq!(backoff_ms(40), 15 * 60 * 1000);
        let ok = settle(&twice, &work, Outcome::Applied { conflicts: vec![] }, T0);
        assert_eq!((ok.failures, ok.retry_at, ok.last_error), (0, None, None));
        assert_eq!(ok.published, vec![a]);
    }

    #[test]
    fn a_conflict_is_reported_not_published() {
        let (a, b) = (rec("a", true), rec("b", true));
        let (next, work) = advance(
            &PublishState::default(),
            Some(&[a.clone(), b.clone()]),
            T0,
            RETENTION,
        );
        let out = Outcome::Applied {
            conflicts: vec![(b.clone(), "CNAME elsewhere.example.".into())],
        };
        let state = settle(&next, &work, out, T0);
        assert_eq!(state.published, vec![a]);
        assert_eq!(
            state.conflicts,
            vec![format!(
                "{b}: not added, the zone has CNAME elsewhere.example."
            )]
        );
        assert_eq!(state.failures, 1, "looked at again after a backoff");
        let (_, work) = advance(&state, Some(&[rec("a", true), b.clone()]), T0, RETENTION);
        assert_eq!(work.add, vec![b]);
        assert!(!due(&state, &work, T0));
    }
}
