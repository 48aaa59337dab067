//! End-to-end tests of synthetic bundles: determinism, manifest, decodability, DICOM, ground truth.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::{tags, uids};
use readroom_domain::manifest::{ExamKind, Eye, MANIFEST_FILE, Manifest};

use super::*;
use crate::synth::geometry::FUNDUS_FOV_FRACTION;

/// A small spec that renders quickly in the test profile.
fn small_spec(seed: u64, disease: Disease) -> SynthSpec {
    let mut spec = SynthSpec::new(seed, "S0042");
    spec.study = "TEST-1".to_owned();
    spec.fundus_size = 512;
    spec.oct_frames = 7;
    spec.disease = disease;
    spec
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Every file under `dir`, as bundle-relative paths with `/` separators, sorted.
fn files_in(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeSet<String>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("readable directory")
            .map(|entry| entry.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let relative = path.strip_prefix(root).expect("inside root");
                let parts: Vec<_> = relative
                    .iter()
                    .map(|part| part.to_string_lossy().into_owned())
                    .collect();
                files.insert(parts.join("/"));
            }
        }
    }
    let mut files = BTreeSet::new();
    walk(dir, dir, &mut files);
    files
}

fn read_manifest(dir: &Path) -> Manifest {
    let json = std::fs::read_to_string(dir.join(MANIFEST_FILE)).expect("manifest written");
    serde_json::from_str(&json).expect("manifest parses")
}

/// The files a manifest references.
fn referenced(manifest: &Manifest) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for exam in &manifest.exams {
        files.extend(exam.file.iter().cloned());
        files.extend(exam.enface.iter().cloned());
        files.extend(exam.frames.iter().flatten().cloned());
    }
    files
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let spec = small_spec(
        7,
        Disease::DiabeticRetinopathy {
            icdr_level: 2,
            dme: true,
        },
    );
    let first = temp_dir();
    let second = temp_dir();
    let other = temp_dir();
    let truth_first = write_bundle_dir(&spec, first.path()).expect("writes");
    let truth_second = write_bundle_dir(&spec, second.path()).expect("writes");
    assert_eq!(truth_first, truth_second);
    let files = files_in(first.path());
    assert_eq!(files, files_in(second.path()));
    for file in &files {
        let a = std::fs::read(first.path().join(file)).expect("readable");
        let b = std::fs::read(second.path().join(file)).expect("readable");
        assert!(a == b, "{file} differs between two runs with the same seed");
    }
    let mut reseeded = spec.clone();
    reseeded.seed = 8;
    write_bundle_dir(&reseeded, other.path()).expect("writes");
    for file in [
        "fundus_od.jpg",
        "fundus_os.jpg",
        "slo_od.png",
        "oct_os/003.png",
    ] {
        let a = std::fs::read(first.path().join(file)).expect("readable");
        let b = std::fs::read(other.path().join(file)).expect("readable");
        assert!(a != b, "{file} is the same for different seeds");
    }
}

#[test]
fn manifest_round_trips_and_references_exactly_the_files_written() {
    let mut spec = small_spec(3, Disease::Amd { areds_category: 3 });
    spec.prior_visit = Some("V0".to_owned());
    let dir = temp_dir();
    write_bundle_dir(&spec, dir.path()).expect("writes");
    let manifest = read_manifest(dir.path());
    let json = serde_json::to_string(&manifest).expect("serializes");
    let again: Manifest = serde_json::from_str(&json).expect("parses");
    assert_eq!(manifest, again);
    assert_eq!(manifest.format, readroom_domain::manifest::FORMAT_V1);
    assert_eq!(
        (manifest.study.as_str(), manifest.subject.as_str()),
        ("TEST-1", "S0042")
    );
    assert_eq!(manifest.prior_visit.as_deref(), Some("V0"));
    let ids: Vec<&str> = manifest.exams.iter().map(|exam| exam.id.as_str()).collect();
    assert_eq!(
        &ids[..6],
        ["fundus-od", "fundus-os", "oct-od", "oct-os", "iop", "va"]
    );
    let mut on_disk = files_in(dir.path());
    assert!(on_disk.remove(MANIFEST_FILE));
    assert_eq!(referenced(&manifest), on_disk);
    for exam in &manifest.exams {
        match exam.kind {
            ExamKind::Fundus => {
                // A 512-pixel test image of a 45° field: about 27 µm per pixel.
                let spacing = exam.pixel_spacing_um.expect("fundus spacing");
                assert!((20.0..35.0).contains(&spacing), "{spacing}");
            }
            ExamKind::Oct => {
                let geometry = exam.oct.as_ref().expect("OCT geometry");
                assert_eq!(exam.frames.as_ref().map(Vec::len), Some(7));
                let [x0, y0, x1, y1] = geometry.enface_scan_rect.expect("scan rectangle");
                assert!(
                    x0 >= 0.0 && y0 >= 0.0 && x1 <= 511.0 && y1 <= 511.0 && y1 > y0 && x0 != x1
                );
            }
            _ => assert!(
                exam.values
                    .as_ref()
                    .is_some_and(|values| !values.is_empty())
            ),
        }
    }
    // No file name looks like a name, an id or a date.
    for file in &on_disk {
        assert!(
            file.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_./".contains(c)),
            "{file}"
        );
        assert!(!file.contains("s0042") && !file.contains("2026"));
    }
}

#[test]
fn images_decode_with_the_promised_dimensions() {
    let spec = small_spec(5, Disease::Normal);
    let dir = temp_dir();
    write_bundle_dir(&spec, dir.path()).expect("writes");
    let fundus = image::open(dir.path().join("fundus_od.jpg")).expect("JPEG decodes");
    assert_eq!((fundus.width(), fundus.height()), (512, 512));
    assert_eq!(fundus.color(), image::ColorType::Rgb8);
    let frame = image::open(dir.path().join("oct_os/006.png")).expect("PNG decodes");
    assert_eq!(
        (frame.width(), frame.height()),
        (oct::BSCAN_WIDTH, oct::BSCAN_DEPTH)
    );
    assert_eq!(frame.color(), image::ColorType::L8);
    let enface = image::open(dir.path().join("slo_od.png")).expect("PNG decodes");
    assert_eq!((enface.width(), enface.height()), (512, 512));
}

fn dicom_text(object: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> String {
    object
        .element(tag)
        .ok()
        .and_then(|element| element.to_str().ok())
        .map(|value| value.trim_end_matches(['\0', ' ']).to_owned())
        .unwrap_or_default()
}

#[test]
fn dicom_files_read_back() {
    let mut spec = small_spec(9, Disease::Glaucoma { vcdr: 0.8 });
    spec.eyes = vec![Eye::Os];
    spec.oct_as_dicom = true;
    spec.fundus_as_dicom = true;
    let dir = temp_dir();
    write_bundle_dir(&spec, dir.path()).expect("writes");
    let manifest = read_manifest(dir.path());
    let oct_exam = manifest
        .exams
        .iter()
        .find(|exam| exam.id == "oct-os")
        .expect("oct exam");
    assert_eq!(oct_exam.file.as_deref(), Some("oct_os.dcm"));
    assert!(oct_exam.frames.is_none());

    let opt = dicom_object::open_file(dir.path().join("oct_os.dcm")).expect("OPT reads back");
    assert_eq!(
        opt.meta()
            .media_storage_sop_class_uid()
            .trim_end_matches('\0'),
        uids::OPHTHALMIC_TOMOGRAPHY_IMAGE_STORAGE
    );
    assert_eq!(
        opt.meta().transfer_syntax().trim_end_matches('\0'),
        uids::EXPLICIT_VR_LITTLE_ENDIAN
    );
    assert_eq!(
        dicom_text(&opt, tags::SOP_CLASS_UID),
        uids::OPHTHALMIC_TOMOGRAPHY_IMAGE_STORAGE
    );
    assert_eq!(dicom_text(&opt, tags::NUMBER_OF_FRAMES), "7");
    assert_eq!(dicom_text(&opt, tags::ROWS), "496");
    assert_eq!(dicom_text(&opt, tags::COLUMNS), "512");
    assert_eq!(
        dicom_text(&opt, tags::PHOTOMETRIC_INTERPRETATION),
        "MONOCHROME2"
    );
    assert_eq!(dicom_text(&opt, tags::PATIENT_NAME), "S0042");
    assert_eq!(dicom_text(&opt, tags::PATIENT_ID), "S0042");
    assert_eq!(dicom_text(&opt, tags::LATERALITY), "L");
    assert_eq!(dicom_text(&opt, tags::BURNED_IN_ANNOTATION), "NO");
    assert_eq!(dicom_text(&opt, tags::PATIENT_IDENTITY_REMOVED), "YES");
    let pixels = opt
        .element(tags::PIXEL_DATA)
        .expect("pixel data")
        .to_bytes()
        .expect("bytes");
    assert_eq!(pixels.len(), 7 * 512 * 496);
    // The first frame is the first PNG-equivalent B-scan: retina present, vitreous dark.
    assert!(
        pixels[..512 * 20]
            .iter()
            .map(|value| u32::from(*value))
            .sum::<u32>()
            < 512 * 20 * 20
    );

    let op = dicom_object::open_file(dir.path().join("fundus_os.dcm")).expect("OP reads back");
    assert_eq!(
        dicom_text(&op, tags::SOP_CLASS_UID),
        uids::OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE
    );
    assert_eq!(dicom_text(&op, tags::SAMPLES_PER_PIXEL), "3");
    assert_eq!(dicom_text(&op, tags::PHOTOMETRIC_INTERPRETATION), "RGB");
    assert_eq!(dicom_text(&op, tags::PATIENT_NAME), "S0042");
    assert_eq!(dicom_text(&op, tags::IMAGE_LATERALITY), "L");
    assert!(dicom_text(&op, tags::PIXEL_SPACING).starts_with("0.0"));
    for absent in [
        tags::PATIENT_BIRTH_DATE,
        tags::INSTITUTION_NAME,
        tags::STUDY_DATE,
        tags::CONTENT_DATE,
    ] {
        assert!(op.element(absent).is_err() && opt.element(absent).is_err());
    }
}

/// Green channel of an RGB image at (x, y).
fn green(image: &image::RgbImage, x: f64, y: f64) -> f64 {
    f64::from(image.get_pixel(x.round() as u32, y.round() as u32)[1])
}

/// Median green value on a ring of `radius` around (x, y).
fn ring_median(image: &image::RgbImage, x: f64, y: f64, radius: f64) -> f64 {
    let mut values: Vec<f64> = (0..24)
        .map(|step| {
            let angle = f64::from(step) * std::f64::consts::TAU / 24.0;
            green(image, x + radius * angle.cos(), y + radius * angle.sin())
        })
        .collect();
    values.sort_by(f64::total_cmp);
    values[12]
}

#[test]
fn ground_truth_lesions_are_in_the_field_and_visible() {
    let mut spec = small_spec(
        11,
        Disease::DiabeticRetinopathy {
            icdr_level: 3,
            dme: true,
        },
    );
    spec.fundus_size = 1024;
    spec.oct_frames = 25;
    let dir = temp_dir();
    let truth = write_bundle_dir(&spec, dir.path()).expect("writes");
    let json = serde_json::to_string(&truth).expect("serializes");
    assert_eq!(
        serde_json::from_str::<GroundTruth>(&json).expect("parses"),
        truth
    );
    let centre = 511.5;
    let fov = FUNDUS_FOV_FRACTION * 1024.0;
    for eye_truth in &truth.eyes {
        assert_eq!(eye_truth.grades.icdr_level, 3);
        assert!(eye_truth.grades.dme);
        let image = image::open(dir.path().join(&eye_truth.fundus_file))
            .expect("decodes")
            .to_rgb8();
        let mut dark = 0;
        let mut bright = 0;
        for lesion in &eye_truth.fundus_lesions {
            let from_centre = (lesion.x - centre).hypot(lesion.y - centre);
            assert!(
                from_centre + lesion.radius <= fov,
                "{lesion:?} leaves the field of view"
            );
            let inner = green(&image, lesion.x, lesion.y);
            let around = ring_median(&image, lesion.x, lesion.y, lesion.radius + 5.0);
            match lesion.kind {
                LesionKind::Microaneurysm | LesionKind::Hemorrhage => {
                    assert!(inner < around - 4.0, "{lesion:?}: {inner} vs {around}");
                    dark += 1;
                }
                LesionKind::HardExudate | LesionKind::CottonWoolSpot => {
                    // Exudates cluster, so compare with the whole neighbourhood's median.
                    assert!(inner > around, "{lesion:?}: {inner} vs {around}");
                    bright += 1;
                }
                _ => {}
            }
        }
        assert!(
            dark > 80 && bright > 5,
            "{dark} dark, {bright} bright lesions"
        );
        let kinds: BTreeSet<LesionKind> = eye_truth
            .oct_lesions
            .iter()
            .map(|lesion| lesion.kind)
            .collect();
        assert!(kinds.contains(&LesionKind::IntraretinalFluid), "{kinds:?}");
        for lesion in &eye_truth.oct_lesions {
            assert!(
                lesion.first_bscan <= lesion.bscan
                    && lesion.bscan <= lesion.last_bscan
                    && lesion.last_bscan < 25
            );
            assert!(0.0 <= lesion.x_min && lesion.x_min <= lesion.x_max && lesion.x_max <= 511.0);
            assert!(0.0 < lesion.top && lesion.top < lesion.bottom && lesion.bottom < 496.0);
        }
    }
}

#[test]
fn disc_is_nasal_in_both_eyes_and_visits_share_the_eye() {
    let spec = small_spec(13, Disease::Glaucoma { vcdr: 0.75 });
    let dir = temp_dir();
    let truth = write_bundle_dir(&spec, dir.path()).expect("writes");
    let od = truth.eye(Eye::Od).expect("OD");
    let os = truth.eye(Eye::Os).expect("OS");
    assert!(od.disc_centre[0] > 256.0 && od.fovea[0] < 256.0 && od.disc_centre[0] > od.fovea[0]);
    assert!(os.disc_centre[0] < 256.0 && os.fovea[0] > 256.0 && os.disc_centre[0] < os.fovea[0]);
    for eye_truth in [od, os] {
        let image = image::open(dir.path().join(&eye_truth.fundus_file))
            .expect("decodes")
            .to_rgb8();
        let [x, y] = eye_truth.disc_centre;
        let [fovea_x, fovea_y] = eye_truth.fovea;
        assert!(green(&image, x, y) > green(&image, fovea_x, fovea_y) + 40.0);
    }
    assert_eq!(od.grades.vcdr, 0.75);
    assert!(os.grades.vcdr <= 0.75);
    assert!(truth.measurements["iop_od_mmhg"] >= 18.0);

    let mut follow_up = spec.clone();
    follow_up.visit = "V2".to_owned();
    follow_up.prior_visit = Some("V1".to_owned());
    let later_dir = temp_dir();
    let later = write_bundle_dir(&follow_up, later_dir.path()).expect("writes");
    assert_eq!(later.eyes[0].disc_centre, truth.eyes[0].disc_centre);
    assert_eq!(later.eyes[0].grades, truth.eyes[0].grades);
    let first = std::fs::read(dir.path().join("fundus_od.jpg")).expect("readable");
    let second = std::fs::read(later_dir.path().join("fundus_od.jpg")).expect("readable");
    assert_ne!(first, second, "a new visit is a new acquisition");
}

#[test]
fn invalid_specs_are_refused() {
    let base = small_spec(1, Disease::Normal);
    let mut cases = Vec::new();
    let mut spec = base.clone();
    spec.eyes = vec![Eye::Ou];
    cases.push(spec);
    let mut spec = base.clone();
    spec.eyes = vec![Eye::Od, Eye::Od];
    cases.push(spec);
    let mut spec = base.clone();
    spec.eyes.clear();
    cases.push(spec);
    let mut spec = base.clone();
    spec.fundus_size = 100;
    cases.push(spec);
    let mut spec = base.clone();
    spec.oct_frames = 1;
    cases.push(spec);
    let mut spec = base.clone();
    spec.subject = "Jane Doe".to_owned();
    cases.push(spec);
    let mut spec = base.clone();
    spec.visit = String::new();
    cases.push(spec);
    let mut spec = base;
    spec.disease = Disease::DiabeticRetinopathy {
        icdr_level: 9,
        dme: false,
    };
    cases.push(spec);
    let dir = temp_dir();
    for spec in cases {
        let result = write_bundle_dir(&spec, &dir.path().join("never"));
        assert!(
            matches!(result, Err(SynthError::InvalidSpec(_))),
            "{spec:?}"
        );
    }
    assert!(!dir.path().join("never").exists());
}

#[test]
fn demo_cohort_is_varied_and_valid() {
    let cohort = demo_cohort(2026, 8);
    assert_eq!(cohort, demo_cohort(2026, 8));
    let subjects: BTreeSet<&str> = cohort.iter().map(|spec| spec.subject.as_str()).collect();
    assert_eq!(subjects.len(), 8);
    assert!(subjects.contains("S0001") && subjects.contains("S0008"));
    let labels: BTreeSet<String> = cohort.iter().map(|spec| spec.disease.label()).collect();
    assert!(labels.len() >= 7, "{labels:?}");
    assert!(
        cohort
            .iter()
            .any(|spec| spec.visit == "V2" && spec.prior_visit.as_deref() == Some("V1"))
    );
    assert!(
        cohort.iter().any(|spec| spec.oct_as_dicom) && cohort.iter().any(|spec| !spec.oct_as_dicom)
    );
    assert!(cohort.iter().any(|spec| spec.fundus_as_dicom));
    for spec in &cohort {
        spec.validate().expect("demo specs are valid");
        assert!(spec.visit == "V1" || spec.visit == "V2");
    }
    // A second visit shares the seed of the first, so it shows the same eye.
    let visits: Vec<_> = cohort
        .iter()
        .filter(|spec| spec.subject == "S0003")
        .collect();
    assert_eq!(visits.len(), 2);
    assert_eq!(visits[0].seed, visits[1].seed);
}

#[test]
fn retina_bundle_wraps_the_real_photograph_without_metadata() {
    let photo = include_bytes!("../../../tests/fixtures/retina.jpg");
    let dir = temp_dir();
    write_retina_bundle(photo, "S0100", dir.path()).expect("writes");
    let manifest = read_manifest(dir.path());
    assert_eq!(manifest.subject, "S0100");
    let mut on_disk = files_in(dir.path());
    assert!(on_disk.remove(MANIFEST_FILE));
    assert_eq!(referenced(&manifest), on_disk);
    let fundus = manifest
        .exams
        .iter()
        .find(|exam| exam.id == "fundus-os")
        .expect("fundus exam");
    assert_eq!(fundus.eye, Some(Eye::Os));
    assert_eq!(fundus.pixel_spacing_um, Some(10.0));
    let bundled = std::fs::read(dir.path().join("fundus_os.jpg")).expect("readable");
    assert_eq!(bundled, retina::strip_jpeg_metadata(photo).expect("strips"));
    let decoded = image::load_from_memory(&bundled).expect("decodes");
    assert_eq!((decoded.width(), decoded.height()), (1411, 1411));
    let oct_exam = manifest
        .exams
        .iter()
        .find(|exam| exam.id == "oct-os")
        .expect("oct exam");
    assert_eq!(oct_exam.frames.as_ref().map(Vec::len), Some(49));
    let enface = image::open(dir.path().join("slo_os.png"))
        .expect("decodes")
        .to_luma8();
    // The en-face image shows the photograph: its disc (left, for a left eye) is brighter than the fovea.
    let frame = geometry::ImageFrame::slo(Eye::Os);
    let disc_point = geometry::RetinaPoint::new(4.9, -0.7);
    let (disc_x, disc_y) = frame.to_px(disc_point);
    let (fovea_x, fovea_y) = frame.to_px(geometry::RetinaPoint::new(0.0, 0.0));
    assert!(disc_x < 256.0);
    let at = |x: f64, y: f64| f64::from(enface.get_pixel(x as u32, y as u32)[0]);
    assert!(
        at(disc_x, disc_y) > at(fovea_x, fovea_y),
        "{} vs {}",
        at(disc_x, disc_y),
        at(fovea_x, fovea_y)
    );
}

#[test]
fn full_size_eye_timing() {
    // Prints rough timings of a full-size eye (not asserted: machines differ).
    let mut spec = SynthSpec::new(99, "S0099");
    spec.eyes = vec![Eye::Od];
    spec.oct_frames = 64;
    spec.disease = Disease::DiabeticRetinopathy {
        icdr_level: 2,
        dme: true,
    };
    let dir = temp_dir();
    let start = std::time::Instant::now();
    let truth = write_bundle_dir(&spec, dir.path()).expect("writes");
    eprintln!(
        "one eye, fundus 1536² + OCT 64×512×496, PNG frames: {:?} ({} fundus lesions)",
        start.elapsed(),
        truth.eyes[0].fundus_lesions.len()
    );
}
