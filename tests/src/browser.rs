//! A real browser for tests: headless Debian Chromium driven by a Node
//! [playwright-core](https://playwright.dev) script from `tests/js/`.
//!
//! [`run_script`] starts `node tests/js/<script>.mjs` in the workspace root with the parameters
//! as JSON in the `READROOM_BROWSER_PARAMS` environment variable, waits for it (killing it and
//! its browser after a timeout), and returns the JSON of the script's final `RESULT {...}` line.
//! Any failure (non-zero exit, no `RESULT` line, timeout) is an error that carries the script's
//! stderr and the end of its stdout, so a failing test says what the browser saw.
//!
//! The scripts share `tests/js/lib/browser.mjs` (launch, one context per user, and the console
//! errors, failed requests and CSP violations each page had). `tests/js/signin.mjs` signs in
//! through the viewer's real UI (local form, one-time link, or an identity provider's button).
//!
//! Needs `node`, `/usr/bin/chromium` and `tests/js/node_modules/playwright-core`; `scripts/setup`
//! installs them. [`run_script_async`] is the same for async tests: it runs on tokio's blocking
//! pool, so a server running in the same runtime keeps answering the browser.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::lines::{Tail, each_line};

/// The Chromium the scripts drive (Debian's package; no browser is downloaded).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The environment variable the scripts read their JSON parameters from.
pub const PARAMS_ENV: &str = "READROOM_BROWSER_PARAMS";

/// The prefix of the line that carries a script's result.
pub const RESULT_PREFIX: &str = "RESULT ";

/// A sensible timeout for one sign-in or page walk (Chromium start included).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// Output lines kept per stream for error messages.
const KEPT_LINES: usize = 200;

/// The workspace root (the parent of the `tests` crate): the scripts' working directory.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The directory of the browser scripts, `tests/js`.
pub fn scripts_dir() -> PathBuf {
    workspace_root().join("tests").join("js")
}

/// Checks that `node`, Chromium and playwright-core are installed; the error says to run
/// `scripts/setup` otherwise.
pub fn check_prerequisites() -> anyhow::Result<()> {
    if !Path::new(CHROMIUM).is_file() {
        bail!("{CHROMIUM} is missing: the browser tests need Debian's chromium; run scripts/setup");
    }
    let playwright = scripts_dir().join("node_modules").join("playwright-core");
    if !playwright.join("package.json").is_file() {
        bail!(
            "{} is missing: run scripts/setup (it runs npm ci in tests/js)",
            playwright.display()
        );
    }
    let node = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match node {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!("`node --version` failed with {status}; run scripts/setup"),
        Err(err) => bail!("cannot run node ({err}); run scripts/setup"),
    }
}

/// Runs `tests/js/<script>.mjs` (the `.mjs` may be given or not) with `params` and returns the
/// JSON of its `RESULT` line.
///
/// Blocks the calling thread for up to `timeout`; from async code use [`run_script_async`].
pub fn run_script(script: &str, params: &Value, timeout: Duration) -> anyhow::Result<Value> {
    run_script_in(None, script, params, timeout)
}

/// [`run_script`] in network namespace `netns` (`ip netns exec`), when given: the browser on
/// the client side of a shaped link (`tests/benches/network_bench.rs`).
pub fn run_script_in(
    netns: Option<&str>,
    script: &str,
    params: &Value,
    timeout: Duration,
) -> anyhow::Result<Value> {
    check_prerequisites()?;
    let path = script_path(script)?;
    let shown = path
        .strip_prefix(workspace_root())
        .unwrap_or(&path)
        .display()
        .to_string();
    let mut command = match netns {
        Some(netns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", netns, "node"]);
            command
        }
        None => Command::new("node"),
    };
    command
        .arg(&path)
        .current_dir(workspace_root())
        .env(PARAMS_ENV, params.to_string())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so a timeout kills node and everything it started.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting node {shown}"))?;

    let stdout = Tail::new(KEPT_LINES);
    let stderr = Tail::new(KEPT_LINES);
    let result = Arc::new(Mutex::new(None::<String>));
    let mut readers = Vec::new();
    if let Some(pipe) = child.stdout.take() {
        let (stdout, result) = (stdout.clone(), Arc::clone(&result));
        // The `RESULT` line is the script's answer; every other line is kept for errors.
        readers.push(each_line(pipe, move |text| {
            if let Some(json) = text.strip_prefix(RESULT_PREFIX)
                && let Ok(mut slot) = result.lock()
            {
                *slot = Some(json.to_owned());
            } else {
                stdout.push(text);
            }
        }));
    }
    if let Some(pipe) = child.stderr.take() {
        let stderr = stderr.clone();
        readers.push(each_line(pipe, move |text| stderr.push(text)));
    }

    let outcome = wait(&mut child, timeout);
    if outcome.is_err() {
        kill_group(&mut child);
    }
    for reader in readers {
        let _ = reader.join();
    }
    let output = || {
        format!(
            "--- stderr ---\n{}\n--- stdout ---\n{}",
            stderr.joined(),
            stdout.joined()
        )
    };
    let status = match outcome {
        Ok(status) => status,
        Err(err) => bail!("{shown}: {err:#}\n{}", output()),
    };
    if !status.success() {
        bail!("{shown} exited with {status}\n{}", output());
    }
    let line = result.lock().ok().and_then(|line| line.clone());
    let Some(json) = line else {
        bail!(
            "{shown} exited without a `{}{{...}}` line\n{}",
            RESULT_PREFIX.trim_end(),
            output()
        );
    };
    serde_json::from_str(&json)
        .with_context(|| format!("{shown} printed a RESULT line that is not JSON: {json}"))
}

/// [`run_script`] on tokio's blocking pool, for async tests (the server under test keeps running
/// on the runtime while the browser talks to it).
pub async fn run_script_async(
    script: &str,
    params: Value,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let script = script.to_owned();
    tokio::task::spawn_blocking(move || run_script(&script, &params, timeout))
        .await
        .context("the browser script's thread panicked")?
}

/// Asserts that a browser run of `who` met no script error, failed request, CSP violation or
/// element id used twice (what `tests/js/lib/browser.mjs` records for every page).
pub fn assert_clean(result: &Value, who: &str) {
    for key in [
        "console_errors",
        "page_errors",
        "failed_requests",
        "csp_violations",
        "duplicate_ids",
    ] {
        assert_eq!(result[key], serde_json::json!([]), "{who} {key}: {result}");
    }
}

/// Signs in through the viewer's UI with `tests/js/signin.mjs` (see that file for the
/// parameters: `base_url`, `mode` = `local` | `link` | `oidc`, `username`, `password`, `totp`,
/// `link_url`, `provider_id`, `login_hint`, `return_to`, `locale`, `screenshot`) and returns its
/// result: `signed_in`, `username`, `display_name`, `worklist_rows`, `url`, `page`,
/// `link_token_in_url`, `message`, `console_errors`, `page_errors`, `failed_requests`,
/// `http_errors`, `csp_violations`.
pub async fn sign_in(params: Value) -> anyhow::Result<Value> {
    run_script_async("signin", params, DEFAULT_TIMEOUT).await
}

fn script_path(script: &str) -> anyhow::Result<PathBuf> {
    let name = if script.ends_with(".mjs") {
        script.to_owned()
    } else {
        format!("{script}.mjs")
    };
    if Path::new(&name).is_absolute() || name.split('/').any(|part| part == "..") {
        bail!("browser script {script:?} must be a path inside tests/js");
    }
    let path = scripts_dir().join(name);
    if !path.is_file() {
        bail!("no browser script {}", path.display());
    }
    Ok(path)
}

/// Waits for the child until `timeout`.
fn wait(child: &mut Child, timeout: Duration) -> anyhow::Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("waiting for node")? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?}; killed it and its browser");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the child's whole process group (node and the Chromium it launched), then the child.
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}
