//! Deterministic synthetic exam bundles for demos, tests and grader scoring.
//!
//! Everything here is generated from a `u64` seed with a ChaCha8 random stream, so the same
//! [`SynthSpec`] always produces the same bytes in every file.
//! The simulated lesions are returned as [`GroundTruth`], the reference later used to score graders,
//! so each lesion carries its position in the image it was drawn into.
//!
//! The pipeline is model first, pixels second:
//! an eye's anatomy (optic disc, fovea, vessel tree, all in millimetres on the retina) and its lesions
//! are generated once, then rendered into each modality through an [`geometry::ImageFrame`] that maps
//! retina millimetres to image pixels.
//! That keeps the fundus photograph, the OCT B-scans and the en-face image of one eye consistent:
//! the same vessels cast shadows in the B-scans, and drusen seen in the photograph lift the RPE.
//!
//! - [`bundle`]: [`SynthSpec`], [`write_bundle_dir`] and [`demo_cohort`], the entry points.
//! - [`disease`]: the simulated [`Disease`] and the per-eye [`EyeGrades`] it implies.
//! - [`geometry`]: retina millimetres, the [`geometry::Anatomy`] of an eye, image frames.
//! - [`vessels`]: the vessel tree, grown from the disc and rasterized per image.
//! - [`lesions`]: where lesions and fluid go, planned on the retina before any pixel is drawn.
//! - [`fundus`], [`oct`], [`slo`]: the renderers; [`dicom`] writes OP and OPT objects (and, for
//!   de-identification tests, objects with planted identity).
//! - [`measurements`]: IOP, visual acuity and axial length consistent with the disease.
//! - [`truth`]: the [`GroundTruth`] returned for scoring.
//! - [`retina`]: bundles built around a real public-domain fundus photograph.
//!
//! Anatomy is seeded from the seed, subject and eye only, so two visits of one subject show the same
//! eye; acquisition noise is seeded from the visit as well.

pub mod bundle;
pub mod dicom;
pub mod disease;
mod encode;
mod error;
pub mod fundus;
pub mod geometry;
pub mod lesions;
pub mod measurements;
mod noise;
pub mod oct;
pub mod retina;
mod rng;
pub mod slo;
pub mod truth;
pub mod vessels;

#[cfg(test)]
mod tests;

pub use bundle::{SynthSpec, demo_cohort, write_bundle_dir};
pub use disease::{Disease, EyeGrades};
pub use error::SynthError;
pub use retina::write_retina_bundle;
pub use truth::{EyeTruth, FundusLesion, GroundTruth, LesionKind, OctLesion};
