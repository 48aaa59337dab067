//! Clinical measurements that come with a bundle: intraocular pressure, visual acuity and
//! (for some subjects) axial length, consistent with the simulated disease.
//!
//! Values are rounded the way clinics record them: IOP to whole mmHg, acuity to one ETDRS letter
//! (0.02 logMAR), axial length to 0.01 mm.

use std::collections::BTreeMap;

use readroom_domain::manifest::{Exam, ExamKind, Eye, MeasurementValue};

use super::disease::{Disease, EyeGrades};
use super::rng::{SynthRng, chance, normal};

/// The measurements of one visit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measurements {
    /// Intraocular pressure per eye, in mmHg.
    pub iop_mmhg: Vec<(Eye, f64)>,
    /// Best-corrected visual acuity per eye, in logMAR (0 is 20/20; higher is worse).
    pub va_logmar: Vec<(Eye, f64)>,
    /// Axial length per eye in millimetres, when biometry was done.
    pub axial_length_mm: Vec<(Eye, f64)>,
}

/// The manifest key of a per-eye value, e.g. `iop_od_mmhg`.
fn key(prefix: &str, eye: Eye, unit: &str) -> String {
    format!("{prefix}_{}_{unit}", eye.as_str().to_ascii_lowercase())
}

impl Measurements {
    /// Draws the measurements of the eyes in `grades` for a subject with `disease`.
    ///
    /// `subject_rng` must be the same stream at every visit (axial length does not change);
    /// `visit_rng` is the visit's own stream.
    pub fn generate(
        disease: &Disease,
        grades: &[(Eye, EyeGrades)],
        subject_rng: &mut SynthRng,
        visit_rng: &mut SynthRng,
    ) -> Measurements {
        let has_biometry = chance(subject_rng, 0.5);
        let axial_base = 24.0 + 1.1 * normal(subject_rng);
        let mut measurements = Measurements::default();
        for (eye, eye_grades) in grades {
            let iop = match disease {
                Disease::Glaucoma { .. } => {
                    21.0 + (eye_grades.vcdr - 0.6) * 20.0 + 2.0 * normal(visit_rng)
                }
                _ => 15.5 + 2.5 * normal(visit_rng),
            };
            let iop_range = match disease {
                Disease::Glaucoma { .. } => (18.0, 30.0),
                _ => (10.0, 21.0),
            };
            measurements
                .iop_mmhg
                .push((*eye, iop.clamp(iop_range.0, iop_range.1).round()));
            let loss = match disease {
                Disease::Normal => 0.0,
                Disease::DiabeticRetinopathy { icdr_level, dme } => {
                    [0.0, 0.02, 0.06, 0.14, 0.3][usize::from((*icdr_level).min(4))]
                        + if *dme { 0.3 } else { 0.0 }
                }
                Disease::Amd { areds_category } => {
                    [0.0, 0.0, 0.04, 0.14, 0.6][usize::from((*areds_category).min(4))]
                }
                Disease::Glaucoma { .. } => 0.04,
            };
            let acuity = (0.02 + 0.06 * normal(visit_rng)).clamp(-0.1, 0.2)
                + loss * (1.0 + 0.3 * normal(visit_rng)).max(0.3);
            let letters = (acuity.clamp(-0.3, 1.3) * 50.0).round();
            measurements.va_logmar.push((*eye, letters / 50.0));
            if has_biometry {
                let length = axial_base + 0.15 * normal(subject_rng);
                measurements
                    .axial_length_mm
                    .push((*eye, (length.clamp(21.0, 28.0) * 100.0).round() / 100.0));
            }
        }
        measurements
    }

    /// Every value keyed as in the manifest.
    pub fn values(&self) -> BTreeMap<String, f64> {
        let mut values = BTreeMap::new();
        for (eye, value) in &self.iop_mmhg {
            values.insert(key("iop", *eye, "mmhg"), *value);
        }
        for (eye, value) in &self.va_logmar {
            values.insert(key("va", *eye, "logmar"), *value);
        }
        for (eye, value) in &self.axial_length_mm {
            values.insert(key("axial_length", *eye, "mm"), *value);
        }
        values
    }

    /// The measurement exams of the manifest: `iop`, `va` and, with biometry, `biometry`.
    pub fn exams(&self) -> Vec<Exam> {
        let exam = |id: &str, entries: &[(Eye, f64)], prefix: &str, unit: &str| Exam {
            id: id.to_owned(),
            kind: ExamKind::Measurement,
            eye: None,
            file: None,
            frames: None,
            enface: None,
            pixel_spacing_um: None,
            oct: None,
            values: Some(
                entries
                    .iter()
                    .map(|(eye, value)| (key(prefix, *eye, unit), MeasurementValue::Number(*value)))
                    .collect(),
            ),
            device: None,
        };
        let mut exams = Vec::new();
        if !self.iop_mmhg.is_empty() {
            exams.push(exam("iop", &self.iop_mmhg, "iop", "mmhg"));
        }
        if !self.va_logmar.is_empty() {
            exams.push(exam("va", &self.va_logmar, "va", "logmar"));
        }
        if !self.axial_length_mm.is_empty() {
            exams.push(exam(
                "biometry",
                &self.axial_length_mm,
                "axial_length",
                "mm",
            ));
        }
        exams
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::rng::stream;

    fn grades(vcdr: f64) -> Vec<(Eye, EyeGrades)> {
        [Eye::Od, Eye::Os]
            .into_iter()
            .map(|eye| {
                (
                    eye,
                    EyeGrades {
                        icdr_level: 0,
                        dme: false,
                        areds_category: 1,
                        vcdr,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn values_are_plausible_and_follow_the_disease() {
        for seed in 0..20 {
            let normal = Measurements::generate(
                &Disease::Normal,
                &grades(0.3),
                &mut stream(seed, &["s"]),
                &mut stream(seed, &["v"]),
            );
            let glaucoma = Measurements::generate(
                &Disease::Glaucoma { vcdr: 0.85 },
                &grades(0.85),
                &mut stream(seed, &["s"]),
                &mut stream(seed, &["v"]),
            );
            for (_, iop) in &normal.iop_mmhg {
                assert!((10.0..=21.0).contains(iop) && iop.fract() == 0.0);
            }
            for (_, iop) in &glaucoma.iop_mmhg {
                assert!((18.0..=30.0).contains(iop));
            }
            for (_, acuity) in &normal.va_logmar {
                assert!((-0.1..=0.2).contains(acuity), "{acuity}");
            }
        }
        let wet = Measurements::generate(
            &Disease::Amd { areds_category: 4 },
            &grades(0.3),
            &mut stream(1, &["s"]),
            &mut stream(1, &["v"]),
        );
        assert!(wet.va_logmar.iter().all(|(_, acuity)| *acuity >= 0.3));
    }

    #[test]
    fn exams_carry_per_eye_keys() {
        let measurements = Measurements {
            iop_mmhg: vec![(Eye::Od, 15.0), (Eye::Os, 16.0)],
            va_logmar: vec![(Eye::Od, 0.1)],
            axial_length_mm: Vec::new(),
        };
        let exams = measurements.exams();
        assert_eq!(exams.len(), 2);
        let iop = exams[0].values.as_ref().map(|values| values.len());
        assert_eq!(iop, Some(2));
        assert!(measurements.values().contains_key("iop_os_mmhg"));
        assert!(measurements.values().contains_key("va_od_logmar"));
    }
}
