//! The worker pool's registrations (`workers`) and the open stream sessions (`live_streams`),
//! shared by every server replica.

use uuid::Uuid;

use super::{Db, DbError, with_pool};

/// A registered worker, as its last heartbeat described it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WorkerRow {
    /// The worker's id.
    pub id: String,
    /// Its signing key (hex).
    pub public_key: String,
    /// Where servers reach its control API.
    pub control_url: String,
    /// Its media address (for operators).
    pub media_address: String,
    /// Most concurrent sessions.
    pub capacity: i64,
    /// Sessions at the last heartbeat.
    pub active_sessions: i64,
    /// Load per core.
    pub cpu_load: f64,
    /// Takes no new sessions.
    pub draining: bool,
    /// First registration, Unix seconds.
    pub registered_unix: i64,
    /// Last heartbeat, Unix seconds.
    pub last_seen_unix: i64,
}

/// An open stream session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LiveStream {
    /// The stream session (a reservation's placeholder id until a worker answered).
    pub id: Uuid,
    /// The worker running it (`""` while reserved).
    pub worker_id: String,
    /// Whose.
    pub user_id: Uuid,
    /// The case it shows.
    pub case_id: Uuid,
    /// The sign-in session that asked for it.
    pub auth_session: Uuid,
    /// The viewer session.
    pub viewer_session: String,
    /// Unix second it was reserved.
    pub started_unix: i64,
    /// Unix second its access was found revoked, if it was.
    pub revoked_unix: Option<i64>,
}

const UPSERT_WORKER: &str = "INSERT INTO workers \
     (id, public_key, control_url, media_address, capacity, active_sessions, cpu_load, draining, \
      registered_unix, last_seen_unix) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
     ON CONFLICT (id) DO UPDATE SET public_key = excluded.public_key, \
      control_url = excluded.control_url, media_address = excluded.media_address, \
      capacity = excluded.capacity, active_sessions = excluded.active_sessions, \
      cpu_load = excluded.cpu_load, draining = excluded.draining, \
      last_seen_unix = excluded.last_seen_unix";

const WORKERS: &str = "SELECT id, public_key, control_url, media_address, capacity, \
     active_sessions, cpu_load, draining, registered_unix, last_seen_unix FROM workers ORDER BY id";

const LIVE: &str = "SELECT id, worker_id, user_id, case_id, auth_session, viewer_session, \
     started_unix, revoked_unix FROM live_streams";

impl Db {
    /// Records a worker's heartbeat (registering it on the first).
    pub async fn upsert_worker(&self, row: &WorkerRow) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query(UPSERT_WORKER)
                .bind(&row.id)
                .bind(&row.public_key)
                .bind(&row.control_url)
                .bind(&row.media_address)
                .bind(row.capacity)
                .bind(row.active_sessions)
                .bind(row.cpu_load)
                .bind(row.draining)
                .bind(row.last_seen_unix)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every registered worker.
    pub async fn workers(&self) -> Result<Vec<WorkerRow>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, WorkerRow>(WORKERS).fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Marks a worker as not reachable (its last heartbeat set to long ago), so placement skips
    /// it until it sends the next one.
    pub async fn mark_worker_unreachable(&self, id: &str) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE workers SET last_seen_unix = 0 WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Reserves a stream slot for a user; the row is completed by
    /// [`Db::complete_live_stream`] or removed by [`Db::delete_live_stream`].
    pub async fn reserve_live_stream(&self, row: &LiveStream) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO live_streams (id, worker_id, user_id, case_id, auth_session, \
                 viewer_session, started_unix, revoked_unix) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
            )
            .bind(row.id)
            .bind(&row.worker_id)
            .bind(row.user_id)
            .bind(row.case_id)
            .bind(row.auth_session)
            .bind(&row.viewer_session)
            .bind(row.started_unix)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Open (or reserved) streams of a user.
    pub async fn count_live_streams(&self, user_id: Uuid) -> Result<i64, DbError> {
        let count: i64 = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM live_streams WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(pool)
                .await?
        });
        Ok(count)
    }

    /// The streams `user_id` has open (or reserved) on `case_id` now.
    pub async fn live_streams_of_user_on(
        &self,
        user_id: Uuid,
        case_id: Uuid,
    ) -> Result<Vec<Uuid>, DbError> {
        let ids = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT id FROM live_streams WHERE user_id = $1 AND case_id = $2")
                .bind(user_id)
                .bind(case_id)
                .fetch_all(pool)
                .await?
        });
        Ok(ids)
    }

    /// Whether `user_id` has a stream open (or reserved) on `case_id` now (moved there with
    /// `open_case` or started on it).
    pub async fn has_live_stream_on(&self, user_id: Uuid, case_id: Uuid) -> Result<bool, DbError> {
        let count: i64 = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM live_streams WHERE user_id = $1 AND case_id = $2",
            )
            .bind(user_id)
            .bind(case_id)
            .fetch_one(pool)
            .await?
        });
        Ok(count > 0)
    }

    /// A user's open (or reserved) streams as the per-user limit counts them: the number of
    /// distinct viewer sessions, and how many streams `viewer_session` has (a reconnect's new
    /// stream and the old one its lost worker has not yet reported are one viewer).
    pub async fn count_viewer_sessions(
        &self,
        user_id: Uuid,
        viewer_session: &str,
    ) -> Result<(i64, i64), DbError> {
        let counts: (i64, i64) = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT COUNT(DISTINCT viewer_session), \
                        COUNT(CASE WHEN viewer_session = $2 THEN 1 END) \
                 FROM live_streams WHERE user_id = $1",
            )
            .bind(user_id)
            .bind(viewer_session)
            .fetch_one(pool)
            .await?
        });
        Ok(counts)
    }

    /// Gives a reservation the worker's stream id and the worker.
    pub async fn complete_live_stream(
        &self,
        reservation: Uuid,
        stream_id: Uuid,
        worker_id: &str,
    ) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE live_streams SET id = $1, worker_id = $2 WHERE id = $3")
                .bind(stream_id)
                .bind(worker_id)
                .bind(reservation)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Removes an open stream (ended) or a reservation (not opened); whether it was there.
    pub async fn delete_live_stream(&self, id: Uuid) -> Result<bool, DbError> {
        let done = with_pool!(self, pool => {
            sqlx::query("DELETE FROM live_streams WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// Moves an open stream to another case (the worker reported an `open_case`).
    pub async fn move_live_stream(&self, id: Uuid, case_id: Uuid) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE live_streams SET case_id = $1 WHERE id = $2")
                .bind(case_id)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every open stream.
    pub async fn live_streams(&self) -> Result<Vec<LiveStream>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, LiveStream>(LIVE).fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// The open streams placed on worker `worker_id`.
    pub async fn live_streams_on(&self, worker_id: &str) -> Result<Vec<LiveStream>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, LiveStream>(sqlx::AssertSqlSafe(format!("{LIVE} WHERE worker_id = $1")))
                .bind(worker_id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Marks a stream as revoked; `true` only for the caller that marked it first (so one
    /// replica audits the revocation).
    pub async fn mark_live_stream_revoked(&self, id: Uuid, now_unix: i64) -> Result<bool, DbError> {
        let done = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE live_streams SET revoked_unix = $1 WHERE id = $2 AND revoked_unix IS NULL",
            )
            .bind(now_unix)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Whether a sign-in session exists, and its absolute and last-seen times.
    pub async fn session_times(&self, session_id: Uuid) -> Result<Option<(i64, i64)>, DbError> {
        let row: Option<(i64, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT expires_unix, last_seen_unix FROM sessions WHERE id = $1")
                .bind(session_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }
}
