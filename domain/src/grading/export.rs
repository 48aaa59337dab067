//! Exports of a study's grading: grades (final, and every version), adjudications and
//! statistics, as CSV and JSON, with the data dictionary derived from the form
//! (`GET /api/studies/{code}/export?format=csv|json`).
//!
//! [`load`] reads everything once into an [`Export`]; the rest are pure functions from loaded
//! rows to a `String` (CSV, RFC 4180: comma-separated, CRLF line ends, fields with commas,
//! quotes or line breaks quoted and quotes doubled, UTF-8 without BOM) or a
//! [`serde_json::Value`].
//!
//! - **Final grades** ([`final_grades`]): only cases whose result is final: the values of the
//!   latest resolved adjudication round when there is one (and no round is open); otherwise,
//!   once every primary grading of the case is submitted and no adjudication round was opened
//!   (the grades agree), the latest version of each primary grade (one row per grader). A case
//!   with a grading still missing, or waiting for adjudication, is not in it. Hidden repeats are
//!   never final.
//! - **All versions** ([`all_versions`]): every stored grade version, primary and repeat.
//! - Form values fill one column per dictionary column (per-eye fields: `_od`, `_os`) of the
//!   study's current form, read from the stored JSON (a field an older form version had and
//!   the current one lacks appears only in the JSON export's `values`).
//! - Grader and adjudicator columns hold user ids, never names. The render state is in the
//!   JSON export only.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{Column, Form, dictionary};
use serde::Serialize;
use serde_json::{Map, Value as Json, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::records::{
    Adjudication, AdjudicationStatus, AssignmentKind, AssignmentStatus, FormVersion, Grade,
    StudyRecords, latest_primary,
};
use super::stats::{self, Agreement, CaseInfo, Progress, rfc3339};

/// The `format` member of the JSON export.
pub const EXPORT_FORMAT: &str = "readroom-export/1";

/// Everything an export is made from, loaded once.
#[derive(Debug, Clone)]
pub struct Export {
    /// The study's rows.
    pub rows: StudyRecords,
    /// The study's current form.
    pub form: FormVersion,
    /// Progress at `generated_at`.
    pub progress: Progress,
    /// Agreement statistics.
    pub agreement: Agreement,
    /// When the export was made.
    pub generated_at: OffsetDateTime,
}

/// Assembles an export from loaded rows (computes its statistics).
pub fn build(rows: StudyRecords, form: FormVersion, generated_at: OffsetDateTime) -> Export {
    let progress = stats::progress(&rows, generated_at);
    let agreement = stats::agreement(&rows, &form.form);
    Export {
        rows,
        form,
        progress,
        agreement,
        generated_at,
    }
}

// ---------------------------------------------------------------------------------------------
// CSV

/// A CSV field: as is, or quoted (quotes doubled) when it holds a comma, a quote, a line break,
/// or starts or ends with a space.
pub fn quote(field: &str) -> Cow<'_, str> {
    let needs =
        field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ');
    if needs {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// Appends one CSV record (CRLF-terminated) to `out`.
pub fn push_record<S: AsRef<str>>(out: &mut String, fields: impl IntoIterator<Item = S>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(field.as_ref()));
    }
    out.push_str("\r\n");
}

/// The CSV tables an export offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CsvTable {
    /// Final grades ([`final_grades`]).
    Grades,
    /// Every grade version ([`all_versions`]).
    Versions,
    /// Adjudication rounds.
    Adjudications,
    /// Agreement per grader pair and item, and intra-grader agreement.
    Agreement,
    /// Progress and pace per grader and adjudicator.
    Throughput,
    /// The data dictionary.
    Dictionary,
}

impl CsvTable {
    /// Every table, in the order an export lists them.
    pub const ALL: [CsvTable; 6] = [
        CsvTable::Grades,
        CsvTable::Versions,
        CsvTable::Adjudications,
        CsvTable::Agreement,
        CsvTable::Throughput,
        CsvTable::Dictionary,
    ];

    /// The table's name in query strings and file names: `grades`, `versions`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            CsvTable::Grades => "grades",
            CsvTable::Versions => "versions",
            CsvTable::Adjudications => "adjudications",
            CsvTable::Agreement => "agreement",
            CsvTable::Throughput => "throughput",
            CsvTable::Dictionary => "dictionary",
        }
    }

    /// The table named `name`, if any.
    pub fn from_name(name: &str) -> Option<CsvTable> {
        CsvTable::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// A download file name: `DEMO-grades.csv`.
    pub fn file_name(self, study: &str) -> String {
        format!("{study}-{}.csv", self.as_str())
    }
}

/// One table of `export` as CSV.
pub fn to_csv(export: &Export, table: CsvTable) -> String {
    let form = &export.form.form;
    match table {
        CsvTable::Grades => grades_csv(form, &export.rows, Selection::Final),
        CsvTable::Versions => grades_csv(form, &export.rows, Selection::AllVersions),
        CsvTable::Adjudications => adjudications_csv(form, &export.rows),
        CsvTable::Agreement => agreement_csv(&export.agreement),
        CsvTable::Throughput => throughput_csv(&export.progress),
        CsvTable::Dictionary => dictionary_csv(form),
    }
}

// ---------------------------------------------------------------------------------------------
// Selection

/// Which grades an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Selection {
    /// The final result per case ([`final_grades`]).
    Final,
    /// Every stored version ([`all_versions`]).
    AllVersions,
}

/// Where a final grade comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FinalGrade<'a> {
    /// The latest resolved adjudication round of the case.
    Adjudicated(&'a Adjudication),
    /// The latest version of a primary grade of a case whose primary grades are all in and
    /// agree (no adjudication round).
    Graded {
        /// The grade version.
        grade: &'a Grade,
    },
}

impl FinalGrade<'_> {
    /// The case.
    pub fn case_id(&self) -> Uuid {
        match self {
            FinalGrade::Adjudicated(round) => round.case_id,
            FinalGrade::Graded { grade, .. } => grade.case_id,
        }
    }
}

/// Case order of exports: by label, then by id; cases missing from `rows.cases` last.
fn case_order(rows: &StudyRecords) -> HashMap<Uuid, usize> {
    rows.cases
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id, i))
        .collect()
}

/// The final grade(s) of every case whose result is final, in case order:
/// - a case with an open adjudication round is not final (its grades disagree and wait);
/// - else the latest resolved adjudication round, where one exists;
/// - else, when every primary grader assignment of the case is done and has a grade, the latest
///   version of each primary grade (oldest assignment first): they agree, since grades that
///   disagree open a round when the second one is submitted ([`super::route_disagreement`]);
/// - else (a required grading is missing) the case is not final.
pub fn final_grades(rows: &StudyRecords) -> Vec<FinalGrade<'_>> {
    let mut resolved: HashMap<Uuid, &Adjudication> = HashMap::new();
    let mut open: HashMap<Uuid, bool> = HashMap::new();
    for round in &rows.adjudications {
        if round.status == AdjudicationStatus::Resolved && round.values.is_some() {
            let entry = resolved.entry(round.case_id).or_insert(round);
            if round.round > entry.round {
                *entry = round;
            }
        } else if round.status == AdjudicationStatus::Open {
            open.insert(round.case_id, true);
        }
    }
    // Primary grader assignments per case, and how many of them are done.
    let mut required: HashMap<Uuid, (usize, usize)> = HashMap::new();
    for a in rows.assignments.iter().filter(|a| a.is_primary_grading()) {
        let entry = required.entry(a.case_id).or_default();
        entry.0 += 1;
        if a.status == AssignmentStatus::Done {
            entry.1 += 1;
        }
    }
    let latest = latest_primary(&rows.grades, &rows.assignments);
    let by_id: HashMap<Uuid, &Grade> = rows.grades.iter().map(|g| (g.id, g)).collect();
    let mut graded: HashMap<Uuid, Vec<&Grade>> = HashMap::new();
    for grade in &latest {
        if let Some(stored) = by_id.get(&grade.id) {
            graded.entry(grade.case_id).or_default().push(stored);
        }
    }
    let complete = |case: &Uuid, grades: &Vec<&Grade>| {
        required
            .get(case)
            .is_some_and(|&(total, done)| total > 0 && done == total && grades.len() == total)
    };
    let order = case_order(rows);
    let mut cases: Vec<Uuid> = resolved.keys().chain(graded.keys()).copied().collect();
    cases.sort_by_key(|id| (order.get(id).copied().unwrap_or(usize::MAX), *id));
    cases.dedup();
    let mut out = Vec::new();
    for case in cases {
        if open.contains_key(&case) {
            continue;
        }
        if let Some(round) = resolved.get(&case) {
            out.push(FinalGrade::Adjudicated(round));
        } else if let Some(grades) = graded.get(&case).filter(|g| complete(&case, g)) {
            out.extend(grades.iter().map(|grade| FinalGrade::Graded { grade }));
        }
    }
    out
}

/// Every grade version, in case order, then by assignment (oldest first) and version.
pub fn all_versions(rows: &StudyRecords) -> Vec<&Grade> {
    let order = case_order(rows);
    let assigned: HashMap<Uuid, time::OffsetDateTime> = rows
        .assignments
        .iter()
        .map(|a| (a.id, a.assigned_at))
        .collect();
    let mut out: Vec<&Grade> = rows.grades.iter().collect();
    out.sort_by_key(|g| {
        (
            order.get(&g.case_id).copied().unwrap_or(usize::MAX),
            g.case_id,
            assigned.get(&g.assignment_id),
            g.assignment_id,
            g.version,
        )
    });
    out
}

// ---------------------------------------------------------------------------------------------
// Cells

/// A stored value as an export cell, like the domain's `Value::cell`: `true`/`false`, numbers
/// as written (`2`, `0.45`), option values, multiple choices joined with `;`, texts as they are,
/// and an empty cell for no value.
fn json_cell(value: Option<&Json>) -> String {
    match value {
        None | Some(Json::Null) => String::new(),
        Some(Json::Bool(b)) => b.to_string(),
        Some(Json::Number(n)) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        Some(Json::String(s)) => s.clone(),
        Some(Json::Array(items)) => items
            .iter()
            .map(|item| json_cell(Some(item)))
            .collect::<Vec<_>>()
            .join(";"),
        Some(object @ Json::Object(_)) => object.to_string(),
    }
}

/// One cell per dictionary column of the form (all empty without values).
fn form_cells(columns: &[Column], values: Option<&Map<String, Json>>) -> Vec<String> {
    columns
        .iter()
        .map(|column| {
            let value = values.and_then(|values| values.get(&column.field));
            let value = match column.eye {
                None => value,
                Some(eye) => value.and_then(|v| v.get(eye.as_str())),
            };
            json_cell(value)
        })
        .collect()
}

struct Cases<'a> {
    by_id: HashMap<Uuid, &'a CaseInfo>,
}

impl<'a> Cases<'a> {
    fn new(rows: &'a StudyRecords) -> Self {
        Cases {
            by_id: rows.cases.iter().map(|c| (c.id, c)).collect(),
        }
    }

    /// Label, subject and visit of a case (empty when unknown).
    fn cells(&self, case: Uuid) -> [String; 3] {
        match self.by_id.get(&case) {
            Some(c) => [
                c.label.clone(),
                c.subject.clone().unwrap_or_default(),
                c.visit.clone().unwrap_or_default(),
            ],
            None => Default::default(),
        }
    }
}

fn opt_time(time: Option<OffsetDateTime>) -> String {
    time.map(rfc3339).unwrap_or_default()
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Grades

/// Fixed leading columns of the final grades table.
pub const FINAL_COLUMNS: [&str; 11] = [
    "case_label",
    "case_id",
    "subject",
    "visit",
    "source",
    "grader_id",
    "version",
    "round",
    "submitted_at",
    "adjudication",
    "kind",
];

/// Fixed leading columns of the all-versions table.
pub const VERSION_COLUMNS: [&str; 11] = [
    "case_label",
    "case_id",
    "subject",
    "visit",
    "grade_id",
    "grader_id",
    "kind",
    "version",
    "submitted_at",
    "duration_ms",
    "reason",
];

fn grade_kinds(rows: &StudyRecords) -> HashMap<Uuid, &'static str> {
    rows.assignments
        .iter()
        .map(|a| (a.id, a.kind.as_str()))
        .collect()
}

/// Grades as CSV: the fixed columns ([`FINAL_COLUMNS`] or [`VERSION_COLUMNS`]), one column per
/// dictionary column of `form`, then `lossless_sha256`.
pub fn grades_csv(form: &Form, rows: &StudyRecords, selection: Selection) -> String {
    let columns = dictionary(form);
    let cases = Cases::new(rows);
    let mut out = String::new();
    let fixed: &[&str] = match selection {
        Selection::Final => &FINAL_COLUMNS,
        Selection::AllVersions => &VERSION_COLUMNS,
    };
    let header = fixed
        .iter()
        .map(|s| s.to_string())
        .chain(columns.iter().map(|c| c.name.clone()))
        .chain(["lossless_sha256".to_owned()]);
    push_record(&mut out, header);
    match selection {
        Selection::Final => {
            for row in final_grades(rows) {
                let [label, subject, visit] = cases.cells(row.case_id());
                let (lead, values, sha) = match row {
                    FinalGrade::Adjudicated(round) => (
                        vec![
                            "adjudication".to_owned(),
                            opt(round.adjudicator_id),
                            String::new(),
                            round.round.to_string(),
                            opt_time(round.resolved_at),
                            AdjudicationStatus::Resolved.to_string(),
                            String::new(),
                        ],
                        round.values.as_ref(),
                        round.lossless_sha256.clone(),
                    ),
                    FinalGrade::Graded { grade } => (
                        vec![
                            "grade".to_owned(),
                            grade.grader_id.to_string(),
                            grade.version.to_string(),
                            String::new(),
                            rfc3339(grade.submitted_at),
                            String::new(),
                            AssignmentKind::Primary.to_string(),
                        ],
                        Some(&grade.values),
                        grade.lossless_sha256.clone(),
                    ),
                };
                let record = [label, row.case_id().to_string(), subject, visit]
                    .into_iter()
                    .chain(lead)
                    .chain(form_cells(&columns, values))
                    .chain([sha.unwrap_or_default()]);
                push_record(&mut out, record);
            }
        }
        Selection::AllVersions => {
            let kinds = grade_kinds(rows);
            for grade in all_versions(rows) {
                let [label, subject, visit] = cases.cells(grade.case_id);
                let record = [
                    label,
                    grade.case_id.to_string(),
                    subject,
                    visit,
                    grade.id.to_string(),
                    grade.grader_id.to_string(),
                    kinds
                        .get(&grade.assignment_id)
                        .copied()
                        .unwrap_or("")
                        .to_owned(),
                    grade.version.to_string(),
                    rfc3339(grade.submitted_at),
                    opt(grade.duration_ms),
                    grade.reason.clone().unwrap_or_default(),
                ]
                .into_iter()
                .chain(form_cells(&columns, Some(&grade.values)))
                .chain([grade.lossless_sha256.clone().unwrap_or_default()]);
                push_record(&mut out, record);
            }
        }
    }
    out
}

fn case_json(cases: &Cases<'_>, case: Uuid) -> serde_json::Map<String, Json> {
    let [label, subject, visit] = cases.cells(case);
    let mut object = serde_json::Map::new();
    object.insert("case_label".into(), json!(label));
    object.insert("case_id".into(), json!(case));
    object.insert("subject".into(), json!(subject));
    object.insert("visit".into(), json!(visit));
    object
}

/// Grades as JSON objects: the fixed members, `values` (the stored grade), `lossless_sha256`
/// and `render_state` (the view the grade was made on).
pub fn grades_json(rows: &StudyRecords, selection: Selection) -> Json {
    let cases = Cases::new(rows);
    let kinds = grade_kinds(rows);
    let grade_object = |grade: &Grade| {
        let mut object = case_json(&cases, grade.case_id);
        for (key, value) in [
            ("source", json!("grade")),
            ("grade_id", json!(grade.id)),
            ("grader_id", json!(grade.grader_id)),
            ("kind", json!(kinds.get(&grade.assignment_id).copied())),
            ("version", json!(grade.version)),
            ("submitted_at", json!(rfc3339(grade.submitted_at))),
            ("duration_ms", json!(grade.duration_ms)),
            ("reason", json!(grade.reason)),
            ("form_id", json!(grade.form_id)),
            ("values", Json::Object(grade.values.clone())),
            ("lossless_sha256", json!(grade.lossless_sha256)),
            ("render_state", json!(grade.render_state)),
        ] {
            object.insert(key.into(), value);
        }
        object
    };
    let items: Vec<Json> = match selection {
        Selection::AllVersions => all_versions(rows)
            .into_iter()
            .map(|g| Json::Object(grade_object(g)))
            .collect(),
        Selection::Final => final_grades(rows)
            .into_iter()
            .map(|row| match row {
                FinalGrade::Graded { grade } => {
                    let mut object = grade_object(grade);
                    object.insert("adjudication".into(), Json::Null);
                    Json::Object(object)
                }
                FinalGrade::Adjudicated(round) => {
                    let mut object = case_json(&cases, round.case_id);
                    for (key, value) in [
                        ("source", json!("adjudication")),
                        ("adjudication_id", json!(round.id)),
                        ("grader_id", json!(round.adjudicator_id)),
                        ("round", json!(round.round)),
                        ("submitted_at", json!(round.resolved_at.map(rfc3339))),
                        ("adjudication", json!(AdjudicationStatus::Resolved)),
                        ("form_id", json!(round.form_id)),
                        ("values", json!(round.values)),
                        ("lossless_sha256", json!(round.lossless_sha256)),
                        ("render_state", json!(round.render_state)),
                    ] {
                        object.insert(key.into(), value);
                    }
                    Json::Object(object)
                }
            })
            .collect(),
    };
    Json::Array(items)
}

// ---------------------------------------------------------------------------------------------
// Adjudications

/// Fixed leading columns of the adjudications table.
pub const ADJUDICATION_COLUMNS: [&str; 12] = [
    "case_label",
    "case_id",
    "subject",
    "visit",
    "adjudication_id",
    "round",
    "status",
    "created_at",
    "disagreements",
    "grade_ids",
    "adjudicator_id",
    "resolved_at",
];

/// The disagreement list of a round as `dr_grade_od;dme_os`.
fn disagreement_columns(disagreements: &Json) -> String {
    let Json::Array(items) = disagreements else {
        return String::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let field = item.get("field")?.as_str()?;
            Some(match item.get("eye").and_then(Json::as_str) {
                Some(eye) => format!("{field}_{}", eye.to_ascii_lowercase()),
                None => field.to_owned(),
            })
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn rounds_in_order(rows: &StudyRecords) -> Vec<&Adjudication> {
    let order = case_order(rows);
    let mut rounds: Vec<&Adjudication> = rows.adjudications.iter().collect();
    rounds.sort_by_key(|r| {
        (
            order.get(&r.case_id).copied().unwrap_or(usize::MAX),
            r.case_id,
            r.round,
        )
    });
    rounds
}

/// Adjudication rounds as CSV: [`ADJUDICATION_COLUMNS`], `reason`, one column per dictionary
/// column (the final values, empty while open), then `lossless_sha256`.
pub fn adjudications_csv(form: &Form, rows: &StudyRecords) -> String {
    let columns = dictionary(form);
    let cases = Cases::new(rows);
    let mut out = String::new();
    let header = ADJUDICATION_COLUMNS
        .iter()
        .map(|s| s.to_string())
        .chain(["reason".to_owned()])
        .chain(columns.iter().map(|c| c.name.clone()))
        .chain(["lossless_sha256".to_owned()]);
    push_record(&mut out, header);
    for round in rounds_in_order(rows) {
        let [label, subject, visit] = cases.cells(round.case_id);
        let grade_ids = round
            .grade_ids
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(";");
        let record = [
            label,
            round.case_id.to_string(),
            subject,
            visit,
            round.id.to_string(),
            round.round.to_string(),
            round.status.to_string(),
            rfc3339(round.created_at),
            disagreement_columns(&round.disagreements),
            grade_ids,
            opt(round.adjudicator_id),
            opt_time(round.resolved_at),
            round.reason.clone().unwrap_or_default(),
        ]
        .into_iter()
        .chain(form_cells(&columns, round.values.as_ref()))
        .chain([round.lossless_sha256.clone().unwrap_or_default()]);
        push_record(&mut out, record);
    }
    out
}

/// Adjudication rounds as JSON objects (disagreements and grade ids as stored, final values
/// under `values`).
pub fn adjudications_json(rows: &StudyRecords) -> Json {
    let cases = Cases::new(rows);
    Json::Array(
        rounds_in_order(rows)
            .into_iter()
            .map(|round| {
                let mut object = case_json(&cases, round.case_id);
                for (key, value) in [
                    ("adjudication_id", json!(round.id)),
                    ("round", json!(round.round)),
                    ("status", json!(round.status)),
                    ("created_at", json!(rfc3339(round.created_at))),
                    ("disagreements", round.disagreements.clone()),
                    ("grade_ids", json!(round.grade_ids)),
                    ("adjudicator_id", json!(round.adjudicator_id)),
                    ("resolved_at", json!(round.resolved_at.map(rfc3339))),
                    ("reason", json!(round.reason)),
                    ("form_id", json!(round.form_id)),
                    ("values", json!(round.values)),
                    ("lossless_sha256", json!(round.lossless_sha256)),
                    ("render_state", json!(round.render_state)),
                ] {
                    object.insert(key.into(), value);
                }
                Json::Object(object)
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// A statistic as a cell: up to 6 decimals, trailing zeros dropped; empty for none.
fn number(value: Option<f64>) -> String {
    let Some(value) = value.filter(|v| v.is_finite()) else {
        return String::new();
    };
    let text = format!("{value:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

fn kappa_cells(kappa: Option<&crate::agreement::KappaResult>) -> [String; 4] {
    match kappa {
        None => Default::default(),
        Some(k) => [
            number(Some(k.kappa)),
            number(k.std_error),
            number(k.ci95.map(|c| c.0)),
            number(k.ci95.map(|c| c.1)),
        ],
    }
}

/// Columns of the agreement table.
pub const AGREEMENT_COLUMNS: [&str; 17] = [
    "type",
    "grader_a",
    "grader_b",
    "column",
    "field",
    "eye",
    "n",
    "percent_agreement",
    "kappa",
    "kappa_se",
    "kappa_ci95_low",
    "kappa_ci95_high",
    "quadratic_kappa",
    "quadratic_kappa_se",
    "quadratic_kappa_ci95_low",
    "quadratic_kappa_ci95_high",
    "basis",
];

/// Agreement as CSV: one `pair` row per grader pair and item, one `intra` row per grader and
/// item (its grader in `grader_a`, `grader_b` empty).
pub fn agreement_csv(agreement: &Agreement) -> String {
    let mut out = String::new();
    push_record(&mut out, AGREEMENT_COLUMNS);
    for p in &agreement.pairs {
        let record = [
            "pair".to_owned(),
            p.grader_a.clone(),
            p.grader_b.clone(),
            p.column.clone(),
            p.field.clone(),
            opt(p.eye),
            p.n.to_string(),
            number(p.percent_agreement),
        ]
        .into_iter()
        .chain(kappa_cells(p.kappa.as_ref()))
        .chain(kappa_cells(p.quadratic_kappa.as_ref()))
        .chain(["inter".to_owned()]);
        push_record(&mut out, record);
    }
    for r in &agreement.intra {
        let record = [
            "intra".to_owned(),
            r.grader.clone(),
            String::new(),
            r.column.clone(),
            r.field.clone(),
            opt(r.eye),
            r.n.to_string(),
            number(r.percent_agreement),
        ]
        .into_iter()
        .chain(kappa_cells(r.kappa.as_ref()))
        .chain(kappa_cells(r.quadratic_kappa.as_ref()))
        .chain(["repeat".to_owned()]);
        push_record(&mut out, record);
    }
    out
}

/// Columns of the throughput table.
pub const THROUGHPUT_COLUMNS: [&str; 15] = [
    "user_id",
    "role",
    "assignments",
    "due",
    "in_progress",
    "done",
    "overdue",
    "repeats",
    "repeats_done",
    "graded",
    "amendments",
    "timed",
    "median_ms",
    "mean_ms",
    "last_submitted_at",
];

/// Progress per grader and adjudicator as CSV (ids, never names). Adjudicators' `median_ms`
/// is the median time from a round opening to its resolution.
pub fn throughput_csv(progress: &Progress) -> String {
    let mut out = String::new();
    push_record(&mut out, THROUGHPUT_COLUMNS);
    for g in &progress.graders {
        push_record(
            &mut out,
            [
                g.grader_id.to_string(),
                "grader".to_owned(),
                g.assignments.total.to_string(),
                g.assignments.due.to_string(),
                g.assignments.in_progress.to_string(),
                g.assignments.done.to_string(),
                (g.assignments.overdue + g.repeats.overdue).to_string(),
                g.repeats.total.to_string(),
                g.repeats.done.to_string(),
                g.graded.to_string(),
                g.amendments.to_string(),
                g.timed.to_string(),
                opt(g.median_ms),
                opt(g.mean_ms),
                g.last_submitted_at.clone().unwrap_or_default(),
            ],
        );
    }
    for a in &progress.adjudicators {
        push_record(
            &mut out,
            [
                a.adjudicator_id.to_string(),
                "adjudicator".to_owned(),
                a.assignments.total.to_string(),
                a.assignments.due.to_string(),
                a.assignments.in_progress.to_string(),
                a.assignments.done.to_string(),
                a.assignments.overdue.to_string(),
                String::new(),
                String::new(),
                a.resolved.to_string(),
                String::new(),
                String::new(),
                opt(a.median_turnaround_ms),
                String::new(),
                String::new(),
            ],
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Data dictionary

/// One entry of the data dictionary: a column of the export tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DictionaryEntry {
    /// Column name.
    pub name: String,
    /// The tables holding the column (`grades`, `versions`, `adjudications`).
    pub tables: Vec<&'static str>,
    /// The form field, for form columns.
    pub field: Option<String>,
    /// The eye, for per-eye form columns (`OD` / `OS`).
    pub eye: Option<String>,
    /// `id`, `text`, `time`, `integer`, `sha256` for fixed columns; the form's kind
    /// (`choice`, `multiple_choice`, `ordinal`, `number`, `boolean`, `text`) for form columns.
    pub kind: String,
    /// What cells may hold.
    pub allowed: String,
    /// Unit of a number column.
    pub unit: Option<String>,
    /// English label or description.
    pub label_en: String,
    /// Korean label or description.
    pub label_ko: String,
    /// Whether a submitted grade always has a value here when the condition holds.
    pub required: bool,
    /// When the field is asked, in words naming columns.
    pub condition: Option<String>,
}

const G: &str = "grades";
const V: &str = "versions";
const A: &str = "adjudications";

/// The fixed columns: (name, tables, kind, allowed, English, Korean).
type Fixed = (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const FIXED: &[Fixed] = &[
    (
        "case_label",
        &[G, V, A],
        "text",
        "C-0001, …",
        "Case label, unique in the study",
        "증례 라벨 (연구 내 고유)",
    ),
    ("case_id", &[G, V, A], "id", "UUID", "Case id", "증례 ID"),
    (
        "subject",
        &[G, V, A],
        "text",
        "pseudonym",
        "Subject pseudonym of the bundle",
        "대상자 가명",
    ),
    (
        "visit",
        &[G, V, A],
        "text",
        "pseudonym",
        "Visit pseudonym of the bundle",
        "방문 가명",
    ),
    (
        "source",
        &[G],
        "text",
        "grade; adjudication",
        "Where the final values come from: a grader's grade, or the resolved adjudication",
        "최종값의 출처: 판독 또는 판정",
    ),
    (
        "grade_id",
        &[V],
        "id",
        "UUID",
        "Grade version id",
        "판독 버전 ID",
    ),
    (
        "adjudication_id",
        &[A],
        "id",
        "UUID",
        "Adjudication round id",
        "판정 회차 ID",
    ),
    (
        "grader_id",
        &[G, V],
        "id",
        "UUID",
        "User id of the grader (of the adjudicator for adjudicated rows); never a name",
        "판독자 사용자 ID (판정 행은 판정자); 이름은 포함하지 않음",
    ),
    (
        "kind",
        &[G, V],
        "text",
        "primary; repeat",
        "Assignment kind: primary grading or hidden repeat",
        "배정 유형: 1차 판독 또는 숨은 반복",
    ),
    (
        "version",
        &[G, V],
        "integer",
        "1, 2, …",
        "Grade version: 1 for the submission, 2… for amendments",
        "판독 버전: 1은 제출, 2 이상은 수정",
    ),
    (
        "round",
        &[G, A],
        "integer",
        "1, 2, …",
        "Adjudication round",
        "판정 회차",
    ),
    (
        "status",
        &[A],
        "text",
        "open; resolved",
        "Whether the round is resolved",
        "판정 상태",
    ),
    (
        "created_at",
        &[A],
        "time",
        "RFC 3339, UTC",
        "When the round opened",
        "판정 회차 생성 시각 (UTC)",
    ),
    (
        "disagreements",
        &[A],
        "text",
        "columns joined with ;",
        "Columns on which the compared grades disagreed",
        "판독 불일치 열 (;로 구분)",
    ),
    (
        "grade_ids",
        &[A],
        "text",
        "UUIDs joined with ;",
        "Grade versions compared",
        "비교한 판독 버전 ID",
    ),
    (
        "adjudicator_id",
        &[A],
        "id",
        "UUID",
        "User id of the adjudicator",
        "판정자 사용자 ID",
    ),
    (
        "resolved_at",
        &[A],
        "time",
        "RFC 3339, UTC",
        "When the round was resolved",
        "판정 완료 시각 (UTC)",
    ),
    (
        "submitted_at",
        &[G, V],
        "time",
        "RFC 3339, UTC",
        "When the grade (or adjudication) was submitted",
        "제출 시각 (UTC)",
    ),
    (
        "adjudication",
        &[G],
        "text",
        "open; resolved; empty",
        "Adjudication state of the case",
        "증례의 판정 상태",
    ),
    (
        "duration_ms",
        &[V],
        "integer",
        "milliseconds",
        "Time from the first draft save to submission (first versions)",
        "첫 임시 저장부터 제출까지 걸린 시간 (ms)",
    ),
    (
        "reason",
        &[V, A],
        "text",
        "free text",
        "Why the grade was amended, or the adjudicator's note",
        "수정 사유 또는 판정자 메모",
    ),
];

/// The data dictionary: the fixed columns of the grade and adjudication tables, the form's
/// columns (from the domain's [`dictionary`], in form order) and `lossless_sha256`.
pub fn dictionary_entries(form: &Form) -> Vec<DictionaryEntry> {
    let fixed = |(name, tables, kind, allowed, en, ko): &Fixed| DictionaryEntry {
        name: (*name).to_owned(),
        tables: tables.to_vec(),
        field: None,
        eye: None,
        kind: (*kind).to_owned(),
        allowed: (*allowed).to_owned(),
        unit: None,
        label_en: (*en).to_owned(),
        label_ko: (*ko).to_owned(),
        required: false,
        condition: None,
    };
    let mut entries: Vec<DictionaryEntry> = FIXED.iter().map(fixed).collect();
    entries.extend(dictionary(form).into_iter().map(|c| DictionaryEntry {
        name: c.name,
        tables: vec![G, V, A],
        field: Some(c.field),
        eye: c.eye.map(|e| e.as_str().to_owned()),
        kind: c.kind.to_owned(),
        allowed: c.allowed,
        unit: c.unit,
        label_en: c.label_en,
        label_ko: c.label_ko,
        required: c.required,
        condition: c.condition,
    }));
    entries.push(fixed(&(
        "lossless_sha256",
        &[G, V, A],
        "sha256",
        "64 hex digits",
        "SHA-256 of the verified lossless frame the grade was made on",
        "판독 시 확인된 무손실 프레임의 SHA-256",
    )));
    entries
}

/// Columns of the dictionary table.
pub const DICTIONARY_COLUMNS: [&str; 11] = [
    "name",
    "tables",
    "field",
    "eye",
    "kind",
    "allowed",
    "unit",
    "label_en",
    "label_ko",
    "required",
    "condition",
];

/// The data dictionary as CSV ([`DICTIONARY_COLUMNS`]; tables joined with `;`).
pub fn dictionary_csv(form: &Form) -> String {
    let mut out = String::new();
    push_record(&mut out, DICTIONARY_COLUMNS);
    for e in dictionary_entries(form) {
        push_record(
            &mut out,
            [
                e.name,
                e.tables.join(";"),
                e.field.unwrap_or_default(),
                e.eye.unwrap_or_default(),
                e.kind,
                e.allowed,
                e.unit.unwrap_or_default(),
                e.label_en,
                e.label_ko,
                e.required.to_string(),
                e.condition.unwrap_or_default(),
            ],
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The whole export as JSON

/// The whole export as one JSON document: `format`, `study`, `generated_at`, `form` (code,
/// versions, fingerprint, definition), `dictionary`, `grades` (`final`, `all_versions`),
/// `adjudications` and `statistics` (`progress`, `agreement`).
pub fn to_json(export: &Export) -> Json {
    let form = &export.form;
    json!({
        "format": EXPORT_FORMAT,
        "study": export.rows.study,
        "generated_at": rfc3339(export.generated_at),
        "form": {
            "code": form.form.code,
            "version": form.form.version,
            "study_form_version": form.version,
            "fingerprint": form.fingerprint,
            "definition": form.definition,
        },
        "dictionary": dictionary_entries(&form.form),
        "grades": {
            "final": grades_json(&export.rows, Selection::Final),
            "all_versions": grades_json(&export.rows, Selection::AllVersions),
        },
        "adjudications": adjudications_json(&export.rows),
        "statistics": {
            "progress": export.progress,
            "agreement": export.agreement,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::records::Assignment;
    use crate::grading::stats::tests::{adjudication, assignment, grade, id, t};
    use crate::grading::{Mode, flatten, presets, validate};

    fn case(n: u128, label: &str) -> CaseInfo {
        CaseInfo {
            id: id(n),
            label: label.into(),
            subject: Some(format!("S{n}")),
            visit: Some("V1".into()),
        }
    }

    fn round(n: u128, case_id: Uuid, number: i32, values: Option<Json>) -> Adjudication {
        Adjudication {
            disagreements: json!([{"field":"dr_grade","eye":"OD","rule":"steps","a":1,"b":3}]),
            ..adjudication(n, case_id, number, values)
        }
    }

    /// Case 1: two graders, B amended; adjudicated in round 2. Case 2: two graders agree.
    /// Case 3: disagreement open. A repeat of case 2 by A.
    fn rows() -> StudyRecords {
        let (a, b) = (id(0xA), id(0xB));
        let mut rows = StudyRecords {
            study: "DEMO".into(),
            cases: vec![case(1, "C-0001"), case(2, "C-0002"), case(3, "C-0003")],
            ..StudyRecords::default()
        };
        let mut push = |a: Assignment, grades: Vec<Grade>| {
            rows.grades.extend(grades);
            rows.assignments.push(a);
        };
        let done = AssignmentStatus::Done;
        let a1 = assignment(11, id(1), a, AssignmentKind::Primary, done);
        let b1 = assignment(12, id(1), b, AssignmentKind::Primary, done);
        let a2 = assignment(21, id(2), a, AssignmentKind::Primary, done);
        let b2 = assignment(22, id(2), b, AssignmentKind::Primary, done);
        let a3 = assignment(31, id(3), a, AssignmentKind::Primary, done);
        let b3 = assignment(32, id(3), b, AssignmentKind::Primary, done);
        let r2 = assignment(41, id(2), a, AssignmentKind::Repeat, done);
        push(
            a1.clone(),
            vec![grade(101, &a1, 1, json!({ "dr_grade": { "OD": 1 } }))],
        );
        push(
            b1.clone(),
            vec![
                grade(102, &b1, 1, json!({ "dr_grade": { "OD": 4 } })),
                grade(103, &b1, 2, json!({ "dr_grade": { "OD": 3 } })),
            ],
        );
        push(
            a2.clone(),
            vec![grade(201, &a2, 1, json!({ "dr_grade": { "OD": 2 } }))],
        );
        push(
            b2.clone(),
            vec![grade(202, &b2, 1, json!({ "dr_grade": { "OD": 2 } }))],
        );
        push(
            a3.clone(),
            vec![grade(301, &a3, 1, json!({ "dr_grade": { "OD": 0 } }))],
        );
        push(
            b3.clone(),
            vec![grade(302, &b3, 1, json!({ "dr_grade": { "OD": 2 } }))],
        );
        push(
            r2.clone(),
            vec![grade(401, &r2, 1, json!({ "dr_grade": { "OD": 2 } }))],
        );
        rows.adjudications = vec![
            round(501, id(1), 1, Some(json!({ "dr_grade": { "OD": 1 } }))),
            round(502, id(1), 2, Some(json!({ "dr_grade": { "OD": 2 } }))),
            round(503, id(3), 1, None),
        ];
        rows
    }

    #[test]
    fn quoting_follows_rfc_4180() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote(""), "");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        assert_eq!(quote("cr\r\nlf"), "\"cr\r\nlf\"");
        assert_eq!(quote(" padded"), "\" padded\"");
        assert_eq!(quote("우안, 좌안"), "\"우안, 좌안\"");
        let mut out = String::new();
        push_record(&mut out, ["a", "b,c", "d\"e", "f\ng", ""]);
        assert_eq!(out, "a,\"b,c\",\"d\"\"e\",\"f\ng\",\r\n");
    }

    #[test]
    fn final_takes_the_latest_resolved_round_else_the_latest_versions() {
        let rows = rows();
        let finals = final_grades(&rows);
        assert_eq!(
            finals.len(),
            3,
            "case 1: adjudication; case 2: two agreeing grades; case 3 waits for adjudication"
        );
        match finals[0] {
            FinalGrade::Adjudicated(round) => assert_eq!(round.round, 2),
            other => panic!("expected the round 2 adjudication, got {other:?}"),
        }
        let graded: Vec<Uuid> = finals[1..]
            .iter()
            .map(|f| match f {
                FinalGrade::Graded { grade } => grade.id,
                other => panic!("expected a grade, got {other:?}"),
            })
            .collect();
        assert_eq!(
            graded,
            [id(201), id(202)],
            "the hidden repeat (401) is never final, nor are grades awaiting adjudication"
        );
        let versions: Vec<Uuid> = all_versions(&rows).iter().map(|g| g.id).collect();
        assert_eq!(
            versions,
            [
                id(101),
                id(102),
                id(103),
                id(201),
                id(202),
                id(401),
                id(301),
                id(302)
            ]
        );
    }

    /// Issue 16: a case is final only when all its required gradings are in (and agree), or its
    /// adjudication is resolved; one grade of two is not a final grade.
    #[test]
    fn a_case_is_final_only_when_every_required_grading_is_in_or_adjudicated() {
        let (a, b) = (id(0xA), id(0xB));
        let mut rows = rows();
        // Case 4: two graders assigned, only A has submitted.
        rows.cases.push(case(4, "C-0004"));
        let a4 = assignment(
            61,
            id(4),
            a,
            AssignmentKind::Primary,
            AssignmentStatus::Done,
        );
        let b4 = assignment(
            62,
            id(4),
            b,
            AssignmentKind::Primary,
            AssignmentStatus::InProgress,
        );
        rows.grades
            .push(grade(601, &a4, 1, json!({ "dr_grade": { "OD": 2 } })));
        rows.assignments.extend([a4, b4.clone()]);
        // Case 5: one grader assigned (per_case 1), submitted: final.
        rows.cases.push(case(5, "C-0005"));
        let a5 = assignment(
            71,
            id(5),
            a,
            AssignmentKind::Primary,
            AssignmentStatus::Done,
        );
        rows.grades
            .push(grade(701, &a5, 1, json!({ "dr_grade": { "OD": 0 } })));
        rows.assignments.push(a5);
        let final_cases = |rows: &StudyRecords| -> Vec<Uuid> {
            let mut cases: Vec<Uuid> = final_grades(rows).iter().map(|f| f.case_id()).collect();
            cases.dedup();
            cases
        };
        assert_eq!(
            final_cases(&rows),
            [id(1), id(2), id(5)],
            "case 3 waits for its adjudication, case 4 for its second grade"
        );
        let form = presets::demo();
        let csv = grades_csv(&form, &rows, Selection::Final);
        assert!(!csv.contains("C-0004") && !csv.contains("C-0003"), "{csv}");
        let doc = grades_json(&rows, Selection::Final);
        assert!(!doc.to_string().contains(&id(4).to_string()));

        // Once B submits, case 4 is final with both grades (they agree: no round opened).
        let b4 = rows.assignments.iter_mut().find(|x| x.id == b4.id).unwrap();
        b4.status = AssignmentStatus::Done;
        let b4 = b4.clone();
        rows.grades
            .push(grade(602, &b4, 1, json!({ "dr_grade": { "OD": 2 } })));
        assert_eq!(final_cases(&rows), [id(1), id(2), id(4), id(5)]);
        // Case 3's round resolved: final, as adjudicated.
        rows.adjudications[2] = round(503, id(3), 1, Some(json!({ "dr_grade": { "OD": 1 } })));
        assert_eq!(final_cases(&rows), [id(1), id(2), id(3), id(4), id(5)]);
    }

    #[test]
    fn final_without_adjudication_uses_the_amended_version() {
        let mut rows = rows();
        rows.adjudications.clear();
        let finals = final_grades(&rows);
        let ids: Vec<Uuid> = finals
            .iter()
            .map(|f| match f {
                FinalGrade::Graded { grade, .. } => grade.id,
                FinalGrade::Adjudicated(r) => r.id,
            })
            .collect();
        assert_eq!(ids[..2], [id(101), id(103)], "version 2 replaces version 1");
    }

    #[test]
    fn grades_csv_has_the_dictionary_columns() {
        let form = presets::demo();
        let rows = rows();
        let csv = grades_csv(&form, &rows, Selection::Final);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert!(lines[0].starts_with(
            "case_label,case_id,subject,visit,source,grader_id,version,round,submitted_at,adjudication,kind,gradable_od,gradable_os,"
        ));
        assert!(
            lines[0]
                .ends_with(",other_findings,other_text,urgent_referral,comment,lossless_sha256")
        );
        assert_eq!(
            lines.len(),
            1 + 3 + 1,
            "header, three rows, and the empty tail"
        );
        let header: Vec<&str> = lines[0].split(',').collect();
        let dr = header.iter().position(|&h| h == "dr_grade_od").unwrap();
        let first: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(first[0], "C-0001");
        assert_eq!(first[4], "adjudication");
        assert_eq!(first[5], id(0xC).to_string());
        assert_eq!(first[7], "2");
        assert_eq!(first[dr], "2");
        let third: Vec<&str> = lines[3].split(',').collect();
        assert_eq!((third[0], third[9]), ("C-0002", ""));
        assert_eq!(third[dr], "2");
        assert!(!csv.contains("render_state"));

        let all = grades_csv(&form, &rows, Selection::AllVersions);
        let lines: Vec<&str> = all.split("\r\n").collect();
        assert_eq!(lines.len(), 1 + 8 + 1);
        assert!(
            lines[3].contains(",typo,"),
            "the amendment's reason: {}",
            lines[3]
        );
        assert!(lines[6].contains(",repeat,"), "{}", lines[6]);
    }

    #[test]
    fn cells_match_the_domain_flatten_and_free_text_is_quoted() {
        let form = presets::demo();
        let raw = json!({
            "gradable": { "OD": "gradable", "OS": "ungradable" },
            "ungradable_reason": { "OS": "out_of_focus" },
            "dr_grade": { "OD": 3 },
            "dme": { "OD": "non_centre_involving" },
            "areds_category": { "OD": 2 },
            "vcdr": { "OD": 0.45 },
            "other_findings": ["other", "retinal_vein_occlusion"],
            "other_text": "scar, \"old\"\nlaser"
        });
        let values = validate(&form, &raw, Mode::Submit).unwrap();
        let stored = values.to_json();
        let ours = form_cells(&dictionary(&form), stored.as_object());
        let theirs: Vec<String> = flatten(&form, &values)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(ours, theirs);
        // Whole numbers stored as floats read back without a fraction, like the domain's cells.
        assert_eq!(json_cell(Some(&json!(2.0))), "2");
        let a = assignment(
            1,
            id(9),
            id(0xA),
            AssignmentKind::Primary,
            AssignmentStatus::Done,
        );
        let rows = StudyRecords {
            cases: vec![case(9, "C-0009")],
            grades: vec![grade(2, &a, 1, stored)],
            assignments: vec![a],
            ..StudyRecords::default()
        };
        let csv = grades_csv(&form, &rows, Selection::AllVersions);
        assert!(csv.contains(",\"scar, \"\"old\"\"\nlaser\","), "{csv}");
    }

    #[test]
    fn adjudications_and_dictionary_tables() {
        let form = presets::demo();
        let rows = rows();
        let csv = adjudications_csv(&form, &rows);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines.len(), 1 + 3 + 1);
        assert!(lines[1].contains(",dr_grade_od,"), "{}", lines[1]);
        assert!(lines[3].contains(",open,"));
        let dictionary = dictionary_csv(&form);
        let names: Vec<&str> = dictionary
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split(',').next())
            .filter(|n| !n.is_empty())
            .collect();
        assert_eq!(names.first(), Some(&"case_label"));
        assert_eq!(names.last(), Some(&"lossless_sha256"));
        assert!(names.contains(&"dr_grade_od") && names.contains(&"grader_id"));
        let fixed_and_form = [
            &FINAL_COLUMNS[..],
            &VERSION_COLUMNS[..],
            &ADJUDICATION_COLUMNS[..],
        ];
        for column in fixed_and_form.concat() {
            assert!(names.contains(&column), "{column} is not in the dictionary");
        }
        assert!(dictionary.contains("(좌안)"));
    }

    #[test]
    fn statistics_tables_and_the_json_document() {
        let form = presets::demo();
        let rows = rows();
        let loaded = FormVersion {
            version: 1,
            definition: serde_json::from_str(&form.to_json()).unwrap(),
            fingerprint: form.fingerprint(),
            form: form.clone(),
        };
        let export = build(rows, loaded, t(10_000));
        let agreement = to_csv(&export, CsvTable::Agreement);
        let lines: Vec<&str> = agreement.split("\r\n").collect();
        assert_eq!(lines[0], AGREEMENT_COLUMNS.join(","));
        assert!(
            lines[1].starts_with(&format!(
                "pair,{},{},dr_grade_od,dr_grade,OD,3,",
                id(0xA),
                id(0xB)
            )),
            "{}",
            lines[1]
        );
        assert!(agreement.contains(&format!(
            "intra,{},,dr_grade_od,dr_grade,OD,1,100,",
            id(0xA)
        )));
        let throughput = to_csv(&export, CsvTable::Throughput);
        assert!(throughput.contains(&format!("{},grader,3,", id(0xA))));
        assert!(throughput.contains(&format!("{},adjudicator,", id(0xC))));
        assert_eq!(number(Some(0.1 + 0.2)), "0.3");
        assert_eq!(number(Some(100.0)), "100");
        assert_eq!(number(None), "");

        let doc = to_json(&export);
        assert_eq!(doc["format"], EXPORT_FORMAT);
        assert_eq!(doc["study"], "DEMO");
        assert_eq!(doc["grades"]["final"].as_array().unwrap().len(), 3);
        assert_eq!(doc["grades"]["all_versions"].as_array().unwrap().len(), 8);
        assert_eq!(doc["grades"]["final"][0]["source"], "adjudication");
        assert_eq!(doc["grades"]["final"][0]["values"]["dr_grade"]["OD"], 2);
        assert_eq!(doc["adjudications"].as_array().unwrap().len(), 3);
        assert_eq!(doc["statistics"]["agreement"]["pairs"][0]["n"], 3);
        assert_eq!(doc["form"]["fingerprint"], form.fingerprint());
        assert!(doc["dictionary"].as_array().unwrap().len() > 20);
        assert_eq!(CsvTable::from_name("versions"), Some(CsvTable::Versions));
        assert_eq!(CsvTable::Grades.file_name("DEMO"), "DEMO-grades.csv");
        for table in CsvTable::ALL {
            assert!(to_csv(&export, table).ends_with("\r\n"));
        }
    }
}
