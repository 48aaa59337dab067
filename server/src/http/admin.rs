//! `/api/admin/*`: users and role grants (global admins only, enforced by the route policy).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppError;
use super::extract::{ApiJson, ApiPath};
use super::format::rfc3339_unix;
use super::me::study_codes;
use crate::access::{Grant, blinding_conflict};
use crate::audit::user_target;
use crate::auth::{self, SignedIn, flows};
use crate::db::{DbError, NewUser, Role, RoleGrant, StudyCode, User};
use crate::state::AppState;
use readroom_domain::audit::{Action, Outcome};
use serde_json::json;

/// A grant as the admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    /// Grant id (for revoking).
    pub id: String,
    /// Role.
    pub role: String,
    /// Study code, or null for every study.
    pub study: Option<String>,
    /// `manual` or `idp:<provider>`.
    pub source: String,
}

/// A user as the admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUser {
    /// User id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Email.
    pub email: Option<String>,
    /// Disabled users cannot sign in.
    pub disabled: bool,
    /// Whether a local password is set.
    pub password_set: bool,
    /// Whether TOTP is enabled.
    pub totp_enabled: bool,
    /// End of a sign-in lock (RFC 3339), if locked now.
    pub locked_until: Option<String>,
    /// Linked identity providers.
    pub identities: Vec<String>,
    /// Role grants.
    pub roles: Vec<GrantView>,
}

fn grant_view(grant: &RoleGrant, codes: &HashMap<Uuid, String>) -> GrantView {
    GrantView {
        id: grant.id.to_string(),
        role: grant.role.as_str().to_owned(),
        study: grant.study_id.and_then(|id| codes.get(&id).cloned()),
        source: grant.source.clone(),
    }
}

async fn admin_user(state: &AppState, user: User) -> Result<AdminUser, AppError> {
    let codes = study_codes(&state.db).await?;
    let grants = state.db.roles_of(user.id).await?;
    let credentials = state.db.credentials(user.id).await?;
    let identities = state.db.identities_of(user.id).await?;
    let now = auth::now_unix();
    Ok(AdminUser {
        id: user.id.to_string(),
        username: user.username,
        display_name: user.display_name,
        email: user.email,
        disabled: user.disabled,
        password_set: credentials.password_hash.is_some(),
        totp_enabled: credentials.totp_secret.is_some(),
        locked_until: credentials
            .locked_until_unix
            .filter(|until| *until > now)
            .and_then(rfc3339_unix),
        identities: identities.into_iter().map(|i| i.provider).collect(),
        roles: grants.iter().map(|g| grant_view(g, &codes)).collect(),
    })
}

/// Every user with roles, sign-in state and linked identities.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin",
    extensions(("x-readroom-policy" = json!("admin"))),
    responses((status = 200, body = [AdminUser])))]
pub async fn list_users(State(state): State<AppState>) -> Result<Json<Vec<AdminUser>>, AppError> {
    let users = state.db.list_users().await?;
    let mut views = Vec::with_capacity(users.len());
    for user in users {
        views.push(admin_user(&state, user).await?);
    }
    Ok(Json(views))
}

/// A role to grant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// `grader`, `adjudicator`, `coordinator`, `auditor` or `admin`.
    pub role: String,
    /// Study code; absent for every study (auditor and admin are always global).
    #[serde(default)]
    pub study: Option<String>,
}

/// `POST /api/admin/users` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Username: 1–64 of letters, digits, `.`, `-`, `_`, `@`.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Initial roles.
    #[serde(default)]
    pub roles: Vec<GrantRequest>,
}

/// A one-time sign-in link.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    /// Give this URL to the user over a trusted channel; it works once.
    pub signin_url: String,
    /// Expiry (RFC 3339).
    pub expires_at: String,
}

/// A created user and their first sign-in link.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    /// The user.
    pub user: AdminUser,
    /// One-time sign-in URL.
    pub signin_url: String,
    /// Its expiry (RFC 3339).
    pub expires_at: String,
}

/// 409 when granting `role` in `study` would make a grader a coordinator of a study they
/// grade ([`blinding_conflict`]), naming both grants.
async fn refuse_blinding_conflict(
    state: &AppState,
    held: &[Grant],
    role: Role,
    study: Option<Uuid>,
) -> Result<(), AppError> {
    let Some(conflict) = blinding_conflict(held, role, study) else {
        return Ok(());
    };
    let codes = study_codes(&state.db).await?;
    let name = |study: Option<Uuid>| match study {
        None => "every study".to_owned(),
        Some(id) => codes
            .get(&id)
            .map_or_else(|| id.to_string(), |code| format!("study {code}")),
    };
    Err(AppError::Conflict(format!(
        "blinding: this user is a {} in {}; a grader cannot also coordinate a study they grade (a coordinator sees the other graders' values). Revoke one role first",
        conflict.role,
        name(conflict.study)
    )))
}

async fn resolve_grant(
    state: &AppState,
    request: &GrantRequest,
) -> Result<(Role, Option<Uuid>), AppError> {
    let role: Role = request.role.parse().map_err(|_| {
        AppError::BadRequest(format!(
            "unknown role {:?}; expected grader, adjudicator, coordinator, auditor or admin",
            request.role
        ))
    })?;
    let study = match &request.study {
        None => None,
        Some(_) if matches!(role, Role::Admin | Role::Auditor) => {
            return Err(AppError::BadRequest(format!(
                "the {role} role is global; omit the study"
            )));
        }
        Some(code) => {
            let code = StudyCode::new(code).map_err(|err| AppError::BadRequest(err.to_string()))?;
            match state.db.study_by_code(&code).await {
                Ok(study) => Some(study.id),
                Err(DbError::NotFound) => {
                    return Err(AppError::BadRequest(format!("no study {code}")));
                }
                Err(err) => return Err(err.into()),
            }
        }
    };
    Ok((role, study))
}

/// Mints a one-time sign-in link for `user_id`, issued by admin `admin_id`.
async fn new_link(state: &AppState, user_id: Uuid, admin_id: Uuid) -> Result<LinkView, AppError> {
    let (url, expires) = flows::issue_link(
        &state.db,
        &state.auth,
        user_id,
        Some(admin_id),
        auth::now_unix(),
    )
    .await?;
    Ok(link_view(url, expires))
}

fn link_view(url: String, expires: i64) -> LinkView {
    LinkView {
        signin_url: url,
        expires_at: rfc3339_unix(expires).unwrap_or_default(),
    }
}

/// Creates a local user with roles and returns a one-time sign-in link (no password is ever
/// chosen by the admin).
#[utoipa::path(post, path = "/api/admin/users", tag = "admin",
    extensions(("x-readroom-policy" = json!("admin"))),
    request_body = CreateUserRequest,
    responses((status = 201, body = CreatedUser), (status = 400), (status = 409, description = "Username taken")))]
pub async fn create_user(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<CreatedUser>), AppError> {
    if !crate::accounts::valid_username(&body.username) {
        return Err(AppError::BadRequest(
            "username must be 1-64 of letters, digits, '.', '-', '_', '@'".into(),
        ));
    }
    let display_name = body.display_name.trim();
    if display_name.is_empty() || display_name.chars().count() > 128 {
        return Err(AppError::BadRequest(
            "display_name must be 1-128 characters".into(),
        ));
    }
    let mut grants = Vec::new();
    for request in &body.roles {
        let (role, study) = resolve_grant(&state, request).await?;
        let held: Vec<Grant> = grants
            .iter()
            .map(|&(role, study)| Grant { role, study })
            .collect();
        refuse_blinding_conflict(&state, &held, role, study).await?;
        grants.push((role, study));
    }
    let user = state
        .db
        .create_user(&NewUser {
            username: body.username.clone(),
            display_name: display_name.to_owned(),
            email: body.email.clone().filter(|e| !e.is_empty()),
        })
        .await?;
    record(&state, &signed_in, Action::UserCreated, user.id, json!({})).await?;
    for (role, study) in grants {
        match state
            .db
            .grant_role(user.id, role, study, Some(signed_in.user.id))
            .await
        {
            Ok(grant) => {
                let details =
                    json!({ "role": role.to_string(), "study_id": study, "grant_id": grant.id });
                record(&state, &signed_in, Action::RoleGranted, user.id, details).await?;
            }
            Err(DbError::Conflict { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let link = new_link(&state, user.id, signed_in.user.id).await?;
    record(
        &state,
        &signed_in,
        Action::AuthLinkIssued,
        user.id,
        json!({}),
    )
    .await?;
    tracing::info!(admin = %signed_in.user.id, user_id = %user.id, "user created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: admin_user(&state, user).await?,
            signin_url: link.signin_url,
            expires_at: link.expires_at,
        }),
    ))
}

/// `PATCH /api/admin/users/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// Disable (ends the user's sessions) or re-enable.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// New display name.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Disables or re-enables a user, or renames them.
#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "admin",
    extensions(("x-readroom-policy" = json!("admin"))),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = UpdateUserRequest,
    responses((status = 200, body = AdminUser), (status = 404)))]
pub async fn update_user(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<Json<AdminUser>, AppError> {
    let user = state.db.user_by_id(id).await?;
    if let Some(name) = &body.display_name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 128 {
            return Err(AppError::BadRequest(
                "display_name must be 1-128 characters".into(),
            ));
        }
        state.db.set_display_name(id, name).await?;
    }
    if let Some(disabled) = body.disabled {
        if disabled && id == signed_in.user.id {
            return Err(AppError::BadRequest("you cannot disable yourself".into()));
        }
        state.db.set_user_disabled(id, disabled).await?;
        if disabled {
            state.db.delete_user_sessions(id).await?;
        }
        tracing::info!(admin = %signed_in.user.id, user_id = %id, disabled, "user access changed");
        if disabled != user.disabled {
            let action = if disabled {
                Action::UserDisabled
            } else {
                Action::UserEnabled
            };
            record(&state, &signed_in, action, id, json!({})).await?;
        }
    }
    let user = state.db.user_by_id(user.id).await?;
    Ok(Json(admin_user(&state, user).await?))
}

/// Issues a new one-time sign-in link (first sign-in, forgotten password).
#[utoipa::path(post, path = "/api/admin/users/{id}/signin-link", tag = "admin",
    extensions(("x-readroom-policy" = json!("admin"))),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, body = LinkView), (status = 403, description = "`local_accounts_disabled`"), (status = 404)))]
pub async fn signin_link(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<LinkView>, AppError> {
    if !state.auth.local_accounts {
        return Err(AppError::Forbidden {
            code: "local_accounts_disabled",
            message: "local accounts are disabled on this server, so sign-in links would be \
                      refused; users sign in through single sign-on"
                .into(),
        });
    }
    let user = state.db.user_by_id(id).await?;
    let link = new_link(&state, user.id, signed_in.user.id).await?;
    tracing::info!(admin = %signed_in.user.id, user_id = %user.id, "sign-in link issued");
    record(
        &state,
        &signed_in,
        Action::AuthLinkIssued,
        user.id,
        json!({}),
    )
    .await?;
    Ok(Json(link))
}

/// Lifts a sign-in lock.
#[utoipa::path(post, path = "/api/admin/users/{id}/unlock", tag = "admin",
    extensions(("x-readroom-policy" = json!("admin"))),
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, body = AdminUser), (status = 404)))]
pub async fn unlock(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AdminUser>, AppError> {
    let user = state.db.user_by_id(id).await?;
    state.db.clear_login_failures(id).await?;
    record(&state, &signed_in, Action::AuthUnlocked, id, json!({})).await?;
    Ok(Json(admin_user(&state, user).await?))
}

/// Grants a role.
#[utoipa::path(post, path = "/api/admin/users/{id}/roles", tag = "admin",
    extensions(("x-readroom-policy" = json!("admin"))),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = GrantRequest,
    responses((status = 201, body = GrantView), (status = 400), (status = 404), (status = 409)))]
pub async fn grant(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<GrantRequest>,
) -> Result<(StatusCode, Json<GrantView>), AppError> {
    let user = state.db.user_by_id(id).await?;
    let (role, study) = resolve_grant(&state, &body).await?;
    let held: Vec<Grant> = state
        .db
        .roles_of(user.id)
        .await?
        .into_iter()
        .map(|grant| Grant {
            role: grant.role,
            study: grant.study_id,
        })
        .collect();
    refuse_blinding_conflict(&state, &held, role, study).await?;
    let grant = state
        .db
        .grant_role(user.id, role, study, Some(signed_in.user.id))
        .await?;
    tracing::info!(admin = %signed_in.user.id, user_id = %user.id, role = %role, "role granted");
    let details = json!({ "role": role.to_string(), "study_id": study, "grant_id": grant.id });
    record(&state, &signed_in, Action::RoleGranted, user.id, details).await?;
    let codes = study_codes(&state.db).await?;
    Ok((StatusCode::CREATED, Json(grant_view(&grant, &codes))))
}

/// Revokes a role grant.
#[utoipa::path(delete, path = "/api/admin/users/{id}/roles/{grant_id}", tag = "admin",
    extensions(("x-readroom-policy" = json!("admin"))),
    params(("id" = Uuid, Path, description = "User id"), ("grant_id" = Uuid, Path, description = "Grant id")),
    responses((status = 204), (status = 400), (status = 404)))]
pub async fn revoke(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath((id, grant_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, AppError> {
    let grant = state.db.grant_by_id(grant_id).await?;
    if grant.user_id != id {
        return Err(AppError::NotFound("not found".into()));
    }
    if grant.role == Role::Admin && id == signed_in.user.id {
        return Err(AppError::BadRequest(
            "you cannot revoke your own admin role; ask another admin".into(),
        ));
    }
    state.db.revoke_grant(id, grant_id).await?;
    tracing::info!(admin = %signed_in.user.id, user_id = %id, role = %grant.role, "role revoked");
    let details =
        json!({ "role": grant.role.to_string(), "study_id": grant.study_id, "grant_id": grant_id });
    record(&state, &signed_in, Action::RoleRevoked, id, details).await?;
    // Their streams in that study end now if nothing else lets them view its cases (the
    // revalidation pass would end them within `workers.revalidate_ms` anyway).
    if let Some(study) = grant.study_id {
        let principal = auth::principal(&state.db, id).await?;
        if !principal.has_in_study(Role::Grader, study)
            && !principal.has_in_study(Role::Adjudicator, study)
        {
            let ended = crate::workers::revalidate::end_in_study(
                &state.workers,
                &state.audit,
                id,
                study,
                "role_revoked",
            )
            .await?;
            tracing::info!(user_id = %id, ended, "streams in the study ended");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Records an admin's change to a user account.
async fn record(
    state: &AppState,
    signed_in: &SignedIn,
    action: Action,
    user_id: Uuid,
    details: serde_json::Value,
) -> Result<(), AppError> {
    let draft = signed_in.event(
        action,
        Outcome::Success,
        Some(user_target(user_id)),
        details,
    );
    state.audit.record(draft).await?;
    Ok(())
}
