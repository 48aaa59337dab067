//! Views shown in streams that are still open, as workers report them (`SessionEvent::Viewed`):
//! what the grading form's check of what was looked at reads before a stream's end report.

use uuid::Uuid;

use super::{Db, DbError, with_pool};

impl Db {
    /// Records that `stream` showed `view` of `case` to `user`; a label seen before (an event
    /// delivered twice) changes nothing. The table refuses labels over 200 bytes.
    #[tracing::instrument(skip_all)]
    pub async fn record_live_view(
        &self,
        stream: Uuid,
        user: Uuid,
        case: Uuid,
        view: &str,
        shown_unix: i64,
    ) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO live_views (stream_id, case_id, user_id, view, shown_unix) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_id, case_id, view) DO NOTHING",
            )
            .bind(stream)
            .bind(case)
            .bind(user)
            .bind(view)
            .bind(shown_unix)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// The views of `case` shown to `user` in streams not yet reported: `(stream, view)`.
    #[tracing::instrument(skip_all)]
    pub async fn live_views(&self, user: Uuid, case: Uuid) -> Result<Vec<(Uuid, String)>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT stream_id, view FROM live_views WHERE user_id = $1 AND case_id = $2 \
                 ORDER BY shown_unix, view",
            )
            .bind(user)
            .bind(case)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Forgets the live views of `stream` (its end report, with every view, is recorded).
    #[tracing::instrument(skip_all)]
    pub async fn delete_live_views(&self, stream: Uuid) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM live_views WHERE stream_id = $1")
                .bind(stream)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}
