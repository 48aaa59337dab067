//! The streaming viewer end to end: the real server with its in-process worker streams a demo
//! case over real WebRTC into headless Chromium (Debian's, via playwright-core), and the
//! signaling API refuses bad offers and other people's cases.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use readroom_server::db::{AssignmentRole, Backend, Case, Role};
use readroom_store::ObjectStore;
use readroom_store::blocking::RangeReader;
use readroom_tests::browser;
use readroom_worker::reader::EncryptedBundle;
use serde_json::{Value, json};
use support::TestApp;
use uuid::Uuid;

/// A demo case with an OCT exam, assigned to a new grader.
async fn grader_with_case(app: &TestApp, name: &str) -> (readroom_server::db::User, Case) {
    let study = app.demo_study().await;
    let grader = app.user(name, &[(Role::Grader, Some(study.id))]).await;
    let cases = app.db().list_cases(study.id).await.expect("demo cases");
    let mut chosen = None;
    for summary in cases {
        let bundle = app.db().bundle_by_id(summary.case.bundle_id).await.unwrap();
        let has_oct = bundle.summary.to_string().contains("\"oct\"");
        if has_oct {
            chosen = Some(summary.case);
            break;
        }
    }
    let case = chosen.expect("a demo case with OCT");
    app.assign(&case, &grader, AssignmentRole::Grader).await;
    (grader, case)
}

/// Byte strings cut from the case's source image files (decrypted with the worker's key), so
/// the browser run can check that no response carries any of them.
async fn source_probes(app: &TestApp, case: &Case) -> Vec<String> {
    let bundle = app.db().bundle_by_id(case.bundle_id).await.unwrap();
    let store: Arc<dyn ObjectStore> = Arc::clone(&app.state.store);
    let size = store.head(&bundle.object_key).await.unwrap().size;
    let handle = tokio::runtime::Handle::current();
    let identity_path = app.state.config.worker_identity_path();
    tokio::task::spawn_blocking(move || {
        let reader = RangeReader::new(store, &bundle.object_key, size, handle, 64 * 1024);
        let identity = readroom_worker::keys::load(&identity_path).unwrap();
        let mut opened = EncryptedBundle::open(reader, std::iter::once(identity.as_age())).unwrap();
        let mut probes = Vec::new();
        let names: Vec<String> = opened
            .entry_names()
            .into_iter()
            .filter(|n| n.ends_with(".jpg") || n.ends_with(".png") || n.ends_with(".dcm"))
            .collect();
        for name in names.iter().take(12) {
            let bytes = opened.read_entry(name, 512 * 1024 * 1024).unwrap();
            for fraction in [4, 2] {
                let at = bytes.len() / fraction;
                if bytes.len() > at + 24 {
                    probes.push(hex::encode(&bytes[at..at + 24]));
                }
            }
        }
        probes
    })
    .await
    .unwrap()
}

/// The reply is a 400 whose message names `what`.
fn assert_bad_request(reply: &support::Reply, what: &str) {
    assert_eq!(reply.status, 400, "{}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(what), "{}", reply.body);
}

/// The stream sessions of `case` once its end report is recorded.
async fn wait_for_report(
    app: &TestApp,
    case: &Case,
) -> Vec<readroom_server::db::streams::StreamSession> {
    for _ in 0..100 {
        let rows = app.db().stream_sessions_of_case(case.id).await.unwrap();
        // The end report (records of a visit left with `open_case` come earlier).
        if rows.iter().any(|r| r.end_reason != "switched_case") {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no stream session was recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grader_streams_a_case_in_chromium() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let (grader, case) = grader_with_case(&app, "grader.stream").await;
    let probes = source_probes(&app, &case).await;
    assert!(probes.len() >= 4, "probes from the source files");
    let link = app.link(&grader).await;
    let dir = tempfile::tempdir().unwrap();
    let screenshot = dir.path().join("lossless.png");

    let result: Value = browser::run_script_async(
        "stream.mjs",
        json!({
            "base_url": app.url,
            "link_url": link,
            "case_id": case.id.to_string(),
            "probes": probes,
            "screenshot": screenshot,
        }),
        Duration::from_secs(120),
    )
    .await
    .expect("browser run");
    println!("stream run: {result}");

    // Every ICE check the browser sent on its selected pair was answered, the first (which
    // nominates the pair) included: rtc-ice 0.21.1 left that one unanswered and the browser
    // connected only on its next check, ~50 ms later (vendor/rtc-ice, README there).
    let checks = &result["ice_checks"];
    assert!(checks["requests_sent"].as_u64().unwrap() >= 1, "{result}");
    assert_eq!(
        checks["requests_sent"], checks["responses_received"],
        "a check went unanswered: {result}"
    );

    // Frames are decoded at the viewport's exact device size.
    let viewport = &result["viewport"];
    assert!(result["frames_decoded"].as_u64().unwrap() > 0, "{result}");
    assert_eq!(result["frame_width"], viewport["width"], "{result}");
    assert_eq!(result["frame_height"], viewport["height"], "{result}");
    assert_eq!(result["initial_badge"], "LOSSLESS", "{result}");
    // The settle comes as lossless WebP, far smaller than the frame's RGB.
    assert_eq!(result["initial_format"], "image/webp", "{result}");
    let rgb_bytes = viewport["width"].as_u64().unwrap() * viewport["height"].as_u64().unwrap() * 3;
    assert!(
        result["initial_bytes"].as_u64().unwrap() * 4 < rgb_bytes,
        "{result}"
    );

    // OCT: two B-scans down, a different frame, and the video shows what was rendered.
    let oct = &result["oct"];
    assert_eq!(
        oct["after"].as_u64().unwrap(),
        oct["before"].as_u64().unwrap() + 2,
        "{oct}"
    );
    assert_ne!(oct["sha_before"], oct["sha_after"]);
    assert!(
        oct["video_psnr"].as_f64().unwrap() > 30.0,
        "the decoded video matches the worker's render of that slice: {oct}"
    );

    // Cine: ↓ held plays every B-scan from the one shown to the last, each acknowledged in
    // order (the worker paces the run and skips none), then settles to lossless there; ↑ held
    // and released stops where it was, and nothing moves afterwards.
    let cine = &oct["cine"];
    let slices = oct["slices"].as_u64().unwrap();
    let start = cine["start"].as_u64().unwrap();
    assert_eq!(cine["first_step"], start + 1, "the press steps one: {cine}");
    let played: Vec<u64> = cine["played"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(
        played,
        (start + 2..slices).collect::<Vec<_>>(),
        "every B-scan to the last: {cine}"
    );
    let frames = cine["frames"].as_array().unwrap();
    assert!(
        frames.windows(2).all(|w| w[1].as_u64() > w[0].as_u64()),
        "a frame each: {cine}"
    );
    assert_eq!(cine["end_slice"], slices - 1);
    assert_eq!(cine["end_badge"], "LOSSLESS");
    let stopped = cine["stopped_slice"].as_u64().unwrap();
    assert!(
        stopped > 0 && stopped + 3 <= slices,
        "↑ played some and stopped: {cine}"
    );
    assert_eq!(cine["stopped_badge"], "LOSSLESS");
    assert_eq!(cine["later"]["slice"], stopped, "{cine}");
    assert_eq!(cine["later"]["frame"], cine["stopped_frame"], "{cine}");

    // Fundus: zoom and red-free change the pixels as expected.
    let fundus = &result["fundus"];
    assert_ne!(fundus["fit"], fundus["zoomed"], "{fundus}");
    assert_ne!(fundus["zoomed"], fundus["red_free"], "{fundus}");
    assert_eq!(fundus["zoom_before"], "fit");
    assert!(fundus["zoom_after"].is_number(), "{fundus}");
    assert_eq!(fundus["red_free_state"], true);
    assert_eq!(fundus["grey"]["coloured"], 0, "red-free is grey: {fundus}");

    // Bad messages each get their error, and the session goes on.
    assert_eq!(
        result["errors"],
        json!([
            "bad_json",
            "unknown_type",
            "out_of_range",
            "bad_message",
            "too_large"
        ]),
        "{result}"
    );
    assert_eq!(result["survived_badge"], "LOSSLESS");

    // Nothing the browser received over HTTP contains source image bytes.
    assert_eq!(result["leaks"], json!([]), "{result}");
    assert!(result["responses"].as_u64().unwrap() > 5);
    assert_eq!(result["console_errors"], json!([]), "{result}");
    assert_eq!(result["page_errors"], json!([]), "{result}");
    assert_eq!(result["csp_violations"], json!([]), "{result}");

    // The invisible watermark of the lossless frame names the viewer session.
    let png = image::open(&screenshot).expect("screenshot").to_rgb8();
    let key_path = readroom_server::worker_cmd::watermark_key_path(&app.state.config, None);
    let key = readroom_worker::watermark::WatermarkKey::load(&key_path).expect("the demo's key");
    let found = readroom_worker::watermark::decode(&key, png.width(), png.height(), png.as_raw())
        .expect("watermark decodes");
    let session: Uuid = result["session"].as_str().unwrap().parse().unwrap();
    assert!(
        found.session.matches(&session),
        "{} vs {session}",
        found.session
    );
    // `readroom watermark decode` on the screenshot names the session and looks up whom the
    // server issued it to.
    let decoded = std::process::Command::new(readroom_tests::readroom_binary())
        .arg("--data-dir")
        .arg(&app.state.config.data_dir)
        .args(["watermark", "decode"])
        .arg(&screenshot)
        .env_remove("READROOM_CONFIG")
        .output()
        .expect("readroom watermark decode runs");
    let stdout = String::from_utf8_lossy(&decoded.stdout);
    assert!(decoded.status.success(), "{decoded:?}");
    assert!(
        stdout.contains(&format!(
            "issued: viewer session {session} to user {} ({})",
            grader.id, grader.username
        )),
        "{stdout}"
    );

    // Leaving the page ended the session on the worker, which recorded it with the lossless
    // hashes the browser verified.
    let rows = wait_for_report(&app, &case).await;
    let row = &rows[0];
    assert_eq!(row.user_id, grader.id);
    assert_eq!(row.end_reason, "closed");
    assert!(row.frames >= 6, "{row:?}");
    let lossless: Value = serde_json::from_str(&row.lossless).unwrap();
    let verified: Vec<&str> = lossless
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verified"] == true)
        .map(|r| r["sha256"].as_str().unwrap())
        .collect();
    for sha in [&result["initial_sha"], &result["survived_sha"]] {
        assert!(
            verified.contains(&sha.as_str().unwrap()),
            "{sha} in {lossless}"
        );
    }
    // The record counts the bytes of each lossless image that went out; a verified frame went
    // out whole, and the session's total includes them.
    let records = lossless.as_array().unwrap();
    let initial = records
        .iter()
        .find(|r| r["sha256"] == result["initial_sha"] && r["verified"] == true)
        .expect("the first settle is recorded");
    assert_eq!(initial["bytes"], result["initial_bytes"], "{lossless}");
    let lossless_bytes: i64 = records.iter().map(|r| r["bytes"].as_i64().unwrap()).sum();
    assert!(row.bytes_sent > lossless_bytes, "{row:?}");
    let streamer = app.state.embedded.as_ref().expect("in-process worker");
    assert_eq!(
        streamer.active_sessions(),
        0,
        "the session's resources are gone"
    );

    // The audit log holds the stream's start and end (with duration, frames and views) and
    // every lossless frame the browser verified, under the grader's id and the case.
    let target = format!("case:{}", case.id);
    let mut events = Vec::new();
    for _ in 0..50 {
        events = app
            .db()
            .search_audit(
                &readroom_server::db::AuditFilter {
                    target: Some(target.clone()),
                    ..Default::default()
                },
                500,
            )
            .await
            .unwrap();
        if events.iter().any(|e| e.action == "stream.ended") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let of = |action: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e.action == action)
            .map(|e| {
                assert_eq!(e.actor.as_deref(), Some(grader.id.to_string().as_str()));
                serde_json::from_str(&e.details).unwrap()
            })
            .collect()
    };
    let started = of("stream.started");
    assert_eq!(started.len(), 1, "{started:?}");
    let ended = of("stream.ended");
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0]["end_reason"], "closed");
    assert_eq!(ended[0]["stream_id"], started[0]["stream_id"]);
    assert!(ended[0]["frames"].as_u64().unwrap() >= 6, "{ended:?}");
    assert!(ended[0]["duration_ms"].as_u64().unwrap() > 0);
    assert!(!ended[0]["views"].as_array().unwrap().is_empty());
    let shown: Vec<String> = of("stream.lossless_shown")
        .iter()
        .map(|d| d["sha256"].as_str().unwrap().to_owned())
        .collect();
    for sha in [&result["initial_sha"], &result["survived_sha"]] {
        assert!(
            shown.iter().any(|s| s == sha.as_str().unwrap()),
            "{sha} in {shown:?}"
        );
    }
    assert_eq!(of("case.opened").len(), 1);
}

/// A browser that offers no H.264 decoder is streamed VP8, with the same lossless settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_h264_gets_vp8() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let (grader, case) = grader_with_case(&app, "grader.vp8").await;
    let link = app.link(&grader).await;
    let result: Value = browser::run_script_async(
        "stream-vp8.mjs",
        json!({ "base_url": app.url, "link_url": link, "case_id": case.id.to_string() }),
        Duration::from_secs(120),
    )
    .await
    .expect("browser run");
    println!("vp8 run: {result}");
    assert_eq!(
        result["offered_h264"], false,
        "the offer lists no H.264: {result}"
    );
    assert_eq!(result["mime_type"], "video/VP8", "{result}");
    assert!(result["frames_decoded"].as_u64().unwrap() > 0, "{result}");
    assert_eq!(result["initial_badge"], "LOSSLESS", "{result}");
    assert_eq!(
        result["slice_after"].as_u64().unwrap(),
        result["slice_before"].as_u64().unwrap() + 1,
        "{result}"
    );
    assert_eq!(result["stepped_badge"], "LOSSLESS", "{result}");
    assert!(
        result["video_psnr"].as_f64().unwrap() > 30.0,
        "the VP8 video matches the worker's render: {result}"
    );
    assert_eq!(result["console_errors"], json!([]), "{result}");
    assert_eq!(result["page_errors"], json!([]), "{result}");
}

/// Signaling refuses bad offers and viewports with a reason, and other people's cases as 404,
/// without starting anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signaling_refuses_bad_offers_and_other_cases() {
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let (grader, case) = grader_with_case(&app, "grader.one").await;
    let (_other, others_case) = {
        let study = app.demo_study().await;
        let other = app
            .user("grader.two", &[(Role::Grader, Some(study.id))])
            .await;
        let cases = app.db().list_cases(study.id).await.unwrap();
        let case = cases
            .into_iter()
            .map(|c| c.case)
            .find(|c| c.id != case.id)
            .unwrap();
        app.assign(&case, &other, AssignmentRole::Grader).await;
        (other, case)
    };
    let mut browser = app.sign_in(&grader).await;
    let viewport = json!({ "width": 1280, "height": 720, "dpr": 1.0 });
    let post = |sdp: &str, viewport: Value| json!({ "offer": { "type": "offer", "sdp": sdp }, "viewport": viewport });

    let config = browser.get("/api/stream/config").await;
    assert_eq!(config.status, 200);
    assert_eq!(config.body["ice_servers"], json!([]));

    let garbage = browser
        .post(
            &format!("/api/cases/{}/stream", case.id),
            post("hello", viewport.clone()),
        )
        .await;
    assert_bad_request(&garbage, "offer");

    let no_video = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\n";
    let reply = browser
        .post(
            &format!("/api/cases/{}/stream", case.id),
            post(no_video, viewport.clone()),
        )
        .await;
    assert_bad_request(&reply, "H.264");

    for (bad, what) in [
        (json!({ "width": 1279, "height": 720, "dpr": 1.0 }), "width"),
        (
            json!({ "width": 100_000, "height": 720, "dpr": 1.0 }),
            "width",
        ),
        (json!({ "width": 1280, "height": 720, "dpr": 0.0 }), "dpr"),
    ] {
        let reply = browser
            .post(
                &format!("/api/cases/{}/stream", case.id),
                post(no_video, bad),
            )
            .await;
        assert_bad_request(&reply, what);
    }

    let missing = browser
        .send(
            "POST",
            &format!("/api/cases/{}/stream", case.id),
            Some(json!({ "offer": 5 })),
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.body);

    let others = browser
        .post(
            &format!("/api/cases/{}/stream", others_case.id),
            post(no_video, viewport),
        )
        .await;
    assert_eq!(others.status, 404, "{}", others.body);
    let streamer = app.state.embedded.as_ref().unwrap();
    assert_eq!(streamer.active_sessions(), 0);
}

/// The details of `action` events on case `case`, oldest first.
async fn audit_details(app: &TestApp, case: Uuid, action: &str) -> Vec<Value> {
    let filter = readroom_server::db::audit::AuditFilter {
        target: Some(format!("case:{case}")),
        action: Some(action.into()),
        ..Default::default()
    };
    let mut found: Vec<Value> = app
        .db()
        .search_audit(&filter, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str(&e.details).unwrap())
        .collect();
    found.reverse();
    found
}

/// "Next case" keeps the peer connection, and the grader's next case is ready before they
/// open it: on each case page the viewer gets the grading form's next case ready on the worker
/// (`prefetch_case`), and "Open next case" shows it from there, with the ticket minted for the
/// prefetch. A case that is not the next one opens on the same connection too, fetched then.
/// Each shows that case's exams; the worker reports every switch (audited with whether it was
/// prefetched); leaving the case pages ends the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_case_opens_on_the_same_connection() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let study = app.demo_study().await;
    let grader = app
        .user("grader.next", &[(Role::Grader, Some(study.id))])
        .await;
    let cases: Vec<Case> = app
        .db()
        .list_cases(study.id)
        .await
        .unwrap()
        .into_iter()
        .take(3)
        .map(|s| s.case)
        .collect();
    for case in &cases {
        app.assign(case, &grader, AssignmentRole::Grader).await;
    }
    let ids: Vec<String> = cases.iter().map(|c| c.id.to_string()).collect();
    let result: Value = browser::run_script_async(
        "stream-next-case.mjs",
        json!({
            "base_url": app.url,
            "link_url": app.link(&grader).await,
            "case_ids": ids,
            "plan": ["next", "next", "other"],
        }),
        Duration::from_secs(120),
    )
    .await
    .expect("browser run");
    println!("next case run: {result}");

    let switches = result["switches"].as_array().unwrap();
    assert_eq!(switches.len(), 3, "{result}");
    let case_of = |switch: &Value| {
        let id = switch["case_id"].as_str().unwrap();
        cases
            .iter()
            .find(|c| c.id.to_string() == id)
            .unwrap_or_else(|| panic!("switched to {id}, not one of the grader's cases"))
    };
    // Following "next" twice from the first case visits the other two; the third step goes
    // back to the second case, which was not the one made ready.
    let (second, third) = (case_of(&switches[0]), case_of(&switches[1]));
    assert!(second.id != cases[0].id && third.id != cases[0].id && second.id != third.id);
    assert_eq!(case_of(&switches[2]).id, second.id, "{result}");
    for (i, switch) in switches.iter().enumerate() {
        let case = case_of(switch);
        assert_eq!(
            switch["prefetched"] == switch["case_id"],
            i < 2,
            "step {i}: the next case is the one made ready, the other not: {result}"
        );
        assert_eq!(
            switch["same_stream"],
            json!(true),
            "no new connection: {result}"
        );
        assert!(
            switch["ms"].as_f64().is_some(),
            "a first frame of the case: {result}"
        );
        // What is shown is the next case's: its exams, one of them on screen.
        let bundle = app.db().bundle_by_id(case.bundle_id).await.unwrap();
        let summary = bundle.summary.to_string();
        let exams = switch["exams"].as_array().unwrap();
        assert!(!exams.is_empty(), "{result}");
        for exam in exams {
            assert!(
                summary.contains(exam.as_str().unwrap()),
                "exam {exam} is not in case {}'s bundle: {summary}",
                case.id
            );
        }
        assert!(exams.contains(&switch["exam"]), "{result}");
    }
    assert_eq!(result["page_errors"], json!([]), "{result}");
    assert_eq!(result["after_leaving"]["viewer"], json!(false), "{result}");

    // One stream session, ended after the grader left, reported on the last case shown (beside
    // the record of that case's earlier visit, left with `open_case`).
    let rows = wait_for_report(&app, second).await;
    let ended: Vec<_> = rows
        .iter()
        .filter(|r| r.end_reason != "switched_case")
        .collect();
    assert_eq!(ended.len(), 1, "{rows:?}");
    assert_eq!(ended[0].id.to_string(), result["stream"].as_str().unwrap());
    assert!(app.db().live_streams().await.unwrap().is_empty());
    // The worker reported every switch, saying whether the case was ready; the viewer opened
    // the prefetched cases with their prefetch tickets and minted one only for the other.
    let switched = |found: Vec<Value>| -> Vec<bool> {
        found
            .iter()
            .map(|d| d["prefetched"].as_bool().unwrap())
            .collect()
    };
    let purposes = |found: Vec<Value>| -> Vec<String> {
        let mut all: Vec<String> = found
            .iter()
            .map(|d| d["purpose"].as_str().unwrap().to_owned())
            .collect();
        all.sort();
        all
    };
    assert_eq!(
        switched(audit_details(&app, second.id, "stream.switched_case").await),
        [true, false]
    );
    assert_eq!(
        switched(audit_details(&app, third.id, "stream.switched_case").await),
        [true]
    );
    assert!(
        audit_details(&app, cases[0].id, "stream.switched_case")
            .await
            .is_empty()
    );
    assert_eq!(
        purposes(audit_details(&app, second.id, "stream.ticket_issued").await),
        ["open_case", "prefetch"]
    );
    // (The last page may have got the third case ready again: its next case.)
    let third_tickets = purposes(audit_details(&app, third.id, "stream.ticket_issued").await);
    assert!(
        !third_tickets.is_empty() && third_tickets.iter().all(|p| p == "prefetch"),
        "{third_tickets:?}"
    );
    // What was seen of each case is recorded against that case: the part of the session spent
    // on a case left with `open_case` is a record of its own (before, every view was credited
    // to the last case shown, and the earlier cases looked graded without viewing).
    for case_id in [cases[0].id, second.id] {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let rows = app.db().stream_sessions_of_case(case_id).await.unwrap();
            let left = rows
                .iter()
                .any(|r| r.end_reason == "switched_case" && r.views.contains(':'));
            if left {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no switched_case record with views for {case_id}: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Revocation in embedded mode (the in-process worker): an administrator disables a grader
/// whose stream is open; the stream ends within 2 s, is not reopened, and the audit log says
/// why. (Distributed mode: `tests/tests/workers.rs` and `tests/tests/cluster.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_grader_ends_their_open_stream_in_embedded_mode() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let app = TestApp::start_demo_with(Backend::Sqlite, |config| {
        config.workers.revalidate_ms = 250;
    })
    .await;
    let (grader, case) = grader_with_case(&app, "grader.revoked").await;
    let admin = app.user("admin.revoker", &[(Role::Admin, None)]).await;
    let dir = tempfile::tempdir().unwrap();
    let run = tokio::spawn(browser::run_script_async(
        "stream-revoke.mjs",
        json!({
            "base_url": app.url,
            "link_url": app.link(&grader).await,
            "case_id": case.id.to_string(),
            "dir": dir.path(),
        }),
        Duration::from_secs(120),
    ));
    let streaming = dir.path().join("streaming");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !streaming.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stream did not start: {:?}",
            run.is_finished()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut admin = app.sign_in(&admin).await;
    let epoch_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let disabled = admin
        .send(
            "PATCH",
            &format!("/api/admin/users/{}", grader.id),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    std::fs::write(dir.path().join("revoked"), epoch_ms.to_string()).unwrap();
    let result: Value = run.await.unwrap().expect("browser run");
    println!("embedded revocation: {result}");
    let ended = result["revoked_to_end_ms"].as_u64().unwrap();
    assert!(
        ended < 2_000,
        "the stream ended {ended} ms after the grader was disabled"
    );
    assert_ne!(result["final_phase"], json!("streaming"), "{result}");
    assert_eq!(result["page_errors"], json!([]), "{result}");
    // The audit log says which stream ended and why (the session went with the account, so
    // the first reason found may be either).
    let stream = result["stream"].as_str().unwrap();
    let events = app
        .db()
        .search_audit(
            &readroom_server::db::audit::AuditFilter {
                action: Some("stream.revoked".into()),
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap();
    let mine: Vec<_> = events
        .iter()
        .filter(|e| e.details.contains(stream))
        .collect();
    assert_eq!(mine.len(), 1, "{events:?}");
    assert!(
        mine[0].details.contains("user_disabled") || mine[0].details.contains("signed_out"),
        "{:?}",
        mine[0]
    );
}

/// `stream-extract.mjs`: `grader` signs in, opens `case` and steps through `steps` B-scans,
/// waiting on each for its lossless frame or the worker's `lossless_withheld`.
async fn extraction_run(
    app: &TestApp,
    grader: &readroom_server::db::User,
    case: &Case,
    steps: u64,
) -> Value {
    browser::run_script_async(
        "stream-extract.mjs",
        json!({
            "base_url": app.url,
            "link_url": app.link(grader).await,
            "case_id": case.id.to_string(),
            "steps": steps,
            "wait_ms": 1500,
        }),
        Duration::from_secs(120),
    )
    .await
    .expect("browser run")
}

/// Issue 17, finding 1: the lossless settle is not an export path. A script that steps through
/// an OCT volume and waits on every B-scan for its lossless frame gets a few, then the worker
/// withholds them (the session's lossless budget, here a 1 Mpx burst with next to no refill):
/// the page is told why and stays LOSSY, the stream goes on, the worker's record in the audit
/// log holds only what was sent, and the auditor sees a `bulk_extraction` flag on the case.
/// Opening the case again (a new connection) does not start a new budget for it: the case's
/// total (1.5 Mpx here) counts what the server recorded of the first session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lossless_budget_stops_a_script_exporting_an_oct_volume() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let app = TestApp::start_demo_with(Backend::Sqlite, |config| {
        config.stream.lossless_budget = readroom_domain::stream_config::LosslessBudgetConfig {
            burst_mpx: 1.0,
            mpx_per_s: 0.001,
            case_mpx: 1.5,
        };
    })
    .await;
    let (grader, case) = grader_with_case(&app, "grader.extract").await;
    let steps = 10;
    let result = extraction_run(&app, &grader, &case, steps).await;
    println!("extraction run: {result}");
    assert_eq!(result["steps"], steps, "{result}");
    let verified = result["lossless_verified"].as_u64().unwrap();
    assert!(
        verified < steps / 2,
        "{verified} of {steps} B-scans came lossless: {result}"
    );
    let withheld = result["withheld"].as_array().unwrap();
    assert!(!withheld.is_empty(), "the page was told: {result}");
    assert!(withheld.iter().all(|w| w["reason"] == "rate"), "{result}");
    assert!(
        withheld[0]["retry_after_ms"].as_u64().unwrap() > 1_000,
        "{result}"
    );
    assert_eq!(result["phase"], "streaming", "the stream goes on: {result}");
    assert_eq!(result["badge"], "LOSSY", "{result}");
    // The viewer says why: the badge explains the pause.
    assert_eq!(result["badge_title"]["withheld"], "rate", "{result}");
    assert!(
        result["badge_title"]["title"]
            .as_str()
            .unwrap_or_default()
            .contains("paused"),
        "{result}"
    );

    // The worker's record: what was sent, and one `stream.lossless_withheld` (once per bound).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let withheld_events = loop {
        let found = audit_details(&app, case.id, "stream.lossless_withheld").await;
        if !found.is_empty() || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(withheld_events.len(), 1, "{withheld_events:?}");
    assert_eq!(withheld_events[0]["reason"], "rate");
    assert!(withheld_events[0]["spent_px"].as_u64().unwrap() <= 1_000_000);
    assert!(withheld_events[0]["state"]["slice"].is_u64());
    let sent = audit_details(&app, case.id, "stream.lossless_sent").await;
    assert!(
        (1..=4).contains(&sent.len()),
        "{} lossless frames sent: {sent:?}",
        sent.len()
    );

    let auditor = app.user("audrey", &[(Role::Auditor, None)]).await;
    let mut audrey = app.sign_in(&auditor).await;
    let flags = audrey.get("/api/audit/anomalies").await;
    assert_eq!(flags.status, 200, "{}", flags.body);
    let bulk: Vec<&Value> = flags
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|flag| flag["kind"] == "bulk_extraction")
        .collect();
    assert_eq!(bulk.len(), 1, "{}", flags.body);
    assert_eq!(bulk[0]["details"]["reason"], "rate", "{}", flags.body);

    // Again, on a new connection: the case's total carries over, and stops it sooner.
    let again = extraction_run(&app, &grader, &case, 4).await;
    println!("second extraction run: {again}");
    let reasons: Vec<&str> = again["withheld"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"case_budget"), "{again}");
    let shown = app
        .db()
        .lossless_px_shown(grader.id, case.id, 0)
        .await
        .unwrap();
    assert!(shown <= 1_500_000, "{shown} px shown of the case in all");
}

/// Issue 17, finding 7: a prior visit's images shown beside a case are recorded against the
/// prior visit's case. A grader opens a demo case whose subject has an earlier visit, shows the
/// current | prior layout, and leaves; the prior case's access history then holds
/// `stream.prior_viewed` by that grader, naming the case it was shown beside and the views.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prior_visit_shown_beside_a_case_is_recorded_against_the_prior_case() {
    browser::check_prerequisites().expect("Chromium and playwright-core (scripts/setup)");
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let study = app.demo_study().await;
    let grader = app
        .user("grader.prior", &[(Role::Grader, Some(study.id))])
        .await;
    let cases = app.db().list_cases(study.id).await.expect("demo cases");
    let case = cases
        .into_iter()
        .map(|summary| summary.case)
        .find(|case| case.prior_bundle_id.is_some())
        .expect("a demo case with a prior visit");
    let prior_bundle = case.prior_bundle_id.unwrap();
    let prior_cases = app.db().cases_with_bundle(prior_bundle).await.unwrap();
    assert_eq!(
        prior_cases.len(),
        1,
        "the prior visit is one case of the study"
    );
    let prior_case = prior_cases[0];
    app.assign(&case, &grader, AssignmentRole::Grader).await;

    let result: Value = browser::run_script_async(
        "stream-prior.mjs",
        json!({
            "base_url": app.url,
            "link_url": app.link(&grader).await,
            "case_id": case.id.to_string(),
        }),
        Duration::from_secs(90),
    )
    .await
    .expect("browser run");
    println!("prior run: {result}");
    assert!(result["error"].is_null(), "{result}");
    assert_eq!(result["errors"], json!([]), "{result}");
    let exam = result["exam"].as_str().unwrap();

    wait_for_report(&app, &case).await;
    let mut events = Vec::new();
    for _ in 0..50 {
        events = audit_details(&app, prior_case, "stream.prior_viewed").await;
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(events.len(), 1, "one record on the prior case: {events:?}");
    let event = &events[0];
    assert_eq!(event["via_case"], case.id.to_string(), "{event}");
    assert_eq!(event["prior_bundle"], prior_bundle.to_string(), "{event}");
    assert_eq!(event["views"], json!([format!("prior:{exam}")]), "{event}");
    // Under the grader's id, and the case it was shown beside records no such event.
    let filter = readroom_server::db::audit::AuditFilter {
        target: Some(format!("case:{prior_case}")),
        action: Some("stream.prior_viewed".into()),
        ..Default::default()
    };
    let rows = app.db().search_audit(&filter, 10).await.unwrap();
    assert_eq!(
        rows[0].actor.as_deref(),
        Some(grader.id.to_string().as_str())
    );
    assert!(
        audit_details(&app, case.id, "stream.prior_viewed")
            .await
            .is_empty()
    );
}
