//! Input → frame latency probe, run by hand (ignored in the normal run):
//! `cargo test --release -p readroom-tests --test e2e stream_latency:: -- --ignored --nocapture`.
//! Drives `tests/js/latency-probe.mjs` against the demo OCT case (150 slice steps, or
//! `LATENCY_STEPS`) and prints, per stage in the browser, the percentiles from input to the
//! frame's last packet received, decoded and presented, and the worker's mean render and
//! encode times. `LATENCY_OUT=file` keeps the per-step JSON. With `RUST_LOG` set (e.g.
//! `RUST_LOG=info,readroom_worker::stream=debug`) the server logs to stderr, including the
//! worker's per-frame `frame sent` line (wait since the input, render, encode, write).

use crate::support;

use std::time::Duration;

use readroom_server::db::{AssignmentRole, Backend, Role};
use readroom_tests::report::percentile as pct;
use serde_json::{Value, json};
use support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn input_to_frame_latency() {
    readroom_tests::browser::check_prerequisites().expect("Chromium and playwright-core");
    if std::env::var_os("RUST_LOG").is_some() {
        readroom_server::logging::init("text");
    }
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let study = app.demo_study().await;
    let grader = app
        .user("grader.latency", &[(Role::Grader, Some(study.id))])
        .await;
    let mut oct_case = None;
    for summary in app.db().list_cases(study.id).await.expect("cases") {
        let bundle = app.db().bundle_by_id(summary.case.bundle_id).await.unwrap();
        if bundle.summary.to_string().contains("\"oct\"") {
            oct_case = Some(summary.case);
            break;
        }
    }
    let case = oct_case.expect("a demo case with OCT");
    app.assign(&case, &grader, AssignmentRole::Grader).await;
    let steps: u64 = std::env::var("LATENCY_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let link = app.link(&grader).await;
    let result: Value = readroom_tests::browser::run_script_async(
        "latency-probe.mjs",
        json!({
            "base_url": app.url,
            "link_url": link,
            "case_id": case.id.to_string(),
            "window": { "width": 1920, "height": 1080 },
            "steps": steps,
        }),
        Duration::from_secs(300),
    )
    .await
    .expect("the probe ran");
    if let Some(failed) = result.get("failed") {
        panic!(
            "the viewer did not stream: {failed}\n{:#}\n{}",
            result["diagnosis"],
            result["sdp"]["remote"].as_str().unwrap_or_default()
        );
    }
    if let Ok(path) = std::env::var("LATENCY_OUT") {
        std::fs::write(path, result.to_string()).expect("written");
    }
    let rows = result["steps"].as_array().cloned().unwrap_or_default();
    let column = |key: &str| -> Vec<f64> { rows.iter().filter_map(|r| r[key].as_f64()).collect() };
    for key in ["received", "decoded", "presented", "callback"] {
        let values = column(key);
        println!(
            "{key:>10}: p50 {:6.1} ms  p95 {:6.1} ms  (n = {})",
            pct(&values, 0.5),
            pct(&values, 0.95),
            values.len()
        );
    }
    if let Some(streamer) = app.state.embedded.as_ref() {
        let (frames, render_ms, encode_ms) = streamer.metrics();
        println!(
            "worker: {frames} frames, render {render_ms:.1} ms, encode {encode_ms:.1} ms (means)"
        );
    }
}
