//! Ophthalmic DICOM files: multi-frame OCT (OPT) and 8-bit colour fundus photographs (OP).
//!
//! Objects are built in memory with `dicom-object` and written with a proper file meta group in
//! explicit VR little endian, pixels native (uncompressed).
//! They are de-identified by construction: the patient name and id are the bundle's pseudonymous
//! subject, there are no dates, times, institutions or private tags, `PatientIdentityRemoved` is
//! `YES` and `BurnedInAnnotation` is `NO`.
//! UIDs are `2.25.` UUID-style integers derived from the seed, so files are reproducible.
//!
//! [`test_dicom_bytes`] and [`write_test_dicom`] are for tests of the de-identification gate: they
//! write a small OP or OPT object with chosen attributes planted (a real-looking name, an
//! institution, a private tag, burned-in annotation).

use std::path::Path;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{FileDicomObject, InMemDicomObject};
use readroom_domain::manifest::Eye;

use super::SynthError;
use super::rng::derive;

/// The identity and UIDs of one DICOM object.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomIdentity {
    /// Pseudonymous subject, written as both PatientName and PatientID.
    pub subject: String,
    /// Laterality of the imaged eye.
    pub eye: Eye,
    /// Study Instance UID.
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// SOP Instance UID.
    pub instance_uid: String,
}

impl DicomIdentity {
    /// Reproducible UIDs for the object `kind` (e.g. `oct`) of `eye` in a subject's visit.
    pub fn derive(seed: u64, subject: &str, visit: &str, kind: &str, eye: Eye) -> DicomIdentity {
        let study_labels = [subject, visit];
        DicomIdentity {
            subject: subject.to_owned(),
            eye,
            study_uid: uid(seed, &study_labels),
            series_uid: uid(seed, &[subject, visit, kind, eye.as_str()]),
            instance_uid: uid(seed, &[subject, visit, kind, eye.as_str(), "instance"]),
        }
    }
}

/// A `2.25.<128-bit integer>` UID derived from the seed and labels.
pub fn uid(seed: u64, labels: &[&str]) -> String {
    let high = derive(seed, labels);
    let low = derive(high, &["uid-low"]);
    let value = (u128::from(high) << 64) | u128::from(low);
    format!("2.25.{value}")
}

/// The DICOM code of a laterality.
fn laterality(eye: Eye) -> &'static str {
    match eye {
        Eye::Od => "R",
        Eye::Os => "L",
        Eye::Ou => "B",
    }
}

/// A decimal string (DS) of at most 16 characters.
fn decimal(value: f64) -> String {
    let mut text = format!("{value:.6}");
    while text.contains('.') && (text.ends_with('0') || text.ends_with('.')) {
        text.pop();
    }
    text.truncate(16);
    text
}

/// Attributes shared by OP and OPT objects.
fn base_object(identity: &DicomIdentity, sop_class: &str, modality: &str) -> InMemDicomObject {
    let mut object = InMemDicomObject::new_empty();
    let mut text = |tag: Tag, vr: VR, value: &str| {
        object.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    };
    text(tags::SOP_CLASS_UID, VR::UI, sop_class);
    text(tags::SOP_INSTANCE_UID, VR::UI, &identity.instance_uid);
    text(tags::STUDY_INSTANCE_UID, VR::UI, &identity.study_uid);
    text(tags::SERIES_INSTANCE_UID, VR::UI, &identity.series_uid);
    text(tags::FRAME_OF_REFERENCE_UID, VR::UI, &identity.study_uid);
    text(tags::MODALITY, VR::CS, modality);
    text(tags::PATIENT_NAME, VR::PN, &identity.subject);
    text(tags::PATIENT_ID, VR::LO, &identity.subject);
    text(tags::PATIENT_SEX, VR::CS, "");
    text(tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
    text(tags::ACCESSION_NUMBER, VR::SH, "");
    text(tags::STUDY_ID, VR::SH, "");
    text(tags::PATIENT_IDENTITY_REMOVED, VR::CS, "YES");
    text(
        tags::DEIDENTIFICATION_METHOD,
        VR::LO,
        "synthetic data, no real patient",
    );
    text(tags::MANUFACTURER, VR::LO, "readroom synthetic");
    text(tags::SERIES_NUMBER, VR::IS, "1");
    text(tags::INSTANCE_NUMBER, VR::IS, "1");
    text(tags::LATERALITY, VR::CS, laterality(identity.eye));
    text(tags::IMAGE_LATERALITY, VR::CS, laterality(identity.eye));
    text(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY");
    text(tags::BURNED_IN_ANNOTATION, VR::CS, "NO");
    text(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    object.put(DataElement::new(
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(8u16),
    ));
    object.put(DataElement::new(
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(8u16),
    ));
    object.put(DataElement::new(
        tags::HIGH_BIT,
        VR::US,
        PrimitiveValue::from(7u16),
    ));
    object.put(DataElement::new(
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(0u16),
    ));
    object
}

fn put_dimensions(
    object: &mut InMemDicomObject,
    width: u32,
    height: u32,
) -> Result<(), SynthError> {
    let rows = u16::try_from(height)
        .map_err(|_| SynthError::InvalidSpec(format!("{height} rows exceed DICOM's limit")))?;
    let columns = u16::try_from(width)
        .map_err(|_| SynthError::InvalidSpec(format!("{width} columns exceed DICOM's limit")))?;
    object.put(DataElement::new(
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(rows),
    ));
    object.put(DataElement::new(
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(columns),
    ));
    Ok(())
}

/// Pixel data as OB, padded to even length as DICOM requires.
fn put_pixels(object: &mut InMemDicomObject, mut bytes: Vec<u8>) {
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(bytes),
    ));
}

/// Builds a multi-frame OCT object (Ophthalmic Tomography Image Storage, MONOCHROME2, 8-bit).
///
/// `spacing_mm` is `(axial, lateral)`, the pixel spacing of each frame; `frame_spacing_mm` is the
/// distance between B-scans.
pub fn opt_object(
    identity: &DicomIdentity,
    width: u32,
    height: u32,
    frames: &[Vec<u8>],
    spacing_mm: (f64, f64),
    frame_spacing_mm: f64,
) -> Result<InMemDicomObject, SynthError> {
    let frame_len = width as usize * height as usize;
    if frames.is_empty() || frames.iter().any(|frame| frame.len() != frame_len) {
        return Err(SynthError::InvalidSpec(format!(
            "OCT frames must all be {width}×{height} and there must be at least one"
        )));
    }
    let mut object = base_object(identity, uids::OPHTHALMIC_TOMOGRAPHY_IMAGE_STORAGE, "OPT");
    put_dimensions(&mut object, width, height)?;
    object.put(DataElement::new(
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(1u16),
    ));
    object.put(DataElement::new(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        PrimitiveValue::from("MONOCHROME2"),
    ));
    object.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from(frames.len().to_string()),
    ));
    let spacing = format!("{}\\{}", decimal(spacing_mm.0), decimal(spacing_mm.1));
    // The standard place for the spacing of an enhanced multi-frame object is the shared functional
    // group; the top-level copy is for simple readers.
    object.put(DataElement::new(
        tags::PIXEL_SPACING,
        VR::DS,
        PrimitiveValue::from(spacing.as_str()),
    ));
    let measures = InMemDicomObject::from_element_iter([
        DataElement::new(
            tags::PIXEL_SPACING,
            VR::DS,
            PrimitiveValue::from(spacing.as_str()),
        ),
        DataElement::new(
            tags::SLICE_THICKNESS,
            VR::DS,
            PrimitiveValue::from(decimal(frame_spacing_mm)),
        ),
    ]);
    let shared = InMemDicomObject::from_element_iter([DataElement::new(
        tags::PIXEL_MEASURES_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![measures]),
    )]);
    object.put(DataElement::new(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![shared]),
    ));
    object.put(DataElement::new(
        tags::PRESENTATION_LUT_SHAPE,
        VR::CS,
        PrimitiveValue::from("IDENTITY"),
    ));
    put_pixels(&mut object, frames.concat());
    Ok(object)
}

/// Builds a colour fundus object (Ophthalmic Photography 8 Bit Image Storage, RGB, native).
pub fn op_object(
    identity: &DicomIdentity,
    width: u32,
    height: u32,
    rgb: &[u8],
    pixel_spacing_mm: Option<f64>,
) -> Result<InMemDicomObject, SynthError> {
    if rgb.len() != width as usize * height as usize * 3 {
        return Err(SynthError::InvalidSpec(format!(
            "RGB buffer does not hold {width}×{height} pixels"
        )));
    }
    let mut object = base_object(
        identity,
        uids::OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE,
        "OP",
    );
    put_dimensions(&mut object, width, height)?;
    object.put(DataElement::new(
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(3u16),
    ));
    object.put(DataElement::new(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        PrimitiveValue::from("RGB"),
    ));
    object.put(DataElement::new(
        tags::PLANAR_CONFIGURATION,
        VR::US,
        PrimitiveValue::from(0u16),
    ));
    object.put(DataElement::new(
        tags::PATIENT_ORIENTATION,
        VR::CS,
        PrimitiveValue::from(""),
    ));
    object.put(DataElement::new(
        tags::ACQUISITION_CONTEXT_SEQUENCE,
        VR::SQ,
        DataSetSequence::<InMemDicomObject>::from(Vec::new()),
    ));
    if let Some(spacing) = pixel_spacing_mm {
        let value = format!("{}\\{}", decimal(spacing), decimal(spacing));
        object.put(DataElement::new(
            tags::PIXEL_SPACING,
            VR::DS,
            PrimitiveValue::from(value),
        ));
    }
    put_pixels(&mut object, rgb.to_vec());
    Ok(object)
}

/// Wraps an object with its file meta group (explicit VR little endian).
fn with_meta(object: InMemDicomObject) -> Result<FileDicomObject<InMemDicomObject>, SynthError> {
    object
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .map_err(|error| SynthError::Dicom(error.to_string()))
}

/// Encodes an object as a DICOM file (preamble, `DICM`, meta group, data set).
pub fn to_bytes(object: InMemDicomObject) -> Result<Vec<u8>, SynthError> {
    let file = with_meta(object)?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|error| SynthError::Dicom(error.to_string()))?;
    Ok(bytes)
}

/// Writes an object as a DICOM file at `path`.
pub fn write_file(object: InMemDicomObject, path: &Path) -> Result<(), SynthError> {
    let file = with_meta(object)?;
    file.write_to_file(path)
        .map_err(|error| SynthError::Dicom(format!("{}: {error}", path.display())))
}

/// Which kind of object a test file should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestModality {
    /// A small colour fundus photograph (OP).
    Op,
    /// A small three-frame OCT volume (OPT).
    Opt,
}

/// An attribute to plant into a test object, replacing any attribute with the same tag.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedElement {
    /// The attribute's tag (any group but the file meta group 0002).
    pub tag: Tag,
    /// Its value representation.
    pub vr: VR,
    /// Its value, as DICOM text (multiple values separated by `\`).
    pub value: String,
}

impl PlantedElement {
    /// An arbitrary attribute.
    pub fn new(tag: Tag, vr: VR, value: impl Into<String>) -> PlantedElement {
        PlantedElement {
            tag,
            vr,
            value: value.into(),
        }
    }

    /// A patient name, e.g. `DOE^JANE`.
    pub fn patient_name(name: &str) -> PlantedElement {
        PlantedElement::new(tags::PATIENT_NAME, VR::PN, name)
    }

    /// A patient id, e.g. a hospital record number.
    pub fn patient_id(id: &str) -> PlantedElement {
        PlantedElement::new(tags::PATIENT_ID, VR::LO, id)
    }

    /// A birth date, e.g. `19580214`.
    pub fn patient_birth_date(date: &str) -> PlantedElement {
        PlantedElement::new(tags::PATIENT_BIRTH_DATE, VR::DA, date)
    }

    /// An institution name.
    pub fn institution_name(name: &str) -> PlantedElement {
        PlantedElement::new(tags::INSTITUTION_NAME, VR::LO, name)
    }

    /// `BurnedInAnnotation = YES`.
    pub fn burned_in_annotation() -> PlantedElement {
        PlantedElement::new(tags::BURNED_IN_ANNOTATION, VR::CS, "YES")
    }

    /// A private block: its creator `(0009,0010)` and one private attribute `(0009,1001)`.
    pub fn private_tag(creator: &str, value: &str) -> [PlantedElement; 2] {
        [
            PlantedElement::new(Tag(0x0009, 0x0010), VR::LO, creator),
            PlantedElement::new(Tag(0x0009, 0x1001), VR::LO, value),
        ]
    }
}

/// For tests only: a small, otherwise de-identified OP or OPT file for `subject` with `planted`
/// attributes added or replaced, as bytes.
///
/// Use it to check that the de-identification gate notices identity planted in DICOM attributes.
pub fn test_dicom_bytes(
    modality: TestModality,
    subject: &str,
    planted: &[PlantedElement],
) -> Result<Vec<u8>, SynthError> {
    let mut object = test_object(modality, subject)?;
    for element in planted {
        if element.tag.group() == 0x0002 {
            return Err(SynthError::InvalidSpec(
                "file meta attributes (group 0002) cannot be planted".to_owned(),
            ));
        }
        object.put(DataElement::new(
            element.tag,
            element.vr,
            PrimitiveValue::from(element.value.as_str()),
        ));
    }
    to_bytes(object)
}

/// For tests only: writes [`test_dicom_bytes`] to `path`.
pub fn write_test_dicom(
    path: &Path,
    modality: TestModality,
    subject: &str,
    planted: &[PlantedElement],
) -> Result<(), SynthError> {
    let bytes = test_dicom_bytes(modality, subject, planted)?;
    super::encode::write_file(path, &bytes)
}

fn test_object(modality: TestModality, subject: &str) -> Result<InMemDicomObject, SynthError> {
    const SIDE: u32 = 32;
    let eye = Eye::Od;
    // A gradient is enough: the gate looks at attributes, not pixels.
    let gray: Vec<u8> = (0..SIDE * SIDE).map(|index| (index % 256) as u8).collect();
    match modality {
        TestModality::Op => {
            let identity = DicomIdentity::derive(0, subject, "test", "fundus", eye);
            let rgb: Vec<u8> = gray
                .iter()
                .flat_map(|value| [*value, value / 2, value / 4])
                .collect();
            op_object(&identity, SIDE, SIDE, &rgb, Some(0.01))
        }
        TestModality::Opt => {
            let identity = DicomIdentity::derive(0, subject, "test", "oct", eye);
            let frames = vec![gray.clone(), gray.clone(), gray];
            opt_object(&identity, SIDE, SIDE, &frames, (0.0039, 0.0117), 0.12)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_object::OpenFileOptions;

    fn read(bytes: &[u8]) -> FileDicomObject<InMemDicomObject> {
        let mut cursor = std::io::Cursor::new(bytes.to_vec());
        // Skip the 128-byte preamble; `from_reader` expects the `DICM` magic first.
        cursor.set_position(128);
        OpenFileOptions::new()
            .from_reader(cursor)
            .expect("test object reads back")
    }

    fn text(object: &FileDicomObject<InMemDicomObject>, tag: Tag) -> String {
        object
            .element(tag)
            .ok()
            .and_then(|element| element.to_str().ok())
            .map(|value| value.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn uids_are_valid_and_reproducible() {
        let first = uid(1, &["a"]);
        assert_eq!(first, uid(1, &["a"]));
        assert_ne!(first, uid(2, &["a"]));
        assert!(first.starts_with("2.25.") && first.len() <= 64);
        assert!(first[5..].chars().all(|c| c.is_ascii_digit()) && !first[5..].starts_with('0'));
        assert_eq!(decimal(0.0039), "0.0039");
        assert_eq!(decimal(12.0), "12");
    }

    #[test]
    fn test_objects_plant_what_they_are_asked_to() {
        let mut planted = vec![
            PlantedElement::patient_name("DOE^JANE"),
            PlantedElement::institution_name("General Hospital"),
            PlantedElement::burned_in_annotation(),
        ];
        planted.extend(PlantedElement::private_tag("ACME 1.0", "secret"));
        let bytes = test_dicom_bytes(TestModality::Opt, "S0001", &planted).expect("writes");
        let object = read(&bytes);
        assert_eq!(text(&object, tags::PATIENT_NAME), "DOE^JANE");
        assert_eq!(text(&object, tags::PATIENT_ID), "S0001");
        assert_eq!(text(&object, tags::INSTITUTION_NAME), "General Hospital");
        assert_eq!(text(&object, tags::BURNED_IN_ANNOTATION), "YES");
        assert_eq!(text(&object, Tag(0x0009, 0x1001)), "secret");
        assert_eq!(text(&object, tags::NUMBER_OF_FRAMES), "3");

        let clean = read(&test_dicom_bytes(TestModality::Op, "S0002", &[]).expect("writes"));
        assert_eq!(text(&clean, tags::PATIENT_NAME), "S0002");
        assert_eq!(text(&clean, tags::BURNED_IN_ANNOTATION), "NO");
        assert_eq!(text(&clean, tags::PATIENT_IDENTITY_REMOVED), "YES");
        assert!(clean.element(tags::INSTITUTION_NAME).is_err());
        assert!(clean.element(tags::PATIENT_BIRTH_DATE).is_err());
        assert!(clean.element(tags::STUDY_DATE).is_err());
        assert_eq!(
            clean
                .meta()
                .media_storage_sop_class_uid()
                .trim_end_matches('\0'),
            uids::OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE
        );
        let meta_planted = [PlantedElement::new(Tag(0x0002, 0x0013), VR::SH, "X")];
        assert!(test_dicom_bytes(TestModality::Op, "S0003", &meta_planted).is_err());
    }
}
