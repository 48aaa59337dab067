//! Agreement of grades with a case's ground truth, where the case has one (the demo data's
//! synthetic bundles do: [`readroom_bundle::synth::GroundTruth`], stored in
//! `cases.ground_truth`).
//!
//! [`truth_agreement`] is a pure function of a study's rows, its form and the ground truths by
//! case; [`load_truths`] is the one query it needs.
//!
//! What is compared, per eye, for every form field whose key and type match (any other field,
//! and a person-level field, is left out without a word; a form with none of them gives an
//! empty result):
//!
//! | form field | type | ground truth (`eyes[].grades`) | statistics |
//! |---|---|---|---|
//! | `dr_grade` | ordinal | `icdr_level` (a level of the field's scale) | kappa, quadratic kappa, referable DR |
//! | `dme` | single choice with a `none` option, or boolean | `dme` (present: an option other than `none`) | kappa |
//! | `areds_category` | ordinal | `areds_category` | kappa, quadratic kappa |
//! | `vcdr` | number | `vcdr` | mean absolute error, mean difference |
//!
//! Whose grades: each grader's latest version of each primary grade
//! ([`super::latest_primary`]; hidden repeats are never compared), and the **final** grade of
//! each case, labelled grader `final`: the values of the latest resolved adjudication round when
//! there is one ([`super::export::final_grades`]), else the value every latest primary grade of
//! the case gives, item by item (an item the grades disagree on, or that one of them leaves
//! empty, has no final value); a case with an open round and no resolved one has no final
//! values yet.
//!
//! Values that cannot be read are left out, never guessed: a grade value that is not a category
//! of the current form, a ground-truth level that is not a level of the form's scale, a
//! ground truth or grade whose JSON does not have the expected shape.
//!
//! **Referable diabetic retinopathy** (ICDR level ≥ 2 or DME present) is counted on `dr_grade`
//! items when the form also has a matching `dme` field, for the eyes where the grade gives both
//! values and the ground truth has both.

use std::collections::{BTreeMap, HashMap};

use super::{Eye, FieldKind, Form, column_name};
use crate::agreement::{KappaResult, Table, Weights, kappa, percent_agreement, reportable};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::export::{FinalGrade, final_grades};
use super::records::{StudyRecords, latest_primary};

/// The grader label of the final grades' rows.
pub const FINAL: &str = "final";

/// Which grades are compared with the ground truth (for the API's `basis`-style notes).
pub const TRUTH_BASIS: &str = "graders: latest version of each primary grade; final: latest resolved adjudication, else the value all latest primary grades of the case agree on";

/// Counts and rates of referable diabetic retinopathy (ICDR level ≥ 2 or DME present), the
/// grader's call against the ground truth's, over eyes where both are known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Referable {
    /// Referable in the grade and in the truth.
    pub true_positive: u64,
    /// Referable in the grade, not in the truth.
    pub false_positive: u64,
    /// Not referable in the grade, referable in the truth.
    pub false_negative: u64,
    /// Referable in neither.
    pub true_negative: u64,
    /// `true_positive / (true_positive + false_negative)`, 0–1; `None` without referable truth.
    pub sensitivity: Option<f64>,
    /// `true_negative / (true_negative + false_positive)`, 0–1; `None` without non-referable
    /// truth.
    pub specificity: Option<f64>,
}

impl Referable {
    fn add(&mut self, graded: bool, truth: bool) {
        match (graded, truth) {
            (true, true) => self.true_positive += 1,
            (true, false) => self.false_positive += 1,
            (false, true) => self.false_negative += 1,
            (false, false) => self.true_negative += 1,
        }
    }

    fn with_rates(mut self) -> Referable {
        let ratio = |a: u64, b: u64| (a + b > 0).then(|| a as f64 / (a + b) as f64);
        self.sensitivity = ratio(self.true_positive, self.false_negative);
        self.specificity = ratio(self.true_negative, self.false_positive);
        self
    }

    fn n(&self) -> u64 {
        self.true_positive + self.false_positive + self.false_negative + self.true_negative
    }
}

/// Agreement of one grader (or of the final grades) with the ground truth on one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthAgreement {
    /// The grader's user id, or [`FINAL`] (`"final"`) for the final grade of each case.
    pub grader: String,
    /// The item (export column name): `dr_grade_od`.
    pub column: String,
    /// The form field key: `dr_grade`.
    pub field: String,
    /// The eye.
    pub eye: Eye,
    /// The form field's type: `ordinal`, `choice`, `boolean` or `number`.
    pub kind: &'static str,
    /// The ground-truth grade compared with: `icdr_level`, `dme`, `areds_category` or `vcdr`.
    pub truth: &'static str,
    /// Eyes with both a graded value and a ground-truth value.
    pub n: u64,
    /// Percent of those with the grade equal to the truth (0–100); categorical items only.
    pub percent_agreement: Option<f64>,
    /// Cohen's kappa (rows: grade, columns: truth); `None` when undefined or for numbers.
    pub kappa: Option<KappaResult>,
    /// Quadratic-weighted kappa (ordinal items only); `None` when undefined or not ordinal.
    pub quadratic_kappa: Option<KappaResult>,
    /// Referable diabetic retinopathy against the truth (`dr_grade` items of forms that also
    /// have a matching `dme` field); `None` otherwise or when no eye had both values.
    pub referable: Option<Referable>,
    /// Mean of |grade − truth| (numbers only).
    pub mean_abs_error: Option<f64>,
    /// Mean of grade − truth: positive when the grades run high (numbers only).
    pub mean_difference: Option<f64>,
}

/// The ground-truth grade a form field is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Icdr,
    Dme,
    Areds,
    Vcdr,
}

impl Target {
    fn of_key(key: &str) -> Option<Target> {
        match key {
            "dr_grade" => Some(Target::Icdr),
            "dme" => Some(Target::Dme),
            "areds_category" => Some(Target::Areds),
            "vcdr" => Some(Target::Vcdr),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Target::Icdr => "icdr_level",
            Target::Dme => "dme",
            Target::Areds => "areds_category",
            Target::Vcdr => "vcdr",
        }
    }
}

/// How a matched field's values are read.
#[derive(Debug, Clone, PartialEq)]
enum Scale {
    /// Ordinal levels, lowest first; the category is the level's position.
    Levels(Vec<i64>),
    /// Presence from a single choice: `none` is absent (0), any other option present (1).
    Presence(Vec<String>),
    /// A boolean: `false` (0), `true` (1).
    Boolean,
    /// A number.
    Number,
}

/// A value read from a grade or a ground truth.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reading {
    Category(usize),
    Number(f64),
}

impl Reading {
    fn same(self, other: Reading) -> bool {
        match (self, other) {
            (Reading::Category(a), Reading::Category(b)) => a == b,
            (Reading::Number(a), Reading::Number(b)) => (a - b).abs() <= 1e-9,
            _ => false,
        }
    }
}

/// A form field at one eye, compared with the ground truth.
#[derive(Debug, Clone)]
struct Item {
    column: String,
    field: String,
    eye: Eye,
    kind: &'static str,
    target: Target,
    scale: Scale,
    /// For `dr_grade` items: the index of the `dme` item of the same eye, if the form has one.
    dme: Option<usize>,
}

impl Item {
    fn categories(&self) -> usize {
        match &self.scale {
            Scale::Levels(levels) => levels.len(),
            Scale::Presence(_) | Scale::Boolean => 2,
            Scale::Number => 0,
        }
    }

    /// The grade's value of this item, if it has a readable one.
    fn read(&self, values: &Map<String, Json>) -> Option<Reading> {
        let value = values.get(&self.field)?.get(self.eye.as_str())?;
        match &self.scale {
            Scale::Levels(levels) => {
                let level = value.as_i64()?;
                levels
                    .iter()
                    .position(|&l| l == level)
                    .map(Reading::Category)
            }
            Scale::Presence(options) => {
                let option = value.as_str()?;
                if !options.iter().any(|o| o == option) {
                    return None;
                }
                Some(Reading::Category(usize::from(option != "none")))
            }
            Scale::Boolean => value.as_bool().map(|b| Reading::Category(usize::from(b))),
            Scale::Number => value
                .as_f64()
                .filter(|v| v.is_finite())
                .map(Reading::Number),
        }
    }

    /// The ground truth's value of this item, if it has a readable one on the item's scale.
    fn truth(&self, truth: &EyeTruthGrades) -> Option<Reading> {
        match (self.target, &self.scale) {
            (Target::Icdr, Scale::Levels(levels)) => {
                let level = truth.icdr_level?;
                levels
                    .iter()
                    .position(|&l| l == level)
                    .map(Reading::Category)
            }
            (Target::Areds, Scale::Levels(levels)) => {
                let level = truth.areds_category?;
                levels
                    .iter()
                    .position(|&l| l == level)
                    .map(Reading::Category)
            }
            (Target::Dme, Scale::Presence(_) | Scale::Boolean) => {
                truth.dme.map(|b| Reading::Category(usize::from(b)))
            }
            (Target::Vcdr, Scale::Number) => truth.vcdr.map(Reading::Number),
            _ => None,
        }
    }

    /// The ICDR level of a category of this (`dr_grade`) item.
    fn level(&self, reading: Reading) -> Option<i64> {
        match (&self.scale, reading) {
            (Scale::Levels(levels), Reading::Category(i)) => levels.get(i).copied(),
            _ => None,
        }
    }
}

/// The items of `form` compared with the ground truth, in form order (OD before OS).
fn truth_items(form: &Form) -> Vec<Item> {
    let mut items = Vec::new();
    for field in form.fields.iter().filter(|f| f.per_eye) {
        let Some(target) = Target::of_key(&field.key) else {
            continue;
        };
        let (kind, scale) = match (target, &field.kind) {
            (Target::Icdr | Target::Areds, FieldKind::Ordinal { levels }) => (
                "ordinal",
                Scale::Levels(levels.iter().map(|l| l.value).collect()),
            ),
            (
                Target::Dme,
                FieldKind::Choice {
                    options,
                    multiple: false,
                },
            ) if options.iter().any(|o| o.value == "none") => (
                "choice",
                Scale::Presence(options.iter().map(|o| o.value.clone()).collect()),
            ),
            (Target::Dme, FieldKind::Boolean {}) => ("boolean", Scale::Boolean),
            (Target::Vcdr, FieldKind::Number { .. }) => ("number", Scale::Number),
            _ => continue,
        };
        for eye in Eye::BOTH {
            items.push(Item {
                column: column_name(&field.key, Some(eye)),
                field: field.key.clone(),
                eye,
                kind,
                target,
                scale: scale.clone(),
                dme: None,
            });
        }
    }
    let dme_items: Vec<(Eye, usize)> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.target == Target::Dme)
        .map(|(i, item)| (item.eye, i))
        .collect();
    for item in items.iter_mut().filter(|item| item.target == Target::Icdr) {
        item.dme = dme_items
            .iter()
            .find(|(eye, _)| *eye == item.eye)
            .map(|&(_, i)| i);
    }
    items
}

/// The ground-truth grades of one eye, each read on its own (a malformed one is `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct EyeTruthGrades {
    icdr_level: Option<i64>,
    dme: Option<bool>,
    areds_category: Option<i64>,
    vcdr: Option<f64>,
}

/// The per-eye grades of a serialized [`readroom_bundle::synth::GroundTruth`]: `[OD, OS]`.
/// Anything not of the expected shape reads as missing; an eye listed twice counts once (the
/// first entry, as `GroundTruth::eye` finds it).
fn parse_truth(truth: &Json) -> [Option<EyeTruthGrades>; 2] {
    let mut out = [None, None];
    let Some(eyes) = truth.get("eyes").and_then(Json::as_array) else {
        return out;
    };
    for entry in eyes {
        let Some(eye) = entry
            .get("eye")
            .and_then(Json::as_str)
            .and_then(Eye::from_code)
        else {
            continue;
        };
        let Some(grades) = entry.get("grades").and_then(Json::as_object) else {
            continue;
        };
        let slot = &mut out[eye_index(eye)];
        if slot.is_none() {
            *slot = Some(EyeTruthGrades {
                icdr_level: grades.get("icdr_level").and_then(Json::as_i64),
                dme: grades.get("dme").and_then(Json::as_bool),
                areds_category: grades.get("areds_category").and_then(Json::as_i64),
                vcdr: grades
                    .get("vcdr")
                    .and_then(Json::as_f64)
                    .filter(|v| v.is_finite()),
            });
        }
    }
    out
}

fn eye_index(eye: Eye) -> usize {
    match eye {
        Eye::Od => 0,
        Eye::Os => 1,
    }
}

/// Who a row is for: graders by id, then the final grades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rater {
    Grader(Uuid),
    Final,
}

impl Rater {
    fn label(self) -> String {
        match self {
            Rater::Grader(id) => id.to_string(),
            Rater::Final => FINAL.to_owned(),
        }
    }
}

/// What one (item, rater) collects.
#[derive(Debug, Default)]
struct Acc {
    /// Categorical items: (grade category, truth category).
    pairs: Vec<(usize, usize)>,
    /// Numbers: grade − truth.
    differences: Vec<f64>,
    referable: Referable,
}

/// Scores one set of readings (one per item, for one case) against the case's truth.
fn score(
    acc: &mut BTreeMap<(usize, Rater), Acc>,
    items: &[Item],
    rater: Rater,
    readings: &[Option<Reading>],
    truth: &[Option<EyeTruthGrades>; 2],
) {
    for (i, item) in items.iter().enumerate() {
        let Some(eye_truth) = &truth[eye_index(item.eye)] else {
            continue;
        };
        let Some(graded) = readings[i] else {
            continue;
        };
        let Some(expected) = item.truth(eye_truth) else {
            continue;
        };
        let entry = acc.entry((i, rater)).or_default();
        match (graded, expected) {
            (Reading::Category(g), Reading::Category(t)) => entry.pairs.push((g, t)),
            (Reading::Number(g), Reading::Number(t)) => entry.differences.push(g - t),
            _ => continue,
        }
        // Referable DR on the dr_grade item, when the same eye's DME is known on both sides.
        let (Some(dme_item), Some(truth_level), Some(truth_dme)) =
            (item.dme, eye_truth.icdr_level, eye_truth.dme)
        else {
            continue;
        };
        let (Some(level), Some(Reading::Category(dme))) = (item.level(graded), readings[dme_item])
        else {
            continue;
        };
        entry
            .referable
            .add(level >= 2 || dme == 1, truth_level >= 2 || truth_dme);
    }
}

/// A case without a resolved round: its latest primary grades' readings (one list per grade).
struct GradedCase {
    case: Uuid,
    readings: Vec<Vec<Option<Reading>>>,
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Agreement of each grader's latest primary grades, and of the final grade of each case, with
/// the ground truth of the cases in `truths` (case id → serialized
/// [`readroom_bundle::synth::GroundTruth`]), on the fields of `form` that have a ground-truth
/// counterpart (see the module documentation). Per item (form order, OD before OS), then
/// grader (by id), then `final`; an item nobody rated against a truth has no row.
pub fn truth_agreement(
    rows: &StudyRecords,
    form: &Form,
    truths: &HashMap<Uuid, Json>,
) -> Vec<TruthAgreement> {
    let items = truth_items(form);
    if items.is_empty() || truths.is_empty() {
        return Vec::new();
    }
    let mut parsed: HashMap<Uuid, [Option<EyeTruthGrades>; 2]> = HashMap::new();
    let mut truth_of = |case: Uuid| -> Option<[Option<EyeTruthGrades>; 2]> {
        if let Some(found) = parsed.get(&case) {
            return Some(*found);
        }
        let truth = parse_truth(truths.get(&case)?);
        parsed.insert(case, truth);
        Some(truth)
    };
    let read_all = |values: &Map<String, Json>| -> Vec<Option<Reading>> {
        items.iter().map(|item| item.read(values)).collect()
    };
    let mut acc: BTreeMap<(usize, Rater), Acc> = BTreeMap::new();

    // Graders: the latest version of each primary grade.
    for grade in latest_primary(&rows.grades, &rows.assignments) {
        let Some(truth) = truth_of(grade.case_id) else {
            continue;
        };
        score(
            &mut acc,
            &items,
            Rater::Grader(grade.grader_id),
            &read_all(&grade.values),
            &truth,
        );
    }

    // Final: the adjudicated values, else what every primary grade of the case agrees on.
    let mut graded: Vec<GradedCase> = Vec::new();
    for final_grade in final_grades(rows) {
        let case = final_grade.case_id();
        let Some(truth) = truth_of(case) else {
            continue;
        };
        match final_grade {
            FinalGrade::Adjudicated(round) => {
                if let Some(values) = &round.values {
                    score(&mut acc, &items, Rater::Final, &read_all(values), &truth);
                }
            }
            FinalGrade::Graded { grade } => {
                // final_grades lists a case's grades next to each other.
                if graded.last().is_none_or(|last| last.case != case) {
                    graded.push(GradedCase {
                        case,
                        readings: Vec::new(),
                    });
                }
                let Some(last) = graded.last_mut() else {
                    continue;
                };
                last.readings.push(read_all(&grade.values));
            }
        }
    }
    for GradedCase { case, readings } in graded {
        let Some(truth) = truth_of(case) else {
            continue;
        };
        let agreed: Vec<Option<Reading>> = (0..items.len())
            .map(|i| {
                let first = readings.first()?[i]?;
                readings
                    .iter()
                    .all(|r| r[i].is_some_and(|v| v.same(first)))
                    .then_some(first)
            })
            .collect();
        score(&mut acc, &items, Rater::Final, &agreed, &truth);
    }

    acc.into_iter()
        .filter_map(|((i, rater), acc)| {
            let item = &items[i];
            let mut row = TruthAgreement {
                grader: rater.label(),
                column: item.column.clone(),
                field: item.field.clone(),
                eye: item.eye,
                kind: item.kind,
                truth: item.target.name(),
                n: 0,
                percent_agreement: None,
                kappa: None,
                quadratic_kappa: None,
                referable: None,
                mean_abs_error: None,
                mean_difference: None,
            };
            if let Scale::Number = item.scale {
                row.n = acc.differences.len() as u64;
                let absolute: Vec<f64> = acc.differences.iter().map(|d| d.abs()).collect();
                row.mean_abs_error = mean(&absolute);
                row.mean_difference = mean(&acc.differences);
            } else {
                let categories = (0..item.categories()).map(|c| c.to_string()).collect();
                let table = Table::from_pairs(categories, acc.pairs.iter().copied()).ok()?;
                row.n = table.n();
                row.percent_agreement = percent_agreement(&table);
                row.kappa = reportable(kappa(&table, Weights::Unweighted));
                if matches!(item.scale, Scale::Levels(_)) {
                    row.quadratic_kappa = reportable(kappa(&table, Weights::Quadratic));
                }
                row.referable = (acc.referable.n() > 0).then(|| acc.referable.with_rates());
            }
            (row.n > 0).then_some(row)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::presets;
    use crate::grading::records::{Assignment, AssignmentKind, AssignmentStatus};
    use crate::grading::stats::tests::{adjudication, assignment, grade, id};
    use serde_json::json;

    /// A ground truth of the stored shape (only what is compared; the real one has more).
    fn truth(od: (i64, bool, i64, f64), os: (i64, bool, i64, f64)) -> Json {
        let eye = |name: &str, (icdr, dme, areds, vcdr): (i64, bool, i64, f64)| {
            json!({ "eye": name, "grades": {
                "icdr_level": icdr, "dme": dme, "areds_category": areds, "vcdr": vcdr } })
        };
        json!({ "study": "DEMO", "subject": "S1", "visit": "V1",
                "disease": { "type": "normal" }, "measurements": {},
                "eyes": [eye("OD", od), eye("OS", os)] })
    }

    /// Demo-form values for both eyes.
    fn values(od: (i64, &str, i64, f64), os: (i64, &str, i64, f64)) -> Json {
        json!({
            "gradable": { "OD": "gradable", "OS": "gradable" },
            "dr_grade": { "OD": od.0, "OS": os.0 },
            "dme": { "OD": od.1, "OS": os.1 },
            "areds_category": { "OD": od.2, "OS": os.2 },
            "vcdr": { "OD": od.3, "OS": os.3 },
        })
    }

    struct Builder {
        rows: StudyRecords,
        truths: HashMap<Uuid, Json>,
        next: u128,
    }

    impl Builder {
        fn new() -> Builder {
            Builder {
                rows: StudyRecords {
                    study: "DEMO".into(),
                    ..StudyRecords::default()
                },
                truths: HashMap::new(),
                next: 1000,
            }
        }

        fn case(&mut self, truth: Option<Json>) -> Uuid {
            self.next += 100;
            let case = id(self.next);
            if let Some(truth) = truth {
                self.truths.insert(case, truth);
            }
            case
        }

        fn grade(
            &mut self,
            case: Uuid,
            grader: u128,
            kind: AssignmentKind,
            values: Json,
        ) -> Assignment {
            self.next += 1;
            let a = assignment(self.next, case, id(grader), kind, AssignmentStatus::Done);
            self.next += 1;
            self.rows.grades.push(grade(self.next, &a, 1, values));
            self.rows.assignments.push(a.clone());
            a
        }

        fn adjudicate(&mut self, case: Uuid, values: Option<Json>) {
            self.next += 1;
            self.rows
                .adjudications
                .push(adjudication(self.next, case, 1, values));
        }
    }

    fn row<'a>(result: &'a [TruthAgreement], grader: &str, column: &str) -> &'a TruthAgreement {
        result
            .iter()
            .find(|r| r.grader == grader && r.column == column)
            .unwrap_or_else(|| panic!("no row for {grader} {column}"))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Four cases with ICDR 0, 1, 2, 3 in OD (OS: 0, no DME, AREDS 1); grader A matches the
    /// truth everywhere, grader B grades OD one level too high on every case.
    fn graders_exact_and_off_by_one() -> Builder {
        let mut b = Builder::new();
        let vcdr_truth = [0.3, 0.5, 0.8, 0.4];
        let vcdr_b = [0.35, 0.45, 0.9, 0.4];
        for level in 0..4i64 {
            let dme = level == 3;
            let areds = 1 + level;
            let v = vcdr_truth[level as usize];
            let case = b.case(Some(truth((level, dme, areds, v), (0, false, 1, 0.3))));
            let dme_a = if dme { "centre_involving" } else { "none" };
            b.grade(
                case,
                0xA,
                AssignmentKind::Primary,
                values((level, dme_a, areds, v), (0, "none", 1, 0.3)),
            );
            b.grade(
                case,
                0xB,
                AssignmentKind::Primary,
                values(
                    (level + 1, "none", areds, vcdr_b[level as usize]),
                    (0, "none", 1, 0.3),
                ),
            );
        }
        b
    }

    #[test]
    fn a_grader_matching_the_truth_has_kappa_one_and_full_agreement() {
        let b = graders_exact_and_off_by_one();
        let result = truth_agreement(&b.rows, &presets::demo(), &b.truths);
        let a = id(0xA).to_string();
        let dr = row(&result, &a, "dr_grade_od");
        assert_eq!((dr.n, dr.field.as_str(), dr.eye), (4, "dr_grade", Eye::Od));
        assert_eq!((dr.kind, dr.truth), ("ordinal", "icdr_level"));
        assert_eq!(dr.percent_agreement, Some(100.0));
        // Four cases are below MIN_KAPPA_N: kappa is not reported (its arithmetic is tested in
        // readroom_domain::agreement).
        assert!(dr.kappa.is_none() && dr.quadratic_kappa.is_none());
        assert_eq!((dr.mean_abs_error, dr.mean_difference), (None, None));
        // Referable (ICDR ≥ 2 or DME): levels 2 and 3 are; 0 and 1 are not.
        let referable = dr.referable.unwrap();
        assert_eq!(
            (
                referable.true_positive,
                referable.false_positive,
                referable.false_negative,
                referable.true_negative
            ),
            (2, 0, 0, 2)
        );
        assert_eq!(
            (referable.sensitivity, referable.specificity),
            (Some(1.0), Some(1.0))
        );
        let dme = row(&result, &a, "dme_od");
        assert_eq!((dme.kind, dme.truth, dme.n), ("choice", "dme", 4));
        assert_eq!(dme.percent_agreement, Some(100.0));
        assert!(dme.kappa.is_none(), "below MIN_KAPPA_N");
        assert_eq!(dme.quadratic_kappa, None, "not ordinal");
        assert_eq!(dme.referable, None);
        let areds = row(&result, &a, "areds_category_od");
        assert!(areds.kappa.is_none(), "below MIN_KAPPA_N");
        let vcdr = row(&result, &a, "vcdr_od");
        assert_eq!((vcdr.kind, vcdr.n), ("number", 4));
        assert_eq!(vcdr.mean_abs_error, Some(0.0));
        assert_eq!(vcdr.mean_difference, Some(0.0));
        assert_eq!((vcdr.percent_agreement, vcdr.kappa), (None, None));
        // OS: one category on both sides: 100% but kappa undefined.
        let os = row(&result, &a, "dr_grade_os");
        assert_eq!(os.percent_agreement, Some(100.0));
        assert_eq!(os.kappa, None);
    }

    /// Grader B: grades 1, 2, 3, 4 against truth 0, 1, 2, 3.
    /// Cohen's kappa by hand: observed 0; row marginals (0, ¼, ¼, ¼, ¼), column marginals
    /// (¼, ¼, ¼, ¼, 0): expected = 3/16; kappa = (0 − 3/16)/(1 − 3/16) = −3/13.
    /// Quadratic (k = 5, w = 1 − d²/16): observed = 15/16; Σ d² over the 16 (grade, truth)
    /// pairs of the marginals is 56, so expected = (16 − 56/16)/16 = 25/32; kappa =
    /// (15/16 − 25/32)/(1 − 25/32) = 5/7.
    /// VCDR: differences +0.05, −0.05, +0.10, 0: MAE 0.2/4 = 0.05, mean difference 0.1/4.
    #[test]
    fn a_grader_off_by_one_everywhere_has_no_exact_agreement() {
        let b = graders_exact_and_off_by_one();
        let result = truth_agreement(&b.rows, &presets::demo(), &b.truths);
        let grader = id(0xB).to_string();
        let dr = row(&result, &grader, "dr_grade_od");
        assert_eq!(dr.n, 4);
        assert_eq!(dr.percent_agreement, Some(0.0));
        // Below MIN_KAPPA_N: no kappa (by hand it would be −3/13, quadratic 5/7).
        assert!(dr.kappa.is_none() && dr.quadratic_kappa.is_none());
        // Referable: B calls 1, 2, 3, 4 (no DME) against truth 0, 1, 2, 3 with DME at 3:
        // (1: no, truth 0: no) TN; (2: yes, 1: no) FP; (3: yes, 2: yes) TP; (4: yes, 3+DME) TP.
        let referable = dr.referable.unwrap();
        assert_eq!(
            (
                referable.true_positive,
                referable.false_positive,
                referable.false_negative,
                referable.true_negative
            ),
            (2, 1, 0, 1)
        );
        assert_eq!(referable.sensitivity, Some(1.0));
        assert_eq!(referable.specificity, Some(0.5));
        // DME: B says none everywhere; the truth has one DME eye: 3 of 4.
        assert_eq!(
            row(&result, &grader, "dme_od").percent_agreement,
            Some(75.0)
        );
        let vcdr = row(&result, &grader, "vcdr_od");
        assert!(close(vcdr.mean_abs_error.unwrap(), 0.05));
        assert!(close(vcdr.mean_difference.unwrap(), 0.025));
        // Order: per item in form order, graders by id, then final. A and B disagree on every
        // OD grade and nobody adjudicated: dr_grade_od has no final values; OS they agree on.
        let order: Vec<(&str, &str)> = result
            .iter()
            .map(|r| (r.column.as_str(), r.grader.as_str()))
            .take(5)
            .collect();
        let a = a_str();
        assert_eq!(
            order,
            [
                ("dr_grade_od", a.as_str()),
                ("dr_grade_od", grader.as_str()),
                ("dr_grade_os", a.as_str()),
                ("dr_grade_os", grader.as_str()),
                ("dr_grade_os", FINAL)
            ]
        );
        assert_eq!(row(&result, FINAL, "dr_grade_os").n, 4);
        assert_eq!(row(&result, FINAL, "areds_category_od").n, 4);
    }

    fn a_str() -> String {
        id(0xA).to_string()
    }

    #[test]
    fn final_grades_use_adjudication_else_agreed_values() {
        let mut b = Builder::new();
        // Case 1: graders disagree on OD (1 vs 3), adjudicated to 2; truth 2.
        let c1 = b.case(Some(truth((2, false, 1, 0.3), (0, false, 1, 0.3))));
        b.grade(
            c1,
            0xA,
            AssignmentKind::Primary,
            values((1, "none", 1, 0.3), (0, "none", 1, 0.3)),
        );
        b.grade(
            c1,
            0xB,
            AssignmentKind::Primary,
            values((3, "none", 1, 0.3), (0, "none", 1, 0.3)),
        );
        b.adjudicate(c1, Some(values((2, "none", 1, 0.3), (0, "none", 1, 0.3))));
        // Case 2: graders agree on OD (1) but not on VCDR; truth 0: final OD 1, no final VCDR.
        let c2 = b.case(Some(truth((0, false, 1, 0.3), (0, false, 1, 0.3))));
        b.grade(
            c2,
            0xA,
            AssignmentKind::Primary,
            values((1, "none", 1, 0.3), (0, "none", 1, 0.3)),
        );
        b.grade(
            c2,
            0xB,
            AssignmentKind::Primary,
            values((1, "none", 1, 0.5), (0, "none", 1, 0.3)),
        );
        // Case 3: an open round: no final values.
        let c3 = b.case(Some(truth((4, true, 1, 0.3), (0, false, 1, 0.3))));
        b.grade(
            c3,
            0xA,
            AssignmentKind::Primary,
            values((4, "none", 1, 0.3), (0, "none", 1, 0.3)),
        );
        b.grade(
            c3,
            0xB,
            AssignmentKind::Primary,
            values((0, "none", 1, 0.3), (0, "none", 1, 0.3)),
        );
        b.adjudicate(c3, None);
        // Case 4: no ground truth: not scored at all.
        let c4 = b.case(None);
        b.grade(
            c4,
            0xA,
            AssignmentKind::Primary,
            values((4, "none", 1, 0.3), (0, "none", 1, 0.3)),
        );
        // A hidden repeat is never compared.
        b.grade(
            c1,
            0xA,
            AssignmentKind::Repeat,
            values((0, "none", 1, 0.9), (0, "none", 1, 0.3)),
        );

        let result = truth_agreement(&b.rows, &presets::demo(), &b.truths);
        let dr = row(&result, FINAL, "dr_grade_od");
        assert_eq!(dr.n, 2, "cases 1 (adjudicated) and 2 (agreed)");
        assert_eq!(dr.percent_agreement, Some(50.0));
        let vcdr = row(&result, FINAL, "vcdr_od");
        assert_eq!(vcdr.n, 1, "case 2's VCDR values differ: no final value");
        assert_eq!(vcdr.mean_abs_error, Some(0.0));
        let a = row(&result, &a_str(), "dr_grade_od");
        assert_eq!(a.n, 3, "cases 1, 2 and 3; not 4 (no truth) nor the repeat");
        let a_vcdr = row(&result, &a_str(), "vcdr_od");
        assert_eq!(
            a_vcdr.mean_abs_error,
            Some(0.0),
            "the repeat's 0.9 is left out"
        );
    }

    #[test]
    fn the_latest_version_of_a_primary_grade_counts() {
        let mut b = Builder::new();
        let case = b.case(Some(truth((2, false, 1, 0.3), (1, false, 1, 0.3))));
        let a = b.grade(
            case,
            0xA,
            AssignmentKind::Primary,
            values((0, "none", 1, 0.3), (0, "none", 1, 0.3)),
        );
        b.rows.grades.push(grade(
            1,
            &a,
            2,
            values((2, "none", 1, 0.3), (1, "none", 1, 0.3)),
        ));
        let result = truth_agreement(&b.rows, &presets::demo(), &b.truths);
        assert_eq!(
            row(&result, &a_str(), "dr_grade_od").percent_agreement,
            Some(100.0)
        );
        assert_eq!(
            row(&result, &a_str(), "dr_grade_os").percent_agreement,
            Some(100.0)
        );
    }

    #[test]
    fn malformed_truths_and_values_are_skipped() {
        let mut b = Builder::new();
        let good = b.case(Some(truth((2, true, 3, 0.5), (0, false, 1, 0.3))));
        let garbage = [
            json!("not a truth"),
            json!(null),
            json!({ "eyes": 5 }),
            json!({ "eyes": [1, { "eye": "OU", "grades": {} }, { "eye": "OD" }] }),
            json!({ "eyes": [{ "eye": "OD", "grades": {
                "icdr_level": "two", "dme": 1, "areds_category": 9, "vcdr": "wide" } }] }),
        ];
        for truth in garbage {
            let case = b.case(Some(truth));
            b.grade(
                case,
                0xA,
                AssignmentKind::Primary,
                values((2, "none", 3, 0.5), (0, "none", 1, 0.3)),
            );
        }
        // A grade with no values, and one with values outside the form's scales.
        b.grade(good, 0xB, AssignmentKind::Primary, json!({}));
        b.grade(
            good,
            0xC,
            AssignmentKind::Primary,
            json!({ "dr_grade": { "OD": 7 }, "dme": { "OD": "maybe" }, "vcdr": { "OD": "x" } }),
        );
        b.grade(
            good,
            0xA,
            AssignmentKind::Primary,
            values((2, "centre_involving", 3, 0.5), (0, "none", 1, 0.3)),
        );
        let result = truth_agreement(&b.rows, &presets::demo(), &b.truths);
        for r in &result {
            assert!(r.grader == a_str() || r.grader == FINAL, "{r:?}");
            assert_eq!(r.n, 1, "{r:?}");
        }
        let dr = row(&result, &a_str(), "dr_grade_od");
        assert_eq!(dr.percent_agreement, Some(100.0));
        assert_eq!(dr.kappa, None, "one case, one category");
    }

    #[test]
    fn only_matching_fields_of_the_right_type_are_compared() {
        let b = graders_exact_and_off_by_one();
        // No matching key.
        assert!(
            truth_agreement(&b.rows, &presets::preset("gradability").unwrap(), &b.truths)
                .is_empty()
        );
        // Matching keys of the wrong type or not per eye.
        let form = Form::parse(
            &json!({
                "schema": "readroom-form/1", "code": "t", "version": 1,
                "title": { "en": "T", "ko": "T" },
                "fields": [
                    { "key": "dr_grade", "label": { "en": "DR", "ko": "DR" }, "per_eye": true,
                      "type": "number", "min": 0, "max": 4 },
                    { "key": "dme", "label": { "en": "DME", "ko": "DME" }, "per_eye": true,
                      "type": "choice", "options": [
                        { "value": "absent", "label": { "en": "a", "ko": "a" } },
                        { "value": "present", "label": { "en": "p", "ko": "p" } } ] },
                    { "key": "vcdr", "label": { "en": "VCDR", "ko": "VCDR" },
                      "type": "number", "min": 0, "max": 1 }
                ]
            })
            .to_string(),
        )
        .unwrap();
        assert!(truth_agreement(&b.rows, &form, &b.truths).is_empty());
        // No truths: nothing.
        assert!(truth_agreement(&b.rows, &presets::demo(), &HashMap::new()).is_empty());
        // The single presets match their fields; a form without dme has no referable counts.
        let icdr = truth_agreement(&b.rows, &presets::preset("icdr").unwrap(), &b.truths);
        assert!(row(&icdr, &a_str(), "dr_grade_od").referable.is_some());
        let areds = truth_agreement(
            &b.rows,
            &presets::preset("areds_simple").unwrap(),
            &b.truths,
        );
        let columns: Vec<&str> = areds.iter().map(|r| r.column.as_str()).collect();
        assert!(
            columns.iter().all(|c| c.starts_with("areds_category_")),
            "{columns:?}"
        );
    }

    #[test]
    fn a_boolean_dme_field_truth_levels_off_the_scale_and_a_form_without_dme() {
        let form = Form::parse(
            &json!({
                "schema": "readroom-form/1", "code": "t", "version": 1,
                "title": { "en": "T", "ko": "T" },
                "fields": [
                    { "key": "dr_grade", "label": { "en": "DR", "ko": "DR" }, "per_eye": true,
                      "type": "ordinal", "levels": [
                        { "value": 0, "label": { "en": "0", "ko": "0" } },
                        { "value": 1, "label": { "en": "1", "ko": "1" } },
                        { "value": 2, "label": { "en": "2", "ko": "2" } } ] },
                    { "key": "dme", "label": { "en": "DME", "ko": "DME" }, "per_eye": true,
                      "type": "boolean" }
                ]
            })
            .to_string(),
        )
        .unwrap();
        let mut b = Builder::new();
        // Truth OD level 3 is not a level of this scale: dr_grade_od left out for that case.
        let c1 = b.case(Some(truth((3, true, 1, 0.3), (1, false, 1, 0.3))));
        b.grade(
            c1,
            0xA,
            AssignmentKind::Primary,
            json!({ "dr_grade": { "OD": 2, "OS": 1 }, "dme": { "OD": true, "OS": false } }),
        );
        let result = truth_agreement(&b.rows, &form, &b.truths);
        let columns: Vec<&str> = result
            .iter()
            .filter(|r| r.grader == a_str())
            .map(|r| r.column.as_str())
            .collect();
        assert_eq!(columns, ["dr_grade_os", "dme_od", "dme_os"]);
        let dme = row(&result, &a_str(), "dme_od");
        assert_eq!((dme.kind, dme.percent_agreement), ("boolean", Some(100.0)));
        let os = row(&result, &a_str(), "dr_grade_os");
        let referable = os.referable.unwrap();
        assert_eq!((referable.true_negative, referable.sensitivity), (1, None));
        // Without a dme field, dr_grade is compared but referable DR is not counted.
        let mut dr_only: Form = form.clone();
        dr_only.fields.retain(|f| f.key == "dr_grade");
        let result = truth_agreement(&b.rows, &dr_only, &b.truths);
        let os = row(&result, &a_str(), "dr_grade_os");
        assert_eq!((os.n, os.referable), (1, None));
    }
}
