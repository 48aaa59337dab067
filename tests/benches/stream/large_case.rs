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
/// The same with `STREAM_BENCH_QUICK` (a development run).
const QUICK_TARGET_BYTES: u64 = 250_000_000;
/// Side of a dense raster B-scan.
const DENSE_SIDE: u32 = 1024;

/// Whether `STREAM_BENCH_QUICK` asks for a short development run (smaller bundle, fewer opens,
/// shorter looks; the numbers are printed, not written to `BENCHMARKS.md`).
pub fn quick() -> bool {
    std::env::var_os("STREAM_BENCH_QUICK").is_some()
}

/// What the large case measured.
pub struct LargeCase {
    /// Plaintext bytes of the ingested bundle (the zip inside the ciphertext).
    pub plaintext_bytes: u64,
    /// Files in the bundle.
    pub files: usize,
    /// Case open → first decoded frame, ms, per open.
    pub first_frame_ms: Vec<f64>,
    /// Bytes the server process read (`rchar` of `/proc/self/io`) during each open, from the
    /// navigation to the first frame: the ciphertext the worker fetched from the local store, plus
    /// a little noise (database pages, HTTP requests, the samplers' own reads of `/proc`).
    pub first_frame_read_bytes: Vec<u64>,
    /// The same counter's rate on a quiet second (nothing going on), bytes/s.
    pub quiet_read_bytes_per_s: f64,
    /// The first view's image entry (what the first frame shows) and its plaintext size.
    pub first_view: (String, u64),
    /// Median ms since navigation of each connection phase (the viewer's User Timing marks),
    /// in the order they happen.
    pub phases: Vec<(String, f64)>,
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
    let quick = quick();
    let first_view = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            write_large_bundle(&dir, quick)?;
            first_view(&dir)
        }
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
    let reads = ReadSampler::start();
    let result = readroom_tests::browser::run_script_async(
        "stream-case-bench.mjs",
        json!({
            "base_url": app.url,
            "link_url": link,
            "case_id": case.id.to_string(),
            "window": { "width": window.0, "height": window.1 },
            "opens": if quick { 2 } else { 7 },
            "scroll_hz": 15,
            "stops": if quick { 2 } else { 5 },
            "look_ms": if quick { 300 } else { 1500 },
        }),
        Duration::from_secs(900),
    )
    .await;
    let reads = reads.stop();
    let result: Value = result?;
    let window_of =
        |value: &Value| -> Option<(u64, u64)> { Some((value[0].as_u64()?, value[1].as_u64()?)) };
    let first_frame_read_bytes = result["open_windows"]
        .as_array()
        .map(|opens| {
            opens
                .iter()
                .filter_map(window_of)
                .filter_map(|(from, to)| read_between(&reads, from, to))
                .collect()
        })
        .unwrap_or_default();
    let quiet_read_bytes_per_s = window_of(&result["quiet_window"])
        .and_then(|(from, to)| {
            let bytes = read_between(&reads, from, to)?;
            Some(bytes as f64 / ((to - from).max(1) as f64 / 1000.0))
        })
        .unwrap_or(f64::NAN);

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
    let mut phases = Vec::new();
    for name in [
        "open",
        "offer-sent",
        "answer",
        "ice-connected",
        "connected",
        "channel-open",
        "ready",
        "first-frame",
    ] {
        let times: Vec<f64> = result["phases"]
            .as_array()
            .map(|opens| opens.iter().filter_map(|o| o[name].as_f64()).collect())
            .unwrap_or_default();
        if !times.is_empty() {
            phases.push((name.to_owned(), median(&times)));
        }
    }
    let number = |key: &str| session[key].as_u64().unwrap_or(0);
    Ok(LargeCase {
        plaintext_bytes: report.plaintext_bytes,
        files: report.files,
        first_frame_ms,
        first_frame_read_bytes,
        quiet_read_bytes_per_s,
        first_view,
        phases,
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

/// Writes the bundle directory (blocking; about 10 s on 2 cores). `quick`: 64 B-scans per
/// synthetic volume and about 250 MB.
fn write_large_bundle(dir: &Path, quick: bool) -> Result<()> {
    let mut spec = SynthSpec::new(7701, "S7701");
    spec.fundus_size = 4096;
    spec.oct_frames = if quick { 64 } else { 256 };
    write_bundle_dir(&spec, dir).context("synthetic bundle")?;
    let synth_bytes = dir_bytes(dir)?;

    let frame_bytes = u64::from(DENSE_SIDE * DENSE_SIDE);
    let target = if quick {
        QUICK_TARGET_BYTES
    } else {
        TARGET_BYTES
    };
    let per_eye = target.saturating_sub(synth_bytes).div_ceil(2 * frame_bytes) as usize;
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

/// The entry the first frame shows (the worker's initial view: the first image exam, its middle
/// B-scan if it has frames) and its size.
fn first_view(dir: &Path) -> Result<(String, u64)> {
    let manifest: Value = serde_json::from_slice(&std::fs::read(
        dir.join(readroom_domain::manifest::MANIFEST_FILE),
    )?)?;
    let exams = manifest["exams"]
        .as_array()
        .context("the manifest's exams")?;
    let entry = exams
        .iter()
        .find_map(|exam| {
            if let Some(frames) = exam["frames"].as_array().filter(|f| !f.is_empty()) {
                return frames[frames.len() / 2].as_str();
            }
            exam["file"].as_str()
        })
        .context("an exam with an image")?
        .to_owned();
    let size = std::fs::metadata(dir.join(&entry))?.len();
    Ok((entry, size))
}

/// Samples this process's `rchar` (bytes passed to read(2) and the like, `/proc/self/io`) every
/// 5 ms on its own thread, with the wall clock (epoch ms).
struct ReadSampler {
    samples: std::sync::Arc<std::sync::Mutex<Vec<(u64, u64)>>>,
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl ReadSampler {
    fn start() -> ReadSampler {
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let thread = std::thread::spawn({
            let (samples, running) = (samples.clone(), running.clone());
            move || {
                while running.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(sample) = read_counter() {
                        samples.lock().expect("samples").push(sample);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        ReadSampler {
            samples,
            running,
            thread,
        }
    }

    fn stop(self) -> Vec<(u64, u64)> {
        self.running
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let _ = self.thread.join();
        std::mem::take(&mut *self.samples.lock().expect("samples"))
    }
}

/// (epoch ms, rchar) now.
fn read_counter() -> Option<(u64, u64)> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    let rchar = io
        .lines()
        .find_map(|l| l.strip_prefix("rchar:"))?
        .trim()
        .parse()
        .ok()?;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    Some((at, rchar))
}

/// Bytes read from the last sample at or before `from` to the first at or after `to`.
fn read_between(samples: &[(u64, u64)], from: u64, to: u64) -> Option<u64> {
    let start = samples.iter().rev().find(|(at, _)| *at <= from)?.1;
    let end = samples.iter().find(|(at, _)| *at >= to)?.1;
    Some(end.saturating_sub(start))
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
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
