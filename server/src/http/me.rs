//! `GET /api/me` and `GET /api/worklist`: the signed-in user and their assigned cases.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppError;
use super::format::{rfc3339, rfc3339_unix};
use crate::auth::SignedIn;
use crate::db::Db;
use crate::state::AppState;

/// A role as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleView {
    /// `grader`, `adjudicator`, `coordinator`, `auditor` or `admin`.
    pub role: String,
    /// Study code, or null for every study.
    pub study: Option<String>,
}

/// The current session's timing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    /// Absolute end (RFC 3339).
    pub expires_at: String,
    /// Idle timeout in seconds.
    pub idle_timeout_s: i64,
}

/// The signed-in user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Me {
    /// User id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Email, if known.
    pub email: Option<String>,
    /// Roles.
    pub roles: Vec<RoleView>,
    /// `password`, `link` or `oidc:<provider>`.
    pub auth_method: String,
    /// Whether a local password is set.
    pub password_set: bool,
    /// Whether TOTP is enabled.
    pub totp_enabled: bool,
    /// Session timing.
    pub session: SessionView,
    /// Send as `X-CSRF-Token` on state-changing requests.
    pub csrf_token: String,
}

/// Study codes by id.
pub async fn study_codes(db: &Db) -> Result<HashMap<Uuid, String>, AppError> {
    Ok(db
        .list_studies()
        .await?
        .into_iter()
        .map(|study| (study.id, study.code.as_str().to_owned()))
        .collect())
}

/// Builds the [`Me`] view of a signed-in user.
pub async fn me_view(state: &AppState, signed_in: &SignedIn) -> Result<Me, AppError> {
    let codes = study_codes(&state.db).await?;
    let credentials = state.db.credentials(signed_in.user.id).await?;
    let expires_at = rfc3339_unix(signed_in.session.expires_unix).unwrap_or_default();
    Ok(Me {
        id: signed_in.user.id.to_string(),
        username: signed_in.user.username.clone(),
        display_name: signed_in.user.display_name.clone(),
        email: signed_in.user.email.clone(),
        roles: signed_in
            .principal
            .grants
            .iter()
            .map(|grant| RoleView {
                role: grant.role.as_str().to_owned(),
                study: grant.study.and_then(|id| codes.get(&id).cloned()),
            })
            .collect(),
        auth_method: signed_in.session.auth_method.clone(),
        password_set: credentials.password_hash.is_some(),
        totp_enabled: credentials.totp_secret.is_some(),
        session: SessionView {
            expires_at,
            idle_timeout_s: state.auth.idle_seconds,
        },
        csrf_token: signed_in.session.csrf_token.clone(),
    })
}

/// The signed-in user, their roles and session.
#[utoipa::path(get, path = "/api/me", tag = "me",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    responses((status = 200, body = Me), (status = 401, description = "Not signed in")))]
pub async fn me(State(state): State<AppState>, signed_in: SignedIn) -> Result<Json<Me>, AppError> {
    Ok(Json(me_view(&state, &signed_in).await?))
}

/// One worklist row.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorklistItem {
    /// Case id (for `/cases/{case_id}`); for a hidden repeat, the repeat's own id.
    pub case_id: String,
    /// Case label (`C-0001`).
    pub label: String,
    /// Study code.
    pub study: String,
    /// Subject pseudonym.
    pub subject: String,
    /// Visit pseudonym.
    pub visit: String,
    /// `grader` or `adjudicator`.
    pub role: String,
    /// `assigned`, `in_progress` or `done`.
    pub status: String,
    /// Due date (RFC 3339), if any.
    pub due_at: Option<String>,
    /// Non-PHI exam summary.
    #[schema(value_type = Object)]
    pub exams: serde_json::Value,
}

/// The signed-in user's assigned cases (only those their roles still allow).
#[utoipa::path(get, path = "/api/worklist", tag = "me",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    responses((status = 200, body = [WorklistItem])))]
pub async fn worklist(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<Vec<WorklistItem>>, AppError> {
    let assigned = super::grading::visible_worklist(
        state.db.assignments_for_user(signed_in.user.id).await?,
        &signed_in,
    );
    let items = assigned
        .into_iter()
        .map(|row| {
            let shown = crate::grading::presented(
                row.kind,
                row.assignment_id,
                &row.case.case.label,
                &row.case.subject,
                &row.case.visit,
            );
            WorklistItem {
                case_id: super::grading::row_address(&row).to_string(),
                label: shown.label,
                study: row.case.study_code.as_str().to_owned(),
                subject: shown.subject,
                visit: shown.visit,
                role: row.role.as_str().to_owned(),
                status: row.status.as_str().to_owned(),
                due_at: row.due_at.and_then(rfc3339),
                exams: row
                    .case
                    .summary
                    .get("exams")
                    .cloned()
                    .unwrap_or(serde_json::Value::Array(Vec::new())),
            }
        })
        .collect();
    Ok(Json(items))
}
