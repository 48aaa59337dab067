//! Disagreement rules: when two graders' values of one field call for adjudication.
//!
//! A field's `adjudicate` member holds a [`DisagreementRule`], tagged by `rule`. [`disagreements`]
//! compares two grades of the same case field by field (and eye by eye) and lists where a rule
//! fires. A status rule ([`DisagreementRule::Threshold`]) compares a derived yes/no status rather
//! than the values, and may take other fields into account, so "referable diabetic retinopathy
//! (ICDR ≥ 2 or any DME) differs" is one rule on `dr_grade`.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::eye::Eye;
use super::form::{Field, FieldKind, Form, FormProblem};
use super::values::{self, TOLERANCE, Value, Values};

/// How deeply `any_of` rules may nest.
const MAX_RULE_DEPTH: usize = 4;
/// Longest status name, in characters.
const MAX_STATUS_CHARS: usize = 40;

/// When two values of a field disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum DisagreementRule {
    /// Any difference (numbers within 1e-9).
    Differs {},
    /// The values are at least `min` steps apart: scale positions for an ordinal field (levels
    /// 0, 1, 3 are one step apart from each other in turn), multiples of `step` for a number field.
    Steps {
        /// Fewest steps that count as a disagreement (1 or more).
        min: i64,
    },
    /// Numbers at least `min` apart: `|a − b| ≥ min`, within 1e-9.
    AbsDiff {
        /// Smallest difference that counts as a disagreement (more than 0).
        min: f64,
    },
    /// A yes/no status differs. The status holds when this field's value is at least `at_least`
    /// (ordinal, number) or is in `in` (choice, ordinal, boolean; for a multiple choice: one of the
    /// chosen options is), or when any term of `or` holds on another field (same eye for per-eye
    /// fields).
    Threshold {
        /// Name of the status in descriptions, e.g. `referable`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        /// The status holds from this value up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_least: Option<serde_json::Number>,
        /// The status holds for these values.
        #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
        in_set: Option<Vec<Json>>,
        /// The status also holds when one of these holds.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        or: Vec<StatusTerm>,
    },
    /// Any of the rules fires.
    AnyOf {
        /// The rules.
        rules: Vec<DisagreementRule>,
    },
}

/// A condition on another field that makes a [`DisagreementRule::Threshold`] status hold.
/// Exactly one of `at_least` and `in` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusTerm {
    /// Key of the other field.
    pub field: String,
    /// Holds when the other field's value is at least this (ordinal, number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<serde_json::Number>,
    /// Holds when the other field's value is one of these (choice, ordinal, boolean).
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub in_set: Option<Vec<Json>>,
}

/// Two grades disagree on one field (at one eye).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disagreement {
    /// The field key.
    pub field: String,
    /// The eye, for per-eye fields.
    pub eye: Option<Eye>,
    /// Which rule fired, in words (e.g. `differs by ≥ 1 step; referable status differs (...)`).
    pub rule: String,
    /// The first grade's value; `None` when it has none.
    pub a: Option<Value>,
    /// The second grade's value; `None` when it has none.
    pub b: Option<Value>,
}

/// Every field (and eye) where grades `a` and `b` of `form` disagree, in form order, OD before OS.
///
/// Only fields with an `adjudicate` rule are compared. When one grade has a value and the other
/// has none (typically because a condition differs: one grader found the eye ungradable), that is
/// a disagreement if the field is required and asked in either grade.
pub fn disagreements(form: &Form, a: &Values, b: &Values) -> Vec<Disagreement> {
    let mut found = Vec::new();
    for field in &form.fields {
        let Some(rule) = &field.adjudicate else {
            continue;
        };
        for &eye in field.eyes() {
            let (va, vb) = (a.get(&field.key, eye), b.get(&field.key, eye));
            let fired = match (va, vb) {
                (None, None) => continue,
                (Some(va), Some(vb)) => {
                    let pair = Pair {
                        form,
                        field,
                        eye,
                        a,
                        b,
                        va,
                        vb,
                    };
                    let mut fired = Vec::new();
                    rule.fire(&pair, &mut fired);
                    fired
                }
                _ => {
                    let required = |grade: &Values| {
                        field.required && values::is_asked(form, field, eye, grade)
                    };
                    if required(a) || required(b) {
                        vec!["given in one grade only".to_owned()]
                    } else {
                        Vec::new()
                    }
                }
            };
            if !fired.is_empty() {
                found.push(Disagreement {
                    field: field.key.clone(),
                    eye,
                    rule: fired.join("; "),
                    a: va.cloned(),
                    b: vb.cloned(),
                });
            }
        }
    }
    found
}

/// The two values being compared and where they come from.
struct Pair<'a> {
    form: &'a Form,
    field: &'a Field,
    eye: Option<Eye>,
    a: &'a Values,
    b: &'a Values,
    va: &'a Value,
    vb: &'a Value,
}

impl DisagreementRule {
    /// The rule in words, for field `key`: `differs by ≥ 1 step, or referable status differs
    /// (dr_grade ≥ 2 or dme in {non_centre_involving, centre_involving})`.
    pub fn describe(&self, key: &str) -> String {
        match self {
            DisagreementRule::Differs {} => "values differ".to_owned(),
            DisagreementRule::Steps { min } if *min == 1 => "differs by ≥ 1 step".to_owned(),
            DisagreementRule::Steps { min } => format!("differs by ≥ {min} steps"),
            DisagreementRule::AbsDiff { min } => format!("|difference| ≥ {min}"),
            DisagreementRule::Threshold {
                status,
                at_least,
                in_set,
                or,
            } => {
                let mut terms = Vec::new();
                terms.extend(describe_predicate(
                    key,
                    at_least.as_ref(),
                    in_set.as_deref(),
                ));
                for term in or {
                    terms.extend(describe_predicate(
                        &term.field,
                        term.at_least.as_ref(),
                        term.in_set.as_deref(),
                    ));
                }
                let status = status.as_deref().unwrap_or("threshold");
                format!("{status} status differs ({})", terms.join(" or "))
            }
            DisagreementRule::AnyOf { rules } => {
                let parts: Vec<String> = rules.iter().map(|rule| rule.describe(key)).collect();
                parts.join(", or ")
            }
        }
    }

    /// Pushes the description of every (sub-)rule that fires on the pair.
    fn fire(&self, pair: &Pair<'_>, fired: &mut Vec<String>) {
        let key = &pair.field.key;
        let fires = match self {
            DisagreementRule::Differs {} => !same(pair.va, pair.vb),
            DisagreementRule::Steps { min } => step_distance(&pair.field.kind, pair.va, pair.vb)
                .is_some_and(|distance| distance >= u64::try_from(*min).unwrap_or(0)),
            DisagreementRule::AbsDiff { min } => match (pair.va.as_f64(), pair.vb.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() >= min - TOLERANCE,
                _ => false,
            },
            DisagreementRule::Threshold { .. } => {
                self.status(pair, pair.a, pair.va) != self.status(pair, pair.b, pair.vb)
            }
            DisagreementRule::AnyOf { rules } => {
                for rule in rules {
                    rule.fire(pair, fired);
                }
                false
            }
        };
        if fires {
            fired.push(self.describe(key));
        }
    }

    /// Whether a threshold rule's status holds in `grade`, whose value of the field is `value`.
    fn status(&self, pair: &Pair<'_>, grade: &Values, value: &Value) -> bool {
        let DisagreementRule::Threshold {
            at_least,
            in_set,
            or,
            ..
        } = self
        else {
            return false;
        };
        if predicate_holds(at_least.as_ref(), in_set.as_deref(), Some(value)) {
            return true;
        }
        or.iter().any(|term| {
            let Some(other) = pair.form.field(&term.field) else {
                return false;
            };
            let eye = if other.per_eye { pair.eye } else { None };
            let value = if other.per_eye && eye.is_none() {
                None
            } else {
                grade.get(&other.key, eye)
            };
            predicate_holds(term.at_least.as_ref(), term.in_set.as_deref(), value)
        })
    }
}

fn predicate_holds(
    at_least: Option<&serde_json::Number>,
    in_set: Option<&[Json]>,
    value: Option<&Value>,
) -> bool {
    let Some(value) = value else {
        return false;
    };
    let above = match (
        at_least.and_then(serde_json::Number::as_f64),
        value.as_f64(),
    ) {
        (Some(threshold), Some(number)) => number >= threshold - TOLERANCE,
        _ => false,
    };
    let within = in_set.is_some_and(|set| set.iter().any(|item| value.matches_json(item)));
    above || within
}

fn describe_predicate(
    key: &str,
    at_least: Option<&serde_json::Number>,
    in_set: Option<&[Json]>,
) -> Option<String> {
    if let Some(threshold) = at_least {
        return Some(format!("{key} ≥ {threshold}"));
    }
    let items: Vec<String> = in_set?
        .iter()
        .map(|item| match item {
            Json::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect();
    Some(format!("{key} in {{{}}}", items.join(", ")))
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => (x - y).abs() <= TOLERANCE,
        _ => a == b,
    }
}

/// How many steps apart two values are: scale positions (ordinal) or multiples of `step`
/// (number with a step). `None` for other kinds or values off the scale.
fn step_distance(kind: &FieldKind, a: &Value, b: &Value) -> Option<u64> {
    match kind {
        FieldKind::Ordinal { levels } => {
            let position = |value: &Value| {
                let level = value.as_level()?;
                levels.iter().position(|l| l.value == level)
            };
            Some(position(a)?.abs_diff(position(b)?) as u64)
        }
        FieldKind::Number {
            min,
            step: Some(step),
            ..
        } => {
            // Saturating casts: values are within the field's range, so this is exact in practice.
            let position = |value: &Value| Some(((value.as_f64()? - min) / step).round() as i64);
            Some(position(a)?.abs_diff(position(b)?))
        }
        _ => None,
    }
}

/// Checks that `rule` fits `field` of `form`, pushing a [`FormProblem::BadRule`] per mismatch.
pub(crate) fn check_rule(
    problems: &mut Vec<FormProblem>,
    form: &Form,
    field: &Field,
    rule: &DisagreementRule,
) {
    let mut details = Vec::new();
    check_at(&mut details, form, field, rule, 1);
    problems.extend(details.into_iter().map(|detail| FormProblem::BadRule {
        field: field.key.clone(),
        detail,
    }));
}

fn check_at(
    details: &mut Vec<String>,
    form: &Form,
    field: &Field,
    rule: &DisagreementRule,
    depth: usize,
) {
    match rule {
        DisagreementRule::Differs {} => {}
        DisagreementRule::Steps { min } => {
            if *min < 1 {
                details.push(format!("steps needs min of 1 or more, not {min}"));
            }
            match &field.kind {
                FieldKind::Ordinal { .. } | FieldKind::Number { step: Some(_), .. } => {}
                FieldKind::Number { step: None, .. } => {
                    details.push("steps on a number field needs the field's step".to_owned())
                }
                other => details.push(format!(
                    "steps applies to ordinal and number fields, not {}",
                    other.type_name()
                )),
            }
        }
        DisagreementRule::AbsDiff { min } => {
            if !(min.is_finite() && *min > 0.0) {
                details.push(format!("abs_diff needs min of more than 0, not {min}"));
            }
            if !matches!(field.kind, FieldKind::Number { .. }) {
                details.push(format!(
                    "abs_diff applies to number fields, not {}",
                    field.kind.type_name()
                ));
            }
        }
        DisagreementRule::Threshold {
            status,
            at_least,
            in_set,
            or,
        } => {
            if let Some(status) = status
                && (status.trim().is_empty() || status.chars().count() > MAX_STATUS_CHARS)
            {
                details.push(format!("status must be 1 to {MAX_STATUS_CHARS} characters"));
            }
            if at_least.is_none() && in_set.is_none() && or.is_empty() {
                details.push("threshold needs at_least, in or or".to_owned());
            }
            if let Err(detail) = check_predicate(&field.kind, at_least.as_ref(), in_set.as_deref())
            {
                details.push(detail);
            }
            for term in or {
                let Some(other) = form.field(&term.field) else {
                    details.push(format!("or refers to unknown field {:?}", term.field));
                    continue;
                };
                if other.key == field.key {
                    details.push("or refers to the field itself; use at_least or in".to_owned());
                    continue;
                }
                if other.per_eye && !field.per_eye {
                    details.push(format!(
                        "a person-level field's status cannot use per-eye field {:?}",
                        other.key
                    ));
                }
                if term.at_least.is_none() && term.in_set.is_none() {
                    details.push(format!("or {:?} needs at_least or in", other.key));
                }
                if let Err(detail) =
                    check_predicate(&other.kind, term.at_least.as_ref(), term.in_set.as_deref())
                {
                    details.push(format!("or {:?}: {detail}", other.key));
                }
            }
        }
        DisagreementRule::AnyOf { rules } => {
            if rules.is_empty() {
                details.push("any_of needs at least one rule".to_owned());
            }
            if depth >= MAX_RULE_DEPTH {
                details.push(format!(
                    "rules may nest at most {MAX_RULE_DEPTH} levels deep"
                ));
                return;
            }
            for rule in rules {
                check_at(details, form, field, rule, depth + 1);
            }
        }
    }
}

fn check_predicate(
    kind: &FieldKind,
    at_least: Option<&serde_json::Number>,
    in_set: Option<&[Json]>,
) -> Result<(), String> {
    match (at_least, in_set) {
        (None, None) => Ok(()),
        (Some(_), Some(_)) => Err("give either at_least or in, not both".to_owned()),
        (Some(threshold), None) => match kind {
            FieldKind::Ordinal { .. } | FieldKind::Number { .. } => {
                values::check_single(kind, &Json::Number(threshold.clone()))
                    .map_err(|detail| format!("at_least: {detail}"))
            }
            other => Err(format!(
                "at_least applies to ordinal and number fields, not {}",
                other.type_name()
            )),
        },
        (None, Some(set)) => match kind {
            FieldKind::Choice { .. } | FieldKind::Ordinal { .. } | FieldKind::Boolean {} => {
                if set.is_empty() {
                    return Err("in is empty".to_owned());
                }
                set.iter()
                    .try_for_each(|item| values::check_single(kind, item))
                    .map_err(|detail| format!("in: {detail}"))
            }
            other => Err(format!(
                "in applies to choice, ordinal and boolean fields, not {}",
                other.type_name()
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::presets;
    use crate::grading::values::{Mode, validate};
    use serde_json::json;

    fn grade(form: &Form, json: Json) -> Values {
        validate(form, &json, Mode::Submit).unwrap()
    }

    fn icdr(od: i64, dme_od: &str) -> Json {
        json!({ "dr_grade": { "OD": od, "OS": 0 }, "dme": { "OD": dme_od, "OS": "none" } })
    }

    #[test]
    fn icdr_1_against_2_differs_by_a_step_and_in_referable_status() {
        let form = presets::icdr();
        let found = disagreements(
            &form,
            &grade(&form, icdr(1, "none")),
            &grade(&form, icdr(2, "none")),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let d = &found[0];
        assert_eq!((d.field.as_str(), d.eye), ("dr_grade", Some(Eye::Od)));
        assert_eq!(
            (d.a.clone(), d.b.clone()),
            (Some(Value::Level(1)), Some(Value::Level(2)))
        );
        assert_eq!(
            d.rule,
            "differs by ≥ 1 step; referable status differs \
             (dr_grade ≥ 2 or dme in {non_centre_involving, centre_involving})"
        );
    }

    #[test]
    fn equal_grades_do_not_disagree() {
        let form = presets::icdr();
        let two = grade(&form, icdr(2, "none"));
        assert_eq!(disagreements(&form, &two, &two.clone()), vec![]);
    }

    #[test]
    fn dme_alone_changes_the_referable_status_of_the_same_dr_grade() {
        let form = presets::icdr();
        let found = disagreements(
            &form,
            &grade(&form, icdr(1, "none")),
            &grade(&form, icdr(1, "centre_involving")),
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].rule.starts_with("referable status differs"),
            "{}",
            found[0].rule
        );
        // Both referable, one step apart: only the step fires.
        let found = disagreements(
            &form,
            &grade(&form, icdr(2, "none")),
            &grade(&form, icdr(3, "none")),
        );
        assert_eq!(found[0].rule, "differs by ≥ 1 step");
    }

    #[test]
    fn vcdr_flags_a_difference_of_0_2_and_not_0_15() {
        let form = presets::vcdr();
        let vcdr = |od: f64| grade(&form, json!({ "vcdr": { "OD": od, "OS": 0.3 } }));
        let found = disagreements(&form, &vcdr(0.3), &vcdr(0.5));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, "|difference| ≥ 0.2");
        assert_eq!(found[0].eye, Some(Eye::Od));
        assert_eq!(disagreements(&form, &vcdr(0.3), &vcdr(0.45)), vec![]);
        assert_eq!(disagreements(&form, &vcdr(0.7), &vcdr(0.5)).len(), 1);
    }

    #[test]
    fn a_value_missing_from_one_grade_disagrees_when_it_was_asked() {
        let form = presets::demo();
        let base = json!({
            "gradable": { "OD": "gradable", "OS": "gradable" },
            "dr_grade": { "OD": 2, "OS": 0 },
            "dme": { "OD": "none", "OS": "none" },
            "areds_category": { "OD": 1, "OS": 1 },
            "vcdr": { "OD": 0.3, "OS": 0.3 }
        });
        let mut ungradable = base.clone();
        ungradable["gradable"]["OD"] = json!("ungradable");
        ungradable["ungradable_reason"] = json!({ "OD": "media_opacity" });
        for key in ["dr_grade", "dme", "areds_category", "vcdr"] {
            ungradable[key].as_object_mut().unwrap().remove("OD");
        }
        let found = disagreements(&form, &grade(&form, base), &grade(&form, ungradable));
        let fields: Vec<(&str, Option<Eye>)> =
            found.iter().map(|d| (d.field.as_str(), d.eye)).collect();
        assert_eq!(
            fields,
            vec![
                ("dr_grade", Some(Eye::Od)),
                ("areds_category", Some(Eye::Od)),
                ("vcdr", Some(Eye::Od))
            ]
        );
        assert_eq!(found[0].rule, "given in one grade only");
        assert_eq!(found[0].b, None);
    }

    #[test]
    fn an_optional_value_missing_from_one_grade_is_no_disagreement() {
        let mut form = presets::other_findings();
        form.fields[0].adjudicate = Some(DisagreementRule::Differs {});
        let some = grade(&form, json!({ "other_findings": ["glaucoma_suspect"] }));
        let none = grade(&form, json!({}));
        assert_eq!(disagreements(&form, &some, &none), vec![]);
        let other = grade(&form, json!({ "other_findings": ["choroidal_nevus"] }));
        assert_eq!(disagreements(&form, &some, &other)[0].rule, "values differ");
    }

    #[test]
    fn areds_category_flags_one_step() {
        let form = presets::areds_simple();
        let areds = |category: i64| {
            grade(
                &form,
                json!({
                    "large_drusen": { "OD": true, "OS": false },
                    "pigment_abnormality": { "OD": false, "OS": false },
                    "advanced_amd": { "OD": false, "OS": false },
                    "areds_category": { "OD": category, "OS": 1 }
                }),
            )
        };
        assert_eq!(disagreements(&form, &areds(3), &areds(3)), vec![]);
        assert_eq!(disagreements(&form, &areds(2), &areds(3)).len(), 1);
    }

    #[test]
    fn rules_that_do_not_fit_the_field_are_refused() {
        let mut form = presets::vcdr();
        form.fields[0].adjudicate = Some(DisagreementRule::AnyOf {
            rules: vec![
                DisagreementRule::Steps { min: 0 },
                DisagreementRule::Threshold {
                    status: None,
                    at_least: Some(serde_json::Number::from(2)),
                    in_set: Some(vec![json!(0.5)]),
                    or: vec![StatusTerm {
                        field: "nowhere".into(),
                        at_least: None,
                        in_set: None,
                    }],
                },
                DisagreementRule::AnyOf { rules: vec![] },
            ],
        });
        let problems = form.check().unwrap_err();
        let details: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            details,
            vec![
                "vcdr: adjudication rule: steps needs min of 1 or more, not 0",
                "vcdr: adjudication rule: give either at_least or in, not both",
                "vcdr: adjudication rule: or refers to unknown field \"nowhere\"",
                "vcdr: adjudication rule: any_of needs at least one rule",
            ]
        );
        let rule: DisagreementRule =
            serde_json::from_value(json!({ "rule": "threshold", "in": [true] })).unwrap();
        assert_eq!(
            rule.describe("advanced_amd"),
            "threshold status differs (advanced_amd in {true})"
        );
        assert!(
            serde_json::from_value::<DisagreementRule>(json!({ "rule": "differs", "min": 1 }))
                .is_err()
        );
    }
}
