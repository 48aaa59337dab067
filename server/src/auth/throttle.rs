//! Per-client-address sign-in throttling (token bucket, in memory, per server replica).
//! Account lockout (in the database, shared by replicas) is the second line; see `password`.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Limits sign-in attempts per client address.
pub struct LoginThrottle {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginThrottle {
    /// Allows `per_minute` attempts per address per minute, in bursts of up to that many.
    pub fn new(per_minute: u32) -> LoginThrottle {
        let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        LoginThrottle {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    }

    /// Whether one more attempt from `addr` is allowed now (IPv6 addresses share the budget of
    /// their /64).
    pub fn allow(&self, addr: IpAddr) -> bool {
        let allowed = self
            .limiter
            .check_key(&super::refusals::client_key(addr))
            .is_ok();
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_are_cut_per_address() {
        let throttle = LoginThrottle::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| throttle.allow(a)));
        assert!(!throttle.allow(a));
        assert!(throttle.allow(b));
        let v6 = LoginThrottle::new(1);
        assert!(v6.allow("2001:db8::1".parse().unwrap()));
        assert!(!v6.allow("2001:db8::2".parse().unwrap()));
    }
}
