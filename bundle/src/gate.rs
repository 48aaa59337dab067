//! The ingest gate: decides whether a bundle may be stored.
//!
//! [`check`] reads the manifest, validates it against the bundle's entries, inspects every file
//! (format from the bytes, dimensions from headers, raw metadata) and applies the
//! de-identification rules of `readroom_domain::deid` to every string it finds. It collects every
//! problem before answering, so the person who prepared the bundle gets one complete list.
//! It reads but never writes: a refused bundle leaves nothing behind.

use std::collections::BTreeMap;

use readroom_domain::deid::{self, DeidPolicy, DicomAttr, Finding, Pseudonyms};
use readroom_domain::limits::MAX_MANIFEST_BYTES;
use readroom_domain::manifest::{ExamKind, Eye, FileRole, MANIFEST_FILE, Manifest};
use serde::Serialize;

use crate::inspect::{FileReport, ImageFormat, ImageLimits, inspect};
use crate::source::BundleSource;

/// What the gate needs to know besides the bundle.
#[derive(Debug, Clone, Default)]
pub struct GateOptions {
    /// The study the bundle is being ingested into; the manifest must name the same study.
    pub study: String,
    /// De-identification options of the study.
    pub policy: DeidPolicy,
    /// Image dimension limits.
    pub limits: ImageLimits,
}

/// A bundle that passed the gate.
#[derive(Debug, Clone)]
pub struct CheckedBundle {
    /// Its parsed manifest.
    pub manifest: Manifest,
    /// The manifest's bytes as found in the bundle (stored verbatim).
    pub manifest_bytes: Vec<u8>,
    /// The report of every referenced file, in manifest order.
    pub files: Vec<FileReport>,
    /// Total bytes of all files, manifest included.
    pub total_bytes: u64,
    /// What looks wrong but does not stop the bundle (one eye's photograph given for both
    /// eyes), for the person who ingests it to check. Names exams, never file contents.
    pub warnings: Vec<String>,
}

/// Why a bundle was refused: every problem found, and every identifying item.
#[derive(Debug, Clone, Default, thiserror::Error)]
pub struct Rejection {
    /// Format problems: unreadable archive, bad manifest, missing files, bad images.
    pub problems: Vec<String>,
    /// Identifying items (which file, which field, why), never the values themselves.
    pub findings: Vec<Finding>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.problems.len() + self.findings.len();
        write!(
            f,
            "bundle refused ({total} problem{}):",
            if total == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        for finding in &self.findings {
            write!(f, "\n  - identifying data: {finding}")?;
        }
        Ok(())
    }
}

impl Rejection {
    fn single(problem: impl ToString) -> Rejection {
        Rejection {
            problems: vec![problem.to_string()],
            findings: Vec::new(),
        }
    }
}

/// Checks a whole bundle. `Ok` means it may be packed, encrypted and stored as is.
pub fn check(source: &mut BundleSource, options: &GateOptions) -> Result<CheckedBundle, Rejection> {
    let entries: Vec<String> = source.entries().iter().map(|e| e.path.clone()).collect();
    if source.entry(MANIFEST_FILE).is_none() {
        return Err(Rejection::single(format!(
            "{MANIFEST_FILE} is missing at the bundle root"
        )));
    }
    let manifest_bytes = source
        .read_small(MANIFEST_FILE, MAX_MANIFEST_BYTES)
        .map_err(Rejection::single)?;
    let manifest = Manifest::from_json(&manifest_bytes).map_err(Rejection::single)?;

    let mut rejection = Rejection::default();
    if manifest.study != options.study {
        rejection.problems.push(format!(
            "the manifest names study {:?} but the bundle is being ingested into study {:?}",
            manifest.study, options.study
        ));
    }
    let entry_refs: Vec<&str> = entries.iter().map(String::as_str).collect();
    if let Err(problems) = manifest.validate(&entry_refs) {
        rejection
            .problems
            .extend(problems.iter().map(ToString::to_string));
    }

    let pseudonyms = Pseudonyms::of(&manifest);
    rejection.findings.extend(deid::check_manifest(&manifest));
    for entry in &entries {
        rejection
            .findings
            .extend(deid::check_file_name(entry, &pseudonyms));
    }

    let mut files = Vec::new();
    for file in manifest.referenced_files() {
        if source.entry(file.path).is_none() {
            // Already reported by validation.
            continue;
        }
        let report = match source.open_entry(file.path) {
            Ok(mut reader) => inspect(file.path, &mut reader, &options.limits),
            Err(err) => {
                rejection.problems.push(err.to_string());
                continue;
            }
        };
        let report = match report {
            Ok(report) => report,
            Err(err) => {
                rejection.problems.push(err.to_string());
                continue;
            }
        };
        if let Some(problem) = format_problem(file.exam.kind, file.role, &report) {
            rejection
                .problems
                .push(format!("exam {:?}: {}: {problem}", file.exam.id, file.path));
        }
        rejection
            .findings
            .extend(metadata_findings(&report, &pseudonyms, options.policy));
        files.push(report);
    }
    rejection
        .problems
        .extend(volume_problems(&manifest, &files));

    if !rejection.problems.is_empty() || !rejection.findings.is_empty() {
        rejection.findings.sort();
        rejection.findings.dedup();
        return Err(rejection);
    }
    let total_bytes = source.entries().iter().map(|e| e.size).sum();
    let warnings = same_image_for_both_eyes(source, &manifest);
    Ok(CheckedBundle {
        manifest,
        manifest_bytes,
        files,
        total_bytes,
        warnings,
    })
}

/// Photographs of one kind (fundus, red-free, an OCT's en-face image) listed for OD and for OS
/// with byte-identical files: almost certainly one eye's image sent twice, which would have
/// graders grade one eye as both. Not refused (the image is right for one of the two), but
/// named, so the person ingesting checks the source. Hashes only these files (a few per bundle).
fn same_image_for_both_eyes(source: &mut BundleSource, manifest: &Manifest) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let mut seen: BTreeMap<(&'static str, [u8; 32]), (&str, Eye)> = BTreeMap::new();
    let mut warnings = Vec::new();
    for exam in &manifest.exams {
        let Some(eye @ (Eye::Od | Eye::Os)) = exam.eye else {
            continue;
        };
        let path = match exam.kind {
            ExamKind::Fundus | ExamKind::RedFree => exam.file.as_deref(),
            ExamKind::Oct => exam.enface.as_deref(),
            _ => None,
        };
        let Some(path) = path else { continue };
        let Ok(mut reader) = source.open_entry(path) else {
            continue;
        };
        let mut hasher = Sha256::new();
        if std::io::copy(&mut reader, &mut hasher).is_err() {
            continue;
        }
        let key = (exam.kind.as_str(), <[u8; 32]>::from(hasher.finalize()));
        match seen.get(&key) {
            Some((other, other_eye)) if *other_eye != eye => warnings.push(format!(
                "exams {other:?} ({}) and {:?} ({}) have byte-identical {} images: is one eye's image given for both?",
                other_eye.as_str(),
                exam.id,
                eye.as_str(),
                exam.kind.as_str(),
            )),
            Some(_) => {}
            None => {
                seen.insert(key, (exam.id.as_str(), eye));
            }
        }
    }
    warnings
}

fn metadata_findings(
    report: &FileReport,
    pseudonyms: &Pseudonyms,
    policy: DeidPolicy,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for item in &report.metadata {
        findings.extend(deid::check_metadata(
            &report.path,
            item.container,
            &item.key,
            &item.value,
            pseudonyms,
        ));
    }
    for attr in report.dicom.iter().flat_map(|d| &d.attributes) {
        let dicom_attr = DicomAttr {
            tag: attr.tag,
            keyword: &attr.keyword,
            vr: &attr.vr,
            value: &attr.value,
        };
        findings.extend(deid::check_dicom_attribute(
            &report.path,
            dicom_attr,
            pseudonyms,
            policy,
        ));
    }
    findings
}

/// Whether a file's format fits the role the manifest gives it.
fn format_problem(kind: ExamKind, role: FileRole, report: &FileReport) -> Option<String> {
    let is_image = matches!(
        report.format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Tiff | ImageFormat::Dicom
    );
    if !is_image {
        return Some(format!("is {}, not an image", report.format));
    }
    match (kind, role) {
        (ExamKind::Oct, FileRole::Image) if report.format != ImageFormat::Dicom => Some(format!(
            "an OCT volume given as `file` must be a multi-frame DICOM (OPT), not {}",
            report.format
        )),
        (ExamKind::Oct, FileRole::Frame(_)) if report.frames > 1 => {
            Some("a B-scan frame must hold a single image".to_owned())
        }
        _ => None,
    }
}

/// All frames of an OCT volume must share one size.
fn volume_problems(manifest: &Manifest, files: &[FileReport]) -> Vec<String> {
    let by_path: BTreeMap<&str, &FileReport> = files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut problems = Vec::new();
    for exam in &manifest.exams {
        let Some(frames) = &exam.frames else { continue };
        let sizes: std::collections::BTreeSet<(u32, u32)> = frames
            .iter()
            .filter_map(|path| by_path.get(path.as_str()))
            .map(|report| (report.width, report.height))
            .collect();
        if sizes.len() > 1 {
            let listed: Vec<String> = sizes.iter().map(|(w, h)| format!("{w}×{h}")).collect();
            problems.push(format!(
                "exam {:?}: B-scan frames have different sizes ({})",
                exam.id,
                listed.join(", ")
            ));
        }
    }
    problems
}

/// A summary of a checked bundle without PHI, recorded in the database: exam ids, kinds, eyes,
/// frame counts and dimensions.
#[derive(Debug, Clone, Serialize)]
pub struct BundleSummary {
    /// One entry per exam, in manifest order.
    pub exams: Vec<ExamSummary>,
}

/// One exam of a [`BundleSummary`].
#[derive(Debug, Clone, Serialize)]
pub struct ExamSummary {
    /// Exam id.
    pub id: String,
    /// Kind (`fundus`, `oct`…).
    pub kind: &'static str,
    /// Laterality, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eye: Option<&'static str>,
    /// Number of images (B-scans for OCT).
    pub frames: u32,
    /// Width of the main image in pixels.
    pub width: u32,
    /// Height of the main image in pixels.
    pub height: u32,
    /// Pixel spacing in micrometres, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixel_spacing_um: Option<f64>,
}

impl CheckedBundle {
    /// The non-PHI summary of this bundle.
    pub fn summary(&self) -> BundleSummary {
        let by_path: BTreeMap<&str, &FileReport> =
            self.files.iter().map(|f| (f.path.as_str(), f)).collect();
        let exams = self
            .manifest
            .exams
            .iter()
            .map(|exam| {
                let main = exam
                    .file
                    .as_deref()
                    .or_else(|| {
                        exam.frames
                            .as_ref()
                            .and_then(|f| f.first())
                            .map(String::as_str)
                    })
                    .and_then(|path| by_path.get(path));
                let frames = match (&exam.frames, main) {
                    (Some(frames), _) => frames.len() as u32,
                    (None, Some(report)) => report.frames.max(1),
                    (None, None) => 0,
                };
                ExamSummary {
                    id: exam.id.clone(),
                    kind: exam.kind.as_str(),
                    eye: exam.eye.map(|e| e.as_str()),
                    frames,
                    width: main.map_or(0, |r| r.width),
                    height: main.map_or(0, |r| r.height),
                    pixel_spacing_um: exam.pixel_spacing_um,
                }
            })
            .collect();
        BundleSummary { exams }
    }

    /// Paths to pack, manifest first, then every referenced file in manifest order.
    pub fn pack_order(&self) -> Vec<String> {
        std::iter::once(MANIFEST_FILE.to_owned())
            .chain(
                self.manifest
                    .referenced_files()
                    .iter()
                    .map(|f| f.path.to_owned()),
            )
            .collect()
    }
}
