//! Manifest parsing and validation: every malformed manifest gets an error naming what is wrong.

use readroom_domain::manifest::{Manifest, ManifestError, ManifestProblem};

const VALID: &str = r#"{ "format": "readroom-bundle/1", "study": "EYE-2026", "subject": "S000123", "visit": "V1",
  "exams": [
    { "id": "fundus-od", "kind": "fundus", "eye": "OD", "file": "fundus_od.jpg", "pixel_spacing_um": 6.5 },
    { "id": "oct-od", "kind": "oct", "eye": "OD", "file": "oct_od.dcm", "enface": "slo_od.png" },
    { "id": "oct-os", "kind": "oct", "eye": "OS", "frames": ["oct_os/000.png", "oct_os/001.png"], "enface": "slo_os.png" },
    { "id": "iop", "kind": "measurement", "values": { "iop_od_mmhg": 15, "iop_os_mmhg": 16 } } ] }"#;

const ENTRIES: &[&str] = &[
    "manifest.json",
    "fundus_od.jpg",
    "oct_od.dcm",
    "slo_od.png",
    "oct_os/000.png",
    "oct_os/001.png",
    "slo_os.png",
];

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::from_json(text.as_bytes())
}

/// Validates `VALID` after `edit` on its JSON text, returning the problems.
fn problems(edit: impl Fn(&str) -> String, entries: &[&str]) -> Vec<ManifestProblem> {
    let manifest = parse(&edit(VALID)).expect("edited manifest still parses");
    manifest.validate(entries).err().unwrap_or_default()
}

#[test]
fn the_design_example_is_valid_and_round_trips() {
    let manifest = parse(VALID).unwrap();
    assert_eq!(manifest.validate(ENTRIES), Ok(()));
    assert_eq!(manifest.referenced_files().len(), 6);
    let again = Manifest::from_json(&manifest.to_json()).unwrap();
    assert_eq!(again, manifest);
}

#[test]
fn unknown_kind_names_the_field_and_the_valid_kinds() {
    let err = parse(&VALID.replace(r#""kind": "fundus""#, r#""kind": "angiogram""#)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("exams[0].kind"), "{text}");
    assert!(
        text.contains("angiogram") && text.contains("red-free"),
        "{text}"
    );
}

#[test]
fn bad_laterality_names_the_field() {
    let err = parse(&VALID.replace(
        r#""eye": "OD", "file": "fundus"#,
        r#""eye": "LE", "file": "fundus"#,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("exams[0].eye"), "{err}");
    let ou = problems(
        |t| {
            t.replace(
                r#""eye": "OD", "file": "fundus"#,
                r#""eye": "OU", "file": "fundus"#,
            )
        },
        ENTRIES,
    );
    assert!(
        matches!(&ou[..], [ManifestProblem::BadLaterality { exam, .. }] if exam == "fundus-od"),
        "{ou:?}"
    );
}

#[test]
fn wrong_format_version_is_refused_before_shape_errors() {
    let err = parse(&VALID.replace("readroom-bundle/1", "readroom-bundle/2")).unwrap_err();
    assert_eq!(
        err,
        ManifestError::UnsupportedFormat {
            found: "readroom-bundle/2".into()
        }
    );
    assert!(err.to_string().contains("readroom-bundle/1"));
}

#[test]
fn invalid_json_and_unknown_fields() {
    assert!(matches!(
        parse("{ not json"),
        Err(ManifestError::Json { .. })
    ));
    let err =
        parse(&VALID.replace(r#""pixel_spacing_um": 6.5"#, r#""pixel_spacing": 6.5"#)).unwrap_err();
    assert!(err.to_string().contains("pixel_spacing"), "{err}");
}

#[test]
fn missing_file_and_unlisted_file() {
    let entries: Vec<&str> = ENTRIES
        .iter()
        .copied()
        .filter(|e| *e != "slo_os.png")
        .chain(["notes.txt"])
        .collect();
    let found = problems(|t| t.to_owned(), &entries);
    assert!(found.contains(&ManifestProblem::MissingFile {
        exam: "oct-os".into(),
        path: "slo_os.png".into()
    }));
    assert!(found.contains(&ManifestProblem::FileNotListed {
        path: "notes.txt".into()
    }));
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn duplicate_exam_id() {
    let found = problems(
        |t| t.replace(r#""id": "oct-os""#, r#""id": "oct-od""#),
        ENTRIES,
    );
    assert!(
        found.contains(&ManifestProblem::DuplicateExamId {
            id: "oct-od".into()
        }),
        "{found:?}"
    );
}

#[test]
fn absurd_numbers_and_paths() {
    let found = problems(|t| t.replace("6.5", "1e9"), ENTRIES);
    assert!(
        matches!(
            &found[..],
            [ManifestProblem::OutOfRange {
                field: "pixel_spacing_um",
                ..
            }]
        ),
        "{found:?}"
    );
    let found = problems(|t| t.replace("fundus_od.jpg", "../fundus_od.jpg"), ENTRIES);
    assert!(
        found
            .iter()
            .any(|p| matches!(p, ManifestProblem::BadPath { .. })),
        "{found:?}"
    );
    let found = problems(|t| t.replace("fundus_od.jpg", "/etc/passwd"), ENTRIES);
    assert!(found.iter().any(|p| matches!(
        p,
        ManifestProblem::BadPath {
            reason: "absolute path",
            ..
        }
    )));
}

#[test]
fn kind_rules() {
    let found = problems(|t| t.replace(r#", "enface": "slo_od.png""#, ""), ENTRIES);
    assert!(found.contains(&ManifestProblem::MissingField {
        exam: "oct-od".into(),
        kind: "oct",
        field: "enface"
    }));
    let found = problems(
        |t| t.replace(r#"{ "iop_od_mmhg": 15, "iop_os_mmhg": 16 }"#, "{}"),
        ENTRIES,
    );
    assert!(found.contains(&ManifestProblem::MissingField {
        exam: "iop".into(),
        kind: "measurement",
        field: "values"
    }));
}

#[test]
fn identifiers_must_be_plain() {
    let found = problems(|t| t.replace("S000123", "Kim Minsu"), ENTRIES);
    assert!(
        matches!(&found[..], [ManifestProblem::BadIdentifier { field, .. }] if field == "subject"),
        "{found:?}"
    );
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let found = problems(
        |t| {
            t.replace("6.5", "-1")
                .replace(r#""id": "oct-os""#, r#""id": "oct-od""#)
        },
        &ENTRIES[..3],
    );
    assert!(found.len() >= 4, "{found:?}");
}
