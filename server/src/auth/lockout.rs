//! Lockout for usernames that have no usable account (unknown or disabled), so that failed
//! sign-ins look the same whether an account exists or not: the same answers, the same lockout
//! after the same number of failures, the same backoff, the same order of work.
//!
//! Real accounts keep their counters in `credentials`; these are kept in `phantom_lockouts`,
//! also in the database, so that every server replica counts the same failures (counters in
//! each process's memory let a name without an account take more failures than a real one
//! before it locked, behind a load balancer: an enumeration oracle). Rows are keyed by the
//! SHA-256 of the lowercased name (no usernames are stored) and purged a day after their last
//! failure.

use sha2::{Digest, Sha256};

use crate::db::{Db, DbError};

/// Failure counters of names without an account.
#[derive(Debug)]
pub struct PhantomLockouts {
    threshold: u32,
}

impl PhantomLockouts {
    /// Locks a name after `threshold` failures, like an account.
    pub fn new(threshold: u32) -> PhantomLockouts {
        PhantomLockouts {
            threshold: threshold.max(1),
        }
    }

    /// The key of `name`: the hex SHA-256 of its lowercase form (usernames ignore case).
    pub fn key(name: &str) -> String {
        hex::encode(Sha256::digest(name.to_lowercase().as_bytes()))
    }

    /// The end of the name's lock, if it is locked at `now`.
    pub async fn locked_until(
        &self,
        db: &Db,
        name: &str,
        now: i64,
    ) -> Result<Option<i64>, DbError> {
        db.phantom_locked_until(&Self::key(name), now).await
    }

    /// Counts a failure; returns the lock's end if this failure locked the name (the same rule
    /// as `Db::record_login_failure` with `lock_for`).
    pub async fn failure(
        &self,
        db: &Db,
        name: &str,
        now: i64,
        lock_for: impl Fn(i64) -> i64,
    ) -> Result<Option<i64>, DbError> {
        db.record_phantom_failure(&Self::key(name), self.threshold, now, lock_for)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_and_hold_no_name() {
        assert_eq!(
            PhantomLockouts::key("Nobody"),
            PhantomLockouts::key("nobody")
        );
        assert_ne!(
            PhantomLockouts::key("nobody"),
            PhantomLockouts::key("somebody")
        );
        assert!(!PhantomLockouts::key("nobody").contains("nobody"));
        assert_eq!(PhantomLockouts::key("nobody").len(), 64);
    }
}
