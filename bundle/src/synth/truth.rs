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
