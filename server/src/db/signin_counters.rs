//! Sign-in counters shared by every server replica: attempts per client address in a
//! one-minute window (`signin_throttle`) and the failure counters of usernames without a usable
//! account (`phantom_lockouts`, keyed by a hash of the name). Each change is one statement, so
//! two replicas counting at once both count.

use super::{Db, DbError, with_pool};

/// Counts an attempt of `client` in the window starting at `window_start` (a new window
/// restarts the count); returns the attempts in that window, this one included.
const COUNT_ATTEMPT: &str = "INSERT INTO signin_throttle (client, window_start, attempts) \
     VALUES ($1, $2, 1) \
     ON CONFLICT (client) DO UPDATE SET \
       attempts = CASE WHEN signin_throttle.window_start = excluded.window_start \
                       THEN signin_throttle.attempts + 1 ELSE 1 END, \
       window_start = excluded.window_start \
     RETURNING attempts";

const PURGE_THROTTLE: &str = "DELETE FROM signin_throttle WHERE window_start < $1";

const PHANTOM_LOCKED: &str =
    "SELECT locked_until_unix FROM phantom_lockouts WHERE name_sha256 = $1";

const PHANTOM_FAILURE: &str = "INSERT INTO phantom_lockouts \
       (name_sha256, failed, lockouts, locked_until_unix, last_unix) \
     VALUES ($1, 1, 0, NULL, $2) \
     ON CONFLICT (name_sha256) DO UPDATE SET \
       failed = phantom_lockouts.failed + 1, last_unix = excluded.last_unix \
     RETURNING failed, lockouts";

// Only the request that crossed the threshold locks (as for accounts).
const PHANTOM_LOCK: &str = "UPDATE phantom_lockouts \
     SET failed = 0, lockouts = lockouts + 1, locked_until_unix = $2 \
     WHERE name_sha256 = $1 AND failed >= $3";

const PURGE_PHANTOMS: &str = "DELETE FROM phantom_lockouts \
     WHERE last_unix < $1 AND (locked_until_unix IS NULL OR locked_until_unix < $1)";

impl Db {
    /// Counts a sign-in attempt of `client` (an address key) in the one-minute window that
    /// holds `now_unix`; returns how many attempts it made in that window.
    #[tracing::instrument(skip_all)]
    pub async fn count_signin_attempt(&self, client: &str, now_unix: i64) -> Result<i64, DbError> {
        let window = now_unix - now_unix.rem_euclid(60);
        let (attempts,): (i64,) = with_pool!(self, pool => {
            sqlx::query_as(COUNT_ATTEMPT).bind(client).bind(window).fetch_one(pool).await?
        });
        Ok(attempts)
    }

    /// The end of the lock of the name with hash `name_sha256`, if it is locked at `now_unix`.
    #[tracing::instrument(skip_all)]
    pub async fn phantom_locked_until(
        &self,
        name_sha256: &str,
        now_unix: i64,
    ) -> Result<Option<i64>, DbError> {
        let row: Option<(Option<i64>,)> = with_pool!(self, pool => {
            sqlx::query_as(PHANTOM_LOCKED).bind(name_sha256).fetch_optional(pool).await?
        });
        Ok(row
            .and_then(|(until,)| until)
            .filter(|until| *until > now_unix))
    }

    /// Counts a failed sign-in of a name without an account; after `threshold` failures it
    /// is locked until `now_unix + lock_for(earlier lockouts)`, which is returned (the same
    /// rule as [`Db::record_login_failure`]).
    #[tracing::instrument(skip_all)]
    pub async fn record_phantom_failure(
        &self,
        name_sha256: &str,
        threshold: u32,
        now_unix: i64,
        lock_for: impl Fn(i64) -> i64,
    ) -> Result<Option<i64>, DbError> {
        let (failed, lockouts): (i64, i64) = with_pool!(self, pool => {
            sqlx::query_as(PHANTOM_FAILURE).bind(name_sha256).bind(now_unix).fetch_one(pool).await?
        });
        if failed < i64::from(threshold) {
            return Ok(None);
        }
        let until = now_unix + lock_for(lockouts);
        let locked = with_pool!(self, pool => {
            sqlx::query(PHANTOM_LOCK)
                .bind(name_sha256)
                .bind(until)
                .bind(i64::from(threshold))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok((locked == 1).then_some(until))
    }

    /// Forgets throttle windows and phantom counters last touched before `before_unix` (a
    /// phantom name that is still locked is kept).
    #[tracing::instrument(skip_all)]
    pub async fn purge_signin_counters(&self, before_unix: i64) -> Result<u64, DbError> {
        let purged = with_pool!(self, pool => {
            let a = sqlx::query(PURGE_THROTTLE).bind(before_unix).execute(pool).await?.rows_affected();
            let b = sqlx::query(PURGE_PHANTOMS).bind(before_unix).execute(pool).await?.rows_affected();
            a + b
        });
        Ok(purged)
    }
}
