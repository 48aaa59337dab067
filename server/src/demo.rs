//! `readroom demo`: the embedded default with demo data, in one command.
//!
//! On first run in a data directory it generates a worker identity, creates the SQLite database
//! and local store, creates study `DEMO` encrypted to that identity's recipient, generates a
//! deterministic synthetic cohort plus bundles built around the public-domain `retina.jpg`, and
//! ingests them through the normal ingest pipeline (gate, encryption, store). Later runs reuse it.
//! The synthetic plaintext is written to a temporary directory outside the data directory and
//! removed after ingest, so the data directory only ever holds ciphertext and metadata.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use readroom_bundle::synth;
use readroom_store::ObjectStore;

use readroom_domain::audit::{Action, Outcome};
use serde_json::json;

use crate::accounts;
use crate::audit::{Audit, event_by, study_target};
use crate::config::Config;
use crate::db::{Db, DbError, Recipients, Role, StudyCode, User};
use crate::grading::{self, BatchRequest};
use crate::ingest::{self, IngestOptions};

/// The study the demo creates.
pub const DEMO_STUDY: &str = "DEMO";
/// Seed of the demo cohort (fixed: every demo shows the same cases).
pub const DEMO_SEED: u64 = 20_261_122;
/// The batch the demo forms.
pub const DEMO_BATCH: &str = "Demo batch 1";
/// Number of synthetic subjects.
pub const DEMO_SUBJECTS: usize = 6;

/// The public-domain fundus photograph (CC0, see `tests/fixtures/SOURCES.md`).
static RETINA_JPG: &[u8] = include_bytes!("../../tests/fixtures/retina.jpg");

/// The demo's users: role, username, display name. Graders come last; each grader is assigned
/// some, not all, of the demo cases.
pub const DEMO_USERS: &[(Role, &str, &str)] = &[
    (Role::Admin, "admin", "Administrator"),
    (Role::Coordinator, "coord.park", "Park Coordinator"),
    (Role::Auditor, "auditor.lee", "Lee Auditor"),
    (Role::Adjudicator, "adj.choi", "Dr. Choi (adjudicator)"),
    (Role::Grader, "grader.kim", "Dr. Kim"),
    (Role::Grader, "grader.jung", "Dr. Jung"),
    (Role::Grader, "grader.han", "Dr. Han"),
];

/// Prepares the demo data directory (idempotent) and runs the server.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let summary = prepare(&config).await?;
    let banner: crate::serve::Banner = Box::new(move |state, url| {
        Box::pin(async move {
            let users = seed_users(&state.db, &state.audit).await?;
            println!();
            println!("readroom demo is running at {url}");
            println!(
                "  study {DEMO_STUDY}: {} cases, encrypted to worker recipient {}",
                summary.cases, summary.recipient
            );
            println!("  data directory: {}", summary.data_dir);
            println!(
                "  sign in with one of these one-time links (valid {} h, each works once; \
                 a new set is printed at every start):",
                state.auth.link_seconds / 3600
            );
            for (role, user) in users {
                let link =
                    accounts::issue_link(&state.db, &state.audit, &state.auth, user.id, "demo")
                        .await?;
                println!("{role} {} {link}", user.username);
            }
            println!("  press Ctrl-C to stop");
            Ok(())
        })
    });
    crate::serve::run(config, Some(banner)).await
}

/// Creates the demo users (idempotent) and, the first time, sets the study's grading form (preset
/// `demo`) and forms batch [`DEMO_BATCH`]: every demo case assigned to two of the three demo
/// graders with balanced load (so each grader has some cases, not all), and to nobody else.
/// Returns each demo user with the role it was seeded for, in [`DEMO_USERS`] order.
pub async fn seed_users(db: &Db, audit: &Audit) -> anyhow::Result<Vec<(Role, User)>> {
    let code = StudyCode::new(DEMO_STUDY).map_err(|err| anyhow::anyhow!("{err}"))?;
    let study = db.study_by_code(&code).await?;
    let mut users = Vec::new();
    for (role, username, display_name) in DEMO_USERS {
        let scope = match role {
            Role::Admin | Role::Auditor => None,
            _ => Some(study.id),
        };
        let user =
            accounts::ensure_user(db, audit, "demo", username, display_name, &[(*role, scope)])
                .await?;
        users.push((*role, user));
    }
    let graders: Vec<&User> = users
        .iter()
        .filter(|(role, _)| *role == Role::Grader)
        .map(|(_, user)| user)
        .collect();
    if db.current_form(study.id).await.is_err() {
        let form = readroom_domain::grading::presets::demo();
        grading::set_form(db, audit, &study, &form, None).await?;
    }
    if db.assignments_for_study(study.id).await?.is_empty() && !graders.is_empty() {
        let request = BatchRequest {
            name: DEMO_BATCH.to_owned(),
            cases: Vec::new(),
            graders: graders.iter().map(|g| g.id).collect(),
            per_case: 2.min(graders.len() as u32),
            repeat_fraction: 0.0,
            due_at: None,
        };
        grading::create_batch(db, audit, None, &study, &request).await?;
    }
    Ok(users)
}

/// What [`prepare`] set up.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// Cases in study DEMO.
    pub cases: usize,
    /// The worker recipient the study is encrypted to.
    pub recipient: String,
    /// The data directory.
    pub data_dir: String,
}

/// Creates keys, database, store, study and demo cases unless they exist.
pub async fn prepare(config: &Config) -> anyhow::Result<DemoSummary> {
    crate::private_fs::create_dir(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let identity_path = config.worker_identity_path();
    let generated = !identity_path.exists();
    if generated {
        eprintln!(
            "demo: generating worker identity {}",
            identity_path.display()
        );
    }
    let recipient = crate::worker_cmd::worker_recipient(&identity_path, generated)?;

    let db = crate::cli::open_db(config).await?;
    let audit = Audit::start(db.clone());
    if generated {
        audit
            .record(event_by(
                Action::KeyCreated,
                Outcome::Success,
                None,
                None,
                None,
                json!({ "key": "worker", "recipient": recipient, "source": "demo" }),
            ))
            .await?;
    }
    let store = crate::store::open(config).await?;
    let code = StudyCode::new(DEMO_STUDY).map_err(|err| anyhow::anyhow!("{err}"))?;
    let study = match db.study_by_code(&code).await {
        Ok(study) => study,
        Err(DbError::NotFound) => {
            let mut all = vec![recipient.clone()];
            all.extend(config.recipients.iter().cloned());
            let recipients = Recipients::new(all).map_err(|err| anyhow::anyhow!("{err}"))?;
            let study = db
                .create_study(
                    &code,
                    "Demo study (synthetic and public-domain images)",
                    &recipients,
                )
                .await?;
            audit
                .record(event_by(
                    Action::StudyCreated,
                    Outcome::Success,
                    None,
                    Some(study_target(DEMO_STUDY)),
                    None,
                    json!({ "recipients": recipients.as_slice().len(), "source": "demo" }),
                ))
                .await?;
            study
        }
        Err(err) => return Err(err.into()),
    };
    let existing = db.list_cases(study.id).await?.len();
    let cases = if existing == 0 {
        ingest_demo_bundles(&db, &audit, store).await?
    } else {
        existing
    };
    Ok(DemoSummary {
        cases,
        recipient,
        data_dir: config.data_dir.display().to_string(),
    })
}

async fn ingest_demo_bundles(
    db: &Db,
    audit: &Audit,
    store: Arc<dyn ObjectStore>,
) -> anyhow::Result<usize> {
    let scratch = tempfile::Builder::new()
        .prefix("readroom-demo-")
        .tempdir()
        .context("cannot create a temporary directory for demo bundles")?;
    let started = std::time::Instant::now();
    let mut bundles = Vec::new();
    for spec in synth::demo_cohort(DEMO_SEED, DEMO_SUBJECTS) {
        let mut spec = spec;
        spec.study = DEMO_STUDY.to_owned();
        let dir = scratch
            .path()
            .join(format!("{}-{}", spec.subject, spec.visit));
        let truth = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || synth::write_bundle_dir(&spec, &dir)
        })
        .await??;
        bundles.push((dir, Some(serde_json::to_value(&truth)?)));
    }
    let retina_dir = scratch.path().join("retina");
    write_retina(&retina_dir)?;
    bundles.push((retina_dir, None));
    eprintln!(
        "demo: generated {} bundles in {:.1} s",
        bundles.len(),
        started.elapsed().as_secs_f64()
    );

    let mut count = 0;
    for (dir, ground_truth) in bundles {
        let options = IngestOptions {
            ground_truth,
            ..IngestOptions::default()
        };
        let report = ingest::ingest(db, audit, store.clone(), &dir, DEMO_STUDY, options)
            .await
            .with_context(|| format!("demo bundle {}", dir.display()))?;
        eprintln!(
            "demo: ingested case {} ({} files, {:.1} MB)",
            report.case_label,
            report.files,
            report.source_bytes as f64 / 1e6
        );
        count += 1;
    }
    Ok(count)
}

fn write_retina(dir: &Path) -> anyhow::Result<()> {
    synth::write_retina_bundle(RETINA_JPG, "S9001", dir)?;
    // The retina bundle's manifest names its study; point it at DEMO.
    let manifest_path = dir.join(readroom_domain::manifest::MANIFEST_FILE);
    let mut manifest =
        readroom_domain::manifest::Manifest::from_json(&std::fs::read(&manifest_path)?)?;
    manifest.study = DEMO_STUDY.to_owned();
    std::fs::write(&manifest_path, manifest.to_json())?;
    Ok(())
}
