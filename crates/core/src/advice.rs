//! The recommendation rules (ListRecommendations), as pure functions: what one check of a
//! domain says about each kind of recommendation, how that moves the recommendations it
//! already has (opened when first seen, FIXED when a later check sees it right, reopened if it
//! comes back), and when they are looked at again. The verifier observes; `Checks` applies
//! these in the same write as the check's status.

use crate::model::{
    Advice, AdviceKind, AdviceStatus, Dkim, DkimStatus, Identity, KeyLength, Recommendations,
    Timestamp,
};
use crate::verification::{Expect, ExpectedRecord, RecordCheck, VerifyPolicy};
use std::collections::BTreeMap;

/// How long a DMARC `p=none` may stand before it is recommended against: monitoring first is
/// the usual advice, staying there is not.
pub const POLICY_NONE_GRACE_DAYS: i64 = 30;

/// What a check says of each kind it could judge: `true` open, `false` right. Kinds a resolver
/// failure hid are absent (unknown: left as they were).
pub fn assess(
    identity: &Identity,
    records: &[ExpectedRecord],
    seen: &[RecordCheck],
) -> BTreeMap<AdviceKind, bool> {
    use AdviceKind::*;
    let mut out = BTreeMap::new();
    let check_of = |pred: fn(&Expect) -> bool| {
        records
            .iter()
            .zip(seen)
            .find(|(r, _)| pred(&r.expect))
            .map(|(_, c)| c)
    };
    if let Some(Dkim { keys, .. }) = &identity.dkim {
        out.insert(
            DkimFailed,
            identity.verification_status == DkimStatus::Failed,
        );
        out.insert(
            DkimWeakKey,
            keys.signing().bits == KeyLength::Rsa1024.bits(),
        );
    }
    out.insert(MailFromMissing, identity.mail_from.is_none());
    let mx = check_of(|e| matches!(e, Expect::Mx { .. }));
    let spf = check_of(|e| matches!(e, Expect::Spf { .. }));
    let dmarc = check_of(|e| matches!(e, Expect::Dmarc));
    let all_right = |kinds: &[AdviceKind], out: &mut BTreeMap<AdviceKind, bool>| {
        for k in kinds {
            out.insert(*k, false);
        }
    };
    // Without a MAIL FROM domain there is nothing of it to be wrong.
    match mx {
        None => all_right(&[MailFromMx], &mut out),
        Some(RecordCheck::ServerError(_)) => {}
        Some(c) => {
            out.insert(MailFromMx, *c != RecordCheck::Valid);
        }
    }
    let spf_kinds = [SpfMissing, SpfWrong, SpfMultiple];
    match spf {
        None => all_right(&spf_kinds, &mut out),
        Some(RecordCheck::ServerError(_)) => {}
        Some(c) => {
            all_right(&spf_kinds, &mut out);
            let open = match c {
                RecordCheck::HostNotFound | RecordCheck::TypeNotFound => Some(SpfMissing),
                RecordCheck::Wrong(_) | RecordCheck::Weak(_) => Some(SpfWrong),
                RecordCheck::Several(_) => Some(SpfMultiple),
                RecordCheck::Valid | RecordCheck::ServerError(_) => None,
            };
            if let Some(k) = open {
                out.insert(k, true);
            }
        }
    }
    let dmarc_kinds = [DmarcMissing, DmarcUnparsable, DmarcPolicyNone];
    match dmarc {
        // Only domains are looked at for DMARC; nothing is known of it otherwise.
        None | Some(RecordCheck::ServerError(_)) => {}
        Some(c) => {
            all_right(&dmarc_kinds, &mut out);
            let open = match c {
                // Two DMARC records count as none (RFC 7489 section 6.6.3).
                RecordCheck::HostNotFound | RecordCheck::TypeNotFound | RecordCheck::Several(_) => {
                    Some(DmarcMissing)
                }
                RecordCheck::Wrong(_) => Some(DmarcUnparsable),
                RecordCheck::Weak(_) => Some(DmarcPolicyNone),
                RecordCheck::Valid | RecordCheck::ServerError(_) => None,
            };
            if let Some(k) = open {
                out.insert(k, true);
            }
        }
    }
    out
}

/// The recommendations after a check at `now` that assessed `assessed`, and when they are
/// next looked at: while one that a DNS record fixes is open, on the PENDING backoff (first
/// step `--verify-interval`), so a fix shows within minutes rather than at the daily check.
pub fn apply(
    previous: &Recommendations,
    assessed: &BTreeMap<AdviceKind, bool>,
    now: Timestamp,
    policy: &VerifyPolicy,
) -> Recommendations {
    let mut items = Vec::new();
    for kind in AdviceKind::ALL {
        let old = previous.items.iter().find(|a| a.kind == kind);
        let next = match (assessed.get(&kind), old) {
            (None, old) => old.cloned(),
            (Some(true), None) => Some(Advice {
                kind,
                status: AdviceStatus::Open,
                created_at: now,
                updated_at: now,
            }),
            (Some(open), Some(a)) => {
                let status = if *open {
                    AdviceStatus::Open
                } else {
                    AdviceStatus::Fixed
                };
                Some(if a.status == status {
                    a.clone()
                } else {
                    Advice {
                        status,
                        updated_at: now,
                        ..a.clone()
                    }
                })
            }
            (Some(false), None) => None,
        };
        items.extend(next);
    }
    let soon = items
        .iter()
        .any(|a| a.status == AdviceStatus::Open && a.kind.recheck_soon());
    let (next_check_at, attempts) = if soon {
        (
            Some(Timestamp(now.0 + policy.backoff_ms(previous.attempts))),
            previous.attempts.saturating_add(1),
        )
    } else {
        (None, 0)
    };
    Recommendations {
        items,
        next_check_at,
        attempts,
    }
}

/// Whether a recommendation is shown at `now`: all are, but a `p=none` only once it has stood
/// for `POLICY_NONE_GRACE_DAYS`.
pub fn shown(advice: &Advice, now: Timestamp) -> bool {
    if advice.kind != AdviceKind::DmarcPolicyNone {
        return true;
    }
    let until = match advice.status {
        AdviceStatus::Open => now,
        AdviceStatus::Fixed => advice.updated_at,
    };
    until >= advice.created_at.plus_hours(24 * POLICY_NONE_GRACE_DAYS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountId, DomainName, IdentityName, MailFrom, MxFailure, Verification};
    use crate::verification::{MailFromHosts, dmarc_record, mail_from_records};
    use AdviceKind::*;
    use RecordCheck::*;

    const T0: Timestamp = Timestamp(1_700_000_000_000);
    const POLICY: VerifyPolicy = VerifyPolicy {
        first_interval_ms: 60_000,
        max_interval_ms: Timestamp::HOUR,
        window_ms: 72 * Timestamp::HOUR,
        recheck_hours: 24,
        lease_ms: 60_000,
    };

    fn domain(mail_from: bool) -> Identity {
        let d = DomainName::parse("example.com").unwrap();
        Identity {
            account: AccountId::parse("111122223333").unwrap(),
            name: IdentityName::Domain(d),
            version: 1,
            created_at: T0,
            feedback_forwarding: true,
            dkim: None,
            signing_override: None,
            verification_status: DkimStatus::Success,
            tags: vec![],
            verification: Verification::default(),
            mail_from: mail_from.then(|| MailFrom {
                domain: DomainName::parse("bounce.example.com").unwrap(),
                status: DkimStatus::Pending,
                verification: Verification::default(),
            }),
            mx_failure: MxFailure::UseDefaultValue,
            recommendations: Recommendations::default(),
            link: None,
        }
    }

    /// The records a domain with a MAIL FROM domain is checked for: MX, SPF, DMARC.
    fn records() -> Vec<ExpectedRecord> {
        let hosts = MailFromHosts {
            mx: "feedback.sesame.test".into(),
            spf_domain: "spf.sesame.test".into(),
        };
        let mut r = mail_from_records(&DomainName::parse("bounce.example.com").unwrap(), &hosts);
        r.push(dmarc_record(&DomainName::parse("example.com").unwrap()));
        r
    }

    fn open(a: &BTreeMap<AdviceKind, bool>) -> Vec<AdviceKind> {
        a.iter().filter(|(_, o)| **o).map(|(k, _)| *k).collect()
    }

    #[test]
    fn each_finding_opens_its_own_kind() {
        let table: Vec<([RecordCheck; 3], Vec<AdviceKind>)> = vec![
            ([Valid, Valid, Valid], vec![]),
            ([HostNotFound, Valid, Valid], vec![MailFromMx]),
            (
                [Wrong("MX 10 other.".into()), Valid, Valid],
                vec![MailFromMx],
            ),
            ([Valid, TypeNotFound, Valid], vec![SpfMissing]),
            ([Valid, Wrong("v=spf1 -all".into()), Valid], vec![SpfWrong]),
            ([Valid, Several(2), Valid], vec![SpfMultiple]),
            ([Valid, Valid, HostNotFound], vec![DmarcMissing]),
            ([Valid, Valid, Several(2)], vec![DmarcMissing]),
            (
                [Valid, Valid, Wrong("v=DMARC1; p=maybe".into())],
                vec![DmarcUnparsable],
            ),
            ([Valid, Valid, Weak("p=none".into())], vec![DmarcPolicyNone]),
        ];
        for (seen, want) in table {
            let a = assess(&domain(true), &records(), &seen);
            assert_eq!(open(&a), want, "{seen:?}");
            // Every kind but the DKIM ones (this identity has no DKIM set-up) was judged.
            assert_eq!(a.len(), 8, "{seen:?}");
        }
    }

    #[test]
    fn a_resolver_failure_judges_nothing_of_what_it_hid() {
        let seen = [
            ServerError("SERVFAIL".into()),
            ServerError("t".into()),
            Valid,
        ];
        let a = assess(&domain(true), &records(), &seen);
        for k in [MailFromMx, SpfMissing, SpfWrong, SpfMultiple] {
            assert!(!a.contains_key(&k), "{k:?}");
        }
        assert_eq!(a.get(&DmarcMissing), Some(&false));
    }

    #[test]
    fn without_a_mail_from_domain_only_its_absence_is_open() {
        let r = vec![dmarc_record(&DomainName::parse("example.com").unwrap())];
        let a = assess(&domain(false), &r, &[Valid]);
        assert_eq!(open(&a), vec![MailFromMissing]);
        assert_eq!(a.get(&SpfMissing), Some(&false));
    }

    #[test]
    fn opened_then_fixed_then_reopened_keeps_its_first_sighting() {
        let mut recs = Recommendations::default();
        let a = |open: bool| BTreeMap::from([(DmarcMissing, open)]);
        recs = apply(&recs, &a(true), T0, &POLICY);
        assert_eq!(recs.items[0].status, AdviceStatus::Open);
        assert_eq!(
            (recs.items[0].created_at, recs.items[0].updated_at),
            (T0, T0)
        );
        // Still open a minute later: unchanged, and the re-check backs off.
        let t1 = Timestamp(T0.0 + 60_000);
        let again = apply(&recs, &a(true), t1, &POLICY);
        assert_eq!(again.items, recs.items);
        assert_eq!(recs.next_check_at, Some(Timestamp(T0.0 + 60_000)));
        assert_eq!(again.next_check_at, Some(Timestamp(t1.0 + 120_000)));
        let t2 = Timestamp(T0.0 + 200_000);
        let fixed = apply(&again, &a(false), t2, &POLICY);
        assert_eq!(fixed.items[0].status, AdviceStatus::Fixed);
        assert_eq!(
            (fixed.items[0].created_at, fixed.items[0].updated_at),
            (T0, t2)
        );
        assert_eq!((fixed.next_check_at, fixed.attempts), (None, 0));
        // Unknown (resolver trouble): left as it was.
        let unknown = apply(&fixed, &BTreeMap::new(), Timestamp(t2.0 + 1), &POLICY);
        assert_eq!(unknown.items, fixed.items);
        let t3 = Timestamp(t2.0 + 5);
        let back = apply(&fixed, &a(true), t3, &POLICY);
        assert_eq!(back.items[0].status, AdviceStatus::Open);
        assert_eq!(
            (back.items[0].created_at, back.items[0].updated_at),
            (T0, t3)
        );
    }

    #[test]
    fn only_what_dns_can_fix_is_rechecked_soon() {
        let none = BTreeMap::from([
            (MailFromMissing, true),
            (DkimWeakKey, true),
            (DmarcPolicyNone, true),
        ]);
        let r = apply(&Recommendations::default(), &none, T0, &POLICY);
        assert_eq!(r.items.len(), 3);
        assert_eq!(r.next_check_at, None);
        let spf = BTreeMap::from([(SpfMultiple, true)]);
        let r = apply(&Recommendations::default(), &spf, T0, &POLICY);
        assert_eq!(r.next_check_at, Some(Timestamp(T0.0 + 60_000)));
    }

    #[test]
    fn p_none_is_shown_after_thirty_days_of_it() {
        let a = Advice {
            kind: DmarcPolicyNone,
            status: AdviceStatus::Open,
            created_at: T0,
            updated_at: T0,
        };
        assert!(!shown(&a, T0.plus_hours(24 * 30 - 1)));
        assert!(shown(&a, T0.plus_hours(24 * 30)));
        let fixed_early = Advice {
            status: AdviceStatus::Fixed,
            updated_at: T0.plus_hours(24),
            ..a.clone()
        };
        assert!(!shown(&fixed_early, T0.plus_hours(24 * 90)));
        let other = Advice {
            kind: DmarcMissing,
            ..a
        };
        assert!(shown(&other, T0));
    }
}
