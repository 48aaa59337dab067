//! A real OpenID Provider (npm `oidc-provider`, `tests/js/oidc-provider.mjs`) on
//! `127.0.0.1:<ephemeral>`, with static users and an auto-approving login keyed by `login_hint`.
//! Every (re)start generates a new RSA signing key, so [`OidcProvider::restart`] rotates keys.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::lines::each_line;

/// A registered client.
#[derive(Debug, Clone)]
pub struct OidcClient {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Allowed redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Allowed post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
}

/// A user the provider signs in.
#[derive(Debug, Clone)]
pub struct OidcUser {
    /// `sub`.
    pub sub: String,
    /// `preferred_username` (and the `login_hint` that picks this user).
    pub username: String,
    /// `name`.
    pub name: String,
    /// `email`.
    pub email: String,
    /// `groups`.
    pub groups: Vec<String>,
    /// `acr` of the sign-in, if any.
    pub acr: Option<String>,
    /// `amr` of the sign-in, if any.
    pub amr: Option<Vec<String>>,
}

impl OidcUser {
    /// A user with a password sign-in (`amr: ["pwd"]`) in `groups`.
    pub fn new(username: &str, groups: &[&str]) -> OidcUser {
        OidcUser {
            sub: format!("sub-{username}"),
            username: username.to_owned(),
            name: format!("{username} (IdP)"),
            email: format!("{username}@hospital.example"),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            acr: Some("urn:readroom:pwd".into()),
            amr: Some(vec!["pwd".into()]),
        }
    }

    /// The same user having signed in with a second factor.
    pub fn with_mfa(mut self) -> OidcUser {
        self.acr = Some("urn:readroom:mfa".into());
        self.amr = Some(vec!["pwd".into(), "mfa".into()]);
        self
    }
}

/// A running provider; killed on drop.
pub struct OidcProvider {
    child: Child,
    issuer: String,
    config_path: PathBuf,
    _dir: tempfile::TempDir,
}

fn tests_js() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

impl OidcProvider {
    /// Starts the provider with these clients and users.
    pub fn start(clients: &[OidcClient], users: &[OidcUser]) -> anyhow::Result<OidcProvider> {
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("oidc.json");
        write_config(&config_path, 0, clients, users)?;
        let (child, issuer) = spawn(&config_path)?;
        Ok(OidcProvider {
            child,
            issuer,
            config_path,
            _dir: dir,
        })
    }

    /// The issuer URL (`http://127.0.0.1:PORT`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Stops the provider and starts it again on the same port with a new signing key (and
    /// fresh, empty sessions): a key rotation as seen by relying parties.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port: u16 = self
            .issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .context("issuer has no port")?;
        let text = std::fs::read_to_string(&self.config_path)?;
        let mut config: serde_json::Value = serde_json::from_str(&text)?;
        config["port"] = port.into();
        std::fs::write(&self.config_path, config.to_string())?;
        let (child, issuer) = spawn(&self.config_path)?;
        if issuer != self.issuer {
            bail!("provider came back as {issuer}, not {}", self.issuer);
        }
        self.child = child;
        Ok(())
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(
    path: &Path,
    port: u16,
    clients: &[OidcClient],
    users: &[OidcUser],
) -> anyhow::Result<()> {
    let clients: Vec<serde_json::Value> = clients
        .iter()
        .map(|c| {
            serde_json::json!({
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "redirect_uris": c.redirect_uris,
                "post_logout_redirect_uris": c.post_logout_redirect_uris,
            })
        })
        .collect();
    let users: Vec<serde_json::Value> = users
        .iter()
        .map(|u| {
            serde_json::json!({
                "sub": u.sub, "preferred_username": u.username, "name": u.name,
                "email": u.email, "groups": u.groups, "acr": u.acr, "amr": u.amr,
            })
        })
        .collect();
    let config = serde_json::json!({ "port": port, "clients": clients, "users": users });
    std::fs::write(path, config.to_string())?;
    Ok(())
}

fn spawn(config: &Path) -> anyhow::Result<(Child, String)> {
    // One retry: CI saw a provider that neither printed READY nor exited within 60 s (once, on
    // a loaded 2-core machine); a second process is cheap, and both attempts' output is kept.
    match spawn_once(config) {
        Ok(started) => Ok(started),
        Err(first) => spawn_once(config)
            .map_err(|second| anyhow::anyhow!("{second:#}\n(first attempt: {first:#})")),
    }
}

fn spawn_once(config: &Path) -> anyhow::Result<(Child, String)> {
    let js = tests_js();
    if !js.join("node_modules/oidc-provider").exists() {
        bail!(
            "{} is missing: run scripts/setup (it runs `npm ci` in tests/js)",
            js.join("node_modules/oidc-provider").display()
        );
    }
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(js.join("oidc-provider.mjs"))
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start node (install Node.js: scripts/setup)")?;
    let stdout = child.stdout.take().context("provider stdout")?;
    let stderr = child.stderr.take().context("provider stderr")?;
    // Drain both pipes for the provider's whole life (warnings included), so it never blocks
    // or dies of EPIPE; the last lines of each are kept for the error if it does not start.
    let said = Arc::new(Mutex::new(VecDeque::new()));
    let keep = |said: &Arc<Mutex<VecDeque<String>>>, stream: &'static str| {
        let said = Arc::clone(said);
        move |line: String| {
            let mut said = said.lock().unwrap_or_else(|e| e.into_inner());
            if said.len() == 20 {
                said.pop_front();
            }
            said.push_back(format!("{stream}: {line}"));
        }
    };
    let on_stderr = keep(&said, "stderr");
    each_line(stderr, on_stderr);
    let on_stdout = keep(&said, "stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    each_line(stdout, move |line| {
        if let Some(issuer) = line.strip_prefix("READY ") {
            let _ = tx.send(issuer.trim().to_owned());
        } else {
            on_stdout(line);
        }
    });
    let outcome = rx.recv_timeout(Duration::from_secs(60));
    if let Ok(issuer) = outcome {
        return Ok((child, issuer));
    }
    let exited = child.try_wait().ok().flatten();
    let _ = child.kill();
    let _ = child.wait();
    let said = said.lock().unwrap_or_else(|e| e.into_inner());
    let output = if said.is_empty() {
        "(it printed nothing)".to_owned()
    } else {
        said.iter().cloned().collect::<Vec<_>>().join("\n")
    };
    match exited {
        Some(status) => bail!(
            "the OIDC provider exited ({status}) after {:.1} s without printing READY:\n{output}",
            started.elapsed().as_secs_f64()
        ),
        None => bail!(
            "the OIDC provider did not print READY within {:.1} s:\n{output}",
            started.elapsed().as_secs_f64()
        ),
    }
}
