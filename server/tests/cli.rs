//! The `readroom` binary as a user runs it: keygen, study creation, ingest refusals and
//! summaries, and `readroom demo` serving its cases until SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use readroom_bundle::synth::{self, SynthSpec};
use readroom_domain::manifest::Eye;

fn readroom(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_readroom"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run readroom")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn small_bundle(dir: &Path, study: &str, tweak: impl FnOnce(&mut SynthSpec)) {
    let mut spec = SynthSpec::new(11, "S0042");
    spec.study = study.to_owned();
    spec.eyes = vec![Eye::Os];
    spec.fundus_size = 256;
    spec.oct_frames = 4;
    tweak(&mut spec);
    synth::write_bundle_dir(&spec, dir).unwrap();
}

#[test]
fn keygen_study_and_ingest_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    let keygen = readroom(&data, &["keygen"]);
    assert!(keygen.status.success(), "{}", text(&keygen.stderr));
    let recipient = text(&keygen.stdout).trim().to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");
    let again = readroom(&data, &["keygen"]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("refusing to overwrite"),
        "{}",
        text(&again.stderr)
    );

    let create = readroom(
        &data,
        &["study", "create", "EYE-2026", "--recipient", &recipient],
    );
    assert!(create.status.success(), "{}", text(&create.stderr));

    // A bundle with a patient name in a DICOM tag: refused, naming the tag, nothing stored.
    let planted = tmp.path().join("planted");
    small_bundle(&planted, "EYE-2026", |spec| spec.oct_as_dicom = true);
    synth::dicom::write_test_dicom(
        &planted.join("oct_os.dcm"),
        synth::dicom::TestModality::Opt,
        "S0042",
        &[synth::dicom::PlantedElement::patient_name("PARK^SEOYEON")],
    )
    .unwrap();
    let refused = readroom(
        &data,
        &["ingest", planted.to_str().unwrap(), "--study", "EYE-2026"],
    );
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("oct_os.dcm: PatientName (0010,0010)"),
        "{stderr}"
    );
    assert!(!stderr.contains("PARK"), "{stderr}");
    let store = data.join("store");
    let stored = std::fs::read_dir(store.join("bundles"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0);

    // Unknown study.
    let clean = tmp.path().join("clean");
    small_bundle(&clean, "EYE-2026", |_| {});
    let unknown = readroom(
        &data,
        &["ingest", clean.to_str().unwrap(), "--study", "NOPE"],
    );
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("unknown study \"NOPE\""),
        "{}",
        text(&unknown.stderr)
    );

    // A clean bundle: stored, with a summary of files, bytes and throughput.
    let ok = readroom(
        &data,
        &["ingest", clean.to_str().unwrap(), "--study", "EYE-2026"],
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let stdout = text(&ok.stdout);
    assert!(
        stdout.contains("as case C-0001") && stdout.contains("MB/s"),
        "{stdout}"
    );

    let help = readroom(&data, &["ingest", "--help"]);
    assert!(text(&help.stdout).contains("--study <CODE>"));
}

/// Reads the child's stdout until the demo's banner is complete: the URL and one
/// `<role> <username> <one-time sign-in URL>` line per seeded user.
fn wait_for_banner(child: &mut Child) -> (String, Vec<(String, String, String)>) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut url = String::new();
        let mut users = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("readroom demo is running at ") {
                url = rest.trim().to_owned();
            } else if line.contains("press Ctrl-C") {
                let _ = tx.send((url.clone(), users.clone()));
            } else if !line.starts_with(' ') {
                let parts: Vec<&str> = line.split_whitespace().collect();
                if let [role, username, link] = parts[..] {
                    users.push((role.to_owned(), username.to_owned(), link.to_owned()));
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(240))
        .expect("demo did not print its banner within 240 s")
}

/// Sends SIGKILL to a process when dropped (a no-op once it has exited and been reaped).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

/// The demo's `metrics_token` in these tests.
const METRICS_TOKEN: &str = "metrics-token-0123456789";

/// Signs in with a one-time link as the sign-in page does; returns (cookie, csrf token).
async fn sign_in(client: &reqwest::Client, url: &str, link: &str) -> (String, String) {
    let token = link
        .split("#token=")
        .nth(1)
        .expect("token in the link's fragment");
    let reply = client
        .post(format!("{url}/api/auth/link"))
        .header("origin", url)
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let cookie = reply.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = reply.json().await.unwrap();
    (cookie, body["csrf_token"].as_str().unwrap().to_owned())
}

async fn get_json(client: &reqwest::Client, url: &str, cookie: &str) -> (u16, serde_json::Value) {
    let reply = client
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_serves_its_cases_and_stops_gracefully() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_readroom"))
        .arg("--data-dir")
        .arg(&data)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .env("READROOM_METRICS_TOKEN", METRICS_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill the demo if an assertion below fails, so no server outlives the test.
    let pid = child.id();
    let _reaper = KillOnDrop(pid);
    let (url, users) = wait_for_banner(&mut child);
    let client = reqwest::Client::new();

    // One line per seeded user, every role represented, each with its own one-time link.
    let roles: std::collections::BTreeSet<&str> =
        users.iter().map(|(r, _, _)| r.as_str()).collect();
    assert_eq!(
        roles.into_iter().collect::<Vec<_>>(),
        ["adjudicator", "admin", "auditor", "coordinator", "grader"],
        "{users:?}"
    );
    for (_, _, link) in &users {
        assert!(link.starts_with(&format!("{url}/signin#token=")), "{link}");
    }

    // Nothing without signing in.
    let anonymous = client
        .get(format!("{url}/api/worklist"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // The coordinator sees every demo case; kinds include fundus and OCT.
    let (_, _, coordinator_link) = users.iter().find(|(r, _, _)| r == "coordinator").unwrap();
    let (cookie, _) = sign_in(&client, &url, coordinator_link).await;
    let (status, cases) =
        get_json(&client, &format!("{url}/api/studies/DEMO/cases"), &cookie).await;
    assert_eq!(status, 200, "{cases}");
    let cases = cases.as_array().unwrap().clone();
    assert!(cases.len() >= 7, "demo cases: {}", cases.len());
    let kinds: Vec<&str> = cases
        .iter()
        .flat_map(|c| c["exams"].as_array().unwrap())
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"fundus") && kinds.contains(&"oct"),
        "{kinds:?}"
    );

    // Each grader has some of the cases, not all; a link works only once.
    for (_, username, link) in users.iter().filter(|(r, _, _)| r == "grader") {
        let (cookie, _) = sign_in(&client, &url, link).await;
        let (_, worklist) = get_json(&client, &format!("{url}/api/worklist"), &cookie).await;
        let mine = worklist.as_array().unwrap().len();
        assert!(
            mine > 0 && mine < cases.len(),
            "{username}: {mine} of {}",
            cases.len()
        );
        let token = link.split("#token=").nth(1).unwrap();
        let reused = client
            .post(format!("{url}/api/auth/link"))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .unwrap();
        assert_eq!(reused.status(), 401);
    }

    let page = client.get(format!("{url}/")).send().await.unwrap();
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    // The entry page names the viewer's modules by their versioned path, which serves them.
    let html = page.text().await.unwrap();
    let app = html
        .split('"')
        .find(|part| part.starts_with("/assets/v/") && part.ends_with("/app.js"))
        .unwrap_or_else(|| panic!("no versioned app.js in {html}"));
    let module = client.get(format!("{url}{app}")).send().await.unwrap();
    assert_eq!(module.status(), 200, "{app}");
    assert!(module.text().await.unwrap().contains("import"), "{app}");
    let ready = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    // Metrics need the configured bearer token.
    for auth in [None, Some("Bearer wrong-token-0123456789")] {
        let mut request = client.get(format!("{url}/metrics"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        assert_eq!(request.send().await.unwrap().status(), 401, "{auth:?}");
    }
    let metrics = client
        .get(format!("{url}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("readroom_http_requests_total"),
        "{metrics}"
    );
    let missing = client
        .get(format!("{url}/api/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    // The data directory holds ciphertext only: no JPEG, PNG or DICOM file, no source bundle.
    for entry in walk(&data) {
        let bytes = std::fs::read(&entry).unwrap();
        let plaintext_image = bytes.starts_with(&[0xFF, 0xD8, 0xFF])
            || bytes.starts_with(b"\x89PNG")
            || bytes.get(128..132) == Some(b"DICM");
        assert!(
            !plaintext_image,
            "plaintext image under the data dir: {}",
            entry.display()
        );
    }

    // SIGTERM: graceful shutdown, exit status 0.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "demo did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");

    // After the demo session: the audit chain verifies, with the shutdown checkpoint.
    let verify = readroom(&data, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    let report = text(&verify.stdout);
    assert!(report.starts_with("audit chain intact: "), "{report}");
    let events: u64 = report["audit chain intact: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(events > 20, "{report}");
    assert!(!report.contains(" 0 checkpoint(s)"), "{report}");
    let quick = readroom(&data, &["audit", "verify", "--from-checkpoint"]);
    assert!(quick.status.success(), "{}", text(&quick.stderr));

    // An export verifies offline; an edited export does not.
    let export = tmp.path().join("audit.jsonl");
    let exported = readroom(&data, &["audit", "export", "-o", export.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let offline = readroom(
        &data,
        &["audit", "verify", "--file", export.to_str().unwrap()],
    );
    assert!(offline.status.success(), "{}", text(&offline.stderr));
    let lines = std::fs::read_to_string(&export).unwrap();
    let edited = lines.replacen("\"action\":\"auth.login\"", "\"action\":\"auth.logout\"", 1);
    assert!(edited != lines, "the export holds an auth.login event");
    std::fs::write(&export, edited).unwrap();
    let offline = readroom(
        &data,
        &["audit", "verify", "--file", export.to_str().unwrap()],
    );
    assert!(!offline.status.success());
    assert!(
        text(&offline.stderr).contains("audit chain BROKEN: broken link at event "),
        "{}",
        text(&offline.stderr)
    );

    // Edit one event in the database behind the triggers' back: found at that event.
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", data.join("readroom.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "DROP TRIGGER audit_events_no_update; \
             UPDATE audit_events SET client = '203.0.113.9' WHERE seq = 7;",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let broken = readroom(&data, &["audit", "verify"]);
    assert!(!broken.status.success());
    assert!(
        text(&broken.stderr).contains("broken link at event 7: the stored hash does not match"),
        "{}",
        text(&broken.stderr)
    );
}

/// `readroom watermark decode` recovers the viewer session prefix from a marked PNG (and a
/// JPEG crop of it) with the data directory's key or `--key-file`, and says clearly when there
/// is no mark.
#[test]
fn watermark_decode_reads_a_lossless_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key_path = data.join("keys").join("watermark.key");
    let (key, created) =
        readroom_worker::watermark::WatermarkKey::load_or_create(&key_path).unwrap();
    assert!(created);
    let (width, height) = (480u32, 320u32);
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let v = (60 + x / 4 + y / 5 + (x * 7 + y * 13) % 5) as u8;
            rgb.extend_from_slice(&[v, v / 2 + 20, v / 3 + 10]);
        }
    }
    let session = uuid::Uuid::new_v4();
    let mark = readroom_worker::watermark::Watermark {
        grader: "kim".into(),
        session,
        unix_minute: 29_000_000,
        key: std::sync::Arc::new(key),
    };
    readroom_worker::watermark::embed(width, height, &mut rgb, &mark);
    let frame = image::RgbImage::from_raw(width, height, rgb).unwrap();
    let png = tmp.path().join("frame.png");
    frame.save(&png).unwrap();
    let prefix = readroom_worker::watermark::SessionPrefix::of(&session).to_string();
    assert!(session.to_string().starts_with(&prefix));
    let decoded = readroom(&data, &["watermark", "decode", png.to_str().unwrap()]);
    assert!(decoded.status.success(), "{}", text(&decoded.stderr));
    assert!(text(&decoded.stdout).contains(&format!("viewer session {prefix}")));
    let crop = image::imageops::crop_imm(&frame, 37, 21, 260, 240).to_image();
    let cropped = tmp.path().join("crop.jpg");
    crop.save(&cropped).unwrap();
    let decoded = readroom(
        &data,
        &[
            "watermark",
            "decode",
            "--key-file",
            key_path.to_str().unwrap(),
            cropped.to_str().unwrap(),
        ],
    );
    assert!(
        text(&decoded.stdout).contains(&prefix),
        "{}",
        text(&decoded.stderr)
    );

    let plain = tmp.path().join("plain.png");
    image::RgbImage::new(64, 64).save(&plain).unwrap();
    let none = readroom(&data, &["watermark", "decode", plain.to_str().unwrap()]);
    assert!(!none.status.success());
    assert!(
        text(&none.stderr).contains("no mark found"),
        "{}",
        text(&none.stderr)
    );
    let junk = tmp.path().join("junk.png");
    std::fs::write(&junk, b"not a png at all").unwrap();
    let bad = readroom(&data, &["watermark", "decode", junk.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("junk.png"),
        "{}",
        text(&bad.stderr)
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn user_commands_create_link_and_refuse_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let created = readroom(&data, &["user", "create", "kim", "--role", "admin"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let link = text(&created.stdout);
    assert!(
        link.trim()
            .starts_with("http://127.0.0.1:8080/signin#token="),
        "{link}"
    );
    let again = readroom(&data, &["user", "link", "kim"]);
    assert!(again.status.success());
    assert_ne!(text(&again.stdout), link, "every link is new");
    for (args, reason) in [
        (vec!["user", "create", "kim"], "already exists"),
        (vec!["user", "create", "bad name"], "must be 1-64"),
        (
            vec!["user", "create", "lee", "--role", "grader:NOPE"],
            "no study NOPE",
        ),
        (
            vec!["user", "create", "lee", "--role", "root"],
            "unknown role",
        ),
        (vec!["user", "link", "nobody"], "no user nobody"),
    ] {
        let out = readroom(&data, &args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out.stderr).contains(reason),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let list = readroom(&data, &["user", "list"]);
    assert!(text(&list.stdout).contains("kim\tkim\tadmin"));
}
