//! Test harness for readroom: starts real components on loopback and stops them.
//!
//! - [`s3s`]: an `s3s-fs` S3 server on `127.0.0.1:<ephemeral>` over a temporary directory.
//! - [`coturn`]: Debian's coturn TURN relay on loopback with a random REST API shared secret.
//! - [`oidc`]: a real OpenID Provider (npm `oidc-provider`) with static users.
//! - [`browser`]: headless Chromium driven by a Node playwright-core script from `tests/js/`.
//! - [`lines`]: reading a child process's output line by line, with a bounded tail.
//! - [`report`]: writing one benchmark's section of `BENCHMARKS.md`.
//! - [`pg`]: a fresh, uniquely named PostgreSQL database on the machine's server, dropped afterwards.
//!
//! Nothing here is a mock: the tests talk to the same servers a deployment would.

pub mod browser;
pub mod coturn;
pub mod lines;
pub mod oidc;
pub mod pg;
pub mod report;
pub mod s3s;
