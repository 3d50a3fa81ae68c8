//! A rate limit per caller (each API token; one shared budget on an instance without
//! tokens), off unless `TOOLSHED_RATE_LIMIT_PER_MINUTE` is set: GCRA through `governor`,
//! so requests are spaced evenly with a burst allowance instead of a window that refills
//! all at once. Keys are token fingerprints, so the table is as small as the token list.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::platform::auth::Fingerprint;

type Key = Option<Fingerprint>;

/// The limiter of a running instance.
pub struct RateLimit {
    limiter: RateLimiter<Key, HashMapStateStore<Key>, DefaultClock>,
    clock: DefaultClock,
    per_minute: u32,
}

impl RateLimit {
    /// `per_minute` requests a minute with `burst` at once; `None` when `per_minute` is 0.
    pub fn new(per_minute: u32, burst: u32) -> Option<RateLimit> {
        let rate = NonZeroU32::new(per_minute)?;
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Some(RateLimit {
            limiter: RateLimiter::hashmap(Quota::per_minute(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
            per_minute,
        })
    }

    /// Counts a request of `caller`: `Err` with the wait until it may send one again.
    pub fn check(&self, caller: Option<Fingerprint>) -> Result<(), Duration> {
        self.limiter
            .check_key(&caller)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_its_burst_then_waits_and_others_are_not_held_up() {
        let limit = RateLimit::new(60, 3).expect("on");
        let ada = Fingerprint::parse("tok_00000001");
        for _ in 0..3 {
            assert_eq!(limit.check(ada), Ok(()));
        }
        let wait = limit.check(ada).expect_err("over the burst");
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(limit.check(Fingerprint::parse("tok_00000002")), Ok(()));
        assert_eq!(limit.check(None), Ok(()));
        assert!(RateLimit::new(0, 3).is_none(), "0 is off");
    }
}
