//! readroom server: configuration, database, ingest pipeline, HTTP API and the command-line program.
//!
//! - [`config`]: defaults → TOML file → `READROOM_*` environment.
//! - [`db`]: the SQLite/PostgreSQL data layer.
//! - [`ingest`]: bundle → gate → pack → age encrypt → object store → database.
//! - [`http`]: the axum router ([`http::app`]) and its handlers.
//! - [`auth`]: sessions, passwords, TOTP, OIDC, one-time links; [`access`]: who may do what.
//! - [`audit`]: the tamper-evident audit log (recorder, checkpoints, verification);
//!   [`audit_cmd`]: `readroom audit verify|export|checkpoint`.
//! - [`grading`]: forms, drafts, grades, adjudication, batches, statistics and exports (the
//!   HTTP routes for them are not built yet).
//! - [`workers`]: the worker pool (placement, per-user limit, ending sessions, what workers
//!   report, revalidation of open streams); [`workers::embedded`] is the in-process worker.
//! - [`forensics_cmd`]: `readroom grade verify` and the owner lookup of `watermark decode`.
//! - [`cli`]: the `readroom` command line; [`private_fs`]: owner-only data directory and
//!   database files.
//!
//! **Invariant:** nothing in this crate decrypts. It holds age *recipients* only; the
//! identity-holding code lives in `readroom-worker`, an optional dependency (feature
//! `embedded-worker`, on by default) used only by [`workers::embedded`] and the worker
//! commands of [`cli`]. Built with `--no-default-features` the server has no decryptor, no
//! webrtc, openh264 or libvpx in its dependency graph (`scripts/test` checks `cargo tree`), and
//! `server/clippy.toml` forbids the identity and decryptor types everywhere in this crate.
pub mod access;
pub mod accounts;
pub mod audit;
pub mod audit_cmd;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod forensics_cmd;
pub mod grading;
pub mod http;
pub mod ingest;
pub mod listen;
pub mod logging;
pub mod observability;
pub mod private_fs;
pub mod serve;
pub mod state;
pub mod store;
pub mod streams;
pub mod worker_cmd;
pub mod workers;
