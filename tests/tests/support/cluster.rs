//! `scripts/cluster` as a test or benchmark harness: starts the local cluster (PostgreSQL,
//! s3s-fs, HAProxy, two `readroom serve` replicas, two `readroom worker` processes, demo data)
//! in its own process group with the `readroom` binary of this build, reads its banner, and
//! can kill, restart and inspect its processes. Stops everything (and drops its database) on
//! drop. Included with `#[path]` by `tests/tests/cluster.rs` and `benches/worker_bench.rs`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use readroom_server::db::Db;
use readroom_tests::browser;
use readroom_tests::pg::PgDatabase;
use readroom_tests::readroom_binary;

/// A `<role> <username> <one-time URL>` line of the cluster's banner.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// The role shown.
    pub role: String,
    /// The username.
    pub username: String,
    /// The one-time URL (through the load balancer).
    pub url: String,
}

/// `scripts/cluster` running in its own process group; stopped (and its database dropped) on
/// drop.
pub struct Cluster {
    script: Child,
    /// The state directory (logs, pid files, keys).
    pub dir: tempfile::TempDir,
    /// The load balancer's URL.
    pub url: String,
    /// The base port (replicas +1, +2; workers +41, +42).
    pub port: u16,
    /// What the script printed up to its banner's last line.
    pub banner: Vec<String>,
    /// The sign-in lines of the banner.
    pub links: Vec<SignIn>,
    /// The cluster's database.
    pub db: Db,
    /// Workers this harness started again (in the script's process group).
    restarted: Vec<Child>,
    _pg: PgDatabase,
}

/// A base port whose neighbours the cluster uses (+1, +2 replicas, +41, +42 workers, +100 S3)
/// are free, below the ephemeral range.
fn cluster_port() -> u16 {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (0..2000u32)
        .map(|i| 20_000 + (seed.wrapping_add(i.wrapping_mul(7919)) % 11_000) as u16)
        .find(|&port| [0, 1, 2, 41, 42, 100].iter().all(|d| free(port + d)))
        .expect("a free block of loopback ports")
}

impl Cluster {
    /// Starts the cluster with the readroom binary under test and extra environment `env`;
    /// returns once it printed its banner (the replicas and the load balancer are healthy).
    pub async fn start(env: &[(&str, &str)]) -> Cluster {
        let pg = PgDatabase::create().await.expect("a PostgreSQL database");
        let port = cluster_port();
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(browser::workspace_root().join("scripts/cluster"));
        command
            .env("READROOM_BIN", readroom_binary())
            .env("READROOM_CLUSTER_DIR", dir.path())
            .env("READROOM_CLUSTER_PORT", port.to_string())
            .env("READROOM_CLUSTER_DATABASE", &pg.name)
            .env("READROOM_CLUSTER_SKIP_SETUP", "1")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut script = command.spawn().expect("scripts/cluster starts");
        let stdout = script.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads to the end, so the script never writes into a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut banner = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(line) => {
                    let done = line.starts_with("distributed mode:");
                    banner.push(line);
                    if done {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = script.try_wait().unwrap() {
                        panic!("scripts/cluster exited ({status}) before it was ready: {banner:?}");
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the cluster did not start: {banner:?}"
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("scripts/cluster closed its output: {banner:?}")
                }
            }
        }
        let links = banner
            .iter()
            .filter_map(|line| {
                let parts: Vec<&str> = line.split_whitespace().collect();
                (parts.len() == 3 && parts[2].starts_with("http")).then(|| SignIn {
                    role: parts[0].to_owned(),
                    username: parts[1].to_owned(),
                    url: parts[2].to_owned(),
                })
            })
            .collect();
        let db = Db::connect(&pg.url).await.expect("the cluster's database");
        Cluster {
            script,
            dir,
            url: format!("http://127.0.0.1:{port}"),
            port,
            banner,
            links,
            db,
            restarted: Vec::new(),
            _pg: pg,
        }
    }

    /// The sign-in link printed for a user with `role`.
    pub fn link(&self, role: &str) -> &SignIn {
        self.links
            .iter()
            .find(|l| l.role == role)
            .unwrap_or_else(|| panic!("no {role} link in {:?}", self.banner))
    }

    /// Kills process `name` (`a`, `b`, `w1`, …) with SIGKILL: no drain, no goodbye.
    pub fn kill(&self, name: &str) {
        let pid = std::fs::read_to_string(self.dir.path().join(format!("run/{name}.pid")))
            .unwrap_or_else(|err| panic!("{name}'s pid: {err}"));
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {name}");
    }

    /// The pid of process `name`.
    pub fn pid(&self, name: &str) -> u32 {
        std::fs::read_to_string(self.dir.path().join(format!("run/{name}.pid")))
            .unwrap_or_else(|err| panic!("{name}'s pid: {err}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// `readroom <args>` against the cluster's database and store (the replicas' environment
    /// and data directory); its standard output.
    pub fn readroom(&self, args: &[&str]) -> String {
        let env = std::fs::read_to_string(self.dir.path().join("server.env")).unwrap();
        let out = Command::new(readroom_binary())
            .arg("--data-dir")
            .arg(self.dir.path().join("server"))
            .args(args)
            .envs(env.lines().filter_map(|line| line.split_once('=')))
            .env("RUST_LOG", "warn")
            .output()
            .expect("run readroom");
        assert!(
            out.status.success(),
            "readroom {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Starts worker `w1` or `w2` again (after [`Cluster::kill`]) as the script started it;
    /// the process is this harness's (killed on drop) and its pid file is updated.
    #[allow(
        clippy::zombie_processes,
        reason = "the child is kept in `restarted` and waited for on drop"
    )]
    pub fn restart_worker(&mut self, n: u8) {
        let server_key = self.readroom(&["server-key"]);
        let env = std::fs::read_to_string(self.dir.path().join("server.env")).unwrap();
        let name = format!("w{n}");
        let log = std::fs::File::create(self.dir.path().join(format!("logs/{name}.restart.log")))
            .unwrap();
        let child = Command::new(readroom_binary())
            .arg("--data-dir")
            .arg(self.dir.path().join(&name))
            .args(["worker", "--id", &name, "--listen"])
            .arg(format!("127.0.0.1:{}", self.port + 40 + u16::from(n)))
            .arg("--server")
            .arg(format!("http://127.0.0.1:{}", self.port + 1))
            .arg("--server")
            .arg(format!("http://127.0.0.1:{}", self.port + 2))
            .args(["--server-key", &server_key])
            .envs(env.lines().filter_map(|line| line.split_once('=')))
            .env("RUST_LOG", "warn")
            .process_group(self.script.id() as i32)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("restart a worker");
        std::fs::write(
            self.dir.path().join(format!("run/{name}.pid")),
            child.id().to_string(),
        )
        .unwrap();
    }

    /// The replicas (`a`, `b`) HAProxy sent requests starting with `request` (e.g.
    /// `POST /api/auth/link`) to, in order, once its log holds at least `at_least` of them or
    /// after 5 s. HAProxy logs a request after it has answered it, so the client can hold the
    /// answer before the line is written (a race CI lost under load).
    pub async fn served_by(&self, request: &str, at_least: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let served = self.served_by_now(request);
            if served.len() >= at_least || Instant::now() >= deadline {
                return served;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What HAProxy's log holds now (see [`Cluster::served_by`]).
    fn served_by_now(&self, request: &str) -> Vec<String> {
        let log =
            std::fs::read_to_string(self.dir.path().join("logs/haproxy.out")).unwrap_or_default();
        let quoted = format!("\"{request}");
        log.lines()
            .filter(|line| line.contains(&quoted))
            .filter_map(|line| {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix("api/"))
                    .map(str::to_owned)
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A failed run (or READROOM_KEEP_CLUSTER_LOGS=1) keeps every process's log.
        if std::thread::panicking() || std::env::var_os("READROOM_KEEP_CLUSTER_LOGS").is_some() {
            let kept = std::env::temp_dir().join(format!("readroom-cluster-logs-{}", self.port));
            let _ = Command::new("cp")
                .arg("-r")
                .arg(self.dir.path().join("logs"))
                .arg(&kept)
                .status();
            eprintln!("cluster logs kept in {}", kept.display());
        }
        let group = format!("-{}", self.script.id());
        let kill = |signal: &str| {
            Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status()
        };
        let _ = kill("-TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(self.script.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = kill("-KILL");
        let _ = self.script.wait();
        for child in &mut self.restarted {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
