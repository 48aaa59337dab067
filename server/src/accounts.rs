//! Seeding accounts: the first administrator of a new installation and the demo's users.

use uuid::Uuid;

use readroom_domain::audit::{Action, Outcome};
use serde_json::json;

use crate::audit::{Audit, event_by, user_target};
use crate::auth::{self, flows};
use crate::db::{Db, DbError, LinkPurpose, NewUser, Role, User};
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

/// Finds a user by name or creates them, then makes sure they hold each of `roles`; audits
/// what it created (`user.created`, `role.granted`) as the system, naming `source` (`cli`,
/// `demo`, `bootstrap`).
pub async fn ensure_user(
    db: &Db,
    audit: &Audit,
    source: &str,
    username: &str,
    display_name: &str,
    roles: &[(Role, Option<Uuid>)],
) -> anyhow::Result<User> {
    let user = match db.user_by_username(username).await {
        Ok(user) => user,
        Err(DbError::NotFound) => {
            let user = db
                .create_user(&NewUser {
                    username: username.to_owned(),
                    display_name: display_name.to_owned(),
                    email: None,
                })
                .await?;
            record(
                audit,
                Action::UserCreated,
                user.id,
                json!({ "source": source }),
            )
            .await?;
            user
        }
        Err(err) => return Err(err.into()),
    };
    for (role, study) in roles {
        match db.grant_role(user.id, *role, *study, None).await {
            Ok(grant) => {
                let details = json!({
                    "role": role.to_string(),
                    "study_id": study,
                    "grant_id": grant.id,
                    "source": source,
                });
                record(audit, Action::RoleGranted, user.id, details).await?;
            }
            Err(DbError::Conflict { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(user)
}

/// Issues a one-time sign-in link for `user_id` and audits it (`auth.link_issued`) as the
/// system, naming `source`.
pub async fn issue_link(
    db: &Db,
    audit: &Audit,
    auth: &auth::AuthState,
    user_id: Uuid,
    source: &str,
) -> anyhow::Result<String> {
    issue_link_for(db, audit, auth, user_id, source, LinkPurpose::SignIn).await
}

async fn issue_link_for(
    db: &Db,
    audit: &Audit,
    auth: &auth::AuthState,
    user_id: Uuid,
    source: &str,
    purpose: LinkPurpose,
) -> anyhow::Result<String> {
    let (url, _) =
        flows::issue_link_for(db, auth, user_id, None, purpose, auth::now_unix()).await?;
    record(
        audit,
        Action::AuthLinkIssued,
        user_id,
        json!({ "source": source }),
    )
    .await?;
    Ok(url)
}

async fn record(
    audit: &Audit,
    action: Action,
    user_id: Uuid,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let draft = event_by(
        action,
        Outcome::Success,
        None,
        Some(user_target(user_id)),
        None,
        details,
    );
    audit.record(draft).await?;
    Ok(())
}

/// While no user holds the admin role, creates (or reuses) `admin`, grants it admin, and
/// returns a one-time sign-in URL for it (a break-glass link, valid in single-sign-on-only mode
/// too); `None` once an admin exists.
pub async fn bootstrap_admin(state: &AppState) -> anyhow::Result<Option<String>> {
    if !state.db.users_with_role(Role::Admin).await?.is_empty() {
        return Ok(None);
    }
    let user = ensure_user(
        &state.db,
        &state.audit,
        "bootstrap",
        FIRST_ADMIN,
        "Administrator",
        &[(Role::Admin, None)],
    )
    .await?;
    // The break-glass link: it works even with local accounts off (single sign-on only), so a
    // new installation can be set up before its identity provider is (docs/identity.md).
    let url = issue_link_for(
        &state.db,
        &state.audit,
        &state.auth,
        user.id,
        "bootstrap",
        LinkPurpose::Bootstrap,
    )
    .await?;
    Ok(Some(url))
}
