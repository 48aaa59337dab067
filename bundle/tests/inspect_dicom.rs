//! `inspect` on DICOM files: every non-pixel attribute with keyword and private flag, geometry,
//! pixel data skipped, and hostile lengths refused before allocation.

use dicom_core::value::{DataSetSequence, PixelFragmentSequence, PrimitiveValue};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use readroom_bundle::inspect::inspect;
use readroom_bundle::{DicomAttribute, FileReport, ImageFormat, ImageLimits, InspectError};

const OPHTHALMIC_PHOTOGRAPHY_8BIT: &str = "1.2.840.10008.5.1.4.1.1.77.1.5.1";

fn check(bytes: &[u8]) -> Result<FileReport, InspectError> {
    inspect("oct_od.dcm", &mut &bytes[..], &ImageLimits::default())
}

fn base_object(rows: u16, columns: u16, frames: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    item.put(DataElement::new(
        tags::REQUESTED_PROCEDURE_ID,
        VR::SH,
        "RP-99",
    ));
    item.put(DataElement::new(
        tags::SCHEDULED_PROCEDURE_STEP_ID,
        VR::SH,
        "SPS-7",
    ));
    let mut object = InMemDicomObject::from_element_iter([
        DataElement::new(tags::SOP_CLASS_UID, VR::UI, OPHTHALMIC_PHOTOGRAPHY_8BIT),
        DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, "2.25.123456789"),
        DataElement::new(tags::STUDY_DATE, VR::DA, "20240301"),
        DataElement::new(tags::MODALITY, VR::CS, "OP"),
        DataElement::new(tags::INSTITUTION_NAME, VR::LO, "Seoul Eye Hospital"),
        DataElement::new(tags::PATIENT_NAME, VR::PN, "HONG^GILDONG"),
        DataElement::new(tags::PATIENT_ID, VR::LO, "12345678"),
        DataElement::new(Tag(0x0009, 0x0010), VR::LO, "ACME OCT"),
        DataElement::new(Tag(0x0009, 0x1001), VR::LO, "operator kim"),
        DataElement::new(
            tags::REQUEST_ATTRIBUTES_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(vec![item], Length::UNDEFINED),
        ),
        DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
        DataElement::new(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        DataElement::new(tags::NUMBER_OF_FRAMES, VR::IS, frames),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(rows)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(columns)),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(8u16)),
        DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(8u16)),
        DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(7u16)),
        DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
        DataElement::new(Tag(0x7FE1, 0x0010), VR::LO, "TRAILING CREATOR"),
        DataElement::new(Tag(0x7FE1, 0x1001), VR::LO, "after the pixels"),
    ]);
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(vec![0x5Au8; 4 * 6 * 2]),
    ));
    object
}

fn write(object: InMemDicomObject, transfer_syntax: &str) -> Vec<u8> {
    let file = object
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(transfer_syntax))
        .unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

fn attribute<'r>(report: &'r FileReport, path: &str, tag: (u16, u16)) -> &'r DicomAttribute {
    let info = report.dicom.as_ref().unwrap();
    info.attributes
        .iter()
        .find(|attribute| attribute.path == path && attribute.tag == tag)
        .unwrap_or_else(|| {
            panic!(
                "no attribute {tag:04X?} at {path:?} in {:#?}",
                info.attributes
            )
        })
}

fn assert_standard_content(report: &FileReport) {
    assert_eq!(report.format, ImageFormat::Dicom);
    assert_eq!((report.width, report.height, report.frames), (6, 4, 2));
    assert_eq!((report.bits_per_sample, report.channels), (8, 1));
    let info = report.dicom.as_ref().unwrap();
    assert_eq!(info.sop_class_uid, OPHTHALMIC_PHOTOGRAPHY_8BIT);
    assert_eq!(info.modality, "OP");

    let name = attribute(report, "", (0x0010, 0x0010));
    assert_eq!(
        (
            name.keyword.as_str(),
            name.vr.as_str(),
            name.value.as_str(),
            name.private
        ),
        ("PatientName", "PN", "HONG^GILDONG", false)
    );
    assert_eq!(
        attribute(report, "", (0x0008, 0x0080)).value,
        "Seoul Eye Hospital"
    );
    assert_eq!(attribute(report, "", (0x0008, 0x0020)).keyword, "StudyDate");

    let creator = attribute(report, "", (0x0009, 0x0010));
    assert!(creator.private && creator.keyword.is_empty());
    assert_eq!(creator.value, "ACME OCT");
    let private = attribute(report, "", (0x0009, 0x1001));
    assert!(private.private && private.keyword.is_empty());
    assert_eq!(private.value, "operator kim");

    let sequence = attribute(report, "", (0x0040, 0x0275));
    assert_eq!(
        (
            sequence.keyword.as_str(),
            sequence.vr.as_str(),
            sequence.value.as_str()
        ),
        ("RequestAttributesSequence", "SQ", "1 item(s)")
    );
    let nested = attribute(report, "(0040,0275)[0]", (0x0040, 0x1001));
    assert_eq!(
        (nested.keyword.as_str(), nested.value.as_str()),
        ("RequestedProcedureID", "RP-99")
    );

    assert_eq!(
        attribute(report, "", (0x7FE1, 0x1001)).value,
        "after the pixels"
    );
    assert!(
        info.attributes
            .iter()
            .all(|attribute| attribute.tag != (0x7FE0, 0x0010)),
        "pixel data listed"
    );
    assert!(
        info.attributes
            .iter()
            .all(|attribute| attribute.tag.0 != 0x0002),
        "file meta listed"
    );
}

#[test]
fn explicit_little_endian_attributes_and_geometry() {
    let report = check(&write(
        base_object(4, 6, "2"),
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
    ))
    .unwrap();
    assert_standard_content(&report);
}

#[test]
fn implicit_little_endian_attributes_and_geometry() {
    let report = check(&write(
        base_object(4, 6, "2"),
        uids::IMPLICIT_VR_LITTLE_ENDIAN,
    ))
    .unwrap();
    assert_standard_content(&report);
    // Without explicit VRs, private elements are unknown bytes; their text still shows.
    assert_eq!(attribute(&report, "", (0x0009, 0x1001)).vr, "UN");
}

#[test]
fn encapsulated_pixel_data_is_skipped() {
    let mut object = base_object(4, 6, "2");
    let fragments = PixelFragmentSequence::new(
        Vec::<u32>::new(),
        vec![vec![0xFFu8, 0xD8, 0xFF, 0xD9], vec![1, 2, 3, 4]],
    );
    object.put(DataElement::new(tags::PIXEL_DATA, VR::OB, fragments));
    let report = check(&write(object, uids::JPEG_BASELINE8_BIT)).unwrap();
    assert_standard_content(&report);
}

#[test]
fn file_without_pixel_data_has_no_frames() {
    let mut object = base_object(4, 6, "1");
    object.remove_element(tags::PIXEL_DATA);
    let report = check(&write(object, uids::EXPLICIT_VR_LITTLE_ENDIAN)).unwrap();
    assert_eq!(report.frames, 0);
    assert_eq!(
        attribute(&report, "", (0x0010, 0x0010)).value,
        "HONG^GILDONG"
    );
}

#[test]
fn oversized_rows_and_columns_are_refused() {
    let err = check(&write(
        base_object(60_000, 60_000, "1"),
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
    ))
    .unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::ImageTooLarge {
                width: 60_000,
                height: 60_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("oct_od.dcm"), "{err}");
}

#[test]
fn too_many_frames_are_refused() {
    let err = check(&write(
        base_object(4, 6, "5000"),
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
    ))
    .unwrap_err();
    assert!(
        matches!(err, InspectError::TooManyFrames { frames: 5000, .. }),
        "{err}"
    );
}

/// Appends a raw explicit VR little endian element after everything else.
fn with_raw_element(
    mut bytes: Vec<u8>,
    tag: (u16, u16),
    vr: &[u8; 2],
    length: u32,
    value: &[u8],
) -> Vec<u8> {
    bytes.extend_from_slice(&tag.0.to_le_bytes());
    bytes.extend_from_slice(&tag.1.to_le_bytes());
    bytes.extend_from_slice(vr);
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&length.to_le_bytes());
    bytes.extend_from_slice(value);
    bytes
}

#[test]
fn a_4_gib_element_length_is_refused_without_allocating() {
    let bytes = write(base_object(4, 6, "1"), uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let bytes = with_raw_element(bytes, (0x7FE1, 0x1010), b"OB", 0xFFFF_FFF0, b"tiny");
    let err = check(&bytes).unwrap_err();
    assert!(
        matches!(err, InspectError::TooLargeToInspect { .. }),
        "{err}"
    );
}

#[test]
fn a_length_past_the_end_of_the_file_is_truncation() {
    let bytes = write(base_object(4, 6, "1"), uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let bytes = with_raw_element(bytes, (0x7FE1, 0x1010), b"OB", 60 << 20, b"tiny");
    let err = check(&bytes).unwrap_err();
    assert!(matches!(err, InspectError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn deep_sequence_nesting_is_refused() {
    let mut item = InMemDicomObject::new_empty();
    for _ in 0..40 {
        let mut parent = InMemDicomObject::new_empty();
        parent.put(DataElement::new(
            tags::REQUEST_ATTRIBUTES_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(vec![item], Length::UNDEFINED),
        ));
        item = parent;
    }
    let mut object = base_object(4, 6, "1");
    object.put(DataElement::new(
        tags::REFERENCED_SERIES_SEQUENCE,
        VR::SQ,
        DataSetSequence::new(vec![item], Length::UNDEFINED),
    ));
    let err = check(&write(object, uids::EXPLICIT_VR_LITTLE_ENDIAN)).unwrap_err();
    assert!(matches!(err, InspectError::Unsupported { .. }), "{err}");
}

#[test]
fn dicom_without_preamble_named_dcm_is_a_mismatch() {
    let bytes = write(base_object(4, 6, "1"), uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let err = check(&bytes[128..]).unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::FormatMismatch {
                expected: ImageFormat::Dicom,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn big_header_over_the_buffer_limit_is_refused() {
    let limits = ImageLimits {
        max_buffered_bytes: 200,
        ..ImageLimits::default()
    };
    let bytes = write(base_object(4, 6, "1"), uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let err = inspect("oct_od.dcm", &mut &bytes[..], &limits).unwrap_err();
    assert!(
        matches!(err, InspectError::TooLargeToInspect { limit: 200, .. }),
        "{err}"
    );
}
