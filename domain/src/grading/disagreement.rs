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
use super::form::{Field, FieldKind, Form, FormProblem, Text};
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
    /// The field key: the field whose values differ (a status rule that fires because another
    /// field's value differs flags that other field, never a field both grades agree on).
    pub field: String,
    /// The eye, for per-eye fields.
    pub eye: Option<Eye>,
    /// Which rule fired, in words with internal names (e.g. `differs by ≥ 1 step; referable
    /// status differs (...)`), for exports and logs.
    pub rule: String,
    /// Which rule fired, in the words graders read: form labels, in English and Korean.
    pub reason: Text,
    /// The first grade's value; `None` when it has none.
    pub a: Option<Value>,
    /// The second grade's value; `None` when it has none.
    pub b: Option<Value>,
}

/// A rule that fired: on which field (and eye) it is flagged, and why.
struct Fired {
    field: String,
    eye: Option<Eye>,
    rule: String,
    reason: Text,
}

/// Every field (and eye) where grades `a` and `b` of `form` disagree, in form order, OD before OS.
///
/// Only fields with an `adjudicate` rule are compared. When one grade has a value and the other
/// has none (typically because a condition differs: one grader found the eye ungradable), that is
/// a disagreement if the field is required and asked in either grade. A disagreement is always
/// flagged on a field whose values differ: when a status rule (e.g. "referable: DR ≥ 2 or any
/// DME") differs only because of another field (DME), that other field is flagged, with the
/// status rule as the reason; a field both grades agree on is never flagged.
pub fn disagreements(form: &Form, a: &Values, b: &Values) -> Vec<Disagreement> {
    let mut fired: Vec<Fired> = Vec::new();
    for field in &form.fields {
        let Some(rule) = &field.adjudicate else {
            continue;
        };
        for &eye in field.eyes() {
            let (va, vb) = (a.get(&field.key, eye), b.get(&field.key, eye));
            match (va, vb) {
                (None, None) => continue,
                (Some(Value::CannotGrade), Some(Value::CannotGrade)) => continue,
                _ if cannot_grade_in_one_only(va, vb) => {
                    // Whatever the rule: one grader judged what the other could not see.
                    fired.push(cannot_grade_in_one(&field.key, eye));
                }
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
                    rule.fire(&pair, &mut fired);
                }
                _ => {
                    let required = |grade: &Values| {
                        field.required && values::is_asked(form, field, eye, grade)
                    };
                    if required(a) || required(b) {
                        fired.push(Fired {
                            field: field.key.clone(),
                            eye,
                            rule: "given in one grade only".to_owned(),
                            reason: Text {
                                en: "given in one grade only".to_owned(),
                                ko: "한쪽 판독에만 값이 있음".to_owned(),
                            },
                        });
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    for field in &form.fields {
        for &eye in field.eyes() {
            let here: Vec<&Fired> = fired
                .iter()
                .filter(|f| f.field == field.key && f.eye == eye)
                .collect();
            if here.is_empty() {
                continue;
            }
            let mut rules: Vec<&str> = Vec::new();
            let mut en: Vec<&str> = Vec::new();
            let mut ko: Vec<&str> = Vec::new();
            for f in &here {
                if !rules.contains(&f.rule.as_str()) {
                    rules.push(&f.rule);
                    en.push(&f.reason.en);
                    ko.push(&f.reason.ko);
                }
            }
            found.push(Disagreement {
                field: field.key.clone(),
                eye,
                rule: rules.join("; "),
                reason: Text {
                    en: en.join("; "),
                    ko: ko.join("; "),
                },
                a: a.get(&field.key, eye).cloned(),
                b: b.get(&field.key, eye).cloned(),
            });
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

    /// Pushes every (sub-)rule that fires on the pair, flagged on the field whose values
    /// differ: this field, or for a status rule the other fields (`or`) that changed it.
    fn fire(&self, pair: &Pair<'_>, fired: &mut Vec<Fired>) {
        let key = &pair.field.key;
        let here = |rule: &DisagreementRule| Fired {
            field: key.clone(),
            eye: pair.eye,
            rule: rule.describe(key),
            reason: rule.reason(pair.form, pair.field),
        };
        match self {
            DisagreementRule::Differs {} => {
                if !same(pair.va, pair.vb) {
                    fired.push(here(self));
                }
            }
            DisagreementRule::Steps { min } => {
                if step_distance(&pair.field.kind, pair.va, pair.vb)
                    .is_some_and(|distance| distance >= u64::try_from(*min).unwrap_or(0))
                {
                    fired.push(here(self));
                }
            }
            DisagreementRule::AbsDiff { min } => {
                if let (Some(x), Some(y)) = (pair.va.as_f64(), pair.vb.as_f64())
                    && (x - y).abs() >= min - TOLERANCE
                {
                    fired.push(here(self));
                }
            }
            DisagreementRule::Threshold { or, .. } => {
                // The other fields the status reads, at this eye.
                let terms: Vec<(&str, Option<Eye>)> = or
                    .iter()
                    .filter_map(|term| {
                        let other = pair.form.field(&term.field)?;
                        let eye = if other.per_eye { pair.eye } else { None };
                        (!other.per_eye || eye.is_some()).then_some((other.key.as_str(), eye))
                    })
                    .collect();
                // One that one grader could not grade leaves that grader's status unknown: it
                // is flagged, whatever the statuses say.
                let unknown: Vec<(&str, Option<Eye>)> = terms
                    .iter()
                    .copied()
                    .filter(|&(key, eye)| {
                        cannot_grade_in_one_only(pair.a.get(key, eye), pair.b.get(key, eye))
                    })
                    .collect();
                for &(key, eye) in &unknown {
                    fired.push(cannot_grade_in_one(key, eye));
                }
                if self.status(pair, pair.a, pair.va) == self.status(pair, pair.b, pair.vb) {
                    return;
                }
                let mut flagged = !unknown.is_empty();
                if !same(pair.va, pair.vb) {
                    fired.push(here(self));
                    flagged = true;
                }
                for &(key, eye) in terms.iter().filter(|term| !unknown.contains(term)) {
                    let differs = match (pair.a.get(key, eye), pair.b.get(key, eye)) {
                        (Some(x), Some(y)) => !same(x, y),
                        (None, None) => false,
                        _ => true,
                    };
                    if differs {
                        fired.push(Fired {
                            eye,
                            field: key.to_owned(),
                            ..here(self)
                        });
                        flagged = true;
                    }
                }
                if !flagged {
                    fired.push(here(self));
                }
            }
            DisagreementRule::AnyOf { rules } => {
                for rule in rules {
                    rule.fire(pair, fired);
                }
            }
        }
    }

    /// The rule in the words graders read, for `field` of `form`: field, level and option
    /// labels in English and Korean (`DR grade (ICDR) ≥ Moderate NPDR or Diabetic macular oedema:
    /// Non-centre-involving DME, Centre-involving DME`).
    pub fn reason(&self, form: &Form, field: &Field) -> Text {
        match self {
            DisagreementRule::Differs {} => text("values differ", "값이 다름"),
            DisagreementRule::Steps { min } if *min == 1 => Text {
                en: "differ by 1 step or more".to_owned(),
                ko: "1단계 이상 차이".to_owned(),
            },
            DisagreementRule::Steps { min } => Text {
                en: format!("differ by {min} steps or more"),
                ko: format!("{min}단계 이상 차이"),
            },
            DisagreementRule::AbsDiff { min } => Text {
                en: format!("differ by {min} or more"),
                ko: format!("{min} 이상 차이"),
            },
            DisagreementRule::Threshold {
                status,
                at_least,
                in_set,
                or,
            } => {
                let mut en = Vec::new();
                let mut ko = Vec::new();
                let mut add = |term: Option<Text>| {
                    if let Some(term) = term {
                        en.push(term.en);
                        ko.push(term.ko);
                    }
                };
                add(reason_predicate(
                    field,
                    at_least.as_ref(),
                    in_set.as_deref(),
                ));
                for term in or {
                    if let Some(other) = form.field(&term.field) {
                        add(reason_predicate(
                            other,
                            term.at_least.as_ref(),
                            term.in_set.as_deref(),
                        ));
                    }
                }
                let (status_en, status_ko) = match status.as_deref() {
                    Some("referable") => ("referable", "의뢰 필요"),
                    Some(other) => (other, other),
                    None => ("threshold", "기준"),
                };
                Text {
                    en: format!("{status_en} status differs ({})", en.join(" or ")),
                    ko: format!("{status_ko} 여부가 다름 ({})", ko.join(" 또는 ")),
                }
            }
            DisagreementRule::AnyOf { rules } => {
                let parts: Vec<Text> = rules.iter().map(|rule| rule.reason(form, field)).collect();
                Text {
                    en: parts
                        .iter()
                        .map(|p| p.en.as_str())
                        .collect::<Vec<_>>()
                        .join(", or "),
                    ko: parts
                        .iter()
                        .map(|p| p.ko.as_str())
                        .collect::<Vec<_>>()
                        .join(", 또는 "),
                }
            }
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

/// Whether one of two given values is "cannot grade" and the other a value.
fn cannot_grade_in_one_only(a: Option<&Value>, b: Option<&Value>) -> bool {
    matches!((a, b), (Some(x), Some(y))
        if matches!(x, Value::CannotGrade) != matches!(y, Value::CannotGrade))
}

/// "Cannot grade" in one grade and a value in the other, at `field` and `eye`.
fn cannot_grade_in_one(field: &str, eye: Option<Eye>) -> Fired {
    Fired {
        field: field.to_owned(),
        eye,
        rule: "cannot grade in one grade only".to_owned(),
        reason: text("cannot grade in one grade only", "한쪽 판독만 판정 불가"),
    }
}

fn text(en: &str, ko: &str) -> Text {
    Text {
        en: en.to_owned(),
        ko: ko.to_owned(),
    }
}

/// The label of a value of `field` (level or option label; the value itself otherwise).
fn value_label(field: &Field, value: &Json) -> Text {
    let shown = match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    match &field.kind {
        FieldKind::Ordinal { levels } => levels
            .iter()
            .find(|l| value.as_i64() == Some(l.value))
            .map(|l| l.label.clone()),
        FieldKind::Choice { options, .. } => options
            .iter()
            .find(|o| value.as_str() == Some(o.value.as_str()))
            .map(|o| o.label.clone()),
        FieldKind::Boolean {} => match value.as_bool() {
            Some(true) => Some(text("yes", "예")),
            Some(false) => Some(text("no", "아니요")),
            None => None,
        },
        _ => None,
    }
    .unwrap_or(Text {
        en: shown.clone(),
        ko: shown,
    })
}

fn reason_predicate(
    field: &Field,
    at_least: Option<&serde_json::Number>,
    in_set: Option<&[Json]>,
) -> Option<Text> {
    if let Some(threshold) = at_least {
        let value = value_label(field, &Json::Number(threshold.clone()));
        return Some(Text {
            en: format!("{} ≥ {}", field.label.en, value.en),
            ko: format!("{} ≥ {}", field.label.ko, value.ko),
        });
    }
    let items: Vec<Text> = in_set?
        .iter()
        .map(|item| value_label(field, item))
        .collect();
    Some(Text {
        en: format!(
            "{}: {}",
            field.label.en,
            items
                .iter()
                .map(|i| i.en.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        ko: format!(
            "{}: {}",
            field.label.ko,
            items
                .iter()
                .map(|i| i.ko.as_str())
                .collect::<Vec<_>>()
                .join(" 또는 ")
        ),
    })
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
        assert_eq!(
            (found[0].field.as_str(), found[0].eye),
            ("dme", Some(Eye::Od))
        );
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

    /// Issue 16: grade A OS DME "none", grade B "centre-involving", the same DR grades. The DME
    /// row of OS is flagged (the referable status differs because of it), the identical DR rows
    /// are not, and the reason is in form labels.
    #[test]
    fn a_dme_only_disagreement_flags_the_dme_row_of_that_eye() {
        let form = presets::icdr();
        let a = json!({ "dr_grade": { "OD": 1, "OS": 1 }, "dme": { "OD": "none", "OS": "none" } });
        let b = json!({ "dr_grade": { "OD": 1, "OS": 1 },
                        "dme": { "OD": "none", "OS": "centre_involving" } });
        let found = disagreements(&form, &grade(&form, a), &grade(&form, b));
        let flagged: Vec<(&str, Option<Eye>)> =
            found.iter().map(|d| (d.field.as_str(), d.eye)).collect();
        assert_eq!(flagged, [("dme", Some(Eye::Os))], "{found:?}");
        let d = &found[0];
        assert_eq!(
            (d.a.clone(), d.b.clone()),
            (
                Some(Value::Choice("none".into())),
                Some(Value::Choice("centre_involving".into()))
            )
        );
        assert_eq!(
            d.reason.en,
            "referable status differs (DR grade (ICDR) ≥ Moderate NPDR or Diabetic macular \
             oedema: Non-centre-involving DME or Centre-involving DME)"
        );
        assert!(d.reason.ko.contains("당뇨황반부종"), "{}", d.reason.ko);
        for internal in ["dr_grade", "dme", "centre_involving", "≥ 2"] {
            assert!(
                !d.reason.en.contains(internal),
                "{internal} in {}",
                d.reason.en
            );
            assert!(
                !d.reason.ko.contains(internal),
                "{internal} in {}",
                d.reason.ko
            );
        }
    }

    /// Every flagged row differs between the grades, per field and eye, whichever eye and field
    /// the grades differ in.
    #[test]
    fn only_fields_and_eyes_that_differ_are_flagged() {
        let form = presets::icdr();
        let base =
            || json!({ "dr_grade": { "OD": 1, "OS": 2 }, "dme": { "OD": "none", "OS": "none" } });
        /// (field changed, new value, grade B, the rows that must be flagged).
        type Case<'a> = (&'a str, &'a str, Json, &'a [(&'a str, Eye)]);
        let cases: [Case; 5] = [
            (
                "dme",
                "OD",
                json!("non_centre_involving"),
                &[("dme", Eye::Od)],
            ),
            // OS is referable already (DR 2): DME changes nothing the rules look at.
            ("dme", "OS", json!("centre_involving"), &[]),
            ("dr_grade", "OD", json!(2), &[("dr_grade", Eye::Od)]),
            ("dr_grade", "OS", json!(3), &[("dr_grade", Eye::Os)]),
            ("dr_grade", "OS", json!(2), &[]),
        ];
        for (field, eye, value, expected) in cases {
            let mut b = base();
            b[field][eye] = value.clone();
            let found = disagreements(&form, &grade(&form, base()), &grade(&form, b));
            let flagged: Vec<(&str, Eye)> = found
                .iter()
                .map(|d| (d.field.as_str(), d.eye.unwrap()))
                .collect();
            assert_eq!(flagged, expected, "{field} {eye} = {value}: {found:?}");
            for d in &found {
                assert_ne!(d.a, d.b, "a flagged row differs: {d:?}");
            }
        }
        // DR and DME both differ in OD: each row is flagged for its own reason.
        let b = json!({ "dr_grade": { "OD": 2, "OS": 2 }, "dme": { "OD": "centre_involving", "OS": "none" } });
        let found = disagreements(&form, &grade(&form, base()), &grade(&form, b));
        let flagged: Vec<(&str, Option<Eye>)> =
            found.iter().map(|d| (d.field.as_str(), d.eye)).collect();
        assert_eq!(
            flagged,
            [("dr_grade", Some(Eye::Od)), ("dme", Some(Eye::Od))]
        );
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

    #[test]
    fn cannot_grade_against_a_value_is_flagged_on_that_field_and_eye_only() {
        let form = presets::icdr();
        let base = json!({
            "dr_grade": { "OD": 1, "OS": 0 },
            "dme": { "OD": "none", "OS": "none" },
        });
        let mut a = base.clone();
        a["dme"]["OS"] = json!("cannot_grade");
        let found = disagreements(&form, &grade(&form, a.clone()), &grade(&form, base.clone()));
        let flagged: Vec<(&str, Option<Eye>)> =
            found.iter().map(|d| (d.field.as_str(), d.eye)).collect();
        assert_eq!(flagged, [("dme", Some(Eye::Os))]);
        assert_eq!(found[0].reason.en, "cannot grade in one grade only");
        assert_eq!(
            (found[0].a.as_ref(), found[0].b.as_ref()),
            (
                Some(&Value::CannotGrade),
                Some(&Value::Choice("none".into()))
            )
        );
        // Both could not grade it: they agree.
        assert!(
            disagreements(&form, &grade(&form, a.clone()), &grade(&form, a.clone())).is_empty()
        );
        // A referable DR grade against a non-referable one is still flagged on the DR grade
        // when the DME beside it could not be graded in one of them.
        let mut referable = a;
        referable["dr_grade"]["OS"] = json!(3);
        let found = disagreements(&form, &grade(&form, referable), &grade(&form, base));
        let flagged: Vec<(&str, Option<Eye>)> =
            found.iter().map(|d| (d.field.as_str(), d.eye)).collect();
        assert_eq!(
            flagged,
            [("dr_grade", Some(Eye::Os)), ("dme", Some(Eye::Os))]
        );
    }
}
