//! A fresh PostgreSQL database per test, on the machine's PostgreSQL server.
//!
//! [`PgDatabase::create`] connects as an administrator (`postgres://postgres@127.0.0.1:5432/postgres`
//! unless `READROOM_TEST_PG_ADMIN_URL` says otherwise), starts the local Debian cluster if nothing
//! answers, creates `readroom_test_<uuid>` and hands out its URL. Dropping the value drops the
//! database (`WITH (FORCE)`, so connections the test left open do not block it).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};

/// The administrator URL used when `READROOM_TEST_PG_ADMIN_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long to wait for a cluster we started to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A uniquely named, empty database, dropped when this value is dropped.
#[derive(Debug)]
pub struct PgDatabase {
    /// URL of the database, for `Db::connect` or any PostgreSQL client.
    pub url: String,
    /// Its name (`readroom_test_<32 hex digits>`).
    pub name: String,
    admin_url: String,
}

impl PgDatabase {
    /// Creates a fresh database, starting the local PostgreSQL cluster first if needed.
    pub async fn create() -> anyhow::Result<PgDatabase> {
        let admin_url = std::env::var("READROOM_TEST_PG_ADMIN_URL")
            .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let mut admin = connect_admin(&admin_url).await?;
        let name = format!("readroom_test_{}", uuid::Uuid::new_v4().simple());
        // The name is generated above (letters, digits, `_`), so quoting it is enough.
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("cannot create test database {name}"))?;
        admin.close().await.ok();
        let url = with_database(&admin_url, &name)?;
        Ok(PgDatabase {
            url,
            name,
            admin_url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a Tokio runtime, where blocking on another future is not allowed;
        // a plain thread with its own small runtime works from anywhere.
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                sqlx::query(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
                admin.close().await.ok();
                Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!(
                "warning: could not drop test database {}: {err:#}",
                self.name
            ),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// Connects to the administrator database, starting the local cluster if nothing is listening.
async fn connect_admin(admin_url: &str) -> anyhow::Result<PgConnection> {
    let first_error = match PgConnection::connect(admin_url).await {
        Ok(connection) => return Ok(connection),
        Err(err) => err,
    };
    if !is_connection_failure(&first_error) {
        return Err(first_error).context(format!(
            "PostgreSQL answered but refused the test administrator at {}",
            redact(admin_url)
        ));
    }
    start_local_cluster()?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match PgConnection::connect(admin_url).await {
            Ok(connection) => return Ok(connection),
            Err(err) if Instant::now() >= deadline => {
                return Err(err).context(format!(
                    "ran `pg_ctlcluster … main start`, but {} still does not accept connections after {}s",
                    redact(admin_url),
                    START_TIMEOUT.as_secs()
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn is_connection_failure(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
    )
}

/// Starts every Debian PostgreSQL cluster named `main` (`pg_ctlcluster <version> main start`).
/// Serialized within the process; a cluster that is already running is not an error.
fn start_local_cluster() -> anyhow::Result<()> {
    static START: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = START
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());

    let config_root = Path::new("/etc/postgresql");
    let versions: Vec<String> = match std::fs::read_dir(config_root) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().join("main").is_dir())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    if versions.is_empty() {
        bail!(
            "PostgreSQL is not installed: nothing accepts connections at {} and there is no cluster \
             under /etc/postgresql. Install it (Debian: `apt-get install postgresql`) or point \
             READROOM_TEST_PG_ADMIN_URL at a running server",
            DEFAULT_ADMIN_URL
        );
    }
    for version in &versions {
        let output = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", version, "main", "start"])
            .output()
            .context("cannot run pg_ctlcluster (is postgresql-common installed?)")?;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // Exit status 2 with "Cluster is already running." is what a concurrent start leaves.
        if !output.status.success() && !said.contains("already running") {
            bail!(
                "`pg_ctlcluster --skip-systemctl-redirect {version} main start` failed ({}): {}",
                output.status,
                said.trim()
            );
        }
    }
    Ok(())
}

/// `admin_url` with its database replaced by `name` (query parameters kept).
fn with_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let Some((_, rest)) = base.split_once("://") else {
        bail!("READROOM_TEST_PG_ADMIN_URL is not a postgres:// URL");
    };
    let server = match rest.find('/') {
        Some(slash) => &base[..base.len() - rest.len() + slash],
        None => base,
    };
    let mut url = format!("{server}/{name}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/postgres?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h", "x").unwrap(),
            "postgres://h/x"
        );
    }
}
