//! Writing whole synthetic bundles, and the demo cohort.
//!
//! [`write_bundle_dir`] renders every eye of a [`SynthSpec`] (fundus photograph, OCT volume and
//! en-face image) plus the visit's measurements, writes them in the `readroom-bundle/1` layout with
//! a `manifest.json`, and returns the [`GroundTruth`], which is never written into the bundle.
//! Eyes, and within an eye the fundus photograph and the OCT volume, are rendered on separate
//! threads; every random stream is derived from the seed and labels, never shared between threads,
//! so the output does not depend on scheduling.

use std::path::Path;

use readroom_domain::limits::{MAX_ID_LEN, MAX_OCT_FRAMES};
use readroom_domain::manifest::{
    Exam, ExamKind, Eye, FORMAT_V1, MANIFEST_FILE, Manifest, OctGeometry,
};
use serde::{Deserialize, Serialize};

use super::SynthError;
use super::dicom::{DicomIdentity, op_object, opt_object, write_file as write_dicom};
use super::disease::{Disease, EyeGrades, grades_for, normal_vcdr};
use super::encode::{create_dir, jpeg_rgb, png_gray, write_file};
use super::fundus::{self, Acquisition};
use super::geometry::{Anatomy, ImageFrame, RetinaPoint};
use super::lesions;
use super::measurements::Measurements;
use super::oct::{self, AXIAL_UM, BSCAN_DEPTH, BSCAN_WIDTH, OctModel, ScanPattern};
use super::rng::{derive, stream, uniform};
use super::slo;
use super::truth::{EyeTruth, GroundTruth, round_px};
use super::vessels::VesselTree;

/// Everything that determines a synthetic bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthSpec {
    /// Seed of every random choice; the same spec always gives the same bytes.
    pub seed: u64,
    /// Study code written into the manifest.
    pub study: String,
    /// Pseudonymous subject (e.g. `S0001`); also PatientName and PatientID in DICOM files.
    pub subject: String,
    /// Visit label (e.g. `V1`).
    pub visit: String,
    /// Label of the subject's earlier visit, if any (e.g. `V1` for a `V2` bundle).
    pub prior_visit: Option<String>,
    /// The eyes to image, `OD` and/or `OS`, in manifest order.
    pub eyes: Vec<Eye>,
    /// Width and height of the fundus photographs in pixels (256–4096).
    pub fundus_size: u32,
    /// Number of OCT B-scans per eye (2–256; clinical volumes use 25–128).
    pub oct_frames: u32,
    /// Write each OCT volume as one multi-frame DICOM OPT instead of PNG frames.
    pub oct_as_dicom: bool,
    /// Write each fundus photograph as DICOM OP instead of JPEG.
    pub fundus_as_dicom: bool,
    /// The simulated disease.
    pub disease: Disease,
}

impl SynthSpec {
    /// A spec for a normal subject with both eyes, a 1536-pixel fundus and a 49-scan OCT volume
    /// in JPEG and PNG, study `DEMO`, visit `V1`.
    pub fn new(seed: u64, subject: &str) -> SynthSpec {
        SynthSpec {
            seed,
            study: "DEMO".to_owned(),
            subject: subject.to_owned(),
            visit: "V1".to_owned(),
            prior_visit: None,
            eyes: vec![Eye::Od, Eye::Os],
            fundus_size: 1536,
            oct_frames: 49,
            oct_as_dicom: false,
            fundus_as_dicom: false,
            disease: Disease::Normal,
        }
    }

    /// Checks the spec describes a bundle the generator can produce.
    pub fn validate(&self) -> Result<(), SynthError> {
        let invalid = |message: String| Err(SynthError::InvalidSpec(message));
        for (name, value) in [
            ("study", &self.study),
            ("subject", &self.subject),
            ("visit", &self.visit),
        ]
        .into_iter()
        .chain(
            self.prior_visit
                .as_ref()
                .map(|prior| ("prior_visit", prior)),
        ) {
            let well_formed = !value.is_empty()
                && value.len() <= MAX_ID_LEN
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !well_formed {
                return invalid(format!(
                    "{name} {value:?} must be 1–{MAX_ID_LEN} ASCII letters, digits, '-' or '_'"
                ));
            }
        }
        if self.eyes.is_empty() || self.eyes.len() > 2 {
            return invalid("eyes must list OD, OS or both".to_owned());
        }
        if self.eyes.contains(&Eye::Ou) || (self.eyes.len() == 2 && self.eyes[0] == self.eyes[1]) {
            return invalid("eyes must be distinct and each OD or OS".to_owned());
        }
        if !(256..=4096).contains(&self.fundus_size) {
            return invalid(format!(
                "fundus_size {} is not in 256..=4096",
                self.fundus_size
            ));
        }
        if !(2..=256).contains(&self.oct_frames) || self.oct_frames as usize > MAX_OCT_FRAMES {
            return invalid(format!("oct_frames {} is not in 2..=256", self.oct_frames));
        }
        self.disease.validate()
    }
}

/// The bundle file names of one eye.
struct EyeFiles {
    fundus: String,
    oct: String,
    slo: String,
}

fn eye_files(eye: Eye, spec: &SynthSpec) -> EyeFiles {
    let label = eye.as_str().to_ascii_lowercase();
    EyeFiles {
        fundus: format!(
            "fundus_{label}.{}",
            if spec.fundus_as_dicom { "dcm" } else { "jpg" }
        ),
        oct: format!("oct_{label}"),
        slo: format!("slo_{label}.png"),
    }
}

/// What rendering one eye produced for the manifest and the ground truth.
struct EyeOutput {
    fundus_exam: Exam,
    oct_exam: Exam,
    truth: EyeTruth,
}

/// Writes the bundle described by `spec` into `dir` (created if needed) and returns its ground truth.
///
/// Files: `manifest.json`, per eye `fundus_<eye>.jpg` (or `.dcm`), `oct_<eye>/000.png`… (or one
/// `oct_<eye>.dcm`) and `slo_<eye>.png`, where `<eye>` is `od` or `os`.
pub fn write_bundle_dir(spec: &SynthSpec, dir: &Path) -> Result<GroundTruth, SynthError> {
    spec.validate()?;
    create_dir(dir)?;
    let base_vcdr = normal_vcdr(&mut stream(spec.seed, &[&spec.subject, "subject"]));
    let grades: Vec<(Eye, EyeGrades)> = spec
        .eyes
        .iter()
        .map(|eye| {
            let mut rng = stream(spec.seed, &[&spec.subject, eye.as_str(), "grades"]);
            (*eye, grades_for(&spec.disease, *eye, base_vcdr, &mut rng))
        })
        .collect();
    let outputs: Vec<Result<EyeOutput, SynthError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = grades
            .iter()
            .map(|(eye, eye_grades)| scope.spawn(move || render_eye(spec, *eye, eye_grades, dir)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    Err(SynthError::Internal(
                        "an eye's rendering thread panicked".to_owned(),
                    ))
                })
            })
            .collect()
    });
    let mut fundus_exams = Vec::new();
    let mut oct_exams = Vec::new();
    let mut truths = Vec::new();
    for output in outputs {
        let output = output?;
        fundus_exams.push(output.fundus_exam);
        oct_exams.push(output.oct_exam);
        truths.push(output.truth);
    }
    let measurements = Measurements::generate(
        &spec.disease,
        &grades,
        &mut stream(spec.seed, &[&spec.subject, "biometry"]),
        &mut stream(spec.seed, &[&spec.subject, &spec.visit, "measurements"]),
    );
    let mut exams = fundus_exams;
    exams.extend(oct_exams);
    exams.extend(measurements.exams());
    let manifest = Manifest {
        format: FORMAT_V1.to_owned(),
        study: spec.study.clone(),
        subject: spec.subject.clone(),
        visit: spec.visit.clone(),
        prior_visit: spec.prior_visit.clone(),
        exams,
    };
    write_manifest(dir, &manifest)?;
    Ok(GroundTruth {
        study: spec.study.clone(),
        subject: spec.subject.clone(),
        visit: spec.visit.clone(),
        disease: spec.disease.clone(),
        eyes: truths,
        measurements: measurements.values(),
    })
}

/// Writes `manifest.json`, pretty-printed with a final newline.
pub(crate) fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), SynthError> {
    let mut json = serde_json::to_vec_pretty(manifest)?;
    json.push(b'\n');
    write_file(&dir.join(MANIFEST_FILE), &json)
}

/// The model of one eye at one visit: anatomy, vessels and lesions.
struct EyeModel {
    anatomy: Anatomy,
    tree: VesselTree,
    plan: lesions::LesionPlan,
}

/// What writing the fundus photograph of an eye leaves for the manifest and ground truth.
struct FundusOutput {
    frame: ImageFrame,
    lesions: Vec<super::truth::FundusLesion>,
    spacing_um: f64,
}

/// What writing the OCT volume of an eye leaves for the manifest and ground truth.
struct OctOutput {
    file: Option<String>,
    frames: Option<Vec<String>>,
    geometry: OctGeometry,
    volume: oct::OctVolume,
}

/// Renders and writes the images of one eye: the fundus photograph on a second thread while this
/// one renders the OCT volume and en-face image.
fn render_eye(
    spec: &SynthSpec,
    eye: Eye,
    grades: &EyeGrades,
    dir: &Path,
) -> Result<EyeOutput, SynthError> {
    let subject = spec.subject.as_str();
    let visit = spec.visit.as_str();
    let side = eye.as_str();
    let anatomy = Anatomy::generate(
        &mut stream(spec.seed, &[subject, side, "anatomy"]),
        grades.vcdr,
    );
    let tree = VesselTree::generate(
        &anatomy,
        &mut stream(spec.seed, &[subject, side, "vessels"]),
    );
    let plan = lesions::plan(
        &spec.disease,
        grades,
        &anatomy,
        &tree,
        derive(spec.seed, &[subject, side, "lesions"]),
        &mut stream(spec.seed, &[subject, visit, side, "lesion-counts"]),
    );
    let model = EyeModel {
        anatomy,
        tree,
        plan,
    };
    let files = eye_files(eye, spec);
    let (fundus, oct) = std::thread::scope(|scope| {
        let fundus = scope.spawn(|| write_fundus(spec, eye, &model, &files, dir));
        let oct = write_oct(spec, eye, &model, &files, dir);
        let fundus = fundus.join().unwrap_or_else(|_| {
            Err(SynthError::Internal(
                "the fundus rendering thread panicked".to_owned(),
            ))
        });
        (fundus, oct)
    });
    let fundus = fundus?;
    let oct = oct?;

    let label = side.to_ascii_lowercase();
    let fundus_exam = Exam {
        id: format!("fundus-{label}"),
        kind: ExamKind::Fundus,
        eye: Some(eye),
        file: Some(files.fundus.clone()),
        frames: None,
        enface: None,
        pixel_spacing_um: Some(fundus.spacing_um),
        oct: None,
        values: None,
        device: None,
    };
    let oct_exam = Exam {
        id: format!("oct-{label}"),
        kind: ExamKind::Oct,
        eye: Some(eye),
        file: oct.file,
        frames: oct.frames,
        enface: Some(files.slo.clone()),
        pixel_spacing_um: None,
        oct: Some(oct.geometry),
        values: None,
        device: None,
    };
    let fovea = fundus.frame.to_px(RetinaPoint::new(0.0, 0.0));
    let disc = fundus.frame.to_px(model.anatomy.disc_centre);
    let truth = EyeTruth {
        eye,
        grades: grades.clone(),
        fundus_file: files.fundus,
        fundus_pixel_spacing_um: fundus.spacing_um,
        fovea: [round_px(fovea.0), round_px(fovea.1)],
        disc_centre: [round_px(disc.0), round_px(disc.1)],
        disc_radii: [
            round_px(model.anatomy.disc_radius_x / fundus.frame.mm_per_px),
            round_px(model.anatomy.disc_radius_y / fundus.frame.mm_per_px),
        ],
        fundus_lesions: fundus.lesions,
        oct_fovea_bscan: oct.volume.fovea_bscan,
        oct_fovea_x: oct.volume.fovea_x,
        oct_lesions: oct.volume.lesions,
    };
    Ok(EyeOutput {
        fundus_exam,
        oct_exam,
        truth,
    })
}

/// Renders the fundus photograph and writes it as JPEG or DICOM OP.
fn write_fundus(
    spec: &SynthSpec,
    eye: Eye,
    model: &EyeModel,
    files: &EyeFiles,
    dir: &Path,
) -> Result<FundusOutput, SynthError> {
    let (subject, visit, side) = (spec.subject.as_str(), spec.visit.as_str(), eye.as_str());
    let acquisition =
        Acquisition::generate(&mut stream(spec.seed, &[subject, visit, side, "fundus"]));
    let image = fundus::render(
        &model.anatomy,
        &model.tree,
        &model.plan,
        spec.fundus_size,
        eye,
        &acquisition,
    );
    let spacing_um = (image.frame.um_per_px() * 100.0).round() / 100.0;
    let path = dir.join(&files.fundus);
    let size = spec.fundus_size;
    if spec.fundus_as_dicom {
        let identity = DicomIdentity::derive(spec.seed, subject, visit, "fundus", eye);
        write_dicom(
            op_object(&identity, size, size, &image.rgb, Some(spacing_um / 1000.0))?,
            &path,
        )?;
    } else {
        write_file(&path, &jpeg_rgb(&image.rgb, size, size)?)?;
    }
    Ok(FundusOutput {
        frame: image.frame,
        lesions: image.lesions,
        spacing_um,
    })
}

/// Renders the OCT volume and en-face image and writes them as PNG frames or DICOM OPT.
fn write_oct(
    spec: &SynthSpec,
    eye: Eye,
    model: &EyeModel,
    files: &EyeFiles,
    dir: &Path,
) -> Result<OctOutput, SynthError> {
    let (subject, visit, side) = (spec.subject.as_str(), spec.visit.as_str(), eye.as_str());
    let mut fixation = stream(spec.seed, &[subject, visit, side, "fixation"]);
    let pattern = ScanPattern {
        eye,
        frames: spec.oct_frames,
        centre: RetinaPoint::new(uniform(&mut fixation, -0.12, 0.12), 0.0),
    };
    let oct_model = OctModel::generate(&mut stream(spec.seed, &[subject, visit, side, "oct"]));
    let volume = oct::render(
        &model.plan,
        &pattern,
        &oct_model,
        &oct::shadow_map(&model.tree, &pattern),
    );
    let slo_frame = ImageFrame::slo(eye);
    let enface = slo::render(
        &model.anatomy,
        &model.tree,
        &model.plan,
        &slo_frame,
        &mut stream(spec.seed, &[subject, visit, side, "slo"]),
    );
    write_file(
        &dir.join(&files.slo),
        &png_gray(&enface.pixels, slo_frame.width, slo_frame.height)?,
    )?;
    let geometry = OctGeometry {
        lateral_um: Some(round_px(pattern.lateral_um())),
        axial_um: Some(AXIAL_UM),
        bscan_spacing_um: Some(round_px(pattern.bscan_spacing_um())),
        enface_scan_rect: Some(pattern.enface_rect(&slo_frame)),
    };
    if spec.oct_as_dicom {
        let name = format!("{}.dcm", files.oct);
        let identity = DicomIdentity::derive(spec.seed, subject, visit, "oct", eye);
        let object = opt_object(
            &identity,
            BSCAN_WIDTH,
            BSCAN_DEPTH,
            &volume.frames,
            (AXIAL_UM / 1000.0, pattern.lateral_um() / 1000.0),
            pattern.bscan_spacing_um() / 1000.0,
        )?;
        write_dicom(object, &dir.join(&name))?;
        return Ok(OctOutput {
            file: Some(name),
            frames: None,
            geometry,
            volume,
        });
    }
    create_dir(&dir.join(&files.oct))?;
    let mut names = Vec::with_capacity(volume.frames.len());
    for (index, frame) in volume.frames.iter().enumerate() {
        let name = format!("{}/{index:03}.png", files.oct);
        write_file(
            &dir.join(&name),
            &png_gray(frame, BSCAN_WIDTH, BSCAN_DEPTH)?,
        )?;
        names.push(name);
    }
    Ok(OctOutput {
        file: None,
        frames: Some(names),
        geometry,
        volume,
    })
}

/// A varied, realistic demo cohort of `n_subjects` subjects `S0001`, `S0002`…, one spec per visit.
///
/// The first eight subjects cover: normal; mild NPDR; moderate NPDR with DME progressing to severe
/// at `V2`; intermediate AMD; a glaucoma suspect seen twice; severe NPDR; neovascular AMD;
/// proliferative DR with DME. Further subjects repeat the cycle with new parameters. Formats are
/// mixed (JPEG/PNG and DICOM OP/OPT) and sizes keep a demo of about eight cases to a few seconds
/// in a release build.
pub fn demo_cohort(seed: u64, n_subjects: usize) -> Vec<SynthSpec> {
    let mut specs = Vec::new();
    for index in 0..n_subjects {
        let subject = format!("S{:04}", index + 1);
        let mut rng = stream(seed, &["demo", &subject]);
        let mut spec = SynthSpec::new(derive(seed, &["demo-seed", &subject]), &subject);
        // 1280 pixels keep the spacing (10.8 µm) within a 45° camera's range while rendering fast.
        spec.fundus_size = 1280;
        spec.oct_frames = 25;
        let round = |value: f64| (value * 100.0).round() / 100.0;
        let mut second_visit: Option<Disease> = None;
        match index % 8 {
            0 => spec.disease = Disease::Normal,
            1 => {
                spec.disease = Disease::DiabeticRetinopathy {
                    icdr_level: 1,
                    dme: false,
                };
            }
            2 => {
                spec.disease = Disease::DiabeticRetinopathy {
                    icdr_level: 2,
                    dme: true,
                };
                spec.oct_as_dicom = true;
                second_visit = Some(Disease::DiabeticRetinopathy {
                    icdr_level: 3,
                    dme: true,
                });
            }
            3 => {
                spec.disease = Disease::Amd { areds_category: 3 };
                spec.fundus_as_dicom = true;
                spec.oct_frames = 49;
            }
            4 => {
                let vcdr = round(uniform(&mut rng, 0.68, 0.85));
                spec.disease = Disease::Glaucoma { vcdr };
                second_visit = Some(Disease::Glaucoma {
                    vcdr: round((vcdr + 0.03).min(0.95)),
                });
            }
            5 => {
                spec.disease = Disease::DiabeticRetinopathy {
                    icdr_level: 3,
                    dme: false,
                }
            }
            6 => {
                spec.disease = Disease::Amd { areds_category: 4 };
                spec.oct_as_dicom = true;
                spec.oct_frames = 49;
            }
            _ => {
                spec.disease = Disease::DiabeticRetinopathy {
                    icdr_level: 4,
                    dme: true,
                };
                spec.fundus_as_dicom = true;
                spec.oct_as_dicom = true;
            }
        }
        specs.push(spec.clone());
        if let Some(disease) = second_visit {
            let mut follow_up = spec;
            follow_up.visit = "V2".to_owned();
            follow_up.prior_visit = Some("V1".to_owned());
            follow_up.disease = disease;
            specs.push(follow_up);
        }
    }
    specs
}
