//! Grading: forms as data, validation of grades against them, presets, disagreement rules and
//! the data dictionary of exports.
//!
//! - [`form`]: the form definition (`readroom-form/1`), its parsing, checks and fingerprint.
//! - [`values`]: grade values, validated against a form in draft or submit mode.
//! - [`disagreement`]: adjudication rules and the disagreements between two grades.
//! - [`dictionary`]: export columns of a form and grades flattened into them.
//! - [`presets`]: the forms readroom ships (ICDR, AREDS, VCDR, gradability, other findings, demo).
//! - [`eye`]: laterality of per-eye values (OD/OS).
//! - [`coverage`]: which graded eyes and exams the grader was never shown.
//! - [`records`]: a study's assignments, grades and adjudication rounds as the analytics read them.
//! - [`stats`]: progress and agreement statistics (kappa per field and eye, intra-grader).
//! - [`truth`]: agreement of graders and final grades with a known ground truth.
//! - [`export`]: final grades, versions, adjudications and statistics as CSV and JSON.
//! - [`referrals`]: grades that ask for an urgent referral.
//!
//! The format is documented in `docs/grading-forms.md`.

pub mod coverage;
pub mod dictionary;
pub mod disagreement;
pub mod export;
pub mod eye;
pub mod form;
pub mod presets;
pub mod records;
pub mod referrals;
pub mod stats;
pub mod truth;
pub mod values;

pub use dictionary::{Column, column_name, dictionary, flatten};
pub use disagreement::{Disagreement, DisagreementRule, StatusTerm, disagreements};
pub use eye::Eye;
pub use form::{
    CANNOT_GRADE, ChoiceOption, Condition, FIGURES, FORM_SCHEMA_V1, Field, FieldKind, Form,
    FormError, FormProblem, Level, Text,
};
pub use presets::{PRESETS, preset};
pub use values::{Mode, Problem, ProblemCode, Value, Values, validate};
