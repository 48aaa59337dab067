//! Grading: study forms, batches, drafts, grades (immutable versions) and adjudications.
//!
//! The rules (form validation, disagreement, kappa, assignment planning) are pure code in
//! [`readroom_domain`]; this module stores and reads what they decide.

use time::OffsetDateTime;
use uuid::Uuid;

pub use readroom_domain::grading::records::{Adjudication, AdjudicationStatus, Batch, Grade};

use super::model::{Assignment, AssignmentKind, AssignmentRole, AssignmentRow, AssignmentStatus};
use super::stored::{StoredIds, StoredJson, StoredObject};
use super::{Db, DbError, new_id, now, to_micros, with_pool};

/// One version of a study's grading form.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StudyForm {
    /// Id (grades point at it).
    pub id: Uuid,
    /// The study.
    pub study_id: Uuid,
    /// 1, 2, … (the highest is the current form).
    pub version: i32,
    /// The form (`readroom-form/1` JSON).
    pub definition: String,
    /// SHA-256 of its canonical JSON.
    pub fingerprint: String,
    /// When it was set.
    pub created_at: OffsetDateTime,
    /// Who set it (None: the system).
    pub created_by: Option<Uuid>,
}

/// A [`Batch`] as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct BatchRow {
    id: Uuid,
    study_id: Uuid,
    name: String,
    per_case: i32,
    repeat_fraction: f64,
    due_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    created_by: Option<Uuid>,
}

impl From<BatchRow> for Batch {
    fn from(row: BatchRow) -> Batch {
        Batch {
            id: row.id,
            study_id: row.study_id,
            name: row.name,
            per_case: row.per_case,
            repeat_fraction: row.repeat_fraction,
            due_at: row.due_at,
            created_at: row.created_at,
            created_by: row.created_by,
        }
    }
}

/// What a new batch holds (its id and creation time are set when it is stored).
#[derive(Debug, Clone)]
pub struct NewBatch {
    /// The study.
    pub study_id: Uuid,
    /// Name, unique in the study.
    pub name: String,
    /// Graders per case.
    pub per_case: i32,
    /// Fraction of hidden repeats.
    pub repeat_fraction: f64,
    /// Due date.
    pub due_at: Option<OffsetDateTime>,
    /// Who creates it.
    pub created_by: Option<Uuid>,
}

/// The open draft of an assignment.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Draft {
    /// The assignment.
    pub assignment_id: Uuid,
    /// The form version the draft follows.
    pub form_id: Uuid,
    /// Values (JSON object).
    pub grade_values: StoredObject,
    /// Increments at every save; a save naming an older revision is refused.
    pub revision: i64,
    /// The view state when last saved (JSON).
    pub render_state: Option<String>,
    /// The lossless frame's SHA-256 when last saved.
    pub lossless_sha256: Option<String>,
    /// When the grader started (first save).
    pub started_at: OffsetDateTime,
    /// Last save.
    pub updated_at: OffsetDateTime,
}

/// A [`Grade`] as stored: its JSON columns are parsed on reading ([`super::stored`]).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct GradeRow {
    id: Uuid,
    assignment_id: Uuid,
    case_id: Uuid,
    grader_id: Uuid,
    form_id: Uuid,
    version: i32,
    grade_values: StoredObject,
    render_state: Option<StoredJson>,
    lossless_sha256: Option<String>,
    reason: Option<String>,
    duration_ms: Option<i64>,
    submitted_at: OffsetDateTime,
}

impl From<GradeRow> for Grade {
    fn from(row: GradeRow) -> Grade {
        Grade {
            id: row.id,
            assignment_id: row.assignment_id,
            case_id: row.case_id,
            grader_id: row.grader_id,
            form_id: row.form_id,
            version: row.version,
            values: row.grade_values.0,
            render_state: row.render_state.map(|json| json.0),
            lossless_sha256: row.lossless_sha256,
            reason: row.reason,
            duration_ms: row.duration_ms,
            submitted_at: row.submitted_at,
        }
    }
}

/// What a new grade version holds.
#[derive(Debug, Clone)]
pub struct NewGrade {
    /// The assignment.
    pub assignment_id: Uuid,
    /// The form version.
    pub form_id: Uuid,
    /// Values (normalized JSON).
    pub grade_values: String,
    /// View state (JSON).
    pub render_state: Option<String>,
    /// Lossless frame hash.
    pub lossless_sha256: Option<String>,
    /// Amendment reason.
    pub reason: Option<String>,
}

/// An [`Adjudication`] round as stored: its JSON columns are parsed on reading.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct AdjudicationRow {
    id: Uuid,
    case_id: Uuid,
    round: i32,
    disagreements: StoredJson,
    grade_ids: StoredIds,
    #[sqlx(try_from = "String")]
    status: AdjudicationStatus,
    created_at: OffsetDateTime,
    adjudicator_id: Option<Uuid>,
    form_id: Option<Uuid>,
    grade_values: Option<StoredObject>,
    render_state: Option<StoredJson>,
    lossless_sha256: Option<String>,
    reason: Option<String>,
    resolved_at: Option<OffsetDateTime>,
}

impl From<AdjudicationRow> for Adjudication {
    fn from(row: AdjudicationRow) -> Adjudication {
        Adjudication {
            id: row.id,
            case_id: row.case_id,
            round: row.round,
            disagreements: row.disagreements.0,
            grade_ids: row.grade_ids.0,
            status: row.status,
            created_at: row.created_at,
            adjudicator_id: row.adjudicator_id,
            form_id: row.form_id,
            values: row.grade_values.map(|object| object.0),
            render_state: row.render_state.map(|json| json.0),
            lossless_sha256: row.lossless_sha256,
            reason: row.reason,
            resolved_at: row.resolved_at,
        }
    }
}

/// Why a draft save or submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum GradeWriteError {
    /// The draft changed since the revision the client saw.
    #[error("the draft was saved elsewhere (now revision {current}); reload it before saving")]
    StaleDraft {
        /// The stored revision.
        current: i64,
    },
    /// A grade was already submitted for this assignment.
    #[error(
        "a grade was already submitted for this case; submitted grades cannot be changed, amend it instead"
    )]
    AlreadySubmitted,
    /// Nothing was submitted yet (amending).
    #[error("no grade was submitted for this case yet")]
    NotSubmitted,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for GradeWriteError {
    fn from(err: sqlx::Error) -> GradeWriteError {
        GradeWriteError::Db(err.into())
    }
}

const CURRENT_FORM: &str = "SELECT id, study_id, version, definition, fingerprint, created_at, \
     created_by FROM study_forms WHERE study_id = $1 ORDER BY version DESC LIMIT 1";
const FORM_BY_ID: &str = "SELECT id, study_id, version, definition, fingerprint, created_at, \
     created_by FROM study_forms WHERE id = $1";
const INSERT_FORM: &str = "INSERT INTO study_forms \
     (id, study_id, version, definition, fingerprint, created_at, created_by) \
     SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6 FROM study_forms WHERE study_id = $2 \
     RETURNING id, study_id, version, definition, fingerprint, created_at, created_by";

const INSERT_BATCH: &str = "INSERT INTO batches \
     (id, study_id, name, per_case, repeat_fraction, due_at, created_at, created_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     RETURNING id, study_id, name, per_case, repeat_fraction, due_at, created_at, created_by";
const BATCHES_OF_STUDY: &str = "SELECT id, study_id, name, per_case, repeat_fraction, due_at, \
     created_at, created_by FROM batches WHERE study_id = $1 ORDER BY created_at, id";
const INSERT_BATCH_ASSIGNMENT: &str = "INSERT INTO assignments \
     (id, case_id, user_id, role, assigned_at, due_at, status, batch_id, kind) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     RETURNING id, case_id, user_id, role, assigned_at, due_at, status, batch_id, kind";
const REASSIGN: &str = "UPDATE assignments SET user_id = $2, assigned_at = $3 \
     WHERE id = $1 AND status <> 'done' \
     RETURNING id, case_id, user_id, role, assigned_at, due_at, status, batch_id, kind";
const SET_STATUS: &str = "UPDATE assignments SET status = $2 WHERE id = $1 AND status <> 'done'";

const REOPEN_ASSIGNMENT: &str = "UPDATE assignments SET status = 'assigned' \
     WHERE case_id = $1 AND user_id = $2 AND role = $3 AND kind = 'primary'";
const DRAFT_BY_ASSIGNMENT: &str = "SELECT assignment_id, form_id, grade_values, revision, \
     render_state, lossless_sha256, started_at, updated_at FROM grade_drafts WHERE assignment_id = $1";
const INSERT_DRAFT: &str = "INSERT INTO grade_drafts \
     (assignment_id, form_id, grade_values, revision, render_state, lossless_sha256, started_at, updated_at) \
     VALUES ($1, $2, $3, 1, $4, $5, $6, $6) ON CONFLICT (assignment_id) DO NOTHING \
     RETURNING assignment_id, form_id, grade_values, revision, render_state, lossless_sha256, \
     started_at, updated_at";
const UPDATE_DRAFT: &str = "UPDATE grade_drafts SET form_id = $2, grade_values = $3, \
     revision = revision + 1, render_state = $4, lossless_sha256 = $5, updated_at = $6 \
     WHERE assignment_id = $1 AND revision = $7 \
     RETURNING assignment_id, form_id, grade_values, revision, render_state, lossless_sha256, \
     started_at, updated_at";
const DELETE_DRAFT: &str = "DELETE FROM grade_drafts WHERE assignment_id = $1";
const DRAFT_REVISION: &str = "SELECT revision FROM grade_drafts WHERE assignment_id = $1";

const INSERT_GRADE: &str = "INSERT INTO grades (id, assignment_id, case_id, grader_id, form_id, \
     version, grade_values, render_state, lossless_sha256, reason, duration_ms, submitted_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     RETURNING id, assignment_id, case_id, grader_id, form_id, version, grade_values, \
     render_state, lossless_sha256, reason, duration_ms, submitted_at";
const LATEST_VERSION: &str =
    "SELECT COALESCE(MAX(version), 0) FROM grades WHERE assignment_id = $1";
const GRADES_OF_ASSIGNMENT: &str = "SELECT id, assignment_id, case_id, grader_id, form_id, version, \
     grade_values, render_state, lossless_sha256, reason, duration_ms, submitted_at \
     FROM grades WHERE assignment_id = $1 ORDER BY version";
const GRADES_OF_CASE: &str = "SELECT id, assignment_id, case_id, grader_id, form_id, version, \
     grade_values, render_state, lossless_sha256, reason, duration_ms, submitted_at \
     FROM grades WHERE case_id = $1 ORDER BY submitted_at, version";
const GRADE_BY_ID: &str = "SELECT id, assignment_id, case_id, grader_id, form_id, version, \
     grade_values, render_state, lossless_sha256, reason, duration_ms, submitted_at \
     FROM grades WHERE id = $1";
const ADJUDICATION_BY_ID: &str = "SELECT id, case_id, round, disagreements, grade_ids, status, \
     created_at, adjudicator_id, form_id, grade_values, render_state, lossless_sha256, reason, \
     resolved_at FROM adjudications WHERE id = $1";
const GRADES_OF_STUDY: &str = "SELECT g.id, g.assignment_id, g.case_id, g.grader_id, g.form_id, \
     g.version, g.grade_values, g.render_state, g.lossless_sha256, g.reason, g.duration_ms, \
     g.submitted_at FROM grades g JOIN cases c ON c.id = g.case_id WHERE c.study_id = $1 \
     ORDER BY g.case_id, g.submitted_at, g.version";
const COMPLETE_ASSIGNMENT: &str =
    "UPDATE assignments SET status = 'done' WHERE id = $1 AND status <> 'done'";

const INSERT_ADJUDICATION: &str = "INSERT INTO adjudications \
     (id, case_id, round, disagreements, grade_ids, status, created_at) \
     SELECT $1, $2, COALESCE(MAX(round), 0) + 1, $3, $4, 'open', $5 FROM adjudications WHERE case_id = $2 \
     RETURNING id, case_id, round, disagreements, grade_ids, status, created_at, adjudicator_id, \
     form_id, grade_values, render_state, lossless_sha256, reason, resolved_at";
const ADJUDICATIONS_OF_CASE: &str = "SELECT id, case_id, round, disagreements, grade_ids, status, \
     created_at, adjudicator_id, form_id, grade_values, render_state, lossless_sha256, reason, \
     resolved_at FROM adjudications WHERE case_id = $1 ORDER BY round";
const ADJUDICATIONS_OF_STUDY: &str = "SELECT a.id, a.case_id, a.round, a.disagreements, \
     a.grade_ids, a.status, a.created_at, a.adjudicator_id, a.form_id, a.grade_values, \
     a.render_state, a.lossless_sha256, a.reason, a.resolved_at \
     FROM adjudications a JOIN cases c ON c.id = a.case_id WHERE c.study_id = $1 \
     ORDER BY a.case_id, a.round";
const RESOLVE_ADJUDICATION: &str = "UPDATE adjudications SET status = 'resolved', \
     adjudicator_id = $2, form_id = $3, grade_values = $4, render_state = $5, \
     lossless_sha256 = $6, reason = $7, resolved_at = $8 WHERE id = $1 AND status = 'open' \
     RETURNING id, case_id, round, disagreements, grade_ids, status, created_at, adjudicator_id, \
     form_id, grade_values, render_state, lossless_sha256, reason, resolved_at";

impl Db {
    /// The study's current form (highest version), or [`DbError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn current_form(&self, study_id: Uuid) -> Result<StudyForm, DbError> {
        let form = with_pool!(self, pool => {
            sqlx::query_as::<_, StudyForm>(CURRENT_FORM).bind(study_id).fetch_one(pool).await?
        });
        Ok(form)
    }

    /// A form version by id.
    #[tracing::instrument(skip_all)]
    pub async fn form_by_id(&self, form_id: Uuid) -> Result<StudyForm, DbError> {
        let form = with_pool!(self, pool => {
            sqlx::query_as::<_, StudyForm>(FORM_BY_ID).bind(form_id).fetch_one(pool).await?
        });
        Ok(form)
    }

    /// Sets a new version of the study's form (the version number is the next one).
    #[tracing::instrument(skip_all)]
    pub async fn set_form(
        &self,
        study_id: Uuid,
        definition: &str,
        fingerprint: &str,
        by: Option<Uuid>,
    ) -> Result<StudyForm, DbError> {
        let form = with_pool!(self, pool => {
            sqlx::query_as::<_, StudyForm>(INSERT_FORM)
                .bind(new_id())
                .bind(study_id)
                .bind(definition)
                .bind(fingerprint)
                .bind(now())
                .bind(by)
                .fetch_one(pool)
                .await?
        });
        Ok(form)
    }

    /// Creates a batch and its assignments in one transaction: `(case, user, kind)` triples,
    /// all as graders with the batch's due date.
    #[tracing::instrument(skip_all, fields(assignments = planned.len()))]
    pub async fn create_batch(
        &self,
        batch: &NewBatch,
        planned: &[(Uuid, Uuid, AssignmentKind)],
    ) -> Result<(Batch, Vec<Assignment>), DbError> {
        let created_at = now();
        let due_at = batch.due_at.map(to_micros);
        let result = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let stored = Batch::from(sqlx::query_as::<_, BatchRow>(INSERT_BATCH)
                .bind(new_id())
                .bind(batch.study_id)
                .bind(&batch.name)
                .bind(batch.per_case)
                .bind(batch.repeat_fraction)
                .bind(due_at)
                .bind(created_at)
                .bind(batch.created_by)
                .fetch_one(&mut *tx).await?);
            let mut assignments = Vec::with_capacity(planned.len());
            for (case_id, user_id, kind) in planned {
                let assignment = Assignment::from(sqlx::query_as::<_, AssignmentRow>(INSERT_BATCH_ASSIGNMENT)
                    .bind(new_id())
                    .bind(case_id)
                    .bind(user_id)
                    .bind(AssignmentRole::Grader.as_str())
                    .bind(created_at)
                    .bind(due_at)
                    .bind(AssignmentStatus::Assigned.as_str())
                    .bind(stored.id)
                    .bind(kind.as_str())
                    .fetch_one(&mut *tx).await?);
                assignments.push(assignment);
            }
            tx.commit().await?;
            (stored, assignments)
        });
        Ok(result)
    }

    /// The study's batches, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn batches_of_study(&self, study_id: Uuid) -> Result<Vec<Batch>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, BatchRow>(BATCHES_OF_STUDY).bind(study_id).fetch_all(pool).await?.into_iter().map(Batch::from).collect::<Vec<_>>()
        });
        Ok(rows)
    }

    /// Moves an unfinished assignment to another user; [`DbError::NotFound`] if it is done or
    /// does not exist. Its draft (the previous grader's work) is discarded.
    #[tracing::instrument(skip_all)]
    pub async fn reassign(&self, assignment_id: Uuid, to: Uuid) -> Result<Assignment, DbError> {
        let moved = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let moved = Assignment::from(sqlx::query_as::<_, AssignmentRow>(REASSIGN)
                .bind(assignment_id)
                .bind(to)
                .bind(now())
                .fetch_one(&mut *tx).await?);
            sqlx::query(DELETE_DRAFT).bind(assignment_id).execute(&mut *tx).await?;
            sqlx::query(SET_STATUS)
                .bind(assignment_id)
                .bind(AssignmentStatus::Assigned.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            moved
        });
        Ok(moved)
    }

    /// Opens a finished assignment again (an adjudicator's, for a new round on the same case).
    #[tracing::instrument(skip_all)]
    pub async fn reopen_assignment(
        &self,
        case_id: Uuid,
        user_id: Uuid,
        role: AssignmentRole,
    ) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query(REOPEN_ASSIGNMENT)
                .bind(case_id)
                .bind(user_id)
                .bind(role.as_str())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The draft of an assignment, if any.
    #[tracing::instrument(skip_all)]
    pub async fn draft(&self, assignment_id: Uuid) -> Result<Option<Draft>, DbError> {
        let found = with_pool!(self, pool => {
            sqlx::query_as::<_, Draft>(DRAFT_BY_ASSIGNMENT)
                .bind(assignment_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(found)
    }

    /// Saves a draft. `expected` is the revision the client last saw (None: it saw no draft);
    /// a different stored revision is [`GradeWriteError::StaleDraft`] and nothing is written.
    /// The assignment moves to `in_progress`.
    #[tracing::instrument(skip_all)]
    pub async fn save_draft(
        &self,
        assignment_id: Uuid,
        form_id: Uuid,
        grade_values: &str,
        render_state: Option<&str>,
        lossless_sha256: Option<&str>,
        expected: Option<i64>,
    ) -> Result<Draft, GradeWriteError> {
        let at = now();
        let saved = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // A write first, so SQLite takes its write lock before reading (see cases.rs).
            let status = sqlx::query(SET_STATUS)
                .bind(assignment_id)
                .bind(AssignmentStatus::InProgress.as_str())
                .execute(&mut *tx)
                .await?;
            if status.rows_affected() == 0 {
                return Err(GradeWriteError::AlreadySubmitted);
            }
            let saved = match expected {
                None => sqlx::query_as::<_, Draft>(INSERT_DRAFT)
                    .bind(assignment_id)
                    .bind(form_id)
                    .bind(grade_values)
                    .bind(render_state)
                    .bind(lossless_sha256)
                    .bind(at)
                    .fetch_optional(&mut *tx)
                    .await?,
                Some(revision) => sqlx::query_as::<_, Draft>(UPDATE_DRAFT)
                    .bind(assignment_id)
                    .bind(form_id)
                    .bind(grade_values)
                    .bind(render_state)
                    .bind(lossless_sha256)
                    .bind(at)
                    .bind(revision)
                    .fetch_optional(&mut *tx)
                    .await?,
            };
            let Some(saved) = saved else {
                let current: Option<i64> = sqlx::query_scalar(DRAFT_REVISION)
                    .bind(assignment_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                return Err(GradeWriteError::StaleDraft { current: current.unwrap_or(0) });
            };
            tx.commit().await?;
            saved
        });
        Ok(saved)
    }

    /// Submits the first grade of an assignment: stores version 1, completes the assignment and
    /// removes the draft, in one transaction. [`GradeWriteError::AlreadySubmitted`] if the
    /// assignment is already done (a double submit stores nothing).
    #[tracing::instrument(skip_all)]
    pub async fn submit_grade(
        &self,
        assignment: &Assignment,
        grade: &NewGrade,
    ) -> Result<Grade, GradeWriteError> {
        let at = now();
        let stored = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let completed = sqlx::query(COMPLETE_ASSIGNMENT)
                .bind(assignment.id)
                .execute(&mut *tx)
                .await?;
            if completed.rows_affected() == 0 {
                return Err(GradeWriteError::AlreadySubmitted);
            }
            let started: Option<OffsetDateTime> = sqlx::query_scalar(
                "SELECT started_at FROM grade_drafts WHERE assignment_id = $1",
            )
            .bind(assignment.id)
            .fetch_optional(&mut *tx)
            .await?;
            let duration_ms = started.map(|s| (at - s).whole_milliseconds().clamp(0, i64::MAX as i128) as i64);
            let stored = Grade::from(sqlx::query_as::<_, GradeRow>(INSERT_GRADE)
                .bind(new_id())
                .bind(assignment.id)
                .bind(assignment.case_id)
                .bind(assignment.user_id)
                .bind(grade.form_id)
                .bind(1_i32)
                .bind(&grade.grade_values)
                .bind(&grade.render_state)
                .bind(&grade.lossless_sha256)
                .bind(Option::<String>::None)
                .bind(duration_ms)
                .bind(at)
                .fetch_one(&mut *tx).await?);
            sqlx::query(DELETE_DRAFT).bind(assignment.id).execute(&mut *tx).await?;
            tx.commit().await?;
            stored
        });
        Ok(stored)
    }

    /// Stores an amendment: the next version of a submitted grade, with its reason.
    #[tracing::instrument(skip_all)]
    pub async fn amend_grade(
        &self,
        assignment: &Assignment,
        grade: &NewGrade,
    ) -> Result<Grade, GradeWriteError> {
        let at = now();
        let stored = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Lock the assignment row (and SQLite's write lock) before reading the version.
            let done = sqlx::query("UPDATE assignments SET status = status WHERE id = $1 AND status = 'done'")
                .bind(assignment.id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(GradeWriteError::NotSubmitted);
            }
            let latest: i32 = sqlx::query_scalar(LATEST_VERSION)
                .bind(assignment.id)
                .fetch_one(&mut *tx)
                .await?;
            let stored = Grade::from(sqlx::query_as::<_, GradeRow>(INSERT_GRADE)
                .bind(new_id())
                .bind(assignment.id)
                .bind(assignment.case_id)
                .bind(assignment.user_id)
                .bind(grade.form_id)
                .bind(latest + 1)
                .bind(&grade.grade_values)
                .bind(&grade.render_state)
                .bind(&grade.lossless_sha256)
                .bind(&grade.reason)
                .bind(Option::<i64>::None)
                .bind(at)
                .fetch_one(&mut *tx).await?);
            tx.commit().await?;
            stored
        });
        Ok(stored)
    }

    /// Every version of an assignment's grade, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn grades_of_assignment(&self, assignment_id: Uuid) -> Result<Vec<Grade>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, GradeRow>(GRADES_OF_ASSIGNMENT)
                .bind(assignment_id)
                .fetch_all(pool).await?.into_iter().map(Grade::from).collect::<Vec<_>>()
        });
        Ok(rows)
    }

    /// Every grade version of a case.
    #[tracing::instrument(skip_all)]
    pub async fn grades_of_case(&self, case_id: Uuid) -> Result<Vec<Grade>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, GradeRow>(GRADES_OF_CASE).bind(case_id).fetch_all(pool).await?.into_iter().map(Grade::from).collect::<Vec<_>>()
        });
        Ok(rows)
    }

    /// The grade version with this id, or [`DbError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn grade_by_id(&self, grade_id: Uuid) -> Result<Grade, DbError> {
        let row = with_pool!(self, pool => {
            Grade::from(sqlx::query_as::<_, GradeRow>(GRADE_BY_ID).bind(grade_id).fetch_one(pool).await?)
        });
        Ok(row)
    }

    /// The adjudication round with this id, or [`DbError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn adjudication_by_id(&self, adjudication_id: Uuid) -> Result<Adjudication, DbError> {
        let row = with_pool!(self, pool => {
            Adjudication::from(sqlx::query_as::<_, AdjudicationRow>(ADJUDICATION_BY_ID)
                .bind(adjudication_id)
                .fetch_one(pool).await?)
        });
        Ok(row)
    }

    /// Every grade version of a study, by case.
    #[tracing::instrument(skip_all)]
    pub async fn grades_of_study(&self, study_id: Uuid) -> Result<Vec<Grade>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, GradeRow>(GRADES_OF_STUDY).bind(study_id).fetch_all(pool).await?.into_iter().map(Grade::from).collect::<Vec<_>>()
        });
        Ok(rows)
    }

    /// Opens the next adjudication round of a case.
    #[tracing::instrument(skip_all)]
    pub async fn open_adjudication(
        &self,
        case_id: Uuid,
        disagreements: &str,
        grade_ids: &str,
    ) -> Result<Adjudication, DbError> {
        let row = with_pool!(self, pool => {
            Adjudication::from(sqlx::query_as::<_, AdjudicationRow>(INSERT_ADJUDICATION)
                .bind(new_id())
                .bind(case_id)
                .bind(disagreements)
                .bind(grade_ids)
                .bind(now())
                .fetch_one(pool).await?)
        });
        Ok(row)
    }

    /// The adjudication rounds of a case, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn adjudications_of_case(&self, case_id: Uuid) -> Result<Vec<Adjudication>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, AdjudicationRow>(ADJUDICATIONS_OF_CASE)
                .bind(case_id)
                .fetch_all(pool).await?.into_iter().map(Adjudication::from).collect::<Vec<_>>()
        });
        Ok(rows)
    }

    /// Every adjudication round of a study.
    #[tracing::instrument(skip_all)]
    pub async fn adjudications_of_study(
        &self,
        study_id: Uuid,
    ) -> Result<Vec<Adjudication>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, AdjudicationRow>(ADJUDICATIONS_OF_STUDY)
                .bind(study_id)
                .fetch_all(pool).await?.into_iter().map(Adjudication::from).collect::<Vec<_>>()
        });
        Ok(rows)
    }

    /// Resolves an open round with the adjudicator's final grade and completes their
    /// assignment, in one transaction; [`DbError::NotFound`] if it was already resolved.
    #[tracing::instrument(skip_all)]
    pub async fn resolve_adjudication(
        &self,
        adjudication_id: Uuid,
        assignment: &Assignment,
        grade: &NewGrade,
    ) -> Result<Adjudication, DbError> {
        let row = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let row = Adjudication::from(sqlx::query_as::<_, AdjudicationRow>(RESOLVE_ADJUDICATION)
                .bind(adjudication_id)
                .bind(assignment.user_id)
                .bind(grade.form_id)
                .bind(&grade.grade_values)
                .bind(&grade.render_state)
                .bind(&grade.lossless_sha256)
                .bind(&grade.reason)
                .bind(now())
                .fetch_one(&mut *tx).await?);
            sqlx::query(COMPLETE_ASSIGNMENT).bind(assignment.id).execute(&mut *tx).await?;
            sqlx::query(DELETE_DRAFT).bind(assignment.id).execute(&mut *tx).await?;
            tx.commit().await?;
            row
        });
        Ok(row)
    }

    /// Creates one assignment with a kind (used for adjudicators).
    #[tracing::instrument(skip_all)]
    pub async fn assign_kind(
        &self,
        case_id: Uuid,
        user_id: Uuid,
        role: AssignmentRole,
        batch_id: Option<Uuid>,
    ) -> Result<Assignment, DbError> {
        let at = now();
        let row = with_pool!(self, pool => {
            Assignment::from(sqlx::query_as::<_, AssignmentRow>(INSERT_BATCH_ASSIGNMENT)
                .bind(new_id())
                .bind(case_id)
                .bind(user_id)
                .bind(role.as_str())
                .bind(at)
                .bind(Option::<OffsetDateTime>::None)
                .bind(AssignmentStatus::Assigned.as_str())
                .bind(batch_id)
                .bind(AssignmentKind::Primary.as_str())
                .fetch_one(pool).await?)
        });
        Ok(row)
    }
}

const OPEN_ADJUDICATIONS_OF_USER: &str = "SELECT COUNT(*) FROM assignments a \
     JOIN cases c ON c.id = a.case_id \
     WHERE a.user_id = $1 AND a.status <> 'done' AND a.role = 'adjudicator' AND c.study_id = $2";

const USERS_WITH_ROLE_IN_STUDY: &str = "SELECT DISTINCT u.id, u.username, u.display_name, u.email, \
     u.created_at, u.disabled FROM users u JOIN role_grants g ON g.user_id = u.id \
     WHERE g.role = $1 AND (g.study_id = $2 OR g.study_id IS NULL) AND u.disabled = $3 \
     ORDER BY u.username";

impl Db {
    /// The enabled users holding `role` in the study (or in every study), by username.
    #[tracing::instrument(skip_all)]
    pub async fn users_with_role_in_study(
        &self,
        role: super::Role,
        study_id: Uuid,
    ) -> Result<Vec<super::User>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, super::User>(USERS_WITH_ROLE_IN_STUDY)
                .bind(role.as_str())
                .bind(study_id)
                .bind(false)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// How many unfinished adjudicator assignments `user_id` holds in a study (their load when
    /// a new round is routed; reads the user's own assignments, not the study's).
    #[tracing::instrument(skip_all)]
    pub async fn open_adjudications_of_user(
        &self,
        user_id: Uuid,
        study_id: Uuid,
    ) -> Result<i64, DbError> {
        let count = with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>(OPEN_ADJUDICATIONS_OF_USER)
                .bind(user_id)
                .bind(study_id)
                .fetch_one(pool)
                .await?
        });
        Ok(count)
    }
}
