//! Progress and agreement statistics of a study, or of one of its batches: the JSON of
//! `GET /api/studies/{code}/progress` and `GET /api/studies/{code}/agreement`.
//!
//! The server reads a study's records into [`StudyRecords`] (five queries, no per-case query);
//! [`progress`] and [`agreement`] are pure functions of those records (and the clock reading and
//! form they are given), unit-tested without a database.
//!
//! What the numbers are made of:
//! - **Progress** counts assignments by status (`due`: not opened yet, `in_progress`, `done`,
//!   and `overdue`: unfinished past its due date), grade submissions and amendments, and
//!   adjudication rounds. Time per case is the grade's `duration_ms` (first draft save to
//!   submission, as the database records it); a grade submitted without a saved draft has no
//!   duration and is counted as untimed.
//! - **Agreement** uses the latest version of each primary grade ([`latest_primary`]),
//!   one rating per field and eye, for every categorical field of the form: single choice and
//!   boolean (Cohen's kappa) and ordinal (Cohen's kappa and quadratic-weighted kappa, levels in
//!   scale order). Numbers, free text and multiple choices are not rated. Values are read from
//!   the stored JSON against the current form; a value that is not a category of the current
//!   form (a grade made on an older form version) is left out.
//! - **Intra-grader agreement** compares, per grader, the latest version of the primary grade
//!   with the latest version of the hidden repeat of the same case.
//!
//! Cost: one pass over the rows plus the sort inside
//! [`readroom_domain::agreement::pairwise_by`]; no loop over pairs of grades.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Eye, FieldKind, Form, column_name};
use crate::agreement::{KappaResult, Rating, Weights, intra_by, pairwise_by, reportable};
use serde::Serialize;
use serde_json::Value as Json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

pub use super::records::CaseInfo;
use super::records::{
    AdjudicationStatus, Assignment, AssignmentKind, AssignmentRole, AssignmentStatus, Batch, Grade,
    StudyRecords, latest_primary,
};

/// A time as the statistics and exports write it: RFC 3339, UTC.
pub fn rfc3339(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Progress

/// Assignments counted by where they stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// All of them.
    pub total: u64,
    /// Not opened yet (status `assigned`).
    pub due: u64,
    /// Opened or drafted, not submitted.
    pub in_progress: u64,
    /// Submitted.
    pub done: u64,
    /// Not done and past their due date.
    pub overdue: u64,
}

impl StatusCounts {
    fn add(&mut self, assignment: &Assignment, now: OffsetDateTime) {
        self.total += 1;
        match assignment.status {
            AssignmentStatus::Assigned => self.due += 1,
            AssignmentStatus::InProgress => self.in_progress += 1,
            AssignmentStatus::Done => self.done += 1,
        }
        if assignment.status != AssignmentStatus::Done
            && assignment.due_at.is_some_and(|due| due < now)
        {
            self.overdue += 1;
        }
    }
}

/// Cases counted by how far their grading went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CaseCounts {
    /// Cases in scope.
    pub total: u64,
    /// Cases without any primary grader assignment.
    pub unassigned: u64,
    /// Cases with primary grader assignments not all submitted yet.
    pub grading: u64,
    /// Cases whose primary grader assignments are all submitted.
    pub graded: u64,
    /// Cases with an open adjudication round.
    pub awaiting_adjudication: u64,
    /// Cases with a resolved round and no open one.
    pub adjudicated: u64,
    /// Graded cases without an open round: their result is final.
    pub complete: u64,
}

/// Adjudication rounds counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AdjudicationCounts {
    /// Rounds waiting for an adjudicator.
    pub open: u64,
    /// Rounds resolved.
    pub resolved: u64,
    /// Cases with at least one round.
    pub cases: u64,
    /// Rounds that opened while an earlier round of the same case was resolved (round ≥ 2).
    pub later_rounds: u64,
}

/// A batch and its grading assignments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchSummary {
    /// The batch id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Graders per case.
    pub per_case: i32,
    /// Fraction of hidden repeats.
    pub repeat_fraction: f64,
    /// Due date (RFC 3339).
    pub due_at: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Cases in the batch.
    pub cases: u64,
    /// Its primary grading assignments.
    pub grading: StatusCounts,
    /// Its hidden repeat assignments.
    pub repeats: StatusCounts,
}

/// One grader's load and pace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraderThroughput {
    /// The grader's user id (never a name).
    pub grader_id: Uuid,
    /// Primary grading assignments.
    pub assignments: StatusCounts,
    /// Hidden repeat assignments.
    pub repeats: StatusCounts,
    /// Grades submitted (first versions, primary and repeat).
    pub graded: u64,
    /// Amendments (versions after the first).
    pub amendments: u64,
    /// Submissions with a recorded duration (a draft was saved before submitting).
    pub timed: u64,
    /// Median time per case in milliseconds (first draft save to submission).
    pub median_ms: Option<i64>,
    /// Mean time per case in milliseconds.
    pub mean_ms: Option<i64>,
    /// First submission (RFC 3339).
    pub first_submitted_at: Option<String>,
    /// Latest submission or amendment (RFC 3339).
    pub last_submitted_at: Option<String>,
}

/// One adjudicator's load and pace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdjudicatorThroughput {
    /// The adjudicator's user id.
    pub adjudicator_id: Uuid,
    /// Adjudication assignments.
    pub assignments: StatusCounts,
    /// Rounds this adjudicator resolved.
    pub resolved: u64,
    /// Median time from a round opening to its resolution, in milliseconds.
    pub median_turnaround_ms: Option<i64>,
}

/// Progress of a study or batch: `GET /api/studies/{code}/progress`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// The study code.
    pub study: String,
    /// The batch the numbers are limited to; `None`: the whole study.
    pub batch: Option<BatchSummary>,
    /// When the numbers were computed (RFC 3339).
    pub generated_at: String,
    /// Cases by how far their grading went.
    pub cases: CaseCounts,
    /// Primary grading assignments.
    pub grading: StatusCounts,
    /// Hidden repeat assignments.
    pub repeats: StatusCounts,
    /// Adjudication assignments.
    pub adjudication: StatusCounts,
    /// Grades submitted (first versions, primary and repeat).
    pub grades_submitted: u64,
    /// Amendments (versions after the first).
    pub amendments: u64,
    /// Adjudication rounds.
    pub adjudications: AdjudicationCounts,
    /// Median time per case over all graders, in milliseconds.
    pub median_ms: Option<i64>,
    /// Per batch (in a batch scope: that batch only).
    pub batches: Vec<BatchSummary>,
    /// Per grader, by id.
    pub graders: Vec<GraderThroughput>,
    /// Per adjudicator, by id.
    pub adjudicators: Vec<AdjudicatorThroughput>,
}

/// The median of `values` (the mean of the two middle values for an even count, rounded down).
pub fn median(values: &mut [i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let middle = values.len() / 2;
    if !values.len().is_multiple_of(2) {
        Some(values[middle])
    } else {
        let (a, b) = (values[middle - 1] as i128, values[middle] as i128);
        Some((a + b).div_euclid(2) as i64)
    }
}

fn mean(values: &[i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let sum: i128 = values.iter().map(|&v| v as i128).sum();
    Some((sum / values.len() as i128) as i64)
}

#[derive(Default)]
struct GraderAcc {
    assignments: StatusCounts,
    repeats: StatusCounts,
    graded: u64,
    amendments: u64,
    durations: Vec<i64>,
    first: Option<OffsetDateTime>,
    last: Option<OffsetDateTime>,
}

#[derive(Default)]
struct AdjudicatorAcc {
    assignments: StatusCounts,
    resolved: u64,
    turnaround: Vec<i64>,
}

fn batch_summary(
    batch: &Batch,
    cases: u64,
    grading: StatusCounts,
    repeats: StatusCounts,
) -> BatchSummary {
    BatchSummary {
        id: batch.id,
        name: batch.name.clone(),
        per_case: batch.per_case,
        repeat_fraction: batch.repeat_fraction,
        due_at: batch.due_at.map(rfc3339),
        created_at: rfc3339(batch.created_at),
        cases,
        grading,
        repeats,
    }
}

/// Progress of the rows' scope at `now`: one pass over assignments, grades and rounds.
pub fn progress(rows: &StudyRecords, now: OffsetDateTime) -> Progress {
    let mut grading = StatusCounts::default();
    let mut repeats = StatusCounts::default();
    let mut adjudication = StatusCounts::default();
    let mut graders: BTreeMap<Uuid, GraderAcc> = BTreeMap::new();
    let mut adjudicators: BTreeMap<Uuid, AdjudicatorAcc> = BTreeMap::new();
    // Per case: (primary grader assignments, of which done).
    let mut case_primary: HashMap<Uuid, (u64, u64)> = HashMap::new();
    // Per batch: (cases, primary, repeats).
    let mut per_batch: HashMap<Uuid, (HashSet<Uuid>, StatusCounts, StatusCounts)> = HashMap::new();
    for a in &rows.assignments {
        match a.role {
            AssignmentRole::Adjudicator => {
                adjudication.add(a, now);
                adjudicators
                    .entry(a.user_id)
                    .or_default()
                    .assignments
                    .add(a, now);
            }
            AssignmentRole::Grader => {
                let grader = graders.entry(a.user_id).or_default();
                let batch = a.batch_id.map(|id| per_batch.entry(id).or_default());
                if a.kind == AssignmentKind::Repeat {
                    repeats.add(a, now);
                    grader.repeats.add(a, now);
                    if let Some((cases, _, counts)) = batch {
                        cases.insert(a.case_id);
                        counts.add(a, now);
                    }
                } else {
                    grading.add(a, now);
                    grader.assignments.add(a, now);
                    let entry = case_primary.entry(a.case_id).or_default();
                    entry.0 += 1;
                    if a.status == AssignmentStatus::Done {
                        entry.1 += 1;
                    }
                    if let Some((cases, counts, _)) = batch {
                        cases.insert(a.case_id);
                        counts.add(a, now);
                    }
                }
            }
        }
    }

    let mut grades_submitted = 0;
    let mut amendments = 0;
    let mut all_durations = Vec::new();
    for g in &rows.grades {
        let grader = graders.entry(g.grader_id).or_default();
        if g.version == 1 {
            grades_submitted += 1;
            grader.graded += 1;
            if let Some(ms) = g.duration_ms {
                grader.durations.push(ms);
                all_durations.push(ms);
            }
            grader.first = Some(
                grader
                    .first
                    .map_or(g.submitted_at, |t| t.min(g.submitted_at)),
            );
        } else {
            amendments += 1;
            grader.amendments += 1;
        }
        grader.last = Some(
            grader
                .last
                .map_or(g.submitted_at, |t| t.max(g.submitted_at)),
        );
    }

    let mut rounds = AdjudicationCounts::default();
    let mut open_cases: HashSet<Uuid> = HashSet::new();
    let mut resolved_cases: HashSet<Uuid> = HashSet::new();
    let mut round_cases: HashSet<Uuid> = HashSet::new();
    for r in &rows.adjudications {
        round_cases.insert(r.case_id);
        if r.round >= 2 {
            rounds.later_rounds += 1;
        }
        if r.status == AdjudicationStatus::Resolved {
            rounds.resolved += 1;
            resolved_cases.insert(r.case_id);
            if let Some(adjudicator) = r.adjudicator_id {
                let acc = adjudicators.entry(adjudicator).or_default();
                acc.resolved += 1;
                if let Some(at) = r.resolved_at {
                    let ms = (at - r.created_at).whole_milliseconds();
                    acc.turnaround.push(ms.clamp(0, i64::MAX as i128) as i64);
                }
            }
        } else {
            rounds.open += 1;
            open_cases.insert(r.case_id);
        }
    }
    rounds.cases = round_cases.len() as u64;

    let mut cases = CaseCounts::default();
    for case in &rows.cases {
        cases.total += 1;
        let open = open_cases.contains(&case.id);
        match case_primary.get(&case.id) {
            None | Some((0, _)) => cases.unassigned += 1,
            Some((total, done)) if done >= total => {
                cases.graded += 1;
                if !open {
                    cases.complete += 1;
                }
            }
            Some(_) => cases.grading += 1,
        }
        if open {
            cases.awaiting_adjudication += 1;
        } else if resolved_cases.contains(&case.id) {
            cases.adjudicated += 1;
        }
    }

    let batches: Vec<BatchSummary> = rows
        .batches
        .iter()
        .map(|b| match per_batch.get(&b.id) {
            Some((cases, primary, repeat)) => {
                batch_summary(b, cases.len() as u64, *primary, *repeat)
            }
            None => batch_summary(b, 0, StatusCounts::default(), StatusCounts::default()),
        })
        .collect();
    let batch = rows
        .batch
        .and_then(|id| batches.iter().find(|b| b.id == id).cloned());

    Progress {
        study: rows.study.clone(),
        batch,
        generated_at: rfc3339(now),
        cases,
        grading,
        repeats,
        adjudication,
        grades_submitted,
        amendments,
        adjudications: rounds,
        median_ms: median(&mut all_durations),
        batches,
        graders: graders
            .into_iter()
            .map(|(grader_id, mut acc)| GraderThroughput {
                grader_id,
                assignments: acc.assignments,
                repeats: acc.repeats,
                graded: acc.graded,
                amendments: acc.amendments,
                timed: acc.durations.len() as u64,
                mean_ms: mean(&acc.durations),
                median_ms: median(&mut acc.durations),
                first_submitted_at: acc.first.map(rfc3339),
                last_submitted_at: acc.last.map(rfc3339),
            })
            .collect(),
        adjudicators: adjudicators
            .into_iter()
            .map(|(adjudicator_id, mut acc)| AdjudicatorThroughput {
                adjudicator_id,
                assignments: acc.assignments,
                resolved: acc.resolved,
                median_turnaround_ms: median(&mut acc.turnaround),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Agreement

/// How the categories of a rated item are read from stored values.
#[derive(Debug, Clone, PartialEq)]
enum Lookup {
    Levels(Vec<i64>),
    Options(Vec<String>),
    Boolean,
}

impl Lookup {
    fn index(&self, value: &Json) -> Option<usize> {
        match self {
            Lookup::Levels(levels) => {
                let level = value.as_i64()?;
                levels.iter().position(|&l| l == level)
            }
            Lookup::Options(options) => {
                let option = value.as_str()?;
                options.iter().position(|o| o == option)
            }
            Lookup::Boolean => value.as_bool().map(usize::from),
        }
    }
}

/// A field (at one eye, for per-eye fields) whose agreement is measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgreementItem {
    /// The export column name, which also names the item: `dr_grade_od`.
    pub column: String,
    /// The field key.
    pub field: String,
    /// The eye, for per-eye fields.
    pub eye: Option<Eye>,
    /// `ordinal`, `choice` or `boolean`.
    pub kind: &'static str,
    /// The categories as stored values, in scale order (`false`, `true` for booleans).
    pub categories: Vec<String>,
    /// Whether a quadratic-weighted kappa is computed (ordinal scales).
    pub weighted: bool,
    #[serde(skip)]
    lookup: Lookup,
}

/// The items of `form` whose agreement is measured, in form order (OD before OS): ordinal,
/// single-choice and boolean fields.
pub fn agreement_items(form: &Form) -> Vec<AgreementItem> {
    let mut items = Vec::new();
    for field in &form.fields {
        let (kind, categories, lookup) = match &field.kind {
            FieldKind::Ordinal { levels } => (
                "ordinal",
                levels.iter().map(|l| l.value.to_string()).collect(),
                Lookup::Levels(levels.iter().map(|l| l.value).collect()),
            ),
            FieldKind::Choice {
                options,
                multiple: false,
            } => (
                "choice",
                options.iter().map(|o| o.value.clone()).collect(),
                Lookup::Options(options.iter().map(|o| o.value.clone()).collect()),
            ),
            FieldKind::Boolean {} => (
                "boolean",
                vec!["false".to_owned(), "true".to_owned()],
                Lookup::Boolean,
            ),
            _ => continue,
        };
        for &eye in field.eyes() {
            items.push(AgreementItem {
                column: column_name(&field.key, eye),
                field: field.key.clone(),
                eye,
                kind,
                categories: categories.clone(),
                weighted: kind == "ordinal",
                lookup: lookup.clone(),
            });
        }
    }
    items
}

/// Agreement of one grader pair on one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairFieldAgreement {
    /// The grader whose grades are the rows of the table (the smaller id).
    pub grader_a: String,
    /// The grader whose grades are the columns (the larger id).
    pub grader_b: String,
    /// The item (export column name).
    pub column: String,
    /// The field key.
    pub field: String,
    /// The eye, for per-eye fields.
    pub eye: Option<Eye>,
    /// Cases both graders rated on this item.
    pub n: u64,
    /// Percent of those with identical values (0–100).
    pub percent_agreement: Option<f64>,
    /// Cohen's kappa with its standard errors and 95% interval; `None` when undefined.
    pub kappa: Option<KappaResult>,
    /// Quadratic-weighted kappa (ordinal items only); `None` when undefined or not ordinal.
    pub quadratic_kappa: Option<KappaResult>,
}

/// Agreement of one grader with themself (primary grade against hidden repeat) on one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntraFieldAgreement {
    /// The grader id.
    pub grader: String,
    /// The item (export column name).
    pub column: String,
    /// The field key.
    pub field: String,
    /// The eye, for per-eye fields.
    pub eye: Option<Eye>,
    /// Cases graded twice and rated on this item both times.
    pub n: u64,
    /// Percent of those graded identically both times (0–100).
    pub percent_agreement: Option<f64>,
    /// Cohen's kappa (rows: primary grade, columns: repeat); `None` when undefined.
    pub kappa: Option<KappaResult>,
    /// Quadratic-weighted kappa (ordinal items only).
    pub quadratic_kappa: Option<KappaResult>,
}

/// Inter- and intra-grader agreement: `GET /api/studies/{code}/agreement`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// The study code.
    pub study: String,
    /// The batch the numbers are limited to; `None`: the whole study.
    pub batch: Option<Uuid>,
    /// The form code the items come from.
    pub form: String,
    /// The form's own version number.
    pub form_version: u32,
    /// Which grades are compared.
    pub basis: &'static str,
    /// Cases with at least two primary grades.
    pub cases_double_graded: u64,
    /// Cases with a graded hidden repeat.
    pub cases_repeated: u64,
    /// The rated items, in form order.
    pub items: Vec<AgreementItem>,
    /// Per item (form order), then grader pair.
    pub pairs: Vec<PairFieldAgreement>,
    /// Per item (form order), then grader.
    pub intra: Vec<IntraFieldAgreement>,
}

/// What [`Agreement::basis`] says.
pub const AGREEMENT_BASIS: &str = "latest version of each primary grade; intra-grader: latest primary grade against latest hidden repeat grade";

/// The latest version of each grade whose assignment satisfies `keep`.
fn latest_of(grades: &[Grade], keep: impl Fn(Uuid) -> bool) -> Vec<&Grade> {
    let mut latest: HashMap<Uuid, &Grade> = HashMap::new();
    for grade in grades.iter().filter(|g| keep(g.assignment_id)) {
        let entry = latest.entry(grade.assignment_id).or_insert(grade);
        if grade.version > entry.version {
            *entry = grade;
        }
    }
    let mut out: Vec<&Grade> = latest.into_values().collect();
    out.sort_by_key(|g| (g.case_id, g.grader_id, g.assignment_id));
    out
}

/// Ratings of `grades` on `items`: `(grade index, item index, category index)`.
fn rate(grades: &[&Grade], items: &[AgreementItem]) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::with_capacity(grades.len() * items.len());
    for (g, grade) in grades.iter().enumerate() {
        let values = &grade.values;
        for (i, item) in items.iter().enumerate() {
            let value = match item.eye {
                None => values.get(&item.field),
                Some(eye) => values.get(&item.field).and_then(|v| v.get(eye.as_str())),
            };
            if let Some(category) = value.and_then(|v| item.lookup.index(v)) {
                out.push((g, i, category));
            }
        }
    }
    out
}

/// Case and grader ids of `grades` as strings, for [`Rating`]s to borrow.
fn keys(grades: &[&Grade]) -> Vec<(String, String)> {
    grades
        .iter()
        .map(|g| (g.case_id.to_string(), g.grader_id.to_string()))
        .collect()
}

fn ratings<'a>(
    rated: &[(usize, usize, usize)],
    keys: &'a [(String, String)],
    items: &'a [AgreementItem],
) -> Vec<Rating<'a>> {
    rated
        .iter()
        .map(|&(g, i, value)| Rating {
            case: &keys[g].0,
            grader: &keys[g].1,
            item: &items[i].column,
            value,
        })
        .collect()
}

/// Inter-grader agreement (per grader pair and item) and intra-grader agreement (per grader and
/// item, on hidden repeats) of the rows' grades, on the categorical items of `form`.
pub fn agreement(rows: &StudyRecords, form: &Form) -> Agreement {
    let items = agreement_items(form);
    let position: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.column.as_str(), i))
        .collect();
    let unweighted: HashMap<&str, (usize, Weights)> = items
        .iter()
        .map(|item| {
            (
                item.column.as_str(),
                (item.categories.len(), Weights::Unweighted),
            )
        })
        .collect();
    let quadratic: HashMap<&str, (usize, Weights)> = items
        .iter()
        .filter(|item| item.weighted)
        .map(|item| {
            (
                item.column.as_str(),
                (item.categories.len(), Weights::Quadratic),
            )
        })
        .collect();

    // Inter-grader: the latest version of each primary grade.
    let primary_owned = latest_primary(&rows.grades, &rows.assignments);
    let primary: Vec<&Grade> = primary_owned.iter().collect();
    let mut per_case: HashMap<Uuid, u32> = HashMap::new();
    for grade in &primary {
        *per_case.entry(grade.case_id).or_default() += 1;
    }
    let cases_double_graded = per_case.values().filter(|&&n| n >= 2).count() as u64;
    let primary_keys = keys(&primary);
    let primary_ratings = ratings(&rate(&primary, &items), &primary_keys, &items);
    let plain = pairwise_by(&primary_ratings, |item| unweighted.get(item).copied());
    let weighted: HashMap<(String, String, String), Option<KappaResult>> =
        pairwise_by(&primary_ratings, |item| quadratic.get(item).copied())
            .into_iter()
            .map(|p| ((p.item, p.grader_a, p.grader_b), p.kappa))
            .collect();
    let mut pairs: Vec<PairFieldAgreement> = plain
        .into_iter()
        .filter_map(|p| {
            let item = &items[*position.get(p.item.as_str())?];
            let quadratic_kappa = weighted
                .get(&(p.item.clone(), p.grader_a.clone(), p.grader_b.clone()))
                .copied()
                .flatten();
            Some(PairFieldAgreement {
                grader_a: p.grader_a,
                grader_b: p.grader_b,
                column: p.item,
                field: item.field.clone(),
                eye: item.eye,
                n: p.n,
                percent_agreement: p.percent_agreement,
                kappa: reportable(p.kappa),
                quadratic_kappa: reportable(quadratic_kappa),
            })
        })
        .collect();
    pairs.sort_by(|x, y| {
        (position[x.column.as_str()], &x.grader_a, &x.grader_b).cmp(&(
            position[y.column.as_str()],
            &y.grader_a,
            &y.grader_b,
        ))
    });

    // Intra-grader: the latest version of each hidden repeat grade, against the same grader's
    // latest primary grade of the case.
    let repeat_ids: HashSet<Uuid> = rows
        .assignments
        .iter()
        .filter(|a| a.is_repeat())
        .map(|a| a.id)
        .collect();
    let repeat = latest_of(&rows.grades, |id| repeat_ids.contains(&id));
    let cases_repeated = repeat
        .iter()
        .map(|g| g.case_id)
        .collect::<HashSet<_>>()
        .len() as u64;
    let mut intra = Vec::new();
    if !repeat.is_empty() {
        let repeated: HashSet<(Uuid, Uuid)> =
            repeat.iter().map(|g| (g.case_id, g.grader_id)).collect();
        let first: Vec<&Grade> = primary
            .iter()
            .copied()
            .filter(|g| repeated.contains(&(g.case_id, g.grader_id)))
            .collect();
        let first_keys = keys(&first);
        let repeat_keys = keys(&repeat);
        let first_ratings = ratings(&rate(&first, &items), &first_keys, &items);
        let repeat_ratings = ratings(&rate(&repeat, &items), &repeat_keys, &items);
        let plain = intra_by(&first_ratings, &repeat_ratings, |item| {
            unweighted.get(item).copied()
        });
        let weighted: HashMap<(String, String), Option<KappaResult>> =
            intra_by(&first_ratings, &repeat_ratings, |item| {
                quadratic.get(item).copied()
            })
            .into_iter()
            .map(|r| ((r.item, r.grader), r.kappa))
            .collect();
        intra = plain
            .into_iter()
            .filter_map(|r| {
                let item = &items[*position.get(r.item.as_str())?];
                let quadratic_kappa = weighted
                    .get(&(r.item.clone(), r.grader.clone()))
                    .copied()
                    .flatten();
                Some(IntraFieldAgreement {
                    grader: r.grader,
                    column: r.item,
                    field: item.field.clone(),
                    eye: item.eye,
                    n: r.n,
                    percent_agreement: r.percent_agreement,
                    kappa: reportable(r.kappa),
                    quadratic_kappa: reportable(quadratic_kappa),
                })
            })
            .collect();
        intra.sort_by(|x: &IntraFieldAgreement, y: &IntraFieldAgreement| {
            (position[x.column.as_str()], &x.grader).cmp(&(position[y.column.as_str()], &y.grader))
        });
    }

    Agreement {
        study: rows.study.clone(),
        batch: rows.batch,
        form: form.code.clone(),
        form_version: form.version,
        basis: AGREEMENT_BASIS,
        cases_double_graded,
        cases_repeated,
        items,
        pairs,
        intra,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::grading::presets;
    use crate::grading::records::Adjudication;
    use serde_json::json;
    use time::Duration;

    pub(crate) fn t(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000 + seconds).unwrap()
    }

    pub(crate) fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    pub(crate) fn assignment(
        n: u128,
        case: Uuid,
        user: Uuid,
        kind: AssignmentKind,
        status: AssignmentStatus,
    ) -> Assignment {
        Assignment {
            id: id(n),
            case_id: case,
            user_id: user,
            role: AssignmentRole::Grader,
            assigned_at: t(n as i64),
            due_at: None,
            status,
            batch_id: None,
            kind,
        }
    }

    /// The members of a JSON object (`json!({...})`).
    pub(crate) fn object(values: Json) -> serde_json::Map<String, Json> {
        match values {
            Json::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// Adjudication round `round` of `case_id`: resolved to `values` (opened at t(5000), resolved
    /// at t(6000) by adjudicator 0xC), or open when `values` is `None`; no disagreements listed.
    pub(crate) fn adjudication(
        n: u128,
        case_id: Uuid,
        round: i32,
        values: Option<Json>,
    ) -> Adjudication {
        let resolved = values.is_some();
        Adjudication {
            id: id(n),
            case_id,
            round,
            disagreements: json!([]),
            grade_ids: Vec::new(),
            status: if resolved {
                AdjudicationStatus::Resolved
            } else {
                AdjudicationStatus::Open
            },
            created_at: t(5000),
            adjudicator_id: resolved.then(|| id(0xC)),
            form_id: None,
            values: values.map(object),
            render_state: None,
            lossless_sha256: None,
            reason: None,
            resolved_at: resolved.then(|| t(6000)),
        }
    }

    pub(crate) fn grade(n: u128, a: &Assignment, version: i32, values: Json) -> Grade {
        Grade {
            id: id(n),
            assignment_id: a.id,
            case_id: a.case_id,
            grader_id: a.user_id,
            form_id: id(999),
            version,
            values: object(values),
            render_state: None,
            lossless_sha256: None,
            reason: (version > 1).then(|| "typo".to_owned()),
            duration_ms: (version == 1).then_some(60_000 + n as i64),
            submitted_at: t(1000 + n as i64),
        }
    }

    fn case(n: u128) -> CaseInfo {
        CaseInfo {
            id: id(n),
            label: format!("C-{n:04}"),
            subject: Some(format!("S{n:06}")),
            visit: Some("V1".into()),
        }
    }

    /// Two graders, one ordinal field: the 3×3 table
    /// ```text
    ///            B=0  B=1  B=2
    ///     A=0     4    1    0
    ///     A=1     1    3    1
    ///     A=2     0    0    2
    /// ```
    /// By hand: n = 12, observed = 9/12 = 0.75; marginals A (5, 5, 2)/12, B (5, 4, 3)/12;
    /// expected = (25 + 20 + 6)/144 = 51/144; kappa = (0.75 − 51/144)/(1 − 51/144) = 57/93
    /// = 0.612903…
    /// Quadratic weights (1, 0.75, 0) by distance 0/1/2: observed = (9 + 0.75 × 3)/12 = 0.9375;
    /// expected = Σ w pᵢ qⱼ = [25 + 20 + 6 + 0.75 (20 + 15 + 25 + 8)]/144 = 102/144;
    /// kappa = (0.9375 − 102/144)/(1 − 102/144) = 33/42 = 0.785714…
    fn hand_example() -> (StudyRecords, Form) {
        let form = Form::parse(
            &json!({
                "schema": "readroom-form/1", "code": "t", "version": 1,
                "title": { "en": "T", "ko": "T" },
                "fields": [
                    { "key": "grade", "label": { "en": "Grade", "ko": "등급" }, "type": "ordinal",
                      "levels": [
                        { "value": 0, "label": { "en": "none", "ko": "없음" } },
                        { "value": 1, "label": { "en": "some", "ko": "약간" } },
                        { "value": 2, "label": { "en": "much", "ko": "많음" } } ] },
                    { "key": "note", "label": { "en": "Note", "ko": "메모" }, "type": "text",
                      "required": false }
                ]
            })
            .to_string(),
        )
        .unwrap();
        let pairs: [(i64, i64, usize); 7] = [
            (0, 0, 4),
            (0, 1, 1),
            (1, 0, 1),
            (1, 1, 3),
            (1, 2, 1),
            (2, 2, 2),
            (2, 0, 0),
        ];
        let (a, b) = (id(0xA), id(0xB));
        let mut rows = StudyRecords {
            study: "T".into(),
            ..StudyRecords::default()
        };
        let mut n = 100;
        for (va, vb, times) in pairs {
            for _ in 0..times {
                n += 10;
                let c = case(n);
                let aa = assignment(
                    n + 1,
                    c.id,
                    a,
                    AssignmentKind::Primary,
                    AssignmentStatus::Done,
                );
                let ab = assignment(
                    n + 2,
                    c.id,
                    b,
                    AssignmentKind::Primary,
                    AssignmentStatus::Done,
                );
                rows.grades
                    .push(grade(n + 3, &aa, 1, json!({ "grade": va })));
                rows.grades
                    .push(grade(n + 4, &ab, 1, json!({ "grade": vb })));
                rows.assignments.extend([aa, ab]);
                rows.cases.push(c);
            }
        }
        (rows, form)
    }

    #[test]
    fn kappa_matches_a_hand_computed_table() {
        let (rows, form) = hand_example();
        let result = agreement(&rows, &form);
        assert_eq!(result.items.len(), 1, "text fields are not rated");
        assert_eq!(result.cases_double_graded, 12);
        assert_eq!(result.pairs.len(), 1);
        let pair = &result.pairs[0];
        assert_eq!(pair.grader_a, id(0xA).to_string());
        assert_eq!(pair.grader_b, id(0xB).to_string());
        assert_eq!(pair.column, "grade");
        assert_eq!(pair.n, 12);
        assert!((pair.percent_agreement.unwrap() - 75.0).abs() < 1e-9);
        let kappa = pair.kappa.unwrap();
        assert!((kappa.kappa - 57.0 / 93.0).abs() < 1e-12, "{}", kappa.kappa);
        assert!((kappa.expected - 51.0 / 144.0).abs() < 1e-12);
        assert!(kappa.std_error.unwrap() > 0.0);
        let weighted = pair.quadratic_kappa.unwrap();
        assert!(
            (weighted.kappa - 33.0 / 42.0).abs() < 1e-12,
            "{}",
            weighted.kappa
        );
        assert!((weighted.observed - 0.9375).abs() < 1e-12);
        assert!(result.intra.is_empty());
        // The JSON the API answers.
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["pairs"][0]["column"], "grade");
        assert_eq!(json["items"][0]["categories"], json!(["0", "1", "2"]));
        assert!(json["items"][0].get("lookup").is_none());
    }

    #[test]
    fn amendments_count_with_their_latest_version_and_repeats_feed_intra() {
        let (mut rows, form) = hand_example();
        // Grader B amends the (A=0, B=1) case to 0: the table gains a diagonal case.
        let target = rows
            .grades
            .iter()
            .find(|g| g.grader_id == id(0xB) && g.values == object(json!({ "grade": 1 })))
            .unwrap()
            .clone();
        let amended = rows
            .assignments
            .iter()
            .find(|a| a.id == target.assignment_id)
            .unwrap()
            .clone();
        let other_a = rows
            .grades
            .iter()
            .find(|g| g.case_id == target.case_id && g.grader_id == id(0xA))
            .unwrap()
            .clone();
        assert_eq!(other_a.values, object(json!({ "grade": 0 })));
        rows.grades
            .push(grade(90_001, &amended, 2, json!({ "grade": 0 })));
        // Grader A repeats two cases: one identical, one different.
        let repeats: Vec<Grade> = rows
            .grades
            .iter()
            .filter(|g| g.grader_id == id(0xA))
            .take(2)
            .cloned()
            .collect();
        for (k, first) in repeats.iter().enumerate() {
            let a = assignment(
                80_000 + k as u128,
                first.case_id,
                id(0xA),
                AssignmentKind::Repeat,
                AssignmentStatus::Done,
            );
            let value = if k == 0 {
                json!({ "grade": 0 })
            } else {
                json!({ "grade": 2 })
            };
            rows.grades.push(grade(81_000 + k as u128, &a, 1, value));
            rows.assignments.push(a);
        }
        let result = agreement(&rows, &form);
        let pair = &result.pairs[0];
        assert_eq!(pair.n, 12, "repeats and old versions are not extra cases");
        assert!((pair.percent_agreement.unwrap() - 10.0 / 12.0 * 100.0).abs() < 1e-9);
        assert_eq!(result.cases_repeated, 2);
        assert_eq!(result.intra.len(), 1);
        let intra = &result.intra[0];
        assert_eq!(intra.grader, id(0xA).to_string());
        assert_eq!(intra.n, 2);
        assert_eq!(intra.percent_agreement, Some(50.0));
    }

    #[test]
    fn per_eye_fields_are_rated_per_eye_and_unknown_values_are_skipped() {
        let form = presets::demo();
        let items = agreement_items(&form);
        let columns: Vec<&str> = items.iter().map(|i| i.column.as_str()).collect();
        assert_eq!(
            columns,
            [
                "gradable_od",
                "gradable_os",
                "ungradable_reason_od",
                "ungradable_reason_os",
                "dr_grade_od",
                "dr_grade_os",
                "dme_od",
                "dme_os",
                "areds_category_od",
                "areds_category_os",
                // Whether both graders asked for an urgent referral is agreement too.
                "urgent_referral"
            ]
        );
        assert!(
            items
                .iter()
                .filter(|i| i.weighted)
                .all(|i| i.kind == "ordinal")
        );
        let c = id(1);
        let a = assignment(
            2,
            c,
            id(0xA),
            AssignmentKind::Primary,
            AssignmentStatus::Done,
        );
        let b = assignment(
            3,
            c,
            id(0xB),
            AssignmentKind::Primary,
            AssignmentStatus::Done,
        );
        let rows = StudyRecords {
            grades: vec![
                grade(
                    4,
                    &a,
                    1,
                    json!({ "dr_grade": { "OD": 2, "OS": 9 }, "dme": { "OD": "cannot_grade" } }),
                ),
                grade(
                    5,
                    &b,
                    1,
                    json!({ "dr_grade": { "OD": 2, "OS": 1 }, "dme": { "OD": "none" } }),
                ),
            ],
            assignments: vec![a, b],
            cases: vec![case(1)],
            ..StudyRecords::default()
        };
        let result = agreement(&rows, &form);
        let columns: Vec<&str> = result.pairs.iter().map(|p| p.column.as_str()).collect();
        assert_eq!(
            columns,
            ["dr_grade_od"],
            "9 is not a level: OS left out; cannot grade is not a category: DME OD left out"
        );
        assert_eq!(result.pairs[0].percent_agreement, Some(100.0));
        assert_eq!(
            result.pairs[0].kappa, None,
            "one category only: kappa undefined"
        );
    }

    #[test]
    fn progress_counts_statuses_cases_rounds_and_times() {
        let (mut rows, _) = hand_example();
        let now = t(10_000);
        // One more case, half graded, overdue.
        let c = case(7);
        let mut open = assignment(
            8,
            c.id,
            id(0xA),
            AssignmentKind::Primary,
            AssignmentStatus::InProgress,
        );
        open.due_at = Some(now - Duration::hours(1));
        let done = assignment(
            9,
            c.id,
            id(0xB),
            AssignmentKind::Primary,
            AssignmentStatus::Assigned,
        );
        rows.assignments.extend([open, done]);
        rows.cases.push(c);
        rows.cases.push(case(6)); // never assigned
        // An open round on the first case and a resolved one on the second.
        let first = rows.cases[0].id;
        let second = rows.cases[1].id;
        let round = |case_id: Uuid, resolved: bool| Adjudication {
            created_at: t(2000),
            resolved_at: resolved.then(|| t(2060)),
            ..adjudication(
                0xAD00 + u128::from(resolved),
                case_id,
                1,
                resolved.then(|| json!({})),
            )
        };
        rows.adjudications = vec![round(first, false), round(second, true)];
        let p = progress(&rows, now);
        assert_eq!(p.cases.total, 14);
        assert_eq!(p.cases.unassigned, 1);
        assert_eq!(p.cases.grading, 1);
        assert_eq!(p.cases.graded, 12);
        assert_eq!(p.cases.awaiting_adjudication, 1);
        assert_eq!(p.cases.adjudicated, 1);
        assert_eq!(p.cases.complete, 11);
        assert_eq!(
            p.grading,
            StatusCounts {
                total: 26,
                due: 1,
                in_progress: 1,
                done: 24,
                overdue: 1
            }
        );
        assert_eq!(p.grades_submitted, 24);
        assert_eq!(p.adjudications.open, 1);
        assert_eq!(p.adjudications.resolved, 1);
        assert_eq!(p.graders.len(), 2);
        let a = &p.graders[0];
        assert_eq!(a.grader_id, id(0xA));
        assert_eq!(a.graded, 12);
        assert_eq!(a.timed, 12);
        assert_eq!(a.assignments.overdue, 1);
        // Durations of A: 60 000 + (n + 3) for n = 110, 120, …, 220: median of 12 values.
        assert_eq!(a.median_ms, Some(60_000 + (160 + 170) / 2 + 3));
        assert_eq!(p.adjudicators.len(), 1);
        assert_eq!(p.adjudicators[0].resolved, 1);
        assert_eq!(p.adjudicators[0].median_turnaround_ms, Some(60_000));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["grading"]["overdue"], 1);
        assert!(json["generated_at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn batch_scope_keeps_the_batch_and_its_cases() {
        let (mut rows, form) = hand_example();
        let batch = Batch {
            id: id(0xBA7C),
            study_id: id(1),
            name: "first".into(),
            per_case: 2,
            repeat_fraction: 0.0,
            due_at: None,
            created_at: t(0),
            created_by: None,
        };
        let in_batch: HashSet<Uuid> = rows.cases.iter().take(3).map(|c| c.id).collect();
        for a in &mut rows.assignments {
            if in_batch.contains(&a.case_id) {
                a.batch_id = Some(batch.id);
            }
        }
        rows.batches.push(batch.clone());
        assert!(rows.batch_scope(id(0xDEAD)).is_none());
        let scoped = rows.batch_scope(batch.id).unwrap();
        assert_eq!(scoped.cases.len(), 3);
        assert_eq!(scoped.grades.len(), 6);
        let p = progress(&scoped, t(0));
        assert_eq!(p.batch.as_ref().unwrap().cases, 3);
        assert_eq!(p.batch.as_ref().unwrap().grading.done, 6);
        assert_eq!(agreement(&scoped, &form).pairs[0].n, 3);
        let whole = progress(&rows, t(0));
        assert_eq!(whole.batches[0].cases, 3);
        assert!(whole.batch.is_none());
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5]), Some(5));
        assert_eq!(median(&mut [9, 1, 5]), Some(5));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
    }

    /// The benchmark target: 6,000 cases × 2 graders in under a second (optimized build; the
    /// unoptimized test build gets more room).
    #[test]
    fn agreement_of_6000_cases_is_fast() {
        let form = presets::demo();
        let mut rows = StudyRecords::default();
        let graders = [id(0xA), id(0xB), id(0xC), id(0xD)];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |k: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % k
        };
        for n in 0..6000u128 {
            let c = id(1_000_000 + n);
            let truth = next(5) as i64;
            for (j, &g) in [graders[(n % 4) as usize], graders[((n + 1) % 4) as usize]]
                .iter()
                .enumerate()
            {
                let a = assignment(
                    2_000_000 + n * 2 + j as u128,
                    c,
                    g,
                    AssignmentKind::Primary,
                    AssignmentStatus::Done,
                );
                let dr = if next(4) == 0 {
                    (truth + 1).min(4)
                } else {
                    truth
                };
                let values = json!({
                    "gradable": { "OD": "gradable", "OS": "gradable" },
                    "dr_grade": { "OD": dr, "OS": truth },
                    "dme": { "OD": "none", "OS": if next(3) == 0 { "centre_involving" } else { "none" } },
                    "areds_category": { "OD": 1 + next(4) as i64, "OS": 1 + next(4) as i64 },
                    "vcdr": { "OD": 0.3, "OS": 0.35 },
                });
                rows.grades
                    .push(grade(3_000_000 + n * 2 + j as u128, &a, 1, values));
                rows.assignments.push(a);
            }
        }
        let started = std::time::Instant::now();
        let result = agreement(&rows, &form);
        let body = serde_json::to_vec(&result).unwrap();
        let elapsed = started.elapsed();
        assert!(!body.is_empty());
        assert_eq!(result.cases_double_graded, 6000);
        // 4 adjacent pairs (A-B, B-C, C-D, A-D) × 8 items with values.
        assert_eq!(result.pairs.len(), 4 * 8);
        let limit = if cfg!(debug_assertions) { 3.0 } else { 1.0 };
        assert!(elapsed.as_secs_f64() < limit, "agreement took {elapsed:?}");
        eprintln!("agreement of 6000 cases x 2 graders, with its JSON: {elapsed:?}");
    }
}
