//! Fast on a real network (issue 18): the real server with its in-process worker on one side of
//! a shaped link and headless Chromium on the other, per link profile: navigation → first frame
//! (cold page load), next case in an open viewer, a 128-B-scan OCT volume stepped through one
//! wheel notch per B-scan as fast as each is presented, the bytes received for it, and the
//! lossless settle after the last step.
//!
//! The link is `tests/netlab/` (namespaces, `tbf` for the rate and a userspace bridge for the
//! delay, since this kernel has no `netem`): this process moves into the server namespace before
//! its runtime starts (so the server and its worker listen on 127.77.0.2), and the browser runs
//! in the client namespace (127.77.0.1) through `ip netns exec`. Profiles: `unshaped` (the same
//! path with no shaping), `20mbit_20ms`, `100mbit_5ms`; `NETWORK_BENCH_PROFILES` picks others
//! (comma-separated). Needs root and iproute2 (and gcc, which netlab installs if missing);
//! without them it prints why and exits 0.
//!
//! Run with `cargo bench -p readroom-tests --bench network_bench`; it prints a table and writes
//! the `## Network (issue 18)` section of `BENCHMARKS.md` (`NETWORK_BENCH_QUICK=1`: one open
//! per measure, printed only).

#[path = "../tests/support/mod.rs"]
mod support;

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use readroom_bundle::synth::bundle::{SynthSpec, write_bundle_dir};
use readroom_server::db::{AssignmentRole, Backend, Role, StudyCode};
use readroom_server::ingest::{IngestOptions, ingest};
use readroom_tests::browser;
use readroom_tests::report::percentile;
use serde_json::{Value, json};
use support::TestApp;

const HEADING: &str = "## Network (issue 18)";
/// Namespace prefix of this benchmark's link (`rrbenchclient`, `rrbenchserver`, ...).
const PREFIX: &str = "rrbench";
const SERVER_ADDR: &str = "127.77.0.2";
/// B-scans of the scrolled volume.
const SLICES: u32 = 128;
/// `CLONE_NEWNET` from `<sched.h>`.
const CLONE_NEWNET: i32 = 0x4000_0000;

unsafe extern "C" {
    fn geteuid() -> u32;
    fn setns(fd: i32, nstype: i32) -> i32;
}

fn quick() -> bool {
    std::env::var_os("NETWORK_BENCH_QUICK").is_some()
}

fn profiles() -> Vec<String> {
    std::env::var("NETWORK_BENCH_PROFILES")
        .unwrap_or_else(|_| "unshaped,20mbit_20ms,100mbit_5ms".into())
        .split(',')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The shaped link, taken down when dropped.
struct Netlab {
    script: PathBuf,
}

impl Netlab {
    fn run(&self, args: &[&str]) -> Result<()> {
        let status = Command::new(&self.script)
            .args(args)
            .env("NETLAB_PREFIX", PREFIX)
            .status()
            .with_context(|| format!("running {}", self.script.display()))?;
        if !status.success() {
            bail!("netlab {} exited with {status}", args.join(" "));
        }
        Ok(())
    }

    fn up(profile: &str) -> Result<Netlab> {
        let netlab = Netlab {
            script: browser::workspace_root().join("tests/netlab/netlab.sh"),
        };
        netlab.run(&["up", profile])?;
        Ok(netlab)
    }
}

impl Drop for Netlab {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

/// Why this machine cannot run the benchmark, if it cannot.
fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { geteuid() } != 0 {
        return Some("not root (network namespaces and tc need CAP_NET_ADMIN)".into());
    }
    let ip = Command::new("ip").arg("-V").output();
    if !ip.is_ok_and(|out| out.status.success()) {
        return Some("`ip` (iproute2) is not available".into());
    }
    None
}

/// Moves the calling thread into network namespace `name` (threads it starts inherit it).
fn enter(name: &str) -> Result<()> {
    let file = std::fs::File::open(format!("/run/netns/{name}"))
        .with_context(|| format!("network namespace {name}"))?;
    // SAFETY: setns only changes the calling thread's network namespace; the fd is valid for
    // the call.
    if unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) } != 0 {
        bail!("setns({name}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn main() -> Result<()> {
    if let Some(why) = unavailable() {
        println!("SKIPPED network_bench: {why}");
        return Ok(());
    }
    browser::check_prerequisites()?;
    let profiles = profiles();
    let netlab = Netlab::up(&profiles[0])?;
    enter(&format!("{PREFIX}server"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(bench(&netlab, &profiles));
    drop(runtime);
    drop(netlab);
    result
}

/// One profile's numbers.
struct Run {
    profile: String,
    result: Value,
}

async fn bench(netlab: &Netlab, profiles: &[String]) -> Result<()> {
    let app = TestApp::start_demo_with(Backend::Sqlite, |config| {
        config.listen = format!("{SERVER_ADDR}:0").parse().expect("address");
        config.public_url = String::new();
        config.stream.udp_ip = SERVER_ADDR.parse().expect("address");
    })
    .await;
    let study = app
        .db()
        .study_by_code(&StudyCode::new("DEMO").expect("code"))
        .await?;
    let grader = app
        .user("grader.network", &[(Role::Grader, Some(study.id))])
        .await;
    // The measured cases: both eyes, 3000-pixel fundus photographs, 128-B-scan OCT volumes; the
    // second lists its OCT volumes first, so that the viewer opens on a B-scan.
    let scratch = tempfile::tempdir()?;
    let measured = measured_case(&app, scratch.path(), 7801, false).await?;
    app.assign(&measured, &grader, AssignmentRole::Grader).await;
    let oct_first = measured_case(&app, scratch.path(), 7802, true).await?;
    app.assign(&oct_first, &grader, AssignmentRole::Grader)
        .await;
    let mut ids = vec![measured.id.to_string()];
    for summary in app.db().list_cases(study.id).await?.into_iter().take(3) {
        app.assign(&summary.case, &grader, AssignmentRole::Grader)
            .await;
        ids.push(summary.case.id.to_string());
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let mut runs = Vec::new();
    for profile in profiles {
        netlab.run(&["set", profile])?;
        let link = app.link(&grader).await;
        let params = json!({
            "base_url": app.url,
            "link_url": link,
            // The measured case last among the cold opens, so that its volume is scrolled.
            "case_ids": ids.iter().rev().collect::<Vec<_>>(),
            "fundus_case_id": measured.id.to_string(),
            "oct_case_id": oct_first.id.to_string(),
            "scroll_case_id": measured.id.to_string(),
            "opens": if quick() { 1 } else { 3 },
        });
        let client = format!("{PREFIX}client");
        let result = tokio::task::spawn_blocking(move || {
            browser::run_script_in(
                Some(&client),
                "network-bench.mjs",
                &params,
                Duration::from_secs(900),
            )
        })
        .await??;
        println!("{profile}: {result}");
        runs.push(Run {
            profile: profile.clone(),
            result,
        });
    }
    let section = section(&runs, &load);
    println!("{section}");
    if !quick() {
        let path = readroom_tests::report::write_section(HEADING, &section)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Writes and ingests a case of subject `S{seed}` with 3000×3000 fundus photographs and
/// [`SLICES`]-B-scan OCT volumes, its OCT volumes listed first when `oct_first` (the viewer opens
/// on the first exam listed).
async fn measured_case(
    app: &TestApp,
    scratch: &std::path::Path,
    seed: u64,
    oct_first: bool,
) -> Result<readroom_server::db::Case> {
    let subject = format!("S{seed}");
    let dir = scratch.join(format!("{subject}-V1"));
    tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || -> Result<()> {
            let mut spec = SynthSpec::new(seed, &subject);
            spec.fundus_size = 3000;
            spec.oct_frames = SLICES;
            write_bundle_dir(&spec, &dir)?;
            if oct_first {
                let path = dir.join("manifest.json");
                let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
                manifest["exams"]
                    .as_array_mut()
                    .context("the manifest lists exams")?
                    .sort_by_key(|exam| exam["kind"] != "oct");
                std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)?;
            }
            Ok(())
        }
    })
    .await??;
    let report = ingest(
        app.db(),
        &app.state.audit,
        app.state.store.clone(),
        &dir,
        "DEMO",
        IngestOptions::default(),
    )
    .await
    .with_context(|| format!("ingesting case {seed}"))?;
    Ok(app.db().case_by_id(report.case_id).await?)
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn median(values: &[f64]) -> String {
    if values.is_empty() {
        return "—".into();
    }
    format!("{:.0} ms", percentile(values, 0.5))
}

fn section(runs: &[Run], load: &str) -> String {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut out = format!(
        "{HEADING}\n\nCommand: `cargo bench -p readroom-tests --bench network_bench` (as root; release). \
The server with its in-process worker (demo data on SQLite plus two measured cases: both eyes, \
3000×3000 fundus photographs, {SLICES}-B-scan OCT volumes of 512×496; one lists its fundus \
photographs first, the other its OCT volumes, and the viewer opens on the first exam listed) in one network namespace, \
headless Chromium at 1280×800 in another, joined by `tests/netlab/` (tbf rate limit on each side, \
a userspace bridge adding half the round trip each way, for TCP and UDP alike). Both sides share \
this machine's 2 cores; load average at the start: {}. Code at {commit}, one run; medians of the \
cold opens and next cases.\n\n| measure |",
        load.trim()
    );
    for run in runs {
        out.push_str(&format!(" {} |", run.profile));
    }
    out.push_str(" target (20mbit_20ms) |\n|---|");
    for _ in runs {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    let row = |out: &mut String, name: &str, cell: &dyn Fn(&Value) -> String, target: &str| {
        out.push_str(&format!("| {name} |"));
        for run in runs {
            out.push_str(&format!(" {} |", cell(&run.result)));
        }
        out.push_str(&format!(" {target} |\n"));
    };
    row(
        &mut out,
        "navigation → first frame (cold page load; first view: 3000×3000 fundus)",
        &|r| median(&floats(&r["cold_ms"])),
        "<300 ms",
    );
    row(
        &mut out,
        "navigation → first frame (cold page load; first view: OCT B-scan of a 128-B-scan volume)",
        &|r| median(&floats(&r["cold_oct_ms"])),
        "<350 ms",
    );
    row(
        &mut out,
        "next case in an open viewer (prefetched): navigation → first frame",
        &|r| median(&floats(&r["next_ms"])),
        "<100 ms",
    );
    row(
        &mut out,
        &format!(
            "all {SLICES} B-scans, one wheel notch each, each sent once the last is presented"
        ),
        &|r| {
            let ms = r["scroll"]["ms"].as_f64().unwrap_or(0.0);
            let steps = floats(&r["scroll"]["step_ms"]);
            format!(
                "{:.2} s ({} a step)",
                ms / 1000.0,
                median(&steps).replace(" ms", " ms median")
            )
        },
        "<5 s",
    );
    row(
        &mut out,
        "the same, stepped back from inside the page (a wheel event dispatched as soon as the last step is presented and acknowledged: no DevTools round trips, no input alignment); wheel → presented",
        &|r| {
            let p = &r["in_page"];
            format!(
                "{:.2} s ({} median wheel → presented)",
                p["ms"].as_f64().unwrap_or(0.0) / 1000.0,
                median(&floats(&p["latency_ms"]))
            )
        },
        "",
    );
    row(
        &mut out,
        "bytes received for that scroll-through (video; whole connection incl. the final lossless frame)",
        &|r| {
            format!(
                "{:.2} MB; {:.2} MB",
                r["scroll"]["video_bytes"].as_f64().unwrap_or(0.0) / 1e6,
                r["scroll"]["transport_bytes"].as_f64().unwrap_or(0.0) / 1e6
            )
        },
        "≤3 MB",
    );
    row(
        &mut out,
        "last B-scan presented → LOSSLESS",
        &|r| format!("{} ms", r["settle_ms"]),
        "<400 ms",
    );
    row(
        &mut out,
        &format!(
            "↓ held from the first B-scan (cine, {SLICES} B-scans): B-scans sent; frames presented (rVFC; presentedFrames); rate; decoder drops; bytes"
        ),
        &|r| {
            let c = &r["cine"];
            format!(
                "{} sent{}; {} ({}) presented; {} a second; {} dropped; {:.2} MB",
                c["steps"],
                if c["in_order"] == true {
                    " in order"
                } else {
                    " OUT OF ORDER"
                },
                c["callbacks"],
                c["presented"],
                c["per_second"],
                c["frames_dropped"],
                c["video_bytes"].as_f64().unwrap_or(0.0) / 1e6
            )
        },
        "every B-scan presented, ≥30 a second",
    );
    row(
        &mut out,
        "one B-scan step as the grader sees it (the video frame against the worker's exact render, B-scans 16/48/80/112): PSNR (RGB); SSIM (luma, 8×8); bytes of the step",
        &|r| {
            let q = r["quality"].as_array().cloned().unwrap_or_default();
            let list = |key: &str| {
                q.iter()
                    .map(|e| e[key].to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            format!(
                "{} dB; {}; {} B",
                list("psnr"),
                list("ssim"),
                list("frame_bytes")
            )
        },
        "(report)",
    );
    out.push_str("\nWhere the last cold open's time went (ms from navigation start; `api:` rows are request start–end):\n\n");
    for (run, key) in runs
        .iter()
        .map(|run| (run, "cold_marks"))
        .chain(runs.iter().map(|run| (run, "cold_oct_marks")))
    {
        let mut marks: Vec<(f64, String)> = run.result[key]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(name, at)| {
                        let key = at.as_f64().or_else(|| at[0].as_f64()).unwrap_or(f64::MAX);
                        let end = |i: usize| {
                            at.get(i)
                                .and_then(Value::as_f64)
                                .map_or("?".to_owned(), |v| v.to_string())
                        };
                        let shown = match at.as_array() {
                            Some(_) => format!("{}–{}", end(0), end(1)),
                            None => at.to_string(),
                        };
                        (key, format!("{name} {shown}"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        marks.sort_by(|a, b| a.0.total_cmp(&b.0));
        let line: Vec<String> = marks.into_iter().map(|(_, text)| text).collect();
        let first = if key == "cold_oct_marks" {
            "OCT"
        } else {
            "fundus"
        };
        out.push_str(&format!(
            "- {} ({first} first): {}\n",
            run.profile,
            line.join(", ")
        ));
        if key == "cold_oct_marks" {
            continue;
        }
        // The ICE checks of each candidate pair, as the browser counted them.
        let pairs: Vec<String> = run.result["cold_ice_pairs"]
            .as_array()
            .map(|pairs| {
                pairs
                    .iter()
                    .map(|p| {
                        format!(
                            "{} pair: {} checks sent, {} answered; {} received, {} answered",
                            p["state"].as_str().unwrap_or("?"),
                            p["requests_sent"],
                            p["responses_received"],
                            p["requests_received"],
                            p["responses_sent"]
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !pairs.is_empty() {
            out.push_str(&format!("  - ICE: {}\n", pairs.join("; ")));
        }
    }
    out.push_str(
        "\nHow to read the two scroll rows: the first drives Chromium through DevTools \
(`page.mouse.wheel`, then polling the page each animation frame until the B-scan is presented), \
so each step also pays DevTools round trips, the browser's alignment of wheel events to animation \
frames and the polling; the second dispatches the wheel event in the page as soon as the last \
B-scan is presented and acknowledged, which is the viewer's, the link's and the worker's own loop \
(a person's wheel still goes through the input alignment: up to one display frame more a step). \
A held key (cine) is paced by the worker and does not wait for round trips at all.\n",
    );
    out
}
