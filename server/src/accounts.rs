//! Seeding accounts: the first administrator of a new installation and the demo's users.

use uuid::Uuid;

use crate::auth::{self, flows};
use crate::db::{Db, DbError, NewUser, Role, User};
use crate::state::AppState;

/// Username of the administrator created on first start.
pub const FIRST_ADMIN: &str = "admin";

/// Whether a username for a local account is acceptable: 1-64 ASCII letters, digits, `.`,
/// `-`, `_`, `@` (IdP usernames are `provider:name` and made by the OIDC module).
pub fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
}

/// Finds a user by name or creates them, then makes sure they hold each of `roles`.
pub async fn ensure_user(
    db: &Db,
    username: &str,
    display_name: &str,
    roles: &[(Role, Option<Uuid>)],
) -> Result<User, DbError> {
    let user = match db.user_by_username(username).await {
        Ok(user) => user,
        Err(DbError::NotFound) => {
            db.create_user(&NewUser {
                username: username.to_owned(),
                display_name: display_name.to_owned(),
                email: None,
            })
            .await?
        }
        Err(err) => return Err(err),
    };
    for (role, study) in roles {
        match db.grant_role(user.id, *role, *study, None).await {
            Ok(_) | Err(DbError::Conflict { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(user)
}

/// While no user holds the admin role, creates (or reuses) `admin`, grants it admin, and
/// returns a one-time sign-in URL for it; `None` once an admin exists.
pub async fn bootstrap_admin(state: &AppState) -> anyhow::Result<Option<String>> {
    if !state.db.users_with_role(Role::Admin).await?.is_empty() {
        return Ok(None);
    }
    let user = ensure_user(
        &state.db,
        FIRST_ADMIN,
        "Administrator",
        &[(Role::Admin, None)],
    )
    .await?;
    let (url, _) =
        flows::issue_link(&state.db, &state.auth, user.id, None, auth::now_unix()).await?;
    Ok(Some(url))
}
