//! Ingest end to end on real components: the gate, age encryption, a real object store (local
//! directory, and S3 served by s3s-fs on loopback), SQLite through sqlx, and random-access
//! decryption. Every refusal must name what is wrong and leave nothing stored.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use readroom_bundle::synth::{self, SynthSpec};
use readroom_domain::manifest::{Eye, Manifest};
use readroom_server::audit::Audit;
use readroom_server::db::{Db, Recipients, StudyCode};
use readroom_server::ingest::{IngestError, IngestOptions, IngestReport, ingest};
use readroom_store::ObjectStore;
use readroom_store::blocking::RangeReader;
use readroom_store::local::LocalStore;
use readroom_store::s3::{S3Config, S3Store};
use readroom_worker::keys;
use readroom_worker::reader::{EncryptedBundle, OpenError};
use tempfile::TempDir;

const STUDY: &str = "TEST-1";

/// A data directory with a worker key, SQLite, a local store and study `TEST-1`.
struct Env {
    dir: TempDir,
    db: Db,
    store: Arc<dyn ObjectStore>,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let identity = keys::generate(&data.join("keys/worker.age")).unwrap();
        let db = Db::connect(&format!("sqlite://{}", data.join("readroom.db").display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(data.join("store")).unwrap());
        let recipients = Recipients::new([identity.recipient()]).unwrap();
        db.create_study(&StudyCode::new(STUDY).unwrap(), "test", &recipients)
            .await
            .unwrap();
        Env { dir, db, store }
    }

    fn identity_file(&self) -> PathBuf {
        self.data_dir().join("keys/worker.age")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A small, fast synthetic bundle (one eye, 256 px fundus, 8 B-scans) in a fresh directory.
    fn bundle(&self, name: &str, tweak: impl FnOnce(&mut SynthSpec)) -> PathBuf {
        let mut spec = SynthSpec::new(7, "S0001");
        spec.study = STUDY.to_owned();
        spec.eyes = vec![Eye::Od];
        spec.fundus_size = 256;
        spec.oct_frames = 8;
        tweak(&mut spec);
        let path = self.dir.path().join("bundles").join(name);
        synth::write_bundle_dir(&spec, &path).unwrap();
        path
    }

    async fn ingest(&self, path: &Path) -> Result<IngestReport, IngestError> {
        ingest(
            &self.db,
            &Audit::start(self.db.clone()),
            self.store.clone(),
            path,
            STUDY,
            IngestOptions::default(),
        )
        .await
    }

    /// Nothing in the store, no case in the database.
    async fn assert_nothing_stored(&self) {
        let objects = self.store.list("").await.unwrap();
        assert!(objects.is_empty(), "objects left in the store: {objects:?}");
        let cases = self.db.list_all_cases().await.unwrap();
        assert!(cases.is_empty(), "cases recorded: {}", cases.len());
        let leftovers = walk(&self.data_dir().join("store"));
        assert!(
            leftovers.is_empty(),
            "files left under the store: {leftovers:?}"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn edit_manifest(bundle: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = bundle.join("manifest.json");
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
}

fn rejection_text(result: Result<IngestReport, IngestError>) -> String {
    match result {
        Ok(report) => panic!("expected a refusal, got case {}", report.case_label),
        Err(err) => err.to_string(),
    }
}

/// Opens a stored bundle the way a worker does: ranged reads + age seek + zip central directory.
async fn open_stored(
    store: Arc<dyn ObjectStore>,
    key: &str,
    identity_file: &Path,
    read: &'static str,
) -> (Result<(Manifest, Vec<u8>), OpenError>, u64, u64) {
    let size = store.head(key).await.unwrap().size;
    let handle = tokio::runtime::Handle::current();
    let reader = RangeReader::new(store, key, size, handle, 64 * 1024);
    let stats = reader.stats();
    let identity_file = identity_file.to_owned();
    let result = tokio::task::spawn_blocking(move || {
        let identity = keys::load(&identity_file).expect("load the worker identity");
        let mut bundle = EncryptedBundle::open(reader, std::iter::once(identity.as_age()))?;
        let entry = bundle.read_entry(read, 64 * 1024 * 1024)?;
        Ok((bundle.manifest().clone(), entry))
    })
    .await
    .unwrap();
    (result, stats.bytes_fetched(), size)
}

#[tokio::test]
async fn clean_bundle_is_stored_encrypted_and_readable_by_the_worker_only() {
    let env = Env::new().await;
    let bundle = env.bundle("clean", |_| {});
    // A marker in the plaintext (a manifest value) must end up nowhere under the data directory.
    let marker = "MRK7Q2ZPLAINTEXT";
    edit_manifest(&bundle, |manifest| {
        manifest["exams"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "id": "note", "kind": "measurement", "values": { "marker": marker }
            }));
    });
    let report = env.ingest(&bundle).await.unwrap();
    assert_eq!(report.case_label, "C-0001");
    assert!(report.ciphertext_bytes > report.plaintext_bytes);

    for file in walk(&env.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        let found = bytes.windows(marker.len()).any(|w| w == marker.as_bytes());
        assert!(!found, "plaintext marker found in {}", file.display());
    }
    let stored = std::fs::read(env.data_dir().join("store").join(&report.object_key)).unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1\n"));
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&stored));
    assert_eq!(sha, report.ciphertext_sha256);

    // The worker reads the manifest and one B-scan back, byte-identical to the source.
    let (result, _, _) = open_stored(
        env.store.clone(),
        &report.object_key,
        &env.identity_file(),
        "oct_od/003.png",
    )
    .await;
    let (manifest, frame) = result.unwrap();
    assert!(manifest.exams.iter().any(|e| e.id == "note"));
    assert_eq!(frame, std::fs::read(bundle.join("oct_od/003.png")).unwrap());

    // Another identity cannot.
    let other = env.dir.path().join("other.age");
    keys::generate(&other).unwrap();
    let (result, _, _) = open_stored(
        env.store.clone(),
        &report.object_key,
        &other,
        "oct_od/003.png",
    )
    .await;
    assert!(
        matches!(result, Err(OpenError::WrongKey)),
        "{:?}",
        result.err()
    );

    // The same subject and visit cannot be ingested twice, and the refusal stores nothing more.
    let again = env.ingest(&bundle).await;
    assert!(
        matches!(again, Err(IngestError::Duplicate { .. })),
        "{again:?}"
    );
    assert_eq!(env.store.list("").await.unwrap().len(), 1);
}

#[tokio::test]
async fn one_bscan_is_read_without_reading_the_rest() {
    let env = Env::new().await;
    let bundle = env.bundle("large", |spec| {
        spec.oct_frames = 128;
        spec.fundus_size = 1024;
    });
    let report = env.ingest(&bundle).await.unwrap();
    let (result, fetched, size) = open_stored(
        env.store.clone(),
        &report.object_key,
        &env.identity_file(),
        "oct_od/064.png",
    )
    .await;
    let (_, frame) = result.unwrap();
    let frame_len = frame.len() as u64;
    // The age header and manifest, the end-of-archive record and central directory, and the age
    // chunks holding the frame. age chunks are 64 KiB + 16 B of ciphertext, so each one straddles
    // two 64 KiB blocks of the range reader: about twelve blocks beyond the frame itself.
    let budget = frame_len + 12 * 64 * 1024;
    println!("object {size} bytes, frame {frame_len} bytes, fetched {fetched} bytes");
    assert!(
        fetched <= budget,
        "fetched {fetched} bytes of {size} for a {frame_len}-byte frame"
    );
    assert!(
        fetched * 20 < size,
        "fetched {fetched} of {size}: more than 5%"
    );
}

#[tokio::test]
async fn corrupted_or_truncated_ciphertext_is_detected() {
    let env = Env::new().await;
    let report = env.ingest(&env.bundle("clean", |_| {})).await.unwrap();
    let key = report.object_key.clone();
    let path = env.data_dir().join("store").join(&key);
    let original = std::fs::read(&path).unwrap();

    // A flipped byte inside the data: authentication fails when its chunk is read.
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let mut failures = 0;
    for entry in [
        "manifest.json",
        "oct_od/000.png",
        "oct_od/004.png",
        "fundus_od.jpg",
        "slo_od.png",
    ] {
        let (result, _, _) =
            open_stored(env.store.clone(), &key, &env.identity_file(), entry).await;
        match result {
            Ok(_) => {}
            Err(OpenError::Corrupt { .. }) => failures += 1,
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(failures >= 1, "no read noticed the flipped byte");

    // Truncated: the last chunk is missing, so the central directory cannot be authenticated.
    std::fs::write(&path, &original[..original.len() - 100]).unwrap();
    let (result, _, _) = open_stored(
        env.store.clone(),
        &key,
        &env.identity_file(),
        "manifest.json",
    )
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");

    // Not an age file at all.
    std::fs::write(&path, b"this is not ciphertext").unwrap();
    let (result, _, _) = open_stored(
        env.store.clone(),
        &key,
        &env.identity_file(),
        "manifest.json",
    )
    .await;
    assert!(matches!(
        result,
        Err(OpenError::NotAge { .. } | OpenError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn identity_in_a_dicom_tag_is_refused_naming_the_tag() {
    let env = Env::new().await;
    let bundle = env.bundle("dicom", |spec| spec.oct_as_dicom = true);
    synth::dicom::write_test_dicom(
        &bundle.join("oct_od.dcm"),
        synth::dicom::TestModality::Opt,
        "S0001",
        &[synth::dicom::PlantedElement::patient_name("DOE^JANE")],
    )
    .unwrap();
    let text = rejection_text(env.ingest(&bundle).await);
    assert!(
        text.contains("oct_od.dcm: PatientName (0010,0010)"),
        "{text}"
    );
    assert!(!text.contains("DOE"), "the refusal repeats the PHI: {text}");
    env.assert_nothing_stored().await;
}

/// A JPEG with an EXIF block (Artist and GPS) inserted after SOI.
fn jpeg_with_exif(jpeg: &[u8]) -> Vec<u8> {
    let fields = [
        exif::Field {
            tag: exif::Tag::Artist,
            ifd_num: exif::In::PRIMARY,
            value: exif::Value::Ascii(vec![b"Hong Gildong".to_vec()]),
        },
        exif::Field {
            tag: exif::Tag::GPSLatitude,
            ifd_num: exif::In::PRIMARY,
            value: exif::Value::Rational(vec![
                exif::Rational { num: 37, denom: 1 },
                exif::Rational { num: 33, denom: 1 },
                exif::Rational { num: 0, denom: 1 },
            ]),
        },
    ];
    let mut writer = exif::experimental::Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut block = Cursor::new(Vec::new());
    writer.write(&mut block, false).unwrap();
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&block.into_inner());
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn zip_dir(dir: &Path, out: &Path, extra: Option<(&str, &[u8])>) {
    let file = std::fs::File::create(out).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut files = walk(dir);
    files.sort();
    for path in files {
        let name = path.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
        zip.start_file(name, options).unwrap();
        std::io::copy(&mut std::fs::File::open(&path).unwrap(), &mut zip).unwrap();
    }
    if let Some((name, bytes)) = extra {
        zip.start_file(name, options).unwrap();
        std::io::Write::write_all(&mut zip, bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// Each bad input: a clear error naming what is wrong, nothing stored, no panic.
#[tokio::test]
async fn bad_bundles_are_refused_with_a_clear_error_and_nothing_stored() {
    type Mutate = fn(&Path, &Path) -> PathBuf;
    let cases: Vec<(&str, Mutate, &str)> = vec![
        (
            "manifest refers to a missing file",
            |b, _| {
                std::fs::remove_file(b.join("slo_od.png")).unwrap();
                b.to_owned()
            },
            "\"slo_od.png\" is listed in the manifest but missing from the bundle",
        ),
        (
            "duplicate exam ids",
            |b, _| {
                edit_manifest(b, |m| {
                    let first = m["exams"][0]["id"].clone();
                    m["exams"][1]["id"] = first;
                });
                b.to_owned()
            },
            "is used more than once",
        ),
        (
            "wrong format version",
            |b, _| {
                edit_manifest(b, |m| m["format"] = "readroom-bundle/9".into());
                b.to_owned()
            },
            "readroom-bundle/9",
        ),
        (
            "non-image file named .jpg",
            |b, _| {
                std::fs::write(b.join("fundus_od.jpg"), b"just some text, not a JPEG\n").unwrap();
                b.to_owned()
            },
            "fundus_od.jpg",
        ),
        (
            "image header claiming 100000x100000",
            |b, _| {
                std::fs::write(
                    b.join("oct_od/002.png"),
                    readroom_tests::images::png_header_claiming(100_000),
                )
                .unwrap();
                b.to_owned()
            },
            "100000",
        ),
        (
            "JPEG with EXIF GPS and an artist name",
            |b, _| {
                let jpeg = std::fs::read(b.join("fundus_od.jpg")).unwrap();
                std::fs::write(b.join("fundus_od.jpg"), jpeg_with_exif(&jpeg)).unwrap();
                b.to_owned()
            },
            "fundus_od.jpg: EXIF GPSLatitude",
        ),
        (
            "truncated zip",
            |b, work| {
                let zip = work.join("truncated.zip");
                zip_dir(b, &zip, None);
                let bytes = std::fs::read(&zip).unwrap();
                std::fs::write(&zip, &bytes[..bytes.len() / 2]).unwrap();
                zip
            },
            "zip",
        ),
        (
            "zip with a ../ path",
            |b, work| {
                let zip = work.join("traversal.zip");
                zip_dir(b, &zip, Some(("../evil.png", b"x")));
                zip
            },
            "../evil.png",
        ),
        (
            "zip with an absolute path",
            |b, work| {
                let zip = work.join("absolute.zip");
                zip_dir(b, &zip, Some(("/etc/evil.png", b"x")));
                zip
            },
            "/etc/evil.png",
        ),
    ];
    for (what, mutate, expected) in cases {
        let env = Env::new().await;
        let bundle = env.bundle("bad", |_| {});
        let input = mutate(&bundle, env.dir.path());
        let text = rejection_text(env.ingest(&input).await);
        assert!(
            text.contains(expected),
            "{what}: expected the error to contain {expected:?}, got: {text}"
        );
        env.assert_nothing_stored().await;
    }
}

#[tokio::test]
async fn ingest_into_an_unknown_study_is_refused() {
    let env = Env::new().await;
    let bundle = env.bundle("clean", |_| {});
    let result = ingest(
        &env.db,
        &Audit::start(env.db.clone()),
        env.store.clone(),
        &bundle,
        "NOPE",
        IngestOptions::default(),
    )
    .await;
    let text = rejection_text(result);
    assert!(text.contains("unknown study \"NOPE\""), "{text}");
    env.assert_nothing_stored().await;
}

#[tokio::test]
async fn ingest_to_s3_and_random_read_back() {
    let env = Env::new().await;
    let server = readroom_tests::s3s::S3sServer::start().unwrap();
    let store = S3Store::connect(S3Config {
        endpoint: Some(server.endpoint.clone()),
        bucket: "readroom".into(),
        access_key_id: Some(server.access_key.clone()),
        secret_access_key: Some(server.secret_key.clone()),
        force_path_style: true,
        part_size: 5 * 1024 * 1024,
        ..S3Config::default()
    })
    .await
    .unwrap();
    store.create_bucket_if_missing().await.unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(store);
    let bundle = env.bundle("s3", |spec| spec.oct_frames = 64);
    let report = ingest(
        &env.db,
        &Audit::start(env.db.clone()),
        store.clone(),
        &bundle,
        STUDY,
        IngestOptions::default(),
    )
    .await
    .unwrap();
    let (result, fetched, size) = open_stored(
        store.clone(),
        &report.object_key,
        &env.identity_file(),
        "oct_od/032.png",
    )
    .await;
    let (_, frame) = result.unwrap();
    assert_eq!(frame, std::fs::read(bundle.join("oct_od/032.png")).unwrap());
    assert!(fetched < size, "fetched {fetched} of {size}");
}

#[tokio::test]
async fn unreachable_s3_or_wrong_credentials_store_nothing() {
    let env = Env::new().await;
    let server = readroom_tests::s3s::S3sServer::start().unwrap();
    let good = S3Store::connect(S3Config {
        endpoint: Some(server.endpoint.clone()),
        bucket: "readroom".into(),
        access_key_id: Some(server.access_key.clone()),
        secret_access_key: Some(server.secret_key.clone()),
        force_path_style: true,
        ..S3Config::default()
    })
    .await
    .unwrap();
    good.create_bucket_if_missing().await.unwrap();

    let wrong = S3Store::connect(S3Config {
        endpoint: Some(server.endpoint.clone()),
        bucket: "readroom".into(),
        access_key_id: Some(server.access_key.clone()),
        secret_access_key: Some("not-the-secret".into()),
        force_path_style: true,
        ..S3Config::default()
    })
    .await
    .unwrap();
    let dead_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = S3Store::connect(S3Config {
        endpoint: Some(format!("http://127.0.0.1:{dead_port}")),
        bucket: "readroom".into(),
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        force_path_style: true,
        ..S3Config::default()
    })
    .await
    .unwrap();
    let bundle = env.bundle("clean", |_| {});
    for (what, store, expected) in [
        (
            "wrong credentials",
            Arc::new(wrong) as Arc<dyn ObjectStore>,
            "denied",
        ),
        (
            "S3 down",
            Arc::new(down) as Arc<dyn ObjectStore>,
            "unreachable",
        ),
    ] {
        let audit = Audit::start(env.db.clone());
        let result = ingest(
            &env.db,
            &audit,
            store,
            &bundle,
            STUDY,
            IngestOptions::default(),
        )
        .await;
        let text = rejection_text(result).to_lowercase();
        assert!(text.contains(expected), "{what}: {text}");
        assert!(
            !text.contains("not-the-secret"),
            "{what}: secret in the error: {text}"
        );
    }
    assert!(good.list("").await.unwrap().is_empty());
    assert!(env.db.list_all_cases().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_visit_is_linked_to_the_subjects_prior_visit() {
    let env = Env::new().await;
    let first = env.ingest(&env.bundle("v1", |_| {})).await.unwrap();
    let second = env
        .ingest(&env.bundle("v2", |spec| spec.visit = "V2".into()))
        .await
        .unwrap();
    let other_subject = env
        .ingest(&env.bundle("other", |spec| {
            spec.subject = "S0002".into();
            spec.visit = "V3".into();
        }))
        .await
        .unwrap();
    let first_case = env.db.case_by_id(first.case_id).await.unwrap();
    let second_case = env.db.case_by_id(second.case_id).await.unwrap();
    let other_case = env.db.case_by_id(other_subject.case_id).await.unwrap();
    assert_eq!(first_case.prior_bundle_id, None);
    assert_eq!(second_case.prior_bundle_id, Some(first.bundle_id));
    assert_eq!(
        other_case.prior_bundle_id, None,
        "priors never cross subjects"
    );
}

/// Issue 16: one eye's photograph given for both eyes (byte-identical OD and OS files) is let
/// through, since it is right for one of them, but named, so the coordinator checks the source
/// before graders grade one eye twice; a bundle with two real eyes has no such warning.
#[tokio::test]
async fn one_eyes_image_given_for_both_eyes_is_named() {
    let env = Env::new().await;
    let both = |spec: &mut SynthSpec| spec.eyes = vec![Eye::Od, Eye::Os];
    let clean = env.ingest(&env.bundle("both", both)).await.unwrap();
    assert_eq!(clean.warnings, Vec::<String>::new());

    let copied = env.bundle("copied", |spec| {
        both(spec);
        spec.visit = "V2".into();
    });
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(copied.join("manifest.json")).unwrap()).unwrap();
    let file_of = |id: &str| {
        let exam = manifest.exams.iter().find(|e| e.id == id).unwrap();
        copied.join(exam.file.as_deref().unwrap())
    };
    std::fs::copy(file_of("fundus-od"), file_of("fundus-os")).unwrap();
    let report = env.ingest(&copied).await.unwrap();
    assert_eq!(
        report.warnings,
        [
            "exams \"fundus-od\" (OD) and \"fundus-os\" (OS) have byte-identical fundus images: \
             is one eye's image given for both?"
        ]
    );
    // Kept with the accepted ingest's audit event.
    let events = env.db.audit_page(0, 100).await.unwrap();
    let accepted = events
        .iter()
        .rfind(|e| e.action == "ingest.accepted")
        .unwrap();
    let details: serde_json::Value = serde_json::from_str(&accepted.details).unwrap();
    assert_eq!(details["warnings"], serde_json::json!(report.warnings));
}
