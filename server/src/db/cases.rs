//! Bundles, cases and assignments.

use serde_json::Value as JsonValue;
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{
    AssignedCase, Assignment, AssignmentRole, AssignmentRow, AssignmentStatus, Bundle, Case,
    CaseSummary, NewBundle, NewCase,
};
use super::{Db, DbError, found_one, new_id, now, to_i64, to_micros, with_pool};

/// Hands out the study's next case number. As the first statement of the ingest transaction it
/// also serializes concurrent ingests into one study: PostgreSQL holds the study row's lock until
/// commit, and SQLite takes its single write lock here (waiting up to the busy timeout) before
/// the transaction has read anything, so no stale snapshot can hand out the same number twice.
const BUMP_CASE_SEQ: &str =
    "UPDATE studies SET case_seq = case_seq + 1 WHERE id = $1 RETURNING case_seq";

const INSERT_BUNDLE: &str = "INSERT INTO bundles (id, study_id, subject, visit, format, object_key, \
     ciphertext_sha256, ciphertext_size, plaintext_size, file_count, exam_count, \
     recipients_fingerprint, summary, ingested_at, ingested_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     RETURNING id, study_id, subject, visit, format, object_key, ciphertext_sha256, \
     ciphertext_size, plaintext_size, file_count, exam_count, recipients_fingerprint, summary, \
     ingested_at, ingested_by";

const BUNDLE_BY_ID: &str = "SELECT id, study_id, subject, visit, format, object_key, \
     ciphertext_sha256, ciphertext_size, plaintext_size, file_count, exam_count, \
     recipients_fingerprint, summary, ingested_at, ingested_by \
     FROM bundles WHERE id = $1";

const INSERT_CASE: &str = "INSERT INTO cases \
     (id, study_id, label, bundle_id, prior_bundle_id, created_at, ground_truth) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     RETURNING id, study_id, label, bundle_id, prior_bundle_id, created_at";

const CASE_BY_ID: &str = "SELECT id, study_id, label, bundle_id, prior_bundle_id, created_at \
     FROM cases WHERE id = $1";

const CASE_GROUND_TRUTH: &str = "SELECT ground_truth FROM cases WHERE id = $1";

const SET_CASE_GROUND_TRUTH: &str = "UPDATE cases SET ground_truth = $2 WHERE id = $1";

/// Labels are `C-` and at least four digits, so ordering by length first keeps `C-10000`
/// after `C-9999` (as [`LIST_CASES`] does).
const GROUND_TRUTHS_OF_STUDY: &str = "SELECT id, ground_truth FROM cases \
     WHERE study_id = $1 AND ground_truth IS NOT NULL ORDER BY length(label), label";

/// The columns and joins of a [`CaseSummary`]; `c` is the case, `b` its bundle, `s` its study.
macro_rules! case_summary_select {
    ($($extra_columns:literal)?) => {
        concat!(
            "SELECT ",
            $($extra_columns, ", ",)?
            "c.id, c.study_id, c.label, c.bundle_id, c.prior_bundle_id, c.created_at, \
             s.code AS study_code, b.subject, b.visit, b.exam_count, b.summary \
             FROM cases c \
             JOIN bundles b ON b.id = c.bundle_id \
             JOIN studies s ON s.id = c.study_id"
        )
    };
}

/// Labels are `C-` and at least four digits, so ordering by length first keeps `C-10000`
/// after `C-9999`.
const LIST_CASES: &str = concat!(
    case_summary_select!(),
    " WHERE c.study_id = $1 ORDER BY length(c.label), c.label"
);

const LIST_ALL_CASES: &str = concat!(
    case_summary_select!(),
    " ORDER BY s.code, length(c.label), c.label"
);

const INSERT_ASSIGNMENT: &str = "INSERT INTO assignments \
     (id, case_id, user_id, role, assigned_at, due_at, status) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     RETURNING id, case_id, user_id, role, assigned_at, due_at, status, batch_id, kind";

const ASSIGNMENTS_FOR_USER: &str = concat!(
    case_summary_select!(
        "a.id AS assignment_id, a.role, a.status, a.assigned_at, a.due_at, a.kind, a.batch_id"
    ),
    " JOIN assignments a ON a.case_id = c.id \
     WHERE a.user_id = $1 \
     AND (a.kind = 'primary' OR EXISTS (SELECT 1 FROM assignments p \
          WHERE p.case_id = a.case_id AND p.user_id = a.user_id AND p.role = a.role \
          AND p.kind = 'primary' AND p.status = 'done')) \
     ORDER BY s.code, length(c.label), c.label, a.role"
);

const VISITS_OF_SUBJECT: &str =
    "SELECT id, visit FROM bundles WHERE study_id = $1 AND subject = $2";

const ASSIGNMENTS_FOR_CASE: &str = "SELECT id, case_id, user_id, role, assigned_at, due_at, status, \
     batch_id, kind FROM assignments WHERE case_id = $1 ORDER BY assigned_at, id";

const ASSIGNMENTS_FOR_STUDY: &str = "SELECT a.id, a.case_id, a.user_id, a.role, a.assigned_at, \
     a.due_at, a.status, a.batch_id, a.kind FROM assignments a JOIN cases c ON c.id = a.case_id \
     WHERE c.study_id = $1 ORDER BY a.case_id, a.assigned_at, a.id";

const ASSIGNMENT_BY_ID: &str = "SELECT id, case_id, user_id, role, assigned_at, due_at, status, \
     batch_id, kind FROM assignments WHERE id = $1";

const CASES_WITH_BUNDLE: &str = "SELECT id FROM cases WHERE bundle_id = $1 ORDER BY id";

const DELETE_ASSIGNMENT: &str = "DELETE FROM assignments WHERE id = $1";

impl Db {
    /// The bundles (id, visit) of one subject in a study, for linking a visit to its prior.
    #[tracing::instrument(skip_all)]
    pub async fn visits_of_subject(
        &self,
        study_id: Uuid,
        subject: &str,
    ) -> Result<Vec<(Uuid, String)>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, (Uuid, String)>(VISITS_OF_SUBJECT)
                .bind(study_id)
                .bind(subject)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Every assignment of one case.
    #[tracing::instrument(skip_all)]
    pub async fn assignments_for_case(&self, case_id: Uuid) -> Result<Vec<Assignment>, DbError> {
        let found = with_pool!(self, pool => {
            sqlx::query_as::<_, AssignmentRow>(ASSIGNMENTS_FOR_CASE)
                .bind(case_id)
                .fetch_all(pool).await?.into_iter().map(Assignment::from).collect::<Vec<_>>()
        });
        Ok(found)
    }

    /// Every assignment of every case of a study.
    #[tracing::instrument(skip_all)]
    pub async fn assignments_for_study(&self, study_id: Uuid) -> Result<Vec<Assignment>, DbError> {
        let found = with_pool!(self, pool => {
            sqlx::query_as::<_, AssignmentRow>(ASSIGNMENTS_FOR_STUDY)
                .bind(study_id)
                .fetch_all(pool).await?.into_iter().map(Assignment::from).collect::<Vec<_>>()
        });
        Ok(found)
    }

    /// One assignment, or [`DbError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn assignment_by_id(&self, assignment_id: Uuid) -> Result<Assignment, DbError> {
        let found = with_pool!(self, pool => {
            Assignment::from(sqlx::query_as::<_, AssignmentRow>(ASSIGNMENT_BY_ID)
                .bind(assignment_id)
                .fetch_one(pool).await?)
        });
        Ok(found)
    }

    /// Removes an assignment. [`DbError::NotFound`] if there is none with that id.
    #[tracing::instrument(skip_all)]
    pub async fn delete_assignment(&self, assignment_id: Uuid) -> Result<(), DbError> {
        let changed = with_pool!(self, pool => {
            sqlx::query(DELETE_ASSIGNMENT)
                .bind(assignment_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        found_one(changed)
    }

    /// Records an ingested bundle and creates its case, in one transaction: either both exist
    /// afterwards or neither does.
    ///
    /// The case gets the study's next label (`C-0001`, `C-0002` …), distinct even under concurrent
    /// ingests into the same study. The study is `bundle.study_id`.
    /// [`DbError::Conflict`] on a duplicate object key (`bundle object key`) or a second bundle
    /// for the same subject and visit; [`DbError::NotFound`] if the study, the ingesting user or
    /// the prior bundle (which must belong to the same study) does not exist.
    #[tracing::instrument(skip_all)]
    pub async fn register_ingest(
        &self,
        bundle: &NewBundle,
        case: &NewCase,
    ) -> Result<(Bundle, Case), DbError> {
        let ciphertext_size = to_i64(bundle.ciphertext_size, "ciphertext size")?;
        let plaintext_size = to_i64(bundle.plaintext_size, "plaintext size")?;
        let bundle_id = new_id();
        let case_id = new_id();
        let ingested_at = now();
        let stored = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let case_seq: i64 = sqlx::query_scalar(BUMP_CASE_SEQ)
                .bind(bundle.study_id)
                .fetch_one(&mut *tx)
                .await?;
            let label = format!("C-{case_seq:04}");
            let stored_bundle = sqlx::query_as::<_, Bundle>(INSERT_BUNDLE)
                .bind(bundle_id)
                .bind(bundle.study_id)
                .bind(&bundle.subject)
                .bind(&bundle.visit)
                .bind(&bundle.format)
                .bind(&bundle.object_key)
                .bind(&bundle.ciphertext_sha256)
                .bind(ciphertext_size)
                .bind(plaintext_size)
                .bind(i64::from(bundle.file_count))
                .bind(i64::from(bundle.exam_count))
                .bind(&bundle.recipients_fingerprint)
                .bind(&bundle.summary)
                .bind(ingested_at)
                .bind(bundle.ingested_by)
                .fetch_one(&mut *tx)
                .await?;
            let stored_case = sqlx::query_as::<_, Case>(INSERT_CASE)
                .bind(case_id)
                .bind(bundle.study_id)
                .bind(&label)
                .bind(bundle_id)
                .bind(case.prior_bundle_id)
                .bind(ingested_at)
                .bind(&case.ground_truth)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            (stored_bundle, stored_case)
        });
        Ok(stored)
    }

    /// The bundle with this id, or [`DbError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn bundle_by_id(&self, bundle_id: Uuid) -> Result<Bundle, DbError> {
        let bundle = with_pool!(self, pool => {
            sqlx::query_as::<_, Bundle>(BUNDLE_BY_ID).bind(bundle_id).fetch_one(pool).await?
        });
        Ok(bundle)
    }

    /// The cases whose own exam bundle is `bundle_id` (the cases of a prior visit, when it is
    /// shown beside a later one).
    #[tracing::instrument(skip_all)]
    pub async fn cases_with_bundle(&self, bundle_id: Uuid) -> Result<Vec<Uuid>, DbError> {
        let ids = with_pool!(self, pool => {
            sqlx::query_scalar::<_, Uuid>(CASES_WITH_BUNDLE).bind(bundle_id).fetch_all(pool).await?
        });
        Ok(ids)
    }

    /// The case with this id, or [`DbError::NotFound`].
    #[tracing::instrument(skip_all)]
    pub async fn case_by_id(&self, case_id: Uuid) -> Result<Case, DbError> {
        let case = with_pool!(self, pool => {
            sqlx::query_as::<_, Case>(CASE_BY_ID).bind(case_id).fetch_one(pool).await?
        });
        Ok(case)
    }

    /// The case's ground truth (`None` if it has none), or [`DbError::NotFound`] for no such case.
    /// Never for graders.
    #[tracing::instrument(skip_all)]
    pub async fn case_ground_truth(&self, case_id: Uuid) -> Result<Option<JsonValue>, DbError> {
        let ground_truth = with_pool!(self, pool => {
            sqlx::query_scalar::<_, Option<JsonValue>>(CASE_GROUND_TRUTH)
                .bind(case_id)
                .fetch_one(pool)
                .await?
        });
        Ok(ground_truth)
    }

    /// The cases labelled `label` (compared without regard to case), in every study or in the
    /// study `study` only: `(id, label, study code)`, by study code. Labels are unique within
    /// a study, not across studies.
    #[tracing::instrument(skip_all)]
    pub async fn cases_labelled(
        &self,
        label: &str,
        study: Option<&str>,
    ) -> Result<Vec<(Uuid, String, String)>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT c.id, c.label, s.code FROM cases c JOIN studies s ON s.id = c.study_id \
                 WHERE upper(c.label) = upper($1) AND ($2 IS NULL OR upper(s.code) = upper($2)) \
                 ORDER BY s.code",
            )
            .bind(label)
            .bind(study)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Sets (or with `None` clears) the case's ground truth. [`DbError::NotFound`] for no such case.
    #[tracing::instrument(skip_all)]
    pub async fn set_case_ground_truth(
        &self,
        case_id: Uuid,
        ground_truth: Option<&JsonValue>,
    ) -> Result<(), DbError> {
        let rows_affected = with_pool!(self, pool => {
            sqlx::query(SET_CASE_GROUND_TRUTH)
                .bind(case_id)
                .bind(ground_truth)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if rows_affected == 0 {
            return Err(DbError::NotFound);
        }
        Ok(())
    }

    /// The ground truth of every case of a study that has one, by case label: `(case id,
    /// ground truth)`. Cases without a ground truth are left out; empty (not
    /// [`DbError::NotFound`]) for an unknown study. Never for graders.
    #[tracing::instrument(skip_all)]
    pub async fn ground_truths_of_study(
        &self,
        study_id: Uuid,
    ) -> Result<Vec<(Uuid, JsonValue)>, DbError> {
        let truths = with_pool!(self, pool => {
            sqlx::query_as::<_, (Uuid, JsonValue)>(GROUND_TRUTHS_OF_STUDY)
                .bind(study_id)
                .fetch_all(pool)
                .await?
        });
        Ok(truths)
    }

    /// The study's cases with their bundles' listing fields, by label.
    /// Empty (not [`DbError::NotFound`]) for an unknown study.
    #[tracing::instrument(skip_all)]
    pub async fn list_cases(&self, study_id: Uuid) -> Result<Vec<CaseSummary>, DbError> {
        let cases = with_pool!(self, pool => {
            sqlx::query_as::<_, CaseSummary>(LIST_CASES).bind(study_id).fetch_all(pool).await?
        });
        Ok(cases)
    }

    /// Every case of every study, by study code and label.
    #[tracing::instrument(skip_all)]
    pub async fn list_all_cases(&self) -> Result<Vec<CaseSummary>, DbError> {
        let cases = with_pool!(self, pool => {
            sqlx::query_as::<_, CaseSummary>(LIST_ALL_CASES).fetch_all(pool).await?
        });
        Ok(cases)
    }

    /// Assigns a case to a user as grader or adjudicator, with an optional due date (stored in
    /// UTC to the microsecond); the new assignment's status is [`AssignmentStatus::Assigned`].
    ///
    /// Who may be assigned is the caller's rule, not the database's.
    /// [`DbError::Conflict`] (`assignment`) if the user already has this case in this role;
    /// [`DbError::NotFound`] if the case or user does not exist.
    #[tracing::instrument(skip_all)]
    pub async fn assign(
        &self,
        case_id: Uuid,
        user_id: Uuid,
        role: AssignmentRole,
        due_at: Option<OffsetDateTime>,
    ) -> Result<Assignment, DbError> {
        let id = new_id();
        let assigned_at = now();
        let due_at = due_at.map(to_micros);
        let assignment = with_pool!(self, pool => {
            Assignment::from(sqlx::query_as::<_, AssignmentRow>(INSERT_ASSIGNMENT)
                .bind(id)
                .bind(case_id)
                .bind(user_id)
                .bind(role.as_str())
                .bind(assigned_at)
                .bind(due_at)
                .bind(AssignmentStatus::Assigned.as_str())
                .fetch_one(pool).await?)
        });
        Ok(assignment)
    }

    /// The user's worklist: every assignment, whatever its status, with its case,
    /// by study code, case label and role.
    #[tracing::instrument(skip_all)]
    pub async fn assignments_for_user(&self, user_id: Uuid) -> Result<Vec<AssignedCase>, DbError> {
        let assigned = with_pool!(self, pool => {
            sqlx::query_as::<_, AssignedCase>(ASSIGNMENTS_FOR_USER)
                .bind(user_id)
                .fetch_all(pool)
                .await?
        });
        Ok(assigned)
    }
}
