//! The stored secrets as they are in the database (sealed or plain), for the start-up pass of
//! `auth::sealing`: list them, and replace one only if it still holds the value read.
//!
//! The database layer never seals or opens: what it reads and writes here, and in
//! [`Db::credentials`] and the session queries, is the stored text.

use uuid::Uuid;

use super::{Db, DbError, with_pool};

const TOTP_SECRETS: &str = "SELECT user_id, totp_secret, totp_pending_secret FROM credentials \
     WHERE totp_secret IS NOT NULL OR totp_pending_secret IS NOT NULL";

const ID_TOKENS: &str =
    "SELECT id, user_id, id_token FROM sessions WHERE id_token IS NOT NULL ORDER BY id";

// Compare-and-set: a value changed meanwhile (a new set-up, another replica's pass) is left as
// it is, so a value is never sealed twice.
const REPLACE_TOTP_SECRET: &str =
    "UPDATE credentials SET totp_secret = $3 WHERE user_id = $1 AND totp_secret = $2";

const REPLACE_TOTP_PENDING: &str = "UPDATE credentials SET totp_pending_secret = $3 \
     WHERE user_id = $1 AND totp_pending_secret = $2";

const REPLACE_ID_TOKEN: &str = "UPDATE sessions SET id_token = $3 WHERE id = $1 AND id_token = $2";

/// Where a stored secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretPlace {
    /// `credentials.totp_secret` of a user.
    TotpSecret {
        /// The user (the row's key).
        user_id: Uuid,
    },
    /// `credentials.totp_pending_secret` of a user.
    TotpPending {
        /// The user (the row's key).
        user_id: Uuid,
    },
    /// `sessions.id_token` of a session.
    IdToken {
        /// The session (the row's key).
        session_id: Uuid,
        /// Its user.
        user_id: Uuid,
    },
}

impl SecretPlace {
    /// The user the value belongs to.
    pub fn user_id(self) -> Uuid {
        match self {
            SecretPlace::TotpSecret { user_id }
            | SecretPlace::TotpPending { user_id }
            | SecretPlace::IdToken { user_id, .. } => user_id,
        }
    }
}

/// One stored secret: where it is and its stored text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// Where.
    pub place: SecretPlace,
    /// The stored text (sealed, or plain from before sealing).
    pub stored: String,
}

impl Db {
    /// Every stored TOTP secret (active and pending) and session ID token.
    #[tracing::instrument(skip_all)]
    pub async fn stored_secrets(&self) -> Result<Vec<StoredSecret>, DbError> {
        let (totp, tokens) = with_pool!(self, pool => {
            let totp: Vec<(Uuid, Option<String>, Option<String>)> =
                sqlx::query_as(TOTP_SECRETS).fetch_all(pool).await?;
            let tokens: Vec<(Uuid, Uuid, String)> =
                sqlx::query_as(ID_TOKENS).fetch_all(pool).await?;
            (totp, tokens)
        });
        let mut found = Vec::with_capacity(totp.len() + tokens.len());
        for (user_id, active, pending) in totp {
            if let Some(stored) = active {
                let place = SecretPlace::TotpSecret { user_id };
                found.push(StoredSecret { place, stored });
            }
            if let Some(stored) = pending {
                let place = SecretPlace::TotpPending { user_id };
                found.push(StoredSecret { place, stored });
            }
        }
        for (session_id, user_id, stored) in tokens {
            let place = SecretPlace::IdToken {
                session_id,
                user_id,
            };
            found.push(StoredSecret { place, stored });
        }
        Ok(found)
    }

    /// Replaces the secret at `place` with `new` if it still is `old`; returns whether it did.
    #[tracing::instrument(skip_all)]
    pub async fn replace_stored_secret(
        &self,
        place: SecretPlace,
        old: &str,
        new: &str,
    ) -> Result<bool, DbError> {
        let (query, key) = match place {
            SecretPlace::TotpSecret { user_id } => (REPLACE_TOTP_SECRET, user_id),
            SecretPlace::TotpPending { user_id } => (REPLACE_TOTP_PENDING, user_id),
            SecretPlace::IdToken { session_id, .. } => (REPLACE_ID_TOKEN, session_id),
        };
        let changed = with_pool!(self, pool => {
            sqlx::query(query)
                .bind(key)
                .bind(old)
                .bind(new)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(changed == 1)
    }
}
