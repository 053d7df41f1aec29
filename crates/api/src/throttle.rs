//! Request throttling with token buckets (GCRA, via governor): one per account, checked after
//! authentication and before any work, so a throttled request has done nothing; and one per
//! source address for requests that fail authentication, so a client without credentials can
//! neither flood the log nor keep the signature checks busy.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sesame_core::model::AccountId;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

/// Keyed buckets of `rate` per second and `burst`; none (no limit) for a zero rate.
fn buckets<K: Clone + Eq + std::hash::Hash>(
    rate: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(rate).map(|rate| {
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
    })
}

/// Failed authentications allowed per source address, sustained per second and as a burst.
pub const AUTH_FAILURES_PER_SECOND: u32 = 20;
/// See [`AUTH_FAILURES_PER_SECOND`].
pub const AUTH_FAILURES_BURST: u32 = 100;

/// Per source address: how many of its requests may fail authentication.
pub struct SourceThrottle {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: AtomicU64,
}

impl SourceThrottle {
    /// `rate` failures per second sustained, bursts of `burst`; a zero rate disables it.
    pub fn new(rate: u32, burst: u32) -> SourceThrottle {
        SourceThrottle {
            limiter: buckets(rate, burst),
            failures: AtomicU64::new(0),
        }
    }

    /// Counts one failed authentication from `ip`; false once its budget is spent.
    pub fn admit_failure(&self, ip: IpAddr) -> bool {
        match &self.limiter {
            None => true,
            Some(l) => {
                // Idle addresses' buckets are dropped now and then (not on every failure: the
                // scan is over the whole map), so many addresses cannot grow it without bound.
                if self
                    .failures
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(4096)
                    && l.len() > 65_536
                {
                    l.retain_recent();
                }
                l.check_key(&ip).is_ok()
            }
        }
    }
}

/// The throttle; `None` inside means unlimited.
pub struct Throttle {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl Throttle {
    /// `rate` requests per second sustained, bursts of up to `burst`; a zero rate disables it.
    pub fn new(rate: u32, burst: u32) -> Throttle {
        Throttle {
            limiter: buckets(rate, burst),
        }
    }

    /// Takes one token of the account's bucket; false when the bucket is empty.
    pub fn admit(&self, account: &AccountId) -> bool {
        match &self.limiter {
            None => true,
            Some(l) => l.check_key(&account.as_str().to_owned()).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_account() {
        let t = Throttle::new(1, 3);
        let a = AccountId::parse("111111111111").unwrap();
        let b = AccountId::parse("222222222222").unwrap();
        assert!((0..3).all(|_| t.admit(&a)));
        assert!(!t.admit(&a), "the burst is spent");
        assert!(t.admit(&b), "another account has its own bucket");
        let off = Throttle::new(0, 0);
        assert!((0..1000).all(|_| off.admit(&a)));
    }

    #[test]
    fn failed_authentications_are_budgeted_per_source() {
        let t = SourceThrottle::new(1, 5);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..5).all(|_| t.admit_failure(a)));
        assert!(!t.admit_failure(a));
        assert!(t.admit_failure(b));
    }
}
