//! The simulated disease of a subject and the per-eye grades it implies.
//!
//! Grades use the scales graders use: the International Clinical Diabetic Retinopathy (ICDR)
//! severity level, presence of diabetic macular edema (DME), the simplified AREDS category for
//! age-related macular degeneration, and the vertical cup-to-disc ratio (VCDR) for glaucoma.
//! Every eye gets every grade, so scoring never has to ask which grades apply.

use readroom_domain::manifest::Eye;
use serde::{Deserialize, Serialize};

use super::SynthError;
use super::rng::{SynthRng, uniform};

/// What a synthetic subject has; both eyes show it (with per-eye variation in lesion placement).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Disease {
    /// A healthy eye.
    Normal,
    /// Diabetic retinopathy.
    DiabeticRetinopathy {
        /// ICDR level: 0 none, 1 mild NPDR (microaneurysms only), 2 moderate NPDR, 3 severe NPDR
        /// (more than 20 hemorrhages in each quadrant), 4 proliferative (neovascularization).
        icdr_level: u8,
        /// Diabetic macular edema: exudates near the fovea and intraretinal fluid on OCT.
        dme: bool,
    },
    /// Age-related macular degeneration.
    Amd {
        /// Simplified AREDS category: 1 none or few small drusen, 2 early (many small or a few
        /// intermediate drusen), 3 intermediate (extensive intermediate or any large drusen),
        /// 4 advanced neovascular (subretinal hemorrhage and fluid).
        areds_category: u8,
    },
    /// Glaucoma (suspect): an enlarged optic cup and raised intraocular pressure.
    Glaucoma {
        /// Vertical cup-to-disc ratio of the worse eye, 0.1 to 0.95.
        vcdr: f64,
    },
}

impl Disease {
    /// Checks the parameters are in range.
    pub fn validate(&self) -> Result<(), SynthError> {
        match *self {
            Disease::Normal => Ok(()),
            Disease::DiabeticRetinopathy { icdr_level, .. } if icdr_level > 4 => Err(
                SynthError::InvalidSpec(format!("ICDR level {icdr_level} is not in 0..=4")),
            ),
            Disease::DiabeticRetinopathy { .. } => Ok(()),
            Disease::Amd { areds_category } if !(1..=4).contains(&areds_category) => Err(
                SynthError::InvalidSpec(format!("AREDS category {areds_category} is not in 1..=4")),
            ),
            Disease::Amd { .. } => Ok(()),
            Disease::Glaucoma { vcdr } if !(0.1..=0.95).contains(&vcdr) => Err(
                SynthError::InvalidSpec(format!("VCDR {vcdr} is not in 0.1..=0.95")),
            ),
            Disease::Glaucoma { .. } => Ok(()),
        }
    }

    /// A short label for logs and demo listings, e.g. `dr-2-dme`.
    pub fn label(&self) -> String {
        match *self {
            Disease::Normal => "normal".to_owned(),
            Disease::DiabeticRetinopathy { icdr_level, dme } => {
                format!("dr-{icdr_level}{}", if dme { "-dme" } else { "" })
            }
            Disease::Amd { areds_category } => format!("amd-{areds_category}"),
            Disease::Glaucoma { vcdr } => format!("glaucoma-{vcdr:.2}"),
        }
    }
}

/// The ground-truth grades of one eye.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EyeGrades {
    /// ICDR diabetic retinopathy level, 0–4 (0 for eyes without diabetic retinopathy).
    pub icdr_level: u8,
    /// Whether diabetic macular edema is present.
    pub dme: bool,
    /// Simplified AREDS category, 1–4 (1 for eyes without AMD).
    pub areds_category: u8,
    /// Vertical cup-to-disc ratio, as drawn, rounded to 0.01.
    pub vcdr: f64,
}

/// Rounds to two decimals, so grades read cleanly in JSON.
fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The grades of `eye`.
///
/// `base_vcdr` is the subject's normal cup-to-disc ratio, shared by both eyes so the fellow eye's cup
/// is similar; `eye_rng` is the eye's own stream.
pub fn grades_for(
    disease: &Disease,
    eye: Eye,
    base_vcdr: f64,
    eye_rng: &mut SynthRng,
) -> EyeGrades {
    let jitter = uniform(eye_rng, -0.04, 0.04);
    match *disease {
        Disease::Normal => EyeGrades {
            icdr_level: 0,
            dme: false,
            areds_category: 1,
            vcdr: round2(base_vcdr + jitter),
        },
        Disease::DiabeticRetinopathy { icdr_level, dme } => EyeGrades {
            icdr_level,
            dme,
            areds_category: 1,
            vcdr: round2(base_vcdr + jitter),
        },
        Disease::Amd { areds_category } => EyeGrades {
            icdr_level: 0,
            dme: false,
            areds_category,
            vcdr: round2(base_vcdr + jitter),
        },
        Disease::Glaucoma { vcdr } => {
            // Glaucoma is often asymmetric: the left eye here is the better one.
            let asymmetry = if eye == Eye::Os {
                uniform(eye_rng, 0.0, 0.1)
            } else {
                0.0
            };
            EyeGrades {
                icdr_level: 0,
                dme: false,
                areds_category: 1,
                vcdr: round2((vcdr - asymmetry).clamp(0.1, 0.95)),
            }
        }
    }
}

/// A normal cup-to-disc ratio for the subject, shared by both eyes.
pub fn normal_vcdr(subject_rng: &mut SynthRng) -> f64 {
    uniform(subject_rng, 0.22, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::rng::stream;

    #[test]
    fn out_of_range_parameters_are_rejected() {
        let bad = [
            Disease::DiabeticRetinopathy {
                icdr_level: 5,
                dme: false,
            },
            Disease::Amd { areds_category: 0 },
            Disease::Amd { areds_category: 5 },
            Disease::Glaucoma { vcdr: 1.2 },
            Disease::Glaucoma { vcdr: f64::NAN },
        ];
        for disease in bad {
            assert!(disease.validate().is_err(), "{disease:?}");
        }
        assert!(Disease::Glaucoma { vcdr: 0.8 }.validate().is_ok());
    }

    #[test]
    fn glaucoma_grades_keep_the_worse_eye_ratio() {
        let disease = Disease::Glaucoma { vcdr: 0.8 };
        let od = grades_for(&disease, Eye::Od, 0.3, &mut stream(1, &["od"]));
        let os = grades_for(&disease, Eye::Os, 0.3, &mut stream(1, &["os"]));
        assert_eq!(od.vcdr, 0.8);
        assert!(os.vcdr <= 0.8 && os.vcdr >= 0.7);
        assert_eq!(od.icdr_level, 0);
        assert_eq!(od.areds_category, 1);
    }

    #[test]
    fn disease_serializes_with_a_type_tag() {
        let disease = Disease::DiabeticRetinopathy {
            icdr_level: 2,
            dme: true,
        };
        let json = serde_json::to_string(&disease).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"type":"diabetic-retinopathy","icdr_level":2,"dme":true}"#
        );
        assert_eq!(disease.label(), "dr-2-dme");
    }
}
