//! Ground truth of a synthetic bundle: the grades and every drawn lesion, with positions.
//!
//! Positions are in the pixel coordinates of the image the lesion was drawn into, with pixel
//! centres on integers (pixel `(column, row)` is at `x = column`, `y = row`).
//! The ground truth is never written into the bundle; [`super::write_bundle_dir`] returns it.

use std::collections::BTreeMap;

use readroom_domain::manifest::Eye;
use serde::{Deserialize, Serialize};

use super::disease::{Disease, EyeGrades};

/// The type of a simulated lesion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LesionKind {
    /// A tiny round red dot (capillary outpouching), 25–60 µm across.
    Microaneurysm,
    /// A dot or blot intraretinal hemorrhage.
    Hemorrhage,
    /// A waxy yellow lipid deposit; exudates come in clusters or rings.
    HardExudate,
    /// A fluffy white nerve-fibre-layer infarct.
    CottonWoolSpot,
    /// A tuft of new vessels on the disc or elsewhere (proliferative diabetic retinopathy).
    Neovascularization,
    /// A pale yellow sub-RPE deposit near the macula (AMD); an RPE elevation on OCT.
    Drusen,
    /// A dark pigment clump (AMD).
    Hyperpigmentation,
    /// A large dark-red hemorrhage under the retina near the fovea (neovascular AMD).
    SubretinalHemorrhage,
    /// An intraretinal fluid cyst on OCT (macular edema).
    IntraretinalFluid,
    /// Subretinal fluid on OCT: the neurosensory retina detached from the RPE (neovascular AMD).
    SubretinalFluid,
}

/// A lesion in the fundus photograph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FundusLesion {
    /// Lesion type.
    pub kind: LesionKind,
    /// Column of the lesion centre, in fundus pixels.
    pub x: f64,
    /// Row of the lesion centre, in fundus pixels.
    pub y: f64,
    /// Radius enclosing the lesion, in fundus pixels.
    pub radius: f64,
}

/// A lesion in the OCT volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OctLesion {
    /// Lesion type.
    pub kind: LesionKind,
    /// Index of the B-scan through the lesion's centre (0 is the top of the en-face image).
    pub bscan: u32,
    /// First B-scan index in which the lesion is drawn.
    pub first_bscan: u32,
    /// Last B-scan index in which the lesion is drawn.
    pub last_bscan: u32,
    /// Leftmost column of the lesion on B-scan [`Self::bscan`].
    pub x_min: f64,
    /// Rightmost column of the lesion on B-scan [`Self::bscan`].
    pub x_max: f64,
    /// Topmost row of the lesion on B-scan [`Self::bscan`], at its centre column.
    pub top: f64,
    /// Bottom row of the lesion on B-scan [`Self::bscan`], at its centre column.
    pub bottom: f64,
}

/// Landmarks and lesions of one eye.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EyeTruth {
    /// Which eye.
    pub eye: Eye,
    /// The grades this eye was drawn with.
    pub grades: EyeGrades,
    /// Bundle path of the fundus photograph.
    pub fundus_file: String,
    /// Fundus pixel spacing in micrometres.
    pub fundus_pixel_spacing_um: f64,
    /// Fovea centre in fundus pixels, `[x, y]`.
    pub fovea: [f64; 2],
    /// Optic disc centre in fundus pixels, `[x, y]`.
    pub disc_centre: [f64; 2],
    /// Optic disc horizontal and vertical radii in fundus pixels, `[rx, ry]`.
    pub disc_radii: [f64; 2],
    /// Every lesion drawn into the fundus photograph.
    pub fundus_lesions: Vec<FundusLesion>,
    /// Index of the B-scan through the fovea.
    pub oct_fovea_bscan: u32,
    /// Column of the fovea on that B-scan.
    pub oct_fovea_x: f64,
    /// Every lesion drawn into at least one B-scan.
    pub oct_lesions: Vec<OctLesion>,
}

/// The ground truth of one synthetic bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Study code, as in the manifest.
    pub study: String,
    /// Pseudonymous subject, as in the manifest.
    pub subject: String,
    /// Visit label, as in the manifest.
    pub visit: String,
    /// The disease the bundle simulates.
    pub disease: Disease,
    /// One entry per eye, in the order of the spec.
    pub eyes: Vec<EyeTruth>,
    /// The measurement values written into the manifest.
    pub measurements: BTreeMap<String, f64>,
}

impl GroundTruth {
    /// The truth for `eye`, if the bundle has that eye.
    pub fn eye(&self, eye: Eye) -> Option<&EyeTruth> {
        self.eyes.iter().find(|truth| truth.eye == eye)
    }
}

/// Rounds a pixel coordinate to 1/100 pixel, so ground-truth JSON stays readable.
pub(crate) fn round_px(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use readroom_domain::grading::records::{
        Assignment, AssignmentKind, AssignmentRole, AssignmentStatus, Grade, StudyRecords,
    };
    use readroom_domain::grading::{presets, truth};
    use serde_json::json;
    use time::OffsetDateTime;
    use uuid::Uuid;

    /// The ground truth the synthesizer writes is what the grading analytics read: a grade
    /// that matches it agrees, and the answer has the documented shape.
    #[test]
    fn the_analytics_read_the_ground_truth_the_synthesizer_writes() {
        let eye = |eye, icdr_level, dme| EyeTruth {
            eye,
            grades: EyeGrades {
                icdr_level,
                dme,
                areds_category: 1,
                vcdr: 0.35,
            },
            fundus_file: "fundus.jpg".into(),
            fundus_pixel_spacing_um: 10.0,
            fovea: [0.0, 0.0],
            disc_centre: [0.0, 0.0],
            disc_radii: [1.0, 1.0],
            fundus_lesions: Vec::new(),
            oct_fovea_bscan: 0,
            oct_fovea_x: 0.0,
            oct_lesions: Vec::new(),
        };
        let ground_truth = GroundTruth {
            study: "DEMO".into(),
            subject: "S000001".into(),
            visit: "V1".into(),
            disease: Disease::DiabeticRetinopathy {
                icdr_level: 2,
                dme: true,
            },
            eyes: vec![eye(Eye::Od, 2, true), eye(Eye::Os, 1, false)],
            measurements: Default::default(),
        };
        let (case, grader) = (Uuid::from_u128(1), Uuid::from_u128(0xA));
        let at = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let assignment = Assignment {
            id: Uuid::from_u128(2),
            case_id: case,
            user_id: grader,
            role: AssignmentRole::Grader,
            assigned_at: at,
            due_at: None,
            status: AssignmentStatus::Done,
            batch_id: None,
            kind: AssignmentKind::Primary,
        };
        let values = json!({
            "gradable": { "OD": "gradable", "OS": "gradable" },
            "dr_grade": { "OD": 2, "OS": 1 },
            "dme": { "OD": "non_centre_involving", "OS": "none" },
            "areds_category": { "OD": 1, "OS": 1 },
            "vcdr": { "OD": 0.4, "OS": 0.35 },
        });
        let grade = Grade {
            id: Uuid::from_u128(3),
            assignment_id: assignment.id,
            case_id: case,
            grader_id: grader,
            form_id: Uuid::nil(),
            version: 1,
            values: values.as_object().unwrap().clone(),
            render_state: None,
            lossless_sha256: None,
            reason: None,
            duration_ms: None,
            submitted_at: at,
        };
        let records = StudyRecords {
            study: "DEMO".into(),
            assignments: vec![assignment],
            grades: vec![grade],
            ..StudyRecords::default()
        };
        let truths = [(case, serde_json::to_value(&ground_truth).unwrap())].into();
        let result = truth::truth_agreement(&records, &presets::demo(), &truths);
        assert_eq!(result.len(), 2 * 8, "A and final × 4 fields × 2 eyes");
        let row = |column: &str| {
            result
                .iter()
                .find(|r| r.grader == grader.to_string() && r.column == column)
                .unwrap_or_else(|| panic!("no row for {column}"))
        };
        assert!((row("vcdr_od").mean_difference.unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(
            serde_json::to_value(row("dr_grade_od")).unwrap(),
            json!({
                "grader": grader.to_string(), "column": "dr_grade_od", "field": "dr_grade",
                "eye": "OD", "kind": "ordinal", "truth": "icdr_level", "n": 1,
                "percent_agreement": 100.0, "kappa": null, "quadratic_kappa": null,
                "referable": { "true_positive": 1, "false_positive": 0, "false_negative": 0,
                               "true_negative": 0, "sensitivity": 1.0, "specificity": null },
                "mean_abs_error": null, "mean_difference": null
            })
        );
    }
}
