//! Users and their role grants.

use uuid::Uuid;

use super::model::{NewUser, Role, RoleGrant, User};
use super::{Db, DbError, new_id, now, with_pool};

const INSERT_USER: &str = "INSERT INTO users (id, username, display_name, email, created_at, disabled) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     RETURNING id, username, display_name, email, created_at, disabled";

const USER_BY_ID: &str = "SELECT id, username, display_name, email, created_at, disabled \
     FROM users WHERE id = $1";

const USER_BY_USERNAME: &str = "SELECT id, username, display_name, email, created_at, disabled \
     FROM users WHERE username = $1";

const LIST_USERS: &str = "SELECT id, username, display_name, email, created_at, disabled \
     FROM users ORDER BY username";

const INSERT_ROLE_GRANT: &str = "INSERT INTO role_grants (id, user_id, role, study_id, granted_at, granted_by) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     RETURNING id, user_id, role, study_id, granted_at, granted_by, source";

// Global grants (NULL study) first, then by study and role; the order is only for stable output.
const ROLES_OF: &str = "SELECT id, user_id, role, study_id, granted_at, granted_by, source \
     FROM role_grants WHERE user_id = $1 \
     ORDER BY (study_id IS NOT NULL), study_id, role";

impl Db {
    /// Creates a user. [`DbError::Conflict`] (`username`) if the username is taken.
    ///
    /// Usernames are compared exactly (case-sensitively). The schema refuses a username that is
    /// empty or longer than 64 characters ([`DbError::Other`]); callers validate input first.
    #[tracing::instrument(skip_all)]
    pub async fn create_user(&self, new_user: &NewUser) -> Result<User, DbError> {
        let id = new_id();
        let created_at = now();
        let user = with_pool!(self, pool => {
            sqlx::query_as::<_, User>(INSERT_USER)
                .bind(id)
                .bind(&new_user.username)
                .bind(&new_user.display_name)
                .bind(&new_user.email)
                .bind(created_at)
                .bind(false)
                .fetch_one(pool)
                .await?
        });
        Ok(user)
    }

    /// The user with this id, or [`DbError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn user_by_id(&self, user_id: Uuid) -> Result<User, DbError> {
        let user = with_pool!(self, pool => {
            sqlx::query_as::<_, User>(USER_BY_ID).bind(user_id).fetch_one(pool).await?
        });
        Ok(user)
    }

    /// The user with this exact username, or [`DbError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn user_by_username(&self, username: &str) -> Result<User, DbError> {
        let user = with_pool!(self, pool => {
            sqlx::query_as::<_, User>(USER_BY_USERNAME).bind(username).fetch_one(pool).await?
        });
        Ok(user)
    }

    /// Every user, disabled ones included, by username.
    #[tracing::instrument(skip_all)]
    pub async fn list_users(&self) -> Result<Vec<User>, DbError> {
        let users = with_pool!(self, pool => {
            sqlx::query_as::<_, User>(LIST_USERS).fetch_all(pool).await?
        });
        Ok(users)
    }

    /// Grants `role` to a user, in one study or (with `study_id = None`) in all of them.
    ///
    /// `granted_by` is the acting user, or `None` for the system (bootstrap, demo seeding).
    /// [`DbError::Conflict`] (`role grant`) if the user already holds that role in that scope;
    /// [`DbError::NotFound`] if the user, study or granting user does not exist.
    #[tracing::instrument(skip_all)]
    pub async fn grant_role(
        &self,
        user_id: Uuid,
        role: Role,
        study_id: Option<Uuid>,
        granted_by: Option<Uuid>,
    ) -> Result<RoleGrant, DbError> {
        let id = new_id();
        let granted_at = now();
        let grant = with_pool!(self, pool => {
            sqlx::query_as::<_, RoleGrant>(INSERT_ROLE_GRANT)
                .bind(id)
                .bind(user_id)
                .bind(role.as_str())
                .bind(study_id)
                .bind(granted_at)
                .bind(granted_by)
                .fetch_one(pool)
                .await?
        });
        Ok(grant)
    }

    /// Every role the user holds: global grants first, then per study.
    /// Empty (not [`DbError::NotFound`]) for an unknown user.
    #[tracing::instrument(skip_all)]
    pub async fn roles_of(&self, user_id: Uuid) -> Result<Vec<RoleGrant>, DbError> {
        let grants = with_pool!(self, pool => {
            sqlx::query_as::<_, RoleGrant>(ROLES_OF).bind(user_id).fetch_all(pool).await?
        });
        Ok(grants)
    }
}
