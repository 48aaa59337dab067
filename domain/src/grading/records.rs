//! What the grading analytics read: a study's assignments, grades, adjudication rounds and
//! batches as stored, with their JSON already parsed and their states as enums.
//!
//! The database layer reads rows into these types and refuses a row whose JSON does not parse or
//! whose state is not one of these names, so [`super::stats`], [`super::export`] and
//! [`super::truth`] never meet a half-read value.

use std::collections::HashSet;

use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::names::text_enum;

text_enum!(
    /// The capacity in which a user is assigned a case.
    AssignmentRole, "assignment role", {
        /// A blind grade.
        Grader = "grader",
        /// An adjudication of disagreeing grades.
        Adjudicator = "adjudicator",
    }
);

text_enum!(
    /// Where an assignment stands.
    AssignmentStatus, "assignment status", {
        /// Not opened yet.
        Assigned = "assigned",
        /// Opened or drafted, not submitted.
        InProgress = "in_progress",
        /// Submitted.
        Done = "done",
    }
);

text_enum!(
    /// Why a grader has an assignment.
    AssignmentKind, "assignment kind", {
        /// The first grading of the case by this grader.
        Primary = "primary",
        /// A hidden repeat of a case the grader graded before, for intra-grader agreement.
        Repeat = "repeat",
    }
);

text_enum!(
    /// Where an adjudication round stands.
    AdjudicationStatus, "adjudication status", {
        /// Waiting for an adjudicator.
        Open = "open",
        /// Resolved: it holds the final grade.
        Resolved = "resolved",
    }
);

/// A case given to a user to grade or adjudicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Stable id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// Grading or adjudicating.
    pub role: AssignmentRole,
    /// When it was assigned.
    pub assigned_at: OffsetDateTime,
    /// When it is due, if a due date was set.
    pub due_at: Option<OffsetDateTime>,
    /// Where it stands.
    pub status: AssignmentStatus,
    /// The batch it was handed out in, if any.
    pub batch_id: Option<Uuid>,
    /// A first grading or a hidden repeat.
    pub kind: AssignmentKind,
}

impl Assignment {
    /// A grader's first grading of the case (not a hidden repeat, not an adjudication).
    pub fn is_primary_grading(&self) -> bool {
        self.role == AssignmentRole::Grader && self.kind == AssignmentKind::Primary
    }

    /// A grader's hidden repeat of a case.
    pub fn is_repeat(&self) -> bool {
        self.role == AssignmentRole::Grader && self.kind == AssignmentKind::Repeat
    }
}

/// A batch of assignments.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Id.
    pub id: Uuid,
    /// The study.
    pub study_id: Uuid,
    /// Name, unique in the study.
    pub name: String,
    /// Graders per case.
    pub per_case: i32,
    /// Fraction of each grader's cases served again later as hidden repeats.
    pub repeat_fraction: f64,
    /// Due date.
    pub due_at: Option<OffsetDateTime>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: Option<Uuid>,
}

/// One version of a grade (versions are immutable; an amendment adds a version).
#[derive(Debug, Clone, PartialEq)]
pub struct Grade {
    /// Id.
    pub id: Uuid,
    /// The assignment it fulfils.
    pub assignment_id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// Who graded.
    pub grader_id: Uuid,
    /// The form version.
    pub form_id: Uuid,
    /// 1 for the submission, 2… for amendments.
    pub version: i32,
    /// The values, as validated at submission (field name → value).
    pub values: Map<String, Json>,
    /// The view the grade was made on.
    pub render_state: Option<Json>,
    /// The verified lossless frame's SHA-256.
    pub lossless_sha256: Option<String>,
    /// Why it was amended (versions after 1).
    pub reason: Option<String>,
    /// Time from the first draft save to submission.
    pub duration_ms: Option<i64>,
    /// When it was submitted.
    pub submitted_at: OffsetDateTime,
}

/// A round of adjudication: a disagreement between a case's grades and its resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjudication {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// 1, 2, … (a new round opens if grades still disagree after amendments).
    pub round: i32,
    /// The disagreements found (a JSON list of `{field, eye, reason …}`).
    pub disagreements: Json,
    /// The grade versions compared.
    pub grade_ids: Vec<Uuid>,
    /// Open or resolved.
    pub status: AdjudicationStatus,
    /// When it was opened.
    pub created_at: OffsetDateTime,
    /// Who resolved it.
    pub adjudicator_id: Option<Uuid>,
    /// The form version of the final grade.
    pub form_id: Option<Uuid>,
    /// The final values.
    pub values: Option<Map<String, Json>>,
    /// View state of the adjudication.
    pub render_state: Option<Json>,
    /// Lossless frame hash.
    pub lossless_sha256: Option<String>,
    /// The adjudicator's note.
    pub reason: Option<String>,
    /// When it was resolved.
    pub resolved_at: Option<OffsetDateTime>,
}

/// One case of a study, with the pseudonyms exports show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaseInfo {
    /// The case id.
    pub id: Uuid,
    /// The case label (`C-0001`).
    pub label: String,
    /// The subject pseudonym of the case's bundle, if known.
    pub subject: Option<String>,
    /// The visit pseudonym of the case's bundle, if known.
    pub visit: Option<String>,
}

/// The records of a study that statistics and exports are computed from.
#[derive(Debug, Clone, Default)]
pub struct StudyRecords {
    /// The study code.
    pub study: String,
    /// The cases, by label.
    pub cases: Vec<CaseInfo>,
    /// The batches, oldest first.
    pub batches: Vec<Batch>,
    /// Every assignment (graders' primary and repeat ones, adjudicators').
    pub assignments: Vec<Assignment>,
    /// Every grade version.
    pub grades: Vec<Grade>,
    /// Every adjudication round.
    pub adjudications: Vec<Adjudication>,
    /// The batch these records are limited to ([`StudyRecords::batch_scope`]); `None`: the
    /// whole study.
    pub batch: Option<Uuid>,
}

impl StudyRecords {
    /// The records of one batch: its grader assignments (primary and repeat), the cases they
    /// are for, those cases' adjudicator assignments and adjudication rounds, and the grades of
    /// the kept assignments. `None` if the study has no such batch.
    pub fn batch_scope(&self, batch_id: Uuid) -> Option<StudyRecords> {
        let batch = self.batches.iter().find(|b| b.id == batch_id)?.clone();
        let cases: HashSet<Uuid> = self
            .assignments
            .iter()
            .filter(|a| a.batch_id == Some(batch_id))
            .map(|a| a.case_id)
            .collect();
        let assignments: Vec<Assignment> = self
            .assignments
            .iter()
            .filter(|a| {
                a.batch_id == Some(batch_id)
                    || (a.role == AssignmentRole::Adjudicator && cases.contains(&a.case_id))
            })
            .cloned()
            .collect();
        let kept: HashSet<Uuid> = assignments.iter().map(|a| a.id).collect();
        Some(StudyRecords {
            study: self.study.clone(),
            cases: self
                .cases
                .iter()
                .filter(|c| cases.contains(&c.id))
                .cloned()
                .collect(),
            batches: vec![batch],
            grades: self
                .grades
                .iter()
                .filter(|g| kept.contains(&g.assignment_id))
                .cloned()
                .collect(),
            adjudications: self
                .adjudications
                .iter()
                .filter(|a| cases.contains(&a.case_id))
                .cloned()
                .collect(),
            assignments,
            batch: Some(batch_id),
        })
    }
}

/// The latest version of each primary grade of a case (or study), oldest assignment first.
pub fn latest_primary(grades: &[Grade], assignments: &[Assignment]) -> Vec<Grade> {
    let primary: std::collections::HashMap<Uuid, &Assignment> = assignments
        .iter()
        .filter(|a| a.is_primary_grading())
        .map(|a| (a.id, a))
        .collect();
    let mut latest: std::collections::HashMap<Uuid, &Grade> = std::collections::HashMap::new();
    for grade in grades
        .iter()
        .filter(|g| primary.contains_key(&g.assignment_id))
    {
        let entry = latest.entry(grade.assignment_id).or_insert(grade);
        if grade.version > entry.version {
            *entry = grade;
        }
    }
    let mut out: Vec<Grade> = latest.into_values().cloned().collect();
    out.sort_by_key(|g| (primary[&g.assignment_id].assigned_at, g.assignment_id));
    out
}

/// A stored version of a study's form, as an export describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct FormVersion {
    /// 1, 2, … (the highest is the current form).
    pub version: i32,
    /// SHA-256 of its canonical JSON.
    pub fingerprint: String,
    /// The definition as stored (`readroom-form/1` JSON).
    pub definition: Json,
    /// The parsed form.
    pub form: super::Form,
}
