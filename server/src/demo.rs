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

use crate::config::Config;
use crate::db::{Db, DbError, Recipients, StudyCode};
use crate::ingest::{self, IngestOptions};

/// The study the demo creates.
pub const DEMO_STUDY: &str = "DEMO";
/// Seed of the demo cohort (fixed: every demo shows the same cases).
pub const DEMO_SEED: u64 = 20_261_122;
/// Number of synthetic subjects.
pub const DEMO_SUBJECTS: usize = 6;

/// The public-domain fundus photograph (CC0, see `tests/fixtures/SOURCES.md`).
static RETINA_JPG: &[u8] = include_bytes!("../../tests/fixtures/retina.jpg");

/// Prepares the demo data directory (idempotent) and runs the server.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let summary = prepare(&config).await?;
    let banner: crate::serve::Banner = Box::new(move |url| {
        println!();
        println!("readroom demo is running at {url}");
        println!(
            "  study {DEMO_STUDY}: {} cases, encrypted to worker recipient {}",
            summary.cases, summary.recipient
        );
        println!("  data directory: {}", summary.data_dir);
        println!("  open {url}/ in a browser; press Ctrl-C to stop");
    });
    crate::serve::run(config, Some(banner)).await
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
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let identity_path = config.worker_identity_path();
    let identity = if identity_path.exists() {
        readroom_worker::keys::load(&identity_path)?
    } else {
        eprintln!(
            "demo: generating worker identity {}",
            identity_path.display()
        );
        readroom_worker::keys::generate(&identity_path)?
    };
    let recipient = identity.recipient();
    drop(identity);

    let db = crate::cli::open_db(config).await?;
    let store = crate::store::open(config).await?;
    let code = StudyCode::new(DEMO_STUDY).map_err(|err| anyhow::anyhow!("{err}"))?;
    let study = match db.study_by_code(&code).await {
        Ok(study) => study,
        Err(DbError::NotFound) => {
            let mut all = vec![recipient.clone()];
            all.extend(config.recipients.iter().cloned());
            let recipients = Recipients::new(all).map_err(|err| anyhow::anyhow!("{err}"))?;
            db.create_study(
                &code,
                "Demo study (synthetic and public-domain images)",
                &recipients,
            )
            .await?
        }
        Err(err) => return Err(err.into()),
    };
    let existing = db.list_cases(study.id).await?.len();
    let cases = if existing == 0 {
        ingest_demo_bundles(&db, store).await?
    } else {
        existing
    };
    Ok(DemoSummary {
        cases,
        recipient,
        data_dir: config.data_dir.display().to_string(),
    })
}

async fn ingest_demo_bundles(db: &Db, store: Arc<dyn ObjectStore>) -> anyhow::Result<usize> {
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
        let report = ingest::ingest(db, store.clone(), &dir, DEMO_STUDY, options)
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
