//! Credentials, sessions, one-time sign-in links, pending OIDC logins and external identities.
//!
//! Deadlines are Unix seconds so both backends compare them the same way in SQL. Secrets that
//! grant access (session tokens, link tokens, OIDC states) are stored only as SHA-256 hashes;
//! callers hash before calling.
//! TOTP secrets and ID tokens are stored sealed (`auth::at_rest`); callers seal before storing
//! and open after reading, this layer moves the stored text only.

use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{
    Credentials, ExternalIdentity, NewSession, PendingOidcLogin, Role, RoleGrant, Session,
    SessionWithUser, User,
};
use super::{Db, DbError, found_one, new_id, now, with_pool};

const CREDENTIALS: &str = "SELECT password_hash, totp_secret, totp_pending_secret, failed_logins, \
     lockouts, locked_until_unix FROM credentials WHERE user_id = $1";

const ENSURE_CREDENTIALS: &str =
    "INSERT INTO credentials (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING";

const SET_PASSWORD: &str =
    "UPDATE credentials SET password_hash = $2, password_changed_at = $3 WHERE user_id = $1";

const COUNT_FAILURE: &str = "UPDATE credentials SET failed_logins = failed_logins + 1 \
     WHERE user_id = $1 RETURNING failed_logins, lockouts";

// Only the request that crossed the threshold locks (the others see failed_logins reset to 0).
const LOCK: &str = "UPDATE credentials \
     SET failed_logins = 0, lockouts = lockouts + 1, locked_until_unix = $2 \
     WHERE user_id = $1 AND failed_logins >= $3";

const CLEAR_FAILURES: &str = "UPDATE credentials \
     SET failed_logins = 0, lockouts = 0, locked_until_unix = NULL WHERE user_id = $1";

const SET_TOTP_PENDING: &str = "UPDATE credentials SET totp_pending_secret = $2 WHERE user_id = $1";

const ENABLE_TOTP: &str = "UPDATE credentials \
     SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, totp_last_step = $2 \
     WHERE user_id = $1 AND totp_pending_secret IS NOT NULL";

const DISABLE_TOTP: &str = "UPDATE credentials \
     SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = NULL WHERE user_id = $1";

// Accepts a time step once: replays and older steps update nothing.
const ACCEPT_TOTP_STEP: &str = "UPDATE credentials SET totp_last_step = $2 \
     WHERE user_id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)";

const INSERT_SESSION: &str = "INSERT INTO sessions (id, token_hash, user_id, csrf_token, \
     auth_method, id_token, created_at, last_seen_unix, expires_unix, client_addr) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     RETURNING id, user_id, csrf_token, auth_method, id_token, created_at, last_seen_unix, \
     expires_unix";

const SESSION_BY_TOKEN: &str = "SELECT id, user_id, csrf_token, auth_method, id_token, \
     created_at, last_seen_unix, expires_unix FROM sessions WHERE token_hash = $1";

// One round trip for what every signed-in request needs: the session, its user and the user's
// grants (one row per grant; one row with NULL grant columns for a user without any).
const SESSION_USER_GRANTS_BY_TOKEN: &str = "SELECT s.id, s.user_id, s.csrf_token, s.auth_method, \
     s.id_token, s.created_at, s.last_seen_unix, s.expires_unix, \
     u.username AS user_username, u.display_name AS user_display_name, u.email AS user_email, \
     u.created_at AS user_created_at, u.disabled AS user_disabled, \
     g.role AS grant_role, g.study_id AS grant_study_id \
     FROM sessions s JOIN users u ON u.id = s.user_id \
     LEFT JOIN role_grants g ON g.user_id = s.user_id \
     WHERE s.token_hash = $1 \
     ORDER BY (g.study_id IS NOT NULL), g.study_id, g.role";

const SESSIONS_OF_USER: &str = "SELECT id, user_id, csrf_token, auth_method, id_token, \
     created_at, last_seen_unix, expires_unix FROM sessions WHERE user_id = $1 ORDER BY created_at";

const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen_unix = $2 WHERE id = $1";

const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";

const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";

const DELETE_OTHER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1 AND id <> $2";

const DELETE_EXPIRED_SESSIONS: &str =
    "DELETE FROM sessions WHERE expires_unix <= $1 OR last_seen_unix <= $2";

const INSERT_LINK: &str = "INSERT INTO signin_links \
     (id, token_hash, user_id, created_at, expires_unix, created_by, purpose) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

// Reads a usable link without using it (the second step, TOTP, comes before the link is spent).
const PEEK_LINK: &str = "SELECT user_id, purpose FROM signin_links \
     WHERE token_hash = $1 AND used_at IS NULL AND expires_unix > $2";

// Marks the link used in the same statement that reads it: a link works once even when two
// requests race.
const REDEEM_LINK: &str = "UPDATE signin_links SET used_at = $3 \
     WHERE token_hash = $1 AND used_at IS NULL AND expires_unix > $2 RETURNING user_id";

const INSERT_OIDC_LOGIN: &str = "INSERT INTO oidc_logins \
     (state_hash, provider, nonce, pkce_verifier, return_to, created_at, expires_unix) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

const TAKE_OIDC_LOGIN: &str = "DELETE FROM oidc_logins WHERE state_hash = $1 \
     RETURNING provider, nonce, pkce_verifier, return_to, expires_unix";

const DELETE_EXPIRED_OIDC_LOGINS: &str = "DELETE FROM oidc_logins WHERE expires_unix <= $1";

const IDENTITY: &str = "SELECT provider, subject, user_id FROM external_identities \
     WHERE provider = $1 AND subject = $2";

const INSERT_IDENTITY: &str = "INSERT INTO external_identities \
     (provider, subject, user_id, created_at, last_login_at) VALUES ($1, $2, $3, $4, $4)";

const TOUCH_IDENTITY: &str = "UPDATE external_identities SET last_login_at = $3 \
     WHERE provider = $1 AND subject = $2";

const IDENTITIES_OF: &str = "SELECT provider, subject, user_id FROM external_identities \
     WHERE user_id = $1 ORDER BY provider";

const DELETE_IDP_GRANTS: &str = "DELETE FROM role_grants WHERE user_id = $1 AND source = $2";

// A manual grant of the same role and scope already covers it: keep that one.
const INSERT_IDP_GRANT: &str = "INSERT INTO role_grants \
     (id, user_id, role, study_id, granted_at, granted_by, source) \
     VALUES ($1, $2, $3, $4, $5, NULL, $6) ON CONFLICT DO NOTHING";

const GRANT_BY_ID: &str = "SELECT id, user_id, role, study_id, granted_at, granted_by, source \
     FROM role_grants WHERE id = $1";

const DELETE_GRANT: &str = "DELETE FROM role_grants WHERE id = $1 AND user_id = $2";

const ALL_GRANTS: &str = "SELECT id, user_id, role, study_id, granted_at, granted_by, source \
     FROM role_grants ORDER BY user_id, (study_id IS NOT NULL), study_id, role";

const USERS_WITH_ROLE: &str = "SELECT DISTINCT user_id FROM role_grants WHERE role = $1";

const SET_DISABLED: &str = "UPDATE users SET disabled = $2 WHERE id = $1";

const SET_DISPLAY_NAME: &str = "UPDATE users SET display_name = $2 WHERE id = $1";

/// What a one-time sign-in link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// An ordinary link (admin, CLI, demo): local accounts only.
    SignIn,
    /// The first administrator's link printed by `serve` while no admin exists: the
    /// break-glass path, accepted in single-sign-on-only mode too.
    Bootstrap,
}

impl LinkPurpose {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::SignIn => "signin",
            LinkPurpose::Bootstrap => "bootstrap",
        }
    }
}

/// Unix seconds of `time`.
pub fn unix(time: OffsetDateTime) -> i64 {
    time.unix_timestamp()
}

impl Db {
    /// The user's credentials; all empty (the default) if none were ever stored.
    #[tracing::instrument(skip_all)]
    pub async fn credentials(&self, user_id: Uuid) -> Result<Credentials, DbError> {
        let found = with_pool!(self, pool => {
            sqlx::query_as::<_, Credentials>(CREDENTIALS)
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(found.unwrap_or_default())
    }

    async fn ensure_credentials(&self, user_id: Uuid) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query(ENSURE_CREDENTIALS).bind(user_id).execute(pool).await?;
        });
        Ok(())
    }

    /// Stores a new password hash (argon2id PHC string).
    #[tracing::instrument(skip_all)]
    pub async fn set_password_hash(&self, user_id: Uuid, hash: &str) -> Result<(), DbError> {
        self.ensure_credentials(user_id).await?;
        let changed_at = now();
        with_pool!(self, pool => {
            sqlx::query(SET_PASSWORD)
                .bind(user_id)
                .bind(hash)
                .bind(changed_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Counts a failed sign-in. When the count reaches `threshold` the account is locked until
    /// `lock_for(lockouts_so_far)` seconds from `now_unix` and the count restarts.
    /// Returns the lock's end if this failure locked the account.
    #[tracing::instrument(skip_all)]
    pub async fn record_login_failure(
        &self,
        user_id: Uuid,
        threshold: u32,
        now_unix: i64,
        lock_for: impl Fn(i64) -> i64,
    ) -> Result<Option<i64>, DbError> {
        self.ensure_credentials(user_id).await?;
        let (failed, lockouts): (i64, i64) = with_pool!(self, pool => {
            sqlx::query_as(COUNT_FAILURE).bind(user_id).fetch_one(pool).await?
        });
        if failed < i64::from(threshold) {
            return Ok(None);
        }
        let until = now_unix + lock_for(lockouts);
        let locked = with_pool!(self, pool => {
            sqlx::query(LOCK)
                .bind(user_id)
                .bind(until)
                .bind(i64::from(threshold))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok((locked == 1).then_some(until))
    }

    /// Clears failures, lockouts and any lock (successful sign-in, admin unlock).
    #[tracing::instrument(skip_all)]
    pub async fn clear_login_failures(&self, user_id: Uuid) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query(CLEAR_FAILURES).bind(user_id).execute(pool).await?;
        });
        Ok(())
    }

    /// Stores a TOTP secret awaiting confirmation (replacing any earlier pending one).
    #[tracing::instrument(skip_all)]
    pub async fn set_totp_pending(&self, user_id: Uuid, secret: &str) -> Result<(), DbError> {
        self.ensure_credentials(user_id).await?;
        with_pool!(self, pool => {
            sqlx::query(SET_TOTP_PENDING).bind(user_id).bind(secret).execute(pool).await?;
        });
        Ok(())
    }

    /// Makes the pending TOTP secret the active one, recording the step of the code that
    /// confirmed it (so that code cannot be replayed). [`DbError::NotFound`] if none is pending.
    #[tracing::instrument(skip_all)]
    pub async fn enable_totp(&self, user_id: Uuid, confirmed_step: i64) -> Result<(), DbError> {
        let changed = with_pool!(self, pool => {
            sqlx::query(ENABLE_TOTP)
                .bind(user_id)
                .bind(confirmed_step)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found_one(changed)
    }

    /// Removes TOTP from the account.
    #[tracing::instrument(skip_all)]
    pub async fn disable_totp(&self, user_id: Uuid) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query(DISABLE_TOTP).bind(user_id).execute(pool).await?;
        });
        Ok(())
    }

    /// Accepts a TOTP time step once: `false` if this step or a later one was already used.
    #[tracing::instrument(skip_all)]
    pub async fn accept_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, DbError> {
        let changed = with_pool!(self, pool => {
            sqlx::query(ACCEPT_TOTP_STEP)
                .bind(user_id)
                .bind(step)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Creates a session.
    #[tracing::instrument(skip_all)]
    pub async fn create_session(&self, new: &NewSession) -> Result<Session, DbError> {
        let id = new_id();
        let created_at = now();
        let session = with_pool!(self, pool => {
            sqlx::query_as::<_, Session>(INSERT_SESSION)
                .bind(id)
                .bind(&new.token_hash)
                .bind(new.user_id)
                .bind(&new.csrf_token)
                .bind(&new.auth_method)
                .bind(&new.id_token)
                .bind(created_at)
                .bind(unix(created_at))
                .bind(new.expires_unix)
                .bind(&new.client_addr)
                .fetch_one(pool)
                .await?
        });
        Ok(session)
    }

    /// The session whose cookie token hashes to `token_hash`, or [`DbError::NotFound`].
    /// Expiry is the caller's check.
    #[tracing::instrument(skip_all)]
    pub async fn session_by_token_hash(&self, token_hash: &str) -> Result<Session, DbError> {
        let session = with_pool!(self, pool => {
            sqlx::query_as::<_, Session>(SESSION_BY_TOKEN)
                .bind(token_hash)
                .fetch_one(pool)
                .await?
        });
        Ok(session)
    }

    /// The session whose cookie token hashes to `token_hash`, with its user and the user's
    /// grants (role, study), in one query; or [`DbError::NotFound`]. Expiry is the caller's
    /// check.
    #[tracing::instrument(skip_all)]
    pub async fn session_with_user_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<SessionWithUser, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, SessionUserGrantRow>(SESSION_USER_GRANTS_BY_TOKEN)
                .bind(token_hash)
                .fetch_all(pool)
                .await?
        });
        let Some(first) = rows.first() else {
            return Err(DbError::NotFound);
        };
        let user = User {
            id: first.session.user_id,
            username: first.user_username.clone(),
            display_name: first.user_display_name.clone(),
            email: first.user_email.clone(),
            created_at: first.user_created_at,
            disabled: first.user_disabled,
        };
        let session = first.session.clone();
        let mut grants = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(role) = row.grant_role {
                let role = Role::try_from(role)
                    .map_err(|err| DbError::Other(format!("stored role grant: {err}").into()))?;
                grants.push((role, row.grant_study_id));
            }
        }
        Ok(SessionWithUser {
            session,
            user,
            grants,
        })
    }

    /// Every session of a user, oldest first (expired ones included until swept).
    #[tracing::instrument(skip_all)]
    pub async fn sessions_of_user(&self, user_id: Uuid) -> Result<Vec<Session>, DbError> {
        let sessions = with_pool!(self, pool => {
            sqlx::query_as::<_, Session>(SESSIONS_OF_USER)
                .bind(user_id)
                .fetch_all(pool)
                .await?
        });
        Ok(sessions)
    }

    /// Records activity on a session (for the idle timeout).
    #[tracing::instrument(skip_all)]
    pub async fn touch_session(&self, session_id: Uuid, now_unix: i64) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query(TOUCH_SESSION).bind(session_id).bind(now_unix).execute(pool).await?;
        });
        Ok(())
    }

    /// Ends one session.
    #[tracing::instrument(skip_all)]
    pub async fn delete_session(&self, session_id: Uuid) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query(DELETE_SESSION).bind(session_id).execute(pool).await?;
        });
        Ok(())
    }

    /// Ends every session of a user; returns how many there were.
    #[tracing::instrument(skip_all)]
    pub async fn delete_user_sessions(&self, user_id: Uuid) -> Result<u64, DbError> {
        let count = with_pool!(self, pool => {
            sqlx::query(DELETE_USER_SESSIONS)
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(count)
    }

    /// Ends every session of a user except `keep` (a password change); returns how many.
    #[tracing::instrument(skip_all)]
    pub async fn delete_other_sessions(&self, user_id: Uuid, keep: Uuid) -> Result<u64, DbError> {
        let count = with_pool!(self, pool => {
            sqlx::query(DELETE_OTHER_SESSIONS)
                .bind(user_id)
                .bind(keep)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(count)
    }

    /// Deletes sessions past their absolute end or idle since `idle_cutoff_unix`, and OIDC
    /// logins never completed; returns the number of sessions removed.
    #[tracing::instrument(skip_all)]
    pub async fn delete_expired_sessions(
        &self,
        now_unix: i64,
        idle_cutoff_unix: i64,
    ) -> Result<u64, DbError> {
        let count = with_pool!(self, pool => {
            sqlx::query(DELETE_EXPIRED_OIDC_LOGINS).bind(now_unix).execute(pool).await?;
            sqlx::query(DELETE_EXPIRED_SESSIONS)
                .bind(now_unix)
                .bind(idle_cutoff_unix)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(count)
    }

    /// Stores a one-time sign-in link (only its token's hash).
    #[tracing::instrument(skip_all)]
    pub async fn create_signin_link(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_unix: i64,
        created_by: Option<Uuid>,
        purpose: LinkPurpose,
    ) -> Result<(), DbError> {
        let id = new_id();
        let created_at = now();
        with_pool!(self, pool => {
            sqlx::query(INSERT_LINK)
                .bind(id)
                .bind(token_hash)
                .bind(user_id)
                .bind(created_at)
                .bind(expires_unix)
                .bind(created_by)
                .bind(purpose.as_str())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// A usable (unused, unexpired) sign-in link's user and purpose, without using it;
    /// [`DbError::NotFound`] if the token is unknown, used or expired.
    #[tracing::instrument(skip_all)]
    pub async fn peek_signin_link(
        &self,
        token_hash: &str,
        now_unix: i64,
    ) -> Result<(Uuid, LinkPurpose), DbError> {
        let (user_id, purpose): (Uuid, String) = with_pool!(self, pool => {
            sqlx::query_as(PEEK_LINK)
                .bind(token_hash)
                .bind(now_unix)
                .fetch_one(pool)
                .await?
        });
        let purpose = if purpose == LinkPurpose::Bootstrap.as_str() {
            LinkPurpose::Bootstrap
        } else {
            LinkPurpose::SignIn
        };
        Ok((user_id, purpose))
    }

    /// Uses a sign-in link: the user it signs in, or [`DbError::NotFound`] if the token is
    /// unknown, used or expired. A link works once, even under concurrent requests.
    #[tracing::instrument(skip_all)]
    pub async fn redeem_signin_link(
        &self,
        token_hash: &str,
        now_unix: i64,
    ) -> Result<Uuid, DbError> {
        let used_at = now();
        let user_id: (Uuid,) = with_pool!(self, pool => {
            sqlx::query_as(REDEEM_LINK)
                .bind(token_hash)
                .bind(now_unix)
                .bind(used_at)
                .fetch_one(pool)
                .await?
        });
        Ok(user_id.0)
    }

    /// Remembers an OIDC login until its callback, keyed by the hash of its `state`.
    #[tracing::instrument(skip_all)]
    pub async fn create_oidc_login(
        &self,
        state_hash: &str,
        login: &PendingOidcLogin,
    ) -> Result<(), DbError> {
        let created_at = now();
        with_pool!(self, pool => {
            sqlx::query(INSERT_OIDC_LOGIN)
                .bind(state_hash)
                .bind(&login.provider)
                .bind(&login.nonce)
                .bind(&login.pkce_verifier)
                .bind(&login.return_to)
                .bind(created_at)
                .bind(login.expires_unix)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Takes (reads and deletes) the pending OIDC login for a `state`: a state works once.
    /// [`DbError::NotFound`] if there is none; expiry is the caller's check.
    #[tracing::instrument(skip_all)]
    pub async fn take_oidc_login(&self, state_hash: &str) -> Result<PendingOidcLogin, DbError> {
        let login = with_pool!(self, pool => {
            sqlx::query_as::<_, PendingOidcLogin>(TAKE_OIDC_LOGIN)
                .bind(state_hash)
                .fetch_one(pool)
                .await?
        });
        Ok(login)
    }

    /// The readroom user linked to an IdP subject, if any.
    #[tracing::instrument(skip_all)]
    pub async fn external_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<ExternalIdentity>, DbError> {
        let found = with_pool!(self, pool => {
            sqlx::query_as::<_, ExternalIdentity>(IDENTITY)
                .bind(provider)
                .bind(subject)
                .fetch_optional(pool)
                .await?
        });
        Ok(found)
    }

    /// Links an IdP subject to a user.
    #[tracing::instrument(skip_all)]
    pub async fn link_external_identity(
        &self,
        provider: &str,
        subject: &str,
        user_id: Uuid,
    ) -> Result<(), DbError> {
        let at = now();
        with_pool!(self, pool => {
            sqlx::query(INSERT_IDENTITY)
                .bind(provider)
                .bind(subject)
                .bind(user_id)
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records a sign-in through an external identity.
    #[tracing::instrument(skip_all)]
    pub async fn touch_external_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<(), DbError> {
        let at = now();
        with_pool!(self, pool => {
            sqlx::query(TOUCH_IDENTITY)
                .bind(provider)
                .bind(subject)
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The IdP identities linked to a user.
    #[tracing::instrument(skip_all)]
    pub async fn identities_of(&self, user_id: Uuid) -> Result<Vec<ExternalIdentity>, DbError> {
        let found = with_pool!(self, pool => {
            sqlx::query_as::<_, ExternalIdentity>(IDENTITIES_OF)
                .bind(user_id)
                .fetch_all(pool)
                .await?
        });
        Ok(found)
    }

    /// Replaces the grants that came from `provider`'s claims with `grants`, in one transaction.
    /// Manual grants are kept (a claim repeating one adds nothing).
    #[tracing::instrument(skip_all)]
    pub async fn replace_idp_grants(
        &self,
        user_id: Uuid,
        provider: &str,
        grants: &[(Role, Option<Uuid>)],
    ) -> Result<(), DbError> {
        let source = format!("idp:{provider}");
        let at = now();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(DELETE_IDP_GRANTS).bind(user_id).bind(&source).execute(&mut *tx).await?;
            for (role, study_id) in grants {
                sqlx::query(INSERT_IDP_GRANT)
                    .bind(new_id())
                    .bind(user_id)
                    .bind(role.as_str())
                    .bind(*study_id)
                    .bind(at)
                    .bind(&source)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// One role grant by id, or [`DbError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn grant_by_id(&self, grant_id: Uuid) -> Result<RoleGrant, DbError> {
        let grant = with_pool!(self, pool => {
            sqlx::query_as::<_, RoleGrant>(GRANT_BY_ID).bind(grant_id).fetch_one(pool).await?
        });
        Ok(grant)
    }

    /// Revokes a grant of `user_id`; [`DbError::NotFound`] if that user has no such grant.
    #[tracing::instrument(skip_all)]
    pub async fn revoke_grant(&self, user_id: Uuid, grant_id: Uuid) -> Result<(), DbError> {
        let changed = with_pool!(self, pool => {
            sqlx::query(DELETE_GRANT)
                .bind(grant_id)
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found_one(changed)
    }

    /// Every grant of every user (for the admin's user list).
    #[tracing::instrument(skip_all)]
    pub async fn all_grants(&self) -> Result<Vec<RoleGrant>, DbError> {
        let grants = with_pool!(self, pool => {
            sqlx::query_as::<_, RoleGrant>(ALL_GRANTS).fetch_all(pool).await?
        });
        Ok(grants)
    }

    /// Ids of users holding `role` in any scope.
    #[tracing::instrument(skip_all)]
    pub async fn users_with_role(&self, role: Role) -> Result<Vec<Uuid>, DbError> {
        let rows: Vec<(Uuid,)> = with_pool!(self, pool => {
            sqlx::query_as(USERS_WITH_ROLE).bind(role.as_str()).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Disables or re-enables a user. [`DbError::NotFound`] for an unknown user.
    #[tracing::instrument(skip_all)]
    pub async fn set_user_disabled(&self, user_id: Uuid, disabled: bool) -> Result<(), DbError> {
        let changed = with_pool!(self, pool => {
            sqlx::query(SET_DISABLED)
                .bind(user_id)
                .bind(disabled)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found_one(changed)
    }

    /// Changes a user's display name. [`DbError::NotFound`] for an unknown user.
    #[tracing::instrument(skip_all)]
    pub async fn set_display_name(&self, user_id: Uuid, name: &str) -> Result<(), DbError> {
        let changed = with_pool!(self, pool => {
            sqlx::query(SET_DISPLAY_NAME)
                .bind(user_id)
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found_one(changed)
    }
}

/// A row of [`SESSION_USER_GRANTS_BY_TOKEN`].
#[derive(sqlx::FromRow)]
struct SessionUserGrantRow {
    #[sqlx(flatten)]
    session: Session,
    user_username: String,
    user_display_name: String,
    user_email: Option<String>,
    user_created_at: OffsetDateTime,
    user_disabled: bool,
    grant_role: Option<String>,
    grant_study_id: Option<Uuid>,
}
