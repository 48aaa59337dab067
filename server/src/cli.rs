//! The `readroom` command line.
//!
//! Two stages, as in ripgrep: clap parses raw arguments into [`Cli`], then each command loads the
//! validated [`Config`] (defaults → `--config` file → `READROOM_*` → flags) and runs.
//! Every refusal exits non-zero with the reason on stderr.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{Config, Overrides};
use crate::db::{Db, Recipients, StudyCode};
use crate::ingest::{self, IngestOptions};
use readroom_domain::audit::{Action, Outcome};

/// readroom: secure remote review and grading of ophthalmic exams.
#[derive(Debug, Parser)]
#[command(name = "readroom", version, about, long_about = None)]
pub struct Cli {
    /// Directory for embedded-mode state (SQLite file, local store, keys).
    #[arg(long, global = true, env = "READROOM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, global = true, env = "READROOM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run readroom on the embedded default (SQLite, local store, built-in worker) with demo data.
    Demo(ServeArgs),
    /// Run the server with the configured database and store.
    Serve(ServeArgs),
    /// Generate a worker's age identity (mode 0600) and print its public recipient.
    Keygen(KeygenArgs),
    /// Check, encrypt and store an exam bundle (directory or .zip).
    Ingest(IngestArgs),
    /// Manage studies.
    #[command(subcommand)]
    Study(StudyCommand),
    /// Manage local user accounts (first admin, password resets).
    #[command(subcommand)]
    User(UserCommand),
    /// Verify, export or checkpoint the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Read the invisible watermark of a frame.
    #[command(subcommand)]
    Watermark(WatermarkCommand),
    /// Check grade evidence.
    #[command(subcommand)]
    Grade(GradeCommand),
    /// Run a streaming worker process: it holds the age identity, registers with the servers
    /// and serves the sessions they place on it (distributed mode; see docs/workers.md).
    Worker(WorkerArgs),
    /// Print the servers' public ticket key (what `readroom worker --server-key` needs),
    /// creating the key on first use.
    ServerKey,
    /// Apply database migrations and exit.
    Migrate,
    /// Probe a server's or worker's health endpoint and exit 0 on a 2xx answer (the container
    /// images' HEALTHCHECK: they hold no shell or HTTP client). Reads no configuration.
    Healthcheck(HealthcheckArgs),
}

/// Options of `healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The endpoint (a server's `/healthz` or `/readyz`, a worker's control `/healthz`).
    #[arg(default_value = "http://127.0.0.1:8080/healthz")]
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3, value_name = "SECONDS")]
    pub timeout: u64,
}

/// Options of `worker` (each also a `[worker]` setting, see docs/configuration.md).
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Where the control API listens (default 127.0.0.1:7443).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// This worker's id in the pool (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub id: Option<String>,
    /// A server to register with: a replica or the load balancer (repeatable).
    #[arg(long = "server", value_name = "URL")]
    pub servers: Vec<String>,
    /// The servers' public ticket key (64 hex digits; `readroom server-key` prints it).
    #[arg(long, value_name = "HEX")]
    pub server_key: Option<String>,
    /// The URL servers reach this worker's control API at (default `http://<listen>`).
    #[arg(long, value_name = "URL")]
    pub advertise: Option<String>,
    /// Print this worker's public key (for the servers' `workers.trusted_keys`) and exit.
    #[arg(long)]
    pub print_key: bool,
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain, check every signed checkpoint, and report the first broken
    /// link with its sequence number (non-zero exit if the chain is broken).
    Verify {
        /// Start after the newest checkpoint that verifies (faster; trusts what it signs).
        #[arg(long)]
        from_checkpoint: bool,
        /// Verify an export file (from `audit export`) instead of the database, offline.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Write the events, the checkpoints and the public key as JSON Lines (verifiable offline
    /// with `audit verify --file`).
    Export {
        /// Output file (default: standard output).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// First event to export (default 1).
        #[arg(long, default_value_t = 1, value_name = "SEQ")]
        from: i64,
    },
    /// Sign the current chain head and write the checkpoint to the object store now.
    Checkpoint,
}

/// `watermark` subcommands.
#[derive(Debug, Subcommand)]
pub enum WatermarkCommand {
    /// Recover the viewer session (its first 8 bytes) from a frame: a screenshot, a crop, a
    /// JPEG, a rescaled copy or a grab of the video (PNG, JPEG, WebP…).
    Decode {
        /// The watermark key (default: `stream.watermark_key_file`, else
        /// `<data_dir>/keys/watermark.key`).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// The picture.
        png: PathBuf,
    },
}

/// `grade` subcommands.
#[derive(Debug, Subcommand)]
pub enum GradeCommand {
    /// Render the lossless frame a grade (or an adjudication) names again from the case's
    /// encrypted bundle, with the render state and watermark the worker recorded sending it,
    /// and check that it hashes to what the grade names (non-zero exit if not). Runs where a
    /// worker identity is, with the database and store configured.
    Verify {
        /// The worker identity that decrypts the bundle (default: `worker_identity`, else
        /// `<data_dir>/keys/worker.age`).
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// The watermark key (default: `stream.watermark_key_file`, else
        /// `<data_dir>/keys/watermark.key`).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// The grade version's id (as in the grades export), or an adjudication's.
        id: uuid::Uuid,
    },
}

/// Options of `demo` and `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "READROOM_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
}

/// Options of `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the identity (default: the configured worker identity, `keys/worker.age`
    /// in the data directory).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Options of `ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The bundle: a directory or a .zip with manifest.json at its root.
    pub bundle: PathBuf,
    /// Code of the study to ingest into (must exist).
    #[arg(long, value_name = "CODE")]
    pub study: String,
}

/// `study` subcommands.
#[derive(Debug, Subcommand)]
pub enum StudyCommand {
    /// Create a study.
    Create {
        /// Study code: capital letters, digits and `-` (e.g. EYE-2026).
        code: String,
        /// Human title.
        #[arg(long, default_value = "")]
        title: String,
        /// age recipient (public key) to encrypt the study's bundles to; repeat for several.
        /// Defaults to the configured `recipients`.
        #[arg(long = "recipient", value_name = "AGE1…")]
        recipients: Vec<String>,
    },
    /// List studies.
    List,
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a local user and print a one-time sign-in link (no password is ever chosen for
    /// someone else).
    Create {
        /// Username: letters, digits, `.`, `-`, `_`, `@`.
        username: String,
        /// Display name (defaults to the username).
        #[arg(long)]
        name: Option<String>,
        /// Role to grant: `grader`, `adjudicator`, `coordinator`, `auditor`, `admin`, optionally
        /// limited to a study as `role:STUDY` (e.g. `grader:EYE-2026`); repeat for several.
        #[arg(long = "role", value_name = "ROLE[:STUDY]")]
        roles: Vec<String>,
    },
    /// Print a fresh one-time sign-in link for a user (first sign-in, forgotten password).
    Link {
        /// Username.
        username: String,
    },
    /// List users and their roles.
    List,
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // No configuration: a probe must not depend on the files and secrets the process it probes
    // reads (nor create anything).
    if let Command::Healthcheck(args) = &cli.command {
        return healthcheck(args).await;
    }
    let listen = match &cli.command {
        Command::Demo(args) | Command::Serve(args) => args.listen,
        _ => None,
    };
    let overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        listen,
    };
    let config = Config::load(cli.config.as_deref(), overrides)?;
    crate::logging::init(&config.log_format);
    match cli.command {
        Command::Demo(_) => crate::worker_cmd::demo(config).await,
        Command::Serve(_) => crate::serve::run(config, None).await,
        Command::Keygen(args) => crate::worker_cmd::keygen(&config, args),
        Command::Ingest(args) => ingest_cmd(&config, args).await,
        Command::Study(command) => study_cmd(&config, command).await,
        Command::User(command) => user_cmd(&config, command).await,
        Command::Audit(AuditCommand::Verify {
            from_checkpoint,
            file,
        }) => crate::audit_cmd::verify_cmd(&config, from_checkpoint, file).await,
        Command::Audit(AuditCommand::Export { output, from }) => {
            crate::audit_cmd::export_cmd(&config, output, from).await
        }
        Command::Audit(AuditCommand::Checkpoint) => crate::audit_cmd::checkpoint_cmd(&config).await,
        Command::Watermark(WatermarkCommand::Decode { key_file, png }) => {
            let prefix = crate::worker_cmd::watermark_decode(&config, key_file.as_deref(), &png)?;
            crate::forensics_cmd::print_watermark_owner(&config, prefix).await
        }
        Command::Grade(GradeCommand::Verify {
            identity,
            key_file,
            id,
        }) => {
            crate::forensics_cmd::grade_verify(
                &config,
                id,
                identity.as_deref(),
                key_file.as_deref(),
            )
            .await
        }
        Command::Worker(args) => crate::worker_cmd::worker(config, args).await,
        Command::ServerKey => {
            let signer = crate::auth::keys::load_or_create_ticket_key(&config.ticket_key_path())?;
            println!("{}", hex::encode(signer.verifier().public_key()));
            Ok(())
        }
        Command::Migrate => {
            let db = open_db(&config).await?;
            println!("database migrated ({})", db.redacted_url());
            Ok(())
        }
        Command::Healthcheck(args) => healthcheck(&args).await,
    }
}

/// `readroom healthcheck`: one GET, no proxy, no redirects; `Ok` on a 2xx answer in time.
async fn healthcheck(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(&args.url)
        .map_err(|err| anyhow::anyhow!("healthcheck: {:?} is not a URL: {err}", args.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        anyhow::bail!("healthcheck: {url} is not an http(s) URL");
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(args.timeout.max(1)))
        .build()?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("healthcheck: {url}: {err}"))?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("healthcheck: {url} answered {status}");
    }
    println!("healthy: {url} answered {status}");
    Ok(())
}

async fn user_cmd(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    use crate::auth::AuthState;
    use crate::db::{DbError, Role};
    let db = open_db(config).await?;
    let audit = crate::audit::Audit::start(db.clone());
    let auth = AuthState::new(config, &config.public_url(config.listen))?;
    match command {
        UserCommand::Create {
            username,
            name,
            roles,
        } => {
            let mut grants = Vec::new();
            for spec in &roles {
                let (role, study) = match spec.split_once(':') {
                    Some((role, study)) => (role, Some(study)),
                    None => (spec.as_str(), None),
                };
                let role: Role = role
                    .parse()
                    .map_err(|err| anyhow::anyhow!("--role {spec}: {err}"))?;
                let study_id = match study {
                    None => None,
                    Some(code) => {
                        let code = StudyCode::new(code)
                            .map_err(|err| anyhow::anyhow!("--role {spec}: {err}"))?;
                        Some(
                            db.study_by_code(&code)
                                .await
                                .map_err(|err| match err {
                                    DbError::NotFound => {
                                        anyhow::anyhow!("--role {spec}: no study {code}")
                                    }
                                    other => other.into(),
                                })?
                                .id,
                        )
                    }
                };
                grants.push((role, study_id));
            }
            if !crate::accounts::valid_username(&username) {
                anyhow::bail!(
                    "username {username:?} must be 1-64 of letters, digits, '.', '-', '_', '@'"
                );
            }
            if db.user_by_username(&username).await.is_ok() {
                anyhow::bail!(
                    "user {username} already exists; use `readroom user link {username}`"
                );
            }
            let name = name.unwrap_or_else(|| username.clone());
            let user =
                crate::accounts::ensure_user(&db, &audit, "cli", &username, &name, &grants).await?;
            let link = crate::accounts::issue_link(&db, &audit, &auth, user.id, "cli").await?;
            println!("{link}");
        }
        UserCommand::Link { username } => {
            let user = db
                .user_by_username(&username)
                .await
                .map_err(|err| match err {
                    DbError::NotFound => anyhow::anyhow!("no user {username}"),
                    other => other.into(),
                })?;
            if user.disabled {
                anyhow::bail!("user {username} is disabled; enable it first");
            }
            let link = crate::accounts::issue_link(&db, &audit, &auth, user.id, "cli").await?;
            println!("{link}");
        }
        UserCommand::List => {
            for user in db.list_users().await? {
                let grants = db.roles_of(user.id).await?;
                let roles: Vec<String> = grants.iter().map(|g| g.role.to_string()).collect();
                println!(
                    "{}\t{}\t{}{}",
                    user.username,
                    user.display_name,
                    roles.join(","),
                    if user.disabled { "\tdisabled" } else { "" }
                );
            }
        }
    }
    Ok(())
}

/// Connects to the configured database and applies migrations.
pub async fn open_db(config: &Config) -> anyhow::Result<Db> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        crate::private_fs::create_dir(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
    }
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    Ok(db)
}

async fn study_cmd(config: &Config, command: StudyCommand) -> anyhow::Result<()> {
    let db = open_db(config).await?;
    match command {
        StudyCommand::Create {
            code,
            title,
            recipients,
        } => {
            let code = StudyCode::new(&code).map_err(|err| anyhow::anyhow!("{err}"))?;
            let recipients = if recipients.is_empty() {
                config.recipients.clone()
            } else {
                recipients
            };
            if recipients.is_empty() {
                anyhow::bail!(
                    "no recipients: pass --recipient age1… (from `readroom keygen`) or set `recipients` in the configuration"
                );
            }
            let recipients = Recipients::new(recipients).map_err(|err| anyhow::anyhow!("{err}"))?;
            let title = if title.is_empty() {
                code.as_str().to_owned()
            } else {
                title
            };
            let study = db.create_study(&code, &title, &recipients).await?;
            let audit = crate::audit::Audit::start(db.clone());
            audit
                .record(crate::audit::event_by(
                    Action::StudyCreated,
                    Outcome::Success,
                    None,
                    Some(crate::audit::study_target(study.code.as_str())),
                    None,
                    serde_json::json!({ "recipients": study.recipients.as_slice().len(), "source": "cli" }),
                ))
                .await?;
            println!("created study {} ({})", study.code.as_str(), study.title);
        }
        StudyCommand::List => {
            for study in db.list_studies().await? {
                println!(
                    "{}\t{}\t{} recipient(s)",
                    study.code.as_str(),
                    study.title,
                    study.recipients.as_slice().len()
                );
            }
        }
    }
    Ok(())
}

async fn ingest_cmd(config: &Config, args: IngestArgs) -> anyhow::Result<()> {
    let db = open_db(config).await?;
    let store = crate::store::open(config).await?;
    let total = bundle_size(&args.bundle);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} ingest [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let progress_bar = bar.clone();
    let options = IngestOptions {
        policy: readroom_domain::deid::DeidPolicy {
            allow_shifted_dates: config.ingest.allow_shifted_dates,
        },
        source_limits: readroom_bundle::SourceLimits {
            max_total_size: config.ingest.max_bundle_gib.saturating_mul(1 << 30),
            ..readroom_bundle::SourceLimits::default()
        },
        progress: Some(Arc::new(move |done| progress_bar.set_position(done))),
        ..IngestOptions::default()
    };
    let audit = crate::audit::Audit::start(db.clone());
    let result = ingest::ingest(&db, &audit, store, &args.bundle, &args.study, options).await;
    bar.finish_and_clear();
    let report = result?;
    println!(
        "ingested {} as case {} of study {}: {} files, {} exams, {} source bytes, {} ciphertext bytes in {:.2} s ({:.0} MB/s)",
        args.bundle.display(),
        report.case_label,
        args.study,
        report.files,
        report.exams,
        report.source_bytes,
        report.ciphertext_bytes,
        report.elapsed.as_secs_f64(),
        report.throughput_mb_s()
    );
    println!("ciphertext sha256 {}", report.ciphertext_sha256);
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    Ok(())
}

/// Size of a bundle on disk, for the progress bar (0 when unknown).
fn bundle_size(path: &Path) -> u64 {
    fn walk(path: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return 0;
        };
        if meta.is_dir() {
            std::fs::read_dir(path)
                .map(|entries| entries.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0)
        } else {
            meta.len()
        }
    }
    walk(path)
}
