//! A real S3 server for tests: the `s3s-fs` binary on `127.0.0.1:<ephemeral>` over a temporary
//! directory, with a random access key and secret per server.
//!
//! [`S3sServer::start`] finds the binary (on `PATH`, then in `~/.cargo/bin`), installs it with
//! `cargo install s3s-fs@0.14.1 --features binary --locked` if it is missing, starts it on port 0,
//! and waits for the `server is running at http://...` line to learn the port.
//! `s3s-fs` prints that line through `tracing` only when `RUST_LOG` enables it, so the harness sets
//! `RUST_LOG=s3s_fs=info` for the child.
//! Two threads keep draining the child's stdout and stderr (so it never blocks on a full pipe) and
//! keep the last lines for error messages.
//! Dropping the server kills the process and deletes the directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::lines::{Tail, each_line};

/// The s3s-fs version the project is tested with (later versions need a newer rustc).
pub const S3S_FS_VERSION: &str = "0.14.1";

/// The region to give clients; s3s-fs accepts any.
pub const REGION: &str = "us-east-1";

/// How long to wait for the server to announce its port.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Output lines kept for error messages.
const KEPT_LINES: usize = 50;

/// The line prefix s3s-fs logs once it listens.
const READY_MARKER: &str = "server is running at ";

/// A running `s3s-fs` server; killed on drop.
pub struct S3sServer {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub endpoint: String,
    /// The access key id the server accepts.
    pub access_key: String,
    /// The secret key the server accepts.
    pub secret_key: String,
    child: Child,
    root: tempfile::TempDir,
    output: Tail,
}

impl S3sServer {
    /// Starts a fresh server over an empty temporary directory.
    pub fn start() -> anyhow::Result<S3sServer> {
        let binary = s3s_fs_binary()?;
        let root = tempfile::Builder::new()
            .prefix("readroom-s3s-")
            .tempdir()
            .context("creating the s3s-fs data directory")?;
        let access_key = format!("rrtest{}", &uuid::Uuid::new_v4().simple().to_string()[..14]);
        let secret_key = uuid::Uuid::new_v4().simple().to_string();
        let mut child = Command::new(&binary)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--access-key",
                &access_key,
                "--secret-key",
                &secret_key,
            ])
            .arg(root.path())
            .env("RUST_LOG", "s3s_fs=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;

        let output = Tail::new(KEPT_LINES);
        let (ready_sender, ready_receiver) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            each_line(stdout, ready_line(output.clone(), ready_sender.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            each_line(stderr, ready_line(output.clone(), ready_sender));
        }

        let mut server = S3sServer {
            endpoint: String::new(),
            access_key,
            secret_key,
            child,
            root,
            output,
        };
        server.endpoint = server.wait_until_ready(&ready_receiver)?;
        Ok(server)
    }

    /// The directory s3s-fs stores buckets (and its own bookkeeping files) in.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// s3s-fs's bookkeeping files of multipart uploads in progress (upload ids, parts, pending
    /// metadata); empty when no upload is open.
    pub fn pending_upload_files(&self) -> anyhow::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.root()).context("listing the s3s-fs directory")? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.contains(".upload") {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The server's recent output, for diagnosing a failing test.
    pub fn recent_output(&self) -> String {
        self.output.joined()
    }

    fn wait_until_ready(
        &mut self,
        ready_receiver: &mpsc::Receiver<String>,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match ready_receiver.recv_timeout(Duration::from_millis(50)) {
                Ok(endpoint) => return Ok(endpoint),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Both pipes closed without the line: the process is gone; try_wait says how.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(50))
                }
            }
            if let Some(status) = self.child.try_wait().context("checking on s3s-fs")? {
                bail!(
                    "s3s-fs exited with {status} before listening; its output:\n{}",
                    self.recent_output()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "s3s-fs did not print {READY_MARKER:?} within {STARTUP_TIMEOUT:?}; its output:\n{}",
                    self.recent_output()
                );
            }
        }
    }
}

impl Drop for S3sServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl std::fmt::Debug for S3sServer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("S3sServer")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("root", &self.root.path())
            .finish_non_exhaustive()
    }
}

/// Keeps each output line and sends the endpoint once the ready line appears.
fn ready_line(output: Tail, ready: mpsc::Sender<String>) -> impl FnMut(String) + Send + 'static {
    move |text| {
        if let Some(position) = text.find(READY_MARKER) {
            let endpoint = text[position + READY_MARKER.len()..].trim().to_owned();
            let _ = ready.send(endpoint);
        }
        output.push(text);
    }
}

/// The path of the `s3s-fs` binary, installing it once per process if needed.
fn s3s_fs_binary() -> anyhow::Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = BINARY.get_or_init(|| find_or_install().map_err(|error| format!("{error:#}")));
    match found {
        Ok(path) => Ok(path.clone()),
        Err(message) => bail!("{message}"),
    }
}

fn find_or_install() -> anyhow::Result<PathBuf> {
    if let Some(path) = find_binary() {
        return Ok(path);
    }
    println!(
        "s3s-fs not found on PATH or in ~/.cargo/bin; installing it with `cargo install s3s-fs@{S3S_FS_VERSION} --features binary --locked` (takes a few minutes)"
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "install",
            &format!("s3s-fs@{S3S_FS_VERSION}"),
            "--features",
            "binary",
            "--locked",
        ])
        .status()
        .context("running cargo install s3s-fs")?;
    if !status.success() {
        bail!(
            "`cargo install s3s-fs@{S3S_FS_VERSION} --features binary --locked` failed with {status}"
        );
    }
    find_binary().context("cargo install s3s-fs succeeded but the s3s-fs binary is still not on PATH or in ~/.cargo/bin")
}

fn find_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("s3s-fs"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let in_cargo_home = cargo_home.map(|home| home.join("bin").join("s3s-fs"));
    on_path
        .into_iter()
        .chain(in_cargo_home)
        .find(|candidate| candidate.is_file())
}
