//! Whether a grade was made on images the grader was shown: the eyes a grade has values for,
//! against the views the streaming worker recorded for that grader and case (`layout:exam`, e.g.
//! `single:fundus-od`, from the `stream_sessions` reports). Pure: the caller loads the exams and
//! the views.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::eye::Eye;
use super::values::Values;

/// An exam of the case, as the bundle summary lists it (no PHI: id, kind and eye).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamRef {
    /// Manifest exam id (`fundus-od`).
    pub id: String,
    /// Manifest kind (`fundus`, `red-free`, `oct`, …).
    pub kind: String,
    /// `OD`, `OS`, `OU` or none.
    #[serde(default)]
    pub eye: Option<String>,
}

impl ExamRef {
    fn eye(&self) -> Option<Eye> {
        self.eye.as_deref().and_then(Eye::from_code)
    }

    /// Exams a grade of an eye is expected to be made on: the eye's fundus photographs and OCT
    /// volumes (red-free, visual fields and reports are optional extras).
    fn expected(&self) -> bool {
        matches!(self.kind.as_str(), "fundus" | "oct")
    }

    /// Exams that show an eye (everything but measurements and reports).
    fn shows_eye(&self) -> bool {
        !matches!(self.kind.as_str(), "measurement" | "report")
    }
}

/// The eyes a grade has per-eye values for.
pub fn graded_eyes(values: &Values) -> BTreeSet<Eye> {
    values.iter().filter_map(|(_, eye, _)| eye).collect()
}

/// The exams of this visit shown in `views` (`layout:exam`, `exam` always of this visit): the
/// exam itself and, in the `both_eyes` layout, the fellow eye's exam of the same kind (in the
/// `prior` layout the other panel is the prior visit's exam, not one of this visit).
pub fn viewed_exams<S: AsRef<str>>(views: &[S], exams: &[ExamRef]) -> BTreeSet<String> {
    let mut shown = BTreeSet::new();
    for view in views {
        let Some((layout, exam)) = view.as_ref().split_once(':') else {
            continue;
        };
        let Some(found) = exams.iter().find(|e| e.id == exam) else {
            continue;
        };
        shown.insert(found.id.clone());
        if layout == "both_eyes"
            && let Some(eye) = found.eye()
        {
            let fellow = exams
                .iter()
                .find(|e| e.kind == found.kind && e.eye().is_some_and(|other| other != eye));
            if let Some(fellow) = fellow {
                shown.insert(fellow.id.clone());
            }
        }
    }
    shown
}

/// What of a grade was not looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Coverage {
    /// Graded eyes of which no image was shown at all.
    pub unviewed_eyes: Vec<Eye>,
    /// Fundus and OCT exams of the graded eyes that were never shown.
    pub unviewed_exams: Vec<String>,
}

impl Coverage {
    /// Whether everything the grade covers was shown.
    pub fn is_complete(&self) -> bool {
        self.unviewed_eyes.is_empty() && self.unviewed_exams.is_empty()
    }
}

/// Compares the graded eyes with the exams shown: an eye with values is covered when one of its
/// images was shown; each fundus/OCT exam of a graded eye should have been shown.
pub fn coverage(graded: &BTreeSet<Eye>, exams: &[ExamRef], viewed: &BTreeSet<String>) -> Coverage {
    let mut out = Coverage::default();
    for &eye in graded {
        let of_eye: Vec<&ExamRef> = exams
            .iter()
            .filter(|e| e.eye() == Some(eye) && e.shows_eye())
            .collect();
        if of_eye.is_empty() {
            // Nothing of this eye to show (e.g. a one-eye bundle): nothing to miss.
            continue;
        }
        if !of_eye.iter().any(|e| viewed.contains(&e.id)) {
            out.unviewed_eyes.push(eye);
        }
        for exam in of_eye.iter().filter(|e| e.expected()) {
            if !viewed.contains(&exam.id) {
                out.unviewed_exams.push(exam.id.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::presets;
    use crate::grading::values::{Mode, validate};
    use serde_json::json;

    fn exams() -> Vec<ExamRef> {
        [
            ("fundus-od", "fundus", "OD"),
            ("fundus-os", "fundus", "OS"),
            ("oct-od", "oct", "OD"),
            ("oct-os", "oct", "OS"),
            ("iop", "measurement", "OU"),
        ]
        .into_iter()
        .map(|(id, kind, eye)| ExamRef {
            id: id.into(),
            kind: kind.into(),
            eye: Some(eye.into()),
        })
        .collect()
    }

    fn both_eyes_graded() -> BTreeSet<Eye> {
        let form = presets::icdr();
        let values = validate(
            &form,
            &json!({ "dr_grade": { "OD": 1, "OS": 2 }, "dme": { "OD": "none", "OS": "none" } }),
            Mode::Submit,
        )
        .unwrap();
        graded_eyes(&values)
    }

    /// Issue 16: DR and DME for both eyes after looking at fundus OD alone.
    #[test]
    fn grading_both_eyes_on_fundus_od_alone_leaves_os_and_the_octs_unviewed() {
        let viewed = viewed_exams(&["single:fundus-od"], &exams());
        let found = coverage(&both_eyes_graded(), &exams(), &viewed);
        assert_eq!(found.unviewed_eyes, [Eye::Os]);
        assert_eq!(found.unviewed_exams, ["oct-od", "fundus-os", "oct-os"]);
        assert!(!found.is_complete());
    }

    #[test]
    fn both_eyes_layouts_show_the_fellow_eye() {
        let viewed = viewed_exams(&["both_eyes:fundus-od", "both_eyes:oct-os"], &exams());
        assert_eq!(
            viewed.iter().map(String::as_str).collect::<Vec<_>>(),
            ["fundus-od", "fundus-os", "oct-od", "oct-os"]
        );
        assert!(coverage(&both_eyes_graded(), &exams(), &viewed).is_complete());
        // Unknown exams and malformed views are ignored.
        let viewed = viewed_exams(&["single:nope", "garbage"], &exams());
        assert!(viewed.is_empty());
        // A grade of OD only does not need OS.
        let od = BTreeSet::from([Eye::Od]);
        let viewed = viewed_exams(&["single:fundus-od"], &exams());
        let found = coverage(&od, &exams(), &viewed);
        assert_eq!(found.unviewed_eyes, []);
        assert_eq!(found.unviewed_exams, ["oct-od"]);
        let viewed = viewed_exams(&["single:fundus-od", "prior:oct-od"], &exams());
        assert!(coverage(&od, &exams(), &viewed).is_complete());
    }
}
