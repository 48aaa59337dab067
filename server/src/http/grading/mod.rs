//! The grading workflow's routes (see `docs/grading-api.md`): a grader's form, drafts,
//! submissions and amendments; an adjudicator's queue and round; a coordinator's form, batches,
//! reassignment and exports; progress and agreement statistics for coordinators and auditors.
//!
//! Handlers only translate HTTP to [`crate::grading`] and back; the rules live there and in
//! `readroom_domain::grading`.

mod types;
mod views;

pub use types::*;
use views::{adjudication_view, grade_view, next_in, progress_of};
pub use views::{row_address, visible_worklist};

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use readroom_domain::audit::{Action, Outcome};
use readroom_domain::grading::{Form, PRESETS, preset};
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppError;
use super::cases::{assignment_views, case_with_access, coordinated_study, deny_case};
use super::error::Declined;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::format::rfc3339;
use crate::access::CaseAccess;
use crate::audit::study_target;
use crate::auth::SignedIn;
use crate::db::{
    AdjudicationStatus, Assignment, AssignmentRole, AssignmentStatus, Case, Db, DbError, Study,
    StudyCode,
};
use crate::grading::{self, BatchRequest, Context, GradingError, Submitted, reports};
use crate::state::AppState;
use readroom_domain::grading::export::{self, CsvTable};
use readroom_domain::grading::{referrals, stats, truth};

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
// Loading

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
    let address = grading::address(assignment.kind, assignment.id, case.id);
    let study = db.study_by_id(case.study_id).await?;
    let loaded = grading::current_form(db, &study).await?;
    let draft = match db.draft(assignment.id).await? {
        Some(draft) if assignment.status != AssignmentStatus::Done => Some(DraftView {
            values: Value::Object(draft.grade_values.0),
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
                .rfind(|r| r.status == AdjudicationStatus::Open)
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
        label: grading::presented(assignment.kind, assignment.id, &case.label, "", "").label,
        study: study.code.as_str().to_owned(),
        form: grading::definition_json(&loaded.stored)?,
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
            .rfind(|r| r.status == AdjudicationStatus::Open)
            .or_else(|| rounds.last())
        else {
            continue;
        };
        let listed: Vec<(String, Option<String>)> = match &round.disagreements {
            Value::Array(list) => list
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
            status: round.status.as_str().to_owned(),
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

fn form_view(stored: &crate::db::grading::StudyForm) -> Result<StudyFormView, AppError> {
    Ok(StudyFormView {
        version: stored.version,
        fingerprint: stored.fingerprint.clone(),
        created_at: rfc3339(stored.created_at),
        definition: grading::definition_json(stored)?,
        presets: PRESETS.iter().map(|p| (*p).to_owned()).collect(),
    })
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
        Ok(stored) => Ok(Json(form_view(&stored)?)),
        Err(DbError::NotFound) => Err(AppError::NotFound(format!(
            "study {} has no grading form yet; set one with PUT /api/studies/{}/form",
            study.code, study.code
        ))),
        Err(err) => Err(err.into()),
    }
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
    Ok(Json(form_view(&stored)?))
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
    let progress = reports::study_progress(&state.db, &study, None).await?;
    Ok(Json(json!(progress.batches)))
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

fn scope_error(err: GradingError) -> AppError {
    match err {
        GradingError::Db(DbError::NotFound) => {
            AppError::NotFound("the study has no such batch".into())
        }
        other => other.into(),
    }
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
    let found = referrals::referrals(
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
    let progress = reports::study_progress(&state.db, &study, query.batch)
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
    let rows = reports::load_scoped(&state.db, &study, query.batch)
        .await
        .map_err(|err| scope_error(err.into()))?;
    let agreement = stats::agreement(&rows, &form.form);
    let truths = reports::load_truths(&state.db, &study).await?;
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
    let loaded = reports::load_export(&state.db, &study).await?;
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
