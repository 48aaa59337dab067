//! Audit log: append throughput under concurrent writers and chain verification speed.
//!
//! Run with `cargo bench -p readroom-tests --bench audit_bench`. It prints a table and writes
//! the `## Audit (issue 5)` section of `BENCHMARKS.md`.
//!
//! What it does, on the real recorder (`readroom_server::audit::Audit`: one writer task that
//! seals and commits events in batches) and real databases:
//!
//! 1. For PostgreSQL (a fresh database on the machine's server) and SQLite (a file in a
//!    temporary directory), migrates, then runs `WRITERS` tasks that each record
//!    `PER_WRITER` events one after another, every call waiting for its commit (as a request
//!    handler does). Throughput is events committed per second of wall time; latency is one
//!    `record` call, p50/p99.
//! 2. Verifies the whole chain from the database (`audit::verify`: paged reads + SHA-256 of
//!    every canonical event) and, separately, in memory (`Verifier::push` over already loaded
//!    records), in events per second.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use readroom_domain::audit::{Action, Outcome, Verifier};
use readroom_server::audit::{self, Audit, event_by};
use readroom_server::db::Db;
use readroom_tests::pg::PgDatabase;
use serde_json::json;
use uuid::Uuid;

const WRITERS: usize = 200;
const PER_WRITER: usize = 100;
const TARGET_APPEND: f64 = 2_000.0;
const TARGET_VERIFY: f64 = 100_000.0;
/// The build the numbers come from (`cargo bench` is release; `--profile dev` is not).
const PROFILE: &str = if cfg!(debug_assertions) {
    "dev profile: dependencies at opt-level 2, workspace at 1"
} else {
    "release"
};

struct Run {
    backend: &'static str,
    events: usize,
    append_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    verify_db_per_s: f64,
    verify_mem_per_s: f64,
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let runs = runtime.block_on(async {
        let pg = PgDatabase::create()
            .await
            .context("PostgreSQL (scripts/setup)")?;
        let postgres = run("PostgreSQL", &pg.url).await?;
        let dir = tempfile::tempdir()?;
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.sqlite").display()
        );
        let sqlite = run("SQLite", &url).await?;
        anyhow::Ok(vec![postgres, sqlite])
    })?;

    let mut table = String::from(
        "| backend | events | append events/s | record p50 | record p99 | verify from DB events/s | verify in memory events/s |\n|---|---|---|---|---|---|---|\n",
    );
    for r in &runs {
        table.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} ms | {:.1} ms | {:.0} | {:.0} |\n",
            r.backend,
            r.events,
            r.append_per_s,
            r.p50_ms,
            r.p99_ms,
            r.verify_db_per_s,
            r.verify_mem_per_s
        ));
    }
    let pg = &runs[0];
    let flag = if cfg!(debug_assertions) {
        " --profile dev"
    } else {
        ""
    };
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let report = format!(
        "## Audit (issue 5)\n\n\
         Command: `cargo bench -p readroom-tests --bench audit_bench{flag}` ({PROFILE}; this machine's \
         2 cores shared by the database server and the benchmark).\n\n\
         {WRITERS} concurrent writers each record {PER_WRITER} events through the server's \
         recorder, every call waiting for its commit; then the whole chain is verified from the \
         database (paged reads + SHA-256 of each canonical event) and in memory.\n\n\
         {table}\n\
         Targets: append ≥{TARGET_APPEND:.0} events/s on PostgreSQL: {} ({:.0}); verification \
         ≥{TARGET_VERIFY:.0} events/s: {} ({:.0} from PostgreSQL).\n",
        verdict(pg.append_per_s >= TARGET_APPEND),
        pg.append_per_s,
        verdict(pg.verify_db_per_s >= TARGET_VERIFY),
        pg.verify_db_per_s,
    );
    println!("{report}");
    let path = readroom_tests::report::write_section("## Audit (issue 5)", &report)?;
    println!("written to {}", path.display());
    Ok(())
}

async fn run(backend: &'static str, url: &str) -> Result<Run> {
    let db = Db::connect(url).await?;
    db.migrate().await?;
    let recorder = Audit::start(db.clone());
    let before = db.audit_head().await?.seq;

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(WRITERS);
    for writer in 0..WRITERS {
        let recorder = recorder.clone();
        let actor = Uuid::new_v4();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(PER_WRITER);
            for n in 0..PER_WRITER {
                let t = Instant::now();
                recorder
                    .record(event_by(
                        Action::CaseOpened,
                        Outcome::Success,
                        Some(actor),
                        Some(format!("case:{}", Uuid::new_v4())),
                        Some("127.0.0.1".parse().expect("address")),
                        json!({ "writer": writer, "n": n }),
                    ))
                    .await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(WRITERS * PER_WRITER);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let events = WRITERS * PER_WRITER;
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
    };

    let t = Instant::now();
    let report = audit::verify(&db, None, &[], None).await?;
    let verify_db = t.elapsed();
    if !report.is_intact() || report.head.seq != before + events as i64 {
        bail!(
            "{backend}: chain not intact after the run: {:?}, head {}",
            report.first_break,
            report.head.seq
        );
    }
    let total = report.head.seq as f64;

    let rows = db.audit_page(0, 1_000_000).await?;
    let records = rows
        .iter()
        .map(|row| row.to_record().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let t = Instant::now();
    let mut verifier = Verifier::new();
    for record in &records {
        if verifier.push(record).is_err() {
            bail!("{backend}: in-memory verification broke");
        }
    }
    let verify_mem = t.elapsed();
    db.close().await;

    Ok(Run {
        backend,
        events,
        append_per_s: events as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        verify_db_per_s: total / verify_db.as_secs_f64(),
        verify_mem_per_s: records.len() as f64 / verify_mem.as_secs_f64(),
    })
}
