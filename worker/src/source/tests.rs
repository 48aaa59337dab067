//! The case source over a real encrypted bundle (stored zip → age, in memory).

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use readroom_domain::manifest::ExamKind;

use super::*;
use crate::dicom::tests::{bscans, opt_bytes};

/// Counts the ciphertext bytes read, to see what a request costs.
struct Counting {
    inner: Cursor<Vec<u8>>,
    read: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Seek for Counting {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let pixels = vec![90u8; (width * height) as usize];
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        &pixels,
        width,
        height,
        image::ExtendedColorType::L8,
    )
    .unwrap();
    out
}

/// A bundle with `entries` (a manifest first), encrypted to a fresh identity and opened.
fn open_bundle(
    manifest: &str,
    entries: &[(&str, Vec<u8>)],
) -> (EncryptedBundle<Counting>, Arc<AtomicU64>) {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("manifest.json", options).unwrap();
    zip.write_all(manifest.as_bytes()).unwrap();
    for (name, bytes) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    let plaintext = zip.finish().unwrap().into_inner();
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let mut ciphertext = Vec::new();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let mut writer = encryptor.wrap_output(&mut ciphertext).unwrap();
    writer.write_all(&plaintext).unwrap();
    writer.finish().unwrap();
    let read = Arc::new(AtomicU64::new(0));
    let reader = Counting {
        inner: Cursor::new(ciphertext),
        read: Arc::clone(&read),
    };
    let bundle =
        EncryptedBundle::open(reader, std::iter::once(&identity as &dyn age::Identity)).unwrap();
    (bundle, read)
}

const MANIFEST: &str = r#"{ "format": "readroom-bundle/1", "study": "EYE-2026", "subject": "S0001",
  "visit": "V1", "exams": [
    { "id": "oct-od", "kind": "oct", "eye": "OD", "file": "oct_od.dcm", "enface": "slo_od.png" },
    { "id": "oct-os", "kind": "oct", "eye": "OS", "file": "oct_os.dcm", "enface": "slo_os.png",
      "oct": { "lateral_um": 6.0 } } ] }"#;

fn request(exam: &str, part: Part) -> ImageRequest {
    ImageRequest {
        visit: Visit::Current,
        exam: exam.to_owned(),
        part,
    }
}

#[test]
fn an_oct_volume_file_has_its_frames_as_slices_and_decodes_through_the_cache() {
    let (w, h) = (64u32, 48u32);
    let od = bscans(w, h, 40);
    let os = bscans(w, h, 7);
    let (bundle, read) = open_bundle(
        MANIFEST,
        &[
            ("oct_od.dcm", opt_bytes(w, h, &od)),
            ("slo_od.png", png(32, 32)),
            ("oct_os.dcm", opt_bytes(w, h, &os)),
            ("slo_os.png", png(32, 32)),
        ],
    );
    let mut images = CaseImages::new(bundle, None, 64 * 1024 * 1024);
    let shape = images.shape().unwrap();
    let oct = shape.exam("oct-od").expect("the OPT exam is shown");
    assert_eq!((oct.kind, oct.slices), (ExamKind::Oct, 40));
    // No spacing in the manifest: the DICOM PixelSpacing's column spacing, in µm.
    assert!((oct.pixel_spacing_um.unwrap() - 11.7).abs() < 1e-9);
    let os_shape = shape.exam("oct-os").unwrap();
    assert_eq!(os_shape.slices, 7);
    assert_eq!(os_shape.pixel_spacing_um, Some(6.0), "the manifest wins");
    // The axial (row) pixel size comes from the OPT's PixelSpacing, not the lateral one.
    assert!((oct.axial_spacing_um.unwrap() - 3.9).abs() < 1e-9);
    assert!((os_shape.axial_spacing_um.unwrap() - 3.9).abs() < 1e-9);

    let image = images.image(&request("oct-od", Part::Slice(12))).unwrap();
    assert!(image.pixels == Pixels::Gray8(od[12].clone()));
    let volume_bytes = (w * h * 40) as usize;
    assert!(images.cached_bytes() >= volume_bytes + (w * h) as usize);
    // The next slice decodes from the kept volume: no ciphertext is read.
    let before = read.load(Ordering::Relaxed);
    let image = images.image(&request("oct-od", Part::Slice(13))).unwrap();
    assert!(image.pixels == Pixels::Gray8(od[13].clone()));
    assert_eq!(read.load(Ordering::Relaxed), before);
    // Another volume replaces it: only the last one is kept.
    let image = images.image(&request("oct-os", Part::Slice(6))).unwrap();
    assert!(image.pixels == Pixels::Gray8(os[6].clone()));
    assert!(images.cached_bytes() < 2 * volume_bytes);
    assert!(matches!(
        images.image(&request("oct-os", Part::Slice(7))),
        Err(ImageError::NotAvailable(_))
    ));
    images.image(&request("oct-od", Part::Enface)).unwrap();
}

#[test]
fn a_volume_larger_than_the_cache_is_decoded_but_not_kept() {
    let (w, h) = (64u32, 48u32);
    let od = bscans(w, h, 40);
    let (bundle, _) = open_bundle(
        MANIFEST,
        &[
            ("oct_od.dcm", opt_bytes(w, h, &od)),
            ("slo_od.png", png(32, 32)),
            ("oct_os.dcm", opt_bytes(w, h, &od[..2])),
            ("slo_os.png", png(32, 32)),
        ],
    );
    let mut images = CaseImages::new(bundle, None, 50 * 1024);
    let image = images.image(&request("oct-od", Part::Slice(39))).unwrap();
    assert!(image.pixels == Pixels::Gray8(od[39].clone()));
    assert!(images.cached_bytes() <= 50 * 1024);
}

#[test]
fn a_truncated_volume_is_an_error_naming_the_entry() {
    let (w, h) = (64u32, 48u32);
    let full = opt_bytes(w, h, &bscans(w, h, 10));
    let cut = full[..full.len() - 1000].to_vec();
    let (bundle, _) = open_bundle(
        MANIFEST,
        &[
            ("oct_od.dcm", cut),
            ("slo_od.png", png(32, 32)),
            ("oct_os.dcm", full),
            ("slo_os.png", png(32, 32)),
        ],
    );
    let mut images = CaseImages::new(bundle, None, 64 * 1024 * 1024);
    // The header is intact, so the shape is known...
    assert_eq!(images.shape().unwrap().exam("oct-od").unwrap().slices, 10);
    // ...but the pixels are not all there.
    match images.image(&request("oct-od", Part::Slice(0))) {
        Err(ImageError::Decode { entry, detail }) => {
            assert_eq!(entry, "oct_od.dcm");
            assert!(detail.contains("truncated"), "{detail}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn a_volume_header_over_the_limits_refuses_the_shape() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    let frames = bscans(8, 8, 2);
    let mut object = readroom_bundle::synth::dicom::opt_object(
        &crate::dicom::tests::identity(),
        8,
        8,
        &frames,
        (0.004, 0.012),
        0.1,
    )
    .unwrap();
    object.put(DataElement::new(
        dicom_dictionary_std::tags::ROWS,
        VR::UL,
        PrimitiveValue::from(100_000u32),
    ));
    let bytes = readroom_bundle::synth::dicom::to_bytes(object).unwrap();
    let (bundle, _) = open_bundle(
        MANIFEST,
        &[
            ("oct_od.dcm", bytes),
            ("slo_od.png", png(32, 32)),
            ("oct_os.dcm", opt_bytes(8, 8, &frames)),
            ("slo_os.png", png(32, 32)),
        ],
    );
    let mut images = CaseImages::new(bundle, None, 1024 * 1024);
    match images.shape() {
        Err(ImageError::TooLarge { entry, .. }) => assert_eq!(entry, "oct_od.dcm"),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

/// Every file of a directory bundle, bundle-relative, manifest first.
fn bundle_entries(dir: &std::path::Path) -> (String, Vec<(String, Vec<u8>)>) {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let name = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut entries = Vec::new();
    walk(dir, dir, &mut entries);
    let at = entries
        .iter()
        .position(|(n, _)| n == "manifest.json")
        .unwrap();
    let manifest = String::from_utf8(entries.remove(at).1).unwrap();
    (manifest, entries)
}

#[test]
fn a_synthetic_dicom_bundle_shows_its_oct_and_fundus() {
    use readroom_bundle::synth::bundle::{SynthSpec, write_bundle_dir};
    let mut spec = SynthSpec::new(5, "S0005");
    spec.eyes = vec![readroom_domain::manifest::Eye::Od];
    spec.fundus_size = 256;
    spec.oct_frames = 9;
    spec.oct_as_dicom = true;
    spec.fundus_as_dicom = true;
    let dir = tempfile::tempdir().unwrap();
    write_bundle_dir(&spec, dir.path()).unwrap();
    let (manifest, entries) = bundle_entries(dir.path());
    let borrowed: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let (bundle, _) = open_bundle(&manifest, &borrowed);
    let mut images = CaseImages::new(bundle, None, 256 * 1024 * 1024);
    let shape = images.shape().unwrap();
    let oct = shape
        .exams
        .iter()
        .find(|e| e.kind == ExamKind::Oct)
        .expect("the OCT exam is in the shape")
        .clone();
    assert_eq!(oct.slices, 9);
    let fundus = shape
        .exams
        .iter()
        .find(|e| e.kind == ExamKind::Fundus)
        .unwrap()
        .clone();
    let image = images.image(&request(&fundus.id, Part::Main)).unwrap();
    assert_eq!((image.width, image.height), (256, 256));
    assert!(matches!(image.pixels, Pixels::Rgb8(_)));
    // The renderer draws a B-scan of the volume with its en-face locator.
    let mut view = readroom_domain::view::ViewState::initial(
        &shape,
        readroom_domain::view::Viewport {
            width: 320,
            height: 200,
            dpr: 1.0,
        },
    )
    .unwrap();
    view.exam = oct.id.clone();
    view.slice = 4;
    let mark = crate::watermark::Watermark {
        grader: "grader".into(),
        session: uuid::Uuid::from_u128(1),
        unix_minute: 1,
        key: crate::watermark::test_key(1),
    };
    let out = crate::render::render(&view, &shape, &mut images, &mark).unwrap();
    assert!(out.geometry.locator.is_some());
    assert!(
        out.frame.rgb.iter().any(|v| *v > 40),
        "the B-scan is not black"
    );
}

#[test]
fn the_shape_carries_both_visits_measurements_but_lists_only_image_exams() {
    let manifest = |iop: f64, va: &str| {
        format!(
            r#"{{ "format": "readroom-bundle/1", "study": "EYE-2026", "subject": "S0001",
  "visit": "V1", "exams": [
    {{ "id": "fundus-od", "kind": "fundus", "eye": "OD", "file": "od.png" }},
    {{ "id": "iop", "kind": "measurement", "values": {{ "iop_od_mmhg": {iop}, "iop_os_mmhg": 17 }} }},
    {{ "id": "va", "kind": "measurement", "values": {{ "va_od_snellen": "{va}" }} }} ] }}"#
        )
    };
    let (current, _) = open_bundle(&manifest(15.0, "20/40"), &[("od.png", png(32, 32))]);
    let (prior, _) = open_bundle(&manifest(21.0, "20/25"), &[("od.png", png(32, 32))]);
    let mut images = CaseImages::new(current, Some(prior), 1024 * 1024);
    let shape = images.shape().unwrap();
    assert_eq!(shape.exams.len(), 1, "measurement exams are not views");
    assert_eq!(shape.prior.len(), 1);
    let number = |n: f64| MeasurementValue::Number(n);
    assert_eq!(shape.measurements["iop_od_mmhg"], number(15.0));
    assert_eq!(shape.measurements["iop_os_mmhg"], number(17.0));
    assert_eq!(
        shape.measurements["va_od_snellen"],
        MeasurementValue::Text("20/40".into())
    );
    assert_eq!(shape.prior_measurements["iop_od_mmhg"], number(21.0));
    assert_eq!(shape.measurements.len(), 3);
    // Without a prior visit there are no prior values, and none are sent.
    let (alone, _) = open_bundle(&manifest(15.0, "20/40"), &[("od.png", png(32, 32))]);
    let shape = CaseImages::new(alone, None, 1024 * 1024).shape().unwrap();
    assert!(shape.prior_measurements.is_empty());
    let json = serde_json::to_value(&shape).unwrap();
    assert!(json.get("prior_measurements").is_none());
    assert_eq!(json["measurements"]["iop_os_mmhg"], 17.0);
}
