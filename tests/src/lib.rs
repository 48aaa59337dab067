//! Test harness for readroom: starts real components on loopback and stops them.
//!
//! - [`s3s`]: an `s3s-fs` S3 server on `127.0.0.1:<ephemeral>` over a temporary directory.
//! - [`coturn`]: Debian's coturn TURN relay on loopback with a random REST API shared secret.
//! - [`oidc`]: a real OpenID Provider (npm `oidc-provider`) with static users.
//! - [`browser`]: headless Chromium driven by a Node playwright-core script from `tests/js/`.
//! - [`lines`]: reading a child process's output line by line, with a bounded tail.
//! - [`report`]: writing one benchmark's section of `BENCHMARKS.md`.
//! - [`pg`]: a fresh, uniquely named PostgreSQL database on the machine's server, dropped afterwards.
//! - [`tls`]: a TLS front (a private CA's certificate for `127.0.0.1`) for a plain-TCP server.
//!
//! - [`readroom_binary`]: the `readroom` binary of this build, for tests that run its commands.
//!
//! Nothing here is a mock: the tests talk to the same servers a deployment would.

pub mod browser;
pub mod coturn;
pub mod images;
pub mod lines;
pub mod oidc;
pub mod pg;
pub mod report;
pub mod s3s;
pub mod tls;

/// The `readroom` binary of this build: `cargo test --workspace` builds it beside the test
/// binaries (for `server/tests/cli.rs`), in `target/<profile>/`.
pub fn readroom_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join("readroom");
    assert!(
        binary.is_file(),
        "{} is missing: run this test with `cargo test --workspace`, which builds it",
        binary.display()
    );
    binary
}
