//! Per-account request throttling: a token bucket per account (GCRA, via governor), checked
//! after authentication and before any work, so a throttled request has done nothing.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sesame_core::model::AccountId;
use std::num::NonZeroU32;

/// The throttle; `None` inside means unlimited.
pub struct Throttle {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl Throttle {
    /// `rate` requests per second sustained, bursts of up to `burst`; a zero rate disables it.
    pub fn new(rate: u32, burst: u32) -> Throttle {
        let limiter = NonZeroU32::new(rate).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Throttle { limiter }
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
}
