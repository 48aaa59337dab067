//! Per-client-address sign-in throttling, shared by every server replica: attempts are counted
//! per address (an IPv6 /64 is one address) in one-minute windows in the database, so two
//! replicas behind a load balancer give no more than one. A token bucket in each process's
//! memory cuts a flood first, before it costs a database write. Account lockout (also in the
//! database) is the second line; see `password`.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::db::{Db, DbError};

/// Limits sign-in attempts per client address.
pub struct LoginThrottle {
    per_minute: u32,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginThrottle {
    /// Allows `per_minute` attempts per address per minute.
    pub fn new(per_minute: u32) -> LoginThrottle {
        let per_minute = per_minute.max(1);
        let quota = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        LoginThrottle {
            per_minute,
            limiter: RateLimiter::keyed(Quota::per_minute(quota)),
        }
    }

    /// Whether this process's own bucket lets one more attempt from `addr` through (the
    /// flood shield; the shared count is [`LoginThrottle::allow`]).
    fn allow_here(&self, addr: IpAddr) -> bool {
        let allowed = self
            .limiter
            .check_key(&super::refusals::client_key(addr))
            .is_ok();
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        allowed
    }

    /// Whether one more attempt from `addr` is allowed at `now_unix`, counting it: first in
    /// this process, then across replicas in the database.
    pub async fn allow(&self, db: &Db, addr: IpAddr, now_unix: i64) -> Result<bool, DbError> {
        if !self.allow_here(addr) {
            return Ok(false);
        }
        let key = super::refusals::client_key(addr).to_string();
        let attempts = db.count_signin_attempt(&key, now_unix).await?;
        Ok(attempts <= i64::from(self.per_minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_bucket_cuts_bursts_per_address() {
        let throttle = LoginThrottle::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| throttle.allow_here(a)));
        assert!(!throttle.allow_here(a));
        assert!(throttle.allow_here(b));
        let v6 = LoginThrottle::new(1);
        assert!(v6.allow_here("2001:db8::1".parse().unwrap()));
        assert!(!v6.allow_here("2001:db8::2".parse().unwrap()));
    }
}
