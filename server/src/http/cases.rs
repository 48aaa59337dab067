//! Studies, cases and assignments, each scoped to what the signed-in user may see.
//!
//! A case the user may not access answers 404, exactly like a case that does not exist, so ids
//! cannot be probed.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppError;
use super::extract::{ApiJson, ApiPath};
use super::format::{rfc3339, rfc3339_unix};
use crate::access::{CaseAccess, CaseFacts};
use crate::audit::case_target;
use crate::auth::{self, SignedIn};
use crate::db::{
    Assignment, AssignmentKind, AssignmentRole, Case, DbError, Role, Study, StudyCode,
};
use crate::state::AppState;
use readroom_domain::audit::{Action, Outcome};
use readroom_domain::ticket::TicketClaims;
use serde_json::json;

/// How long a streaming ticket is valid.
pub const TICKET_SECONDS: i64 = 60;

/// A study as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StudyView {
    /// Study code.
    pub code: String,
    /// Title.
    pub title: String,
    /// Number of recipients bundles are encrypted to.
    pub recipients: usize,
}

/// A case as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    /// Case id.
    pub case_id: String,
    /// Label within the study (`C-0001`).
    pub label: String,
    /// Study code.
    pub study: String,
    /// Subject pseudonym.
    pub subject: String,
    /// Visit pseudonym.
    pub visit: String,
    /// Number of exams.
    pub exam_count: u32,
    /// Non-PHI exam summary (ids, kinds, eyes, frames, dimensions).
    #[schema(value_type = Object)]
    pub exams: serde_json::Value,
    /// What the caller may do: `view` (images) or `metadata`.
    pub access: String,
    /// Assignments (shown to the study's coordinator only; graders are blind to each other).
    pub assignments: Option<Vec<AssignmentView>>,
    /// For a user who may view it: their next unfinished case after this one in worklist order
    /// (an address, as in the worklist), which the viewer gets ready while they grade this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_case: Option<String>,
}

/// An assignment as the coordinator sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentView {
    /// Assignment id.
    pub id: String,
    /// Case id.
    pub case_id: String,
    /// Assigned user's username.
    pub username: String,
    /// `grader` or `adjudicator`.
    pub role: String,
    /// `assigned`, `in_progress`, `done`.
    pub status: String,
    /// Due date (RFC 3339), if any.
    pub due_at: Option<String>,
}

/// Studies the signed-in user holds a role in (all of them for admins and auditors).
#[utoipa::path(get, path = "/api/studies", tag = "studies",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    responses((status = 200, body = [StudyView])))]
pub async fn list_studies(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<Vec<StudyView>>, AppError> {
    let studies = state.db.list_studies().await?;
    Ok(Json(
        studies
            .into_iter()
            .filter(|study| signed_in.principal.sees_study(study.id))
            .map(|study| StudyView {
                code: study.code.as_str().to_owned(),
                title: study.title,
                recipients: study.recipients.as_slice().len(),
            })
            .collect(),
    ))
}

/// The study named by `code` if the user coordinates it; 404 otherwise (as if absent).
pub(super) async fn coordinated_study(
    state: &AppState,
    signed_in: &SignedIn,
    code: &str,
) -> Result<Study, AppError> {
    let hidden = || AppError::NotFound("no such study".into());
    let code = StudyCode::new(code).map_err(|_| hidden())?;
    let study = match state.db.study_by_code(&code).await {
        Ok(study) => study,
        Err(DbError::NotFound) => return Err(hidden()),
        Err(err) => return Err(err.into()),
    };
    if !signed_in.principal.coordinates(study.id) {
        tracing::info!(user_id = %signed_in.user.id, "study access denied");
        return Err(if signed_in.principal.sees_study(study.id) {
            AppError::forbidden("only the study's coordinators may do this")
        } else {
            hidden()
        });
    }
    Ok(study)
}

pub(super) async fn assignment_views(
    state: &AppState,
    assignments: Vec<crate::db::Assignment>,
) -> Result<Vec<AssignmentView>, AppError> {
    let names: HashMap<Uuid, String> = state
        .db
        .list_users()
        .await?
        .into_iter()
        .map(|user| (user.id, user.username))
        .collect();
    Ok(assignments
        .into_iter()
        .map(|a| AssignmentView {
            id: a.id.to_string(),
            case_id: a.case_id.to_string(),
            username: names.get(&a.user_id).cloned().unwrap_or_default(),
            role: a.role.as_str().to_owned(),
            status: a.status.as_str().to_owned(),
            due_at: a.due_at.and_then(rfc3339),
        })
        .collect())
}

/// Every case of a study with its assignments (the study's coordinators).
#[utoipa::path(get, path = "/api/studies/{code}/cases", tag = "studies",
    extensions(("x-readroom-policy" = json!("coordinator"))),
    params(("code" = String, Path, description = "Study code")),
    responses((status = 200, body = [CaseView]), (status = 404, description = "No such study, or not its coordinator")))]
pub async fn study_cases(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Vec<CaseView>>, AppError> {
    let study = coordinated_study(&state, &signed_in, &code).await?;
    let cases = state.db.list_cases(study.id).await?;
    let assignments =
        assignment_views(&state, state.db.assignments_for_study(study.id).await?).await?;
    let mut by_case: HashMap<String, Vec<AssignmentView>> = HashMap::new();
    for a in assignments {
        by_case.entry(a.case_id.clone()).or_default().push(a);
    }
    Ok(Json(
        cases
            .into_iter()
            .map(|summary| {
                let id = summary.case.id.to_string();
                CaseView {
                    assignments: Some(by_case.remove(&id).unwrap_or_default()),
                    case_id: id,
                    label: summary.case.label,
                    study: summary.study_code.as_str().to_owned(),
                    subject: summary.subject,
                    visit: summary.visit,
                    exam_count: summary.exam_count,
                    exams: summary
                        .summary
                        .get("exams")
                        .cloned()
                        .unwrap_or(serde_json::Value::Array(Vec::new())),
                    access: "metadata".into(),
                    next_case: None,
                }
            })
            .collect(),
    ))
}

/// `POST /api/studies/{code}/assignments` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssignment {
    /// The case (must belong to the study).
    pub case_id: Uuid,
    /// Who is assigned.
    pub username: String,
    /// `grader` or `adjudicator`.
    pub role: String,
    /// Due date (RFC 3339).
    #[serde(default)]
    pub due_at: Option<String>,
}

/// Assigns a case of the study to a user holding the matching role in it.
#[utoipa::path(post, path = "/api/studies/{code}/assignments", tag = "studies",
    extensions(("x-readroom-policy" = json!("coordinator"))),
    params(("code" = String, Path, description = "Study code")),
    request_body = NewAssignment,
    responses((status = 201, body = AssignmentView), (status = 400), (status = 409, description = "Already assigned")))]
pub async fn create_assignment(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<NewAssignment>,
) -> Result<(StatusCode, Json<AssignmentView>), AppError> {
    let study = coordinated_study(&state, &signed_in, &code).await?;
    let role: AssignmentRole = body
        .role
        .parse()
        .map_err(|_| AppError::BadRequest("role must be `grader` or `adjudicator`".into()))?;
    let case = match state.db.case_by_id(body.case_id).await {
        Ok(case) if case.study_id == study.id => case,
        Ok(_) | Err(DbError::NotFound) => {
            return Err(AppError::BadRequest(format!(
                "case {} is not in study {}",
                body.case_id, study.code
            )));
        }
        Err(err) => return Err(err.into()),
    };
    let user = match state.db.user_by_username(&body.username).await {
        Ok(user) if !user.disabled => user,
        Ok(_) => {
            return Err(AppError::BadRequest(format!(
                "user {} is disabled",
                body.username
            )));
        }
        Err(DbError::NotFound) => {
            return Err(AppError::BadRequest(format!("no user {}", body.username)));
        }
        Err(err) => return Err(err.into()),
    };
    let grants = auth::principal(&state.db, user.id).await?;
    if !grants.has_in_study(Role::from(role), study.id) {
        return Err(AppError::BadRequest(format!(
            "{} does not hold the {role} role in study {}",
            user.username, study.code
        )));
    }
    let due_at = body
        .due_at
        .as_deref()
        .map(|text| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| AppError::BadRequest("due_at must be an RFC 3339 time".into()))
        })
        .transpose()?;
    let assignment = state.db.assign(case.id, user.id, role, due_at).await?;
    tracing::info!(user_id = %signed_in.user.id, assignment = %assignment.id, "assignment created");
    let draft = signed_in.event(
        Action::AssignmentCreated,
        Outcome::Success,
        Some(case_target(case.id)),
        json!({
            "assignment_id": assignment.id,
            "assignee": user.id,
            "role": role.to_string(),
            "study": study.code.as_str(),
        }),
    );
    state.audit.record(draft).await?;
    let mut views = assignment_views(&state, vec![assignment]).await?;
    Ok((StatusCode::CREATED, Json(views.remove(0))))
}

/// Removes an assignment of the study.
#[utoipa::path(delete, path = "/api/studies/{code}/assignments/{id}", tag = "studies",
    extensions(("x-readroom-policy" = json!("coordinator"))),
    params(("code" = String, Path, description = "Study code"), ("id" = Uuid, Path, description = "Assignment id")),
    responses((status = 204), (status = 404)))]
pub async fn delete_assignment(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath((code, id)): ApiPath<(String, Uuid)>,
) -> Result<StatusCode, AppError> {
    let study = coordinated_study(&state, &signed_in, &code).await?;
    let assignment = state.db.assignment_by_id(id).await?;
    let case = state.db.case_by_id(assignment.case_id).await?;
    if case.study_id != study.id {
        return Err(AppError::NotFound("not found".into()));
    }
    state.db.delete_assignment(id).await?;
    tracing::info!(user_id = %signed_in.user.id, assignment = %id, "assignment removed");
    let draft = signed_in.event(
        Action::AssignmentRemoved,
        Outcome::Success,
        Some(case_target(case.id)),
        json!({
            "assignment_id": id,
            "assignee": assignment.user_id,
            "role": assignment.role.to_string(),
            "study": study.code.as_str(),
        }),
    );
    state.audit.record(draft).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Loads a case, what the user may do with it and the user's own assignments of it; 404 if
/// nothing (as if it did not exist).
///
/// `case_id` is an address ([`crate::grading::address`]): a case id gives the case with the
/// user's primary (and adjudicator) assignments of it, never a hidden repeat, so opening a
/// graded case shows its grade; a hidden repeat's own id gives its case with that repeat alone,
/// once it is revealed ([`crate::grading::repeat_revealed`]) to the user holding it.
pub async fn case_with_access(
    state: &AppState,
    signed_in: &SignedIn,
    case_id: Uuid,
) -> Result<(Case, CaseAccess, Vec<Assignment>), AppError> {
    let (case, mine) = match state.db.case_by_id(case_id).await {
        Ok(case) => {
            let mine: Vec<Assignment> = state
                .db
                .assignments_for_case(case.id)
                .await?
                .into_iter()
                .filter(|a| a.user_id == signed_in.user.id && a.kind != AssignmentKind::Repeat)
                .collect();
            (case, mine)
        }
        Err(DbError::NotFound) => match hidden_repeat(state, signed_in, case_id).await? {
            Some(found) => found,
            None => return Err(deny_case(state, signed_in, case_id, "no_such_case").await),
        },
        Err(err) => return Err(err.into()),
    };
    let facts = CaseFacts {
        study: case.study_id,
        assigned_as: mine.iter().map(|a| a.role).collect(),
    };
    match signed_in.principal.case_access(&facts) {
        Some(access) => Ok((case, access, mine)),
        None => {
            tracing::info!(user_id = %signed_in.user.id, "case access denied");
            Err(deny_case(state, signed_in, case_id, "not_assigned").await)
        }
    }
}

/// The case of the caller's hidden repeat addressed by its assignment id, with that repeat,
/// if it is the caller's and revealed; `None` otherwise (answered like a missing case).
async fn hidden_repeat(
    state: &AppState,
    signed_in: &SignedIn,
    assignment_id: Uuid,
) -> Result<Option<(Case, Vec<Assignment>)>, AppError> {
    let repeat = match state.db.assignment_by_id(assignment_id).await {
        Ok(found) if found.user_id == signed_in.user.id && found.kind == AssignmentKind::Repeat => {
            found
        }
        Ok(_) | Err(DbError::NotFound) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let held = state.db.assignments_for_user(signed_in.user.id).await?;
    let revealed = crate::grading::repeat_revealed(
        repeat.batch_id,
        repeat.role,
        held.iter().map(|r| crate::grading::Held {
            batch_id: r.batch_id,
            role: r.role,
            kind: r.kind,
            status: r.status,
        }),
    );
    if !revealed {
        return Ok(None);
    }
    let case = state.db.case_by_id(repeat.case_id).await?;
    Ok(Some((case, vec![repeat])))
}

/// Records a refused case access (`case.denied`) and returns the 404 the caller answers, the
/// same whether the case is missing or not the caller's, so ids cannot be probed.
pub(super) async fn deny_case(
    state: &AppState,
    signed_in: &SignedIn,
    case_id: Uuid,
    reason: &str,
) -> AppError {
    let draft = signed_in.event(
        Action::CaseDenied,
        Outcome::Denied,
        Some(case_target(case_id)),
        json!({ "reason": reason }),
    );
    if let Err(err) = state.audit.record(draft).await {
        return err.into();
    }
    AppError::NotFound("no such case, or it is not assigned to you".into())
}

/// A case's metadata (assigned graders and adjudicators, and the study's coordinators).
#[utoipa::path(get, path = "/api/cases/{id}", tag = "cases",
    extensions(("x-readroom-policy" = json!("case"))),
    params(("id" = Uuid, Path, description = "Case id")),
    responses((status = 200, body = CaseView), (status = 404, description = "No such case, or not yours")))]
pub async fn get_case(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CaseView>, AppError> {
    let (case, access, mine) = case_with_access(&state, &signed_in, id).await?;
    let bundle = state.db.bundle_by_id(case.bundle_id).await?;
    let study = state.db.study_by_id(case.study_id).await?;
    let access_name = match access {
        CaseAccess::View => "view",
        CaseAccess::Metadata => "metadata",
    };
    let draft = signed_in.event(
        Action::CaseOpened,
        Outcome::Success,
        Some(case_target(case.id)),
        json!({ "access": access_name, "study": study.code.as_str(), "label": case.label }),
    );
    state.audit.record(draft).await?;
    let assignments = if signed_in.principal.coordinates(case.study_id) {
        Some(assignment_views(&state, state.db.assignments_for_case(case.id).await?).await?)
    } else {
        None
    };
    // A grader on a hidden repeat (addressed by its own id) sees it under its masked label and
    // address; others see the case.
    let (kind, assignment_id) = match crate::grading::pick_active(mine) {
        Ok(active) => (active.kind, active.id),
        Err(_) => (AssignmentKind::Primary, case.id),
    };
    let address = crate::grading::address(kind, assignment_id, case.id);
    let next_case = match access {
        CaseAccess::View => super::grading::next_case(&state.db, &signed_in, address).await?,
        CaseAccess::Metadata => None,
    };
    let shown = crate::grading::presented(
        kind,
        assignment_id,
        &case.label,
        &bundle.subject,
        &bundle.visit,
    );
    Ok(Json(CaseView {
        case_id: address.to_string(),
        label: shown.label,
        study: study.code.as_str().to_owned(),
        subject: shown.subject,
        visit: shown.visit,
        exam_count: bundle.exam_count,
        exams: bundle
            .summary
            .get("exams")
            .cloned()
            .unwrap_or(serde_json::Value::Array(Vec::new())),
        access: access_name.into(),
        assignments,
        next_case,
    }))
}

/// `POST /api/cases/{id}/ticket` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    /// The viewer session (WebRTC connection) the ticket is for, as the server issued it to
    /// this sign-in; a new one if absent (403 `viewer_session` for any other id).
    #[serde(default)]
    pub viewer_session: Option<Uuid>,
    /// What the ticket is for: moving the session to the case now (`open_case`, the default)
    /// or getting the case ready beside it (`prefetch`, the grader's next case). Recorded in
    /// the audit event; the ticket is the same.
    #[serde(default)]
    pub purpose: TicketPurpose,
}

/// What a next-case ticket is for.
#[derive(Debug, Default, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketPurpose {
    /// `open_case`: show the case now.
    #[default]
    OpenCase,
    /// `prefetch_case`: get the case ready while the grader finishes the current one.
    Prefetch,
}

/// A signed streaming ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    /// The sealed ticket (`rt2.…`), given to the worker; opaque to the browser.
    pub ticket: String,
    /// Its viewer session.
    pub viewer_session: String,
    /// Expiry (RFC 3339).
    pub expires_at: String,
}

/// Mints a short-lived ticket that lets a worker stream this case to this user (assigned
/// graders and adjudicators only: coordinators, auditors and admins never see images).
#[utoipa::path(post, path = "/api/cases/{id}/ticket", tag = "cases",
    extensions(("x-readroom-policy" = json!("case"))),
    params(("id" = Uuid, Path, description = "Case id")),
    request_body = TicketRequest,
    responses((status = 200, body = TicketView), (status = 404, description = "No such case, or not yours to view")))]
pub async fn mint_ticket(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TicketRequest>,
) -> Result<Json<TicketView>, AppError> {
    let session =
        super::stream::viewer_session(&state, &signed_in, id, body.viewer_session).await?;
    let issued = view_ticket(&state, &signed_in, id, session).await?;
    let draft = signed_in.event(
        Action::StreamTicketIssued,
        Outcome::Success,
        Some(case_target(issued.case_id)),
        json!({ "viewer_session": session, "purpose": body.purpose }),
    );
    state.audit.record(draft).await?;
    Ok(Json(TicketView {
        ticket: issued.ticket,
        viewer_session: session.to_string(),
        expires_at: rfc3339_unix(issued.expires).unwrap_or_default(),
    }))
}

/// How far back the lossless pixels a user was shown of a case count against the case's
/// lossless budget (`stream.lossless_budget.case_mpx`): a day.
const LOSSLESS_BUDGET_WINDOW_SECS: i64 = 24 * 60 * 60;

/// A streaming ticket as handed out.
#[derive(Debug)]
pub struct IssuedTicket {
    /// The sealed ticket (`rt2.…`).
    pub ticket: String,
    /// Its expiry (Unix seconds).
    pub expires: i64,
    /// The case behind the address the user gave: for a hidden repeat, the case it repeats
    /// (what audit events and the live-stream record name; never sent to the browser).
    pub case_id: Uuid,
}

/// Signs a streaming ticket for a case the user may view (assigned graders and adjudicators);
/// 404 otherwise. The ticket carries the bundle keys, so the worker needs no database, and is
/// sealed to the study's age recipients, so the browser that carries it cannot read them
/// ([`crate::auth::ticket_seal`]).
pub async fn view_ticket(
    state: &AppState,
    signed_in: &SignedIn,
    case_id: Uuid,
    session: Uuid,
) -> Result<IssuedTicket, AppError> {
    let (case, access, _) = case_with_access(state, signed_in, case_id).await?;
    if access != CaseAccess::View {
        tracing::info!(user_id = %signed_in.user.id, "ticket denied: metadata access only");
        return Err(deny_case(state, signed_in, case_id, "metadata_only").await);
    }
    let bundle = state.db.bundle_by_id(case.bundle_id).await?;
    let prior_bundle = match case.prior_bundle_id {
        Some(id) => Some(state.db.bundle_by_id(id).await?.object_key),
        None => None,
    };
    let study = state.db.study_by_id(case.study_id).await?;
    let now = auth::now_unix();
    let expires = now + TICKET_SECONDS;
    // The lossless budget of this case carries over from the user's earlier sessions.
    let lossless_spent_px = state
        .db
        .lossless_px_shown(
            signed_in.user.id,
            case.id,
            now - LOSSLESS_BUDGET_WINDOW_SECS,
        )
        .await?;
    let signed = state.auth.tickets.sign(&TicketClaims {
        id: Uuid::new_v4().to_string(),
        user: signed_in.user.id.to_string(),
        case: case.id.to_string(),
        study: case.study_id.to_string(),
        session: session.to_string(),
        expires,
        bundle: bundle.object_key,
        prior_bundle,
        label: signed_in.user.username.clone(),
        not_after: signed_in.session.expires_unix,
        lossless_spent_px,
    });
    let ticket = auth::ticket_seal::seal(&signed, study.recipients.as_slice())
        .map_err(|err| AppError::Internal(format!("study {}: {err}", study.code)))?;
    Ok(IssuedTicket {
        ticket,
        expires,
        case_id: case.id,
    })
}
