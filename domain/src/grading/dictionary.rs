//! The data dictionary of a form: one export column per person-level field and two per per-eye
//! field (`dr_grade_od`, `dr_grade_os`), with what each column may hold; and grades flattened into
//! those columns.
//!
//! Column order is form order, OD before OS; it is the column order of every export of grades
//! made with the form.

use serde::Serialize;

use super::eye::Eye;
use super::form::{CANNOT_GRADE, Field, FieldKind, Form};
use super::values::{self, Values};

/// One export column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Column name: the field key, with `_od` / `_os` for per-eye fields.
    pub name: String,
    /// The field key.
    pub field: String,
    /// The eye, for per-eye fields.
    pub eye: Option<Eye>,
    /// `choice`, `multiple_choice`, `ordinal`, `number`, `boolean` or `text`.
    pub kind: &'static str,
    /// What cells may hold: `0=No apparent retinopathy; 1=Mild NPDR; …`, `0–1, step 0.05`, ...,
    /// ending in `cannot_grade=Cannot grade` for fields that allow it.
    pub allowed: String,
    /// Unit of a number column.
    pub unit: Option<String>,
    /// English label (with the eye for per-eye columns).
    pub label_en: String,
    /// Korean label (with 우안 / 좌안 for per-eye columns).
    pub label_ko: String,
    /// Whether a submitted grade always has a value here when the condition holds.
    pub required: bool,
    /// When the field is asked, in words naming columns: `gradable_od is gradable or
    /// partly_gradable`; `None` when always.
    pub condition: Option<String>,
}

/// The export column name of field `key` at `eye`: `dr_grade_od`, or `key` itself.
pub fn column_name(key: &str, eye: Option<Eye>) -> String {
    match eye {
        Some(eye) => format!("{key}_{}", eye.column_suffix()),
        None => key.to_owned(),
    }
}

/// The data dictionary of `form`, in column order.
pub fn dictionary(form: &Form) -> Vec<Column> {
    let mut columns = Vec::new();
    for field in &form.fields {
        for &eye in field.eyes() {
            let (label_en, label_ko) = match eye {
                Some(eye) => (
                    format!("{} ({eye})", field.label.en),
                    format!("{} ({})", field.label.ko, eye.korean()),
                ),
                None => (field.label.en.clone(), field.label.ko.clone()),
            };
            columns.push(Column {
                name: column_name(&field.key, eye),
                field: field.key.clone(),
                eye,
                kind: kind_name(&field.kind),
                allowed: if field.cannot_grade {
                    format!("{}; {CANNOT_GRADE}=Cannot grade", allowed(&field.kind))
                } else {
                    allowed(&field.kind)
                },
                unit: match &field.kind {
                    FieldKind::Number { unit, .. } => unit.clone(),
                    _ => None,
                },
                label_en,
                label_ko,
                required: field.required,
                condition: condition(form, field, eye),
            });
        }
    }
    columns
}

/// Grade `values` as `(column, cell)` pairs in [`dictionary`] order: levels and numbers as
/// written, booleans `true`/`false`, option values, multiple choices joined with `;`, texts as
/// they are (quoting is the export format's job), and an empty cell for no value.
pub fn flatten(form: &Form, values: &Values) -> Vec<(String, String)> {
    let mut cells = Vec::new();
    for field in &form.fields {
        for &eye in field.eyes() {
            let cell = values
                .get(&field.key, eye)
                .map(|value| value.cell())
                .unwrap_or_default();
            cells.push((column_name(&field.key, eye), cell));
        }
    }
    cells
}

fn kind_name(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Choice { multiple: true, .. } => "multiple_choice",
        other => other.type_name(),
    }
}

fn allowed(kind: &FieldKind) -> String {
    match kind {
        FieldKind::Choice { options, .. } => {
            let entries: Vec<String> = options
                .iter()
                .map(|option| format!("{}={}", option.value, option.label.en))
                .collect();
            entries.join("; ")
        }
        FieldKind::Ordinal { levels } => {
            let entries: Vec<String> = levels
                .iter()
                .map(|level| format!("{}={}", level.value, level.label.en))
                .collect();
            entries.join("; ")
        }
        FieldKind::Number { min, max, step, .. } => match step {
            Some(step) => format!("{min}–{max}, step {step}"),
            None => format!("{min}–{max}"),
        },
        FieldKind::Boolean {} => "true; false".to_owned(),
        FieldKind::Text { max_len } => format!("free text, at most {max_len} characters"),
    }
}

fn condition(form: &Form, field: &Field, eye: Option<Eye>) -> Option<String> {
    let condition = field.when.as_ref()?;
    let target = form.field(&condition.field)?;
    let target_eye = if target.per_eye { eye } else { None };
    let name = column_name(&target.key, target_eye);
    Some(values::describe_condition(condition, target, &name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::presets;
    use crate::grading::values::{Mode, validate};
    use serde_json::json;

    #[test]
    fn the_demo_dictionary_names_every_column_in_form_order() {
        let form = presets::demo();
        let names: Vec<String> = dictionary(&form).into_iter().map(|c| c.name).collect();
        assert_eq!(
            names,
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
                "vcdr_od",
                "vcdr_os",
                "other_findings",
                "other_text",
                "urgent_referral",
                "comment"
            ]
        );
    }

    #[test]
    fn columns_describe_what_they_hold() {
        let form = presets::demo();
        let columns = dictionary(&form);
        let column = |name: &str| columns.iter().find(|c| c.name == name).unwrap();
        let dr = column("dr_grade_os");
        assert_eq!(dr.kind, "ordinal");
        assert_eq!(
            dr.allowed,
            "0=No apparent retinopathy; 1=Mild NPDR; 2=Moderate NPDR; 3=Severe NPDR; 4=PDR; \
             cannot_grade=Cannot grade"
        );
        assert_eq!(dr.eye, Some(Eye::Os));
        assert!(dr.label_en.ends_with("(OS)") && dr.label_ko.ends_with("(좌안)"));
        assert!(dr.required);
        assert_eq!(
            dr.condition.as_deref(),
            Some("gradable_os is gradable or partly_gradable")
        );
        assert_eq!(
            column("vcdr_od").allowed,
            "0–1, step 0.05; cannot_grade=Cannot grade"
        );
        assert_eq!(column("vcdr_od").kind, "number");
        let findings = column("other_findings");
        assert_eq!(findings.kind, "multiple_choice");
        assert!(!findings.required);
        assert_eq!(findings.condition, None);
        assert_eq!(
            column("other_text").condition.as_deref(),
            Some("other_findings includes other")
        );
        assert_eq!(
            column("other_text").allowed,
            "free text, at most 500 characters"
        );
    }

    #[test]
    fn flatten_fills_cells_in_dictionary_order() {
        let form = presets::demo();
        let values = validate(
            &form,
            &json!({
                "gradable": { "OD": "gradable", "OS": "ungradable" },
                "ungradable_reason": { "OS": "out_of_focus" },
                "dr_grade": { "OD": 3 },
                "dme": { "OD": "non_centre_involving" },
                "areds_category": { "OD": 2 },
                "vcdr": { "OD": 0.45 },
                "other_findings": ["other", "retinal_vein_occlusion"],
                "other_text": "laser scars"
            }),
            Mode::Submit,
        )
        .unwrap();
        let cells = flatten(&form, &values);
        let names: Vec<&str> = cells.iter().map(|(name, _)| name.as_str()).collect();
        let dictionary_names: Vec<String> = dictionary(&form).into_iter().map(|c| c.name).collect();
        assert_eq!(names, dictionary_names);
        let texts: Vec<&str> = cells.iter().map(|(_, cell)| cell.as_str()).collect();
        assert_eq!(
            texts,
            [
                "gradable",
                "ungradable",
                "",
                "out_of_focus",
                "3",
                "",
                "non_centre_involving",
                "",
                "2",
                "",
                "0.45",
                "",
                "retinal_vein_occlusion;other",
                "laser scars",
                "",
                ""
            ]
        );
    }

    #[test]
    fn booleans_are_true_or_false() {
        let form = presets::areds_simple();
        let values = validate(
            &form,
            &json!({ "large_drusen": { "OD": true, "OS": false } }),
            Mode::Draft,
        )
        .unwrap();
        let cells = flatten(&form, &values);
        assert_eq!(cells[0], ("large_drusen_od".into(), "true".into()));
        assert_eq!(cells[1], ("large_drusen_os".into(), "false".into()));
        assert_eq!(cells[2], ("pigment_abnormality_od".into(), String::new()));
    }
}
