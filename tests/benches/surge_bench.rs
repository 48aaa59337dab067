//! Surge (issue 19): the local cluster (`scripts/cluster`: PostgreSQL, two `readroom serve`
//! replicas behind HAProxy, two workers) under a signed-in grader's `GET /api/worklist`:
//!
//! 1. paced request rates against one replica, then against both through the load balancer:
//!    answers a second, and latency measured from when each request was due (so a slow answer
//!    delays the next request's clock, not the measurement: no coordinated omission);
//! 2. 30,000 concurrent keep-alive connections, 15,000 held on each replica (one process holds
//!    at most this machine's 20,000 open files), with requests paced across all of them;
//! 3. past a replica's connection limit (`max_connections`): the connections held keep being
//!    served, the new ones are refused with 503, and the replica serves normally afterwards.
//!
//! The load comes from client processes of this same binary (`SURGE_CLIENT` set): each has its
//! own open-file limit, and the numbers a client prints are its own.
//!
//! Run with `cargo build --release --workspace --bins && cargo bench -p readroom-tests --bench
//! surge_bench` (the cluster runs `target/release/readroom`). `SURGE_QUICK=1`: shorter runs,
//! nothing written to BENCHMARKS.md.

#[path = "../tests/support/cluster.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::Instant;

use cluster::Cluster;
use readroom_tests::report::{percentile, write_section};

const HEADING: &str = "## Surge: the local cluster under load (issue 19)";
/// The client role's parameters (JSON), set on client processes.
const CLIENT: &str = "SURGE_CLIENT";
const PATH: &str = "/api/worklist";

fn quick() -> bool {
    std::env::var_os("SURGE_QUICK").is_some()
}

fn main() -> Result<()> {
    if let Ok(params) = std::env::var(CLIENT) {
        let params: ClientParams = serde_json::from_str(&params).context("client parameters")?;
        let runtime = tokio::runtime::Runtime::new()?;
        let result = runtime.block_on(client(params));
        println!("{}", serde_json::to_string(&result)?);
        return Ok(());
    }
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(bench())
}

// ---- the client process --------------------------------------------------------------------

/// What one client process does.
#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct ClientParams {
    /// `host:port`.
    address: String,
    /// The session cookie (`name=value`).
    cookie: String,
    /// Keep-alive connections to open.
    connections: usize,
    /// Connections opened a second while ramping up.
    opens_per_second: f64,
    /// Requests a second over all connections, once all are open (0: none).
    rate: f64,
    /// How long requests are sent, from the moment all connections are open.
    seconds: f64,
}

/// What one client process saw.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct ClientResult {
    /// Connections on which a first answer (any status) came back.
    connected: usize,
    /// Connections refused at TCP connect, or whose first exchange failed.
    failed_connections: usize,
    /// Answers by status.
    statuses: BTreeMap<u16, usize>,
    /// Requests that got no answer (reset, closed, timed out).
    errors: usize,
    /// Latency of the 200 answers in ms, from when each request was due: p50, p99, max.
    latency_ms: [f64; 3],
    /// 200 answers a second over the sending time.
    served_per_second: f64,
    /// Seconds it took to open the connections.
    ramp_seconds: f64,
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// Opens a connection and sends the first request on it; the connection's status.
async fn open(params: &ClientParams) -> Option<(Sender, u16)> {
    let stream = TcpStream::connect(&params.address).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    let status = send(&mut sender, params).await?;
    Some((sender, status))
}

/// One `GET` on `sender`, its body read; the status, or `None` when no answer came.
async fn send(sender: &mut Sender, params: &ClientParams) -> Option<u16> {
    sender.ready().await.ok()?;
    let request = hyper::Request::get(PATH)
        .header("host", &params.address)
        .header("cookie", &params.cookie)
        .body(Empty::new())
        .ok()?;
    let answer = tokio::time::timeout(Duration::from_secs(30), sender.send_request(request))
        .await
        .ok()?
        .ok()?;
    let status = answer.status().as_u16();
    answer.into_body().collect().await.ok()?;
    Some(status)
}

async fn client(params: ClientParams) -> ClientResult {
    let params = Arc::new(params);
    let started = Instant::now();
    let opened = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (go_tx, go_rx) = tokio::sync::watch::channel(None::<Instant>);
    let result = Arc::new(Mutex::new(ClientResult::default()));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let mut tasks = Vec::new();
    for index in 0..params.connections {
        let due = started + Duration::from_secs_f64(index as f64 / params.opens_per_second);
        tokio::time::sleep_until(due).await;
        let (params, opened, finished, result, latencies) = (
            Arc::clone(&params),
            Arc::clone(&opened),
            Arc::clone(&finished),
            Arc::clone(&result),
            Arc::clone(&latencies),
        );
        let mut go = go_rx.clone();
        tasks.push(tokio::spawn(async move {
            let first = open(&params).await;
            opened.fetch_add(1, Ordering::SeqCst);
            let Some((mut sender, status)) = first else {
                result.lock().await.failed_connections += 1;
                finished.fetch_add(1, Ordering::SeqCst);
                return;
            };
            {
                let mut result = result.lock().await;
                *result.statuses.entry(status).or_default() += 1;
                if status == 200 {
                    result.connected += 1;
                } else {
                    result.failed_connections += 1;
                }
            }
            let start = loop {
                if let Some(start) = *go.borrow_and_update() {
                    break start;
                }
                if go.changed().await.is_err() {
                    return;
                }
            };
            if status != 200 || params.rate <= 0.0 {
                // Held open, idle, until the run ends.
                tokio::time::sleep_until(start + Duration::from_secs_f64(params.seconds)).await;
                drop(sender);
                return;
            }
            let period = Duration::from_secs_f64(params.connections as f64 / params.rate);
            // Spread the connections' first requests over one period.
            let mut due = start + period.mul_f64(index as f64 / params.connections as f64);
            let end = start + Duration::from_secs_f64(params.seconds);
            let mut mine = Vec::new();
            let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
            let mut errors = 0;
            while due < end {
                tokio::time::sleep_until(due).await;
                match send(&mut sender, &params).await {
                    Some(status) => {
                        *statuses.entry(status).or_default() += 1;
                        if status == 200 {
                            mine.push(due.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    None => {
                        errors += 1;
                        break;
                    }
                }
                due += period;
            }
            latencies.lock().await.extend(mine);
            let mut result = result.lock().await;
            result.errors += errors;
            for (status, count) in statuses {
                *result.statuses.entry(status).or_default() += count;
            }
        }));
    }
    // Everyone connected (or failed): go.
    while opened.load(Ordering::SeqCst) < params.connections {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ramp = started.elapsed();
    let go = Instant::now() + Duration::from_millis(100);
    let _ = go_tx.send(Some(go));
    for task in tasks {
        let _ = task.await;
    }
    let mut result = std::mem::take(&mut *result.lock().await);
    let mut latencies = std::mem::take(&mut *latencies.lock().await);
    latencies.sort_by(f64::total_cmp);
    if !latencies.is_empty() {
        result.latency_ms = [
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1],
        ];
    }
    result.served_per_second = latencies.len() as f64 / params.seconds;
    result.ramp_seconds = ramp.as_secs_f64();
    result
}

// ---- the benchmark -------------------------------------------------------------------------

/// A client process running.
struct Running(std::process::Child);

fn start_client(params: &ClientParams) -> Result<Running> {
    let child = Command::new(std::env::current_exe()?)
        .env(CLIENT, serde_json::to_string(params)?)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("a client process")?;
    Ok(Running(child))
}

impl Running {
    fn wait(self) -> Result<ClientResult> {
        let output = self.0.wait_with_output()?;
        if !output.status.success() {
            bail!("a client failed: {}", output.status);
        }
        let text = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(text.lines().last().unwrap_or_default())
            .with_context(|| format!("client output: {text}"))
    }
}

/// Signs the cluster's grader in through their one-time link; the session cookie.
async fn sign_in(cluster: &Cluster) -> Result<String> {
    let link = &cluster.link("grader").url;
    let token = link.split("#token=").nth(1).context("token in the link")?;
    session_cookie(&cluster.url, token).await
}

/// Redeems a one-time sign-in token at `base` as the sign-in page does; the session cookie.
async fn session_cookie(base: &str, token: &str) -> Result<String> {
    let answer = reqwest::Client::new()
        .post(format!("{base}/api/auth/link"))
        .header("origin", base)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({ "token": token }))
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("sign-in: {}", answer.status());
    }
    let cookie = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| !value.contains("Max-Age=0"))
        .context("a session cookie")?;
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

/// Resident memory (MiB) and open files of a process.
fn footprint(pid: u32) -> (f64, usize) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0;
    let files = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0);
    (rss, files)
}

fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn statuses(result: &ClientResult) -> String {
    result
        .statuses
        .iter()
        .map(|(status, count)| format!("{count} × {status}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One paced run: `rate` requests a second over `connections` to `address`.
async fn paced(address: &str, cookie: &str, connections: usize, rate: f64) -> Result<String> {
    let seconds = if quick() { 3.0 } else { 10.0 };
    let load = load_average();
    let result = start_client(&ClientParams {
        address: address.to_owned(),
        cookie: cookie.to_owned(),
        connections,
        opens_per_second: 1000.0,
        rate,
        seconds,
    })?
    .wait()?;
    let [p50, p99, max] = result.latency_ms;
    let row = format!(
        "| {rate:.0} | {connections} | {:.0} | {p50:.1} ms | {p99:.1} ms | {max:.0} ms | {} | {} | {load} |",
        result.served_per_second,
        statuses(&result),
        result.errors,
    );
    println!("{row}");
    Ok(row)
}

/// `readroom demo` (SQLite, the in-process worker: the embedded default) on a free port; its
/// address and the first grader's session cookie.
async fn sqlite_demo(dir: &std::path::Path) -> Result<(std::process::Child, String, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut child = Command::new(readroom_tests::readroom_binary())
        .args([
            "--data-dir",
            &dir.display().to_string(),
            "demo",
            "--listen",
            &address,
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("demo output")?;
    // Read to the end, so the demo never writes into a closed pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("grader ") {
                let _ = tx.send(line);
            }
        }
    });
    let link = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(300)))
        .await?
        .context("the demo printed no grader link")?;
    let url = format!("http://{address}");
    let token = link.split("#token=").nth(1).context("token in the link")?;
    let cookie = session_cookie(&url, token).await?;
    Ok((child, address, cookie))
}

async fn bench() -> Result<()> {
    let demo_dir = tempfile::tempdir()?;
    let (mut demo, demo_address, demo_cookie) = sqlite_demo(demo_dir.path()).await?;
    let rates: &[f64] = if quick() {
        &[2000.0, 5000.0]
    } else {
        &[1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0]
    };
    let mut demo_rows = String::new();
    for &rate in rates {
        demo_rows.push_str(&paced(&demo_address, &demo_cookie, 64, rate).await?);
        demo_rows.push('\n');
    }
    let _ = demo.kill();
    let _ = demo.wait();

    let cluster = Cluster::start(&[]).await;
    let cookie = sign_in(&cluster).await?;
    let replica_a = format!("127.0.0.1:{}", cluster.port + 1);
    let replica_b = format!("127.0.0.1:{}", cluster.port + 2);
    let balancer = format!("127.0.0.1:{}", cluster.port);

    let mut section = format!(
        "{HEADING}\n\nCommand: `cargo build --release --workspace --bins && cargo bench -p \
         readroom-tests --bench surge_bench`, on this machine's 2 cores, shared with the load \
         clients (processes of the benchmark: tokio + hyper, HTTP/1.1 keep-alive). One signed-in \
         grader's `GET {PATH}` (the demo grader's worklist, ~4.4 KB), first on the embedded \
         default (`readroom demo`: SQLite, in-process worker), then on the local cluster \
         (`scripts/cluster`: PostgreSQL, two `readroom serve` replicas, HAProxy in front, two \
         idle workers). Latency is measured from when each request was due (paced, open loop), \
         so a late answer counts its queueing too. Code at {}.\n",
        commit()
    );

    section.push_str(&format!(
        "\n### The embedded default (`readroom demo`: one process, SQLite), 64 connections\n\n| requests/s asked | connections | 200s/s | p50 | p99 | max | answers | no answer | load average |\n|---:|---:|---:|---:|---:|---:|---|---:|---|\n{demo_rows}"
    ));
    for (title, address) in [
        ("The cluster (PostgreSQL): one replica, direct", &replica_a),
        ("The cluster: two replicas behind HAProxy", &balancer),
    ] {
        section.push_str(&format!(
            "\n### {title}, 64 connections\n\n| requests/s asked | connections | 200s/s | p50 | p99 | max | answers | no answer | load average |\n|---:|---:|---:|---:|---:|---:|---|---:|---|\n"
        ));
        for &rate in rates {
            section.push_str(&paced(address, &cookie, 64, rate).await?);
            section.push('\n');
        }
    }

    // 30,000 connections: 15,000 on each replica, requests paced over all of them; then 5,000
    // more on replica A, past its limit, while the 30,000 are held.
    let held = if quick() { 3_000 } else { 15_000 };
    let seconds = if quick() { 10.0 } else { 30.0 };
    let hold = |address: &str| ClientParams {
        address: address.to_owned(),
        cookie: cookie.clone(),
        connections: held,
        opens_per_second: 1_000.0,
        rate: 500.0,
        seconds,
    };
    let load = load_average();
    let first = start_client(&hold(&replica_a))?;
    let second = start_client(&hold(&replica_b))?;
    let (pid_a, pid_b) = (cluster.pid("a"), cluster.pid("b"));
    let ramp = Duration::from_secs_f64(held as f64 / 1_000.0);
    tokio::time::sleep(ramp + Duration::from_secs_f64(seconds / 3.0)).await;
    let extra = start_client(&ClientParams {
        address: replica_a.clone(),
        cookie: cookie.clone(),
        connections: if quick() { 500 } else { 5_000 },
        opens_per_second: 2_500.0,
        rate: 100.0,
        seconds: seconds / 3.0,
    })?;
    let extra = tokio::task::spawn_blocking(move || extra.wait()).await??;
    // The held connections are still open (the extra client ran a third of their time).
    let at_peak = (footprint(pid_a), footprint(pid_b));
    let first = tokio::task::spawn_blocking(move || first.wait()).await??;
    let second = tokio::task::spawn_blocking(move || second.wait()).await??;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = (footprint(pid_a), footprint(pid_b));
    let recovery = paced(&replica_a, &cookie, 64, 2000.0).await?;

    let row = |who: &str, result: &ClientResult| {
        let [p50, p99, max] = result.latency_ms;
        format!(
            "| {who} | {} | {} | {:.0} | {p50:.1} ms | {p99:.1} ms | {max:.0} ms | {} | {} | {:.1} s |\n",
            result.connected,
            result.failed_connections,
            result.served_per_second,
            statuses(result),
            result.errors,
            result.ramp_seconds,
        )
    };
    section.push_str(&format!(
        "\n### {} concurrent keep-alive connections, then more past a replica's limit\n\n\
         Two clients hold {held} connections each, one on each replica, and send 500 requests a \
         second each over them for {seconds:.0} s; a third opens {} more on replica A a third \
         of the way in (its `max_connections`: the default, this machine's 20,000 open files \
         less a tenth) and sends 100 a second for {:.0} s. Load average at the start: {load}.\n\n\
         | client | connections served | refused or failed | 200s/s | p50 | p99 | max | answers | no answer | ramp |\n\
         |---|---:|---:|---:|---:|---:|---:|---|---:|---:|\n",
        2 * held,
        if quick() { 500 } else { 5_000 },
        seconds / 3.0,
    ));
    section.push_str(&row("replica A, held", &first));
    section.push_str(&row("replica B, held", &second));
    section.push_str(&row("replica A, past the limit", &extra));
    section.push_str(&format!(
        "\nReplicas once the third client had finished (the 30,000 still held): A {:.0} MiB resident, {} open files; B {:.0} MiB, {} \
         files. Two seconds after the clients closed: A {:.0} MiB, {} files; B {:.0} MiB, {} \
         files. Replica A right after (64 connections, 2,000 requests a second):\n\n\
         | requests/s asked | connections | 200s/s | p50 | p99 | max | answers | no answer | load average |\n|---:|---:|---:|---:|---:|---:|---|---:|---|\n{recovery}\n",
        at_peak.0.0, at_peak.0.1, at_peak.1.0, at_peak.1.1, after.0.0, after.0.1, after.1.0, after.1.1,
    ));
    println!("{section}");
    if !quick() {
        let path = write_section(HEADING, &section)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
