//! Distributed mode end to end: the API server on PostgreSQL and S3 (s3s-fs) places streams on
//! two `readroom worker` processes (separate OS processes running the real command line, with
//! the age identity; the server holds none), and a grader watches in Chromium while a worker
//! is killed (the viewer comes back on the other worker with the same view) and while the
//! grader's assignment is removed (the stream ends within 2 s and the audit log says why).
//! Also: the protocol refuses unsigned and wrongly signed requests, and the per-user limit.

use crate::support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use readroom_domain::control_auth::{ControlSigner, Direction};
use readroom_server::config::Config;
use readroom_server::db::{AssignmentRole, Backend, Case, Role};
use readroom_tests::browser;
use readroom_tests::s3s::{REGION, S3sServer};
use serde_json::{Value, json};
use support::TestApp;

/// The child process's command line (JSON list), when this test binary runs as a worker.
const CHILD_ARGS: &str = "READROOM_TEST_CHILD_ARGS";
const BUCKET: &str = "readroom";

/// Not a test: the entry point of the worker processes [`Worker::start`] runs (this test
/// binary re-executed with `--ignored --exact workers::child_process` and the command line in
/// `READROOM_TEST_CHILD_ARGS`), so the workers are real processes running `readroom worker`.
#[test]
#[ignore = "entry point of the worker processes the distributed-mode tests start"]
fn child_process() {
    let Ok(args) = std::env::var(CHILD_ARGS) else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&args).expect("child arguments");
    let cli = readroom_server::cli::Cli::parse_from(args);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(readroom_server::cli::run(cli))
        .expect("the worker ran");
}

/// A `readroom worker` process; killed on drop.
struct Worker {
    id: String,
    child: Child,
}

impl Worker {
    /// Starts worker `id` with the server's demo identity, registering with `server_url`.
    fn start(id: &str, app: &TestApp, s3: &S3sServer, dir: &Path, seed: &[u8; 32]) -> Worker {
        Worker::start_with_log(id, app, s3, dir, seed, Stdio::inherit())
    }

    /// [`Worker::start`] with the worker's log (stderr) going to `log`.
    fn start_with_log(
        id: &str,
        app: &TestApp,
        s3: &S3sServer,
        dir: &Path,
        seed: &[u8; 32],
        log: Stdio,
    ) -> Worker {
        let data = dir.join(id);
        let keys = data.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        if !keys.join("worker-control.key").exists() {
            write_secret(&keys.join("worker-control.key"), &hex::encode(seed));
        }
        let port = support::free_port();
        let server_key = hex::encode(app.state.auth.tickets.verifier().public_key());
        let args = vec![
            "readroom".to_owned(),
            "--data-dir".to_owned(),
            data.display().to_string(),
            "worker".to_owned(),
            "--id".to_owned(),
            id.to_owned(),
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--server".to_owned(),
            app.url.clone(),
            "--server-key".to_owned(),
            server_key,
        ];
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "workers::child_process",
                "--nocapture",
            ])
            .env(CHILD_ARGS, serde_json::to_string(&args).unwrap())
            .env(
                "READROOM_WORKER_IDENTITY",
                app.state.config.worker_identity_path(),
            )
            .env("READROOM_STORE__KIND", "s3")
            .env("READROOM_STORE__S3__ENDPOINT", &s3.endpoint)
            .env("READROOM_STORE__S3__REGION", REGION)
            .env("READROOM_STORE__S3__BUCKET", BUCKET)
            .env("READROOM_STORE__S3__ACCESS_KEY_ID", &s3.access_key)
            .env("READROOM_STORE__S3__SECRET_ACCESS_KEY", &s3.secret_key)
            .env("READROOM_STORE__S3__FORCE_PATH_STYLE", "true")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a worker process");
        Worker {
            id: id.to_owned(),
            child,
        }
    }

    /// SIGKILL: the worker dies without a drain or a report.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn write_secret(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn worker_key(seed: &[u8; 32]) -> String {
    ControlSigner::from_seed(seed, Direction::WorkerToServer).public_key_hex()
}

/// PostgreSQL, s3s-fs with the bucket, the demo data in both, and a server that trusts the
/// keys of two workers (it holds no worker pool of its own).
async fn cluster() -> (TestApp, S3sServer, [[u8; 32]; 2]) {
    let s3 = S3sServer::start().expect("s3s-fs");
    std::fs::create_dir_all(s3.root().join(BUCKET)).unwrap();
    let seeds = [[7u8; 32], [8u8; 32]];
    let (endpoint, access, secret) = (
        s3.endpoint.clone(),
        s3.access_key.clone(),
        s3.secret_key.clone(),
    );
    let app = TestApp::start_demo_with(Backend::Postgres, move |config: &mut Config| {
        config.store.kind = "s3".into();
        config.store.s3.endpoint = endpoint;
        config.store.s3.region = REGION.into();
        config.store.s3.bucket = BUCKET.into();
        config.store.s3.access_key_id = access;
        config.store.s3.secret_access_key = secret;
        config.store.s3.force_path_style = true;
        config.workers.trusted_keys = seeds.iter().map(worker_key).collect();
        config.workers.revalidate_ms = 250;
    })
    .await;
    (app, s3, seeds)
}

/// Waits until `n` workers have registered and are fresh.
async fn wait_for_workers(app: &TestApp, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = readroom_server::auth::now_unix();
        let fresh = app
            .db()
            .workers()
            .await
            .unwrap()
            .into_iter()
            .filter(|w| now - w.last_seen_unix <= 2)
            .count();
        if fresh >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{n} workers did not register");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A demo case with an OCT exam, assigned to a new grader.
async fn grader_with_case(app: &TestApp, name: &str) -> (readroom_server::db::User, Case) {
    let study = app.demo_study().await;
    let grader = app.user(name, &[(Role::Grader, Some(study.id))]).await;
    for summary in app.db().list_cases(study.id).await.unwrap() {
        let bundle = app.db().bundle_by_id(summary.case.bundle_id).await.unwrap();
        if bundle.summary.to_string().contains("\"oct\"") {
            app.assign(&summary.case, &grader, AssignmentRole::Grader)
                .await;
            return (grader, summary.case);
        }
    }
    panic!("no demo case with OCT");
}

/// A new grader of the demo study, assigned its first case.
pub(crate) async fn grader_on_first_case(
    app: &TestApp,
    name: &str,
) -> (readroom_server::db::Study, readroom_server::db::User, Case) {
    let study = app.demo_study().await;
    let grader = app.user(name, &[(Role::Grader, Some(study.id))]).await;
    let case = app.db().list_cases(study.id).await.unwrap().remove(0).case;
    app.assign(&case, &grader, AssignmentRole::Grader).await;
    (study, grader, case)
}

fn wait_file(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn epoch_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_survives_a_killed_worker_and_ends_when_access_is_revoked() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let (app, s3, seeds) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let mut workers = vec![
        Worker::start("w1", &app, &s3, dir.path(), &seeds[0]),
        Worker::start("w2", &app, &s3, dir.path(), &seeds[1]),
    ];
    wait_for_workers(&app, 2).await;
    let (grader, case) = grader_with_case(&app, "grader.cluster").await;
    let study = app.demo_study().await;
    let coordinator = app
        .user("coord.cluster", &[(Role::Coordinator, Some(study.id))])
        .await;
    let link = app.link(&grader).await;
    let sync = dir.path().join("sync");
    std::fs::create_dir_all(&sync).unwrap();

    let browser_run = tokio::spawn(browser::run_script_async(
        "cluster.mjs",
        json!({
            "base_url": app.url,
            "link_url": link,
            "case_id": case.id.to_string(),
            "dir": sync,
        }),
        Duration::from_secs(180),
    ));

    // Kill the worker that serves the stream once the grader has built a view.
    let streaming = sync.join("streaming");
    let ready = tokio::task::spawn_blocking(move || wait_file(&streaming, Duration::from_secs(90)))
        .await
        .unwrap();
    if !ready {
        let outcome = browser_run.await.unwrap();
        panic!("the grader's stream did not start: {outcome:?}");
    }
    let live = app.db().live_streams().await.unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    let serving = live[0].worker_id.clone();
    let victim = workers
        .iter_mut()
        .find(|w| w.id == serving)
        .expect("a test worker serves it");
    victim.kill();
    std::fs::write(sync.join("killed"), epoch_ms().to_string()).unwrap();

    // Once the same view is back (on the other worker), remove the grader's assignment.
    let restored = sync.join("restored");
    let back = tokio::task::spawn_blocking(move || wait_file(&restored, Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(
        back,
        "the view did not come back after the worker was killed"
    );
    let live = app.db().live_streams().await.unwrap();
    let now_serving: Vec<&str> = live.iter().map(|s| s.worker_id.as_str()).collect();
    // The new stream is on the other worker (the lost one's row stays until its heartbeats
    // are stale, then its record is closed).
    assert!(now_serving.iter().any(|w| *w != serving), "{now_serving:?}");
    let assignment = app
        .db()
        .assignments_for_case(case.id)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.user_id == grader.id)
        .unwrap();
    let mut coord = app.sign_in(&coordinator).await;
    std::fs::write(sync.join("revoked"), epoch_ms().to_string()).unwrap();
    let removed = coord
        .send(
            "DELETE",
            &format!("/api/studies/DEMO/assignments/{}", assignment.id),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);

    let result: Value = browser_run.await.unwrap().expect("browser run");
    println!("cluster run: {result}");
    assert_eq!(
        result["before"]["state"], result["after"]["state"],
        "the same view came back"
    );
    assert_ne!(result["before"]["stream"], result["after"]["stream"]);
    let failover = result["failover_ms"].as_u64().unwrap();
    assert!(failover < 10_000, "failover took {failover} ms");
    let ended = result["revoked_to_end_ms"].as_u64().unwrap();
    assert!(ended < 2_000, "the revoked stream ended after {ended} ms");
    assert_ne!(result["final_phase"], "streaming", "{result}");
    assert_eq!(result["page_errors"], json!([]), "{result}");

    // The audit log says why the stream ended, and that the lost worker's stream ended with it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (revoked, lost) = loop {
        let events = app
            .db()
            .search_audit(
                &readroom_server::db::audit::AuditFilter {
                    target: Some(format!("case:{}", case.id)),
                    ..Default::default()
                },
                500,
            )
            .await
            .unwrap();
        let revoked: Vec<_> = events
            .iter()
            .filter(|e| e.action == "stream.revoked")
            .cloned()
            .collect();
        let lost: Vec<_> = events
            .iter()
            .filter(|e| e.action == "stream.ended" && e.details.contains("worker_lost"))
            .cloned()
            .collect();
        if !revoked.is_empty() && !lost.is_empty() || Instant::now() > deadline {
            break (revoked, lost);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The stream the grader was watching was revoked, and says why. (The lost worker's stream,
    // if its heartbeats were not yet stale, may be recorded as revoked too before it is closed.)
    let current = result["after"]["stream"].as_str().unwrap();
    let mine: Vec<_> = revoked
        .iter()
        .filter(|e| e.details.contains(current))
        .collect();
    assert_eq!(mine.len(), 1, "{revoked:?}");
    assert!(
        mine[0].details.contains("assignment_removed"),
        "{:?}",
        mine[0]
    );
    assert_eq!(lost.len(), 1, "{lost:?}");
    // Nothing is left open.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !app.db().live_streams().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "a stream stayed open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(workers);
}

/// Signs `body` for `path` as a worker (or anyone holding `seed`).
fn signed(seed: &[u8; 32], direction: Direction, path: &str, body: &[u8]) -> String {
    ControlSigner::from_seed(seed, direction).sign(
        "POST",
        path,
        body,
        readroom_server::auth::now_unix(),
    )
}

#[tokio::test]
async fn worker_routes_accept_only_trusted_signed_requests() {
    let trusted = [3u8; 32];
    let app = TestApp::start_with(Backend::Sqlite, |config| {
        config.workers.trusted_keys = vec![worker_key(&trusted)];
    })
    .await;
    let http = app.http();
    let path = "/internal/worker/v1/heartbeat";
    let beat = json!({
        "protocol": "readroom-worker/1", "worker_id": "w9", "control_url": "http://127.0.0.1:9",
        "media_address": "127.0.0.1", "capacity": 4, "active_sessions": 0, "cpu_load": 0.1,
        "draining": false, "sessions": []
    })
    .to_string();
    let post = |header: Option<String>, body: String| {
        let mut request = http
            .post(format!("{}{path}", app.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(header) = header {
            request = request.header("x-readroom-signature", header);
        }
        request.send()
    };
    // Unsigned, signed by an unknown key, signed by the server direction, tampered: 401.
    assert_eq!(post(None, beat.clone()).await.unwrap().status(), 401);
    let stranger = signed(&[4; 32], Direction::WorkerToServer, path, beat.as_bytes());
    assert_eq!(
        post(Some(stranger), beat.clone()).await.unwrap().status(),
        401
    );
    let reversed = signed(&trusted, Direction::ServerToWorker, path, beat.as_bytes());
    assert_eq!(
        post(Some(reversed), beat.clone()).await.unwrap().status(),
        401
    );
    let good = signed(&trusted, Direction::WorkerToServer, path, beat.as_bytes());
    let tampered = beat.replace("\"capacity\":4", "\"capacity\":400");
    assert_eq!(
        post(Some(good.clone()), tampered).await.unwrap().status(),
        401
    );
    assert!(
        app.db().workers().await.unwrap().is_empty(),
        "nothing was registered"
    );
    // Signed by the trusted key: registered, and audited once.
    let reply = post(Some(good), beat.clone()).await.unwrap();
    assert_eq!(reply.status(), 200);
    let workers = app.db().workers().await.unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].id, "w9");
    assert_eq!(workers[0].capacity, 4);
    // Malformed JSON from a trusted worker: 400 naming the problem.
    let bad = "{\"protocol\": 1}".to_owned();
    let header = signed(&trusted, Direction::WorkerToServer, path, bad.as_bytes());
    let reply = post(Some(header), bad).await.unwrap();
    assert_eq!(reply.status(), 400);
    assert!(reply.text().await.unwrap().contains("heartbeat"));
}

#[tokio::test]
async fn the_per_user_stream_limit_counts_open_streams() {
    let app = TestApp::start_demo_with(Backend::Sqlite, |config| {
        config.workers.max_streams_per_user = 2;
    })
    .await;
    let (_, grader, case) = grader_on_first_case(&app, "grader.limit").await;
    let mut browser = app.sign_in(&grader).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let reply = open_unconnected_stream(&mut browser, &case).await;
        statuses.push(reply.status);
        if reply.status == 429 {
            assert_eq!(
                reply.body["error"]["code"], "too_many_streams",
                "{}",
                reply.body
            );
        }
    }
    assert_eq!(statuses, [200, 200, 429, 429], "two streams, then refused");
    // Streams that never connect give their slot back within the connect timeout.
    let deadline =
        Instant::now() + Duration::from_secs(app.state.config.stream.connect_timeout_secs + 5);
    while app.db().count_live_streams(grader.id).await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "unconnected streams kept their slots"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One grader's request can be followed across the process boundary: the server's request id
/// (`x-request-id` on the answer) is in the worker's log lines about the session it opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_follows_a_stream_into_the_worker_log() {
    let (app, s3, seeds) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("w1.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let _worker = Worker::start_with_log("w1", &app, &s3, dir.path(), &seeds[0], log.into());
    wait_for_workers(&app, 1).await;
    let (grader, case) = grader_with_case(&app, "grader.trace").await;
    let mut browser = app.sign_in(&grader).await;
    let reply = open_unconnected_stream(&mut browser, &case).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let request_id = reply.headers["x-request-id"].to_str().unwrap().to_owned();
    let stream_id = reply.body["session_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let traced = text
            .lines()
            .any(|line| line.contains(&request_id) && line.contains(&stream_id));
        if traced {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no worker log line names request {request_id} and stream {stream_id}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A worker that dies and is started again before its heartbeats go stale (a container
/// restart) no longer has the streams it had: the server closes their records once its
/// heartbeats do not list them, so they stop counting against their users' stream limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_restarted_worker_lost_are_closed() {
    let (app, s3, seeds) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let mut worker = Worker::start("w1", &app, &s3, dir.path(), &seeds[0]);
    wait_for_workers(&app, 1).await;
    let (grader, case) = grader_with_case(&app, "grader.restart").await;
    let mut browser = app.sign_in(&grader).await;
    let reply = open_unconnected_stream(&mut browser, &case).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let stream_id = reply.body["session_id"].as_str().unwrap().to_owned();
    // Killed before it could report anything, and back within a second, under the same id.
    worker.kill();
    let _worker = Worker::start("w1", &app, &s3, dir.path(), &seeds[0]);
    wait_for_workers(&app, 1).await;
    assert_eq!(app.db().count_live_streams(grader.id).await.unwrap(), 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.db().count_live_streams(grader.id).await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "the lost stream still counts against the grader's limit"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events = app
        .db()
        .search_audit(
            &readroom_server::db::audit::AuditFilter {
                action: Some("stream.ended".into()),
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.details.contains(&stream_id) && e.details.contains("worker_lost")),
        "{events:?}"
    );
}

/// Asks for a stream of `case` with an offer that never connects ([`offer_sdp`]).
async fn open_unconnected_stream(browser: &mut support::Browser, case: &Case) -> support::Reply {
    open_stream_for(browser, case, None).await
}

/// [`open_unconnected_stream`] for viewer session `viewer` (a reconnect), or a new one.
async fn open_stream_for(
    browser: &mut support::Browser,
    case: &Case,
    viewer: Option<&str>,
) -> support::Reply {
    let mut body = json!({ "offer": { "type": "offer", "sdp": offer_sdp() }, "viewport": { "width": 640, "height": 480, "dpr": 1.0 } });
    if let Some(viewer) = viewer {
        body["viewer_session"] = json!(viewer);
    }
    browser
        .post(&format!("/api/cases/{}/stream", case.id), body)
        .await
}

/// The per-user limit counts viewers: a reconnect of a viewer session whose old stream is not
/// closed yet (its worker just died) is not refused, but one viewer session cannot hold more
/// than two streams, so reusing its id does not get around the limit.
#[tokio::test]
async fn a_reconnecting_viewer_counts_once_against_the_limit() {
    let app = TestApp::start_demo_with(Backend::Sqlite, |config| {
        config.workers.max_streams_per_user = 1;
    })
    .await;
    let (_, grader, case) = grader_on_first_case(&app, "grader.reconnect").await;
    let mut browser = app.sign_in(&grader).await;
    let first = open_stream_for(&mut browser, &case, None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let viewer = first.body["viewer_session"].as_str().unwrap().to_owned();
    let reconnect = open_stream_for(&mut browser, &case, Some(&viewer)).await;
    assert_eq!(
        reconnect.status, 200,
        "a reconnect is not refused: {}",
        reconnect.body
    );
    let third = open_stream_for(&mut browser, &case, Some(&viewer)).await;
    assert_eq!(
        third.status, 429,
        "two streams per viewer at most: {}",
        third.body
    );
    let other = open_stream_for(&mut browser, &case, None).await;
    assert_eq!(
        other.status, 429,
        "a second viewer is over the limit: {}",
        other.body
    );
    assert_eq!(other.body["error"]["code"], "too_many_streams");
}

/// An SDP offer shaped like Chromium's whose only candidate leads nowhere, so the session
/// never connects.
fn offer_sdp() -> String {
    support::chromium_like_offer("a=candidate:1 1 udp 2113937151 127.0.0.1 9 typ host\r\n")
}

/// Revoking a grader's grant for a study ends their streams in that study at once, through
/// the protocol's study filter, without waiting for the revalidation pass (set to a minute
/// here, so only the immediate path can end it in time); the audit log says why.
#[tokio::test]
async fn revoking_a_study_grant_ends_the_graders_streams_in_that_study_at_once() {
    let app = TestApp::start_demo_with(Backend::Sqlite, |config| {
        config.workers.revalidate_ms = 60_000;
    })
    .await;
    let (study, grader, case) = grader_on_first_case(&app, "grader.grant").await;
    let mut browser = app.sign_in(&grader).await;
    let opened = open_unconnected_stream(&mut browser, &case).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let stream = opened.body["session_id"].as_str().unwrap().to_owned();
    assert_eq!(app.db().count_live_streams(grader.id).await.unwrap(), 1);

    let admin = app.user("admin.grant", &[(Role::Admin, None)]).await;
    let grant = app
        .db()
        .roles_of(grader.id)
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.study_id == Some(study.id))
        .expect("the study grant");
    let mut admin_browser = app.sign_in(&admin).await;
    let revoked_at = Instant::now();
    let reply = admin_browser
        .send(
            "DELETE",
            &format!("/api/admin/users/{}/roles/{}", grader.id, grant.id),
            None,
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    while app.db().count_live_streams(grader.id).await.unwrap() > 0 {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(2),
            "the stream outlived the grant by 2 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its end report follows the record's close by a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = app
            .db()
            .search_audit(
                &readroom_server::db::audit::AuditFilter {
                    target: Some(format!("case:{}", case.id)),
                    ..Default::default()
                },
                100,
            )
            .await
            .unwrap();
        if events.iter().any(|e| e.action == "stream.ended") || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let revoked: Vec<_> = events
        .iter()
        .filter(|e| e.action == "stream.revoked" && e.details.contains(&stream))
        .collect();
    assert_eq!(revoked.len(), 1, "{events:?}");
    assert!(revoked[0].details.contains("role_revoked"), "{revoked:?}");
    let ended: Vec<_> = events
        .iter()
        .filter(|e| e.action == "stream.ended" && e.details.contains(&stream))
        .collect();
    assert_eq!(ended.len(), 1, "{events:?}");
    assert!(ended[0].details.contains("\"revoked\""), "{ended:?}");
}

/// `readroom healthcheck`, the container images' HEALTHCHECK (they hold no shell or curl):
/// exit 0 on a 2xx answer, non-zero naming the reason otherwise, and no configuration read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_subcommand_probes_an_endpoint() {
    let app = TestApp::start(Backend::Sqlite).await;
    let probe = |url: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(readroom_tests::readroom_binary())
                .args(["healthcheck", &url, "--timeout", "2"])
                // A configuration that would not load: the probe must not read it.
                .env("READROOM_CONFIG", "/nonexistent/readroom.toml")
                .output()
                .expect("readroom healthcheck runs")
        })
    };
    let healthy = probe(format!("{}/healthz", app.url)).await.unwrap();
    assert!(healthy.status.success(), "{healthy:?}");
    assert!(
        String::from_utf8_lossy(&healthy.stdout).contains("200 OK"),
        "{healthy:?}"
    );
    for (url, says) in [
        (format!("{}/no-such-page", app.url), "answered 404"),
        (
            "http://127.0.0.1:1/healthz".to_owned(),
            "http://127.0.0.1:1/healthz",
        ),
        (
            "ftp://127.0.0.1/healthz".to_owned(),
            "is not an http(s) URL",
        ),
    ] {
        let failed = probe(url.clone()).await.unwrap();
        assert!(!failed.status.success(), "{url}: {failed:?}");
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(stderr.contains(says), "{url}: {stderr}");
    }
}
