//! Distributed mode as an operator starts it: `scripts/cluster` (PostgreSQL, s3s-fs, HAProxy in
//! front of two `readroom serve` replicas, two `readroom worker` processes, the demo data), used
//! only through the load balancer, as users would:
//! - the sign-in links it prints are one-time across replicas, and the sign-in throttle and the
//!   lockout count across replicas (round robin gives an attacker no second budget, and a name
//!   without an account locks after as many failures as a real one);
//! - a grader in Chromium streams a case; the replica that signalled the stream is killed
//!   (SIGKILL); the stream keeps playing, the grader stays signed in and grades the case
//!   through the surviving replica; then the worker serving the stream is killed and the same
//!   view comes back on the other worker; signing out ends the stream within 2 s, and the audit
//!   log says why.

use crate::cluster_harness as harness;
use crate::support;

use std::time::{Duration, Instant};

use harness::Cluster;
use readroom_server::db::audit::AuditFilter;
use readroom_tests::browser;
use serde_json::{Value, json};
use support::Browser;

/// Waits until `path` exists and returns its content.
async fn wait_file(path: std::path::PathBuf, timeout: Duration) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(text) = std::fs::read_to_string(&path)
                && !text.is_empty()
            {
                return Some(text);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    })
    .await
    .unwrap()
}

fn epoch_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_cluster_keeps_grading_through_a_killed_replica() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let cluster = Cluster::start(&[
        ("READROOM_AUTH__LOCKOUT_THRESHOLD", "3"),
        ("READROOM_AUTH__LOGIN_ATTEMPTS_PER_MINUTE", "8"),
    ])
    .await;
    // The banner: the demo's sign-in lines, every link through the load balancer.
    for role in ["grader", "coordinator", "adjudicator", "auditor"] {
        let link = cluster.link(role);
        assert!(
            link.url.starts_with(&format!("{}/", cluster.url)),
            "{link:?} is not through the load balancer {}",
            cluster.url
        );
    }

    // ---- one-time links, across replicas ------------------------------------------------------
    // The refused attempts below (a replayed link, then sign-ins) fall into one one-minute
    // window of the throttle.
    let second = (epoch_ms() / 1000) % 60;
    if second > 40 {
        tokio::time::sleep(Duration::from_secs(61 - second as u64)).await;
    }
    let coordinator = cluster.link("coordinator").clone();
    let token = coordinator.url.split("#token=").nth(1).expect("token");
    let mut first = Browser::at(&cluster.url);
    let used = first
        .post("/api/auth/link", json!({ "token": token }))
        .await;
    assert_eq!(used.status, 200, "{}", used.body);
    let mut again = Browser::at(&cluster.url);
    let replay = again
        .post("/api/auth/link", json!({ "token": token }))
        .await;
    assert_eq!(
        (replay.status, replay.code()),
        (401, "invalid_link"),
        "{}",
        replay.body
    );
    let replicas = cluster.served_by("POST /api/auth/link", 2).await;
    assert_eq!(replicas.len(), 2, "{replicas:?}");
    assert_ne!(replicas[0], replicas[1], "each replica saw one use");
    // Signed in through one replica, known to the other.
    for _ in 0..2 {
        let me = first.get("/api/me").await;
        assert_eq!(me.status, 200, "{}", me.body);
        assert_eq!(me.body["username"], json!(coordinator.username));
    }

    // ---- throttle and lockout, across replicas ------------------------------------------------
    let mut attacker = Browser::at(&cluster.url);
    let mut codes = Vec::new();
    let names = ["nobody.x"; 3].into_iter().chain(["nobody.y"; 5]);
    for name in names {
        let reply = attacker
            .post(
                "/api/auth/login",
                json!({ "username": name, "password": "a wrong password" }),
            )
            .await;
        codes.push(format!("{} {}", reply.status, reply.code()));
    }
    // The invalid replayed link above spent one attempt of this address's 8 a minute.
    assert_eq!(
        codes,
        [
            "401 invalid_credentials",
            "401 invalid_credentials",
            "429 locked",
            "401 invalid_credentials",
            "401 invalid_credentials",
            "429 locked",
            "429 locked",
            "429 throttled",
        ],
        "round robin over two replicas must not double the budgets"
    );
    assert_eq!(
        cluster
            .served_by("POST /api/auth/login", 2)
            .await
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        2,
        "both replicas answered"
    );

    // ---- a grader streams; the replica that signalled the stream dies -------------------------
    let grader = cluster.link("grader").clone();
    let sync = cluster.dir.path().join("sync");
    std::fs::create_dir_all(&sync).unwrap();
    let values = json!({
        "gradable": { "OD": "gradable", "OS": "gradable" },
        "dr_grade": { "OD": 2, "OS": 0 },
        "dme": { "OD": "none", "OS": "none" },
        "areds_category": { "OD": 1, "OS": 1 },
        "vcdr": { "OD": 0.3, "OS": 0.4 },
    });
    let run = tokio::spawn(browser::run_script_async(
        "cluster-lb.mjs",
        json!({ "base_url": cluster.url, "link_url": grader.url, "dir": sync, "values": values }),
        Duration::from_secs(240),
    ));
    let Some(streaming) = wait_file(sync.join("streaming"), Duration::from_secs(120)).await else {
        panic!(
            "the grader's stream did not start: {:?}",
            run.await.unwrap()
        );
    };
    let streaming: Value = serde_json::from_str(&streaming).unwrap();
    let case_id = streaming["case_id"].as_str().unwrap().to_owned();
    let signalled = cluster
        .served_by(&format!("POST /api/cases/{case_id}/stream"), 1)
        .await;
    let victim = signalled.last().expect("the stream was signalled").clone();
    cluster.kill(&victim);
    std::fs::write(sync.join("killed"), epoch_ms().to_string()).unwrap();

    // Once graded, the worker serving the stream dies too.
    let Some(graded) = wait_file(sync.join("graded"), Duration::from_secs(120)).await else {
        panic!("the grader did not grade: {:?}", run.await.unwrap());
    };
    let graded: Value = serde_json::from_str(&graded).unwrap();
    let live = cluster.db.live_streams().await.unwrap();
    let serving = live
        .iter()
        .find(|s| Some(s.id.to_string().as_str()) == graded["stream"].as_str())
        .map(|s| s.worker_id.clone())
        .unwrap_or_else(|| panic!("the graded stream is not open: {live:?}"));
    cluster.kill(&serving);
    std::fs::write(sync.join("worker-killed"), epoch_ms().to_string()).unwrap();

    let result: Value = run.await.unwrap().expect("browser run");
    println!("cluster run (replica {victim} and worker {serving} killed): {result}");
    let failover = result["worker_failover_ms"].as_u64().unwrap();
    assert!(
        failover < 10_000,
        "the view came back {failover} ms after the worker died"
    );
    assert_ne!(
        result["after_worker"]["stream"], streaming["stream"],
        "{result}"
    );
    assert_eq!(
        result["after_worker"]["state"]["window"],
        json!(0.75),
        "the same view: {result}"
    );
    let stream = streaming["stream"].clone();
    assert_eq!(
        result["after_kill"],
        json!({ "phase": "streaming", "stream": stream }),
        "the stream outlives the replica that signalled it"
    );
    assert!(
        result["view_change_ms"].as_u64().unwrap() < 2_000,
        "{result}"
    );
    assert_eq!(result["me"]["ok"], json!(true), "still signed in: {result}");
    assert_eq!(result["me"]["username"], json!(grader.username), "{result}");
    assert_eq!(result["grade"]["kind"], json!("grade"), "graded: {result}");
    assert_eq!(
        result["still_streaming"],
        json!({ "phase": "streaming", "stream": stream }),
        "{result}"
    );
    assert_eq!(result["signout"]["ok"], json!(true), "{result}");
    let ended = result["signout_to_end_ms"].as_u64().unwrap();
    assert!(ended < 2_000, "the stream ended {ended} ms after sign-out");
    assert_eq!(result["page_errors"], json!([]), "{result}");
    let graded_by = cluster
        .served_by(&format!("POST /api/cases/{case_id}/grade"), 1)
        .await;
    assert!(
        !graded_by.is_empty() && graded_by.iter().all(|r| *r != victim),
        "the surviving replica took the grade: {graded_by:?}"
    );

    // The audit log (written by the surviving replica): the grade, and why the stream ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream_id = result["after_worker"]["stream"].as_str().unwrap();
    loop {
        let events = cluster
            .db
            .search_audit(
                &AuditFilter {
                    target: Some(format!("case:{case_id}")),
                    ..Default::default()
                },
                500,
            )
            .await
            .unwrap();
        let graded = events.iter().any(|e| e.action == "grade.submitted");
        let revoked = events
            .iter()
            .find(|e| e.action == "stream.revoked" && e.details.contains(stream_id));
        if graded && let Some(revoked) = revoked {
            assert!(revoked.details.contains("signed_out"), "{revoked:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "grade.submitted and stream.revoked (signed_out) for {stream_id}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Logs written to files are plain text: no terminal colour codes for a collector to choke
    // on. The cluster runs with RUST_LOG=warn; the workers' logs hold webrtc-rs's warnings of
    // every session (docs/streaming.md, "webrtc-rs log noise").
    let logs: String = ["a", "b", "w1", "w2"]
        .iter()
        .map(|name| {
            std::fs::read_to_string(cluster.dir.path().join(format!("logs/{name}.log")))
                .unwrap_or_default()
        })
        .collect();
    assert!(logs.contains(" WARN "), "no log line to check: {logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "colour codes in a log file: {logs}"
    );
}
