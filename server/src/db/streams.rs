//! Ended streaming sessions, as reported by workers.

use uuid::Uuid;

use super::{Db, DbError, with_pool};

/// One ended streaming session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StreamSession {
    /// Stream session id (one peer connection).
    pub id: Uuid,
    /// Viewer session id (may span several cases).
    pub viewer_session: String,
    /// Who watched.
    pub user_id: Uuid,
    /// The case shown last.
    pub case_id: Uuid,
    /// Start, Unix seconds.
    pub started_unix: i64,
    /// Duration in milliseconds.
    pub duration_ms: i64,
    /// Video frames sent.
    pub frames: i64,
    /// Bytes of video and lossless frames sent.
    pub bytes_sent: i64,
    /// Data-channel messages received.
    pub messages: i64,
    /// Messages refused.
    pub refused: i64,
    /// Why it ended.
    pub end_reason: String,
    /// JSON list of `layout:exam` views used.
    pub views: String,
    /// JSON list of lossless frames (frame, sha256, verified).
    pub lossless: String,
}

const INSERT: &str = "INSERT INTO stream_sessions \
     (id, viewer_session, user_id, case_id, started_unix, duration_ms, frames, bytes_sent, \
      messages, refused, end_reason, views, lossless) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (id) DO NOTHING";

const OF_CASE: &str = "SELECT id, viewer_session, user_id, case_id, started_unix, duration_ms, \
     frames, bytes_sent, messages, refused, end_reason, views, lossless \
     FROM stream_sessions WHERE case_id = $1 ORDER BY started_unix, id";

impl Db {
    /// Records an ended streaming session; `false` if it was already recorded (a report
    /// delivered twice).
    #[tracing::instrument(skip_all)]
    pub async fn record_stream_session(&self, row: &StreamSession) -> Result<bool, DbError> {
        let inserted = with_pool!(self, pool => {
            sqlx::query(INSERT)
                .bind(row.id)
                .bind(&row.viewer_session)
                .bind(row.user_id)
                .bind(row.case_id)
                .bind(row.started_unix)
                .bind(row.duration_ms)
                .bind(row.frames)
                .bind(row.bytes_sent)
                .bind(row.messages)
                .bind(row.refused)
                .bind(&row.end_reason)
                .bind(&row.views)
                .bind(&row.lossless)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(inserted > 0)
    }

    /// The ended streaming sessions of a case, oldest first.
    pub async fn stream_sessions_of_case(
        &self,
        case_id: Uuid,
    ) -> Result<Vec<StreamSession>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, StreamSession>(OF_CASE)
                .bind(case_id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }
}
