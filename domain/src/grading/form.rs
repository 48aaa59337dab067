//! Grading forms as data, schema `readroom-form/1`.
//!
//! A form is a JSON document listing the fields a grader fills for one case: their kind (choice,
//! ordinal scale, number, yes/no, free text), labels in English and Korean, whether each value is
//! given per eye (OD/OS), when a field is asked ([`Condition`]) and when two graders' values call
//! for adjudication ([`DisagreementRule`]). The format is documented in `docs/grading-forms.md`;
//! its field names are part of readroom's stable public surface.
//!
//! [`Form::parse`] checks the size, JSON syntax, schema and shape, then every rule that spans
//! fields ([`Form::check`]), and reports all broken rules at once. [`Form::fingerprint`] names the
//! exact definition a grade was made with.

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::disagreement::{self, DisagreementRule};
use super::eye::Eye;
use super::values::{self, Value};

/// The only form schema this build reads and writes.
pub const FORM_SCHEMA_V1: &str = "readroom-form/1";
/// Largest accepted form definition, in bytes of JSON.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Most fields one form may have.
pub const MAX_FIELDS: usize = 100;
/// Longest field key, in characters (`[a-z][a-z0-9_]{0,39}`).
pub const MAX_KEY_LEN: usize = 40;
/// Largest `max_len` a text field may declare, in characters.
pub const MAX_TEXT_LEN: usize = 4000;
/// The `max_len` of a text field that declares none, in characters.
pub const DEFAULT_TEXT_LEN: usize = 1000;
/// Longest form code, in characters.
const MAX_CODE_LEN: usize = 64;
/// Longest title, label or option label, in characters.
const MAX_LABEL_CHARS: usize = 200;
/// Longest help text, in characters.
const MAX_HELP_CHARS: usize = 1000;
/// Longest unit of a number field, in characters.
const MAX_UNIT_CHARS: usize = 16;

/// The schematic figures the viewer draws (`viewer/assets/figures/<name>.svg`), which a field
/// may name as its `figure`: the ICDR 4-2-1 rule of severe NPDR, the macular zones of DME
/// (centre, within one disc diameter, beyond), and AREDS drusen sizes against a vein's width.
pub const FIGURES: &[&str] = &["icdr_4_2_1", "dme_zones", "areds_drusen"];

/// The value a grader gives for a field marked `cannot_grade` when it cannot be judged.
pub const CANNOT_GRADE: &str = "cannot_grade";

/// A grading form definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Form {
    /// Schema version; must be [`FORM_SCHEMA_V1`].
    pub schema: String,
    /// Short code naming the form (e.g. `icdr`); `[A-Za-z0-9._-]`, at most 64 characters.
    pub code: String,
    /// Version of this form (1 or more); a changed definition gets a new version.
    pub version: u32,
    /// Title shown above the form.
    pub title: Text,
    /// The fields, in display order. Conditions may only refer to earlier fields.
    pub fields: Vec<Field>,
}

/// A text shown to graders, in English and Korean (both required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    /// English.
    pub en: String,
    /// Korean.
    pub ko: String,
}

/// One field of a form.
///
/// In JSON the kind is flattened into the field: `{"key": "dr_grade", "type": "ordinal",
/// "levels": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// Key of the value in a grade and stem of its export columns: `[a-z][a-z0-9_]{0,39}`.
    pub key: String,
    /// Label shown to graders.
    pub label: Text,
    /// Optional longer explanation shown on demand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<Text>,
    /// Whether a value is given for each eye (OD and OS) rather than once for the person.
    #[serde(skip_serializing_if = "is_false")]
    pub per_eye: bool,
    /// Whether a submitted grade must have a value (whenever the field is asked). Default true.
    #[serde(skip_serializing_if = "is_true")]
    pub required: bool,
    /// When the field is asked; always when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// A built-in schematic drawn for the field's definitions (one of [`FIGURES`]), shown with
    /// them on demand, e.g. `icdr_4_2_1` for the severe NPDR rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figure: Option<String>,
    /// Whether a grader may answer [`CANNOT_GRADE`] instead of a value, when what the field
    /// asks cannot be judged on these images (the macula out of view, the disc out of focus).
    /// Single choices, ordinal scales, yes/no and numbers only. Default false.
    #[serde(skip_serializing_if = "is_false")]
    pub cannot_grade: bool,
    /// What kind of value the field takes (`type` and its parameters).
    #[serde(flatten)]
    pub kind: FieldKind,
    /// When two graders' values of this field call for adjudication; never when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjudicate: Option<DisagreementRule>,
}

/// The kind of value a field takes, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldKind {
    /// One of a list of options, or several of them when `multiple`.
    Choice {
        /// The options, in display order.
        options: Vec<ChoiceOption>,
        /// Whether several options may be chosen (the value is then a list). Default false.
        #[serde(default, skip_serializing_if = "is_false")]
        multiple: bool,
    },
    /// A level of an ordered scale (e.g. ICDR 0–4).
    Ordinal {
        /// The levels, lowest first; values strictly increasing.
        levels: Vec<Level>,
    },
    /// A number within a range.
    Number {
        /// Unit shown next to the input (e.g. `µm`); none for ratios.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
        /// When given, values must be `min + k × step` (within 1e-9).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<f64>,
    },
    /// Yes or no (`true` / `false`).
    Boolean {},
    /// Free text, trimmed; empty text counts as no value.
    Text {
        /// Longest text in characters, 1 to [`MAX_TEXT_LEN`]. Default [`DEFAULT_TEXT_LEN`].
        #[serde(
            default = "default_max_len",
            skip_serializing_if = "is_default_max_len"
        )]
        max_len: usize,
    },
}

/// One option of a choice field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    /// The value stored in grades: `[a-z0-9][a-z0-9_]{0,39}`.
    pub value: String,
    /// What graders see.
    pub label: Text,
    /// The protocol's definition of this option (what must be seen to choose it), shown under
    /// the field on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<Text>,
}

/// One level of an ordinal scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// The value stored in grades.
    pub value: i64,
    /// What graders see.
    pub label: Text,
    /// The protocol's definition of this level (e.g. ICDR severe NPDR: the 4-2-1 rule), shown
    /// under the field on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<Text>,
}

/// When a field is asked: another, earlier field's value matches.
///
/// Exactly one of `equals` and `any_of` is given. For a multiple-choice target the condition holds
/// when the chosen options include the value (or one of the values). A per-eye field conditioned
/// on a per-eye field is judged eye by eye; conditioned on a person-level field, for both eyes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Key of the earlier field.
    pub field: String,
    /// The value it must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    /// The values one of which it must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any_of: Option<Vec<serde_json::Value>>,
}

/// Why a form definition could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// The definition is larger than [`MAX_FORM_BYTES`].
    #[error("the form definition is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Actual size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The definition is not valid JSON.
    #[error("the form definition is not valid JSON: {detail}")]
    Json {
        /// The parser's message with line and column.
        detail: String,
    },
    /// The definition declares a schema this build does not read.
    #[error(
        "the form definition declares schema {found:?}; this readroom reads {FORM_SCHEMA_V1:?}"
    )]
    UnsupportedSchema {
        /// The declared schema (empty when missing).
        found: String,
    },
    /// A part of the definition has the wrong type, a missing or an unknown member.
    #[error("the form definition: {path}: {detail}")]
    Shape {
        /// JSON path, e.g. `fields[2]`.
        path: String,
        /// What is wrong there.
        detail: String,
    },
    /// The definition is well-formed but breaks rules of the format; every broken rule is listed.
    #[error("the form definition has {} problem(s): {}", .0.len(), join_problems(.0))]
    Invalid(Vec<FormProblem>),
}

/// A rule of the form format that a definition breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FormProblem {
    /// The schema is not [`FORM_SCHEMA_V1`] (only for forms built in code; parsing refuses it first).
    #[error("schema {found:?} is not {FORM_SCHEMA_V1:?}")]
    UnsupportedSchema {
        /// The declared schema.
        found: String,
    },
    /// The form code is empty, too long or uses characters outside `[A-Za-z0-9._-]`.
    #[error("form code {code:?} is not valid: {reason}")]
    BadCode {
        /// The code.
        code: String,
        /// Why.
        reason: &'static str,
    },
    /// The version is 0.
    #[error("version must be 1 or more")]
    BadVersion,
    /// The form has no fields.
    #[error("the form has no fields")]
    NoFields,
    /// More fields than [`MAX_FIELDS`].
    #[error("the form has {count} fields; the limit is {limit}")]
    TooManyFields {
        /// How many.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A text (title, label, help, unit) is empty or too long.
    #[error("{}{what}: {reason}", field_prefix(field))]
    BadText {
        /// Key of the field the text belongs to; empty for the form's title.
        field: String,
        /// Which text, e.g. `label.ko` or `options[1].label.en`.
        what: String,
        /// Why.
        reason: String,
    },
    /// A field key does not match `[a-z][a-z0-9_]{0,39}`.
    #[error("field key {key:?} is not valid: {reason}")]
    BadKey {
        /// The key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// Two fields share a key.
    #[error("field key {key:?} is used more than once")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// The export column of a field (`key`, `key_od`, `key_os`) is the column of another field.
    #[error("{field}: export column {column:?} is also the column of another field")]
    ColumnClash {
        /// The field.
        field: String,
        /// The shared column name.
        column: String,
    },
    /// A choice field has no options.
    #[error("{field}: a choice needs at least one option")]
    NoOptions {
        /// The field.
        field: String,
    },
    /// An option value does not match `[a-z0-9][a-z0-9_]{0,39}`.
    #[error("{field}: option value {value:?} is not valid: {reason}")]
    BadOptionValue {
        /// The field.
        field: String,
        /// The option value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// Two options of a choice share a value.
    #[error("{field}: option value {value:?} is used more than once")]
    DuplicateOption {
        /// The field.
        field: String,
        /// The repeated value.
        value: String,
    },
    /// An ordinal scale has fewer than two levels.
    #[error("{field}: an ordinal scale needs at least two levels")]
    TooFewLevels {
        /// The field.
        field: String,
    },
    /// Ordinal levels are not strictly increasing.
    #[error("{field}: levels must be strictly increasing, but {next} follows {previous}")]
    LevelsNotIncreasing {
        /// The field.
        field: String,
        /// The earlier level.
        previous: i64,
        /// The level that follows it.
        next: i64,
    },
    /// A number field's `min` is not less than its `max`.
    #[error("{field}: min ({min}) must be less than max ({max})")]
    BadRange {
        /// The field.
        field: String,
        /// Declared minimum.
        min: f64,
        /// Declared maximum.
        max: f64,
    },
    /// A number field's `step` is not a positive number.
    #[error("{field}: step must be more than 0, not {step}")]
    BadStep {
        /// The field.
        field: String,
        /// Declared step.
        step: f64,
    },
    /// A text field's `max_len` is outside 1 to [`MAX_TEXT_LEN`].
    #[error("{field}: max_len must be 1 to {MAX_TEXT_LEN}, not {max_len}")]
    BadMaxLen {
        /// The field.
        field: String,
        /// Declared `max_len`.
        max_len: usize,
    },
    /// A condition names a field the form does not have.
    #[error("{field}: the condition refers to unknown field {target:?}")]
    UnknownConditionField {
        /// The conditioned field.
        field: String,
        /// The named field.
        target: String,
    },
    /// A condition names the field itself or a later field.
    #[error("{field}: the condition refers to {target:?}, which is not an earlier field")]
    ConditionNotEarlier {
        /// The conditioned field.
        field: String,
        /// The named field.
        target: String,
    },
    /// A person-level field is conditioned on a per-eye field (which eye would decide?).
    #[error("{field}: a person-level field cannot depend on per-eye field {target:?}")]
    ConditionEyeMismatch {
        /// The conditioned field.
        field: String,
        /// The per-eye field it names.
        target: String,
    },
    /// A condition's values are missing, doubled or not values of the named field.
    #[error("{field}: the condition on {target:?}: {detail}")]
    BadCondition {
        /// The conditioned field.
        field: String,
        /// The named field.
        target: String,
        /// What is wrong.
        detail: String,
    },
    /// `cannot_grade` on a field that cannot take it (a text or a multiple choice), or beside
    /// an option whose value is `cannot_grade`.
    #[error("{field}: cannot_grade: {detail}")]
    BadCannotGrade {
        /// The field.
        field: String,
        /// What is wrong.
        detail: &'static str,
    },
    /// The field names a figure readroom does not draw.
    #[error("{field}: figure {figure:?} is not one of {}", FIGURES.join(", "))]
    UnknownFigure {
        /// The field.
        field: String,
        /// The figure named.
        figure: String,
    },
    /// The adjudication rule does not fit the field.
    #[error("{field}: adjudication rule: {detail}")]
    BadRule {
        /// The field.
        field: String,
        /// What is wrong.
        detail: String,
    },
}

impl FormProblem {
    /// Key of the field the problem concerns; `None` for problems of the whole form.
    pub fn field(&self) -> Option<&str> {
        match self {
            FormProblem::UnsupportedSchema { .. }
            | FormProblem::BadCode { .. }
            | FormProblem::BadVersion
            | FormProblem::NoFields
            | FormProblem::TooManyFields { .. } => None,
            FormProblem::BadText { field, .. } => (!field.is_empty()).then_some(field.as_str()),
            FormProblem::BadKey { key, .. } | FormProblem::DuplicateKey { key } => Some(key),
            FormProblem::ColumnClash { field, .. }
            | FormProblem::NoOptions { field }
            | FormProblem::BadOptionValue { field, .. }
            | FormProblem::DuplicateOption { field, .. }
            | FormProblem::TooFewLevels { field }
            | FormProblem::LevelsNotIncreasing { field, .. }
            | FormProblem::BadRange { field, .. }
            | FormProblem::BadStep { field, .. }
            | FormProblem::BadMaxLen { field, .. }
            | FormProblem::UnknownConditionField { field, .. }
            | FormProblem::ConditionNotEarlier { field, .. }
            | FormProblem::ConditionEyeMismatch { field, .. }
            | FormProblem::BadCondition { field, .. }
            | FormProblem::BadCannotGrade { field, .. }
            | FormProblem::UnknownFigure { field, .. }
            | FormProblem::BadRule { field, .. } => Some(field),
        }
    }
}

impl Form {
    /// Parses and checks a form definition. Shape errors (wrong types, unknown members) stop at
    /// the first; rule violations are all returned in [`FormError::Invalid`].
    pub fn parse(json: &str) -> Result<Form, FormError> {
        if json.len() > MAX_FORM_BYTES {
            return Err(FormError::TooLarge {
                size: json.len(),
                limit: MAX_FORM_BYTES,
            });
        }
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|err| FormError::Json {
                detail: err.to_string(),
            })?;
        // The schema first, so a later schema gets "unsupported" rather than a field error.
        let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
        if schema != FORM_SCHEMA_V1 {
            return Err(FormError::UnsupportedSchema {
                found: schema.to_owned(),
            });
        }
        let form: Form =
            serde_path_to_error::deserialize(value).map_err(|err| FormError::Shape {
                path: err.path().to_string(),
                detail: err.inner().to_string(),
            })?;
        form.check().map_err(FormError::Invalid)?;
        Ok(form)
    }

    /// The definition as pretty JSON (what an administrator downloads and edits).
    pub fn to_json(&self) -> String {
        // Serializing these plain types cannot fail: every map key is a string.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// SHA-256 (lowercase hex) of the canonical JSON of the definition: compact, members in the
    /// order of this module's types, defaults left out. Equal definitions have equal fingerprints
    /// however their JSON was spaced or ordered, so a grade can record exactly which form it used.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&canonical))
    }

    /// The field with this key.
    pub fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.key == key)
    }

    /// Checks every rule of the format that spans members and fields (what [`Form::parse`] runs
    /// after the shape is read; also for forms built in code). Returns every problem found.
    pub fn check(&self) -> Result<(), Vec<FormProblem>> {
        let mut problems = Vec::new();
        if self.schema != FORM_SCHEMA_V1 {
            problems.push(FormProblem::UnsupportedSchema {
                found: self.schema.clone(),
            });
        }
        if let Some(reason) = code_problem(&self.code) {
            problems.push(FormProblem::BadCode {
                code: self.code.clone(),
                reason,
            });
        }
        if self.version == 0 {
            problems.push(FormProblem::BadVersion);
        }
        check_text(&mut problems, "", "title", &self.title, MAX_LABEL_CHARS);
        if self.fields.is_empty() {
            problems.push(FormProblem::NoFields);
        }
        if self.fields.len() > MAX_FIELDS {
            problems.push(FormProblem::TooManyFields {
                count: self.fields.len(),
                limit: MAX_FIELDS,
            });
        }
        let mut seen_keys = std::collections::BTreeSet::new();
        let mut columns = std::collections::BTreeSet::new();
        for (idx, field) in self.fields.iter().enumerate() {
            if let Some(reason) = key_problem(&field.key) {
                problems.push(FormProblem::BadKey {
                    key: field.key.clone(),
                    reason,
                });
            }
            if !seen_keys.insert(field.key.as_str()) {
                problems.push(FormProblem::DuplicateKey {
                    key: field.key.clone(),
                });
            } else {
                for eye in field.eyes() {
                    let column = super::dictionary::column_name(&field.key, *eye);
                    if !columns.insert(column.clone()) {
                        problems.push(FormProblem::ColumnClash {
                            field: field.key.clone(),
                            column,
                        });
                    }
                }
            }
            check_text(
                &mut problems,
                &field.key,
                "label",
                &field.label,
                MAX_LABEL_CHARS,
            );
            if let Some(help) = &field.help {
                check_text(&mut problems, &field.key, "help", help, MAX_HELP_CHARS);
            }
            check_kind(&mut problems, field);
            if let Some(figure) = &field.figure
                && !FIGURES.contains(&figure.as_str())
            {
                problems.push(FormProblem::UnknownFigure {
                    field: field.key.clone(),
                    figure: figure.clone(),
                });
            }
            if field.cannot_grade
                && let Some(detail) = cannot_grade_problem(&field.kind)
            {
                problems.push(FormProblem::BadCannotGrade {
                    field: field.key.clone(),
                    detail,
                });
            }
            if let Some(condition) = &field.when {
                check_condition(&mut problems, &self.fields[..idx], self, field, condition);
            }
            if let Some(rule) = &field.adjudicate {
                disagreement::check_rule(&mut problems, self, field, rule);
            }
        }
        // Reported in the order found, which is field order within each check.
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Why a field of `kind` cannot be marked `cannot_grade`, if it cannot.
fn cannot_grade_problem(kind: &FieldKind) -> Option<&'static str> {
    match kind {
        FieldKind::Text { .. } => Some("a text field is left empty instead"),
        FieldKind::Choice { multiple: true, .. } => {
            Some("a multiple choice cannot take it (give the choice an option instead)")
        }
        FieldKind::Choice { options, .. } if options.iter().any(|o| o.value == CANNOT_GRADE) => {
            Some("an option already has the value cannot_grade")
        }
        _ => None,
    }
}

impl Field {
    /// The eyes values of this field are given for: `[Some(OD), Some(OS)]` for per-eye fields,
    /// `[None]` for person-level ones.
    pub fn eyes(&self) -> &'static [Option<Eye>] {
        if self.per_eye {
            &[Some(Eye::Od), Some(Eye::Os)]
        } else {
            &[None]
        }
    }
}

impl FieldKind {
    /// The `type` tag: `choice`, `ordinal`, `number`, `boolean` or `text`.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Choice { .. } => "choice",
            FieldKind::Ordinal { .. } => "ordinal",
            FieldKind::Number { .. } => "number",
            FieldKind::Boolean {} => "boolean",
            FieldKind::Text { .. } => "text",
        }
    }
}

impl Condition {
    /// Whether `value` (the named field's value) satisfies the condition.
    pub fn matches(&self, value: &Value) -> bool {
        let equals = self.equals.iter();
        let any_of = self.any_of.iter().flatten();
        equals
            .chain(any_of)
            .any(|expected| value.matches_json(expected))
    }
}

/// The members of a field that are not part of its kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldCommon {
    key: String,
    label: Text,
    #[serde(default)]
    help: Option<Text>,
    #[serde(default)]
    per_eye: bool,
    #[serde(default = "yes")]
    required: bool,
    #[serde(default)]
    when: Option<Condition>,
    #[serde(default)]
    figure: Option<String>,
    #[serde(default)]
    cannot_grade: bool,
    #[serde(default)]
    adjudicate: Option<DisagreementRule>,
}

const COMMON_MEMBERS: [&str; 9] = [
    "key",
    "label",
    "help",
    "per_eye",
    "required",
    "when",
    "figure",
    "cannot_grade",
    "adjudicate",
];

impl<'de> Deserialize<'de> for Field {
    /// Splits the field object into its common members and its kind, so that each part refuses
    /// members it does not know (serde's `flatten` cannot be combined with `deny_unknown_fields`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Field, D::Error> {
        let mut kind = serde_json::Map::deserialize(deserializer)?;
        let mut common = serde_json::Map::new();
        for member in COMMON_MEMBERS {
            if let Some(value) = kind.remove(member) {
                common.insert(member.to_owned(), value);
            }
        }
        let name = match common.get("key").and_then(|key| key.as_str()) {
            Some(key) => format!("field {key:?}"),
            None => "field".to_owned(),
        };
        let common: FieldCommon =
            from_members(common).map_err(|err| D::Error::custom(format!("{name}: {err}")))?;
        let kind: FieldKind =
            from_members(kind).map_err(|err| D::Error::custom(format!("{name}: {err}")))?;
        Ok(Field {
            key: common.key,
            label: common.label,
            help: common.help,
            per_eye: common.per_eye,
            required: common.required,
            when: common.when,
            figure: common.figure,
            cannot_grade: common.cannot_grade,
            kind,
            adjudicate: common.adjudicate,
        })
    }
}

fn from_members<T: DeserializeOwned>(
    members: serde_json::Map<String, serde_json::Value>,
) -> Result<T, String> {
    serde_path_to_error::deserialize(serde_json::Value::Object(members)).map_err(|err| {
        let path = err.path().to_string();
        if path == "." {
            err.inner().to_string()
        } else {
            format!("{path}: {}", err.inner())
        }
    })
}

fn check_kind(problems: &mut Vec<FormProblem>, field: &Field) {
    let key = &field.key;
    match &field.kind {
        FieldKind::Choice { options, .. } => {
            if options.is_empty() {
                problems.push(FormProblem::NoOptions { field: key.clone() });
            }
            let mut seen = std::collections::BTreeSet::new();
            for (idx, option) in options.iter().enumerate() {
                if let Some(reason) = option_problem(&option.value) {
                    problems.push(FormProblem::BadOptionValue {
                        field: key.clone(),
                        value: option.value.clone(),
                        reason,
                    });
                }
                if !seen.insert(option.value.as_str()) {
                    problems.push(FormProblem::DuplicateOption {
                        field: key.clone(),
                        value: option.value.clone(),
                    });
                }
                let what = format!("options[{idx}].label");
                check_text(problems, key, &what, &option.label, MAX_LABEL_CHARS);
                if let Some(help) = &option.help {
                    let what = format!("options[{idx}].help");
                    check_text(problems, key, &what, help, MAX_HELP_CHARS);
                }
            }
        }
        FieldKind::Ordinal { levels } => {
            if levels.len() < 2 {
                problems.push(FormProblem::TooFewLevels { field: key.clone() });
            }
            for pair in levels.windows(2) {
                if let [previous, next] = pair
                    && next.value <= previous.value
                {
                    problems.push(FormProblem::LevelsNotIncreasing {
                        field: key.clone(),
                        previous: previous.value,
                        next: next.value,
                    });
                }
            }
            for (idx, level) in levels.iter().enumerate() {
                let what = format!("levels[{idx}].label");
                check_text(problems, key, &what, &level.label, MAX_LABEL_CHARS);
                if let Some(help) = &level.help {
                    let what = format!("levels[{idx}].help");
                    check_text(problems, key, &what, help, MAX_HELP_CHARS);
                }
            }
        }
        FieldKind::Number {
            unit,
            min,
            max,
            step,
        } => {
            if !(min.is_finite() && max.is_finite() && min < max) {
                problems.push(FormProblem::BadRange {
                    field: key.clone(),
                    min: *min,
                    max: *max,
                });
            }
            if let Some(step) = step
                && !(step.is_finite() && *step > 0.0)
            {
                problems.push(FormProblem::BadStep {
                    field: key.clone(),
                    step: *step,
                });
            }
            if let Some(unit) = unit {
                let reason = if unit.trim().is_empty() {
                    Some("it is empty".to_owned())
                } else if unit.chars().count() > MAX_UNIT_CHARS {
                    Some(format!("it is longer than {MAX_UNIT_CHARS} characters"))
                } else {
                    None
                };
                if let Some(reason) = reason {
                    problems.push(FormProblem::BadText {
                        field: key.clone(),
                        what: "unit".to_owned(),
                        reason,
                    });
                }
            }
        }
        FieldKind::Boolean {} => {}
        FieldKind::Text { max_len } => {
            if !(1..=MAX_TEXT_LEN).contains(max_len) {
                problems.push(FormProblem::BadMaxLen {
                    field: key.clone(),
                    max_len: *max_len,
                });
            }
        }
    }
}

fn check_condition(
    problems: &mut Vec<FormProblem>,
    earlier: &[Field],
    form: &Form,
    field: &Field,
    condition: &Condition,
) {
    let key = &field.key;
    let target_key = &condition.field;
    let Some(target) = earlier.iter().find(|f| f.key == *target_key) else {
        problems.push(if form.field(target_key).is_some() {
            FormProblem::ConditionNotEarlier {
                field: key.clone(),
                target: target_key.clone(),
            }
        } else {
            FormProblem::UnknownConditionField {
                field: key.clone(),
                target: target_key.clone(),
            }
        });
        return;
    };
    if target.per_eye && !field.per_eye {
        problems.push(FormProblem::ConditionEyeMismatch {
            field: key.clone(),
            target: target_key.clone(),
        });
    }
    let bad = |detail: String| FormProblem::BadCondition {
        field: key.clone(),
        target: target_key.clone(),
        detail,
    };
    let expected: Vec<&serde_json::Value> = match (&condition.equals, &condition.any_of) {
        (Some(_), Some(_)) => {
            problems.push(bad("equals and any_of are both given; give one".to_owned()));
            return;
        }
        (None, None) => {
            problems.push(bad("neither equals nor any_of is given".to_owned()));
            return;
        }
        (Some(value), None) => vec![value],
        (None, Some(values)) if values.is_empty() => {
            problems.push(bad("any_of is empty".to_owned()));
            return;
        }
        (None, Some(values)) => values.iter().collect(),
    };
    for value in expected {
        if let Err(detail) = values::check_single(&target.kind, value) {
            problems.push(bad(detail));
        }
    }
}

fn check_text(problems: &mut Vec<FormProblem>, field: &str, what: &str, text: &Text, limit: usize) {
    for (lang, value) in [("en", &text.en), ("ko", &text.ko)] {
        let reason = if value.trim().is_empty() {
            Some("it is empty".to_owned())
        } else if value.chars().count() > limit {
            Some(format!("it is longer than {limit} characters"))
        } else {
            None
        };
        if let Some(reason) = reason {
            problems.push(FormProblem::BadText {
                field: field.to_owned(),
                what: format!("{what}.{lang}"),
                reason,
            });
        }
    }
}

/// Why `key` is not `[a-z][a-z0-9_]{0,39}`, if it is not.
fn key_problem(key: &str) -> Option<&'static str> {
    match key.chars().next() {
        None => Some("it is empty"),
        Some(first) if !first.is_ascii_lowercase() => Some("it must start with a letter a–z"),
        Some(_) if key.len() > MAX_KEY_LEN => Some("it is longer than 40 characters"),
        Some(_) if !key.chars().all(is_snake_char) => {
            Some("only lowercase letters a–z, digits and `_` are allowed")
        }
        Some(_) => None,
    }
}

/// Why `value` is not `[a-z0-9][a-z0-9_]{0,39}`, if it is not.
fn option_problem(value: &str) -> Option<&'static str> {
    match value.chars().next() {
        None => Some("it is empty"),
        Some('_') => Some("it must start with a letter a–z or a digit"),
        Some(_) if value.len() > MAX_KEY_LEN => Some("it is longer than 40 characters"),
        Some(_) if !value.chars().all(is_snake_char) => {
            Some("only lowercase letters a–z, digits and `_` are allowed")
        }
        Some(_) => None,
    }
}

fn code_problem(code: &str) -> Option<&'static str> {
    if code.is_empty() {
        Some("it is empty")
    } else if code.chars().count() > MAX_CODE_LEN {
        Some("it is longer than 64 characters")
    } else if !code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some("only letters, digits, `.`, `_` and `-` are allowed")
    } else {
        None
    }
}

fn is_snake_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

fn join_problems(problems: &[FormProblem]) -> String {
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

fn default_max_len() -> usize {
    DEFAULT_TEXT_LEN
}

fn is_default_max_len(max_len: &usize) -> bool {
    *max_len == DEFAULT_TEXT_LEN
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"{
      "schema": "readroom-form/1", "code": "small", "version": 1,
      "title": { "en": "Small", "ko": "작은 양식" },
      "fields": [
        { "key": "gradable", "label": { "en": "Gradable", "ko": "판독 가능" }, "per_eye": true,
          "type": "boolean" },
        { "key": "dr_grade", "label": { "en": "DR grade", "ko": "당뇨망막병증 등급" }, "per_eye": true,
          "when": { "field": "gradable", "equals": true },
          "type": "ordinal",
          "levels": [ { "value": 0, "label": { "en": "None", "ko": "없음" } },
                      { "value": 1, "label": { "en": "Mild", "ko": "경증" } } ],
          "adjudicate": { "rule": "steps", "min": 1 } },
        { "key": "note", "label": { "en": "Note", "ko": "메모" }, "required": false,
          "type": "text", "max_len": 1000 }
      ] }"#;

    #[test]
    fn a_form_parses_and_keeps_its_members() {
        let form = Form::parse(SMALL).unwrap();
        assert_eq!(form.code, "small");
        let dr = form.field("dr_grade").unwrap();
        assert!(dr.per_eye && dr.required);
        assert_eq!(dr.when.as_ref().unwrap().field, "gradable");
        assert!(matches!(&dr.kind, FieldKind::Ordinal { levels } if levels.len() == 2));
        assert!(!form.field("note").unwrap().required);
        assert_eq!(
            form.field("note").unwrap().kind,
            FieldKind::Text { max_len: 1000 }
        );
    }

    #[test]
    fn the_fingerprint_ignores_spacing_member_order_and_spelled_out_defaults() {
        let form = Form::parse(SMALL).unwrap();
        let reordered = SMALL
            .replace(r#""max_len": 1000"#, r#""required": false"#)
            .replacen(r#""required": false,"#, "", 1)
            .replace("\n", " ");
        let same = Form::parse(&reordered).unwrap();
        assert_eq!(same, form);
        assert_eq!(same.fingerprint(), form.fingerprint());
        assert_eq!(form.fingerprint().len(), 64);
        let mut changed = form.clone();
        changed.version = 2;
        assert_ne!(changed.fingerprint(), form.fingerprint());
    }

    #[test]
    fn the_kind_is_flattened_into_the_field() {
        let json = Form::parse(SMALL).unwrap().to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let dr = &value["fields"][1];
        assert_eq!(dr["type"], "ordinal");
        assert_eq!(dr["levels"][1]["value"], 1);
        assert!(dr.get("kind").is_none());
        // Defaults are left out.
        assert!(value["fields"][2].get("max_len").is_none());
        assert!(dr.get("required").is_none());
    }

    #[test]
    fn unknown_members_are_refused_with_their_place() {
        let typo = SMALL.replace(r#""max_len": 1000"#, r#""maxlen": 1000"#);
        let Err(FormError::Shape { path, detail }) = Form::parse(&typo) else {
            panic!("accepted a typo")
        };
        assert_eq!(path, "fields[2]");
        assert!(
            detail.contains("field \"note\"") && detail.contains("maxlen"),
            "{detail}"
        );

        let wrong_kind_member = SMALL.replace(r#""max_len": 1000"#, r#""levels": []"#);
        assert!(matches!(
            Form::parse(&wrong_kind_member),
            Err(FormError::Shape { .. })
        ));
        let unknown_type = SMALL.replace(r#""type": "text""#, r#""type": "slider""#);
        assert!(matches!(
            Form::parse(&unknown_type),
            Err(FormError::Shape { .. })
        ));
    }

    #[test]
    fn size_json_and_schema_are_checked_first() {
        let big = format!("{SMALL}{}", " ".repeat(MAX_FORM_BYTES));
        assert!(matches!(Form::parse(&big), Err(FormError::TooLarge { .. })));
        assert!(matches!(Form::parse("{"), Err(FormError::Json { .. })));
        let v2 = SMALL.replace("readroom-form/1", "readroom-form/2");
        assert_eq!(
            Form::parse(&v2),
            Err(FormError::UnsupportedSchema {
                found: "readroom-form/2".into()
            })
        );
        assert_eq!(
            Form::parse("[]"),
            Err(FormError::UnsupportedSchema { found: "".into() })
        );
    }

    #[test]
    fn a_broken_definition_lists_every_problem() {
        let broken = r#"{
          "schema": "readroom-form/1", "code": "bad code", "version": 0,
          "title": { "en": "Broken", "ko": "" },
          "fields": [
            { "key": "Grade", "label": { "en": "a", "ko": "가" }, "type": "boolean" },
            { "key": "dup", "label": { "en": "a", "ko": "가" }, "type": "boolean" },
            { "key": "dup", "label": { "en": "a", "ko": "가" }, "type": "boolean" },
            { "key": "empty", "label": { "en": "a", "ko": "가" }, "type": "choice", "options": [] },
            { "key": "twice", "label": { "en": "a", "ko": "가" }, "type": "choice",
              "options": [ { "value": "x", "label": { "en": "X", "ko": "엑스" } },
                           { "value": "x", "label": { "en": "X", "ko": "엑스" } },
                           { "value": "Bad-Value", "label": { "en": "B", "ko": "비" } } ] },
            { "key": "scale", "label": { "en": "a", "ko": "가" }, "type": "ordinal",
              "levels": [ { "value": 2, "label": { "en": "2", "ko": "2" } },
                          { "value": 1, "label": { "en": "1", "ko": "1" } } ] },
            { "key": "size", "label": { "en": "a", "ko": "가" }, "type": "number",
              "min": 1, "max": 1, "step": 0 },
            { "key": "note", "label": { "en": "a", "ko": "가" }, "type": "text", "max_len": 5000 },
            { "key": "ghost", "label": { "en": "a", "ko": "가" }, "type": "boolean",
              "when": { "field": "nowhere", "equals": true } },
            { "key": "early", "label": { "en": "a", "ko": "가" }, "type": "boolean",
              "when": { "field": "late", "equals": true } },
            { "key": "late", "label": { "en": "a", "ko": "가" }, "type": "boolean", "per_eye": true },
            { "key": "person", "label": { "en": "a", "ko": "가" }, "type": "boolean",
              "when": { "field": "late", "equals": true } },
            { "key": "wrong_value", "label": { "en": "a", "ko": "가" }, "type": "boolean",
              "when": { "field": "twice", "equals": "y" } },
            { "key": "rule", "label": { "en": "a", "ko": "가" }, "type": "text",
              "adjudicate": { "rule": "abs_diff", "min": 0.2 } }
          ] }"#;
        let Err(FormError::Invalid(problems)) = Form::parse(broken) else {
            panic!("accepted a broken form")
        };
        let has = |pred: &dyn Fn(&FormProblem) -> bool| problems.iter().any(pred);
        assert!(has(&|p| matches!(p, FormProblem::BadCode { .. })));
        assert!(has(&|p| matches!(p, FormProblem::BadVersion)));
        assert!(has(
            &|p| matches!(p, FormProblem::BadText { field, what, .. } if field.is_empty() && what == "title.ko")
        ));
        assert!(has(
            &|p| matches!(p, FormProblem::BadKey { key, .. } if key == "Grade")
        ));
        assert!(has(
            &|p| matches!(p, FormProblem::DuplicateKey { key } if key == "dup")
        ));
        assert!(has(
            &|p| matches!(p, FormProblem::NoOptions { field } if field == "empty")
        ));
        assert!(has(
            &|p| matches!(p, FormProblem::DuplicateOption { field, value } if field == "twice" && value == "x")
        ));
        assert!(has(
            &|p| matches!(p, FormProblem::BadOptionValue { value, .. } if value == "Bad-Value")
        ));
        assert!(has(&|p| matches!(
            p,
            FormProblem::LevelsNotIncreasing {
                previous: 2,
                next: 1,
                ..
            }
        )));
        assert!(has(
            &|p| matches!(p, FormProblem::BadRange { field, .. } if field == "size")
        ));
        assert!(has(
            &|p| matches!(p, FormProblem::BadStep { field, .. } if field == "size")
        ));
        assert!(has(&|p| matches!(
            p,
            FormProblem::BadMaxLen { max_len: 5000, .. }
        )));
        assert!(has(
            &|p| matches!(p, FormProblem::UnknownConditionField { field, target } if field == "ghost" && target == "nowhere")
        ));
        assert!(has(
            &|p| matches!(p, FormProblem::ConditionNotEarlier { field, .. } if field == "early")
        ));
        assert!(has(
            &|p| matches!(p, FormProblem::ConditionEyeMismatch { field, .. } if field == "person")
        ));
        assert!(has(
            &|p| matches!(p, FormProblem::BadCondition { field, .. } if field == "wrong_value")
        ));
        assert!(has(
            &|p| matches!(p, FormProblem::BadRule { field, .. } if field == "rule")
        ));
        assert_eq!(problems.len(), 17, "{problems:#?}");
        // Every field-level problem names its field.
        assert!(
            problems
                .iter()
                .filter(|p| !matches!(
                    p,
                    FormProblem::BadCode { .. }
                        | FormProblem::BadVersion
                        | FormProblem::BadText { .. }
                ))
                .all(|p| p.field().is_some())
        );
        let message = FormError::Invalid(problems).to_string();
        assert!(message.starts_with("the form definition has 17 problem(s): "));
        assert!(message.contains("twice: option value \"x\" is used more than once"));
    }

    #[test]
    fn field_count_and_column_clashes_are_limited() {
        let field = |key: &str, per_eye: bool| Field {
            key: key.to_owned(),
            label: Text {
                en: "x".into(),
                ko: "엑스".into(),
            },
            help: None,
            per_eye,
            required: true,
            when: None,
            figure: None,
            cannot_grade: false,
            kind: FieldKind::Boolean {},
            adjudicate: None,
        };
        let mut form = Form::parse(SMALL).unwrap();
        form.fields = (0..=MAX_FIELDS)
            .map(|n| field(&format!("f{n}"), false))
            .collect();
        assert_eq!(
            form.check(),
            Err(vec![FormProblem::TooManyFields {
                count: 101,
                limit: 100
            }])
        );
        form.fields = vec![field("iop_od", false), field("iop", true)];
        assert_eq!(
            form.check(),
            Err(vec![FormProblem::ColumnClash {
                field: "iop".into(),
                column: "iop_od".into()
            }])
        );
        form.fields.clear();
        assert_eq!(form.check(), Err(vec![FormProblem::NoFields]));
    }

    #[test]
    fn cannot_grade_is_refused_where_it_would_be_ambiguous() {
        use serde_json::{Value as Json, json};
        let with = |field: Json| {
            let form = json!({
                "schema": FORM_SCHEMA_V1, "code": "x", "version": 1,
                "title": { "en": "X", "ko": "X" },
                "fields": [field],
            });
            Form::parse(&form.to_string())
        };
        let label = json!({ "en": "A", "ko": "A" });
        for (field, detail) in [
            (
                json!({ "key": "t", "label": label, "type": "text", "cannot_grade": true }),
                "a text field is left empty instead",
            ),
            (
                json!({ "key": "m", "label": label, "type": "choice", "multiple": true,
                        "cannot_grade": true, "options": [{ "value": "a", "label": label }] }),
                "a multiple choice cannot take it (give the choice an option instead)",
            ),
            (
                json!({ "key": "c", "label": label, "type": "choice", "cannot_grade": true,
                        "options": [{ "value": "cannot_grade", "label": label }] }),
                "an option already has the value cannot_grade",
            ),
        ] {
            let Err(FormError::Invalid(problems)) = with(field) else {
                panic!("{detail}: accepted");
            };
            assert!(
                problems.iter().any(|p| matches!(p,
                    FormProblem::BadCannotGrade { detail: d, .. } if *d == detail)),
                "{detail}: {problems:?}"
            );
        }
        let ordinal = json!({ "key": "o", "label": label, "type": "ordinal", "cannot_grade": true,
            "levels": [{ "value": 0, "label": label }, { "value": 1, "label": label }] });
        let form = with(ordinal.clone()).unwrap();
        assert!(form.fields[0].cannot_grade);
        // Figures: only the ones readroom draws.
        let mut figured = ordinal.clone();
        figured["figure"] = json!("icdr_4_2_1");
        assert_eq!(
            with(figured.clone()).unwrap().fields[0].figure.as_deref(),
            Some("icdr_4_2_1")
        );
        figured["figure"] = json!("../../etc/passwd");
        let Err(FormError::Invalid(problems)) = with(figured) else {
            panic!("an unknown figure was accepted");
        };
        assert!(
            matches!(&problems[..], [FormProblem::UnknownFigure { figure, .. }] if figure == "../../etc/passwd")
        );
        let written: Json = serde_json::from_str(&form.to_json()).unwrap();
        assert_eq!(written["fields"][0]["cannot_grade"], json!(true));
    }
}
