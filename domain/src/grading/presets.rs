//! Forms readroom ships, as JSON under `domain/presets/` embedded in the binary.
//!
//! Each preset is an ordinary `readroom-form/1` definition (an administrator may download one,
//! edit it and upload it as a new form). `demo` is the form of the demo study: its keys and scales
//! (`dr_grade` ICDR 0–4, `dme`, `areds_category` 1–4, `vcdr` 0–1) are those of the demo data's
//! ground truth, so demo grades can be scored against it.

use super::form::Form;

/// The names [`preset`] knows, in the order an administrator is offered them.
pub const PRESETS: &[&str] = &[
    "icdr",
    "areds_simple",
    "vcdr",
    "gradability",
    "other_findings",
    "demo",
];

const ICDR: &str = include_str!("../../presets/icdr.json");
const AREDS_SIMPLE: &str = include_str!("../../presets/areds_simple.json");
const VCDR: &str = include_str!("../../presets/vcdr.json");
const GRADABILITY: &str = include_str!("../../presets/gradability.json");
const OTHER_FINDINGS: &str = include_str!("../../presets/other_findings.json");
const DEMO: &str = include_str!("../../presets/demo.json");

/// The preset named `name` (one of [`PRESETS`]).
pub fn preset(name: &str) -> Option<Form> {
    let json = match name {
        "icdr" => ICDR,
        "areds_simple" => AREDS_SIMPLE,
        "vcdr" => VCDR,
        "gradability" => GRADABILITY,
        "other_findings" => OTHER_FINDINGS,
        "demo" => DEMO,
        _ => return None,
    };
    Some(embedded(json))
}

/// ICDR diabetic retinopathy grade (0–4) and DME per eye; adjudicated when the grades differ by a
/// step or the referable status (ICDR ≥ 2 or any DME) differs.
pub fn icdr() -> Form {
    embedded(ICDR)
}

/// AREDS: large drusen, pigmentary abnormality and advanced AMD per eye, and the AREDS category
/// (1 no AMD – 4 advanced) per eye; adjudicated when categories differ by a step.
pub fn areds_simple() -> Form {
    embedded(AREDS_SIMPLE)
}

/// Vertical cup-to-disc ratio per eye, 0–1 in steps of 0.05; adjudicated at a difference of 0.2.
pub fn vcdr() -> Form {
    embedded(VCDR)
}

/// Gradability per eye, with the reason when the eye is partly gradable or ungradable.
pub fn gradability() -> Form {
    embedded(GRADABILITY)
}

/// Other findings (optional multiple choice) with a description when "other" is chosen.
pub fn other_findings() -> Form {
    embedded(OTHER_FINDINGS)
}

/// The demo study's form: gradability, then DR grade, DME, AREDS category and VCDR (asked only
/// for an eye that is at least partly gradable), then other findings.
pub fn demo() -> Form {
    embedded(DEMO)
}

fn embedded(json: &str) -> Form {
    // The embedded definitions are checked by the tests below; a failure is a build defect.
    Form::parse(json).expect("embedded preset form is valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grading::form::FieldKind;

    #[test]
    fn every_preset_parses_and_round_trips_with_the_same_fingerprint() {
        for name in PRESETS {
            let form = preset(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(form.code, *name);
            let again = Form::parse(&form.to_json()).unwrap();
            assert_eq!(again, form, "{name}");
            assert_eq!(again.fingerprint(), form.fingerprint(), "{name}");
        }
        assert_eq!(preset("etdrs"), None);
    }

    #[test]
    fn presets_have_distinct_fingerprints_and_korean_labels() {
        let mut fingerprints: Vec<String> = PRESETS
            .iter()
            .map(|n| preset(n).unwrap().fingerprint())
            .collect();
        fingerprints.sort();
        fingerprints.dedup();
        assert_eq!(fingerprints.len(), PRESETS.len());
        let hangul = |text: &str| text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c));
        for name in PRESETS {
            let form = preset(name).unwrap();
            assert!(hangul(&form.title.ko), "{name}");
            for field in &form.fields {
                assert!(hangul(&field.label.ko), "{name}.{}", field.key);
            }
        }
    }

    #[test]
    fn icdr_levels_are_the_international_scale() {
        let form = icdr();
        let FieldKind::Ordinal { levels } = &form.field("dr_grade").unwrap().kind else {
            panic!("dr_grade is not ordinal")
        };
        let scale: Vec<(i64, &str, &str)> = levels
            .iter()
            .map(|l| (l.value, l.label.en.as_str(), l.label.ko.as_str()))
            .collect();
        assert_eq!(
            scale,
            [
                (0, "No apparent retinopathy", "당뇨망막병증 없음"),
                (1, "Mild NPDR", "경도 비증식성 당뇨망막병증"),
                (2, "Moderate NPDR", "중등도 비증식성 당뇨망막병증"),
                (3, "Severe NPDR", "고도 비증식성 당뇨망막병증"),
                (4, "PDR", "증식성 당뇨망막병증"),
            ]
        );
    }

    #[test]
    fn icdr_defines_its_levels_and_records_the_protocol_lesions() {
        let form = icdr();
        let FieldKind::Ordinal { levels } = &form.field("dr_grade").unwrap().kind else {
            panic!("dr_grade is not ordinal")
        };
        let severe = levels.iter().find(|l| l.value == 3).unwrap();
        let help = severe.help.as_ref().expect("severe NPDR is defined");
        assert!(help.en.contains("4-2-1") && help.en.contains("venous beading"));
        assert!(help.ko.contains("4-2-1"));
        assert!(
            levels.iter().all(|l| l.help.is_some()),
            "every level defined"
        );
        for key in [
            "nvd",
            "nve",
            "vitreous_haemorrhage",
            "hard_exudates_macula",
            "laser_scars",
        ] {
            let field = form.field(key).unwrap_or_else(|| panic!("{key}"));
            assert!(field.per_eye && !field.required, "{key}");
            assert!(
                field.adjudicate.is_some(),
                "{key} disagreements are adjudicated"
            );
        }
        let eye_comment = form.field("eye_comment").unwrap();
        assert!(eye_comment.per_eye && matches!(eye_comment.kind, FieldKind::Text { .. }));
        assert!(!form.field("comment").unwrap().per_eye);
    }

    #[test]
    fn the_demo_form_keeps_the_keys_and_scales_of_the_single_presets() {
        let demo = demo();
        let keys: Vec<&str> = demo.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "gradable",
                "ungradable_reason",
                "dr_grade",
                "dme",
                "areds_category",
                "vcdr",
                "other_findings",
                "other_text",
                "urgent_referral",
                "comment"
            ]
        );
        for (source, key) in [
            (gradability(), "gradable"),
            (gradability(), "ungradable_reason"),
            (icdr(), "dr_grade"),
            (icdr(), "dme"),
            (areds_simple(), "areds_category"),
            (vcdr(), "vcdr"),
            (other_findings(), "other_findings"),
            (other_findings(), "other_text"),
        ] {
            let (ours, theirs) = (demo.field(key).unwrap(), source.field(key).unwrap());
            assert_eq!(ours.kind, theirs.kind, "{key}");
            assert_eq!(ours.adjudicate, theirs.adjudicate, "{key}");
            assert_eq!(ours.per_eye, theirs.per_eye, "{key}");
        }
        for key in ["dr_grade", "dme", "areds_category", "vcdr"] {
            let when = demo.field(key).unwrap().when.as_ref().unwrap();
            assert_eq!(when.field, "gradable", "{key}");
        }
    }
}
