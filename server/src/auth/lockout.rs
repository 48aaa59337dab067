//! Lockout for usernames that have no usable account (unknown or disabled), so that failed
//! sign-ins look the same whether an account exists or not: the same answers, the same lockout
//! after the same number of failures, the same backoff, the same order of work.
//!
//! Real accounts keep their counters in the database (shared by replicas); these are kept in
//! memory per server process, keyed by the SHA-256 of the lowercased name (no usernames are
//! held), at most [`MAX_NAMES`] of them (the oldest are dropped first).

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Most names tracked; past this, the least recently failed are forgotten.
pub const MAX_NAMES: usize = 100_000;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    failed: u32,
    lockouts: i64,
    locked_until: Option<i64>,
    last: i64,
}

/// Failure counters of names without an account.
#[derive(Debug)]
pub struct PhantomLockouts {
    threshold: u32,
    names: Mutex<HashMap<[u8; 32], Entry>>,
}

impl PhantomLockouts {
    /// Locks a name after `threshold` failures, like an account.
    pub fn new(threshold: u32) -> PhantomLockouts {
        PhantomLockouts {
            threshold: threshold.max(1),
            names: Mutex::new(HashMap::new()),
        }
    }

    fn key(name: &str) -> [u8; 32] {
        Sha256::digest(name.to_lowercase().as_bytes()).into()
    }

    fn names(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The end of the name's lock, if it is locked at `now`.
    pub fn locked_until(&self, name: &str, now: i64) -> Option<i64> {
        self.names()
            .get(&Self::key(name))
            .and_then(|entry| entry.locked_until)
            .filter(|until| *until > now)
    }

    /// Counts a failure; returns the lock's end if this failure locked the name (the same rule
    /// as `Db::record_login_failure` with `lock_for`).
    pub fn failure(&self, name: &str, now: i64, lock_for: impl Fn(i64) -> i64) -> Option<i64> {
        let mut names = self.names();
        if names.len() >= MAX_NAMES && !names.contains_key(&Self::key(name)) {
            // Forget the tenth that failed longest ago.
            let mut lasts: Vec<i64> = names.values().map(|e| e.last).collect();
            let cut = lasts.len() / 10;
            let (_, &mut oldest, _) = lasts.select_nth_unstable(cut);
            names.retain(|_, entry| entry.last > oldest);
        }
        let entry = names.entry(Self::key(name)).or_default();
        entry.last = now;
        entry.failed += 1;
        if entry.failed < self.threshold {
            return None;
        }
        let until = now + lock_for(entry.lockouts);
        entry.failed = 0;
        entry.lockouts += 1;
        entry.locked_until = Some(until);
        Some(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::lock_seconds;

    #[test]
    fn names_lock_like_accounts() {
        let lockouts = PhantomLockouts::new(3);
        let results: Vec<Option<i64>> = (0..3)
            .map(|_| lockouts.failure("Nobody", 100, lock_seconds))
            .collect();
        assert_eq!(results, [None, None, Some(160)]);
        // Case does not matter, like usernames.
        assert_eq!(lockouts.locked_until("nobody", 120), Some(160));
        assert_eq!(lockouts.locked_until("nobody", 160), None);
        assert_eq!(lockouts.locked_until("somebody", 120), None);
        // The next lock is twice as long.
        for _ in 0..2 {
            assert_eq!(lockouts.failure("nobody", 200, lock_seconds), None);
        }
        assert_eq!(lockouts.failure("nobody", 200, lock_seconds), Some(320));
    }

    #[test]
    fn the_table_is_bounded() {
        let lockouts = PhantomLockouts::new(5);
        for n in 0..(MAX_NAMES + 10) {
            lockouts.failure(&format!("name{n}"), n as i64, lock_seconds);
        }
        assert!(lockouts.names().len() <= MAX_NAMES);
    }
}
