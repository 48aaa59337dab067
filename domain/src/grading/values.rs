//! Grade values: what a grader sends, checked against the form and normalized.
//!
//! A grade is a JSON object keyed by field: `{"<key>": value}` for person-level fields and
//! `{"<key>": {"OD": value, "OS": value}}` for per-eye fields. [`validate`] checks every value and
//! returns every [`Problem`] at once, so a form can mark all of them in one round trip.
//! A draft ([`Mode::Draft`]) may leave anything empty; a submitted grade ([`Mode::Submit`]) must
//! have every required field that is asked.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value as Json;

use super::eye::Eye;
use super::form::{CANNOT_GRADE, Field, FieldKind, Form};

/// Largest accepted grade, in bytes of compact JSON.
pub const MAX_VALUES_BYTES: usize = 32 * 1024;
/// Tolerance of number comparisons (steps, equality).
pub(crate) const TOLERANCE: f64 = 1e-9;

/// How complete a grade must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Saved work in progress: missing values are fine; present ones are checked.
    Draft,
    /// A finished grade: every required field that is asked has a value (per-eye: OD and OS).
    Submit,
}

/// One normalized value.
///
/// Serializes to plain JSON: `true`, `2`, `0.35`, `"centre_involving"`, `["other"]`, `"text"`,
/// and `"cannot_grade"`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A boolean field's value.
    Bool(bool),
    /// An ordinal field's level.
    Level(i64),
    /// A number field's value.
    Number(f64),
    /// A single choice's option value.
    Choice(String),
    /// A multiple choice's option values, distinct, in the form's option order, never empty.
    Choices(Vec<String>),
    /// A text field's trimmed, non-empty text.
    Text(String),
    /// The grader could not judge the field on these images ([`CANNOT_GRADE`]; only for fields
    /// marked `cannot_grade`). It matches no condition and no status, so the fields that depend
    /// on it are not asked, and agreement statistics leave it out.
    CannotGrade,
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Bool(value) => serializer.serialize_bool(*value),
            Value::Level(level) => serializer.serialize_i64(*level),
            Value::Number(number) => serializer.serialize_f64(*number),
            Value::Choice(text) | Value::Text(text) => serializer.serialize_str(text),
            Value::Choices(values) => values.serialize(serializer),
            Value::CannotGrade => serializer.serialize_str(CANNOT_GRADE),
        }
    }
}

/// Grade values checked against a form by [`validate`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Values {
    person: BTreeMap<String, Value>,
    per_eye: BTreeMap<String, BTreeMap<Eye, Value>>,
}

/// What a problem with a value is, as the API reports it (`snake_case`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// A key that is not a field of the form, or an eye other than OD/OS.
    UnknownField,
    /// A value of the wrong JSON type (a text for a number, a fraction for a level, ...).
    WrongType,
    /// A number outside the field's range, or a level outside the scale.
    OutOfRange,
    /// A number that is not `min + k × step`.
    NotAStep,
    /// A choice that is not one of the options (or is chosen twice), or a level between levels.
    NotAnOption,
    /// A text longer than the field allows, or a grade larger than [`MAX_VALUES_BYTES`].
    TooLong,
    /// A required value is missing from a submitted grade.
    Required,
    /// A value for a field that is not asked, because its condition does not hold.
    NotApplicable,
    /// The grade, or a per-eye field's value, is not a JSON object.
    NotAnObject,
}

/// One problem with a grade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The field key; empty for problems of the whole grade.
    pub field: String,
    /// The eye, for per-eye values.
    pub eye: Option<Eye>,
    /// What kind of problem.
    pub code: ProblemCode,
    /// English explanation naming the field and what is allowed, e.g.
    /// `dr_grade (OD): 7 is not a level of this scale (0–4)`.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ProblemCode {
    /// The API spelling, e.g. `not_applicable`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::UnknownField => "unknown_field",
            ProblemCode::WrongType => "wrong_type",
            ProblemCode::OutOfRange => "out_of_range",
            ProblemCode::NotAStep => "not_a_step",
            ProblemCode::NotAnOption => "not_an_option",
            ProblemCode::TooLong => "too_long",
            ProblemCode::Required => "required",
            ProblemCode::NotApplicable => "not_applicable",
            ProblemCode::NotAnObject => "not_an_object",
        }
    }
}

impl Value {
    /// The boolean, for boolean fields.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(value) => Some(*value),
            _ => None,
        }
    }

    /// The level, for ordinal fields.
    pub fn as_level(&self) -> Option<i64> {
        match self {
            Value::Level(level) => Some(*level),
            _ => None,
        }
    }

    /// The value as a number, for number and ordinal fields.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(number) => Some(*number),
            Value::Level(level) => Some(*level as f64),
            _ => None,
        }
    }

    /// The option value of a single choice, or the text of a text field.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Choice(text) | Value::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The chosen option values: all of a multiple choice, the one of a single choice.
    pub fn choices(&self) -> &[String] {
        match self {
            Value::Choices(values) => values,
            Value::Choice(value) => std::slice::from_ref(value),
            _ => &[],
        }
    }

    /// The value as an export cell: `true`/`false`, the level or number, the option value,
    /// multiple choices joined with `;`, the text, or `cannot_grade`.
    pub fn cell(&self) -> String {
        match self {
            Value::Bool(value) => value.to_string(),
            Value::Level(level) => level.to_string(),
            Value::Number(number) => number.to_string(),
            Value::Choice(text) | Value::Text(text) => text.clone(),
            Value::Choices(values) => values.join(";"),
            Value::CannotGrade => CANNOT_GRADE.to_owned(),
        }
    }

    /// Whether the value matches a value written in a form (a condition or rule): equality,
    /// numbers within 1e-9, and for a multiple choice, being among the chosen options.
    pub fn matches_json(&self, expected: &Json) -> bool {
        match (self, expected) {
            (Value::Bool(value), Json::Bool(expected)) => value == expected,
            (Value::Level(_) | Value::Number(_), Json::Number(expected)) => {
                match (self.as_f64(), expected.as_f64()) {
                    (Some(value), Some(expected)) => (value - expected).abs() <= TOLERANCE,
                    _ => false,
                }
            }
            (Value::Choice(value) | Value::Text(value), Json::String(expected)) => {
                value == expected
            }
            (Value::Choices(values), Json::String(expected)) => values.contains(expected),
            _ => false,
        }
    }
}

impl Values {
    /// The value of field `key`: `eye` is `None` for person-level fields and the eye for per-eye
    /// fields. `None` when the grade has no value there.
    pub fn get(&self, key: &str, eye: Option<Eye>) -> Option<&Value> {
        match eye {
            None => self.person.get(key),
            Some(eye) => self.per_eye.get(key)?.get(&eye),
        }
    }

    /// Every value with its key and eye, person-level and per-eye keys merged in key order,
    /// OD before OS.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<Eye>, &Value)> {
        let mut all: Vec<(&str, Option<Eye>, &Value)> = Vec::new();
        for (key, value) in &self.person {
            all.push((key, None, value));
        }
        for (key, eyes) in &self.per_eye {
            for (eye, value) in eyes {
                all.push((key, Some(*eye), value));
            }
        }
        all.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        all.into_iter()
    }

    /// Whether the grade holds no value at all.
    pub fn is_empty(&self) -> bool {
        self.person.is_empty() && self.per_eye.is_empty()
    }

    /// The normalized grade as JSON, in the shape [`validate`] reads (what the database stores).
    pub fn to_json(&self) -> Json {
        let mut object = serde_json::Map::new();
        for (key, value) in &self.person {
            object.insert(
                key.clone(),
                serde_json::to_value(value).unwrap_or(Json::Null),
            );
        }
        for (key, eyes) in &self.per_eye {
            let mut by_eye = serde_json::Map::new();
            for (eye, value) in eyes {
                by_eye.insert(
                    eye.as_str().to_owned(),
                    serde_json::to_value(value).unwrap_or(Json::Null),
                );
            }
            object.insert(key.clone(), Json::Object(by_eye));
        }
        Json::Object(object)
    }

    fn insert(&mut self, key: &str, eye: Option<Eye>, value: Value) {
        match eye {
            None => {
                self.person.insert(key.to_owned(), value);
            }
            Some(eye) => {
                self.per_eye
                    .entry(key.to_owned())
                    .or_default()
                    .insert(eye, value);
            }
        }
    }
}

impl Serialize for Values {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// Checks `values` against `form` and returns them normalized (texts trimmed, empty texts, empty
/// lists and `null` dropped, multiple choices in option order), or every problem found.
///
/// - Keys that are not fields, and eyes other than OD/OS, are refused in both modes.
/// - Every present value is checked for type, range, step, option and length in both modes.
/// - A value for a field whose condition does not hold is `not_applicable` in both modes.
/// - In [`Mode::Submit`], every required field whose condition holds must have a value (per eye).
///
/// A condition on a field that has no value is undecided in a draft (the value is kept, nothing is
/// required) and false in a submitted grade. A condition on a field whose value was refused is
/// undecided in both modes, so one mistake is reported once.
pub fn validate(form: &Form, values: &Json, mode: Mode) -> Result<Values, Vec<Problem>> {
    if exceeds(values, MAX_VALUES_BYTES) {
        return Err(vec![Problem {
            field: String::new(),
            eye: None,
            code: ProblemCode::TooLong,
            message: format!("the grade is larger than {MAX_VALUES_BYTES} bytes of JSON"),
        }]);
    }
    let Json::Object(object) = values else {
        return Err(vec![Problem {
            field: String::new(),
            eye: None,
            code: ProblemCode::NotAnObject,
            message: format!(
                "the grade must be a JSON object of field values, not {}",
                describe_json(values)
            ),
        }]);
    };
    let mut check = Check {
        form,
        mode,
        values: Values::default(),
        undecided: BTreeSet::new(),
        problems: Vec::new(),
    };
    for key in object.keys() {
        if form.field(key).is_none() {
            check.problems.push(Problem {
                field: key.clone(),
                eye: None,
                code: ProblemCode::UnknownField,
                message: format!(
                    "{key}: not a field of form {} version {}",
                    form.code, form.version
                ),
            });
        }
    }
    for field in &form.fields {
        let raw = object.get(&field.key).filter(|raw| !raw.is_null());
        if !field.per_eye {
            check.slot(field, None, raw);
            continue;
        }
        match raw {
            None => {
                for eye in Eye::BOTH {
                    check.slot(field, Some(eye), None);
                }
            }
            Some(Json::Object(by_eye)) => {
                for code in by_eye.keys() {
                    if Eye::from_code(code).is_none() {
                        check.problems.push(Problem {
                            field: field.key.clone(),
                            eye: None,
                            code: ProblemCode::UnknownField,
                            message: format!(
                                "{}: {code:?} is not an eye; per-eye values are given as \
                                 {{\"OD\": …, \"OS\": …}}",
                                field.key
                            ),
                        });
                    }
                }
                for eye in Eye::BOTH {
                    let raw = by_eye.get(eye.as_str()).filter(|raw| !raw.is_null());
                    check.slot(field, Some(eye), raw);
                }
            }
            Some(other) => {
                check.problems.push(Problem {
                    field: field.key.clone(),
                    eye: None,
                    code: ProblemCode::NotAnObject,
                    message: format!(
                        "{}: per-eye values are given as {{\"OD\": …, \"OS\": …}}, not {}",
                        field.key,
                        describe_json(other)
                    ),
                });
                for eye in Eye::BOTH {
                    check.undecided.insert((field.key.clone(), Some(eye)));
                }
            }
        }
    }
    if check.problems.is_empty() {
        Ok(check.values)
    } else {
        Err(check.problems)
    }
}

/// Whether `field` is asked at `eye` in a finished grade `values`: no condition, or the named
/// field has a value that matches. (A field whose condition names an unknown field is not asked.)
pub(crate) fn is_asked(form: &Form, field: &Field, eye: Option<Eye>, values: &Values) -> bool {
    match gate(form, field, eye) {
        Gate::Always => true,
        Gate::Broken => false,
        Gate::On { target, eye } => values
            .get(&target.key, eye)
            .is_some_and(|value| field.when.as_ref().is_some_and(|c| c.matches(value))),
    }
}

/// Checks a value written in a form (a condition's or a rule's) against a field's kind: one
/// option value for any choice, otherwise a value the field accepts. Returns a description of
/// what is wrong, naming what is allowed.
pub(crate) fn check_single(kind: &FieldKind, raw: &Json) -> Result<(), String> {
    if let FieldKind::Choice { options, .. } = kind {
        return match raw {
            Json::String(text) if options.iter().any(|option| option.value == *text) => Ok(()),
            Json::String(text) => Err(format!("{text:?} is not an option ({})", option_list(kind))),
            other => Err(format!(
                "expected one option value ({}), not {}",
                option_list(kind),
                describe_json(other)
            )),
        };
    }
    match check_value(kind, raw) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!("expected {}, not an empty value", allowed(kind))),
        Err(refusal) => Err(refusal.detail),
    }
}

/// What is wrong with one value, without the field's name.
pub(crate) struct Refusal {
    code: ProblemCode,
    detail: String,
}

/// Checks one raw value against a field kind. `Ok(None)` is "no value" (`null`, empty text, empty
/// list).
fn check_value(kind: &FieldKind, raw: &Json) -> Result<Option<Value>, Refusal> {
    let refuse = |code, detail| Err(Refusal { code, detail });
    let wrong_type = || {
        refuse(
            ProblemCode::WrongType,
            format!("expected {}, not {}", allowed(kind), describe_json(raw)),
        )
    };
    if raw.is_null() {
        return Ok(None);
    }
    match kind {
        FieldKind::Choice {
            options,
            multiple: false,
        } => match raw {
            Json::String(text) if options.iter().any(|option| option.value == *text) => {
                Ok(Some(Value::Choice(text.clone())))
            }
            Json::String(text) => refuse(
                ProblemCode::NotAnOption,
                format!("{text:?} is not an option ({})", option_list(kind)),
            ),
            _ => wrong_type(),
        },
        FieldKind::Choice {
            options,
            multiple: true,
        } => {
            let Json::Array(items) = raw else {
                return wrong_type();
            };
            let mut chosen = vec![false; options.len()];
            for item in items {
                let Json::String(text) = item else {
                    return wrong_type();
                };
                let Some(idx) = options.iter().position(|option| option.value == *text) else {
                    return refuse(
                        ProblemCode::NotAnOption,
                        format!("{text:?} is not an option ({})", option_list(kind)),
                    );
                };
                if std::mem::replace(&mut chosen[idx], true) {
                    return refuse(
                        ProblemCode::NotAnOption,
                        format!("{text:?} is chosen twice; each option may be chosen once"),
                    );
                }
            }
            let values: Vec<String> = options
                .iter()
                .zip(&chosen)
                .filter(|(_, chosen)| **chosen)
                .map(|(option, _)| option.value.clone())
                .collect();
            Ok((!values.is_empty()).then_some(Value::Choices(values)))
        }
        FieldKind::Ordinal { levels } => {
            let Some(level) = as_whole_number(raw) else {
                return wrong_type();
            };
            if levels.iter().any(|l| l.value == level) {
                return Ok(Some(Value::Level(level)));
            }
            let (first, last) = match (levels.first(), levels.last()) {
                (Some(first), Some(last)) => (first.value, last.value),
                _ => return refuse(ProblemCode::OutOfRange, "the scale has no levels".into()),
            };
            let code = if level < first || level > last {
                ProblemCode::OutOfRange
            } else {
                ProblemCode::NotAnOption
            };
            refuse(
                code,
                format!("{level} is not a level of this scale ({})", scale(kind)),
            )
        }
        FieldKind::Number { min, max, step, .. } => {
            let Some(number) = raw.as_f64().filter(|n| n.is_finite()) else {
                return wrong_type();
            };
            if number < *min || number > *max {
                return refuse(
                    ProblemCode::OutOfRange,
                    format!("{number} is out of range ({})", allowed(kind)),
                );
            }
            if let Some(step) = step
                && !on_step(number, *min, *step)
            {
                return refuse(
                    ProblemCode::NotAStep,
                    format!("{number} is not a multiple of {step} from {min}"),
                );
            }
            Ok(Some(Value::Number(number)))
        }
        FieldKind::Boolean {} => match raw {
            Json::Bool(value) => Ok(Some(Value::Bool(*value))),
            _ => wrong_type(),
        },
        FieldKind::Text { max_len } => {
            let Json::String(text) = raw else {
                return wrong_type();
            };
            let text = text.trim();
            let len = text.chars().count();
            if len > *max_len {
                return refuse(
                    ProblemCode::TooLong,
                    format!("the text is {len} characters; at most {max_len} are allowed"),
                );
            }
            Ok((!text.is_empty()).then(|| Value::Text(text.to_owned())))
        }
    }
}

/// Whether `number` is `min + k × step` for a whole `k`, within [`TOLERANCE`].
pub(crate) fn on_step(number: f64, min: f64, step: f64) -> bool {
    let k = ((number - min) / step).round();
    (number - (min + k * step)).abs() <= TOLERANCE
}

/// What a field accepts, in words: "a level of this scale (0–4)", "one of a, b", ...
pub(crate) fn allowed(kind: &FieldKind) -> String {
    match kind {
        FieldKind::Choice {
            multiple: false, ..
        } => format!("one of {}", option_list(kind)),
        FieldKind::Choice { multiple: true, .. } => {
            format!("a list of distinct options from {}", option_list(kind))
        }
        FieldKind::Ordinal { .. } => format!("a level of this scale ({})", scale(kind)),
        FieldKind::Number { min, max, step, .. } => match step {
            Some(step) => format!("a number from {min} to {max} in steps of {step}"),
            None => format!("a number from {min} to {max}"),
        },
        FieldKind::Boolean {} => "true or false".to_owned(),
        FieldKind::Text { max_len } => format!("a text of at most {max_len} characters"),
    }
}

/// The option values of a choice, comma-separated.
fn option_list(kind: &FieldKind) -> String {
    match kind {
        FieldKind::Choice { options, .. } => {
            let values: Vec<&str> = options.iter().map(|o| o.value.as_str()).collect();
            values.join(", ")
        }
        _ => String::new(),
    }
}

/// The levels of an ordinal scale: `0–4` when they are consecutive, else `10, 20, 35`.
pub(crate) fn scale(kind: &FieldKind) -> String {
    let FieldKind::Ordinal { levels } = kind else {
        return String::new();
    };
    let consecutive = levels
        .windows(2)
        .all(|pair| pair[0].value.checked_add(1) == Some(pair[1].value));
    match (levels.first(), levels.last()) {
        (Some(first), Some(last)) if consecutive && levels.len() > 2 => {
            format!("{}–{}", first.value, last.value)
        }
        _ => {
            let values: Vec<String> = levels.iter().map(|l| l.value.to_string()).collect();
            values.join(", ")
        }
    }
}

/// A short description of a JSON value for messages.
fn describe_json(raw: &Json) -> String {
    match raw {
        Json::Null => "null".to_owned(),
        Json::Bool(value) => value.to_string(),
        Json::Number(number) => number.to_string(),
        Json::String(text) => {
            let short: String = text.chars().take(40).collect();
            if short.len() < text.len() {
                format!("the text {short:?}…")
            } else {
                format!("the text {short:?}")
            }
        }
        Json::Array(_) => "a list".to_owned(),
        Json::Object(_) => "an object".to_owned(),
    }
}

/// An integer, also when written as `2.0`.
fn as_whole_number(raw: &Json) -> Option<i64> {
    if let Some(level) = raw.as_i64() {
        return Some(level);
    }
    let number = raw.as_f64()?;
    let in_range = number.fract() == 0.0 && number.abs() < 9.0e15;
    in_range.then_some(number as i64)
}

/// Whether the compact JSON of `value` is longer than `limit` bytes (stops writing at the limit).
fn exceeds(value: &Json, limit: usize) -> bool {
    struct Budget(usize);
    impl std::io::Write for Budget {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(buf.len())
                .ok_or_else(|| std::io::Error::other("over the limit"))?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Budget(limit), value).is_err()
}

/// How a field's condition is decided at one eye.
enum Gate<'f> {
    /// No condition: always asked.
    Always,
    /// The condition names a field the form lacks, or a per-eye field from a person-level one.
    Broken,
    /// Decided by the value of `target` at `eye`.
    On { target: &'f Field, eye: Option<Eye> },
}

fn gate<'f>(form: &'f Form, field: &Field, eye: Option<Eye>) -> Gate<'f> {
    let Some(condition) = &field.when else {
        return Gate::Always;
    };
    let Some(target) = form.field(&condition.field) else {
        return Gate::Broken;
    };
    match (target.per_eye, eye) {
        (false, _) => Gate::On { target, eye: None },
        (true, Some(eye)) => Gate::On {
            target,
            eye: Some(eye),
        },
        (true, None) => Gate::Broken,
    }
}

/// Whether a field is asked, as far as can be told.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asked {
    Yes,
    No,
    Undecided,
}

struct Check<'f> {
    form: &'f Form,
    mode: Mode,
    values: Values,
    /// Slots whose value was refused or reported missing: conditions on them are undecided.
    undecided: BTreeSet<(String, Option<Eye>)>,
    problems: Vec<Problem>,
}

impl Check<'_> {
    fn asked(&self, field: &Field, eye: Option<Eye>) -> Asked {
        match gate(self.form, field, eye) {
            Gate::Always => Asked::Yes,
            Gate::Broken => Asked::Undecided,
            Gate::On { target, eye } => {
                if let Some(value) = self.values.get(&target.key, eye) {
                    let holds = field.when.as_ref().is_some_and(|c| c.matches(value));
                    if holds { Asked::Yes } else { Asked::No }
                } else if self.undecided.contains(&(target.key.clone(), eye))
                    || self.mode == Mode::Draft
                {
                    Asked::Undecided
                } else {
                    Asked::No
                }
            }
        }
    }

    fn slot(&mut self, field: &Field, eye: Option<Eye>, raw: Option<&Json>) {
        let place = place(&field.key, eye);
        let asked = self.asked(field, eye);
        let checked = match raw {
            Some(Json::String(text)) if field.cannot_grade && text == CANNOT_GRADE => {
                Ok(Some(Value::CannotGrade))
            }
            Some(raw) => check_value(&field.kind, raw),
            None => Ok(None),
        };
        let problem = match checked {
            Err(refusal) => Some((refusal.code, format!("{place}: {}", refusal.detail))),
            Ok(Some(_)) if asked == Asked::No => Some((
                ProblemCode::NotApplicable,
                format!(
                    "{place}: not asked, because {}; leave it empty",
                    self.condition_text(field, eye)
                ),
            )),
            Ok(Some(value)) => {
                self.values.insert(&field.key, eye, value);
                None
            }
            Ok(None) if self.mode == Mode::Submit && field.required && asked == Asked::Yes => {
                let or_not = if field.cannot_grade {
                    ", or cannot_grade"
                } else {
                    ""
                };
                Some((
                    ProblemCode::Required,
                    format!(
                        "{place}: a value is required ({}{or_not})",
                        allowed(&field.kind)
                    ),
                ))
            }
            Ok(None) => None,
        };
        if let Some((code, message)) = problem {
            self.undecided.insert((field.key.clone(), eye));
            self.problems.push(Problem {
                field: field.key.clone(),
                eye,
                code,
                message,
            });
        }
    }

    /// "it is asked only when gradable (OS) is gradable or partly_gradable".
    fn condition_text(&self, field: &Field, eye: Option<Eye>) -> String {
        match (&field.when, gate(self.form, field, eye)) {
            (Some(condition), Gate::On { target, eye }) => format!(
                "it is asked only when {}",
                describe_condition(condition, target, &place(&target.key, eye))
            ),
            _ => "its condition cannot be decided".to_owned(),
        }
    }
}

/// `dr_grade (OD)` for per-eye values, `dr_grade` for person-level ones.
fn place(key: &str, eye: Option<Eye>) -> String {
    match eye {
        Some(eye) => format!("{key} ({eye})"),
        None => key.to_owned(),
    }
}

/// A condition in words, `name` naming the target field: `gradable (OD) is gradable or
/// partly_gradable`, `other_findings includes other`.
pub(crate) fn describe_condition(
    condition: &super::form::Condition,
    target: &Field,
    name: &str,
) -> String {
    let values: Vec<String> = condition
        .equals
        .iter()
        .chain(condition.any_of.iter().flatten())
        .map(|value| match value {
            Json::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect();
    let verb = match target.kind {
        FieldKind::Choice { multiple: true, .. } => "includes",
        _ => "is",
    };
    format!("{name} {verb} {}", values.join(" or "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::presets;
    use serde_json::json;

    fn codes(problems: &[Problem]) -> Vec<(&str, Option<Eye>, ProblemCode)> {
        problems
            .iter()
            .map(|p| (p.field.as_str(), p.eye, p.code))
            .collect()
    }

    fn full_demo_grade() -> Json {
        json!({
            "gradable": { "OD": "gradable", "OS": "partly_gradable" },
            "ungradable_reason": { "OS": "small_pupil" },
            "dr_grade": { "OD": 2, "OS": 0 },
            "dme": { "OD": "none", "OS": "centre_involving" },
            "areds_category": { "OD": 1, "OS": 2 },
            "vcdr": { "OD": 0.35, "OS": 0.4 },
            "other_findings": ["other", "epiretinal_membrane"],
            "other_text": "  drusenoid PED  "
        })
    }

    #[test]
    fn a_complete_grade_is_normalized() {
        let form = presets::demo();
        let values = validate(&form, &full_demo_grade(), Mode::Submit).unwrap();
        assert_eq!(
            values.get("dr_grade", Some(Eye::Od)),
            Some(&Value::Level(2))
        );
        assert_eq!(values.get("vcdr", Some(Eye::Os)), Some(&Value::Number(0.4)));
        assert_eq!(values.get("dr_grade", None), None);
        // Option order, trimmed text.
        assert_eq!(
            values.get("other_findings", None),
            Some(&Value::Choices(vec![
                "epiretinal_membrane".into(),
                "other".into()
            ]))
        );
        assert_eq!(
            values.get("other_text", None),
            Some(&Value::Text("drusenoid PED".into()))
        );
        assert_eq!(
            values.to_json()["dme"],
            json!({ "OD": "none", "OS": "centre_involving" })
        );
        assert_eq!(values.to_json()["other_text"], json!("drusenoid PED"));
        // The normalized JSON validates to the same values.
        assert_eq!(
            validate(&form, &values.to_json(), Mode::Submit).unwrap(),
            values
        );
        assert_eq!(values.iter().count(), 13);
    }

    #[test]
    fn each_problem_code_is_triggered_by_a_concrete_value() {
        let form = presets::demo();
        let cases = [
            (
                json!({ "colour": 1 }),
                "colour",
                None,
                ProblemCode::UnknownField,
            ),
            (
                json!({ "dr_grade": { "OU": 1 } }),
                "dr_grade",
                None,
                ProblemCode::UnknownField,
            ),
            (
                json!({ "dr_grade": { "OD": "2" } }),
                "dr_grade",
                Some(Eye::Od),
                ProblemCode::WrongType,
            ),
            (
                json!({ "dr_grade": { "OD": 1.5 } }),
                "dr_grade",
                Some(Eye::Od),
                ProblemCode::WrongType,
            ),
            (
                json!({ "dr_grade": { "OD": 7 } }),
                "dr_grade",
                Some(Eye::Od),
                ProblemCode::OutOfRange,
            ),
            (
                json!({ "vcdr": { "OS": 1.2 } }),
                "vcdr",
                Some(Eye::Os),
                ProblemCode::OutOfRange,
            ),
            (
                json!({ "vcdr": { "OS": 0.33 } }),
                "vcdr",
                Some(Eye::Os),
                ProblemCode::NotAStep,
            ),
            (
                json!({ "dme": { "OD": "yes" } }),
                "dme",
                Some(Eye::Od),
                ProblemCode::NotAnOption,
            ),
            (
                json!({ "other_findings": ["other", "other"] }),
                "other_findings",
                None,
                ProblemCode::NotAnOption,
            ),
            (
                json!({ "other_findings": ["other"], "other_text": "x".repeat(501) }),
                "other_text",
                None,
                ProblemCode::TooLong,
            ),
            (
                json!({ "other_findings": ["glaucoma_suspect"], "other_text": "x" }),
                "other_text",
                None,
                ProblemCode::NotApplicable,
            ),
            (
                json!({ "dr_grade": 2 }),
                "dr_grade",
                None,
                ProblemCode::NotAnObject,
            ),
        ];
        for (grade, field, eye, code) in cases {
            let problems = validate(&form, &grade, Mode::Draft).unwrap_err();
            assert_eq!(codes(&problems), vec![(field, eye, code)], "{grade}");
            assert!(
                problems[0].message.starts_with(field),
                "{}",
                problems[0].message
            );
        }
        let problems = validate(&form, &json!({}), Mode::Submit).unwrap_err();
        assert!(problems.iter().any(|p| p.code == ProblemCode::Required));
        let problems = validate(&form, &json!([1]), Mode::Draft).unwrap_err();
        assert_eq!(codes(&problems), vec![("", None, ProblemCode::NotAnObject)]);
    }

    #[test]
    fn messages_name_the_field_and_what_is_allowed() {
        let form = presets::icdr();
        let problems =
            validate(&form, &json!({ "dr_grade": { "OD": 7 } }), Mode::Draft).unwrap_err();
        assert_eq!(
            problems[0].message,
            "dr_grade (OD): 7 is not a level of this scale (0–4)"
        );
        let problems =
            validate(&form, &json!({ "dme": { "OS": "yes" } }), Mode::Draft).unwrap_err();
        assert_eq!(
            problems[0].message,
            "dme (OS): \"yes\" is not an option (none, non_centre_involving, centre_involving)"
        );
        let problems = validate(
            &presets::vcdr(),
            &json!({ "vcdr": { "OD": "0.3" } }),
            Mode::Draft,
        )
        .unwrap_err();
        assert_eq!(
            problems[0].message,
            "vcdr (OD): expected a number from 0 to 1 in steps of 0.05, not the text \"0.3\""
        );
        let json = serde_json::to_value(&problems[0]).unwrap();
        assert_eq!(
            json,
            json!({ "field": "vcdr", "eye": "OD", "code": "wrong_type", "message": problems[0].message })
        );
    }

    #[test]
    fn all_problems_are_returned_at_once() {
        let form = presets::demo();
        let grade = json!({
            "gradable": { "OD": "gradable", "OS": "blurry" },
            "dr_grade": { "OD": 9 },
            "vcdr": { "OD": 0.31, "OS": 2 },
            "extra": true
        });
        let problems = validate(&form, &grade, Mode::Submit).unwrap_err();
        let found = codes(&problems);
        for expected in [
            ("extra", None, ProblemCode::UnknownField),
            ("gradable", Some(Eye::Os), ProblemCode::NotAnOption),
            ("dr_grade", Some(Eye::Od), ProblemCode::OutOfRange),
            ("dme", Some(Eye::Od), ProblemCode::Required),
            ("areds_category", Some(Eye::Od), ProblemCode::Required),
            ("vcdr", Some(Eye::Od), ProblemCode::NotAStep),
            ("vcdr", Some(Eye::Os), ProblemCode::OutOfRange),
        ] {
            assert!(
                found.contains(&expected),
                "{expected:?} missing from {found:?}"
            );
        }
        // The OS eye's gradability was refused, so its dependants are neither required nor
        // refused: one mistake, one problem.
        assert!(
            !found
                .iter()
                .any(|(f, e, _)| *f == "dr_grade" && *e == Some(Eye::Os))
        );
        assert_eq!(found.len(), 7, "{found:?}");
    }

    #[test]
    fn drafts_may_leave_values_out_and_submissions_may_not() {
        let form = presets::icdr();
        let half = json!({ "dr_grade": { "OD": 1 } });
        let values = validate(&form, &half, Mode::Draft).unwrap();
        assert_eq!(
            values.get("dr_grade", Some(Eye::Od)),
            Some(&Value::Level(1))
        );
        assert!(validate(&form, &json!({}), Mode::Draft).unwrap().is_empty());
        let problems = validate(&form, &half, Mode::Submit).unwrap_err();
        assert_eq!(
            codes(&problems),
            vec![
                ("dr_grade", Some(Eye::Os), ProblemCode::Required),
                ("dme", Some(Eye::Od), ProblemCode::Required),
                ("dme", Some(Eye::Os), ProblemCode::Required),
            ]
        );
        // null, empty text and empty lists count as missing.
        let form = presets::other_findings();
        let empty = json!({ "other_findings": [], "other_text": null });
        assert!(validate(&form, &empty, Mode::Submit).unwrap().is_empty());
        let blank = json!({ "other_findings": ["other"], "other_text": "   " });
        let problems = validate(&form, &blank, Mode::Submit).unwrap_err();
        assert_eq!(
            codes(&problems),
            vec![("other_text", None, ProblemCode::Required)]
        );
        assert!(validate(&form, &blank, Mode::Draft).is_ok());
    }

    #[test]
    fn an_ungradable_eye_is_not_asked_for_its_dr_grade() {
        let form = presets::demo();
        let mut grade = full_demo_grade();
        grade["gradable"]["OS"] = json!("ungradable");
        grade["ungradable_reason"]["OS"] = json!("media_opacity");
        for key in ["dr_grade", "dme", "areds_category", "vcdr"] {
            grade[key].as_object_mut().unwrap().remove("OS");
        }
        let values = validate(&form, &grade, Mode::Submit).unwrap();
        assert_eq!(values.get("dr_grade", Some(Eye::Os)), None);
        assert_eq!(
            values.get("dr_grade", Some(Eye::Od)),
            Some(&Value::Level(2))
        );

        grade["dr_grade"]["OS"] = json!(1);
        for mode in [Mode::Draft, Mode::Submit] {
            let problems = validate(&form, &grade, mode).unwrap_err();
            assert_eq!(
                codes(&problems),
                vec![("dr_grade", Some(Eye::Os), ProblemCode::NotApplicable)]
            );
            assert_eq!(
                problems[0].message,
                "dr_grade (OS): not asked, because it is asked only when gradable (OS) is \
                 gradable or partly_gradable; leave it empty"
            );
        }
        // A gradable eye needs no reason; giving one is refused.
        grade["dr_grade"].as_object_mut().unwrap().remove("OS");
        grade["ungradable_reason"]["OD"] = json!("artefact");
        let problems = validate(&form, &grade, Mode::Submit).unwrap_err();
        assert_eq!(
            codes(&problems),
            vec![(
                "ungradable_reason",
                Some(Eye::Od),
                ProblemCode::NotApplicable
            )]
        );
    }

    #[test]
    fn a_condition_on_an_empty_field_is_undecided_in_drafts_only() {
        let form = presets::demo();
        let early = json!({ "dr_grade": { "OD": 3 } });
        let values = validate(&form, &early, Mode::Draft).unwrap();
        assert_eq!(
            values.get("dr_grade", Some(Eye::Od)),
            Some(&Value::Level(3))
        );
        let problems = validate(&form, &early, Mode::Submit).unwrap_err();
        assert!(codes(&problems).contains(&("gradable", Some(Eye::Od), ProblemCode::Required)));
        assert!(!problems.iter().any(|p| p.field == "dr_grade"));
    }

    #[test]
    fn levels_written_as_whole_floats_are_accepted() {
        let form = presets::icdr();
        let values = validate(&form, &json!({ "dr_grade": { "OS": 2.0 } }), Mode::Draft).unwrap();
        assert_eq!(
            values.get("dr_grade", Some(Eye::Os)),
            Some(&Value::Level(2))
        );
    }

    #[test]
    fn a_huge_grade_is_refused_before_it_is_read() {
        let form = presets::other_findings();
        let grade = json!({ "other_text": "x".repeat(MAX_VALUES_BYTES) });
        let problems = validate(&form, &grade, Mode::Draft).unwrap_err();
        assert_eq!(codes(&problems), vec![("", None, ProblemCode::TooLong)]);
    }

    #[test]
    fn steps_allow_for_float_rounding() {
        assert!(on_step(0.35, 0.0, 0.05));
        assert!(on_step(0.7, 0.0, 0.05));
        assert!(on_step(1.0, 0.0, 0.05));
        assert!(!on_step(0.33, 0.0, 0.05));
        assert!(on_step(-1.25, -2.0, 0.25));
    }

    #[test]
    fn cannot_grade_is_a_value_only_where_the_form_allows_it() {
        let form = presets::icdr();
        let mut grade = json!({
            "dr_grade": { "OD": 2, "OS": "cannot_grade" },
            "dme": { "OD": "cannot_grade", "OS": "none" },
            "nvd": { "OD": "absent", "OS": "cannot_grade" },
            "nve": { "OD": "absent", "OS": "absent" },
            "vitreous_haemorrhage": { "OD": "absent", "OS": "absent" },
            "hard_exudates_macula": { "OD": "absent", "OS": "absent" },
            "laser_scars": { "OD": "none", "OS": "none" },
            "urgent_referral": false
        });
        let values = validate(&form, &grade, Mode::Submit).unwrap();
        assert_eq!(
            values.get("dr_grade", Some(Eye::Os)),
            Some(&Value::CannotGrade)
        );
        assert_eq!(values.get("dme", Some(Eye::Od)), Some(&Value::CannotGrade));
        // Stored and exported as the word, and read back the same.
        assert_eq!(values.to_json()["dr_grade"]["OS"], json!("cannot_grade"));
        assert_eq!(Value::CannotGrade.cell(), "cannot_grade");
        assert_eq!(
            validate(&form, &values.to_json(), Mode::Submit).unwrap(),
            values
        );
        // Not on a field that does not allow it (laser scars, vitreous haemorrhage).
        grade["laser_scars"]["OD"] = json!("cannot_grade");
        let problems = validate(&form, &grade, Mode::Submit).unwrap_err();
        assert_eq!(
            codes(&problems),
            [("laser_scars", Some(Eye::Od), ProblemCode::NotAnOption)]
        );
        // A missing value's message offers it.
        let problems = validate(&form, &json!({}), Mode::Submit).unwrap_err();
        let dr = problems.iter().find(|p| p.field == "dr_grade").unwrap();
        assert!(dr.message.ends_with(", or cannot_grade)"), "{}", dr.message);
    }

    #[test]
    fn fields_that_depend_on_a_field_not_graded_are_not_asked() {
        // Demo: the VCDR of a gradable eye is asked; "cannot grade" for the DR grade does not
        // make the fields after it disappear (they depend on gradability, not on it), and a
        // condition on a "cannot grade" value does not hold.
        let form = presets::demo();
        let mut grade = full_demo_grade();
        grade["dr_grade"]["OD"] = json!("cannot_grade");
        grade["vcdr"]["OS"] = json!("cannot_grade");
        let values = validate(&form, &grade, Mode::Submit).unwrap();
        assert_eq!(values.get("vcdr", Some(Eye::Os)), Some(&Value::CannotGrade));
        let gradable = form.field("gradable").unwrap();
        let condition = crate::grading::Condition {
            field: "dr_grade".into(),
            equals: None,
            any_of: Some(vec![json!("cannot_grade"), json!(2)]),
        };
        assert!(!condition.matches(&Value::CannotGrade));
        assert!(condition.matches(&Value::Level(2)));
        assert!(!gradable.cannot_grade);
    }
}
