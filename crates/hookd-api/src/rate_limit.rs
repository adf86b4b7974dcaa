//! The per-account request rate limit of the customer API (`--rate-limit`): a GCRA
//! limiter (governor) keyed by account, checked right after authentication, so a
//! refused request reaches no handler and changes nothing. The state is a few words
//! per account that has made a request; accounts are created by the operator, so it
//! stays small.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use hookd_core::AccountId;

type KeyedLimiter = RateLimiter<AccountId, DefaultKeyedStateStore<AccountId>, DefaultClock>;

/// How many requests an account may make.
#[derive(Clone)]
pub struct AccountRateLimit {
    limiter: Arc<KeyedLimiter>,
    clock: DefaultClock,
}

impl AccountRateLimit {
    /// `per_second` requests a second sustained, in bursts of up to as many.
    pub fn per_second(per_second: NonZeroU32) -> Self {
        Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_second(per_second))),
            clock: DefaultClock::default(),
        }
    }

    /// `Ok`, or how long until `account` may make its next request.
    pub fn check(&self, account: &AccountId) -> Result<(), Duration> {
        self.limiter.check_key(account).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_beyond_the_limit_is_refused_with_a_wait_and_other_accounts_are_not() {
        let limit = AccountRateLimit::per_second(NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN));
        let busy = AccountId::new_random();
        for n in 0..3 {
            assert_eq!(limit.check(&busy), Ok(()), "request {n} is within the burst");
        }
        let wait = limit.check(&busy).expect_err("the fourth at once is over the limit");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(limit.check(&AccountId::new_random()), Ok(()), "another account has its own budget");
    }
}
