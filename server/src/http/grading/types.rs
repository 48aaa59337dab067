//! The grading routes' request and response bodies (their JSON is the API: see
//! `docs/grading-api.md`; `utoipa` derives the OpenAPI schemas from these types).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

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
    pub warnings: Vec<crate::grading::ViewWarning>,
    /// `complete`, `incomplete` (see `warnings`) or `pending` (a viewing session has not
    /// reported what it showed yet; the audit's anomaly flags settle it when its report arrives).
    pub viewing: String,
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

/// `POST /api/studies/{code}/assignments/{id}/reassign` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignRequest {
    /// The new assignee; absent: the least loaded other holder of the role.
    #[serde(default)]
    pub username: Option<String>,
}

/// `?batch=` of the statistics routes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ScopeQuery {
    /// Limit the numbers to one batch.
    #[serde(default)]
    pub batch: Option<Uuid>,
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
