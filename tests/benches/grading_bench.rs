//! Grading: request latency under 200 concurrent graders on PostgreSQL, and the time to compute
//! a study's agreement statistics and exports.
//!
//! Run with `cargo bench -p readroom-tests --bench grading_bench`. It prints a report and writes
//! the `## Grading (issue 6)` section of `BENCHMARKS.md`.
//!
//! 1. **HTTP.** The real server (production router and middleware, in this process) on loopback
//!    over a fresh PostgreSQL database: a study with the `icdr` preset form (set by a
//!    coordinator through `PUT /api/studies/{code}/form`), `CASES` metadata-only cases,
//!    `GRADERS` graders and `ADJUDICATORS` adjudicators, each signed in through a one-time link
//!    with their own session cookie, and one batch (`POST /api/studies/{code}/batches`,
//!    `per_case` 2). First one extra grader works alone through `SOLO_CASES` cases of their own
//!    (uncontended latency: the requests' own cost); then the `GRADERS` clients run at once, each
//!    looping `GET /api/worklist` → `GET /api/cases/{id}/form` → `PUT /api/cases/{id}/draft` →
//!    `POST /api/cases/{id}/grade` until their worklist has nothing left, with no pause between
//!    requests. One case in five is graded one ICDR step apart by its two graders, so the second
//!    submission opens an adjudication round and assigns it (routing runs under load too).
//!    Afterwards the study's agreement, progress and CSV export are fetched through the API.
//! 2. **Computation.** Agreement statistics, progress and the export of a study of 6,000 cases ×
//!    2 graders, built in memory (`StudyRecords`, the rows `reports::load` reads), timed as pure
//!    functions; the grader roster varies (2, 20 and 200 graders, cases spread by the assignment
//!    planner).
//!
//! The client tasks and the server share this process's Tokio runtime (2 worker threads) and,
//! with PostgreSQL, the machine's cores. CPU time of this process and of the `postgres` processes
//! is read from `/proc` around the concurrent phase.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use readroom_domain::assignment::{CaseRef, GraderLoad, PlanOptions, plan};
use readroom_domain::grading::export::{self, CsvTable};
use readroom_domain::grading::records::{
    AdjudicationStatus, AssignmentKind, CaseInfo, FormVersion, StudyRecords,
};
use readroom_domain::grading::stats;
use readroom_domain::grading::{Form, presets};
use readroom_server::db::grading::{Adjudication, Batch, Grade};
use readroom_server::db::{
    Assignment, AssignmentRole, AssignmentStatus, Backend, Case, Role, User,
};
use readroom_server::grading::reports;
use serde_json::{Value, json};
use support::{Browser, Reply, TestApp};
use time::OffsetDateTime;
use uuid::Uuid;

const HEADING: &str = "## Grading (issue 6)";
const PHASES: [&str; 3] = ["saturated", "paced", "saturated, 3rd batch"];
const STUDY: &str = "GRADE";
const CASES: usize = 2_000;
const GRADERS: usize = 200;
const ADJUDICATORS: usize = 4;
const SOLO_CASES: usize = 20;
/// One case in `DISAGREE_EVERY` is graded differently by its two graders.
const DISAGREE_EVERY: usize = 5;
/// Mean pause before each request in the paced phase (`READROOM_BENCH_THINK_MS` overrides).
const THINK_MS: u64 = 2_000;
const TARGET_P99_MS: f64 = 50.0;
const TARGET_AGREEMENT_S: f64 = 1.0;
const STATS_CASES: usize = 6_000;
const STATS_RUNS: usize = 7;
const HTTP_STATS_RUNS: usize = 7;
/// The build the numbers come from (`cargo bench` is release; `--profile dev` is not).
const PROFILE: &str = if cfg!(debug_assertions) {
    "dev profile: dependencies at opt-level 2, workspace at 1"
} else {
    "release"
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Op {
    Worklist,
    Form,
    Draft,
    Submit,
}

impl Op {
    const ALL: [Op; 4] = [Op::Worklist, Op::Form, Op::Draft, Op::Submit];

    fn route(self) -> &'static str {
        match self {
            Op::Worklist => "`GET /api/worklist`",
            Op::Form => "`GET /api/cases/{id}/form`",
            Op::Draft => "`PUT /api/cases/{id}/draft`",
            Op::Submit => "`POST /api/cases/{id}/grade`",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Op::Worklist => "worklist",
            Op::Form => "form",
            Op::Draft => "draft",
            Op::Submit => "submit",
        }
    }

    fn expected(self) -> u16 {
        match self {
            Op::Submit => 201,
            _ => 200,
        }
    }

    /// The target applies to submit and worklist.
    fn has_target(self) -> bool {
        matches!(self, Op::Worklist | Op::Submit)
    }
}

/// One request as a client saw it.
struct Sample {
    op: Op,
    latency: Duration,
    ok: bool,
    /// For submissions: the case.
    case: Option<Uuid>,
}

/// What one grader's client did.
struct ClientRun {
    grader: Uuid,
    samples: Vec<Sample>,
    graded: usize,
    errors: Vec<String>,
}

/// How a grader grades one case: the case's "truth", moved one step on OD by the grader chosen
/// to disagree.
#[derive(Clone, Copy)]
struct CasePlan {
    od: i64,
    os: i64,
    dme: &'static str,
    deviator: Option<Uuid>,
}

impl CasePlan {
    fn values(&self, grader: Uuid) -> Value {
        let od = if self.deviator == Some(grader) {
            if self.od == 4 { 3 } else { self.od + 1 }
        } else {
            self.od
        };
        json!({
            "dr_grade": { "OD": od, "OS": self.os },
            "dme": { "OD": self.dme, "OS": "none" },
        })
    }
}

/// Percentile (nearest rank on the sorted values) in milliseconds.
fn pct_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
}

fn median_ms(values: &mut [Duration]) -> f64 {
    values.sort();
    pct_ms(values, 0.5)
}

struct Summary {
    count: usize,
    errors: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

fn summarize(samples: &[&Sample]) -> Summary {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort();
    Summary {
        count: samples.len(),
        errors: samples.iter().filter(|s| !s.ok).count(),
        p50: pct_ms(&latencies, 0.50),
        p95: pct_ms(&latencies, 0.95),
        p99: pct_ms(&latencies, 0.99),
        max: latencies
            .last()
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
    }
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc

/// CPU seconds of this process, of all `postgres` processes, and of the whole machine (busy).
#[derive(Clone, Copy, Default)]
struct Cpu {
    own: f64,
    postgres: f64,
    machine_busy: f64,
}

const TICKS_PER_S: f64 = 100.0; // USER_HZ on Linux

/// `(comm, utime + stime)` from a `/proc/<pid>/stat` text.
fn stat_ticks(stat: &str) -> Option<(&str, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = &stat[open + 1..close];
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

fn cpu_now() -> Cpu {
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| stat_ticks(&s).map(|(_, t)| t))
        .unwrap_or(0) as f64
        / TICKS_PER_S;
    let mut postgres = 0u64;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
                && let Some((comm, ticks)) = stat_ticks(&stat)
                && comm == "postgres"
            {
                postgres += ticks;
            }
        }
    }
    let machine_busy = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?.to_owned();
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3)? + v.get(4)?;
            Some(total - idle)
        })
        .unwrap_or(0) as f64
        / TICKS_PER_S;
    Cpu {
        own,
        postgres: postgres as f64 / TICKS_PER_S,
        machine_busy,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Other heavy processes on the machine now (compilers), which would distort the numbers.
fn busy_neighbours() -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
                && let Some((comm, _)) = stat_ticks(&stat)
                && matches!(comm, "rustc" | "cc" | "ld" | "clippy-driver")
            {
                found.push(comm.to_owned());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

// ---------------------------------------------------------------------------------------------

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let load_at_start = load_average();
    let neighbours_at_start = busy_neighbours();
    let think_ms = std::env::var("READROOM_BENCH_THINK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(THINK_MS);
    let http = runtime.block_on(http_bench(think_ms))?;
    let computation = computation_bench()?;
    let report = render(&http, &computation, &load_at_start, &neighbours_at_start);
    println!("{report}");
    println!("whole run: {:.0} s", started.elapsed().as_secs_f64());
    let path = readroom_tests::report::write_section(HEADING, &report)?;
    println!("written to {}", path.display());
    Ok(())
}

async fn put(browser: &mut Browser, path: &str, body: Value) -> Reply {
    browser.send("PUT", path, Some(body)).await
}

fn expect(reply: &Reply, status: u16, what: &str) -> Result<()> {
    ensure!(
        reply.status == status,
        "{what}: HTTP {} {}",
        reply.status,
        reply.body
    );
    Ok(())
}

/// `DATABASE` activity seen in `pg_stat_activity`, polled during a phase.
#[derive(Default)]
struct PgActivity {
    polls: u64,
    connections: u64,
    active: u64,
    by_wait: HashMap<String, u64>,
    by_query: HashMap<String, u64>,
}

const ACTIVITY_SQL: &str = "SELECT coalesce(state, ''), coalesce(wait_event_type, ''), \
     coalesce(wait_event, ''), left(regexp_replace(query, '\\s+', ' ', 'g'), 1000) \
     FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' \
     AND pid <> pg_backend_pid()";

/// Polls `pg_stat_activity` for `database` every 10 ms on its own thread until `stop`.
fn sample_pg(
    database: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<PgActivity>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            use sqlx::Connection;
            let admin = std::env::var("READROOM_TEST_PG_ADMIN_URL")
                .unwrap_or_else(|_| readroom_tests::pg::DEFAULT_ADMIN_URL.to_owned());
            let mut conn = sqlx::postgres::PgConnection::connect(&admin).await?;
            let mut activity = PgActivity::default();
            while !stop.load(Ordering::Relaxed) {
                let rows: Vec<(String, String, String, String)> = sqlx::query_as(ACTIVITY_SQL)
                    .bind(&database)
                    .fetch_all(&mut conn)
                    .await?;
                activity.polls += 1;
                activity.connections += rows.len() as u64;
                for (state, wait_type, wait, query) in rows {
                    if state != "active" {
                        continue;
                    }
                    activity.active += 1;
                    let wait = if wait_type.is_empty() {
                        "CPU (no wait event)".to_owned()
                    } else {
                        format!("{wait_type}: {wait}")
                    };
                    *activity.by_wait.entry(wait).or_default() += 1;
                    *activity.by_query.entry(query).or_default() += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            conn.close().await.ok();
            Ok(activity)
        })
    })
}

/// A query as the report names it: its start and its `WHERE` clause.
fn shorten(query: &str) -> String {
    let head: String = query.chars().take(40).collect();
    match query.find(" WHERE ") {
        Some(at) if query.chars().count() > 40 => {
            let filter: String = query[at + 1..].chars().take(70).collect();
            format!("{} … {}", head.trim(), filter.trim())
        }
        _ => query.chars().take(110).collect(),
    }
}

/// One run of all graders' clients through their worklists.
struct Phase {
    think_ms: u64,
    samples: Vec<Sample>,
    wall_s: f64,
    cpu: (Cpu, Cpu),
    graded: usize,
    errors: Vec<String>,
    disagreement_cases: usize,
    /// Submissions that opened a round (the later grade of a disagreeing pair).
    opener_latencies: Vec<Duration>,
    other_submit_latencies: Vec<Duration>,
    pg: PgActivity,
    batch_s: f64,
    batch_assignments: u64,
}

struct HttpResult {
    setup_s: f64,
    cases_s: f64,
    solo: Vec<Sample>,
    phases: Vec<Phase>,
    grades_submitted: u64,
    rounds_open: u64,
    adjudication_assignments: u64,
    agreement_http: Vec<Duration>,
    agreement_bytes: usize,
    agreement_pairs: usize,
    progress_http: Vec<Duration>,
    export_http: Vec<Duration>,
    export_bytes: usize,
    load_rows: Vec<Duration>,
    agreement_compute: Vec<Duration>,
    loaded_grades: usize,
    loaded_cases: usize,
    /// `EXPLAIN ANALYZE` of the hottest queries of the last phase: (query, execution ms, plan).
    explained: Vec<(String, f64, Vec<String>)>,
}

/// Registers `count` metadata-only cases named `{prefix}{n}`.
async fn add_cases(app: &TestApp, study: Uuid, prefix: &str, count: usize) -> Vec<Case> {
    let mut cases = Vec::with_capacity(count);
    for n in 0..count {
        cases.push(app.case(study, &format!("{prefix}{n:05}")).await);
    }
    cases
}

/// Forms a batch of `cases` over `graders` through the API and plans how each grader grades
/// each case: one case in `DISAGREE_EVERY` (when `disagree`) has its first grader (smallest
/// user id) move one step, so the pair disagrees. Returns the plans, the number of disagreeing
/// cases, the batch's assignments and how long the request took.
async fn add_batch(
    app: &TestApp,
    coord: &mut Browser,
    study: Uuid,
    name: &str,
    cases: &[Case],
    graders: &[&str],
    per_case: usize,
) -> Result<(HashMap<Uuid, CasePlan>, usize, u64, f64)> {
    let t = Instant::now();
    let batch = coord
        .post(
            &format!("/api/studies/{STUDY}/batches"),
            json!({
                "name": name,
                "cases": cases.iter().map(|c| c.id).collect::<Vec<_>>(),
                "graders": graders,
                "per_case": per_case,
            }),
        )
        .await;
    let batch_s = t.elapsed().as_secs_f64();
    expect(&batch, 201, name)?;
    let made = batch.body["assignments"].as_u64().unwrap_or(0);
    ensure!(
        made == (cases.len() * per_case) as u64,
        "batch {name} made {made} assignments"
    );
    let mut on_case: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for a in app.db().assignments_for_study(study).await? {
        if a.role == AssignmentRole::Grader {
            on_case.entry(a.case_id).or_default().push(a.user_id);
        }
    }
    let mut plans = HashMap::new();
    let mut disagreeing = 0;
    for (n, case) in cases.iter().enumerate() {
        let deviator = if per_case == 2 && n % DISAGREE_EVERY == 0 {
            disagreeing += 1;
            on_case.get(&case.id).and_then(|g| g.iter().min().copied())
        } else {
            None
        };
        plans.insert(
            case.id,
            CasePlan {
                od: (n % 5) as i64,
                os: ((n / 5) % 5) as i64,
                dme: if n % 7 == 0 {
                    "centre_involving"
                } else {
                    "none"
                },
                deviator,
            },
        );
    }
    Ok((plans, disagreeing, made, batch_s))
}

/// Runs every grader's client at once through their worklist, pausing `think_ms` on average
/// before each request (0: none), with `pg_stat_activity` polled meanwhile.
async fn run_phase(
    app: &TestApp,
    study: Uuid,
    browsers: Vec<(Uuid, Browser)>,
    plans: HashMap<Uuid, CasePlan>,
    think_ms: u64,
) -> Result<(Phase, Vec<(Uuid, Browser)>)> {
    let database = app
        .state
        .config
        .database_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let plans = Arc::new(plans);
    let barrier = Arc::new(tokio::sync::Barrier::new(browsers.len() + 1));
    let mut tasks = Vec::with_capacity(browsers.len());
    for (n, (grader, browser)) in browsers.into_iter().enumerate() {
        let plans = Arc::clone(&plans);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            grade_all(grader, browser, plans, think_ms, n as u64).await
        }));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_pg(database, Arc::clone(&stop));
    let cpu_before = cpu_now();
    barrier.wait().await;
    let started = Instant::now();
    let mut runs = Vec::with_capacity(tasks.len());
    let mut browsers = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (run, browser) = task.await?;
        browsers.push((run.grader, browser));
        runs.push(run);
    }
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_after = cpu_now();
    stop.store(true, Ordering::Relaxed);
    let pg = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("pg_stat_activity sampler panicked"))??;
    let graded: usize = runs.iter().map(|r| r.graded).sum();
    let errors: Vec<String> = runs.iter().flat_map(|r| r.errors.clone()).collect();
    println!(
        "{} graders (think {think_ms} ms): {graded} grades in {wall_s:.1} s, {} errors",
        runs.len(),
        errors.len()
    );

    // Which submission opened each round: the later of the two grades of a disagreeing case.
    let mut last_of_case: HashMap<Uuid, (OffsetDateTime, Uuid)> = HashMap::new();
    for g in app.db().grades_of_study(study).await? {
        let entry = last_of_case
            .entry(g.case_id)
            .or_insert((g.submitted_at, g.grader_id));
        if g.submitted_at > entry.0 {
            *entry = (g.submitted_at, g.grader_id);
        }
    }
    let mut opener_latencies = Vec::new();
    let mut other_submit_latencies = Vec::new();
    for run in &runs {
        for s in run.samples.iter().filter(|s| s.op == Op::Submit && s.ok) {
            let Some(case) = s.case else { continue };
            let opened = plans.get(&case).is_some_and(|p| p.deviator.is_some())
                && last_of_case.get(&case).map(|(_, g)| *g) == Some(run.grader);
            if opened {
                opener_latencies.push(s.latency);
            } else {
                other_submit_latencies.push(s.latency);
            }
        }
    }
    let disagreement_cases = plans.values().filter(|p| p.deviator.is_some()).count();
    let phase = Phase {
        think_ms,
        samples: runs.into_iter().flat_map(|r| r.samples).collect(),
        wall_s,
        cpu: (cpu_before, cpu_after),
        graded,
        errors,
        disagreement_cases,
        opener_latencies,
        other_submit_latencies,
        pg,
        batch_s: 0.0,
        batch_assignments: 0,
    };
    Ok((phase, browsers))
}

async fn http_bench(think_ms: u64) -> Result<HttpResult> {
    let setup_started = Instant::now();
    let app = TestApp::start(Backend::Postgres).await;
    let study = app.study(STUDY).await;
    let coordinator = app
        .user("coordinator", &[(Role::Coordinator, Some(study))])
        .await;
    let mut coord = app.sign_in(&coordinator).await;
    expect(
        &put(
            &mut coord,
            &format!("/api/studies/{STUDY}/form"),
            json!({ "preset": "icdr" }),
        )
        .await,
        200,
        "set form",
    )?;

    let t = Instant::now();
    let cases = add_cases(&app, study, "S", CASES).await;
    let solo_cases = add_cases(&app, study, "SOLO", SOLO_CASES).await;
    let cases_s = t.elapsed().as_secs_f64();

    let mut graders: Vec<User> = Vec::with_capacity(GRADERS);
    for n in 0..GRADERS {
        graders.push(
            app.user(&format!("grader.{n:03}"), &[(Role::Grader, Some(study))])
                .await,
        );
    }
    for n in 0..ADJUDICATORS {
        app.user(
            &format!("adjudicator.{n}"),
            &[(Role::Adjudicator, Some(study))],
        )
        .await;
    }
    let solo = app
        .user("grader.solo", &[(Role::Grader, Some(study))])
        .await;
    let names: Vec<&str> = graders.iter().map(|g| g.username.as_str()).collect();
    let (plans, _, batch_assignments, batch_s) =
        add_batch(&app, &mut coord, study, "saturated", &cases, &names, 2).await?;
    let (solo_plans, ..) = add_batch(
        &app,
        &mut coord,
        study,
        "solo",
        &solo_cases,
        &["grader.solo"],
        1,
    )
    .await?;

    let mut browsers = Vec::with_capacity(GRADERS);
    for grader in &graders {
        browsers.push((grader.id, app.sign_in(grader).await));
    }
    let solo_browser = app.sign_in(&solo).await;
    let setup_s = setup_started.elapsed().as_secs_f64();
    println!(
        "setup: {setup_s:.1} s (cases {cases_s:.1} s, batch of {batch_assignments} assignments {batch_s:.2} s)"
    );

    // Uncontended: one client alone.
    let (solo_run, _) = grade_all(solo.id, solo_browser, Arc::new(solo_plans), 0, 0).await;
    ensure!(
        solo_run.errors.is_empty(),
        "solo grader: {:?}",
        solo_run.errors
    );
    println!("solo grader: {} cases", solo_run.graded);

    // Every grader at once, no pause.
    let (mut saturated, browsers) = run_phase(&app, study, browsers, plans, 0).await?;
    saturated.batch_s = batch_s;
    saturated.batch_assignments = batch_assignments;

    // Every grader at once again, on a second batch, pausing between requests.
    let paced_cases = add_cases(&app, study, "P", CASES).await;
    let (paced_plans, _, paced_assignments, paced_batch_s) =
        add_batch(&app, &mut coord, study, "paced", &paced_cases, &names, 2).await?;
    let (mut paced, browsers) = run_phase(&app, study, browsers, paced_plans, think_ms).await?;
    paced.batch_s = paced_batch_s;
    paced.batch_assignments = paced_assignments;

    // A third batch with no pause: the study reaches 6,000 double-graded cases (the agreement
    // target's size) and the run shows whether latency grows with the tables.
    let third_cases = add_cases(&app, study, "T", CASES).await;
    let (third_plans, _, third_assignments, third_batch_s) =
        add_batch(&app, &mut coord, study, "third", &third_cases, &names, 2).await?;
    let (mut third, _) = run_phase(&app, study, browsers, third_plans, 0).await?;
    third.batch_s = third_batch_s;
    third.batch_assignments = third_assignments;

    // The result, as a coordinator sees it.
    let progress = coord.get(&format!("/api/studies/{STUDY}/progress")).await;
    expect(&progress, 200, "progress")?;
    let grades_submitted = progress.body["grades_submitted"].as_u64().unwrap_or(0);
    let rounds_open = progress.body["adjudications"]["open"].as_u64().unwrap_or(0);
    let adjudication_assignments = progress.body["adjudication"]["total"].as_u64().unwrap_or(0);

    // The hottest queries of the last phase, explained on the final database.
    let explained = explain_hot(
        &app,
        &third.pg,
        &[
            ("user_id = $1", graders[0].id),
            ("study_id = $1", study),
            ("case_id = $1", cases[0].id),
        ],
    )
    .await?;

    // Statistics through HTTP on this database.
    let mut agreement_http = Vec::new();
    let mut agreement_bytes = 0;
    let mut agreement_pairs = 0;
    for _ in 0..HTTP_STATS_RUNS {
        let t = Instant::now();
        let reply = coord.get(&format!("/api/studies/{STUDY}/agreement")).await;
        agreement_http.push(t.elapsed());
        expect(&reply, 200, "agreement")?;
        agreement_bytes = reply.body.to_string().len();
        agreement_pairs = reply.body["pairs"].as_array().map_or(0, Vec::len);
    }
    let mut progress_http = Vec::new();
    for _ in 0..HTTP_STATS_RUNS {
        let t = Instant::now();
        let reply = coord.get(&format!("/api/studies/{STUDY}/progress")).await;
        progress_http.push(t.elapsed());
        expect(&reply, 200, "progress")?;
    }
    let mut export_http = Vec::new();
    let mut export_bytes = 0;
    for _ in 0..HTTP_STATS_RUNS {
        let t = Instant::now();
        let reply = coord
            .get(&format!(
                "/api/studies/{STUDY}/export?format=csv&table=grades"
            ))
            .await;
        export_http.push(t.elapsed());
        expect(&reply, 200, "export")?;
        export_bytes = reply.body.as_str().map_or(0, str::len);
    }
    // Where the agreement route's time goes: loading the rows, then the pure computation.
    let study_row = app
        .db()
        .study_by_code(&readroom_server::db::StudyCode::new(STUDY)?)
        .await?;
    let form = readroom_server::grading::current_form(app.db(), &study_row).await?;
    let mut load_rows = Vec::new();
    let mut agreement_compute = Vec::new();
    let mut loaded_grades = 0;
    let mut loaded_cases = 0;
    for _ in 0..HTTP_STATS_RUNS {
        let t = Instant::now();
        let rows = reports::load(app.db(), &study_row).await?;
        load_rows.push(t.elapsed());
        loaded_grades = rows.grades.len();
        loaded_cases = rows.cases.len();
        let t = Instant::now();
        let result = stats::agreement(&rows, &form.form);
        let body = serde_json::to_vec(&result)?;
        agreement_compute.push(t.elapsed());
        ensure!(!body.is_empty());
    }

    Ok(HttpResult {
        setup_s,
        cases_s,
        solo: solo_run.samples,
        phases: vec![saturated, paced, third],
        grades_submitted,
        rounds_open,
        adjudication_assignments,
        agreement_http,
        agreement_bytes,
        agreement_pairs,
        progress_http,
        export_http,
        export_bytes,
        load_rows,
        agreement_compute,
        loaded_grades,
        loaded_cases,
        explained,
    })
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the three most sampled single-parameter `SELECT`s of a
/// phase, with the parameter taken from `params` (the first whose pattern the query holds).
async fn explain_hot(
    app: &TestApp,
    activity: &PgActivity,
    params: &[(&str, Uuid)],
) -> Result<Vec<(String, f64, Vec<String>)>> {
    use sqlx::{AssertSqlSafe, Connection};
    let mut queries: Vec<(&String, &u64)> = activity
        .by_query
        .iter()
        .filter(|(q, _)| q.starts_with("SELECT") && q.contains("$1") && !q.contains("$2"))
        .collect();
    queries.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut conn = sqlx::postgres::PgConnection::connect(&app.state.config.database_url).await?;
    let mut out = Vec::new();
    for (query, _) in queries.into_iter().take(3) {
        let Some((_, param)) = params.iter().find(|(pattern, _)| query.contains(pattern)) else {
            continue;
        };
        let mut plan: Vec<String> = Vec::new();
        // The last of three runs: the first ones warm the caches.
        for _ in 0..3 {
            plan = sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN (ANALYZE, BUFFERS) {query}")))
                .bind(param)
                .fetch_all(&mut conn)
                .await?;
        }
        let ms = plan
            .iter()
            .find_map(|l| l.trim().strip_prefix("Execution Time: "))
            .and_then(|l| l.trim_end_matches(" ms").parse().ok())
            .unwrap_or(f64::NAN);
        println!("EXPLAIN ANALYZE {query}\n{}\n", plan.join("\n"));
        out.push((query.clone(), ms, plan));
    }
    conn.close().await.ok();
    Ok(out)
}

/// One grader's client: worklist → form → draft → submit until nothing is left, pausing a
/// uniformly random `think_ms / 2 ..= 3 * think_ms / 2` before each request (0: no pause).
async fn grade_all(
    grader: Uuid,
    mut browser: Browser,
    plans: Arc<HashMap<Uuid, CasePlan>>,
    think_ms: u64,
    seed: u64,
) -> (ClientRun, Browser) {
    let mut rng = 0x2545_F491_4F6C_DD1D_u64 ^ (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut think = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if think_ms == 0 {
            None
        } else {
            Some(Duration::from_millis(think_ms / 2 + rng % (think_ms + 1)))
        }
    };
    let mut run = ClientRun {
        grader,
        samples: Vec::new(),
        graded: 0,
        errors: Vec::new(),
    };
    let mut failed: Vec<String> = Vec::new();
    // Each round grades one case; the bound only stops a client whose requests keep failing.
    for _ in 0..200 {
        if let Some(pause) = think() {
            tokio::time::sleep(pause).await;
        }
        let t = Instant::now();
        let list = browser.get("/api/worklist").await;
        let ok = list.status == Op::Worklist.expected();
        run.samples.push(Sample {
            op: Op::Worklist,
            latency: t.elapsed(),
            ok,
            case: None,
        });
        if !ok {
            run.errors
                .push(format!("worklist: HTTP {} {}", list.status, list.body));
            continue;
        }
        let next = list.body.as_array().and_then(|items| {
            items.iter().find_map(|item| {
                let id = item["case_id"].as_str()?;
                (item["role"] == "grader"
                    && item["status"] != "done"
                    && !failed.iter().any(|f| f == id))
                .then(|| id.to_owned())
            })
        });
        let Some(case_id) = next else { break };
        let case = Uuid::parse_str(&case_id).ok();
        let Some(plan) = case.and_then(|c| plans.get(&c).copied()) else {
            run.errors.push(format!("case {case_id}: not in the plan"));
            failed.push(case_id);
            continue;
        };
        let values = plan.values(grader);
        let steps: [(Op, &str, String, Option<Value>); 3] = [
            (Op::Form, "GET", format!("/api/cases/{case_id}/form"), None),
            (
                Op::Draft,
                "PUT",
                format!("/api/cases/{case_id}/draft"),
                Some(json!({
                    "values": { "dr_grade": { "OD": values["dr_grade"]["OD"] } },
                    "revision": null,
                    "render_state": { "layout": "single", "slice": 0 },
                })),
            ),
            (
                Op::Submit,
                "POST",
                format!("/api/cases/{case_id}/grade"),
                Some(json!({
                    "values": values,
                    "render_state": { "layout": "single", "slice": 0 },
                    "lossless_sha256": "ab".repeat(32),
                })),
            ),
        ];
        let mut all_ok = true;
        for (op, method, path, body) in steps {
            if let Some(pause) = think() {
                tokio::time::sleep(pause).await;
            }
            let t = Instant::now();
            let reply = browser.send(method, &path, body).await;
            let ok = reply.status == op.expected();
            run.samples.push(Sample {
                op,
                latency: t.elapsed(),
                ok,
                case,
            });
            if !ok {
                run.errors.push(format!(
                    "{} {path}: HTTP {} {}",
                    op.name(),
                    reply.status,
                    reply.body
                ));
                all_ok = false;
                break;
            }
        }
        if all_ok {
            run.graded += 1;
        } else {
            failed.push(case_id);
        }
    }
    (run, browser)
}

// ---------------------------------------------------------------------------------------------
// Part 2: statistics of 6,000 cases × 2 graders, in memory

struct ComputeResult {
    graders: usize,
    pairs: usize,
    disagreeing: usize,
    agreement: Vec<Duration>,
    agreement_json: Vec<Duration>,
    json_bytes: usize,
    progress: Vec<Duration>,
    export: Vec<Duration>,
    csv_bytes: usize,
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000 + seconds).expect("time")
}

/// A study of `cases` cases, each graded by 2 of `graders` graders (spread by the assignment
/// planner), ICDR values with about one case in five disagreeing by a step on one eye, and every
/// disagreement resolved by an adjudicator.
fn synthetic_rows(cases: usize, graders: usize, form_id: Uuid) -> Result<(StudyRecords, usize)> {
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15 ^ graders as u64;
    let mut next = |k: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % k
    };
    let infos: Vec<CaseInfo> = (0..cases)
        .map(|n| CaseInfo {
            id: id(1_000_000 + n as u128),
            label: format!("C-{:04}", n + 1),
            subject: Some(format!("S{n:06}")),
            visit: Some("V1".into()),
        })
        .collect();
    let refs: Vec<CaseRef> = infos
        .iter()
        .map(|c| CaseRef {
            id: c.id.to_string(),
            subject: c.subject.clone().unwrap_or_default(),
        })
        .collect();
    let roster: Vec<GraderLoad> = (0..graders)
        .map(|g| GraderLoad {
            id: id(0xA000 + g as u128).to_string(),
            open: 0,
            available: true,
        })
        .collect();
    let planning = Instant::now();
    let planned = plan(
        &refs,
        &roster,
        &[] as &[(String, String)],
        &PlanOptions::default(),
    )
    .map_err(|err| anyhow::anyhow!("plan: {err}"))?;
    println!(
        "planning {cases} cases x 2 over {graders} graders: {:.0} ms",
        planning.elapsed().as_secs_f64() * 1000.0
    );
    let batch = Batch {
        id: id(0xBA7C),
        study_id: id(1),
        name: "all".into(),
        per_case: 2,
        repeat_fraction: 0.0,
        due_at: None,
        created_at: at(0),
        created_by: None,
    };
    let mut rows = StudyRecords {
        study: "BENCH".into(),
        cases: infos,
        batches: vec![batch.clone()],
        ..StudyRecords::default()
    };
    let truth: Vec<(i64, i64, &str)> = (0..cases)
        .map(|_| {
            let dme = if next(10) == 0 {
                "centre_involving"
            } else {
                "none"
            };
            (next(5) as i64, next(5) as i64, dme)
        })
        .collect();
    let index: HashMap<String, usize> = refs
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    let mut by_case: HashMap<usize, Vec<usize>> = HashMap::new();
    for (k, p) in planned.assignments.iter().enumerate() {
        let case = index[&p.case];
        let n = k as u128;
        let assignment = Assignment {
            id: id(2_000_000 + n),
            case_id: rows.cases[case].id,
            user_id: Uuid::parse_str(&p.grader)?,
            role: AssignmentRole::Grader,
            assigned_at: at(k as i64),
            due_at: None,
            status: AssignmentStatus::Done,
            batch_id: Some(batch.id),
            kind: AssignmentKind::Primary,
        };
        let (od, os, dme) = truth[case];
        // About 11 % of gradings move one step on OD: about 20 % of cases disagree.
        let od = if next(1000) < 113 {
            if od == 4 { 3 } else { od + 1 }
        } else {
            od
        };
        let values = json!({
            "dme": { "OD": dme, "OS": "none" },
            "dr_grade": { "OD": od, "OS": os },
        });
        rows.grades.push(Grade {
            id: id(3_000_000 + n),
            assignment_id: assignment.id,
            case_id: assignment.case_id,
            grader_id: assignment.user_id,
            form_id,
            version: 1,
            values: values.as_object().cloned().unwrap_or_default(),
            render_state: Some(json!({ "layout": "single" })),
            lossless_sha256: Some("ab".repeat(32)),
            reason: None,
            duration_ms: Some(30_000 + next(90_000) as i64),
            submitted_at: at(10_000 + k as i64),
        });
        by_case.entry(case).or_default().push(rows.grades.len() - 1);
        rows.assignments.push(assignment);
    }
    // Disagreements resolved by one of two adjudicators.
    let mut disagreeing = 0;
    for case in 0..cases {
        let Some(g) = by_case.get(&case) else {
            continue;
        };
        let [a, b] = g.as_slice() else { continue };
        let (ga, gb) = (&rows.grades[*a], &rows.grades[*b]);
        if ga.values == gb.values {
            continue;
        }
        disagreeing += 1;
        let n = case as u128;
        let adjudicator = id(0xAD00 + n % 2);
        let assignment = Assignment {
            id: id(4_000_000 + n),
            case_id: ga.case_id,
            user_id: adjudicator,
            role: AssignmentRole::Adjudicator,
            assigned_at: at(20_000 + case as i64),
            due_at: None,
            status: AssignmentStatus::Done,
            batch_id: None,
            kind: AssignmentKind::Primary,
        };
        rows.adjudications.push(Adjudication {
            id: id(5_000_000 + n),
            case_id: ga.case_id,
            round: 1,
            disagreements: json!([{ "field": "dr_grade", "eye": "OD", "rule": "steps",
                                    "description": "grades differ by 1 step" }]),
            grade_ids: vec![ga.id, gb.id],
            status: AdjudicationStatus::Resolved,
            created_at: at(20_000 + case as i64),
            adjudicator_id: Some(adjudicator),
            form_id: Some(form_id),
            values: Some(ga.values.clone()),
            render_state: None,
            lossless_sha256: None,
            reason: None,
            resolved_at: Some(at(30_000 + case as i64)),
        });
        rows.assignments.push(assignment);
    }
    Ok((rows, disagreeing))
}

fn computation_bench() -> Result<Vec<ComputeResult>> {
    let form: Form = presets::icdr();
    let loaded = FormVersion {
        version: 1,
        fingerprint: form.fingerprint(),
        definition: serde_json::from_str(&form.to_json())?,
        form: form.clone(),
    };
    let form_id = id(999);
    let now = at(100_000);
    let mut out = Vec::new();
    for graders in [2usize, 20, 200] {
        let (rows, disagreeing) = synthetic_rows(STATS_CASES, graders, form_id)?;
        ensure!(rows.grades.len() == STATS_CASES * 2, "grades");
        let mut result = ComputeResult {
            graders,
            pairs: 0,
            disagreeing,
            agreement: Vec::new(),
            agreement_json: Vec::new(),
            json_bytes: 0,
            progress: Vec::new(),
            export: Vec::new(),
            csv_bytes: 0,
        };
        for _ in 0..STATS_RUNS {
            let t = Instant::now();
            let agreement = stats::agreement(&rows, &form);
            result.agreement.push(t.elapsed());
            let body = serde_json::to_vec(&agreement)?;
            result.agreement_json.push(t.elapsed());
            result.json_bytes = body.len();
            result.pairs = agreement.pairs.len();
            if agreement.cases_double_graded != STATS_CASES as u64 {
                bail!(
                    "{graders} graders: {} cases double graded",
                    agreement.cases_double_graded
                );
            }

            let t = Instant::now();
            let progress = stats::progress(&rows, now);
            result.progress.push(t.elapsed());
            ensure!(progress.grades_submitted == (STATS_CASES * 2) as u64);

            let copy = rows.clone();
            let t = Instant::now();
            let built = export::build(copy, loaded.clone(), now);
            let csv = export::to_csv(&built, CsvTable::Grades);
            result.export.push(t.elapsed());
            result.csv_bytes = csv.len();
        }
        println!(
            "{graders} graders: agreement {:.1} ms (+JSON {:.1} ms), progress {:.1} ms, export build + grades CSV {:.1} ms",
            median_ms(&mut result.agreement.clone()),
            median_ms(&mut result.agreement_json.clone()),
            median_ms(&mut result.progress.clone()),
            median_ms(&mut result.export.clone()),
        );
        out.push(result);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

fn range_ms(values: &[Duration]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort();
    format!(
        "{:.1} ms (min {:.1}, max {:.1}; {} runs)",
        pct_ms(&sorted, 0.5),
        pct_ms(&sorted, 0.0),
        pct_ms(&sorted, 1.0),
        sorted.len()
    )
}

fn render(
    http: &HttpResult,
    computation: &[ComputeResult],
    load_at_start: &str,
    neighbours: &[String],
) -> String {
    let flag = if cfg!(debug_assertions) {
        " --profile dev"
    } else {
        ""
    };
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let neighbours = if neighbours.is_empty() {
        "none".to_owned()
    } else {
        neighbours.join(", ")
    };
    let mut s = format!(
        "{HEADING}\n\n\
         Command: `cargo bench -p readroom-tests --bench grading_bench{flag}` ({PROFILE}). \
         Machine: {cores} cores (nproc), shared by PostgreSQL, the server and the {GRADERS} \
         clients (one process, one Tokio runtime with 2 worker threads); load average at start \
         {load_at_start}; compilers running at start: {neighbours}.\n\n\
         ### Grade submit and worklist under {GRADERS} concurrent graders (PostgreSQL)\n\n\
         The real server on loopback over a fresh PostgreSQL database (the server's pool of 10 \
         connections). Study with the `icdr` preset form; {GRADERS} graders, each with their own \
         session cookie and HTTP client; {ADJUDICATORS} adjudicators. Each phase forms a batch of \
         {CASES} metadata-only cases (`POST /api/studies/{{code}}/batches`, per_case 2: {} \
         assignments, {} per grader), then all {GRADERS} clients loop `GET /api/worklist` → `GET \
         /api/cases/{{id}}/form` → `PUT /api/cases/{{id}}/draft` → `POST /api/cases/{{id}}/grade` \
         at once until their worklist is done. One case in {DISAGREE_EVERY} is graded a step \
         apart, so its second submission opens an adjudication round and assigns an \
         adjudicator.\n\n\
         - **saturated**: no pause between requests. A closed loop: every client always has a \
         request in flight, so the latency is the queue (Little's law: mean latency = {GRADERS} \
         / throughput) and the run measures capacity.\n\
         - **paced**: a pause of {}–{} ms (uniform) before every request, i.e. about one case \
         per {:.0} s per grader (a human grader takes 30 s or more), on the second batch.\n\
         - **saturated, 3rd batch**: the first phase again on a third batch, with {} cases \
         already graded; afterwards the study has {} double-graded cases, the size of the \
         agreement target.\n\
         - **alone**: one extra grader working through {SOLO_CASES} cases of their own before \
         the phases, nothing else running: the requests' own cost.\n\n\
         The p99 target is read on the **paced** phase: {GRADERS} graders working at once, each \
         several times faster than a person grades. The saturated phases are capacity tests: \
         with {GRADERS} requests always in flight, a p99 under 50 ms would need more than \
         {} requests/s (Little's law), far beyond what these 2 cores, shared with PostgreSQL \
         and the clients themselves, can serve; compare their throughput between runs.\n\n\
         Setup ({} users, {} cases, sign-ins, first batch) took {:.0} s (cases {:.0} s).\n\n",
        http.phases[0].batch_assignments,
        http.phases[0].batch_assignments as usize / GRADERS,
        http.phases[1].think_ms / 2,
        http.phases[1].think_ms * 3 / 2,
        4.0 * http.phases[1].think_ms as f64 / 1000.0,
        CASES * 2,
        CASES * 3,
        GRADERS * 1000 / 50,
        GRADERS + ADJUDICATORS + 2,
        CASES + SOLO_CASES,
        http.setup_s,
        http.cases_s,
    );
    s.push_str(
        "| phase | operation | route | count | ops/s | p50 | p95 | p99 | max | alone p50 | target p99 | |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (phase, name) in http.phases.iter().zip(PHASES) {
        for op in Op::ALL {
            let samples: Vec<&Sample> = phase.samples.iter().filter(|x| x.op == op).collect();
            let alone: Vec<&Sample> = http.solo.iter().filter(|x| x.op == op).collect();
            let sum = summarize(&samples);
            let solo = summarize(&alone);
            let (target, met) = if op.has_target() {
                (
                    format!("<{TARGET_P99_MS:.0} ms"),
                    verdict(sum.p99 < TARGET_P99_MS && sum.errors == 0),
                )
            } else {
                (String::new(), "")
            };
            s.push_str(&format!(
                "| {name} | {} | {} | {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {target} | {met} |\n",
                op.name(),
                op.route(),
                sum.count,
                sum.count as f64 / phase.wall_s,
                sum.p50,
                sum.p95,
                sum.p99,
                sum.max,
                solo.p50,
            ));
        }
    }
    s.push('\n');
    s.push_str(
        "| phase | grades | wall | requests/s | grades/s | failed | submit opening a round p50 / p99 | other submits p50 / p99 | CPU (cores): this process / PostgreSQL / other processes / machine | batch of 4000 created in |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (phase, name) in http.phases.iter().zip(PHASES) {
        let (before, after) = phase.cpu;
        let span = phase.wall_s;
        let mut opener = phase.opener_latencies.clone();
        opener.sort();
        let mut other = phase.other_submit_latencies.clone();
        other.sort();
        s.push_str(&format!(
            "| {name} | {} | {:.1} s | {:.0} | {:.1} | {} | {:.1} / {:.1} ms ({}) | {:.1} / {:.1} ms ({}) | {:.2} / {:.2} / {:.2} / {:.2} of {cores} | {:.1} s |\n",
            phase.graded,
            phase.wall_s,
            phase.samples.len() as f64 / span,
            phase.graded as f64 / span,
            phase.errors.len(),
            pct_ms(&opener, 0.5),
            pct_ms(&opener, 0.99),
            opener.len(),
            pct_ms(&other, 0.5),
            pct_ms(&other, 0.99),
            other.len(),
            (after.own - before.own) / span,
            (after.postgres - before.postgres) / span,
            ((after.machine_busy - before.machine_busy)
                - (after.own - before.own)
                - (after.postgres - before.postgres))
                .max(0.0)
                / span,
            (after.machine_busy - before.machine_busy) / span,
            phase.batch_s,
        ));
    }
    let disagreeing: usize = http.phases.iter().map(|p| p.disagreement_cases).sum();
    s.push_str(&format!(
        "\nAfter the three phases: {} grades submitted, {} adjudication rounds open for {disagreeing} \
         disagreeing cases, {} adjudicator assignments.\n\n",
        http.grades_submitted, http.rounds_open, http.adjudication_assignments,
    ));
    for (phase, name) in http.phases.iter().zip(PHASES) {
        if let Some(first) = phase.errors.first() {
            s.push_str(&format!(
                "Failed requests ({name}, first of {}): {first}\n\n",
                phase.errors.len()
            ));
        }
    }
    s.push_str(
        "Database side (`pg_stat_activity` of the benchmark's database polled every 10 ms \
         during each phase; share of the samples of active connections):\n\n",
    );
    for (phase, name) in http.phases.iter().zip(PHASES) {
        let pg = &phase.pg;
        let polls = pg.polls.max(1) as f64;
        let active = pg.active.max(1) as f64;
        s.push_str(&format!(
            "- {name}: {} polls; connections open {:.1} on average, active {:.2}. Waits: {}. \
             Queries: {}.\n",
            pg.polls,
            pg.connections as f64 / polls,
            pg.active as f64 / polls,
            top(&pg.by_wait, active, 5, 60),
            top(&pg.by_query, active, 6, 110),
        ));
    }

    if !http.explained.is_empty() {
        s.push_str(
            "\nThe most sampled queries of the last phase, `EXPLAIN (ANALYZE, BUFFERS)` on the final \
             database (one grader's, the study's and one case's id): ",
        );
        let lines: Vec<String> = http
            .explained
            .iter()
            .map(|(query, ms, plan)| {
                let top_node = plan
                    .first()
                    .map_or("", |l| l.split("  (").next().unwrap_or(""));
                format!(
                    "`{}` {ms:.2} ms (`{}`)",
                    shorten(query).replace('`', "'").replace('|', "/"),
                    top_node.trim()
                )
            })
            .collect();
        s.push_str(&lines.join("; "));
        s.push_str(".\n");
    }
    s.push_str(&format!(
        "\n### Agreement statistics\n\n\
         In memory: a study of {STATS_CASES} cases × 2 graders built as `StudyRecords` (the rows \
         `reports::load` reads): ICDR grades, about one case in five a step apart and resolved by \
         an adjudicator, cases spread over the roster by the assignment planner. Median of \
         {STATS_RUNS} runs.\n\n\
         | graders | grader pairs × items | disagreeing cases | `stats::agreement` | + JSON of the answer | `stats::progress` | `export::build` + `to_csv(Grades)` | target (agreement) | |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    ));
    for c in computation {
        let agreement_json = median_ms(&mut c.agreement_json.clone());
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} ms | {:.1} ms ({:.0} kB) | {:.1} ms | {:.1} ms ({:.0} kB CSV) | <{:.0} s | {} |\n",
            c.graders,
            c.pairs,
            c.disagreeing,
            median_ms(&mut c.agreement.clone()),
            agreement_json,
            c.json_bytes as f64 / 1000.0,
            median_ms(&mut c.progress.clone()),
            median_ms(&mut c.export.clone()),
            c.csv_bytes as f64 / 1000.0,
            TARGET_AGREEMENT_S,
            verdict(agreement_json < TARGET_AGREEMENT_S * 1000.0),
        ));
    }
    s.push_str(&format!(
        "\nThrough HTTP, after the three phases ({} grades of {} cases by {} graders, {} grader \
         pairs × items; the coordinator's session):\n\n\
         | request | time |\n|---|---|\n\
         | `GET /api/studies/{{code}}/agreement` ({:.0} kB) | {} |\n\
         | … of which loading the rows (`reports::load`, in process) | {} |\n\
         | … of which `stats::agreement` + JSON (in process) | {} |\n\
         | `GET /api/studies/{{code}}/progress` | {} |\n\
         | `GET /api/studies/{{code}}/export?format=csv&table=grades` ({:.0} kB, audited) | {} |\n",
        http.loaded_grades,
        http.loaded_cases,
        GRADERS + 1,
        http.agreement_pairs,
        http.agreement_bytes as f64 / 1000.0,
        range_ms(&http.agreement_http),
        range_ms(&http.load_rows),
        range_ms(&http.agreement_compute),
        range_ms(&http.progress_http),
        http.export_bytes as f64 / 1000.0,
        range_ms(&http.export_http),
    ));
    s
}

/// The `n` largest counts as "`key` 12 %", keys cut to `width` characters.
fn top(counts: &HashMap<String, u64>, total: f64, n: usize, width: usize) -> String {
    let mut sorted: Vec<(&String, &u64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    sorted
        .into_iter()
        .take(n)
        .map(|(key, count)| {
            let key: String = shorten(key).chars().take(width).collect();
            let key = key.replace('`', "'").replace('|', "/");
            format!("`{}` {:.0} %", key.trim(), *count as f64 / total * 100.0)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
