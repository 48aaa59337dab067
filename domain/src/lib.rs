//! Pure domain logic of readroom, free of I/O.
//!
//! - [`manifest`]: the exam bundle manifest (`readroom-bundle/1`), its serde types and validation.
//! - [`deid`]: de-identification rules applied to strings and metadata extracted from bundle files.
//! - [`limits`]: bounds on bundle sizes and image dimensions that the ingest gate enforces.
//! - [`ticket`]: the signed, short-lived streaming ticket the server mints and workers verify.
//! - [`view`]: the view state a worker renders and the changes a viewer asks for.
//! - [`protocol`]: the `control` data channel messages between viewer and worker.
//! - [`audit`]: the tamper-evident audit chain, its verification and signed checkpoints.
//! - [`grading`]: grading forms as data, grade validation, presets, disagreement rules, and the
//!   analytics of graded studies (progress, kappa, accuracy against ground truth, exports).
//! - [`roles`]: the roles a user can hold.
//! - [`names`]: enumerations stored and sent as lower-case names.
//! - [`agreement`]: Cohen's kappa and weighted kappa.
//! - [`assignment`]: planning who grades which case (N per case, balanced, repeats).
//! - [`workers`]: the server ↔ worker protocol (sessions, heartbeats, events, reports).
//! - [`control_auth`]: signing and checking the requests of that protocol.
//! - [`placement`]: which worker a new session goes to.
//! - [`stream_config`]: the `[stream]` settings servers and workers share.
//! - [`key_file`]: who may read a secret key file (PostgreSQL's rule for its server key).
//!
//! Nothing here opens files or sockets; the `readroom-bundle` crate feeds these rules with what it
//! reads, so the rules are unit-tested on plain values.
#![deny(missing_docs)]

pub mod agreement;
pub mod assignment;
pub mod audit;
pub mod control_auth;
pub mod deid;
pub mod dicom;
pub mod grading;
pub mod key_file;
pub mod limits;
pub mod manifest;
pub mod names;
pub mod placement;
pub mod protocol;
pub mod roles;
pub mod stream_config;
pub mod ticket;
pub mod view;
pub mod workers;
