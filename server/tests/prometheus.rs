//! Observability with a real Prometheus (Debian's `prometheus`, installed by `scripts/setup`):
//! a `readroom serve` process and a `readroom worker` process that registers with it are
//! scraped (the server's `/metrics` with its bearer token, the worker's own metrics port), the
//! alert rules of `infra/observability/alerts.yml` are loaded by the same Prometheus, and the
//! series an operator's dashboards and alerts use arrive.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "a-metrics-token-for-the-prometheus-test";

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn readroom(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_readroom"));
    command.arg("--data-dir").arg(data).env("RUST_LOG", "warn");
    command
}

fn output(mut command: Command) -> String {
    let out = command.output().expect("run readroom");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits until `url` answers 200.
async fn wait_ok(client: &reqwest::Client, url: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(reply) = client.get(url).send().await
            && reply.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not come up at {url}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The result of an instant PromQL query (the `data.result` array).
async fn query(client: &reqwest::Client, base: &str, promql: &str) -> Vec<serde_json::Value> {
    let reply: serde_json::Value = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .expect("Prometheus answers")
        .json()
        .await
        .expect("JSON");
    reply["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_server_and_a_worker() {
    let prometheus_bin = Path::new("/usr/bin/prometheus");
    assert!(
        prometheus_bin.exists(),
        "Debian's prometheus is missing: run scripts/setup"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (server_dir, worker_dir) = (tmp.path().join("server"), tmp.path().join("worker"));
    let identity = tmp.path().join("worker.age");
    let mut keygen = readroom(&worker_dir);
    keygen.arg("keygen").arg("-o").arg(&identity);
    output(keygen);
    let mut server_key = readroom(&server_dir);
    server_key.arg("server-key");
    let server_key = output(server_key);
    let mut worker_key = readroom(&worker_dir);
    worker_key.args(["worker", "--print-key"]);
    let worker_key = output(worker_key);

    let (api_port, control_port, worker_metrics, prom_port) =
        (free_port(), free_port(), free_port(), free_port());
    let api = format!("http://127.0.0.1:{api_port}");
    let mut serve = readroom(&server_dir);
    serve
        .args(["serve", "--listen", &format!("127.0.0.1:{api_port}")])
        .env("READROOM_METRICS_TOKEN", TOKEN)
        .env(
            "READROOM_WORKERS__TRUSTED_KEYS",
            format!("[\"{worker_key}\"]"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let _server = Proc(serve.spawn().expect("readroom serve"));
    let mut worker = readroom(&worker_dir);
    worker
        .args([
            "worker",
            "--id",
            "w-prom",
            "--listen",
            &format!("127.0.0.1:{control_port}"),
            "--server",
            &api,
            "--server-key",
            &server_key,
        ])
        .env("READROOM_WORKER_IDENTITY", &identity)
        .env(
            "READROOM_WORKER__METRICS_LISTEN",
            format!("127.0.0.1:{worker_metrics}"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let _worker = Proc(worker.spawn().expect("readroom worker"));

    let client = reqwest::Client::new();
    wait_ok(&client, &format!("{api}/healthz"), "readroom serve").await;
    wait_ok(
        &client,
        &format!("http://127.0.0.1:{worker_metrics}/metrics"),
        "the worker's metrics",
    )
    .await;
    // Some traffic worth counting.
    for path in ["/healthz", "/api/me", "/api/worklist"] {
        client.get(format!("{api}{path}")).send().await.unwrap();
    }

    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/observability/alerts.yml");
    let rules = rules
        .canonicalize()
        .expect("infra/observability/alerts.yml");
    let config = tmp.path().join("prometheus.yml");
    let mut file = std::fs::File::create(&config).unwrap();
    write!(
        file,
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules}\n\
         scrape_configs:\n\
         \x20 - job_name: readroom-server\n\
         \x20   authorization:\n      credentials: {TOKEN}\n\
         \x20   static_configs:\n      - targets: ['127.0.0.1:{api_port}']\n\
         \x20 - job_name: readroom-worker\n\
         \x20   static_configs:\n      - targets: ['127.0.0.1:{worker_metrics}']\n",
        rules = rules.display()
    )
    .unwrap();
    drop(file);
    let prom = format!("http://127.0.0.1:{prom_port}");
    let _prometheus = Proc(
        Command::new(prometheus_bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("prometheus"),
    );
    wait_ok(&client, &format!("{prom}/-/ready"), "Prometheus").await;

    // Both targets up, and the series dashboards and alerts use.
    let wanted = [
        "up{job=\"readroom-server\"} == 1",
        "up{job=\"readroom-worker\"} == 1",
        "readroom_http_requests_total{route=\"/healthz\",status=\"200\"}",
        "readroom_http_request_duration_seconds_bucket",
        "readroom_worker_heartbeats_total",
        "readroom_workers_healthy == 1",
        "readroom_pool_free_slots > 0",
        "readroom_worker_capacity > 0",
        "readroom_db_pool_connections",
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut missing: Vec<&str> = wanted.to_vec();
    while !missing.is_empty() {
        let mut still = Vec::new();
        for promql in missing {
            if query(&client, &prom, promql).await.is_empty() {
                still.push(promql);
            }
        }
        missing = still;
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "series that never arrived in Prometheus: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The alert rules loaded (a rule file Prometheus refused would be missing here), and the
    // worker-down alert is not firing while the worker is up.
    let rules: serde_json::Value = client
        .get(format!("{prom}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let groups = rules["data"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert!(names.len() >= 5, "alert rules loaded: {names:?}");
    let firing = query(&client, &prom, "ALERTS{alertstate=\"firing\"}").await;
    assert!(
        firing.iter().all(|a| !a["metric"]["alertname"]
            .as_str()
            .unwrap_or("")
            .contains("WorkerDown")),
        "{firing:?}"
    );
}
