//! The large-case part of the streaming benchmark: a survey-sized bundle of about 1 GB is
//! generated, ingested through the real ingest path, and opened in Chromium (time to first
//! frame); a human-paced grading session on it measures the bytes sent per graded case.
//!
//! The bundle: the synthetic generator's subject with both eyes, 4096-pixel fundus photographs
//! and 256-B-scan OCT volumes (what the session looks at), plus per eye a dense raster volume of
//! 1024×1024 B-scans (uncompressed 8-bit PNG, as an export of raw OCT data would be) that brings
//! the bundle to about 1 GB. The dense volumes are never viewed: they are what the worker must
//! not read to show the first frame.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use readroom_bundle::synth::bundle::{SynthSpec, write_bundle_dir};
use readroom_server::db::{AssignmentRole, User};
use readroom_server::ingest::{IngestOptions, ingest};
use serde_json::{Value, json};

use crate::support::TestApp;

/// Plaintext size the bundle is filled up to.
const TARGET_BYTES: u64 = 1_000_000_000;
/// Side of a dense raster B-scan.
const DENSE_SIDE: u32 = 1024;

/// What the large case measured.
pub struct LargeCase {
    /// Plaintext bytes of the ingested bundle (the zip inside the ciphertext).
    pub plaintext_bytes: u64,
    /// Files in the bundle.
    pub files: usize,
    /// Case open → first decoded frame, ms, per open.
    pub first_frame_ms: Vec<f64>,
    /// The grading session as the worker recorded it.
    pub session: Session,
}

/// One graded case's streaming session.
pub struct Session {
    /// Wall-clock length, s.
    pub seconds: f64,
    /// Views the grader let settle (lossless frames verified).
    pub settles: u64,
    /// B-scans stepped through while scrolling.
    pub slices_scrolled: u64,
    /// Video frames sent.
    pub frames: i64,
    /// Bytes sent: video and lossless.
    pub bytes_sent: i64,
    /// Of which lossless image bytes.
    pub lossless_bytes: i64,
    /// Lossless frames started (sent whole or stopped by a newer frame).
    pub lossless_frames: usize,
    /// Video payload bytes the browser counted (inbound-rtp `bytesReceived`).
    pub video_bytes_received: u64,
}

/// Generates, ingests and streams the large case for `grader` in Chromium.
pub async fn run(app: &TestApp, grader: &User, window: (u32, u32)) -> Result<LargeCase> {
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path().join("S7701-V1");
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || write_large_bundle(&dir)
    })
    .await??;
    eprintln!(
        "large case: bundle written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let report = ingest(
        app.db(),
        &app.state.audit,
        app.state.store.clone(),
        &dir,
        "DEMO",
        IngestOptions::default(),
    )
    .await
    .context("ingesting the large bundle")?;
    drop(scratch);
    eprintln!(
        "large case: ingested {} files, {:.1} MB of plaintext",
        report.files,
        report.plaintext_bytes as f64 / 1e6
    );
    let case = app
        .db()
        .case_by_id(report.case_id)
        .await
        .context("the ingested case")?;
    app.assign(&case, grader, AssignmentRole::Grader).await;

    let link = app.link(grader).await;
    let result: Value = readroom_tests::browser::run_script_async(
        "stream-case-bench.mjs",
        json!({
            "base_url": app.url,
            "link_url": link,
            "case_id": case.id.to_string(),
            "window": { "width": window.0, "height": window.1 },
            "opens": 7,
            "scroll_hz": 15,
            "stops": 5,
            "look_ms": 1500,
        }),
        Duration::from_secs(900),
    )
    .await?;

    let session = &result["session"];
    let stream_id = session["stream_id"]
        .as_str()
        .context("the session's stream id")?
        .to_owned();
    // The session is recorded when the worker sees the page go.
    let mut row = None;
    for _ in 0..100 {
        row = app
            .db()
            .stream_sessions_of_case(case.id)
            .await?
            .into_iter()
            .find(|r| r.id.to_string() == stream_id);
        if row.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = row.context("the grading session was not recorded")?;
    let lossless: Vec<Value> = serde_json::from_str(&row.lossless)?;
    let lossless_bytes = lossless
        .iter()
        .map(|r| r["bytes"].as_i64().unwrap_or(0))
        .sum();
    let first_frame_ms = result["first_frame_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let number = |key: &str| session[key].as_u64().unwrap_or(0);
    Ok(LargeCase {
        plaintext_bytes: report.plaintext_bytes,
        files: report.files,
        first_frame_ms,
        session: Session {
            seconds: session["ms"].as_f64().unwrap_or(0.0) / 1000.0,
            settles: number("settles"),
            slices_scrolled: number("slices_scrolled"),
            frames: row.frames,
            bytes_sent: row.bytes_sent,
            lossless_bytes,
            lossless_frames: lossless.len(),
            video_bytes_received: number("video_bytes_received"),
        },
    })
}

/// Writes the bundle directory (blocking; about a minute on 2 cores).
fn write_large_bundle(dir: &Path) -> Result<()> {
    let mut spec = SynthSpec::new(7701, "S7701");
    spec.fundus_size = 4096;
    spec.oct_frames = 256;
    write_bundle_dir(&spec, dir).context("synthetic bundle")?;
    let synth_bytes = dir_bytes(dir)?;

    let frame_bytes = u64::from(DENSE_SIDE * DENSE_SIDE);
    let per_eye = TARGET_BYTES
        .saturating_sub(synth_bytes)
        .div_ceil(2 * frame_bytes) as usize;
    let manifest_path = dir.join(readroom_domain::manifest::MANIFEST_FILE);
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path)?)?;
    let exams = manifest["exams"]
        .as_array_mut()
        .context("the manifest's exams")?;
    for (eye, seed) in [("OD", 1u64), ("OS", 2)] {
        let folder = format!("dense_{}", eye.to_lowercase());
        std::fs::create_dir_all(dir.join(&folder))?;
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut pixels = vec![0u8; frame_bytes as usize];
        let mut frames = Vec::with_capacity(per_eye);
        for index in 0..per_eye {
            // Speckle-like noise over a depth gradient (xorshift; every frame differs).
            for (i, p) in pixels.iter_mut().enumerate() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let depth = (i / DENSE_SIDE as usize) as u64 * 160 / u64::from(DENSE_SIDE);
                *p = (depth + (state & 0x5F)) as u8;
            }
            let name = format!("{folder}/{index:04}.png");
            write_png(&dir.join(&name), &pixels, DENSE_SIDE, DENSE_SIDE)?;
            frames.push(name);
        }
        let enface = format!("{folder}/enface.png");
        let mut slo = vec![0u8; 512 * 512];
        for (i, p) in slo.iter_mut().enumerate() {
            *p = ((i % 512) / 4 + (i / 512) / 4) as u8;
        }
        write_png(&dir.join(&enface), &slo, 512, 512)?;
        exams.push(json!({
            "id": format!("oct-dense-{}", eye.to_lowercase()),
            "kind": "oct",
            "eye": eye,
            "frames": frames,
            "enface": enface,
            "oct": { "lateral_um": 5.9, "axial_um": 3.9, "bscan_spacing_um": 6.0,
                     "enface_scan_rect": [32.0, 32.0, 480.0, 480.0] }
        }));
    }
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)?;
    Ok(())
}

fn write_png(path: &Path, pixels: &[u8], width: u32, height: u32) -> Result<()> {
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    PngEncoder::new_with_quality(file, CompressionType::Uncompressed, FilterType::NoFilter)
        .write_image(pixels, width, height, image::ExtendedColorType::L8)?;
    Ok(())
}

fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
