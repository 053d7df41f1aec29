//! The verification rules, as pure functions of their inputs (`now` included) so they are
//! table-tested without a clock: which records a set-up needs, and the state machine that
//! turns DNS observations into a status and the next check.

use crate::model::{
    Dkim, DkimOrigin, DkimStatus, DomainName, SoaRecord, Timestamp, Verification, VerificationError,
};

/// The verifier's timing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// First step of the re-check backoff (`--verify-interval`), in milliseconds.
    pub first_interval_ms: i64,
    /// The backoff's ceiling (an hour).
    pub max_interval_ms: i64,
    /// How long SES keeps looking before FAILED, and the grace after SUCCESS (72 hours).
    pub window_ms: i64,
    /// Re-check period after SUCCESS (daily).
    pub recheck_hours: i64,
    /// How long a claimed check may take before another node may claim the identity again
    /// (a node that died mid-check loses its claims after this).
    pub lease_ms: i64,
}

impl Default for VerifyPolicy {
    fn default() -> VerifyPolicy {
        VerifyPolicy {
            first_interval_ms: 60_000,
            max_interval_ms: Timestamp::HOUR,
            window_ms: 72 * Timestamp::HOUR,
            recheck_hours: 24,
            lease_ms: 60_000,
        }
    }
}

impl VerifyPolicy {
    /// The wait after `attempts` unsuccessful checks in a row: doubling from the first step.
    pub fn backoff_ms(&self, attempts: u32) -> i64 {
        crate::backoff::doubling(self.first_interval_ms, self.max_interval_ms, attempts).max(1)
    }
}

/// One DNS record the customer must publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedRecord {
    /// The owner name, e.g. `<token>._domainkey.example.com` (no trailing dot).
    pub name: String,
    /// What must be there.
    pub expect: Expect,
}

/// The content an [`ExpectedRecord`] must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Easy DKIM: a CNAME (chain) to `<token>.<zone>`, where Sesame's key zone serves
    /// `public_der`. A receiver follows the chain to that key, so a check is right only when the
    /// key zone serves it too.
    Cname {
        /// The target, without a trailing dot.
        target: String,
        /// The key published under the token (empty if the token has none).
        public_der: Vec<u8>,
    },
    /// BYODKIM: a DKIM TXT record whose `p=` is this public key (DER SubjectPublicKeyInfo).
    DkimKey {
        /// The key the record must carry.
        public_der: Vec<u8>,
    },
    /// Custom MAIL FROM: an MX record naming the host that receives bounces. It decides
    /// `MailFromDomainStatus`.
    Mx {
        /// The host (`--mail-from-mx`), without a trailing dot.
        exchange: String,
    },
    /// Custom MAIL FROM: one SPF record including Sesame's SPF domain. Reported (and
    /// recommended), never a status by itself, as in SES.
    Spf {
        /// The SPF domain (`--spf-domain`) the record must include.
        include: String,
    },
    /// A DMARC record at `_dmarc.<domain>` with a policy in force. Recommended only.
    Dmarc,
}

/// What a record's check counts towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The identity's DKIM status.
    Dkim,
    /// `MailFromDomainStatus`.
    MailFrom,
    /// Recommendations only.
    Advice,
}

impl ExpectedRecord {
    /// What its check counts towards.
    pub fn purpose(&self) -> Purpose {
        match self.expect {
            Expect::Cname { .. } | Expect::DkimKey { .. } => Purpose::Dkim,
            Expect::Mx { .. } => Purpose::MailFrom,
            Expect::Spf { .. } | Expect::Dmarc => Purpose::Advice,
        }
    }
}

/// What Sesame's MAIL FROM records point at: the serving node's `--mail-from-mx` and
/// `--spf-domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFromHosts {
    /// The host MAIL FROM domains' MX records must name (where bounces go).
    pub mx: String,
    /// The domain whose SPF record lists Sesame's sending addresses.
    pub spf_domain: String,
}

impl MailFromHosts {
    /// The default names under the key zone `zone`: `feedback-smtp.<zone>` receives bounces
    /// (SES's `feedback-smtp.<region>.amazonses.com`) and `spf.<zone>` lists the sending
    /// addresses.
    pub fn under(zone: &str) -> MailFromHosts {
        MailFromHosts {
            mx: format!("feedback-smtp.{zone}"),
            spf_domain: format!("spf.{zone}"),
        }
    }
}

/// The records a custom MAIL FROM domain needs: its MX, then its SPF record.
pub fn mail_from_records(mail_from: &DomainName, hosts: &MailFromHosts) -> Vec<ExpectedRecord> {
    vec![
        ExpectedRecord {
            name: mail_from.as_str().to_owned(),
            expect: Expect::Mx {
                exchange: hosts.mx.clone(),
            },
        },
        ExpectedRecord {
            name: mail_from.as_str().to_owned(),
            expect: Expect::Spf {
                include: hosts.spf_domain.clone(),
            },
        },
    ]
}

/// The DMARC record a domain should have.
pub fn dmarc_record(domain: &DomainName) -> ExpectedRecord {
    ExpectedRecord {
        name: format!("_dmarc.{}", domain.as_str()),
        expect: Expect::Dmarc,
    }
}

/// The records a domain's DKIM set-up needs (SES: three CNAMEs, or one TXT for BYODKIM).
pub fn expected_records(domain: &DomainName, dkim: &Dkim, zone: &str) -> Vec<ExpectedRecord> {
    match &dkim.origin {
        DkimOrigin::Easy { tokens, .. } => tokens
            .iter()
            .map(|t| ExpectedRecord {
                name: format!("{}._domainkey.{}", t.as_str(), domain.as_str()),
                expect: Expect::Cname {
                    target: format!("{}.{zone}", t.as_str()),
                    public_der: dkim
                        .keys
                        .keys()
                        .find(|k| k.selector.as_str() == t.as_str())
                        .map(|k| k.public_der.clone())
                        .unwrap_or_default(),
                },
            })
            .collect(),
        DkimOrigin::External { selector } => dkim
            .keys
            .keys()
            .take(1)
            .map(|k| ExpectedRecord {
                name: format!("{}._domainkey.{}", selector.as_str(), domain.as_str()),
                expect: Expect::DkimKey {
                    public_der: k.public_der.clone(),
                },
            })
            .collect(),
    }
}

/// What a lookup of one expected record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordCheck {
    /// Present and right.
    Valid,
    /// NXDOMAIN.
    HostNotFound,
    /// The name exists without the expected type.
    TypeNotFound,
    /// Present with another value (what was seen, for `sesame dns-records --check`).
    Wrong(String),
    /// More records of the kind than may be (two SPF records: a permanent error for every
    /// receiver, RFC 7208 section 4.5), with how many.
    Several(usize),
    /// Present and in force, but weaker than it should be (a DMARC `p=none`), as seen.
    Weak(String),
    /// The resolver failed (SERVFAIL, REFUSED, timeout, no connection).
    ServerError(String),
}

/// The result of one verification pass over all of an identity's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// One entry per expected record, in order.
    pub records: Vec<RecordCheck>,
    /// The customer zone's SOA, if a negative answer or a lookup returned it.
    pub soa: Option<SoaRecord>,
}

/// The verdict of an observation: every record right, something definitely wrong or missing,
/// or the resolver could not say. A wrong value outranks a resolver failure elsewhere, and a
/// resolver failure outranks "missing" (missing might only be the failure's shadow).
fn verdict(obs: &Observation) -> Result<(), VerificationError> {
    let any = |f: fn(&RecordCheck) -> bool| obs.records.iter().any(f);
    if obs.records.is_empty() {
        return Err(VerificationError::ServiceError);
    }
    if any(|r| matches!(r, RecordCheck::Wrong(_) | RecordCheck::Several(_))) {
        Err(VerificationError::InvalidValue)
    } else if any(|r| matches!(r, RecordCheck::ServerError(_))) {
        Err(VerificationError::DnsServerError)
    } else if any(|r| matches!(r, RecordCheck::HostNotFound)) {
        Err(VerificationError::HostNotFound)
    } else if any(|r| matches!(r, RecordCheck::TypeNotFound)) {
        Err(VerificationError::TypeNotFound)
    } else {
        Ok(())
    }
}

/// The verification state right after DKIM is (re)configured: PENDING, checked at once, the
/// 72-hour window starting now. The last success is kept for the record.
pub fn restart(previous: &Verification, now: Timestamp) -> Verification {
    Verification {
        last_checked: previous.last_checked,
        last_success: previous.last_success,
        error: None,
        soa: previous.soa.clone(),
        pending_since: Some(now),
        failing_since: None,
        next_check_at: Some(now),
        attempts: 0,
    }
}

/// The DKIM verification state machine: from the current status and record, an observation
/// made at `now` gives the next status and record.
///
/// - All records right: SUCCESS, re-checked daily.
/// - Not yet seen (PENDING/TEMPORARY_FAILURE): PENDING on the backoff schedule until the
///   72-hour window from configuration closes, then FAILED and no more checks.
/// - Resolver failure before success: TEMPORARY_FAILURE, retried; never FAILED for that alone.
/// - After SUCCESS, records missing or wrong: SUCCESS kept with the error shown for a 72-hour
///   grace from the first miss, re-checked on the backoff schedule; then FAILED. A resolver
///   failure after SUCCESS shows the error but starts no grace.
/// - FAILED: stays, unchecked, until the set-up is configured again (`restart`).
pub fn step(
    status: DkimStatus,
    v: &Verification,
    obs: &Observation,
    now: Timestamp,
    policy: &VerifyPolicy,
) -> (DkimStatus, Verification) {
    let mut next = v.clone();
    next.last_checked = Some(now);
    if obs.soa.is_some() {
        next.soa = obs.soa.clone();
    }
    let window_over = |since: Option<Timestamp>| {
        since.is_some_and(|t| now >= Timestamp(t.0.saturating_add(policy.window_ms)))
    };
    let retry = |next: &mut Verification| {
        next.next_check_at = Some(Timestamp(now.0 + policy.backoff_ms(next.attempts)));
        next.attempts = next.attempts.saturating_add(1);
    };
    if status == DkimStatus::Failed || status == DkimStatus::NotStarted {
        next.next_check_at = None;
        return (status, next);
    }
    match verdict(obs) {
        Ok(()) => {
            next.error = None;
            next.last_success = Some(now);
            next.failing_since = None;
            next.attempts = 0;
            next.next_check_at = Some(now.plus_hours(policy.recheck_hours));
            (DkimStatus::Success, next)
        }
        Err(VerificationError::DnsServerError) => {
            next.error = Some(VerificationError::DnsServerError);
            retry(&mut next);
            let to = if status == DkimStatus::Success {
                DkimStatus::Success
            } else {
                DkimStatus::TemporaryFailure
            };
            (to, next)
        }
        Err(error) => {
            next.error = Some(error);
            if status == DkimStatus::Success {
                let since = *next.failing_since.get_or_insert(now);
                if window_over(Some(since)) {
                    next.next_check_at = None;
                    return (DkimStatus::Failed, next);
                }
                retry(&mut next);
                (DkimStatus::Success, next)
            } else if window_over(next.pending_since) {
                next.next_check_at = None;
                (DkimStatus::Failed, next)
            } else {
                retry(&mut next);
                (DkimStatus::Pending, next)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_700_000_000_000);

    fn obs(records: Vec<RecordCheck>) -> Observation {
        Observation { records, soa: None }
    }

    fn hours(h: i64) -> Timestamp {
        T0.plus_hours(h)
    }

    const POLICY: VerifyPolicy = VerifyPolicy {
        first_interval_ms: 60_000,
        max_interval_ms: Timestamp::HOUR,
        window_ms: 72 * Timestamp::HOUR,
        recheck_hours: 24,
        lease_ms: 60_000,
    };

    /// Drives the machine through a script of (hours after T0, observation) and returns the
    /// status after each step.
    fn run(script: &[(i64, Vec<RecordCheck>)]) -> (Vec<DkimStatus>, Verification) {
        let mut status = DkimStatus::Pending;
        let mut v = restart(&Verification::default(), T0);
        let mut seen = Vec::new();
        for (at, records) in script {
            let (s, n) = step(status, &v, &obs(records.clone()), hours(*at), &POLICY);
            status = s;
            v = n;
            seen.push(status);
        }
        (seen, v)
    }

    use DkimStatus::{Failed, Pending, Success, TemporaryFailure};
    use RecordCheck::{HostNotFound, ServerError, TypeNotFound, Valid, Wrong};

    #[test]
    fn pending_until_all_records_are_right() {
        let (s, v) = run(&[
            (0, vec![HostNotFound, HostNotFound, HostNotFound]),
            (1, vec![Valid, TypeNotFound, Valid]),
            (2, vec![Valid, Valid, Valid]),
        ]);
        assert_eq!(s, [Pending, Pending, Success]);
        assert_eq!(v.error, None);
        assert_eq!(v.last_success, Some(hours(2)));
        assert_eq!(
            v.next_check_at,
            Some(hours(26)),
            "daily re-check after SUCCESS"
        );
        assert_eq!(v.attempts, 0);
    }

    #[test]
    fn errors_are_reported_by_kind() {
        let (_, v) = run(&[(0, vec![Valid, HostNotFound, TypeNotFound])]);
        assert_eq!(v.error, Some(VerificationError::HostNotFound));
        let (_, v) = run(&[(0, vec![Valid, TypeNotFound, Valid])]);
        assert_eq!(v.error, Some(VerificationError::TypeNotFound));
        let (s, v) = run(&[(0, vec![Wrong("x".into()), ServerError("t".into()), Valid])]);
        assert_eq!(
            (s[0], v.error),
            (Pending, Some(VerificationError::InvalidValue))
        );
    }

    #[test]
    fn failed_after_72_hours_without_success_and_then_no_more_checks() {
        let (s, v) = run(&[
            (0, vec![HostNotFound]),
            (71, vec![HostNotFound]),
            (72, vec![HostNotFound]),
        ]);
        assert_eq!(s, [Pending, Pending, Failed]);
        assert_eq!(v.next_check_at, None);
        let (s2, _) = step(Failed, &v, &obs(vec![Valid]), hours(80), &POLICY);
        assert_eq!(s2, Failed, "FAILED waits for a new configuration");
        let again = restart(&v, hours(81));
        let (s3, _) = step(Pending, &again, &obs(vec![Valid]), hours(81), &POLICY);
        assert_eq!(s3, Success);
    }

    #[test]
    fn resolver_failures_are_temporary_and_never_fail_alone() {
        let e = || vec![ServerError("SERVFAIL".into())];
        let (s, v) = run(&[(0, e()), (50, e()), (100, e()), (101, vec![Valid])]);
        assert_eq!(
            s,
            [
                TemporaryFailure,
                TemporaryFailure,
                TemporaryFailure,
                Success
            ]
        );
        assert_eq!(v.error, None);
        // A miss after the window still fails: the window counts from configuration.
        let (s, v) = run(&[(0, e()), (73, vec![HostNotFound])]);
        assert_eq!(s, [TemporaryFailure, Failed]);
        assert_eq!(v.error, Some(VerificationError::HostNotFound));
    }

    #[test]
    fn grace_after_success_then_failed() {
        let (s, v) = run(&[
            (0, vec![Valid]),
            (24, vec![HostNotFound]),
            (50, vec![HostNotFound]),
            (95, vec![HostNotFound]),
            (96, vec![HostNotFound]),
        ]);
        assert_eq!(s, [Success, Success, Success, Success, Failed]);
        assert_eq!(v.failing_since, Some(hours(24)));
        assert_eq!(v.error, Some(VerificationError::HostNotFound));
        assert_eq!(v.next_check_at, None);
        // Records that come back during the grace clear it.
        let (s, v) = run(&[
            (0, vec![Valid]),
            (24, vec![Wrong("k".into())]),
            (30, vec![Valid]),
            (120, vec![HostNotFound]),
        ]);
        assert_eq!(s, [Success, Success, Success, Success]);
        assert_eq!(
            v.failing_since,
            Some(hours(120)),
            "a new grace starts at the new miss"
        );
        // A resolver outage after SUCCESS shows the error but keeps signing and starts no grace.
        let (s, v) = run(&[
            (0, vec![Valid]),
            (24, vec![ServerError("timeout".into())]),
            (200, vec![ServerError("timeout".into())]),
        ]);
        assert_eq!(s, [Success, Success, Success]);
        assert_eq!(
            (v.error, v.failing_since),
            (Some(VerificationError::DnsServerError), None)
        );
    }

    #[test]
    fn backoff_doubles_from_the_first_interval_up_to_an_hour() {
        let got: Vec<i64> = (0..9).map(|a| POLICY.backoff_ms(a) / 1000).collect();
        assert_eq!(got, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        let (_, v) = run(&[(0, vec![HostNotFound]), (1, vec![HostNotFound])]);
        assert_eq!(v.next_check_at, Some(Timestamp(hours(1).0 + 120_000)));
        assert_eq!(v.attempts, 2);
    }
}
