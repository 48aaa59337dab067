//! The bad-input corpus: named hostile or broken inputs for every door readroom opens to the
//! outside (bundles, SDP offers, data-channel messages, API JSON, session cookies, streaming
//! tickets), one test per family, each iterating its cases.
//!
//! Every case must get a clear refusal that names what is wrong (a status and error code, or an
//! error message), must not crash anything (the server still answers afterwards), and must lose
//! nothing (what was there before is still there, and the audit chain still verifies).
//! A failure names the case. The same inputs are scattered through the other test files, where
//! each is one detail of a feature; here they are a list that only grows.

use crate::support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use readroom_bundle::synth::{self, SynthSpec};
use readroom_domain::manifest::Eye;
use readroom_domain::protocol::{ClientMessage, ErrorCode, ServerMessage, VERSION};
use readroom_domain::stream_config::LosslessBudgetConfig;
use readroom_domain::ticket::{TicketClaims, TicketSigner};
use readroom_domain::view::{CaseShape, ExamShape};
use readroom_server::db::{AssignmentRole, Backend, Case, Recipients, Role, StudyCode};
use readroom_server::ingest::{IngestOptions, ingest};
use readroom_store::ObjectStore;
use readroom_store::blocking::RangeReader;
use readroom_worker::keys;
use readroom_worker::reader::EncryptedBundle;
use readroom_worker::stream::machine::{Input, Output, Params, Session};
use readroom_worker::stream::pipeline::FrameOut;
use serde_json::{Value, json};
use support::{Browser, Reply, TestApp};
use uuid::Uuid;

/// The audit chain is intact, and the server still answers.
async fn assert_still_whole(app: &TestApp, family: &str) {
    let key = app.state.audit_signer.verifier();
    let report = readroom_server::audit::verify(app.db(), None, &[], Some(&key))
        .await
        .expect("the audit chain can be read");
    assert!(
        report.is_intact(),
        "{family}: the audit chain is broken: {:?}",
        report.first_break
    );
    let health = app
        .http()
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("the server still answers");
    assert_eq!(health.status(), 200, "{family}: /healthz after the corpus");
}

// ---------------------------------------------------------------------------------------------
// Bundles

const STUDY: &str = "BAD-1";

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every file under `dir`, sorted, as bundle paths.
fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
                found.push((name, path));
            }
        }
    }
    found.sort();
    found
}

/// Zips `dir` (stored), then lets `extra` add entries.
fn zip_dir(dir: &Path, out: &Path, extra: impl FnOnce(&mut zip::ZipWriter<std::fs::File>)) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, path) in files(dir) {
        zip.start_file(name, options).unwrap();
        zip.write_all(&std::fs::read(path).unwrap()).unwrap();
    }
    extra(&mut zip);
    zip.finish().unwrap();
}

fn edit_manifest(bundle: &Path, edit: impl FnOnce(&mut Value)) {
    let path = bundle.join("manifest.json");
    let mut value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
}

/// Replaces the declared length of the first `(7FE0,0010) OB` element of a DICOM file.
fn with_pixel_length(bytes: &[u8], length: u32) -> Vec<u8> {
    let tag = [0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0];
    let at = bytes
        .windows(tag.len())
        .position(|w| w == tag)
        .expect("a pixel data header");
    let mut patched = bytes.to_vec();
    patched[at + 8..at + 12].copy_from_slice(&length.to_le_bytes());
    patched
}

/// What each bad bundle is, as a change to a copy of a clean one (in `work`); returns the path
/// to ingest.
type Corrupt = fn(&Path, &Path) -> PathBuf;

fn bundle_cases() -> Vec<(&'static str, bool, Corrupt, &'static str)> {
    // (name, start from the DICOM variant, corruption, what the refusal must say)
    vec![
        (
            "zip bomb: a deflated entry 1000 times its compressed size",
            false,
            |bundle, work| {
                let out = work.join("bomb.zip");
                zip_dir(bundle, &out, |zip| {
                    let deflated = zip::write::SimpleFileOptions::default()
                        .compression_method(zip::CompressionMethod::Deflated);
                    zip.start_file("oct_od/999.png", deflated).unwrap();
                    zip.write_all(&vec![0u8; 8 << 20]).unwrap();
                });
                out
            },
            "compression ratio over 100:1",
        ),
        (
            "zip entry leaving the bundle with ../",
            false,
            |bundle, work| {
                let out = work.join("traversal.zip");
                zip_dir(bundle, &out, |zip| {
                    zip.start_file("../evil.png", zip::write::SimpleFileOptions::default())
                        .unwrap();
                    zip.write_all(b"x").unwrap();
                });
                out
            },
            "path leaves the bundle with '..'",
        ),
        (
            "zip entry with an absolute path",
            false,
            |bundle, work| {
                let out = work.join("absolute.zip");
                zip_dir(bundle, &out, |zip| {
                    zip.start_file("/etc/evil.png", zip::write::SimpleFileOptions::default())
                        .unwrap();
                    zip.write_all(b"x").unwrap();
                });
                out
            },
            "absolute path",
        ),
        (
            "zip entry that is a symbolic link",
            false,
            |bundle, work| {
                let out = work.join("symlink.zip");
                zip_dir(bundle, &out, |zip| {
                    zip.add_symlink(
                        "link.png",
                        "/etc/passwd",
                        zip::write::SimpleFileOptions::default(),
                    )
                    .unwrap();
                });
                out
            },
            "symbolic link",
        ),
        (
            "zip cut in half",
            false,
            |bundle, work| {
                let out = work.join("half.zip");
                zip_dir(bundle, &out, |_| {});
                let bytes = std::fs::read(&out).unwrap();
                std::fs::write(&out, &bytes[..bytes.len() / 2]).unwrap();
                out
            },
            "corrupt or truncated zip archive",
        ),
        (
            "zip whose end record is garbage",
            false,
            |bundle, work| {
                let out = work.join("garbage-end.zip");
                zip_dir(bundle, &out, |_| {});
                let mut bytes = std::fs::read(&out).unwrap();
                let n = bytes.len();
                for byte in &mut bytes[n - 22..] {
                    *byte = 0xA5;
                }
                std::fs::write(&out, &bytes).unwrap();
                out
            },
            "zip",
        ),
        (
            "zip whose stored data was altered (CRC-32 mismatch)",
            false,
            |bundle, work| {
                let out = work.join("crc.zip");
                zip_dir(bundle, &out, |_| {});
                let mut bytes = std::fs::read(&out).unwrap();
                // Inside the first entry's data, well after its local header.
                bytes[200] ^= 0xFF;
                std::fs::write(&out, &bytes).unwrap();
                out
            },
            "does not match its CRC-32 checksum",
        ),
        (
            "empty file instead of a bundle",
            false,
            |_, work| {
                let out = work.join("empty.zip");
                std::fs::write(&out, b"").unwrap();
                out
            },
            "not a bundle",
        ),
        (
            "DICOM with a patient name in PatientName",
            true,
            |bundle, _| {
                synth::dicom::write_test_dicom(
                    &bundle.join("oct_od.dcm"),
                    synth::dicom::TestModality::Opt,
                    "S0001",
                    &[synth::dicom::PlantedElement::patient_name("DOE^JANE")],
                )
                .unwrap();
                bundle.to_owned()
            },
            "oct_od.dcm: PatientName (0010,0010)",
        ),
        (
            "DICOM with a private tag",
            true,
            |bundle, _| {
                synth::dicom::write_test_dicom(
                    &bundle.join("oct_od.dcm"),
                    synth::dicom::TestModality::Opt,
                    "S0001",
                    &synth::dicom::PlantedElement::private_tag("ACME", "operator kim"),
                )
                .unwrap();
                bundle.to_owned()
            },
            "oct_od.dcm",
        ),
        (
            "DICOM truncated inside its pixel data",
            true,
            |bundle, _| {
                let path = bundle.join("oct_od.dcm");
                let bytes = std::fs::read(&path).unwrap();
                std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
                bundle.to_owned()
            },
            "oct_od.dcm\": malformed DICOM: truncated",
        ),
        (
            "DICOM truncated inside its header",
            true,
            |bundle, _| {
                let path = bundle.join("oct_od.dcm");
                let bytes = std::fs::read(&path).unwrap();
                std::fs::write(&path, &bytes[..300]).unwrap();
                bundle.to_owned()
            },
            "oct_od.dcm\": malformed DICOM: truncated",
        ),
        (
            "DICOM claiming a 4 GiB pixel data element",
            true,
            |bundle, _| {
                let path = bundle.join("oct_od.dcm");
                let bytes = std::fs::read(&path).unwrap();
                std::fs::write(&path, with_pixel_length(&bytes, 0xFFFF_FFF0)).unwrap();
                bundle.to_owned()
            },
            "oct_od.dcm\": malformed DICOM: truncated",
        ),
        (
            "DICOM without its DICM magic",
            true,
            |bundle, _| {
                let path = bundle.join("oct_od.dcm");
                let mut bytes = std::fs::read(&path).unwrap();
                bytes[128..132].copy_from_slice(b"XXXX");
                std::fs::write(&path, &bytes).unwrap();
                bundle.to_owned()
            },
            "oct_od.dcm",
        ),
        (
            "image bomb: a PNG header claiming 100000x100000",
            false,
            |bundle, _| {
                std::fs::write(
                    bundle.join("oct_od/002.png"),
                    readroom_tests::images::png_header_claiming(100_000),
                )
                .unwrap();
                bundle.to_owned()
            },
            "100000x100000 pixels is over the limits",
        ),
        (
            "text file named .jpg",
            false,
            |bundle, _| {
                std::fs::write(bundle.join("fundus_od.jpg"), b"just text\n").unwrap();
                bundle.to_owned()
            },
            "\"fundus_od.jpg\": the name says JPEG",
        ),
        (
            "manifest that is not JSON",
            false,
            |bundle, _| {
                std::fs::write(bundle.join("manifest.json"), b"{ \"format\": ").unwrap();
                bundle.to_owned()
            },
            "JSON",
        ),
        (
            "manifest of another format version",
            false,
            |bundle, _| {
                edit_manifest(bundle, |m| m["format"] = "readroom-bundle/9".into());
                bundle.to_owned()
            },
            "readroom-bundle/9",
        ),
        (
            "manifest with a field of the wrong type",
            false,
            |bundle, _| {
                edit_manifest(bundle, |m| m["exams"] = json!("all of them"));
                bundle.to_owned()
            },
            "exams",
        ),
        (
            "manifest with an unknown field",
            false,
            |bundle, _| {
                edit_manifest(bundle, |m| m["patient_name"] = json!("DOE^JANE"));
                bundle.to_owned()
            },
            "patient_name",
        ),
        (
            "manifest naming a missing file",
            false,
            |bundle, _| {
                std::fs::remove_file(bundle.join("slo_od.png")).unwrap();
                bundle.to_owned()
            },
            "\"slo_od.png\" is listed in the manifest but missing from the bundle",
        ),
        (
            "manifest for another study",
            false,
            |bundle, _| {
                edit_manifest(bundle, |m| m["study"] = "OTHER-9".into());
                bundle.to_owned()
            },
            "OTHER-9",
        ),
        (
            "manifest missing",
            false,
            |bundle, _| {
                std::fs::remove_file(bundle.join("manifest.json")).unwrap();
                bundle.to_owned()
            },
            "manifest.json is missing",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bundles_are_refused_and_nothing_is_lost() {
    let app = TestApp::start(Backend::Sqlite).await;
    let work = tempfile::tempdir().unwrap();
    let identity = keys::generate(&work.path().join("keys/worker.age")).unwrap();
    app.db()
        .create_study(
            &StudyCode::new(STUDY).unwrap(),
            "bad input",
            &Recipients::new([identity.recipient()]).unwrap(),
        )
        .await
        .unwrap();
    let clean = |name: &str, dicom: bool| {
        let mut spec = SynthSpec::new(7, "S0001");
        spec.study = STUDY.to_owned();
        spec.eyes = vec![Eye::Od];
        spec.fundus_size = 256;
        spec.oct_frames = 4;
        spec.oct_as_dicom = dicom;
        let path = work.path().join(name);
        synth::write_bundle_dir(&spec, &path).unwrap();
        path
    };
    let clean_images = clean("clean-images", false);
    let clean_dicom = clean("clean-dicom", true);
    let run = |path: PathBuf| {
        let app = &app;
        async move {
            ingest(
                app.db(),
                &app.state.audit,
                app.state.store.clone(),
                &path,
                STUDY,
                IngestOptions::default(),
            )
            .await
        }
    };

    // Something to lose: one good case.
    let good = run(clean_dicom.clone()).await.expect("the clean bundle");
    let objects_before = app.state.store.list("").await.unwrap();
    let cases_before = app.db().list_all_cases().await.unwrap().len();

    let cases = bundle_cases();
    let n_cases = cases.len();
    for (n, (name, dicom, corrupt, expected)) in cases.into_iter().enumerate() {
        let bundle = work.path().join(format!("case-{n}"));
        copy_dir(if dicom { &clean_dicom } else { &clean_images }, &bundle);
        let input = corrupt(&bundle, work.path());
        let text = match run(input).await {
            Ok(report) => panic!("{name}: accepted as case {}", report.case_label),
            Err(err) => err.to_string(),
        };
        assert!(
            text.contains(expected),
            "{name}: the refusal should say {expected:?}; it says: {text}"
        );
        assert!(
            !text.contains("DOE"),
            "{name}: the refusal repeats PHI: {text}"
        );
        let objects = app.state.store.list("").await.unwrap();
        assert_eq!(objects, objects_before, "{name}: the store changed");
        let n_cases_now = app.db().list_all_cases().await.unwrap().len();
        assert_eq!(n_cases_now, cases_before, "{name}: a case was recorded");
    }

    // The stored ciphertext of the good case, read as a worker does: with the study's key it
    // opens; with another key, or altered, it is refused by name.
    let store: Arc<dyn ObjectStore> = app.state.store.clone();
    let size = store.head(&good.object_key).await.unwrap().size;
    let open_with = |identity_path: PathBuf, key: String, size: u64| {
        let store = store.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let identity = keys::load(&identity_path).unwrap();
            let reader = RangeReader::new(store, &key, size, handle, 64 * 1024);
            EncryptedBundle::open(reader, std::iter::once(identity.as_age()))
                .map(|bundle| bundle.manifest().subject.clone())
                .map_err(|err| err.to_string())
        })
    };
    let opened = open_with(
        work.path().join("keys/worker.age"),
        good.object_key.clone(),
        size,
    )
    .await
    .unwrap();
    assert_eq!(opened.as_deref(), Ok("S0001"), "the good case still opens");
    let _other = keys::generate(&work.path().join("keys/other.age")).unwrap();
    let wrong_key = open_with(
        work.path().join("keys/other.age"),
        good.object_key.clone(),
        size,
    )
    .await
    .unwrap();
    let err = wrong_key.expect_err("wrong key: opened with another worker's identity");
    assert!(
        err.contains("cannot decrypt the bundle"),
        "wrong key: {err}"
    );
    let mut altered = store.get(&good.object_key).await.unwrap().to_vec();
    altered.truncate(altered.len() - 100);
    store
        .put("bad-input/altered.age", altered.clone().into())
        .await
        .unwrap();
    let truncated = open_with(
        work.path().join("keys/worker.age"),
        "bad-input/altered.age".into(),
        altered.len() as u64,
    )
    .await
    .unwrap();
    let err = truncated.expect_err("truncated ciphertext: opened");
    assert!(
        err.contains("corrupted or truncated"),
        "truncated ciphertext: {err}"
    );
    store.delete("bad-input/altered.age").await.unwrap();

    assert_still_whole(&app, "bundles").await;
    assert!(n_cases >= 20, "the bundle corpus shrank to {n_cases}");
}

// ---------------------------------------------------------------------------------------------
// SDP offers

const NO_VIDEO_SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\n";

/// A grader of the demo study with one demo case assigned.
async fn demo_grader(app: &TestApp) -> (Browser, Case) {
    let study = app.demo_study().await;
    let grader = app
        .user("grader.bad", &[(Role::Grader, Some(study.id))])
        .await;
    let case = app.db().list_cases(study.id).await.unwrap()[0].case.clone();
    app.assign(&case, &grader, AssignmentRole::Grader).await;
    (app.sign_in(&grader).await, case)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sdp_offers_are_refused_and_nothing_is_lost() {
    let app = TestApp::start_demo(Backend::Sqlite).await;
    let (mut browser, case) = demo_grader(&app).await;
    let viewport = json!({ "width": 1280, "height": 720, "dpr": 1.0 });
    let offer =
        |sdp: &str| json!({ "offer": { "type": "offer", "sdp": sdp }, "viewport": viewport });
    let huge = format!("v=0\r\n{}", "a=x\r\n".repeat(14_000));
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "plain text",
            offer("hello"),
            "offer.sdp is not an SDP offer",
        ),
        ("empty", offer(""), "offer.sdp is not an SDP offer"),
        (
            "only a version line",
            offer("v=0\r\n"),
            "offer.sdp is not an SDP offer",
        ),
        (
            "binary junk after v=0",
            offer("v=0\r\n\u{0}\u{1}\u{2}\u{fffd}m=\u{0}"),
            "offer",
        ),
        (
            "an answer instead of an offer",
            json!({ "offer": { "type": "answer", "sdp": NO_VIDEO_SDP }, "viewport": viewport }),
            "offer.type must be \"offer\"",
        ),
        (
            "longer than 64 KiB",
            offer(&huge),
            "offer.sdp is longer than 65536 bytes",
        ),
        ("no video section", offer(NO_VIDEO_SDP), "H.264"),
        (
            "offer that is a number",
            json!({ "offer": 5, "viewport": viewport }),
            "invalid request body",
        ),
        (
            "no viewport",
            json!({ "offer": { "type": "offer", "sdp": NO_VIDEO_SDP } }),
            "viewport",
        ),
        (
            "viewport of zero pixel ratio",
            json!({ "offer": { "type": "offer", "sdp": NO_VIDEO_SDP },
                    "viewport": { "width": 1280, "height": 720, "dpr": 0.0 } }),
            "dpr",
        ),
        (
            "viewport 100000 pixels wide",
            json!({ "offer": { "type": "offer", "sdp": NO_VIDEO_SDP },
                    "viewport": { "width": 100_000, "height": 720, "dpr": 1.0 } }),
            "width",
        ),
    ];
    let path = format!("/api/cases/{}/stream", case.id);
    for (name, body, expected) in cases {
        let reply = browser.post(&path, body).await;
        assert_refusal(name, &reply, 400, "bad_request", expected);
    }
    let streamer = app.state.embedded.as_ref().expect("the embedded worker");
    assert_eq!(
        streamer.active_sessions(),
        0,
        "a refused offer left a session"
    );
    assert!(
        app.db().live_streams().await.unwrap().is_empty(),
        "a refused offer left a live stream"
    );
    let still = browser.get(&format!("/api/cases/{}", case.id)).await;
    assert_eq!(
        still.status, 200,
        "the case after the offers: {}",
        still.body
    );
    assert_still_whole(&app, "SDP").await;
}

/// `reply` is the refusal `status` with `code`, and its message says `expected`.
fn assert_refusal(name: &str, reply: &Reply, status: u16, code: &str, expected: &str) {
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        reply.status == status && reply.code() == code && message.contains(expected),
        "{name}: expected {status} {code} saying {expected:?}, got {} {}",
        reply.status,
        reply.body
    );
}

// ---------------------------------------------------------------------------------------------
// Data-channel messages

fn session() -> (Session, Instant) {
    let now = Instant::now();
    let exam = |id: &str| ExamShape {
        id: id.to_owned(),
        kind: readroom_domain::manifest::ExamKind::Fundus,
        eye: None,
        slices: 1,
        enface: false,
        pixel_spacing_um: None,
        axial_spacing_um: None,
    };
    let params = Params {
        stream_id: Uuid::from_u128(1),
        user: "u1".into(),
        viewer_session: "vs1".into(),
        case: "c1".into(),
        shape: CaseShape {
            exams: vec![exam("e1"), exam("e2")],
            prior: Vec::new(),
            ..CaseShape::default()
        },
        started_unix: 1_800_000_000,
        not_after: None,
        settle: std::time::Duration::from_millis(200),
        idle_timeout: std::time::Duration::from_secs(60),
        connect_timeout: std::time::Duration::from_secs(10),
        bitrate: 1_000_000,
        lossless_budget: LosslessBudgetConfig::default(),
        lossless_spent_px: 0,
        mark: None,
    };
    let mut session = Session::new(now, params);
    session.handle_input(now, Input::ChannelOpened);
    let first = FrameOut {
        frame: 1,
        data: vec![0; 100],
        render_ms: 1.0,
        encode_ms: 1.0,
    };
    session.handle_input(now, Input::FirstFrameReady(Ok(first)));
    (session, now)
}

/// The text messages the session sends now.
fn sent(session: &mut Session) -> Vec<ServerMessage> {
    let mut messages = Vec::new();
    while let Some(output) = session.poll_output() {
        if let Output::SendText(message) = output {
            messages.push(message);
        }
    }
    messages
}

#[test]
fn bad_data_channel_messages_are_refused_and_the_session_goes_on() {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let oversized = json!({ "v": 1, "type": "ping", "seq": 1, "pad": "x".repeat(9000) });
    let cases: Vec<(&str, Vec<u8>, ErrorCode, &str)> = vec![
        (
            "not JSON",
            b"{\"v\":1,".to_vec(),
            ErrorCode::BadJson,
            "not JSON",
        ),
        ("empty", Vec::new(), ErrorCode::BadJson, "not JSON"),
        (
            "invalid UTF-8",
            vec![0xFF, 0xFE, b'{', b'}'],
            ErrorCode::BadJson,
            "not JSON",
        ),
        (
            "nested 200 deep",
            deep.into_bytes(),
            ErrorCode::BadJson,
            "recursion limit",
        ),
        (
            "over 8 KiB",
            oversized.to_string().into_bytes(),
            ErrorCode::TooLarge,
            "exceeds the 8192-byte limit",
        ),
        (
            "a JSON array",
            b"[1,2,3]".to_vec(),
            ErrorCode::BadMessage,
            "missing string field `type`",
        ),
        (
            "no type",
            br#"{"v":1,"seq":3}"#.to_vec(),
            ErrorCode::BadMessage,
            "missing string field `type`",
        ),
        (
            "unknown type",
            br#"{"v":1,"type":"exfiltrate","seq":4}"#.to_vec(),
            ErrorCode::UnknownType,
            "unknown message type `exfiltrate`",
        ),
        (
            "type of another shape",
            br#"{"v":1,"type":5,"seq":5}"#.to_vec(),
            ErrorCode::BadMessage,
            "`type`",
        ),
        (
            "version 2",
            br#"{"v":2,"type":"ping","seq":6}"#.to_vec(),
            ErrorCode::BadVersion,
            "`v` must be 1",
        ),
        (
            "no version",
            br#"{"type":"ping","seq":7}"#.to_vec(),
            ErrorCode::BadVersion,
            "`v` must be 1",
        ),
        (
            "unknown field",
            br#"{"v":1,"type":"ping","seq":8,"admin":true}"#.to_vec(),
            ErrorCode::BadMessage,
            "unknown field `admin`",
        ),
        (
            "negative seq",
            br#"{"v":1,"type":"ping","seq":-1}"#.to_vec(),
            ErrorCode::BadMessage,
            "invalid `ping` message",
        ),
        (
            "view without its change",
            br#"{"v":1,"type":"view","seq":9}"#.to_vec(),
            ErrorCode::BadMessage,
            "missing field `set`",
        ),
        (
            "slice as a string",
            br#"{"v":1,"type":"view","seq":10,"set":{"slice_delta":"many"}}"#.to_vec(),
            ErrorCode::BadMessage,
            "invalid `view` message",
        ),
        (
            "unknown pointer action",
            br#"{"v":1,"type":"pointer","seq":11,"action":"format_disk","x":1,"y":1}"#.to_vec(),
            ErrorCode::BadMessage,
            "format_disk",
        ),
        (
            "open_case without a ticket",
            br#"{"v":1,"type":"open_case","seq":12}"#.to_vec(),
            ErrorCode::BadMessage,
            "missing field `ticket`",
        ),
        (
            "cine stepping 1000 B-scans a tick",
            br#"{"v":1,"type":"cine","seq":13,"step":1000}"#.to_vec(),
            ErrorCode::OutOfRange,
            "cine `step` must be -1, 0 or 1",
        ),
        (
            "cine at 10,000 B-scans a second",
            br#"{"v":1,"type":"cine","seq":14,"step":1,"fps":10000}"#.to_vec(),
            ErrorCode::OutOfRange,
            "cine `fps` must be between 5 and 60",
        ),
    ];
    let (mut session, now) = session();
    let ready = sent(&mut session);
    for (name, text, code, expected) in cases {
        // What the worker's parser says...
        let err = ClientMessage::parse(&text).expect_err(name);
        assert!(
            err.code == code && err.message.contains(expected),
            "{name}: expected {code:?} saying {expected:?}, got {err:?}"
        );
        // ...is what the session sends back, and the session goes on.
        session.handle_input(now, Input::Text(Bytes::from(text)));
        let replies = sent(&mut session);
        let refused = replies.iter().any(|message| {
            matches!(message, ServerMessage::Error { code: sent_code, .. } if *sent_code == code)
        });
        assert!(refused, "{name}: the session answered {replies:?}");
        assert!(!session.is_ending(), "{name}: the session ends");
    }
    session.handle_input(now, Input::Binary);
    let replies = sent(&mut session);
    assert!(
        matches!(replies.as_slice(), [ServerMessage::Error { code: ErrorCode::BadMessage, message, .. }] if message.contains("binary")),
        "binary message: {replies:?} (before: {ready:?})"
    );

    // Nothing lost: the same session still answers and still shows its case.
    let ping = json!({ "v": VERSION, "type": "ping", "seq": 99 }).to_string();
    session.handle_input(now, Input::Text(Bytes::from(ping)));
    let replies = sent(&mut session);
    assert!(
        replies
            .iter()
            .any(|m| matches!(m, ServerMessage::Pong { seq: 99, .. })),
        "no pong after the corpus: {replies:?}"
    );
    assert_eq!(session.case(), "c1");
    assert!(!session.is_ending());
}

// ---------------------------------------------------------------------------------------------
// API JSON

/// Sends `body` as it is, with `content_type`, as the signed-in `browser`.
async fn raw(
    app: &TestApp,
    browser: &Browser,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut request = app
        .http()
        .post(format!("{}{path}", app.url))
        .header("origin", &app.url)
        .header("sec-fetch-site", "same-origin")
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(cookie) = &browser.cookie {
        request = request.header("cookie", cookie);
    }
    if let Some(csrf) = &browser.csrf {
        request = request.header("x-csrf-token", csrf);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_api_json_is_refused_and_nothing_is_lost() {
    let app = TestApp::start(Backend::Sqlite).await;
    let study = app.study("JSON-1").await;
    let case = app.case(study, "S0001").await;
    let admin = app.user("root", &[(Role::Admin, None)]).await;
    let grader = app.user("kim", &[(Role::Grader, Some(study))]).await;
    app.assign(&case, &grader, AssignmentRole::Grader).await;
    let admin_browser = app.sign_in(&admin).await;
    let grader_browser = app.sign_in(&grader).await;
    let users_before = app.db().list_users().await.unwrap().len();

    let json = Some("application/json");
    // Nested past serde_json's recursion limit, in a field the handler never reads.
    let deep = format!(
        r#"{{"token":"t","x":{}{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    )
    .into_bytes();
    let ticket = format!("/api/cases/{}/ticket", case.id);
    type JsonCase<'a> = (
        &'a str,
        &'a Browser,
        String,
        Option<&'a str>,
        Vec<u8>,
        u16,
        &'a str,
        &'a str,
    );
    let cases: Vec<JsonCase> = vec![
        (
            "login: not JSON",
            &admin_browser,
            "/api/auth/login".into(),
            json,
            b"{\"username\":".to_vec(),
            400,
            "bad_request",
            "not valid JSON",
        ),
        (
            "login: no content type",
            &admin_browser,
            "/api/auth/login".into(),
            None,
            br#"{"username":"a","password":"b"}"#.to_vec(),
            400,
            "bad_request",
            "Content-Type: application/json",
        ),
        (
            "login: text/plain",
            &admin_browser,
            "/api/auth/login".into(),
            Some("text/plain"),
            br#"{"username":"a","password":"b"}"#.to_vec(),
            400,
            "bad_request",
            "Content-Type",
        ),
        (
            "login: fields of the wrong type",
            &admin_browser,
            "/api/auth/login".into(),
            json,
            br#"{"username":5,"password":[]}"#.to_vec(),
            400,
            "bad_request",
            "invalid request body",
        ),
        (
            "login: JSON null",
            &admin_browser,
            "/api/auth/login".into(),
            json,
            b"null".to_vec(),
            400,
            "bad_request",
            "invalid request body",
        ),
        (
            "link: missing token",
            &admin_browser,
            "/api/auth/link".into(),
            json,
            b"{}".to_vec(),
            400,
            "bad_request",
            "missing field `token`",
        ),
        (
            "link: nested 5000 deep",
            &admin_browser,
            "/api/auth/link".into(),
            json,
            deep.clone(),
            400,
            "bad_request",
            "request body",
        ),
        (
            "admin: user without a name",
            &admin_browser,
            "/api/admin/users".into(),
            json,
            br#"{"display_name":"x"}"#.to_vec(),
            400,
            "bad_request",
            "missing field `username`",
        ),
        (
            "admin: unknown role",
            &admin_browser,
            "/api/admin/users".into(),
            json,
            br#"{"username":"eve","display_name":"Eve","roles":[{"role":"superuser"}]}"#.to_vec(),
            400,
            "bad_request",
            "superuser",
        ),
        (
            "admin: invalid UTF-8",
            &admin_browser,
            "/api/admin/users".into(),
            json,
            vec![b'{', b'"', 0xFF, 0xFE, b'"', b':', b'1', b'}'],
            400,
            "bad_request",
            "JSON",
        ),
        (
            "ticket: unknown purpose",
            &grader_browser,
            ticket.clone(),
            json,
            br#"{"purpose":"exfiltrate"}"#.to_vec(),
            400,
            "bad_request",
            "exfiltrate",
        ),
        (
            "ticket: viewer session not a UUID",
            &grader_browser,
            ticket.clone(),
            json,
            br#"{"viewer_session":"../../etc"}"#.to_vec(),
            400,
            "bad_request",
            "invalid request body",
        ),
        (
            "ticket: case id not a UUID",
            &grader_browser,
            "/api/cases/not-a-uuid/ticket".into(),
            json,
            b"{}".to_vec(),
            404,
            "not_found",
            "not found",
        ),
        (
            "ticket: a case that does not exist",
            &grader_browser,
            format!("/api/cases/{}/ticket", Uuid::new_v4()),
            json,
            b"{}".to_vec(),
            404,
            "not_found",
            "no such case",
        ),
    ];
    for (name, browser, path, content_type, body, status, code, expected) in cases {
        let reply = raw(&app, browser, &path, content_type, body).await;
        assert_refusal(name, &reply, status, code, expected);
    }
    // Over the 1 MiB body limit.
    let oversized = raw(
        &app,
        &admin_browser,
        "/api/admin/users",
        json,
        vec![b' '; 2 << 20],
    )
    .await;
    assert_eq!(oversized.status, 413, "oversized body: {}", oversized.body);

    // Nothing lost: both sessions still work, no user was created.
    for (name, mut browser) in [("admin", admin_browser), ("grader", grader_browser)] {
        let me = browser.get("/api/me").await;
        assert_eq!(me.status, 200, "{name} after the corpus: {}", me.body);
    }
    assert_eq!(app.db().list_users().await.unwrap().len(), users_before);
    assert_still_whole(&app, "API JSON").await;
}

// ---------------------------------------------------------------------------------------------
// Session cookies

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_session_cookies_are_refused_and_nothing_is_lost() {
    let app = TestApp::start(Backend::Sqlite).await;
    let user = app.user("kim", &[]).await;
    let mut genuine = app.sign_in(&user).await;
    let cookie = genuine.cookie.clone().expect("a session cookie");
    let (name, token) = cookie.split_once('=').unwrap();
    let mut flipped = token.to_owned().into_bytes();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let signed_out = {
        let mut other = app.sign_in(&user).await;
        let cookie = other.cookie.clone().unwrap();
        assert_eq!(other.post("/api/auth/logout", json!({})).await.status, 200);
        cookie
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "random well-formed token",
            format!("{name}={}", "A".repeat(token.len())).into_bytes(),
        ),
        (
            "one character changed",
            format!("{name}={flipped}").into_bytes(),
        ),
        ("empty value", format!("{name}=").into_bytes()),
        ("junk value", format!("{name}=x").into_bytes()),
        (
            "8 KiB value",
            format!("{name}={}", "z".repeat(8 * 1024)).into_bytes(),
        ),
        (
            "bytes outside ASCII",
            [
                format!("{name}=").into_bytes(),
                vec![0xC3, 0xA9, 0xFF, 0x80],
            ]
            .concat(),
        ),
        ("token of a signed-out session", signed_out.into_bytes()),
        (
            "another cookie name",
            format!("session={token}").into_bytes(),
        ),
        ("no name", format!("={token}").into_bytes()),
    ];
    for (case, header) in cases {
        let response = app
            .http()
            .get(format!("{}/api/me", app.url))
            .header(
                "cookie",
                reqwest::header::HeaderValue::from_bytes(&header).unwrap(),
            )
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status == 401 && body["error"]["code"] == "unauthenticated",
            "{case}: expected 401 unauthenticated, got {status} {body}"
        );
    }
    // Nothing lost: the genuine session is untouched.
    let me = genuine.get("/api/me").await;
    assert_eq!(
        me.status, 200,
        "the genuine session after the corpus: {}",
        me.body
    );
    assert_still_whole(&app, "cookies").await;
}

// ---------------------------------------------------------------------------------------------
// Streaming tickets

/// A ticket for `case`, minted over HTTP as the viewer does.
async fn mint(browser: &mut Browser, case: &Case) -> String {
    let reply = browser
        .post(&format!("/api/cases/{}/ticket", case.id), json!({}))
        .await;
    assert_eq!(reply.status, 200, "ticket: {}", reply.body);
    reply.body["ticket"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tickets_are_refused_and_nothing_is_lost() {
    let app = TestApp::start(Backend::Sqlite).await;
    let study = app.study("TICKET-1").await;
    let case = app.case(study, "S0001").await;
    let other_case = app.case(study, "S0002").await;
    let kim = app.user("kim", &[(Role::Grader, Some(study))]).await;
    let lee = app.user("lee", &[(Role::Grader, Some(study))]).await;
    app.assign(&case, &kim, AssignmentRole::Grader).await;
    app.assign(&other_case, &lee, AssignmentRole::Grader).await;
    let mut kim_browser = app.sign_in(&kim).await;
    let mut lee_browser = app.sign_in(&lee).await;
    let genuine = mint(&mut kim_browser, &case).await;
    let spare = mint(&mut kim_browser, &case).await;
    let leess = mint(&mut lee_browser, &other_case).await;
    let now = readroom_server::auth::now_unix();
    let gate = || app.ticket_gate();

    let signed = app.open_ticket(&genuine);
    let parts: Vec<&str> = signed.split('.').collect();
    let claims: TicketClaims = {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap();
        serde_json::from_slice(&payload).unwrap()
    };
    let tampered = {
        use base64::Engine as _;
        let mut changed = claims.clone();
        changed.case = other_case.id.to_string();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&changed).unwrap());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let forged = TicketSigner::from_seed(&[42; 32]).sign(&claims);
    let seal_to = |ticket: &str, recipient: String| {
        readroom_server::auth::ticket_seal::seal(ticket, &[recipient]).unwrap()
    };
    let own_recipient = app.worker_identity.to_public().to_string();
    // Sealed by hand (the server refuses to) to `n` recipients, this worker's last: each stanza
    // would cost the worker a key exchange before it knows the ticket is genuine.
    let sealed_to_many = |ticket: &str, n: usize| {
        use base64::Engine as _;
        use std::io::Write as _;
        let mut recipients: Vec<age::x25519::Recipient> = (1..n)
            .map(|_| age::x25519::Identity::generate().to_public())
            .collect();
        recipients.push(app.worker_identity.to_public());
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .unwrap();
        let mut sealed = Vec::new();
        let mut writer = encryptor.wrap_output(&mut sealed).unwrap();
        writer.write_all(ticket.as_bytes()).unwrap();
        writer.finish().unwrap();
        format!(
            "rt2.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
        )
    };
    let other_worker = age::x25519::Identity::generate().to_public().to_string();
    let cases: Vec<(&str, String, i64, &str)> = vec![
        (
            "empty",
            String::new(),
            now,
            "malformed ticket: expected three dot-separated parts",
        ),
        (
            "plain text",
            "let me in".into(),
            now,
            "malformed ticket: expected three dot-separated parts",
        ),
        (
            "four parts",
            format!("{signed}.x"),
            now,
            "malformed ticket: expected three dot-separated parts",
        ),
        (
            "unknown version",
            format!("rt9.{}.{}", parts[1], parts[2]),
            now,
            "malformed ticket: unknown ticket version",
        ),
        (
            "payload not base64url",
            format!("rt1.%%%.{}", parts[2]),
            now,
            "malformed ticket: payload is not base64url",
        ),
        (
            "signature not base64url",
            format!("rt1.{}.***", parts[1]),
            now,
            "malformed ticket: signature is not base64url",
        ),
        (
            "signature cut short",
            format!("rt1.{}.{}", parts[1], &parts[2][..40]),
            now,
            "malformed ticket: signature has the wrong length",
        ),
        (
            "longer than allowed",
            format!("rt1.{}.{}", "A".repeat(20_000), parts[2]),
            now,
            "malformed ticket: too long",
        ),
        (
            "signed with another key",
            forged.clone(),
            now,
            "ticket signature is not valid",
        ),
        (
            "claims changed after signing",
            tampered,
            now,
            "ticket signature is not valid",
        ),
        (
            "sealed to another worker",
            seal_to(&signed, other_worker),
            now,
            "malformed ticket: sealed ticket does not open with this worker's identities",
        ),
        (
            "sealed, not base64url",
            "rt2.%%%".into(),
            now,
            "malformed ticket: sealed ticket is not base64url",
        ),
        (
            "sealed, not age",
            format!("rt2.{}", parts[1]),
            now,
            "malformed ticket: sealed ticket is not age ciphertext",
        ),
        (
            "sealed, longer than allowed",
            format!("rt2.{}", "A".repeat(7_000)),
            now,
            "malformed ticket: sealed ticket too long",
        ),
        (
            "sealed twice",
            seal_to(&genuine, own_recipient.clone()),
            now,
            "malformed ticket: a sealed ticket inside a sealed ticket",
        ),
        (
            "sealed to more recipients than a worker tries",
            sealed_to_many(&signed, 9),
            now,
            "malformed ticket: sealed ticket has too many recipient stanzas",
        ),
        (
            "sealed forgery",
            seal_to(&forged, own_recipient),
            now,
            "ticket signature is not valid",
        ),
        (
            "expired",
            genuine.clone(),
            claims.expires + 1,
            "ticket expired",
        ),
    ];
    let mut shared = gate();
    for (name, ticket, at, expected) in cases {
        let err = shared
            .admit(&ticket, at)
            .map(|admission| format!("admitted to {admission:?}"))
            .expect_err(name);
        assert_eq!(err.to_string(), expected, "{name}");
    }
    // Replayed: the first use is admitted, the second refused.
    let first = shared
        .admit(&genuine, now)
        .expect("the genuine ticket, once");
    let replay = shared.admit(&genuine, now).expect_err("replayed ticket");
    assert_eq!(
        replay.to_string(),
        "this ticket was already used",
        "replayed"
    );
    // Another user's ticket to switch this session's case.
    let switched = shared
        .switch_case(&first, &leess, now)
        .expect_err("another user's ticket to switch case");
    assert_eq!(
        switched.to_string(),
        "the ticket belongs to another user or viewer session",
        "switch with another user's ticket"
    );
    // Nothing lost: the session keeps its case, and an unused genuine ticket still admits.
    assert!(first.check_case(&case.id.to_string()).is_ok());
    // Up to the bound, a ticket sealed to several workers opens on the one that holds a key.
    let spare_signed = app.open_ticket(&spare);
    let again = shared
        .admit(&sealed_to_many(&spare_signed, 8), now)
        .expect("a fresh genuine ticket, sealed to 8 recipients");
    assert_eq!(again.case, case.id.to_string());
    assert_still_whole(&app, "tickets").await;
}
