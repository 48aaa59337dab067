//! Streaming: time to first frame, input → decoded frame, lossless settle, scroll fps, encode
//! time, bytes per case and the worker's CPU and memory per session, measured in headless
//! Chromium on loopback against the real server with its in-process worker.
//!
//! Run with `cargo bench -p readroom-tests --bench stream_bench`. It prints a table and writes
//! the `## Streaming (issue 4)` section of `BENCHMARKS.md`. `STREAM_BENCH_LARGE_ONLY=1` runs only
//! the large case (`stream/large_case.rs`) and prints its rows. `STREAM_BENCH_QUICK=1` is a
//! short development run (fewer opens and steps, shorter phases, a ~250 MB large case; about two
//! minutes once built) that prints its table without writing `BENCHMARKS.md`. Needs what
//! `scripts/setup` installs (Chromium, playwright-core).
//!
//! The server runs in this process (demo data on SQLite), so the CPU time and RSS sampled from
//! `/proc/self` every 100 ms are the server's and the worker's; Chromium runs in its own
//! processes and is not counted. `tests/js/stream-bench.mjs` drives the viewer and reports the
//! wall-clock boundaries of its phases so the samples can be attributed to them.

#[path = "stream/large_case.rs"]
mod stream_large_case;
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use readroom_server::db::{AssignmentRole, Backend, Role, StudyCode};
use readroom_tests::report::percentile as pct;
use serde_json::{Value, json};
use support::TestApp;

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const SESSIONS: usize = 10;
const HEADING: &str = "## Streaming (issue 4)";

#[derive(Clone, Copy)]
struct Sample {
    at_ms: u64,
    cpu_ticks: u64,
    rss_kib: u64,
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

async fn bench() -> Result<()> {
    readroom_tests::browser::check_prerequisites()?;
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let study = app
        .db()
        .study_by_code(&StudyCode::new("DEMO").expect("code"))
        .await?;
    let grader = app
        .user("grader.bench", &[(Role::Grader, Some(study.id))])
        .await;
    if std::env::var_os("STREAM_BENCH_LARGE_ONLY").is_some() {
        // While working on the large case: run it alone and print, without writing the report.
        let large = stream_large_case::run(&app, &grader, (WIDTH, HEIGHT)).await?;
        println!("{}", large_report(&large));
        return Ok(());
    }
    let mut oct_case = None;
    let mut all = Vec::new();
    for summary in app.db().list_cases(study.id).await? {
        let bundle = app.db().bundle_by_id(summary.case.bundle_id).await?;
        if oct_case.is_none() && bundle.summary.to_string().contains("\"oct\"") {
            oct_case = Some((summary.case.clone(), bundle.plaintext_size));
        }
        app.assign(&summary.case, &grader, AssignmentRole::Grader)
            .await;
        all.push(summary.case.id.to_string());
    }
    let (case, bundle_bytes) = oct_case.context("a demo case with OCT")?;
    let quick = stream_large_case::quick();
    let load_sessions = if quick { 4 } else { SESSIONS };
    let load_cases: Vec<String> = (0..load_sessions)
        .map(|i| all[i % all.len()].clone())
        .collect();

    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (samples, sampling) = (Arc::clone(&samples), Arc::clone(&sampling));
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(sample) = sample() {
                    samples.lock().expect("samples").push(sample);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let link = app.link(&grader).await;
    let result: Value = readroom_tests::browser::run_script_async(
        "stream-bench.mjs",
        json!({
            "base_url": app.url,
            "link_url": link,
            "case_id": case.id.to_string(),
            "load_cases": load_cases,
            "window": { "width": WIDTH, "height": HEIGHT },
            "opens": if quick { 3 } else { 7 },
            "steps": if quick { 40 } else { 150 },
            "settles": if quick { 3 } else { 15 },
            "scroll_ms": if quick { 1500 } else { 4000 },
            "idle_ms": if quick { 2000 } else { 8000 },
        }),
        Duration::from_secs(600),
    )
    .await?;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.join();
    let streamer = app.state.embedded.as_ref().context("in-process worker")?;
    let (frames, render_ms, encode_ms) = streamer.metrics();

    // Bytes sent for the session that did the grading-like work (the first open's rows are
    // short; take the session with the most frames on the benchmark case).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rows = app.db().stream_sessions_of_case(case.id).await?;
    let busiest = rows
        .iter()
        .max_by_key(|row| row.frames)
        .context("no stream session recorded")?;

    let numbers = |key: &str| -> Vec<f64> {
        result[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    let first = numbers("first_frame_ms");
    let latencies = numbers("latencies_ms");
    let decoded = numbers("decoded_ms");
    let decoded_rvfc = numbers("decoded_rvfc_ms");
    let received = numbers("received_ms");
    let jitter_buffer = numbers("jitter_buffer_ms");
    let decode = numbers("decode_ms");
    let skipped = result["decoded_skipped"].as_u64().unwrap_or(0);
    let settle = numbers("settle_ms");
    let scroll_fps = result["scroll"]["frames"].as_f64().unwrap_or(0.0)
        / (result["scroll"]["ms"].as_f64().unwrap_or(1.0) / 1000.0);
    let phases = &result["phases"];
    let phase = |name: &str| phases[name].as_u64().unwrap_or(0);
    let samples = samples.lock().expect("samples").clone();
    let baseline = window(&samples, phase("baseline"), phase("open"));
    let idle = window(&samples, phase("idle"), phase("active"));
    let active = window(&samples, phase("active"), phase("end"));
    let sessions = result["sessions"].as_u64().unwrap_or(0).max(1) as f64;
    let per_session = |w: &Window| (w.cpu_percent - baseline.cpu_percent).max(0.0) / sessions;
    let rss_per_session = |w: &Window| (w.rss_mib - baseline.rss_mib) / sessions;
    let active_cpu = per_session(&active);
    let per_core = if active_cpu > 0.0 {
        100.0 / active_cpu
    } else {
        f64::INFINITY
    };
    let bytes_fraction = busiest.bytes_sent as f64 / bundle_bytes as f64;

    let profile = if cfg!(debug_assertions) {
        "dev profile: dependencies at opt-level 2, workspace at 1"
    } else {
        "release"
    };
    let flag = if cfg!(debug_assertions) {
        " --profile dev"
    } else {
        ""
    };
    let viewport = &result["viewport"];
    let report = format!(
        "{HEADING}\n\n\
         Command: `cargo bench -p readroom-tests --bench stream_bench{flag}` ({profile}; Chromium {} \
         headless on loopback, window {WIDTH}×{HEIGHT}, frames {}×{} device pixels; server, \
         worker and Chromium share this machine's 2 cores). Demo case on SQLite, bundle \
         {:.1} MB of plaintext.\n\n\
         | measure | p50 | p95 | target |\n|---|---|---|---|\n\
         | case open → first decoded frame ({} opens) | {:.0} ms | {:.0} ms | <300 ms p50 |\n\
         | input → decoded changed frame ({} of {} slice steps; first packet + `totalProcessingDelay`) | {:.1} ms | {:.1} ms | p50 <40, p95 <80 ms |\n\
         | … its last packet received (rVFC `receiveTime`) | {:.1} ms | {:.1} ms | |\n\
         | … rVFC `receiveTime` + `processingDuration` (decode time only: a lower bound) | {:.1} ms | {:.1} ms | |\n\
         | … presented (rVFC callback: next vsync after compositing) | {:.1} ms | {:.1} ms | |\n\
         | per frame in Chromium: jitter buffer / decode | {:.1} / {:.1} ms | {:.1} / {:.1} ms | |\n\
         | input → lossless frame verified in the browser ({} steps) | {:.0} ms | {:.0} ms | <500 ms |\n\n\
         | measure | value | target |\n|---|---|---|\n\
         | sustained OCT scroll, input every 16 ms | {scroll_fps:.1} frames/s presented | ≥30 |\n\
         | render / encode per frame (mean of {frames} frames) | {render_ms:.1} ms / {encode_ms:.1} ms | |\n\
         | stress case, not a graded case: bytes sent in the busiest session on the demo bundle (fast scroll, {} frames, {} lossless) | {:.2} MB = {:.2} % of the bundle | (graded case below) |\n\
         | server+worker CPU, no session | {:.1} % of a core | |\n\
         | {} idle sessions, all together | {:.1} % of a core | |\n\
         | per idle session | {:.2} % of a core, {:.1} MiB RSS | |\n\
         | {} active sessions (1 input/s each), all together | {:.1} % of a core | |\n\
         | per active session | {:.2} % of a core, {:.1} MiB RSS | ≥10 sessions per core |\n\
         | sessions per core at 1 input/s | {per_core:.0} | ≥10 |\n",
        chromium_version(),
        viewport["width"],
        viewport["height"],
        bundle_bytes as f64 / 1e6,
        first.len(),
        pct(&first, 0.5),
        pct(&first, 0.95),
        decoded.len(),
        decoded.len() as u64 + skipped,
        pct(&decoded, 0.5),
        pct(&decoded, 0.95),
        pct(&received, 0.5),
        pct(&received, 0.95),
        pct(&decoded_rvfc, 0.5),
        pct(&decoded_rvfc, 0.95),
        pct(&latencies, 0.5),
        pct(&latencies, 0.95),
        pct(&jitter_buffer, 0.5),
        pct(&decode, 0.5),
        pct(&jitter_buffer, 0.95),
        pct(&decode, 0.95),
        settle.len(),
        pct(&settle, 0.5),
        pct(&settle, 0.95),
        busiest.frames,
        lossless_count(&busiest.lossless),
        busiest.bytes_sent as f64 / 1e6,
        bytes_fraction * 100.0,
        baseline.cpu_percent,
        sessions,
        idle.cpu_percent,
        per_session(&idle),
        rss_per_session(&idle),
        sessions,
        active.cpu_percent,
        active_cpu,
        rss_per_session(&active),
    );
    let large = stream_large_case::run(&app, &grader, (WIDTH, HEIGHT)).await?;
    let report = format!("{report}{}", large_report(&large));
    println!("{report}");
    if quick {
        println!("STREAM_BENCH_QUICK: not written to BENCHMARKS.md");
        return Ok(());
    }
    let path = readroom_tests::report::write_section(HEADING, &report)?;
    println!("written to {}", path.display());
    Ok(())
}

/// CPU use (percent of one core) and mean RSS between two wall-clock instants.
struct Window {
    cpu_percent: f64,
    rss_mib: f64,
}

fn window(samples: &[Sample], from_ms: u64, to_ms: u64) -> Window {
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at_ms >= from_ms && s.at_ms <= to_ms)
        .collect();
    let (Some(first), Some(last)) = (inside.first(), inside.last()) else {
        return Window {
            cpu_percent: 0.0,
            rss_mib: 0.0,
        };
    };
    let ticks_per_s = 100.0; // USER_HZ on Linux
    let seconds = (last.at_ms - first.at_ms) as f64 / 1000.0;
    let cpu = (last.cpu_ticks - first.cpu_ticks) as f64 / ticks_per_s;
    Window {
        cpu_percent: if seconds > 0.0 {
            cpu / seconds * 100.0
        } else {
            0.0
        },
        rss_mib: inside.iter().map(|s| s.rss_kib as f64).sum::<f64>()
            / inside.len() as f64
            / 1024.0,
    }
}

/// This process's CPU time (utime + stime, in clock ticks) and resident set now.
fn sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    Some(Sample {
        at_ms,
        cpu_ticks: utime + stime,
        rss_kib,
    })
}

/// The rows of the large case: first frame on ~1 GB, and one graded case's bytes.
fn large_report(large: &stream_large_case::LargeCase) -> String {
    let s = &large.session;
    let bundle = large.plaintext_bytes as f64;
    let video = s.bytes_sent - s.lossless_bytes;
    let read: Vec<f64> = large
        .first_frame_read_bytes
        .iter()
        .map(|b| *b as f64)
        .collect();
    let (view_entry, view_bytes) = &large.first_view;
    format!(
        "\n### A survey-sized case: {:.0} MB bundle ({} files)\n\n\
         The synthetic subject with 4096-pixel fundus photographs and an OCT volume per eye (what \
         the graded case looks at), plus a dense raster volume of 1024×1024 B-scans per eye that \
         fills the bundle up and is never viewed (`tests/benches/stream/large_case.rs`). The \
         graded case: the first view (fundus OD) settles; 1:1 zoom, two pans, red-free on and off, \
         back to fit; fundus OS; each eye's OCT volume scrolled end to end at 15 B-scans/s, \
         stopping to let a few B-scans settle; both eyes side by side; every stop waits for the \
         lossless frame to be verified in the browser.\n\n\
         | measure | value | target |\n|---|---|---|\n\
         | case open → first decoded frame ({} opens) | p50 {:.0} ms, p95 {:.0} ms | <300 ms p50 |\n\
         | … bytes read by the server process per open (ciphertext fetched from the local store + a little noise; quiet rate {:.1} kB/s) | median {:.2} MB, max {:.2} MB (first view `{}`: {:.2} MB) | |\n\
         | one graded case: {:.0} s, {} views settled, {} B-scans scrolled | {:.2} MB sent = **{:.2} %** of the bundle | <5 % |\n\
         | … video | {} frames, {:.2} MB = {:.2} % (browser counted {:.2} MB of payload) | |\n\
         | … lossless | {} frames started, {:.2} MB = {:.2} % | |\n\n\
         Where an open's time goes (median ms since the page's navigation started, from the \
         viewer's User Timing marks): {}.\n",
        bundle / 1e6,
        large.files,
        large.first_frame_ms.len(),
        pct(&large.first_frame_ms, 0.5),
        pct(&large.first_frame_ms, 0.95),
        large.quiet_read_bytes_per_s / 1e3,
        pct(&read, 0.5) / 1e6,
        pct(&read, 1.0) / 1e6,
        view_entry,
        *view_bytes as f64 / 1e6,
        s.seconds,
        s.settles,
        s.slices_scrolled,
        s.bytes_sent as f64 / 1e6,
        s.bytes_sent as f64 / bundle * 100.0,
        s.frames,
        video as f64 / 1e6,
        video as f64 / bundle * 100.0,
        s.video_bytes_received as f64 / 1e6,
        s.lossless_frames,
        s.lossless_bytes as f64 / 1e6,
        s.lossless_bytes as f64 / bundle * 100.0,
        large
            .phases
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn lossless_count(json: &str) -> usize {
    serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

fn chromium_version() -> String {
    std::process::Command::new(readroom_tests::browser::CHROMIUM)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
