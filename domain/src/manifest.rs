//! Exam bundle manifest, format `readroom-bundle/1`.
//!
//! The manifest is the `manifest.json` file at the root of a bundle.
//! It names the study, the pseudonymous subject and visit, and lists every exam with the files that
//! hold its pixels. The schema is documented in `docs/bundle-format.md`; the field names shown there
//! are part of readroom's stable public surface.
//!
//! Parsing ([`Manifest::from_json`]) only checks the shape of the document. [`Manifest::validate`]
//! checks the rules that span fields and files (duplicate ids, missing or unlisted files, geometry).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The only bundle format version this build reads and writes.
pub const FORMAT_V1: &str = "readroom-bundle/1";

/// The file name of the manifest at the root of every bundle.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The parsed `manifest.json` of an exam bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version; must be [`FORMAT_V1`].
    pub format: String,
    /// Code of the study the bundle belongs to (e.g. `EYE-2026`).
    pub study: String,
    /// Pseudonymous subject identifier (never a real patient id).
    pub subject: String,
    /// Pseudonymous visit label (e.g. `V1`); never a date.
    pub visit: String,
    /// Optional pseudonymous label of an earlier visit of the same subject, for prior-visit layouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_visit: Option<String>,
    /// The exams in this bundle.
    pub exams: Vec<Exam>,
}

/// One exam of a bundle: an image, an OCT volume, a report page or a set of measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exam {
    /// Identifier unique within the bundle (e.g. `fundus-od`).
    pub id: String,
    /// What kind of exam this is.
    pub kind: ExamKind,
    /// Which eye; required for image exams, optional for measurements and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eye: Option<Eye>,
    /// The single image file of a fundus, red-free, visual field or report exam, or a multi-frame
    /// DICOM OPT holding a whole OCT volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// OCT B-scans as one image file per frame, in scan order (top to bottom of the en-face image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<String>>,
    /// En-face / SLO image of an OCT exam, on which the B-scan positions are drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enface: Option<String>,
    /// Physical size of one pixel of `file` in micrometres (square pixels), for calipers and grids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_spacing_um: Option<f64>,
    /// OCT acquisition geometry (optional; defaults are derived from the images when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oct: Option<OctGeometry>,
    /// Measurement values, e.g. `{"iop_od_mmhg": 15, "va_od_logmar": 0.1}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, MeasurementValue>>,
    /// Optional free-text device model (e.g. `Topcon 3D OCT-2000`); checked by the de-id gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// Kind of exam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExamKind {
    /// Colour fundus photograph.
    Fundus,
    /// Red-free (green channel) fundus photograph.
    RedFree,
    /// OCT volume: B-scans plus an en-face / SLO image.
    Oct,
    /// Visual field printout or map, as an image.
    VisualField,
    /// Rendered report page, as an image.
    Report,
    /// Numeric measurements (IOP, visual acuity, axial length, ...).
    Measurement,
}

impl ExamKind {
    /// The manifest spelling of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ExamKind::Fundus => "fundus",
            ExamKind::RedFree => "red-free",
            ExamKind::Oct => "oct",
            ExamKind::VisualField => "visual-field",
            ExamKind::Report => "report",
            ExamKind::Measurement => "measurement",
        }
    }

    /// Whether exams of this kind carry pixels.
    pub fn is_image(self) -> bool {
        !matches!(self, ExamKind::Measurement)
    }
}

/// Laterality, in the ophthalmic convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Eye {
    /// Oculus dexter, the right eye.
    #[serde(rename = "OD")]
    Od,
    /// Oculus sinister, the left eye.
    #[serde(rename = "OS")]
    Os,
    /// Oculus uterque, both eyes.
    #[serde(rename = "OU")]
    Ou,
}

impl Eye {
    /// The manifest spelling of this laterality.
    pub fn as_str(self) -> &'static str {
        match self {
            Eye::Od => "OD",
            Eye::Os => "OS",
            Eye::Ou => "OU",
        }
    }
}

/// OCT acquisition geometry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OctGeometry {
    /// Lateral pixel size of a B-scan in micrometres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lateral_um: Option<f64>,
    /// Axial (depth) pixel size of a B-scan in micrometres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axial_um: Option<f64>,
    /// Distance between neighbouring B-scans in micrometres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bscan_spacing_um: Option<f64>,
    /// The scanned rectangle on the en-face image, in en-face pixels: `[x0, y0, x1, y1]`.
    /// B-scan `i` of `n` is the horizontal line from `x0` to `x1` at `y0 + i * (y1 - y0) / (n - 1)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enface_scan_rect: Option<[f64; 4]>,
}

/// A measurement value: a number, or a short string for values such as Snellen acuity `20/40`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MeasurementValue {
    /// A numeric value.
    Number(f64),
    /// A short textual value.
    Text(String),
}

/// Why a `manifest.json` could not be read at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The manifest is larger than [`crate::limits::MAX_MANIFEST_BYTES`].
    #[error("manifest.json is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Actual size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The manifest is not valid JSON.
    #[error("manifest.json is not valid JSON: {detail}")]
    Json {
        /// The parser's message with line and column.
        detail: String,
    },
    /// The manifest declares a format this build does not read.
    #[error("manifest.json declares format {found:?}; this readroom reads {FORMAT_V1:?}")]
    UnsupportedFormat {
        /// The declared format (empty when missing).
        found: String,
    },
    /// A field has the wrong type or an unknown value (unknown kind, bad laterality, unknown field).
    #[error("manifest.json: {path}: {detail}")]
    Field {
        /// JSON path of the field, e.g. `exams[2].eye`.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// A rule of the bundle format that a parsed manifest breaks; [`Manifest::validate`] returns all of them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestProblem {
    /// A required identifier is empty, too long or uses characters outside `[A-Za-z0-9._-]`.
    #[error("{field} {value:?} is not a valid identifier: {reason}")]
    BadIdentifier {
        /// Which field (`study`, `subject`, `exams[0].id` ...).
        field: String,
        /// Its value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The bundle lists no exams.
    #[error("the manifest lists no exams")]
    NoExams,
    /// More exams than [`crate::limits::MAX_EXAMS`].
    #[error("the manifest lists {count} exams; the limit is {limit}")]
    TooManyExams {
        /// How many.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Two exams share an id.
    #[error("exam id {id:?} is used more than once")]
    DuplicateExamId {
        /// The repeated id.
        id: String,
    },
    /// An exam lacks a field its kind requires.
    #[error("exam {exam:?} ({kind}): {field} is required")]
    MissingField {
        /// Exam id.
        exam: String,
        /// Exam kind.
        kind: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// An exam has a field its kind does not allow.
    #[error("exam {exam:?} ({kind}): {field} is not allowed for this kind")]
    UnexpectedField {
        /// Exam id.
        exam: String,
        /// Exam kind.
        kind: &'static str,
        /// The field that should not be there.
        field: &'static str,
    },
    /// The laterality does not fit the exam kind (e.g. `OU` on a fundus photograph).
    #[error("exam {exam:?} ({kind}): laterality {eye} is not valid here; use OD or OS")]
    BadLaterality {
        /// Exam id.
        exam: String,
        /// Exam kind.
        kind: &'static str,
        /// The given laterality.
        eye: &'static str,
    },
    /// A number is out of its plausible range, not finite, or inconsistent.
    #[error("exam {exam:?}: {field} = {value} is out of range ({expected})")]
    OutOfRange {
        /// Exam id.
        exam: String,
        /// Field.
        field: &'static str,
        /// Value as written.
        value: String,
        /// The accepted range, in words.
        expected: &'static str,
    },
    /// A file path is not a safe relative bundle path.
    #[error("exam {exam:?}: file path {path:?} is not allowed: {reason}")]
    BadPath {
        /// Exam id.
        exam: String,
        /// The path.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// A file the manifest refers to is not in the bundle.
    #[error("exam {exam:?}: file {path:?} is listed in the manifest but missing from the bundle")]
    MissingFile {
        /// Exam id.
        exam: String,
        /// The missing path.
        path: String,
    },
    /// A file of the bundle is not referred to by any exam.
    #[error("file {path:?} is in the bundle but not listed in the manifest")]
    FileNotListed {
        /// The unlisted path.
        path: String,
    },
    /// One file is referenced twice.
    #[error("file {path:?} is referenced more than once")]
    DuplicateReference {
        /// The path.
        path: String,
    },
}

/// What role a file plays in its exam.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// The exam's single image file (or multi-frame DICOM volume).
    Image,
    /// B-scan number `n` (0-based) of an OCT volume given as one file per frame.
    Frame(usize),
    /// The en-face / SLO image of an OCT exam.
    Enface,
}

/// A file referenced by the manifest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileRef<'a> {
    /// Path inside the bundle.
    pub path: &'a str,
    /// The exam it belongs to.
    pub exam: &'a Exam,
    /// Its role in that exam.
    pub role: FileRole,
}

impl Manifest {
    /// Parses `manifest.json`, checking its size, JSON syntax, format version and field types.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let size = bytes.len() as u64;
        if size > crate::limits::MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                size,
                limit: crate::limits::MAX_MANIFEST_BYTES,
            });
        }
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|err| ManifestError::Json {
                detail: err.to_string(),
            })?;
        // Check the version before the shape, so a v2 bundle gets "unsupported format" rather
        // than a confusing field error.
        let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
        if format != FORMAT_V1 {
            return Err(ManifestError::UnsupportedFormat {
                found: format.to_owned(),
            });
        }
        serde_path_to_error::deserialize(value).map_err(|err| ManifestError::Field {
            path: err.path().to_string(),
            detail: err.inner().to_string(),
        })
    }

    /// Serializes the manifest as pretty JSON (what the demo generator and tests write).
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing these plain structs cannot fail: every map key is a string.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Every file the manifest refers to, in manifest order.
    pub fn referenced_files(&self) -> Vec<FileRef<'_>> {
        let mut files = Vec::new();
        for exam in &self.exams {
            if let Some(path) = &exam.file {
                files.push(FileRef {
                    path,
                    exam,
                    role: FileRole::Image,
                });
            }
            for (n, path) in exam.frames.iter().flatten().enumerate() {
                files.push(FileRef {
                    path,
                    exam,
                    role: FileRole::Frame(n),
                });
            }
            if let Some(path) = &exam.enface {
                files.push(FileRef {
                    path,
                    exam,
                    role: FileRole::Enface,
                });
            }
        }
        files
    }

    /// Checks every rule of the format against the manifest and the bundle's entry list
    /// (paths relative to the bundle root, `manifest.json` included or not).
    /// Returns every problem found, not only the first.
    pub fn validate(&self, entries: &[&str]) -> Result<(), Vec<ManifestProblem>> {
        let mut problems = Vec::new();
        check_identifier(&mut problems, "study", &self.study);
        check_identifier(&mut problems, "subject", &self.subject);
        check_identifier(&mut problems, "visit", &self.visit);
        if let Some(prior) = &self.prior_visit {
            check_identifier(&mut problems, "prior_visit", prior);
        }
        if self.exams.is_empty() {
            problems.push(ManifestProblem::NoExams);
        }
        if self.exams.len() > crate::limits::MAX_EXAMS {
            problems.push(ManifestProblem::TooManyExams {
                count: self.exams.len(),
                limit: crate::limits::MAX_EXAMS,
            });
        }
        let mut seen_ids = std::collections::BTreeSet::new();
        for (idx, exam) in self.exams.iter().enumerate() {
            check_identifier(&mut problems, &format!("exams[{idx}].id"), &exam.id);
            if !seen_ids.insert(exam.id.as_str()) {
                problems.push(ManifestProblem::DuplicateExamId {
                    id: exam.id.clone(),
                });
            }
            check_exam(&mut problems, exam);
        }

        let entry_set: std::collections::BTreeSet<&str> = entries.iter().copied().collect();
        let mut referenced = std::collections::BTreeSet::new();
        for file in self.referenced_files() {
            if let Err(reason) = check_entry_path(file.path) {
                problems.push(ManifestProblem::BadPath {
                    exam: file.exam.id.clone(),
                    path: file.path.to_owned(),
                    reason,
                });
                continue;
            }
            if !referenced.insert(file.path) {
                problems.push(ManifestProblem::DuplicateReference {
                    path: file.path.to_owned(),
                });
            }
            if !entry_set.contains(file.path) {
                problems.push(ManifestProblem::MissingFile {
                    exam: file.exam.id.clone(),
                    path: file.path.to_owned(),
                });
            }
        }
        for entry in entries {
            if *entry != MANIFEST_FILE && !referenced.contains(entry) {
                problems.push(ManifestProblem::FileNotListed {
                    path: (*entry).to_owned(),
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Checks that `path` is a safe, relative, `/`-separated bundle path.
/// Returns the reason when it is not.
pub fn check_entry_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty path");
    }
    if path.len() > crate::limits::MAX_PATH_LEN {
        return Err("path is longer than 255 bytes");
    }
    if path.starts_with('/') {
        return Err("absolute path");
    }
    if path.contains('\\') {
        return Err("backslash in path");
    }
    if path.chars().any(char::is_control) {
        return Err("control character in path");
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Err("drive-letter path");
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err("empty path segment"),
            "." | ".." => return Err("`.` or `..` segment"),
            _ => {}
        }
    }
    Ok(())
}

fn check_identifier(problems: &mut Vec<ManifestProblem>, field: &str, value: &str) {
    let reason = if value.is_empty() {
        Some("it is empty")
    } else if value.chars().count() > crate::limits::MAX_ID_LEN {
        Some("it is longer than 64 characters")
    } else if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some("only letters, digits, `.`, `_` and `-` are allowed")
    } else {
        None
    };
    if let Some(reason) = reason {
        problems.push(ManifestProblem::BadIdentifier {
            field: field.to_owned(),
            value: value.to_owned(),
            reason,
        });
    }
}

fn check_exam(problems: &mut Vec<ManifestProblem>, exam: &Exam) {
    let kind = exam.kind.as_str();
    let missing = |field| ManifestProblem::MissingField {
        exam: exam.id.clone(),
        kind,
        field,
    };
    let unexpected = |field| ManifestProblem::UnexpectedField {
        exam: exam.id.clone(),
        kind,
        field,
    };
    match exam.kind {
        ExamKind::Fundus | ExamKind::RedFree | ExamKind::VisualField | ExamKind::Report => {
            if exam.file.is_none() {
                problems.push(missing("file"));
            }
            if exam.frames.is_some() {
                problems.push(unexpected("frames"));
            }
            if exam.enface.is_some() {
                problems.push(unexpected("enface"));
            }
            if exam.oct.is_some() {
                problems.push(unexpected("oct"));
            }
        }
        ExamKind::Oct => {
            match (&exam.file, &exam.frames) {
                (None, None) => problems.push(missing("file or frames")),
                (Some(_), Some(_)) => problems.push(unexpected("frames (file is already given)")),
                (None, Some(frames)) if frames.is_empty() => problems.push(missing("frames")),
                (None, Some(frames)) if frames.len() > crate::limits::MAX_OCT_FRAMES => problems
                    .push(ManifestProblem::OutOfRange {
                        exam: exam.id.clone(),
                        field: "frames",
                        value: frames.len().to_string(),
                        expected: "1 to 2048 B-scans",
                    }),
                _ => {}
            }
            if exam.enface.is_none() {
                problems.push(missing("enface"));
            }
        }
        ExamKind::Measurement => {
            for (present, field) in [
                (exam.file.is_some(), "file"),
                (exam.frames.is_some(), "frames"),
                (exam.enface.is_some(), "enface"),
                (exam.oct.is_some(), "oct"),
                (exam.pixel_spacing_um.is_some(), "pixel_spacing_um"),
            ] {
                if present {
                    problems.push(unexpected(field));
                }
            }
            match &exam.values {
                None => problems.push(missing("values")),
                Some(values) if values.is_empty() => problems.push(missing("values")),
                Some(values) => check_values(problems, exam, values),
            }
        }
    }
    if exam.kind.is_image() && exam.values.is_some() {
        problems.push(unexpected("values"));
    }
    let needs_single_eye = matches!(
        exam.kind,
        ExamKind::Fundus | ExamKind::RedFree | ExamKind::Oct | ExamKind::VisualField
    );
    match exam.eye {
        None if needs_single_eye => problems.push(missing("eye")),
        Some(Eye::Ou) if needs_single_eye => problems.push(ManifestProblem::BadLaterality {
            exam: exam.id.clone(),
            kind,
            eye: "OU",
        }),
        _ => {}
    }
    if let Some(spacing) = exam.pixel_spacing_um {
        check_spacing(problems, exam, "pixel_spacing_um", spacing);
    }
    if let Some(oct) = &exam.oct {
        for (field, value) in [
            ("oct.lateral_um", oct.lateral_um),
            ("oct.axial_um", oct.axial_um),
        ] {
            if let Some(value) = value {
                check_spacing(problems, exam, field, value);
            }
        }
        if let Some(spacing) = oct.bscan_spacing_um
            && !(spacing.is_finite() && spacing > 0.0 && spacing <= 2000.0)
        {
            problems.push(ManifestProblem::OutOfRange {
                exam: exam.id.clone(),
                field: "oct.bscan_spacing_um",
                value: spacing.to_string(),
                expected: "more than 0 and at most 2000 µm",
            });
        }
        if let Some([x0, y0, x1, y1]) = oct.enface_scan_rect {
            let ordered =
                [x0, y0, x1, y1].iter().all(|v| v.is_finite() && *v >= 0.0) && x1 > x0 && y1 >= y0;
            if !ordered {
                problems.push(ManifestProblem::OutOfRange {
                    exam: exam.id.clone(),
                    field: "oct.enface_scan_rect",
                    value: format!("[{x0}, {y0}, {x1}, {y1}]"),
                    expected: "non-negative [x0, y0, x1, y1] with x1 > x0 and y1 >= y0",
                });
            }
        }
    }
}

fn check_spacing(problems: &mut Vec<ManifestProblem>, exam: &Exam, field: &'static str, v: f64) {
    let plausible = v.is_finite()
        && (crate::limits::MIN_PIXEL_SPACING_UM..=crate::limits::MAX_PIXEL_SPACING_UM).contains(&v);
    if !plausible {
        problems.push(ManifestProblem::OutOfRange {
            exam: exam.id.clone(),
            field,
            value: v.to_string(),
            expected: "0.5 to 500 µm per pixel",
        });
    }
}

fn check_values(
    problems: &mut Vec<ManifestProblem>,
    exam: &Exam,
    values: &BTreeMap<String, MeasurementValue>,
) {
    for (key, value) in values {
        check_identifier(problems, &format!("exam {:?} values key", exam.id), key);
        let bad = match value {
            MeasurementValue::Number(n) => (!n.is_finite()).then(|| n.to_string()),
            MeasurementValue::Text(text) => (text.chars().count() > 32).then(|| text.clone()),
        };
        if let Some(value) = bad {
            problems.push(ManifestProblem::OutOfRange {
                exam: exam.id.clone(),
                field: "values",
                value,
                expected: "a finite number or a text of at most 32 characters",
            });
        }
    }
}
