//! The grading workflow's routes (see `docs/grading-api.md`): a grader's form, drafts,
//! submissions and amendments; an adjudicator's queue and round; a coordinator's form, batches,
//! reassignment and exports; progress and agreement statistics for coordinators and auditors.
//!
//! Handlers only translate HTTP to [`crate::grading`] and back; the rules live there and in
//! `readroom_domain::grading`.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use readroom_domain::audit::{Action, Outcome};
use readroom_domain::grading::{Form, PRESETS, preset};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppError;
use super::cases::{assignment_views, case_with_access, coordinated_study, deny_case};
use super::error::Declined;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::format::rfc3339;
use crate::access::CaseAccess;
use crate::audit::study_target;
use crate::auth::SignedIn;
use crate::db::grading::{Adjudication, Grade};
use crate::db::{
    AssignedCase, Assignment, AssignmentRole, AssignmentStatus, Case, Db, DbError, Study, StudyCode,
};
use crate::grading::export::{self, CsvTable};
use crate::grading::{self, BatchRequest, Context, GradingError, Submitted};
use crate::grading::{stats, truth};
use crate::state::AppState;

impl From<GradingError> for AppError {
    fn from(err: GradingError) -> AppError {
        match err {
            GradingError::NotAssigned => {
                AppError::NotFound("no such case, or it is not assigned to you".into())
            }
            GradingError::NoForm(_) => AppError::Conflict(err.to_string()),
            GradingError::Invalid(problems) => AppError::Invalid {
                message: format!(
                    "the grade does not fit the form ({} problem(s)): {}",
                    problems.len(),
                    problems
                        .iter()
                        .map(|p| p.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                problems: serde_json::to_value(&problems).unwrap_or(Value::Null),
            },
            GradingError::BadRequest(message) => AppError::BadRequest(message),
            GradingError::Conflict(message) => AppError::Conflict(message),
            GradingError::Declined(declined) => AppError::Declined(declined),
            GradingError::Unattested => AppError::Invalid {
                message: err.to_string(),
                problems: serde_json::json!([{
                    "field": "lossless_sha256",
                    "code": "not_sent",
                    "message": err.to_string(),
                }]),
            },
            GradingError::Unviewed(warnings) => AppError::Invalid {
                message: format!(
                    "the grade covers what you were not shown: {}; look first, or send it again without require_viewed",
                    warnings
                        .iter()
                        .map(|w| w.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                problems: serde_json::to_value(
                    warnings
                        .iter()
                        .map(|w| {
                            serde_json::json!({
                                "field": "viewing", "code": w.code, "eye": w.eye,
                                "exam": w.exam, "kind": w.kind, "message": w.message,
                            })
                        })
                        .collect::<Vec<_>>(),
                )
                .unwrap_or(Value::Null),
            },
            GradingError::Corrupt(message) => AppError::Internal(message),
            GradingError::Db(err) => err.into(),
            GradingError::Audit(err) => err.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Views

/// The caller's assignment on a case.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyAssignment {
    /// Assignment id.
    pub id: String,
    /// `grader` or `adjudicator`.
    pub role: String,
    /// `assigned`, `in_progress` or `done`.
    pub status: String,
    /// Due date (RFC 3339).
    pub due_at: Option<String>,
}

/// A saved draft.
#[derive(Debug, Serialize, ToSchema)]
pub struct DraftView {
    /// The values saved so far.
    #[schema(value_type = Object)]
    pub values: Value,
    /// The revision to name in the next save.
    pub revision: i64,
    /// When it was last saved (RFC 3339).
    pub updated_at: Option<String>,
}

/// The caller's own latest submitted grade version.
#[derive(Debug, Serialize, ToSchema)]
pub struct GradeView {
    /// Grade id.
    pub id: String,
    /// 1 for the submission, 2… for amendments.
    pub version: i32,
    /// Values (normalized).
    #[schema(value_type = Object)]
    pub values: Value,
    /// When it was submitted (RFC 3339).
    pub submitted_at: Option<String>,
    /// The verified lossless frame it was made on.
    pub lossless_sha256: Option<String>,
    /// Why it was amended (versions after 1).
    pub reason: Option<String>,
}

/// One of the two blind grades an adjudicator compares, labelled `A` or `B`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlindGrade {
    /// `A` or `B` (never the grader's name).
    pub label: String,
    /// Values.
    #[schema(value_type = Object)]
    pub values: Value,
    /// When it was submitted (RFC 3339).
    pub submitted_at: Option<String>,
}

/// An adjudication round as its adjudicator sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdjudicationView {
    /// Round id.
    pub id: String,
    /// 1, 2, …
    pub round: i32,
    /// `open` or `resolved`.
    pub status: String,
    /// Where the grades disagree: `[{ "field", "eye", "rule", "a", "b" }]`.
    #[schema(value_type = Object)]
    pub disagreements: Value,
    /// The compared grades.
    pub grades: Vec<BlindGrade>,
    /// The final values, once resolved.
    #[schema(value_type = Object)]
    pub final_values: Option<Value>,
    /// The values both grades agree on outside the flagged disagreements (same shape as a
    /// grade's values), to prefill the adjudicator's form so only the disagreements are left.
    #[schema(value_type = Object)]
    pub prefill: Value,
}

/// `GET /api/cases/{id}/form`: what the caller needs to grade a case.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseForm {
    /// Case id.
    pub case_id: String,
    /// Case label.
    pub label: String,
    /// Study code.
    pub study: String,
    /// The study's current form (`readroom-form/1`).
    #[schema(value_type = Object)]
    pub form: Value,
    /// The study form's version.
    pub form_version: i32,
    /// SHA-256 of the form definition.
    pub fingerprint: String,
    /// The caller's assignment on this case.
    pub assignment: MyAssignment,
    /// The saved draft, if any.
    pub draft: Option<DraftView>,
    /// The caller's latest submitted version, if any.
    pub grade: Option<GradeView>,
    /// For an adjudicator: the open (or last) round.
    pub adjudication: Option<AdjudicationView>,
    /// The caller's next unfinished case after this one, if any.
    pub next_case: Option<String>,
    /// Where this case stands in the caller's work of the same kind (the batch, else the
    /// study, as grader or as adjudicator): "case 3 of 10, 2 done". Absent when the case is
    /// not in the caller's worklist.
    pub progress: Option<CaseProgress>,
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn grade_view(grade: &Grade) -> GradeView {
    GradeView {
        id: grade.id.to_string(),
        version: grade.version,
        values: parse_json(&grade.grade_values),
        submitted_at: rfc3339(grade.submitted_at),
        lossless_sha256: grade.lossless_sha256.clone(),
        reason: grade.reason.clone(),
    }
}

fn adjudication_view(round: &Adjudication, grades: &[Grade]) -> AdjudicationView {
    let ids: Vec<Uuid> = serde_json::from_str(&round.grade_ids).unwrap_or_default();
    let blind: Vec<BlindGrade> = ids
        .iter()
        .zip(["A", "B", "C", "D"])
        .filter_map(|(id, label)| {
            let grade = grades.iter().find(|g| g.id == *id)?;
            Some(BlindGrade {
                label: label.to_owned(),
                values: parse_json(&grade.grade_values),
                submitted_at: rfc3339(grade.submitted_at),
            })
        })
        .collect();
    let disagreements = parse_json(&round.disagreements);
    let prefill = match blind.as_slice() {
        [a, b] => agreeing_values(&a.values, &b.values, &disagreements),
        _ => json!({}),
    };
    AdjudicationView {
        id: round.id.to_string(),
        round: round.round,
        status: round.status.clone(),
        disagreements,
        grades: blind,
        final_values: round.grade_values.as_deref().map(parse_json),
        prefill,
    }
}

/// The values two grades (normalized JSON: `{ key: value }` or `{ key: { "OD": v, "OS": v } }`)
/// have in common, leaving out every flagged disagreement (`[{ "field", "eye" }]`).
pub fn agreeing_values(a: &Value, b: &Value, disagreements: &Value) -> Value {
    let flagged = |field: &str, eye: Option<&str>| {
        disagreements.as_array().is_some_and(|list| {
            list.iter().any(|d| {
                d.get("field").and_then(Value::as_str) == Some(field)
                    && d.get("eye").and_then(Value::as_str) == eye
            })
        })
    };
    let mut out = serde_json::Map::new();
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return Value::Object(out);
    };
    for (key, va) in a {
        let Some(vb) = b.get(key) else {
            continue;
        };
        match (va, vb) {
            (Value::Object(ea), Value::Object(eb)) => {
                let eyes: serde_json::Map<String, Value> = ea
                    .iter()
                    .filter(|(eye, v)| eb.get(*eye) == Some(*v) && !flagged(key, Some(eye)))
                    .map(|(eye, v)| (eye.clone(), v.clone()))
                    .collect();
                if !eyes.is_empty() {
                    out.insert(key.clone(), Value::Object(eyes));
                }
            }
            _ if va == vb && !flagged(key, None) => {
                out.insert(key.clone(), va.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

/// The rows of a user's worklist they may still work on: roles they hold, and hidden repeats
/// only once every first grading of their batch is done ([`grading::repeat_revealed`]). A repeat
/// is its own row, presented under a masked label ([`grading::presented`]) and addressed by its
/// own id ([`grading::address`]); repeats come after the first gradings, in the order of their
/// masked labels, so neither their place nor their address points at the case they repeat.
pub fn visible_worklist(
    rows: Vec<AssignedCase>,
    signed_in: &SignedIn,
) -> Vec<crate::db::AssignedCase> {
    let held: Vec<grading::Held<'static>> = rows
        .iter()
        .map(|r| grading::Held {
            batch_id: r.batch_id,
            role: r.role,
            kind: if r.kind == "primary" {
                "primary"
            } else {
                "repeat"
            },
            status: r.status,
        })
        .collect();
    let (primary, repeats): (Vec<AssignedCase>, Vec<AssignedCase>) = rows
        .into_iter()
        .filter(|row| {
            signed_in
                .principal
                .has_in_study(row.role.into(), row.case.case.study_id)
        })
        .partition(|row| row.kind != "repeat");
    let mut repeats: Vec<(String, AssignedCase)> = repeats
        .into_iter()
        .filter(|row| grading::repeat_revealed(row.batch_id, row.role, held.iter().copied()))
        .map(|row| {
            let masked = grading::presented("repeat", row.assignment_id, "", "", "").label;
            (masked, row)
        })
        .collect();
    repeats.sort_by(|(x, _), (y, _)| x.cmp(y));
    primary
        .into_iter()
        .chain(repeats.into_iter().map(|(_, row)| row))
        .collect()
}

/// The address of a worklist row ([`grading::address`]).
pub fn row_address(row: &AssignedCase) -> Uuid {
    grading::address(&row.kind, row.assignment_id, row.case.case.id)
}

/// The caller's next unfinished case after `current` (an address: a case id, or a hidden
/// repeat's id) in worklist order (wrapping around), as an address.
pub(super) async fn next_case(
    db: &Db,
    signed_in: &SignedIn,
    current: Uuid,
) -> Result<Option<String>, AppError> {
    let rows = visible_worklist(db.assignments_for_user(signed_in.user.id).await?, signed_in);
    Ok(next_in(&rows, current))
}

/// [`next_case`] over the caller's visible worklist already loaded.
fn next_in(rows: &[AssignedCase], current: Uuid) -> Option<String> {
    let position = rows.iter().position(|r| row_address(r) == current);
    let open = |r: &&AssignedCase| r.status != AssignmentStatus::Done && row_address(r) != current;
    let next = match position {
        Some(at) => rows[at + 1..]
            .iter()
            .find(open)
            .or_else(|| rows[..at].iter().find(open)),
        None => rows.iter().find(open),
    };
    next.map(|r| row_address(r).to_string())
}

/// The case and the caller's assignments of it if the caller is assigned to it (grader or
/// adjudicator); 404 (audited) otherwise.
async fn assigned_case(
    state: &AppState,
    signed_in: &SignedIn,
    case_id: Uuid,
) -> Result<(Case, Vec<Assignment>), AppError> {
    let (case, access, mine) = case_with_access(state, signed_in, case_id).await?;
    if access != CaseAccess::View {
        return Err(deny_case(state, signed_in, case_id, "not_assigned").await);
    }
    Ok((case, mine))
}

// ---------------------------------------------------------------------------------------------
// Grader and adjudicator

/// The study's grading form for a case assigned to the caller, with the caller's draft, own
/// submitted grade and (adjudicators) the round to resolve.
#[utoipa::path(get, path = "/api/cases/{id}/form", tag = "grading",
    extensions(("x-readroom-policy" = json!("case"))),
    params(("id" = Uuid, Path, description = "Case id")),
    responses((status = 200, body = CaseForm),
        (status = 404, description = "No such case, or not assigned to you"),
        (status = 409, description = "The study has no grading form yet")))]
pub async fn case_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CaseForm>, AppError> {
    let (case, mine) = assigned_case(&state, &signed_in, id).await?;
    let db = &state.db;
    let assignment = grading::pick_active(mine)?;
    let address = grading::address(&assignment.kind, assignment.id, case.id);
    let study = db.study_by_id(case.study_id).await?;
    let loaded = grading::current_form(db, &study).await?;
    let draft = match db.draft(assignment.id).await? {
        Some(draft) if assignment.status != AssignmentStatus::Done => Some(DraftView {
            values: parse_json(&draft.grade_values),
            revision: draft.revision,
            updated_at: rfc3339(draft.updated_at),
        }),
        _ => None,
    };
    let mut grade = None;
    let mut adjudication = None;
    match assignment.role {
        AssignmentRole::Grader => {
            grade = db
                .grades_of_assignment(assignment.id)
                .await?
                .iter()
                .max_by_key(|g| g.version)
                .map(grade_view);
        }
        AssignmentRole::Adjudicator => {
            let rounds = db.adjudications_of_case(case.id).await?;
            let round = rounds
                .iter()
                .rfind(|r| r.status == "open")
                .or_else(|| rounds.last());
            if let Some(round) = round {
                let grades = db.grades_of_case(case.id).await?;
                adjudication = Some(adjudication_view(round, &grades));
            }
        }
    }
    let rows = visible_worklist(
        db.assignments_for_user(signed_in.user.id).await?,
        &signed_in,
    );
    let next = next_in(&rows, address);
    let progress = progress_of(&rows, address);
    Ok(Json(CaseForm {
        case_id: address.to_string(),
        label: grading::presented(&assignment.kind, assignment.id, &case.label, "", "").label,
        study: study.code.as_str().to_owned(),
        form: parse_json(&loaded.stored.definition),
        form_version: loaded.stored.version,
        fingerprint: loaded.stored.fingerprint.clone(),
        assignment: MyAssignment {
            id: assignment.id.to_string(),
            role: assignment.role.as_str().to_owned(),
            status: assignment.status.as_str().to_owned(),
            due_at: assignment.due_at.and_then(rfc3339),
        },
        draft,
        grade,
        adjudication,
        next_case: next,
        progress,
    }))
}

/// A case's place in the caller's work (see [`CaseForm::progress`]).
#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct CaseProgress {
    /// 1-based position in worklist order.
    pub position: usize,
    /// Cases in that work.
    pub total: usize,
    /// Of which submitted.
    pub done: usize,
}

/// Where `address` stands among `rows` (the caller's visible worklist): counted within the
/// rows of its batch (or, unbatched, its study) and role, in worklist order. Hidden repeats
/// are not in `rows` until revealed, so they are never counted before.
fn progress_of(rows: &[AssignedCase], address: Uuid) -> Option<CaseProgress> {
    let this = rows.iter().find(|r| row_address(r) == address)?;
    let same = |r: &&AssignedCase| {
        r.role == this.role
            && match this.batch_id {
                Some(batch) => r.batch_id == Some(batch),
                None => r.batch_id.is_none() && r.case.case.study_id == this.case.case.study_id,
            }
    };
    let work: Vec<&AssignedCase> = rows.iter().filter(same).collect();
    Some(CaseProgress {
        position: work.iter().position(|r| row_address(r) == address)? + 1,
        total: work.len(),
        done: work
            .iter()
            .filter(|r| r.status == AssignmentStatus::Done)
            .count(),
    })
}

/// `PUT /api/cases/{id}/draft` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    /// The values so far (partial is fine).
    #[schema(value_type = Object)]
    pub values: Value,
    /// The revision the client last saw; absent or null for the first save.
    #[serde(default)]
    pub revision: Option<i64>,
    /// The viewer's view state.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub render_state: Option<Value>,
    /// SHA-256 of the lossless frame the browser verified.
    #[serde(default)]
    pub lossless_sha256: Option<String>,
}

/// A saved draft's revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct DraftSaved {
    /// The revision to name in the next save.
    pub revision: i64,
    /// When it was saved (RFC 3339).
    pub updated_at: Option<String>,
}

/// Saves the caller's draft (autosave). A save naming an older revision is refused (409).
#[utoipa::path(put, path = "/api/cases/{id}/draft", tag = "grading",
    extensions(("x-readroom-policy" = json!("case"))),
    params(("id" = Uuid, Path, description = "Case id")),
    request_body = DraftRequest,
    responses((status = 200, body = DraftSaved),
        (status = 404, description = "No such case, or not assigned to you"),
        (status = 409, description = "Stale revision, or the grade is already submitted"),
        (status = 422, description = "Values that can never fit the form")))]
pub async fn save_draft(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<DraftRequest>,
) -> Result<Json<DraftSaved>, AppError> {
    let (case, mine) = assigned_case(&state, &signed_in, id).await?;
    let context = Context {
        render_state: body.render_state,
        lossless_sha256: body.lossless_sha256,
        require_viewed: false,
    };
    let draft = grading::save_draft(
        &state.db,
        &state.audit,
        &signed_in,
        &case,
        mine,
        &body.values,
        body.revision,
        &context,
    )
    .await?;
    Ok(Json(DraftSaved {
        revision: draft.revision,
        updated_at: rfc3339(draft.updated_at),
    }))
}

/// `POST /api/cases/{id}/grade` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GradeRequest {
    /// The grade.
    #[schema(value_type = Object)]
    pub values: Value,
    /// The viewer's view state the grade was made on.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub render_state: Option<Value>,
    /// SHA-256 of the lossless frame the browser verified.
    #[serde(default)]
    pub lossless_sha256: Option<String>,
    /// Refuse the grade (422, problems with code `graded_without_viewing`) when it grades an
    /// eye or exam the streaming worker never showed the caller on this case, so the grader
    /// can look first; sent again without it, the grade is stored (and flagged). The grading
    /// form asks this; without it (scripts) the grade is stored with `warnings`.
    #[serde(default)]
    pub require_viewed: bool,
}

/// A stored submission, amendment or adjudication.
#[derive(Debug, Serialize, ToSchema)]
pub struct Submission {
    /// `grade` or `adjudication`.
    pub kind: String,
    /// Grade or round id.
    pub id: String,
    /// Grade version (adjudications: the round).
    pub version: i32,
    /// When it was stored (RFC 3339).
    pub submitted_at: Option<String>,
    /// The caller's next unfinished case, if any.
    pub next_case: Option<String>,
    /// Graded eyes and fundus/OCT exams of graded eyes the streaming worker never showed the
    /// caller on this case (`graded_without_viewing`); empty when all were shown, or while a
    /// viewing session of the case has reported nothing yet (`viewing` is then `pending`).
    pub warnings: Vec<grading::ViewWarning>,
    /// `complete`, `incomplete` (see `warnings`) or `pending` (a viewing session has not
    /// reported what it showed yet; the audit's anomaly flags settle it when its report arrives).
    pub viewing: String,
}

fn viewing_state(viewing: &grading::Viewing) -> String {
    if viewing.pending {
        "pending"
    } else if viewing.warnings.is_empty() {
        "complete"
    } else {
        "incomplete"
    }
    .to_owned()
}

/// Submits the caller's grade (immutable once stored), or an adjudicator's final grade.
#[utoipa::path(post, path = "/api/cases/{id}/grade", tag = "grading",
    extensions(("x-readroom-policy" = json!("case"))),
    params(("id" = Uuid, Path, description = "Case id")),
    request_body = GradeRequest,
    responses((status = 201, body = Submission),
        (status = 404, description = "No such case, or not assigned to you"),
        (status = 409, description = "Already submitted (amend instead)"),
        (status = 422, description = "The grade does not fit the form, or (with `require_viewed`) covers what the grader was not shown; every problem listed")))]
pub async fn submit_grade(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<GradeRequest>,
) -> Result<(StatusCode, Json<Submission>), AppError> {
    let (case, mine) = assigned_case(&state, &signed_in, id).await?;
    let context = Context {
        render_state: body.render_state,
        lossless_sha256: body.lossless_sha256,
        require_viewed: body.require_viewed,
    };
    let submitted = grading::submit(
        &state.db,
        &state.audit,
        &signed_in,
        &case,
        mine,
        &body.values,
        &context,
        None,
    )
    .await?;
    let next = next_case(&state.db, &signed_in, id).await?;
    let (submitted, viewed) = submitted;
    let state_word = viewing_state(&viewed);
    let submission = match submitted {
        Submitted::Grade(grade, _) => Submission {
            kind: "grade".into(),
            id: grade.id.to_string(),
            version: grade.version,
            submitted_at: rfc3339(grade.submitted_at),
            next_case: next,
            warnings: viewed.warnings,
            viewing: state_word,
        },
        Submitted::Adjudication(round) => Submission {
            kind: "adjudication".into(),
            id: round.id.to_string(),
            version: round.round,
            submitted_at: round.resolved_at.and_then(rfc3339),
            next_case: next,
            warnings: viewed.warnings,
            viewing: state_word,
        },
    };
    Ok((StatusCode::CREATED, Json(submission)))
}

/// `POST /api/cases/{id}/amendments` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendRequest {
    /// The amended grade.
    #[schema(value_type = Object)]
    pub values: Value,
    /// Why the grade is amended (required).
    pub reason: String,
    /// The viewer's view state.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub render_state: Option<Value>,
    /// SHA-256 of the lossless frame the browser verified.
    #[serde(default)]
    pub lossless_sha256: Option<String>,
}

/// Amends the caller's submitted grade: a new version with a reason; earlier versions stay.
#[utoipa::path(post, path = "/api/cases/{id}/amendments", tag = "grading",
    extensions(("x-readroom-policy" = json!("case"))),
    params(("id" = Uuid, Path, description = "Case id")),
    request_body = AmendRequest,
    responses((status = 201, body = Submission),
        (status = 400, description = "No reason"),
        (status = 404, description = "No such case, or not assigned to you"),
        (status = 409, description = "Nothing submitted yet, or an adjudication"),
        (status = 422, description = "The grade does not fit the form")))]
pub async fn amend_grade(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AmendRequest>,
) -> Result<(StatusCode, Json<Submission>), AppError> {
    let (case, mine) = assigned_case(&state, &signed_in, id).await?;
    let context = Context {
        render_state: body.render_state,
        lossless_sha256: body.lossless_sha256,
        require_viewed: false,
    };
    let (grade, _) = grading::amend(
        &state.db,
        &state.audit,
        &signed_in,
        &case,
        mine,
        &body.values,
        &context,
        &body.reason,
    )
    .await?;
    let next = next_case(&state.db, &signed_in, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(Submission {
            kind: "grade".into(),
            id: grade.id.to_string(),
            version: grade.version,
            submitted_at: rfc3339(grade.submitted_at),
            next_case: next,
            warnings: Vec::new(),
            viewing: "not_checked".into(),
        }),
    ))
}

/// One entry of an adjudicator's queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItem {
    /// Case id.
    pub case_id: String,
    /// Case label.
    pub label: String,
    /// Study code.
    pub study: String,
    /// The latest round.
    pub round: i32,
    /// `open` or `resolved`.
    pub status: String,
    /// The disagreeing fields (`dr_grade:OD`).
    pub fields: Vec<String>,
    /// The same fields as graders read them: the form's labels (`{ "en", "ko" }`) and the eye.
    #[schema(value_type = Object)]
    pub labels: Vec<Value>,
    /// When the round opened (RFC 3339).
    pub opened_at: Option<String>,
}

/// The caller's adjudication queue: open rounds first, then resolved ones.
#[utoipa::path(get, path = "/api/adjudications", tag = "grading",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    responses((status = 200, body = [QueueItem])))]
pub async fn adjudication_queue(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<Vec<QueueItem>>, AppError> {
    let rows = visible_worklist(
        state.db.assignments_for_user(signed_in.user.id).await?,
        &signed_in,
    );
    let mut items = Vec::new();
    let mut forms: HashMap<Uuid, Option<Form>> = HashMap::new();
    for row in rows
        .into_iter()
        .filter(|r| r.role == AssignmentRole::Adjudicator)
    {
        let study_id = row.case.case.study_id;
        if let std::collections::hash_map::Entry::Vacant(slot) = forms.entry(study_id) {
            let study = state.db.study_by_id(study_id).await?;
            let form = match grading::current_form(&state.db, &study).await {
                Ok(loaded) => Some(loaded.form),
                Err(GradingError::NoForm(_)) => None,
                Err(err) => return Err(err.into()),
            };
            slot.insert(form);
        }
        let form = forms.get(&study_id).and_then(Option::as_ref);
        let rounds = state.db.adjudications_of_case(row.case.case.id).await?;
        let Some(round) = rounds
            .iter()
            .rfind(|r| r.status == "open")
            .or_else(|| rounds.last())
        else {
            continue;
        };
        let listed: Vec<(String, Option<String>)> =
            match serde_json::from_str::<Value>(&round.disagreements) {
                Ok(Value::Array(list)) => list
                    .iter()
                    .filter_map(|d| {
                        let field = d.get("field")?.as_str()?;
                        let eye = d.get("eye").and_then(Value::as_str);
                        Some((field.to_owned(), eye.map(str::to_owned)))
                    })
                    .collect(),
                _ => Vec::new(),
            };
        let fields = listed
            .iter()
            .map(|(field, eye)| match eye {
                Some(eye) => format!("{field}:{eye}"),
                None => field.clone(),
            })
            .collect();
        let labels = listed
            .iter()
            .map(|(field, eye)| {
                let label = form
                    .and_then(|f| f.field(field))
                    .map(|f| json!({ "en": f.label.en, "ko": f.label.ko }))
                    .unwrap_or_else(|| json!({ "en": field, "ko": field }));
                json!({ "field": field, "eye": eye, "label": label })
            })
            .collect();
        items.push(QueueItem {
            case_id: row.case.case.id.to_string(),
            label: row.case.case.label.clone(),
            study: row.case.study_code.as_str().to_owned(),
            round: round.round,
            status: round.status.clone(),
            fields,
            labels,
            opened_at: rfc3339(round.created_at),
        });
    }
    items.sort_by_key(|i| i.status != "open");
    Ok(Json(items))
}

// ---------------------------------------------------------------------------------------------
// Coordinator: form, batches, reassignment

/// A study's form version.
#[derive(Debug, Serialize, ToSchema)]
pub struct StudyFormView {
    /// The study form's version (1, 2, …).
    pub version: i32,
    /// SHA-256 of the definition.
    pub fingerprint: String,
    /// When it was set (RFC 3339).
    pub created_at: Option<String>,
    /// The definition (`readroom-form/1`).
    #[schema(value_type = Object)]
    pub definition: Value,
    /// The presets a coordinator may pick.
    pub presets: Vec<String>,
}

fn form_view(stored: &crate::db::grading::StudyForm) -> StudyFormView {
    StudyFormView {
        version: stored.version,
        fingerprint: stored.fingerprint.clone(),
        created_at: rfc3339(stored.created_at),
        definition: parse_json(&stored.definition),
        presets: PRESETS.iter().map(|p| (*p).to_owned()).collect(),
    }
}

/// The study's current grading form (coordinators, and auditors reading the statistics).
#[utoipa::path(get, path = "/api/studies/{code}/form", tag = "grading",
    extensions(("x-readroom-policy" = json!("statistics"))),
    params(("code" = String, Path, description = "Study code")),
    responses((status = 200, body = StudyFormView), (status = 404, description = "No such study, not its coordinator, or no form yet")))]
pub async fn get_study_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<StudyFormView>, AppError> {
    let study = statistics_study(&state, &signed_in, &code).await?;
    match state.db.current_form(study.id).await {
        Ok(stored) => Ok(Json(form_view(&stored))),
        Err(DbError::NotFound) => Err(AppError::NotFound(format!(
            "study {} has no grading form yet; set one with PUT /api/studies/{}/form",
            study.code, study.code
        ))),
        Err(err) => Err(err.into()),
    }
}

/// `PUT /api/studies/{code}/form` body: a preset name or a definition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetForm {
    /// A shipped preset (`icdr`, `areds_simple`, `vcdr`, `gradability`, `other_findings`, `demo`).
    #[serde(default)]
    pub preset: Option<String>,
    /// A `readroom-form/1` definition.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub definition: Option<Value>,
}

/// Sets a new version of the study's grading form (earlier grades keep theirs).
#[utoipa::path(put, path = "/api/studies/{code}/form", tag = "grading",
    extensions(("x-readroom-policy" = json!("coordinator"))),
    params(("code" = String, Path, description = "Study code")),
    request_body = SetForm,
    responses((status = 200, body = StudyFormView), (status = 400, description = "Unknown preset or a definition that breaks the format (every problem named)")))]
pub async fn set_study_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<SetForm>,
) -> Result<Json<StudyFormView>, AppError> {
    let study = coordinated_study(&state, &signed_in, &code).await?;
    let form: Form = match (body.preset, body.definition) {
        (Some(name), None) => preset(&name).ok_or_else(|| {
            AppError::BadRequest(format!(
                "no preset {name:?}; presets are {}",
                PRESETS.join(", ")
            ))
        })?,
        (None, Some(definition)) => Form::parse(&definition.to_string())
            .map_err(|err| AppError::BadRequest(err.to_string()))?,
        _ => {
            return Err(AppError::BadRequest(
                "give exactly one of `preset` and `definition`".into(),
            ));
        }
    };
    let stored =
        grading::set_form(&state.db, &state.audit, &study, &form, Some(&signed_in)).await?;
    Ok(Json(form_view(&stored)))
}

/// The study's batches with their progress.
#[utoipa::path(get, path = "/api/studies/{code}/batches", tag = "grading",
    extensions(("x-readroom-policy" = json!("coordinator"))),
    params(("code" = String, Path, description = "Study code")),
    responses((status = 200, description = "Batches (BatchSummary of the progress document)")))]
pub async fn list_batches(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Value>, AppError> {
    let study = coordinated_study(&state, &signed_in, &code).await?;
    let progress = stats::study_progress(&state.db, &study, None).await?;
    Ok(Json(json!(progress.batches)))
}

/// `POST /api/studies/{code}/batches` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBatchRequest {
    /// Name, unique in the study (1–100 characters).
    pub name: String,
    /// Case ids; empty or absent: every case of the study not yet in a batch.
    #[serde(default)]
    pub cases: Vec<Uuid>,
    /// Graders' usernames; empty or absent: every grader of the study.
    #[serde(default)]
    pub graders: Vec<String>,
    /// Graders per case (default 2).
    #[serde(default)]
    pub per_case: Option<u32>,
    /// Fraction of each grader's cases re-served later as hidden repeats (0–0.5, default 0).
    #[serde(default)]
    pub repeat_fraction: Option<f64>,
    /// Due date (RFC 3339).
    #[serde(default)]
    pub due_at: Option<String>,
}

/// A created batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchCreated {
    /// Batch id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Cases in it.
    pub cases: usize,
    /// Assignments created (primary and hidden repeats).
    pub assignments: usize,
}

/// Forms a batch and assigns it: each case to `per_case` distinct graders with balanced load.
#[utoipa::path(post, path = "/api/studies/{code}/batches", tag = "grading",
    extensions(("x-readroom-policy" = json!("coordinator"))),
    params(("code" = String, Path, description = "Study code")),
    request_body = NewBatchRequest,
    responses((status = 201, body = BatchCreated), (status = 400), (status = 409, description = "Name taken")))]
pub async fn create_batch(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<NewBatchRequest>,
) -> Result<(StatusCode, Json<BatchCreated>), AppError> {
    let study = coordinated_study(&state, &signed_in, &code).await?;
    let mut graders = Vec::new();
    for username in &body.graders {
        match state.db.user_by_username(username).await {
            Ok(user) => graders.push(user.id),
            Err(DbError::NotFound) => {
                return Err(AppError::Declined(Declined::bad(
                    "no_such_user",
                    format!("no user {username}"),
                    json!({ "username": username }),
                )));
            }
            Err(err) => return Err(err.into()),
        }
    }
    let repeat_fraction = body.repeat_fraction.unwrap_or(0.0);
    if !(0.0..=0.5).contains(&repeat_fraction) {
        return Err(AppError::BadRequest(
            "repeat_fraction must be between 0 and 0.5".into(),
        ));
    }
    let due_at = body
        .due_at
        .as_deref()
        .map(|text| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| AppError::BadRequest("due_at must be an RFC 3339 time".into()))
        })
        .transpose()?;
    let request = BatchRequest {
        name: body.name,
        cases: body.cases,
        graders,
        per_case: body.per_case.unwrap_or(2),
        repeat_fraction,
        due_at,
    };
    let (batch, created) =
        grading::create_batch(&state.db, &state.audit, Some(&signed_in), &study, &request).await?;
    let cases: HashSet<Uuid> = created.iter().map(|a| a.case_id).collect();
    Ok((
        StatusCode::CREATED,
        Json(BatchCreated {
            id: batch.id.to_string(),
            name: batch.name,
            cases: cases.len(),
            assignments: created.len(),
        }),
    ))
}

/// `POST /api/studies/{code}/assignments/{id}/reassign` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignRequest {
    /// The new assignee; absent: the least loaded other holder of the role.
    #[serde(default)]
    pub username: Option<String>,
}

/// Moves an unfinished assignment to another grader (or adjudicator).
#[utoipa::path(post, path = "/api/studies/{code}/assignments/{id}/reassign", tag = "grading",
    extensions(("x-readroom-policy" = json!("coordinator"))),
    params(("code" = String, Path, description = "Study code"), ("id" = Uuid, Path, description = "Assignment id")),
    request_body = ReassignRequest,
    responses((status = 200, body = super::cases::AssignmentView), (status = 400), (status = 404), (status = 409, description = "Already done")))]
pub async fn reassign(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath((code, id)): ApiPath<(String, Uuid)>,
    ApiJson(body): ApiJson<ReassignRequest>,
) -> Result<Json<super::cases::AssignmentView>, AppError> {
    let study = coordinated_study(&state, &signed_in, &code).await?;
    let assignment = state.db.assignment_by_id(id).await?;
    let case = state.db.case_by_id(assignment.case_id).await?;
    if case.study_id != study.id {
        return Err(AppError::NotFound("not found".into()));
    }
    let to = match body.username.as_deref() {
        None => None,
        Some(name) => match state.db.user_by_username(name).await {
            Ok(user) => Some(user.id),
            Err(DbError::NotFound) => {
                return Err(AppError::Declined(Declined::bad(
                    "no_such_user",
                    format!("no user {name}"),
                    json!({ "username": name }),
                )));
            }
            Err(err) => return Err(err.into()),
        },
    };
    let moved =
        grading::reassign(&state.db, &state.audit, &signed_in, &study, &assignment, to).await?;
    let mut views = assignment_views(&state, vec![moved]).await?;
    Ok(Json(views.remove(0)))
}

// ---------------------------------------------------------------------------------------------
// Statistics and exports

/// The study named by `code` if the caller coordinates it or is an auditor; 404 otherwise.
async fn statistics_study(
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
    if signed_in.principal.coordinates(study.id) || signed_in.principal.is_auditor() {
        return Ok(study);
    }
    tracing::info!(user_id = %signed_in.user.id, "statistics denied");
    Err(if signed_in.principal.sees_study(study.id) {
        AppError::forbidden("only the study's coordinators and auditors may see its statistics")
    } else {
        hidden()
    })
}

/// Usernames of the users a statistics document names (coordinators and auditors may know
/// who graded; graders never see this).
async fn names(db: &Db, ids: impl IntoIterator<Item = Uuid>) -> Result<Value, AppError> {
    let wanted: HashSet<Uuid> = ids.into_iter().collect();
    let names: HashMap<String, String> = db
        .list_users()
        .await?
        .into_iter()
        .filter(|u| wanted.contains(&u.id))
        .map(|u| (u.id.to_string(), u.username))
        .collect();
    Ok(json!(names))
}

/// `?batch=` of the statistics routes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ScopeQuery {
    /// Limit the numbers to one batch.
    #[serde(default)]
    pub batch: Option<Uuid>,
}

fn scope_error(err: GradingError) -> AppError {
    match err {
        GradingError::Db(DbError::NotFound) => {
            AppError::NotFound("the study has no such batch".into())
        }
        other => other.into(),
    }
}

/// One urgent referral of a study.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralView {
    /// The case.
    pub case_id: String,
    /// Its label (the real one, also for a hidden repeat's grade).
    pub label: String,
    /// Who flagged it (user id; `names` maps it to a username).
    pub by: String,
    /// `grader` or `adjudicator`.
    pub role: String,
    /// When (RFC 3339).
    pub at: Option<String>,
    /// The grade's comment, if any.
    pub comment: Option<String>,
}

/// Grades and final grades that ask for an urgent referral (`urgent_referral` ticked), newest
/// first: what a coordinator acts on at once. An amendment that unticks it withdraws it.
#[utoipa::path(get, path = "/api/studies/{code}/referrals", tag = "grading",
    extensions(("x-readroom-policy" = json!("statistics"))),
    params(("code" = String, Path, description = "Study code")),
    responses((status = 200, description = "`{\"referrals\": [ReferralView], \"names\": {id: username}}`"), (status = 404)))]
pub async fn referrals(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Value>, AppError> {
    let study = statistics_study(&state, &signed_in, &code).await?;
    let db = &state.db;
    let found = grading::referrals::referrals(
        &db.grades_of_study(study.id).await?,
        &db.adjudications_of_study(study.id).await?,
    );
    let labels: HashMap<Uuid, String> = db
        .list_cases(study.id)
        .await?
        .into_iter()
        .map(|c| (c.case.id, c.case.label))
        .collect();
    let views: Vec<ReferralView> = found
        .iter()
        .map(|r| ReferralView {
            case_id: r.case_id.to_string(),
            label: labels.get(&r.case_id).cloned().unwrap_or_default(),
            by: r.by.to_string(),
            role: r.role.to_owned(),
            at: rfc3339(r.at),
            comment: r.comment.clone(),
        })
        .collect();
    Ok(Json(json!({
        "referrals": views,
        "names": names(db, found.iter().map(|r| r.by)).await?,
    })))
}

/// Progress of a study (or batch): cases by stage, assignments, throughput and time per case.
#[utoipa::path(get, path = "/api/studies/{code}/progress", tag = "grading",
    extensions(("x-readroom-policy" = json!("statistics"))),
    params(("code" = String, Path, description = "Study code"), ScopeQuery),
    responses((status = 200, description = "Progress document with `names` (user id → username)"), (status = 404)))]
pub async fn progress(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<ScopeQuery>,
) -> Result<Json<Value>, AppError> {
    let study = statistics_study(&state, &signed_in, &code).await?;
    let progress = stats::study_progress(&state.db, &study, query.batch)
        .await
        .map_err(scope_error)?;
    let ids = progress
        .graders
        .iter()
        .map(|g| g.grader_id)
        .chain(progress.adjudicators.iter().map(|a| a.adjudicator_id))
        .collect::<Vec<_>>();
    let mut body = json!(progress);
    body["names"] = names(&state.db, ids).await?;
    Ok(Json(body))
}

/// Inter- and intra-grader agreement of a study (or batch): Cohen's kappa and quadratic
/// weighted kappa per grader pair and field, and (`ground_truth`) each grader's and the final
/// grades' agreement with the cases' ground truth where the data has it (the demo data).
#[utoipa::path(get, path = "/api/studies/{code}/agreement", tag = "grading",
    extensions(("x-readroom-policy" = json!("statistics"))),
    params(("code" = String, Path, description = "Study code"), ScopeQuery),
    responses((status = 200, description = "Agreement document with `names` (user id → username)"), (status = 404), (status = 409, description = "No grading form yet")))]
pub async fn agreement(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<ScopeQuery>,
) -> Result<Json<Value>, AppError> {
    let study = statistics_study(&state, &signed_in, &code).await?;
    let form = grading::current_form(&state.db, &study).await?;
    let rows = stats::load_scoped(&state.db, &study, query.batch)
        .await
        .map_err(|err| scope_error(err.into()))?;
    let agreement = stats::agreement(&rows, &form.form);
    let truths = truth::load_truths(&state.db, &study).await?;
    let ground_truth = truth::truth_agreement(&rows, &form.form, &truths);
    let ids = agreement
        .pairs
        .iter()
        .flat_map(|p| [p.grader_a.clone(), p.grader_b.clone()])
        .chain(agreement.intra.iter().map(|i| i.grader.clone()))
        .chain(ground_truth.iter().map(|t| t.grader.clone()))
        .filter_map(|id| Uuid::parse_str(&id).ok())
        .collect::<Vec<_>>();
    let mut body = json!(agreement);
    body["ground_truth"] = json!(ground_truth);
    body["names"] = names(&state.db, ids).await?;
    Ok(Json(body))
}

/// `?format=&table=` of the export route.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `csv` or `json`.
    pub format: String,
    /// CSV only: `grades` (default), `versions`, `adjudications`, `agreement`, `throughput`,
    /// `dictionary`.
    #[serde(default)]
    pub table: Option<String>,
}

/// Downloads grades, adjudications and statistics as CSV (one table) or JSON (everything),
/// with the data dictionary derived from the form. Audited (`export.downloaded`).
#[utoipa::path(get, path = "/api/studies/{code}/export", tag = "grading",
    extensions(("x-readroom-policy" = json!("coordinator"))),
    params(("code" = String, Path, description = "Study code"), ExportQuery),
    responses((status = 200, description = "CSV or JSON attachment"), (status = 400), (status = 404), (status = 409, description = "No grading form yet")))]
pub async fn export(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, AppError> {
    let study = coordinated_study(&state, &signed_in, &code).await?;
    let table = match (query.format.as_str(), query.table.as_deref()) {
        ("csv", None) => Some(CsvTable::Grades),
        ("csv", Some(name)) => Some(CsvTable::from_name(name).ok_or_else(|| {
            AppError::BadRequest(format!(
                "no table {name:?}; tables are {}",
                CsvTable::ALL.map(CsvTable::as_str).join(", ")
            ))
        })?),
        ("json", None) => None,
        ("json", Some(_)) => {
            return Err(AppError::BadRequest(
                "`table` applies to CSV only; the JSON export holds every table".into(),
            ));
        }
        (other, _) => {
            return Err(AppError::BadRequest(format!(
                "format must be csv or json, not {other:?}"
            )));
        }
    };
    let loaded = export::load(&state.db, &study).await?;
    let code = study.code.as_str();
    let (body, content_type, file_name) = match table {
        Some(table) => (
            export::to_csv(&loaded, table),
            "text/csv; charset=utf-8",
            table.file_name(code),
        ),
        None => (
            serde_json::to_string_pretty(&export::to_json(&loaded))
                .map_err(|err| AppError::Internal(err.to_string()))?,
            "application/json",
            format!("{code}-export.json"),
        ),
    };
    state
        .audit
        .record(signed_in.event(
            Action::ExportDownloaded,
            Outcome::Success,
            Some(study_target(code)),
            json!({
                "format": query.format, "table": table.map(CsvTable::as_str),
                "bytes": body.len(), "grades": loaded.rows.grades.len(),
            }),
        ))
        .await?;
    Ok((
        [
            (CONTENT_TYPE, content_type.to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}
