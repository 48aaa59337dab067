//! Viewer sessions the server issued: the id the invisible watermark carries, bound to the user
//! and the sign-in session that asked for it, so that no client can choose whose id marks its
//! frames.

use uuid::Uuid;

use super::{Db, DbError, with_pool};

const INSERT: &str = "INSERT INTO viewer_sessions (id, user_id, auth_session, created_unix) \
     VALUES ($1, $2, $3, $4)";

const OWNED: &str = "SELECT id FROM viewer_sessions \
     WHERE id = $1 AND user_id = $2 AND auth_session = $3";

const OWNER: &str = "SELECT user_id FROM viewer_sessions WHERE id = $1";

const WITH_PREFIX: &str = "SELECT id, user_id, created_unix FROM viewer_sessions \
     WHERE id >= $1 AND id <= $2 ORDER BY created_unix";

impl Db {
    /// Issues a new viewer session to `user` signed in as `auth_session`.
    #[tracing::instrument(skip_all)]
    pub async fn issue_viewer_session(
        &self,
        user: Uuid,
        auth_session: Uuid,
        now_unix: i64,
    ) -> Result<Uuid, DbError> {
        let id = Uuid::new_v4();
        with_pool!(self, pool => {
            sqlx::query(INSERT)
                .bind(id)
                .bind(user)
                .bind(auth_session)
                .bind(now_unix)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(id)
    }

    /// Whether viewer session `id` was issued to `user` in sign-in session `auth_session`.
    #[tracing::instrument(skip_all)]
    pub async fn viewer_session_is_theirs(
        &self,
        id: Uuid,
        user: Uuid,
        auth_session: Uuid,
    ) -> Result<bool, DbError> {
        let row: Option<(Uuid,)> = with_pool!(self, pool => {
            sqlx::query_as(OWNED)
                .bind(id)
                .bind(user)
                .bind(auth_session)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.is_some())
    }

    /// The user a viewer session was issued to (for a decoded watermark), if it was issued.
    #[tracing::instrument(skip_all)]
    pub async fn viewer_session_owner(&self, id: Uuid) -> Result<Option<Uuid>, DbError> {
        let row: Option<(Uuid,)> = with_pool!(self, pool => {
            sqlx::query_as(OWNER).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(|(user,)| user))
    }

    /// The viewer sessions whose id starts with these 8 bytes (what an invisible watermark
    /// carries): `(id, user, created_unix)`, oldest first. Both databases order UUIDs by their
    /// bytes, so the prefix is a range.
    #[tracing::instrument(skip_all)]
    pub async fn viewer_sessions_with_prefix(
        &self,
        prefix: [u8; 8],
    ) -> Result<Vec<(Uuid, Uuid, i64)>, DbError> {
        let mut low = [0u8; 16];
        let mut high = [0xffu8; 16];
        low[..8].copy_from_slice(&prefix);
        high[..8].copy_from_slice(&prefix);
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, (Uuid, Uuid, i64)>(WITH_PREFIX)
                .bind(Uuid::from_bytes(low))
                .bind(Uuid::from_bytes(high))
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }
}
