//! readroom's end-to-end tests, one module per file beside this one, built as one test binary
//! (`cargo test -p readroom-tests --test e2e [module::test]`): one link and one copy of the
//! shared code instead of one per file, about two minutes of CPU time on every cold build. The
//! tests of all modules share the harness's threads (`--test-threads`, default one per core),
//! as the tests of one file did before.

#[path = "support/cluster.rs"]
mod cluster_harness;
// Its macros (`on_both_backends!` …) are used by the modules below.
#[macro_use]
mod support;

mod at_rest;
mod audit;
mod auth;
mod authz_matrix;
mod bad_input;
mod browser_audit;
mod browser_grading;
mod browser_signin;
mod cluster;
mod connections;
mod db;
mod grading;
mod ice_reflection;
mod ingest;
mod oidc;
mod s3_store;
mod stream_latency;
mod stream_netns;
mod streaming;
mod turn;
mod workers;
