//! Worker tier (issue 15): the same grader workload in embedded mode (in-process worker) and
//! in distributed mode (`scripts/cluster`: HAProxy, two `readroom serve` replicas, two
//! `readroom worker` processes, PostgreSQL, s3s-fs), measured in headless Chromium:
//! - first frame of a cold case open, in-process and through a remote worker;
//! - "next case" on the same peer connection (`open_case`), navigation → first frame;
//! - failover: the worker serving the stream is killed (SIGKILL) and started again; kill →
//!   first frame on the new stream;
//! - sessions per worker core: nine graders' pages stream at once (the per-user limit is 3),
//!   one view change a second each, while the worker processes' CPU time is read from /proc.
//!
//! Run with `cargo bench -p readroom-tests --bench worker_bench` after
//! `cargo build --release --workspace --bins` (the cluster runs `target/release/readroom`).
//! Writes the `## Worker tier (issue 15)` section of `BENCHMARKS.md`; `WORKER_BENCH_QUICK=1`
//! makes a short run that only prints. Everything shares this machine's cores with Chromium.

#[path = "../tests/support/cluster.rs"]
mod harness;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use harness::Cluster;
use readroom_server::db::{AssignmentRole, Backend, Role, StudyCode};
use readroom_tests::browser;
use readroom_tests::report::percentile as pct;
use serde_json::{Value, json};
use support::TestApp;

const HEADING: &str = "## Worker tier (issue 15)";

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

fn quick() -> bool {
    std::env::var_os("WORKER_BENCH_QUICK").is_some()
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn summary(values: &[f64]) -> String {
    if values.is_empty() {
        return "—".into();
    }
    format!(
        "p50 {:.0} ms, p95 {:.0} ms (n = {})",
        pct(values, 0.5),
        pct(values, 0.95),
        values.len()
    )
}

/// CPU time (user + system) of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the command.
    (ticks(11) + ticks(12)) / 100.0
}

async fn wait_file(path: std::path::PathBuf) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && !text.is_empty()
        {
            return Ok(text);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Embedded mode: the demo on SQLite with its in-process worker; cold opens and next case.
async fn embedded(opens: usize, rounds: usize) -> Result<Value> {
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let study = app
        .db()
        .study_by_code(&StudyCode::new("DEMO").expect("code"))
        .await?;
    let grader = app
        .user("grader.bench", &[(Role::Grader, Some(study.id))])
        .await;
    let mut ids = Vec::new();
    for summary in app.db().list_cases(study.id).await?.into_iter().take(4) {
        app.assign(&summary.case, &grader, AssignmentRole::Grader)
            .await;
        ids.push(summary.case.id.to_string());
    }
    browser::run_script_async(
        "worker-bench.mjs",
        json!({
            "base_url": app.url,
            "link_url": app.link(&grader).await,
            "case_ids": ids,
            "opens": opens,
            "rounds": rounds,
            "kills": 0,
        }),
        Duration::from_secs(600),
    )
    .await
}

async fn bench() -> Result<()> {
    browser::check_prerequisites()?;
    let (opens, rounds, kills, load_secs) = if quick() {
        (3, 1, 2, 10)
    } else {
        (7, 3, 5, 30)
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let local = embedded(opens, rounds).await?;
    println!("embedded: {local}");

    let mut cluster = Cluster::start(&[]).await;
    let grader = cluster.link("grader").username.clone();
    // The grader's first four cases, in worklist order.
    let graders: Vec<String> = cluster
        .links
        .iter()
        .filter(|l| l.role == "grader")
        .map(|l| l.username.clone())
        .collect();
    let user = cluster.db.user_by_username(&grader).await?;
    let mut ids: Vec<String> = cluster
        .db
        .assignments_for_user(user.id)
        .await?
        .into_iter()
        .filter(|a| {
            a.role == AssignmentRole::Grader
                && a.kind == readroom_server::db::AssignmentKind::Primary
        })
        .map(|a| a.case.case.id.to_string())
        .collect();
    ids.sort();
    ids.dedup();
    ids.truncate(4);
    anyhow::ensure!(ids.len() >= 2, "{grader} has fewer than two cases");
    let sync = cluster.dir.path().join("bench-sync");
    std::fs::create_dir_all(&sync)?;
    let run = tokio::spawn(browser::run_script_async(
        "worker-bench.mjs",
        json!({
            "base_url": cluster.url,
            "link_url": cluster.readroom(&["user", "link", &grader]),
            "case_ids": ids,
            "opens": opens,
            "rounds": rounds,
            "kills": kills,
            "dir": sync,
        }),
        Duration::from_secs(900),
    ));
    for k in 0..kills {
        let ready: Value =
            serde_json::from_str(&wait_file(sync.join(format!("ready-{k}"))).await?)?;
        let stream = ready["stream"].as_str().context("stream id")?;
        let live = cluster.db.live_streams().await?;
        let serving = live
            .iter()
            .find(|s| s.id.to_string() == stream)
            .map(|s| s.worker_id.clone())
            .context("the stream's worker")?;
        cluster.kill(&serving);
        let killed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis();
        std::fs::write(sync.join(format!("killed-{k}")), killed.to_string())?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let n: u8 = serving.trim_start_matches('w').parse()?;
        cluster.restart_worker(n);
        // Back in the pool (a fresh heartbeat) before the next kill.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = readroom_server::auth::now_unix();
            let fresh = cluster
                .db
                .workers()
                .await?
                .into_iter()
                .filter(|w| now - w.last_seen_unix <= 1)
                .count();
            if fresh == 2 {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "{serving} did not come back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::fs::write(sync.join(format!("restarted-{k}")), "1")?;
    }
    let remote = run.await??;
    println!("cluster: {remote}");

    // The benchmark page's streams end first (the per-user limit counts open streams).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster.db.live_streams().await?.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "streams stayed open after the page closed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Load: three pages per grader (the per-user limit), a view change a second each.
    let mut links = Vec::new();
    for name in &graders {
        for _ in 0..3 {
            links.push(cluster.readroom(&["user", "link", name]));
        }
    }
    let load_dir = cluster.dir.path().join("load-sync");
    std::fs::create_dir_all(&load_dir)?;
    let load_run = tokio::spawn(browser::run_script_async(
        "worker-load.mjs",
        json!({ "base_url": cluster.url, "links": links, "seconds": load_secs, "dir": load_dir }),
        Duration::from_secs(600),
    ));
    wait_file(load_dir.join("loaded")).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pids = [cluster.pid("w1"), cluster.pid("w2")];
    let live = cluster.db.live_streams().await?;
    let per_worker: Vec<usize> = ["w1", "w2"]
        .iter()
        .map(|w| live.iter().filter(|s| s.worker_id == *w).count())
        .collect();
    let before: Vec<f64> = pids.iter().map(|p| cpu_seconds(*p)).collect();
    let started = Instant::now();
    let window = Duration::from_secs((load_secs as u64).saturating_sub(6).max(4));
    tokio::time::sleep(window).await;
    let elapsed = started.elapsed().as_secs_f64();
    let used: Vec<f64> = pids
        .iter()
        .zip(&before)
        .map(|(p, b)| (cpu_seconds(*p) - b) / elapsed)
        .collect();
    let loaded = load_run.await??;
    println!("load: {loaded}; sessions per worker {per_worker:?}; cores used {used:?}");
    let sessions: usize = per_worker.iter().sum();
    let cores: f64 = used.iter().sum();

    let local_cold = floats(&local["cold_ms"]);
    let local_next = floats(&local["next_ms"]);
    let local_other = floats(&local["other_ms"]);
    let remote_cold = floats(&remote["cold_ms"]);
    let remote_next = floats(&remote["next_ms"]);
    let remote_other = floats(&remote["other_ms"]);
    let failover = floats(&remote["failover_ms"]);
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let section = format!(
        "{HEADING}\n\nCommand: `cargo build --release --workspace --bins && cargo bench -p readroom-tests --bench worker_bench` \
(release; Chromium headless on loopback, window 1280×800; demo data). Embedded: the demo on SQLite with its in-process worker. \
Distributed: `scripts/cluster` (HAProxy → two `readroom serve` replicas on PostgreSQL and s3s-fs, two `readroom worker` processes), \
used only through the load balancer. Server, workers, PostgreSQL, HAProxy and Chromium share this machine's 2 cores; load average \
at the start: {load}. Code at {commit}, one run.\n\n\
| measure | embedded (in-process worker) | distributed (remote worker) | target |\n|---|---|---|---|\n\
| case open → first frame presented (cold page load) | {} | {} | |\n\
| next case on the same connection (the form's next case, prefetched): navigation → first frame | {} | {} | <50 ms p50 |\n\
| another case on the same connection (not prefetched): navigation → first frame | {} | {} | |\n\
| … same peer connection kept for every next case | {} | {} | |\n\
| failover: worker killed (SIGKILL) → first frame on another worker | — | {} | <3 s p50 |\n\
| sessions per worker core: {sessions} sessions ({per_worker:?} on w1/w2), a view change a second each | — | {:.1} cores used by the two workers → **{:.1} sessions per core** | ≥10 |\n",
        summary(&local_cold),
        summary(&remote_cold),
        summary(&local_next),
        summary(&remote_next),
        summary(&local_other),
        summary(&remote_other),
        local["same_stream"],
        remote["same_stream"],
        summary(&failover),
        cores,
        sessions as f64 / cores.max(1e-9),
    );
    println!("{section}");
    if !quick() {
        let path = readroom_tests::report::write_section(HEADING, &section)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
