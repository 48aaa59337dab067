//! Lossless frames workers sent, as the workers reported them: what grade evidence is checked
//! against (a grade's `lossless_sha256` must be a frame sent to that user for that case).

use uuid::Uuid;

use super::{Db, DbError, with_pool};

/// One lossless frame a worker sent.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LosslessFrame {
    /// The stream session.
    pub stream_id: Uuid,
    /// Frame number within it.
    pub frame: i64,
    /// Who it was sent to.
    pub user_id: Uuid,
    /// The case it shows.
    pub case_id: Uuid,
    /// SHA-256 (lowercase hex) of the frame's RGB pixels.
    pub sha256: String,
    /// Bytes of the image that went out.
    pub bytes: i64,
    /// Source pixels it shows at full resolution (its lossless budget cost).
    pub revealed_px: i64,
    /// The render state (JSON).
    pub state: String,
    /// When the worker's report was recorded, Unix seconds.
    pub sent_unix: i64,
    /// The watermark it carried (JSON [`readroom_domain::workers::MarkRecord`]; `None` for
    /// frames recorded before December 2026).
    pub mark: Option<String>,
}

const INSERT: &str = "INSERT INTO lossless_frames \
     (stream_id, frame, user_id, case_id, sha256, bytes, revealed_px, state, sent_unix, mark) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (stream_id, frame) DO NOTHING";

const SENT: &str = "SELECT stream_id, frame, user_id, case_id, sha256, bytes, revealed_px, state, \
     sent_unix, mark \
     FROM lossless_frames WHERE user_id = $1 AND case_id = $2 AND sha256 = $3 \
     ORDER BY sent_unix DESC, frame DESC";

const SHOWN: &str = "SELECT CAST(COALESCE(SUM(revealed_px), 0) AS BIGINT) FROM lossless_frames \
     WHERE user_id = $1 AND case_id = $2 AND sent_unix >= $3";

impl Db {
    /// Records a lossless frame a worker sent; `false` if it was recorded already (an event
    /// delivered twice).
    #[tracing::instrument(skip_all)]
    pub async fn record_lossless_frame(&self, row: &LosslessFrame) -> Result<bool, DbError> {
        let inserted = with_pool!(self, pool => {
            sqlx::query(INSERT)
                .bind(row.stream_id)
                .bind(row.frame)
                .bind(row.user_id)
                .bind(row.case_id)
                .bind(&row.sha256)
                .bind(row.bytes)
                .bind(row.revealed_px)
                .bind(&row.state)
                .bind(row.sent_unix)
                .bind(&row.mark)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(inserted > 0)
    }

    /// The lossless frames with hash `sha256` sent to `user` for `case`, newest first.
    #[tracing::instrument(skip_all)]
    pub async fn lossless_frames_sent(
        &self,
        user: Uuid,
        case: Uuid,
        sha256: &str,
    ) -> Result<Vec<LosslessFrame>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, LosslessFrame>(SENT)
                .bind(user)
                .bind(case)
                .bind(sha256)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Full-resolution pixels of `case` shown losslessly to `user` since `since_unix`.
    #[tracing::instrument(skip_all)]
    pub async fn lossless_px_shown(
        &self,
        user: Uuid,
        case: Uuid,
        since_unix: i64,
    ) -> Result<u64, DbError> {
        let (sum,): (i64,) = with_pool!(self, pool => {
            sqlx::query_as(SHOWN).bind(user).bind(case).bind(since_unix).fetch_one(pool).await?
        });
        Ok(u64::try_from(sum).unwrap_or(0))
    }
}
