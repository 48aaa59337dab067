//! The grading workflow's operations, independent of HTTP: which assignment a user works on,
//! drafts, submissions and amendments, disagreement routing to adjudication, batches.
//!
//! The rules are pure code in `readroom_domain::{grading, assignment, agreement}`; this module
//! applies them to what the database holds and records each step in the audit log.
//! - [`reports`]: loads a study's records for the statistics, exports and referrals, which are
//!   pure functions in `readroom_domain::grading::{stats, export, truth, referrals}`.

pub mod reports;

use readroom_domain::assignment::{self, CaseRef, GraderLoad, PlanOptions};
use readroom_domain::audit::{Action, Outcome};
use readroom_domain::grading::{Form, Mode, Problem, Values, disagreements, validate};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{Audit, AuditError, case_target, event_by, study_target};
use crate::auth::SignedIn;
use crate::db::grading::{
    Adjudication, Batch, Draft, Grade, GradeWriteError, NewBatch, NewGrade, StudyForm,
};
use crate::db::{
    AdjudicationStatus, Assignment, AssignmentKind, AssignmentRole, AssignmentStatus, Case, Db,
    DbError, Role, Study,
};
pub use readroom_domain::grading::records::latest_primary;

/// Longest render state accepted with a grade (the viewer's view state JSON).
pub const MAX_RENDER_STATE: usize = 8 * 1024;
/// Longest amendment or adjudication reason.
pub const MAX_REASON: usize = 2000;

/// Why a grading operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum GradingError {
    /// The caller has no assignment on this case (answered as 404, like a missing case).
    #[error("no such case, or it is not assigned to you")]
    NotAssigned,
    /// The study has no grading form yet.
    #[error(
        "study {0} has no grading form yet; a coordinator sets one (PUT /api/studies/{0}/form)"
    )]
    NoForm(String),
    /// The values do not fit the form; every problem is listed.
    #[error("the grade does not fit the form ({} problem(s))", .0.len())]
    Invalid(Vec<Problem>),
    /// The request is malformed otherwise.
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with the stored state (stale draft, double submit).
    #[error("{0}")]
    Conflict(String),
    /// Refused for a reason the viewer words in the user's language.
    #[error("{0}")]
    Declined(Declined),
    /// The grade names a lossless frame (`lossless_sha256`) that no worker sent to the caller
    /// for this case: grade evidence is what the worker recorded, not what the browser says.
    #[error(
        "lossless_sha256 names no lossless frame a worker sent you for this case; grade on the LOSSLESS view (or send no hash)"
    )]
    Unattested,
    /// The grade covers eyes or exams the worker never showed the caller on this case, and the
    /// request asked to be refused then (`require_viewed`): nothing is stored.
    #[error("the grade covers what the grader was not shown ({} item(s))", .0.len())]
    Unviewed(Vec<ViewWarning>),
    /// Stored data is not what it should be (a form that no longer parses).
    #[error("{0}")]
    Corrupt(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The audit log failed (the operation is refused).
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Why a request was refused, in a form the viewer translates (the API's `error.reason` and `error.params`).
#[derive(Debug, Clone, PartialEq)]
pub struct Declined {
    /// 409 `conflict` rather than 400 `bad_request`.
    pub conflict: bool,
    /// `nothing_to_assign`, `batch_exists`, … (the viewer's `error.reason.<reason>`).
    pub reason: &'static str,
    /// English, for scripts and logs.
    pub message: String,
    /// The values the message names (`{"per_case": 2}`), an object.
    pub params: Value,
}

impl Declined {
    /// 400 `bad_request` for `reason`.
    pub fn bad(reason: &'static str, message: impl Into<String>, params: Value) -> Self {
        Declined {
            conflict: false,
            reason,
            message: message.into(),
            params,
        }
    }

    /// 409 `conflict` for `reason`.
    pub fn conflict(reason: &'static str, message: impl Into<String>, params: Value) -> Self {
        Declined {
            conflict: true,
            ..Declined::bad(reason, message, params)
        }
    }
}

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<GradeWriteError> for GradingError {
    fn from(err: GradeWriteError) -> GradingError {
        match err {
            GradeWriteError::Db(err) => GradingError::Db(err),
            other => GradingError::Conflict(other.to_string()),
        }
    }
}

/// A stored form version and its parsed definition.
#[derive(Debug, Clone)]
pub struct LoadedForm {
    /// The stored row.
    pub stored: StudyForm,
    /// The parsed form.
    pub form: Form,
}

/// Parses a stored form.
pub fn parse_form(stored: StudyForm) -> Result<LoadedForm, GradingError> {
    let form = Form::parse(&stored.definition).map_err(|err| {
        GradingError::Corrupt(format!(
            "stored form version {} does not parse: {err}",
            stored.version
        ))
    })?;
    Ok(LoadedForm { stored, form })
}

/// A stored form's definition as JSON (as it was set); one that does not parse is
/// [`GradingError::Corrupt`], never `null`.
pub fn definition_json(stored: &StudyForm) -> Result<Value, GradingError> {
    serde_json::from_str(&stored.definition).map_err(|err| {
        GradingError::Corrupt(format!(
            "stored form version {} is not JSON: {err}",
            stored.version
        ))
    })
}

/// The study's current form.
pub async fn current_form(db: &Db, study: &Study) -> Result<LoadedForm, GradingError> {
    match db.current_form(study.id).await {
        Ok(stored) => parse_form(stored),
        Err(DbError::NotFound) => Err(GradingError::NoForm(study.code.as_str().to_owned())),
        Err(err) => Err(err.into()),
    }
}

/// Sets a new version of the study's form (validated) and audits it.
pub async fn set_form(
    db: &Db,
    audit: &Audit,
    study: &Study,
    form: &Form,
    by: Option<&SignedIn>,
) -> Result<StudyForm, GradingError> {
    let definition = form.to_json();
    let stored = db
        .set_form(
            study.id,
            &definition,
            &form.fingerprint(),
            by.map(|s| s.user.id),
        )
        .await?;
    let details = json!({
        "form": form.code, "form_version": form.version, "study_form_version": stored.version,
        "fingerprint": stored.fingerprint,
    });
    let draft = match by {
        Some(signed_in) => signed_in.event(
            Action::StudyFormChanged,
            Outcome::Success,
            Some(study_target(study.code.as_str())),
            details,
        ),
        None => event_by(
            Action::StudyFormChanged,
            Outcome::Success,
            None,
            Some(study_target(study.code.as_str())),
            None,
            details,
        ),
    };
    audit.record(draft).await?;
    Ok(stored)
}

/// The assignment a user works on for a case, among their assignments of it as the case was
/// addressed ([`crate::http::cases::case_with_access`]: by the case id, the primary and
/// adjudicator ones; by a hidden repeat's own address, that repeat alone): an unfinished one if
/// any (adjudication before grading), otherwise the most recently assigned finished one (to see
/// or amend the grade).
pub fn pick_active(mine: Vec<Assignment>) -> Result<Assignment, GradingError> {
    let open = mine
        .iter()
        .filter(|a| a.status != AssignmentStatus::Done)
        .min_by_key(|a| {
            (
                a.role != AssignmentRole::Adjudicator,
                a.kind != AssignmentKind::Primary,
            )
        });
    if let Some(found) = open {
        return Ok(found.clone());
    }
    mine.into_iter()
        .filter(|a| a.status == AssignmentStatus::Done)
        .max_by_key(|a| a.assigned_at)
        .ok_or(GradingError::NotAssigned)
}

/// One of a user's assignments, as far as revealing hidden repeats goes.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    /// The batch.
    pub batch_id: Option<Uuid>,
    /// Grading or adjudicating.
    pub role: AssignmentRole,
    /// A first grading or a hidden repeat.
    pub kind: AssignmentKind,
    /// Where it stands.
    pub status: AssignmentStatus,
}

/// Whether a hidden repeat (of batch `batch_id`, role `role`) is served to its holder yet, given
/// everything the holder is assigned: only once they have finished **every** first (primary)
/// grading of that batch in that role. So a repeat never shows up right after the grading of the
/// case it repeats: it arrives after the whole batch, together with the batch's other repeats,
/// when many other cases have been graded in between (see docs/grading-api.md).
pub fn repeat_revealed(
    batch_id: Option<Uuid>,
    role: AssignmentRole,
    held: impl IntoIterator<Item = Held>,
) -> bool {
    let mut any_primary = false;
    for h in held {
        if h.batch_id == batch_id && h.role == role && h.kind == AssignmentKind::Primary {
            any_primary = true;
            if h.status != AssignmentStatus::Done {
                return false;
            }
        }
    }
    any_primary
}

/// The id under which a grader addresses an assignment's case in URLs and answers: the case id,
/// or for a hidden repeat the repeat assignment's own id, so the repeat cannot be matched with
/// the case it repeats by its address (`/case/{id}`).
pub fn address(kind: AssignmentKind, assignment_id: Uuid, case_id: Uuid) -> Uuid {
    if kind == AssignmentKind::Repeat {
        assignment_id
    } else {
        case_id
    }
}

/// What a grader sees of a case (label, subject and visit pseudonyms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// Case label, or the masked label of a hidden repeat.
    pub label: String,
    /// Subject pseudonym, or [`MASKED`].
    pub subject: String,
    /// Visit pseudonym, or [`MASKED`].
    pub visit: String,
}

/// What a hidden repeat shows instead of a subject or visit pseudonym.
pub const MASKED: &str = "masked";

/// How a case is presented to the holder of an assignment: a hidden repeat gets a label of its
/// own (`M-` and six hex digits derived from the assignment id) and no subject or visit, so the
/// grader cannot tell which of their earlier cases it repeats. Everyone else sees the case.
pub fn presented(
    kind: AssignmentKind,
    assignment_id: Uuid,
    label: &str,
    subject: &str,
    visit: &str,
) -> Presented {
    if kind != AssignmentKind::Repeat {
        return Presented {
            label: label.to_owned(),
            subject: subject.to_owned(),
            visit: visit.to_owned(),
        };
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"readroom-repeat/1")
        .chain_update(assignment_id.as_bytes())
        .finalize();
    Presented {
        label: format!("M-{}", hex::encode_upper(&digest[..3])),
        subject: MASKED.to_owned(),
        visit: MASKED.to_owned(),
    }
}

/// Optional view context a grade is made on.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The viewer's view state (JSON).
    pub render_state: Option<Value>,
    /// SHA-256 of the lossless frame the browser verified.
    pub lossless_sha256: Option<String>,
    /// Refuse a grade that covers what the worker never showed (see [`GradingError::Unviewed`]).
    pub require_viewed: bool,
}

impl Context {
    fn checked(&self) -> Result<(Option<String>, Option<String>), GradingError> {
        let render_state = match &self.render_state {
            None | Some(Value::Null) => None,
            Some(state) if state.is_object() => {
                let text = state.to_string();
                if text.len() > MAX_RENDER_STATE {
                    return Err(GradingError::BadRequest(format!(
                        "render_state is larger than {MAX_RENDER_STATE} bytes"
                    )));
                }
                Some(text)
            }
            Some(_) => {
                return Err(GradingError::BadRequest(
                    "render_state must be a JSON object".into(),
                ));
            }
        };
        let sha = match &self.lossless_sha256 {
            None => None,
            Some(sha) if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(sha.to_ascii_lowercase())
            }
            Some(_) => {
                return Err(GradingError::BadRequest(
                    "lossless_sha256 must be 64 hex digits".into(),
                ));
            }
        };
        Ok((render_state, sha))
    }
}

/// How long a grade naming a lossless frame waits for the worker's record of it (a worker
/// process forwards its events asynchronously; the grader may be quicker).
const EVIDENCE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Checks that `sha256`, if any, is a lossless frame a worker recorded sending to `user` for
/// `case`. Only while the user has a stream open on the case can a record still be on its way
/// (a worker reports lossless frames before the end of the session); then it waits up to
/// [`EVIDENCE_WAIT`] for it.
pub async fn check_evidence(
    db: &Db,
    user: Uuid,
    case: Uuid,
    sha256: Option<&str>,
) -> Result<(), GradingError> {
    let Some(sha256) = sha256 else {
        return Ok(());
    };
    let deadline = tokio::time::Instant::now() + EVIDENCE_WAIT;
    loop {
        // Asked before the frames: a stream found closed had reported all its frames already.
        let open = db.has_live_stream_on(user, case).await?;
        if !db
            .lossless_frames_sent(user, case, sha256)
            .await?
            .is_empty()
        {
            return Ok(());
        }
        if !open || tokio::time::Instant::now() >= deadline {
            return Err(GradingError::Unattested);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn check_values(form: &Form, values: &Value, mode: Mode) -> Result<Values, GradingError> {
    validate(form, values, mode).map_err(GradingError::Invalid)
}

fn check_reason(reason: &str) -> Result<String, GradingError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(GradingError::BadRequest(
            "reason is required: say why the grade is amended".into(),
        ));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(GradingError::BadRequest(format!(
            "reason is longer than {MAX_REASON} characters"
        )));
    }
    Ok(reason.to_owned())
}

/// Saves a draft of the caller's active assignment (values checked in draft mode: partial is
/// fine, wrong is not). `revision` is the one the client last saw.
#[allow(clippy::too_many_arguments)] // the grading operations take the request's parts; a request struct is the next tidy-up
pub async fn save_draft(
    db: &Db,
    audit: &Audit,
    signed_in: &SignedIn,
    case: &Case,
    mine: Vec<Assignment>,
    values: &Value,
    revision: Option<i64>,
    context: &Context,
) -> Result<Draft, GradingError> {
    let assignment = pick_active(mine)?;
    if assignment.status == AssignmentStatus::Done {
        return Err(GradingError::Conflict(
            "this case's grade is already submitted; amend it instead".into(),
        ));
    }
    let study = db.study_by_id(case.study_id).await?;
    let loaded = current_form(db, &study).await?;
    let normalized = check_values(&loaded.form, values, Mode::Draft)?;
    let (render_state, sha) = context.checked()?;
    let draft = db
        .save_draft(
            assignment.id,
            loaded.stored.id,
            &normalized.to_json().to_string(),
            render_state.as_deref(),
            sha.as_deref(),
            revision,
        )
        .await?;
    audit
        .record(signed_in.event(
            Action::GradeDraftSaved,
            Outcome::Success,
            Some(case_target(case.id)),
            json!({ "assignment_id": assignment.id, "revision": draft.revision, "role": assignment.role.to_string() }),
        ))
        .await?;
    Ok(draft)
}

/// Whether a grade was made on images the grader was shown ([`viewing`]).
#[derive(Debug, Clone, Default)]
pub struct Viewing {
    /// The `viewing` member of the submission's audit event (graded eyes, exams, views shown),
    /// from which `graded_without_viewing` anomalies are computed.
    pub details: Value,
    /// One warning per graded eye and per fundus/OCT exam of a graded eye never shown.
    pub warnings: Vec<ViewWarning>,
    /// A viewing session of this case by the grader was still open: what it showed is reported
    /// when it ends, so nothing is concluded yet (no warnings; the anomaly rule counts it later).
    pub pending: bool,
}

/// A warning that a grade covers something the grader was not shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ViewWarning {
    /// `graded_without_viewing`.
    pub code: String,
    /// The eye never shown (`OD`/`OS`), or the eye of the exam.
    pub eye: Option<String>,
    /// The exam never shown (`oct-os`); none when the warning is about the whole eye.
    pub exam: Option<String>,
    /// That exam's kind (`fundus`, `oct`), for naming it to the grader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// In words.
    pub message: String,
}

/// How long after its start a stream whose report never came is still taken as open.
const OPEN_STREAM_SECS: i64 = 12 * 3600;

/// Compares what a grade covers (its graded eyes, and their fundus/OCT exams) with the views the
/// streaming worker recorded for this user and case: those of ended sessions
/// (`stream_sessions`; views such as `single:fundus-od`) and those of open ones, which workers
/// report as they are shown (`live_views`). Only a stream that has reported nothing yet on this
/// case (just started, or a worker from before live views) leaves the result `pending`.
pub async fn viewing(
    db: &Db,
    user: Uuid,
    case: &Case,
    assignment: &Assignment,
    values: &Values,
) -> Result<Viewing, GradingError> {
    use readroom_domain::grading::coverage::{ExamRef, coverage, graded_eyes, viewed_exams};
    let bundle = db.bundle_by_id(case.bundle_id).await?;
    let exams: Vec<ExamRef> = match bundle.summary.get("exams") {
        Some(list) => serde_json::from_value::<Vec<ExamRef>>(list.clone())
            .map_err(|err| GradingError::Corrupt(format!("bundle summary exams: {err}")))?,
        None => Vec::new(),
    }
    .into_iter()
    .filter(|e| e.kind != "measurement")
    .collect();
    let sessions: Vec<crate::db::streams::StreamSession> = db
        .stream_sessions_of_case(case.id)
        .await?
        .into_iter()
        .filter(|s| s.user_id == user)
        .collect();
    let mut viewed = std::collections::BTreeSet::new();
    for session in &sessions {
        let views: Vec<String> = serde_json::from_str(&session.views).map_err(|err| {
            GradingError::Corrupt(format!("stream session {} views: {err}", session.id))
        })?;
        viewed.extend(viewed_exams(&views, &exams));
    }
    // Views of streams still open, as the workers report them.
    let live = db.live_views(user, case.id).await?;
    let live_labels: Vec<String> = live.iter().map(|(_, view)| view.clone()).collect();
    viewed.extend(viewed_exams(&live_labels, &exams));
    // Streams of this case (addressed by its id, or a repeat's) started and not reported yet:
    // neither ended nor heard from.
    let mut reported: std::collections::HashSet<String> =
        sessions.iter().map(|s| s.id.to_string()).collect();
    reported.extend(live.iter().map(|(stream, _)| stream.to_string()));
    let now = readroom_domain::audit::parse_timestamp(&crate::audit::timestamp(
        time::OffsetDateTime::now_utc(),
    ));
    let mut pending = false;
    let mut targets = vec![case_target(case.id)];
    if assignment.kind == AssignmentKind::Repeat {
        targets.push(case_target(assignment.id));
    }
    for target in targets {
        let started = db
            .search_audit(
                &crate::db::AuditFilter {
                    actor: Some(user.to_string()),
                    target: Some(target),
                    action: Some(Action::StreamStarted.as_str().to_owned()),
                    ..Default::default()
                },
                1000,
            )
            .await?;
        pending |= started.iter().any(|row| {
            let recent = match (now, readroom_domain::audit::parse_timestamp(&row.at)) {
                (Some(now), Some(at)) => now - at <= OPEN_STREAM_SECS * 1_000_000,
                _ => true,
            };
            let id = serde_json::from_str::<Value>(&row.details)
                .ok()
                .and_then(|d| {
                    d.get("stream_id")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
            recent && id.is_some_and(|id| !reported.contains(&id))
        });
    }
    // A connection open on this case now, however it got there (started on it, or moved to it
    // with `open_case`), that has not reported a view of it yet.
    pending |= db
        .live_streams_of_user_on(user, case.id)
        .await?
        .iter()
        .any(|stream| !reported.contains(&stream.to_string()));
    let graded = graded_eyes(values);
    let missing = coverage(&graded, &exams, &viewed);
    let mut warnings = Vec::new();
    if !pending {
        for eye in &missing.unviewed_eyes {
            warnings.push(ViewWarning {
                code: "graded_without_viewing".into(),
                eye: Some(eye.as_str().to_owned()),
                exam: None,
                kind: None,
                message: format!(
                    "values were given for {} but no image of that eye was shown",
                    eye.as_str()
                ),
            });
        }
        for exam in &missing.unviewed_exams {
            let found = exams.iter().find(|e| &e.id == exam);
            warnings.push(ViewWarning {
                code: "graded_without_viewing".into(),
                eye: found.and_then(|e| e.eye.clone()),
                exam: Some(exam.clone()),
                kind: found.map(|e| e.kind.clone()),
                message: format!("exam {exam} of a graded eye was never shown"),
            });
        }
    }
    let details = json!({
        "exams": exams,
        "graded_eyes": graded.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "viewed": viewed,
        "unviewed_eyes": missing.unviewed_eyes.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "unviewed_exams": missing.unviewed_exams,
        "pending": pending,
    });
    Ok(Viewing {
        details,
        warnings,
        pending,
    })
}

/// What a submission produced.
#[derive(Debug, Clone)]
pub enum Submitted {
    /// A grader's grade (and the adjudication it opened, if the grades disagree).
    Grade(Grade, Option<Box<Adjudication>>),
    /// An adjudicator's final grade.
    Adjudication(Adjudication),
}

/// Submits the caller's grade for a case: validated in submit mode, stored immutably with the
/// view it was made on. For an adjudicator, it resolves the open adjudication round.
#[allow(clippy::too_many_arguments)] // the grading operations take the request's parts; a request struct is the next tidy-up
pub async fn submit(
    db: &Db,
    audit: &Audit,
    signed_in: &SignedIn,
    case: &Case,
    mine: Vec<Assignment>,
    values: &Value,
    context: &Context,
    reason: Option<&str>,
) -> Result<(Submitted, Viewing), GradingError> {
    let assignment = pick_active(mine)?;
    if assignment.status == AssignmentStatus::Done {
        return Err(GradingError::Conflict(
            "a grade was already submitted for this case; submitted grades cannot be changed, amend it instead".into(),
        ));
    }
    let study = db.study_by_id(case.study_id).await?;
    let loaded = current_form(db, &study).await?;
    let normalized = check_values(&loaded.form, values, Mode::Submit)?;
    let (render_state, lossless_sha256) = context.checked()?;
    check_evidence(db, signed_in.user.id, case.id, lossless_sha256.as_deref()).await?;
    let reason = reason.map(check_reason).transpose()?;
    let viewed = viewing(db, signed_in.user.id, case, &assignment, &normalized).await?;
    if context.require_viewed && !viewed.pending && !viewed.warnings.is_empty() {
        return Err(GradingError::Unviewed(viewed.warnings));
    }
    let new = NewGrade {
        assignment_id: assignment.id,
        form_id: loaded.stored.id,
        grade_values: normalized.to_json().to_string(),
        render_state,
        lossless_sha256,
        reason,
    };
    if assignment.role == AssignmentRole::Adjudicator {
        let open = db
            .adjudications_of_case(case.id)
            .await?
            .into_iter()
            .rfind(|a| a.status == AdjudicationStatus::Open)
            .ok_or_else(|| GradingError::Conflict("this case has no open adjudication".into()))?;
        let resolved = match db.resolve_adjudication(open.id, &assignment, &new).await {
            Ok(resolved) => resolved,
            Err(DbError::NotFound) => {
                return Err(GradingError::Conflict(
                    "this adjudication was already resolved".into(),
                ));
            }
            Err(err) => return Err(err.into()),
        };
        audit
            .record(signed_in.event(
                Action::AdjudicationSubmitted,
                Outcome::Success,
                Some(case_target(case.id)),
                json!({
                    "adjudication_id": resolved.id, "round": resolved.round,
                    "lossless_sha256": resolved.lossless_sha256,
                    "viewing": viewed.details,
                }),
            ))
            .await?;
        return Ok((Submitted::Adjudication(resolved), viewed));
    }
    let grade = db.submit_grade(&assignment, &new).await?;
    audit
        .record(signed_in.event(
            Action::GradeSubmitted,
            Outcome::Success,
            Some(case_target(case.id)),
            json!({
                "grade_id": grade.id, "assignment_id": assignment.id, "version": grade.version,
                "kind": assignment.kind.as_str(), "duration_ms": grade.duration_ms,
                "lossless_sha256": grade.lossless_sha256,
                "viewing": viewed.details,
            }),
        ))
        .await?;
    let opened = route_disagreement(db, audit, case, &loaded.form).await?;
    Ok((Submitted::Grade(grade, opened.map(Box::new)), viewed))
}

/// Amends the caller's submitted grade: a new version with a reason; the earlier versions stay.
#[allow(clippy::too_many_arguments)] // the grading operations take the request's parts; a request struct is the next tidy-up
pub async fn amend(
    db: &Db,
    audit: &Audit,
    signed_in: &SignedIn,
    case: &Case,
    mine: Vec<Assignment>,
    values: &Value,
    context: &Context,
    reason: &str,
) -> Result<(Grade, Option<Adjudication>), GradingError> {
    let assignment = pick_active(mine)?;
    if assignment.role != AssignmentRole::Grader {
        return Err(GradingError::Conflict(
            "adjudications are final; they cannot be amended".into(),
        ));
    }
    if assignment.status != AssignmentStatus::Done {
        return Err(GradingError::Conflict(
            "no grade was submitted for this case yet; submit it first".into(),
        ));
    }
    // Once the grades went to adjudication, the adjudicator decides: an amendment would change
    // a grade the adjudicator compared (open round) or quietly contradict the final one.
    if assignment.kind == AssignmentKind::Primary {
        let rounds = db.adjudications_of_case(case.id).await?;
        if rounds
            .iter()
            .any(|r| r.status == AdjudicationStatus::Resolved)
        {
            return Err(GradingError::Conflict(
                "this case was adjudicated: its final grade is the adjudicator's, and grades \
                 can no longer be amended; ask the study coordinator if the final grade is wrong"
                    .into(),
            ));
        }
        if rounds.iter().any(|r| r.status == AdjudicationStatus::Open) {
            return Err(GradingError::Conflict(
                "this case is with the adjudicator, who compares the grades as submitted; \
                 grades cannot be amended while it is adjudicated"
                    .into(),
            ));
        }
    }
    let study = db.study_by_id(case.study_id).await?;
    let loaded = current_form(db, &study).await?;
    let normalized = check_values(&loaded.form, values, Mode::Submit)?;
    let (render_state, lossless_sha256) = context.checked()?;
    check_evidence(db, signed_in.user.id, case.id, lossless_sha256.as_deref()).await?;
    let reason = check_reason(reason)?;
    let grade = db
        .amend_grade(
            &assignment,
            &NewGrade {
                assignment_id: assignment.id,
                form_id: loaded.stored.id,
                grade_values: normalized.to_json().to_string(),
                render_state,
                lossless_sha256,
                reason: Some(reason),
            },
        )
        .await?;
    audit
        .record(signed_in.event(
            Action::GradeAmended,
            Outcome::Success,
            Some(case_target(case.id)),
            json!({ "grade_id": grade.id, "assignment_id": assignment.id, "version": grade.version }),
        ))
        .await?;
    let opened = route_disagreement(db, audit, case, &loaded.form).await?;
    Ok((grade, opened))
}

/// Values of a stored grade, re-validated against its form (stored values always validate).
fn stored_values(form: &Form, values: &serde_json::Map<String, Value>) -> Option<Values> {
    validate(form, &Value::Object(values.clone()), Mode::Submit).ok()
}

/// After a submission or amendment: once the case has two primary grades, compares the first
/// two; if they disagree and no open round covers them, opens an adjudication round and assigns
/// it to the study's least loaded adjudicator (none: it waits, visible on the progress page).
pub async fn route_disagreement(
    db: &Db,
    audit: &Audit,
    case: &Case,
    form: &Form,
) -> Result<Option<Adjudication>, GradingError> {
    let assignments = db.assignments_for_case(case.id).await?;
    let grades = db.grades_of_case(case.id).await?;
    let latest = latest_primary(&grades, &assignments);
    let [a, b, ..] = latest.as_slice() else {
        return Ok(None);
    };
    let (Some(values_a), Some(values_b)) = (
        stored_values(form, &a.values),
        stored_values(form, &b.values),
    ) else {
        return Ok(None);
    };
    let found = disagreements(form, &values_a, &values_b);
    if found.is_empty() {
        return Ok(None);
    }
    let compared = [a.id, b.id];
    let rounds = db.adjudications_of_case(case.id).await?;
    if rounds
        .iter()
        .any(|r| r.status == AdjudicationStatus::Open || r.grade_ids == compared)
    {
        return Ok(None);
    }
    let grade_ids = json!(compared).to_string();
    let disagreements_json =
        serde_json::to_string(&found).map_err(|err| GradingError::Corrupt(err.to_string()))?;
    let opened = match db
        .open_adjudication(case.id, &disagreements_json, &grade_ids)
        .await
    {
        Ok(opened) => opened,
        // A concurrent submission of the other grade opened this round first (the round
        // number is unique per case): the case is routed, and this submission stands.
        Err(DbError::Conflict { .. }) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let adjudicator = least_loaded_adjudicator(db, case, &assignments).await?;
    let mut details = json!({
        "adjudication_id": opened.id, "round": opened.round,
        "fields": found.iter().map(|d| match d.eye {
            Some(eye) => format!("{}:{}", d.field, eye.as_str()),
            None => d.field.clone(),
        }).collect::<Vec<_>>(),
    });
    if let Some(user) = adjudicator {
        let assignment = match db
            .assign_kind(case.id, user, AssignmentRole::Adjudicator, None)
            .await
        {
            Ok(assignment) => Some(assignment),
            // Already this case's adjudicator in an earlier round: reopen that assignment.
            Err(DbError::Conflict { .. }) => None,
            Err(err) => return Err(err.into()),
        };
        details["adjudicator"] = json!(user);
        if let Some(assignment) = &assignment {
            details["assignment_id"] = json!(assignment.id);
        } else {
            db.reopen_assignment(case.id, user, AssignmentRole::Adjudicator)
                .await?;
        }
    }
    audit
        .record(event_by(
            Action::AssignmentCreated,
            Outcome::Success,
            None,
            Some(case_target(case.id)),
            None,
            {
                details["reason"] = json!("disagreement");
                details["role"] = json!("adjudicator");
                details
            },
        ))
        .await?;
    Ok(Some(opened))
}

/// The study's adjudicator with the fewest unfinished adjudications, never one of the case's
/// graders.
async fn least_loaded_adjudicator(
    db: &Db,
    case: &Case,
    assignments: &[Assignment],
) -> Result<Option<Uuid>, GradingError> {
    let graders: Vec<Uuid> = assignments
        .iter()
        .filter(|a| a.role == AssignmentRole::Grader)
        .map(|a| a.user_id)
        .collect();
    let candidates = db
        .users_with_role_in_study(Role::Adjudicator, case.study_id)
        .await?;
    let mut best: Option<(i64, String, Uuid)> = None;
    for user in candidates.into_iter().filter(|u| !graders.contains(&u.id)) {
        let load = db
            .open_adjudications_of_user(user.id, case.study_id)
            .await?;
        let key = (load, user.username, user.id);
        if best.as_ref().is_none_or(|b| (key.0, &key.1) < (b.0, &b.1)) {
            best = Some(key);
        }
    }
    Ok(best.map(|(_, _, id)| id))
}

/// What a coordinator asks for when forming a batch.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    /// Unique name in the study.
    pub name: String,
    /// The cases; empty means every case of the study not yet in a batch.
    pub cases: Vec<Uuid>,
    /// The graders (ids); empty means every grader of the study.
    pub graders: Vec<Uuid>,
    /// Graders per case.
    pub per_case: u32,
    /// Fraction of each grader's cases re-served later as hidden repeats.
    pub repeat_fraction: f64,
    /// Due date.
    pub due_at: Option<time::OffsetDateTime>,
}

/// Forms a batch: plans balanced assignments (each case `per_case` distinct graders, counting
/// existing assignments; hidden repeats), stores them in one transaction, and audits the batch
/// and every assignment.
pub async fn create_batch(
    db: &Db,
    audit: &Audit,
    signed_in: Option<&SignedIn>,
    study: &Study,
    request: &BatchRequest,
) -> Result<(Batch, Vec<Assignment>), GradingError> {
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(GradingError::Declined(Declined::bad(
            "batch_name",
            "name must be 1-100 characters",
            json!({}),
        )));
    }
    let existing = db.assignments_for_study(study.id).await?;
    let all_cases = db.list_cases(study.id).await?;
    let cases: Vec<CaseRef> = if request.cases.is_empty() {
        all_cases
            .iter()
            .filter(|c| {
                !existing
                    .iter()
                    .any(|a| a.case_id == c.case.id && a.batch_id.is_some())
            })
            .map(|c| CaseRef {
                id: c.case.id.to_string(),
                subject: c.subject.clone(),
            })
            .collect()
    } else {
        let mut refs = Vec::new();
        for id in &request.cases {
            let found = all_cases.iter().find(|c| c.case.id == *id).ok_or_else(|| {
                GradingError::BadRequest(format!("case {id} is not in study {}", study.code))
            })?;
            refs.push(CaseRef {
                id: found.case.id.to_string(),
                subject: found.subject.clone(),
            });
        }
        refs
    };
    if cases.is_empty() {
        return Err(GradingError::Declined(Declined::bad(
            "no_cases_to_batch",
            "no cases to batch: every case of the study is already in a batch",
            json!({}),
        )));
    }
    let study_graders = db.users_with_role_in_study(Role::Grader, study.id).await?;
    let graders: Vec<&crate::db::User> = if request.graders.is_empty() {
        study_graders.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for id in &request.graders {
            let user = study_graders.iter().find(|u| u.id == *id).ok_or_else(|| {
                GradingError::Declined(Declined::bad(
                    "not_a_grader",
                    format!(
                        "user {id} does not hold the grader role in study {}",
                        study.code
                    ),
                    json!({ "study": study.code.as_str() }),
                ))
            })?;
            chosen.push(user);
        }
        chosen
    };
    let open_load = |user: Uuid| {
        existing
            .iter()
            .filter(|a| a.user_id == user && a.status != AssignmentStatus::Done)
            .count() as u32
    };
    let loads: Vec<GraderLoad> = graders
        .iter()
        .map(|u| GraderLoad {
            id: u.id.to_string(),
            open: open_load(u.id),
            available: true,
        })
        .collect();
    let known: Vec<(String, String)> = existing
        .iter()
        .filter(|a| a.is_primary_grading())
        .filter(|a| graders.iter().any(|g| g.id == a.user_id))
        .map(|a| (a.case_id.to_string(), a.user_id.to_string()))
        .collect();
    let seed = u64::from_le_bytes(study.id.as_bytes()[8..16].try_into().unwrap_or([0; 8]));
    let plan = assignment::plan(
        &cases,
        &loads,
        &known,
        &PlanOptions {
            per_case: request.per_case,
            repeat_fraction: request.repeat_fraction,
            seed: seed ^ (existing.len() as u64),
        },
    )
    .map_err(|err| GradingError::BadRequest(err.to_string()))?;
    let planned: Vec<(Uuid, Uuid, AssignmentKind)> = plan
        .assignments
        .iter()
        .filter_map(|p| {
            Some((
                Uuid::parse_str(&p.case).ok()?,
                Uuid::parse_str(&p.grader).ok()?,
                if p.repeat {
                    AssignmentKind::Repeat
                } else {
                    AssignmentKind::Primary
                },
            ))
        })
        .collect();
    if planned.is_empty() {
        return Err(GradingError::Declined(Declined::bad(
            "nothing_to_assign",
            format!(
                "nothing to assign: every case already has {} graders (graders per case counts \
                 the graders a case already has)",
                request.per_case
            ),
            json!({ "per_case": request.per_case }),
        )));
    }
    let batch = NewBatch {
        study_id: study.id,
        name: name.to_owned(),
        per_case: i32::try_from(request.per_case).unwrap_or(i32::MAX),
        repeat_fraction: request.repeat_fraction,
        due_at: request.due_at,
        created_by: signed_in.map(|s| s.user.id),
    };
    let (batch, created) = match db.create_batch(&batch, &planned).await {
        Ok(done) => done,
        Err(DbError::Conflict { .. }) => {
            return Err(GradingError::Declined(Declined::conflict(
                "batch_exists",
                format!(
                    "study {} already has a batch named {name:?} or one of these assignments",
                    study.code
                ),
                json!({ "name": name }),
            )));
        }
        Err(err) => return Err(err.into()),
    };
    let event = |action: Action, target: String, details: Value| match signed_in {
        Some(s) => s.event(action, Outcome::Success, Some(target), details),
        None => event_by(action, Outcome::Success, None, Some(target), None, details),
    };
    audit
        .record(event(
            Action::BatchCreated,
            study_target(study.code.as_str()),
            json!({
                "batch_id": batch.id, "name": batch.name, "cases": cases.len(),
                "assignments": created.len(), "per_case": request.per_case,
                "repeat_fraction": request.repeat_fraction,
            }),
        ))
        .await?;
    for assignment in &created {
        audit
            .record(event(
                Action::AssignmentCreated,
                case_target(assignment.case_id),
                json!({
                    "assignment_id": assignment.id, "assignee": assignment.user_id,
                    "role": "grader", "kind": assignment.kind.as_str(), "batch_id": batch.id,
                    "study": study.code.as_str(),
                }),
            ))
            .await?;
    }
    Ok((batch, created))
}

/// Moves an unfinished assignment to `to` (or, when `None`, to the least loaded grader of the
/// study not already on the case); audited as `assignment.reassigned`.
pub async fn reassign(
    db: &Db,
    audit: &Audit,
    signed_in: &SignedIn,
    study: &Study,
    assignment: &Assignment,
    to: Option<Uuid>,
) -> Result<Assignment, GradingError> {
    if assignment.status == AssignmentStatus::Done {
        return Err(GradingError::Declined(Declined::conflict(
            "assignment_done",
            "this assignment is done; its grade stays with its grader",
            json!({}),
        )));
    }
    let existing = db.assignments_for_study(study.id).await?;
    let role = Role::from(assignment.role);
    let holders = db.users_with_role_in_study(role, study.id).await?;
    let target = match to {
        Some(user) => {
            if !holders.iter().any(|u| u.id == user) {
                return Err(GradingError::Declined(Declined::bad(
                    "not_role_holder",
                    format!(
                        "that user does not hold the {role} role in study {}",
                        study.code
                    ),
                    json!({ "role": role.to_string(), "study": study.code.as_str() }),
                )));
            }
            if existing
                .iter()
                .any(|a| a.case_id == assignment.case_id && a.user_id == user)
            {
                return Err(GradingError::Declined(Declined::bad(
                    "already_assigned",
                    "that user is already assigned to this case",
                    json!({}),
                )));
            }
            user
        }
        None => {
            let loads: Vec<GraderLoad> = holders
                .iter()
                .map(|u| GraderLoad {
                    id: u.id.to_string(),
                    open: existing
                        .iter()
                        .filter(|a| a.user_id == u.id && a.status != AssignmentStatus::Done)
                        .count() as u32,
                    available: u.id != assignment.user_id,
                })
                .collect();
            let on_case: Vec<(String, String)> = existing
                .iter()
                .filter(|a| holders.iter().any(|u| u.id == a.user_id))
                .map(|a| (a.case_id.to_string(), a.user_id.to_string()))
                .collect();
            let picked = assignment::reassign(
                &assignment.case_id.to_string(),
                &assignment.user_id.to_string(),
                &loads,
                &on_case,
            )
            .map_err(|err| GradingError::Conflict(err.to_string()))?;
            Uuid::parse_str(&picked).map_err(|err| GradingError::Corrupt(err.to_string()))?
        }
    };
    let moved = match db.reassign(assignment.id, target).await {
        Ok(moved) => moved,
        Err(DbError::NotFound) => {
            return Err(GradingError::Declined(Declined::conflict(
                "assignment_just_done",
                "this assignment was just completed",
                json!({}),
            )));
        }
        Err(err) => return Err(err.into()),
    };
    audit
        .record(signed_in.event(
            Action::AssignmentReassigned,
            Outcome::Success,
            Some(case_target(assignment.case_id)),
            json!({ "assignment_id": assignment.id, "from": assignment.user_id, "to": target }),
        ))
        .await?;
    Ok(moved)
}
