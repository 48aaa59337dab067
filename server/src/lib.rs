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
//! - [`cli`]: the `readroom` command line; [`private_fs`]: owner-only data directory and
//!   database files.
//!
//! **Invariant:** nothing in this crate's library decrypts. It holds age *recipients* only; the
//! identity-holding code lives in `readroom-worker`, which the binary links for embedded mode.
pub mod access;
pub mod accounts;
pub mod audit;
pub mod audit_cmd;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod grading;
pub mod http;
pub mod ingest;
pub mod logging;
pub mod private_fs;
pub mod serve;
pub mod state;
pub mod store;
pub mod streams;
