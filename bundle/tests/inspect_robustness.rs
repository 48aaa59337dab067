//! Quick fuzz-style checks: truncated, mutated and random inputs of every format must give a
//! report or an `InspectError`, never a panic or a runaway allocation.
//! Long fuzzing runs are not part of the normal test command; these are a few thousand cases.

mod common;

use common::*;
use dicom_core::value::{DataSetSequence, PixelFragmentSequence, PrimitiveValue};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use rand::{Rng, SeedableRng};
use readroom_bundle::ImageLimits;
use readroom_bundle::inspect::inspect;

/// Runs `inspect` under a name that promises nothing, so the content decides the format.
fn survive(bytes: &[u8]) {
    let limits = ImageLimits {
        max_buffered_bytes: 1 << 20,
        ..ImageLimits::default()
    };
    let _ = inspect("sample", &mut &bytes[..], &limits);
}

fn jpeg_sample() -> Vec<u8> {
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&exif_block(&[
        ascii_field(exif::Tag::Artist, "Artist"),
        rational_field(exif::Tag::GPSLatitude, &[(1, 1), (2, 1), (3, 1)]),
    ]));
    jpeg_with_segments(
        &plain_jpeg(16, 8),
        &[
            (0xE1, app1),
            (
                0xE1,
                xmp_app1("<x:xmpmeta><dc:creator>a</dc:creator></x:xmpmeta>"),
            ),
            (0xED, photoshop_iptc_app13(&[(2, 80, "b")])),
            (0xFE, b"comment".to_vec()),
        ],
    )
}

fn png_sample() -> Vec<u8> {
    let mut ztxt = b"k\0\0".to_vec();
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, b"compressed").unwrap();
    ztxt.extend_from_slice(&encoder.finish().unwrap());
    png_with_trailing_chunks(
        &plain_png(8, 8),
        &[
            png_chunk(b"tEXt", b"Author\0x"),
            png_chunk(b"zTXt", &ztxt),
            png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<a:b>c</a:b>"),
            png_chunk(b"eXIf", &exif_block(&[ascii_field(exif::Tag::Artist, "y")])),
        ],
    )
}

fn tiff_sample() -> Vec<u8> {
    use tiff::encoder::{TiffEncoder, colortype};
    use tiff::tags::Tag as TiffTag;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut encoder = TiffEncoder::new(&mut out).unwrap();
    for _ in 0..2 {
        let mut image = encoder.new_image::<colortype::Gray16>(8, 4).unwrap();
        image
            .encoder()
            .write_tag(TiffTag::Artist, "someone")
            .unwrap();
        image
            .encoder()
            .write_tag(
                TiffTag::Unknown(700),
                &b"<x:xmpmeta><dc:creator>a</dc:creator></x:xmpmeta>"[..],
            )
            .unwrap();
        image.write_data(&[7u16; 32]).unwrap();
    }
    out.into_inner()
}

fn dicom_sample(transfer_syntax: &str, encapsulated: bool) -> Vec<u8> {
    let mut item = InMemDicomObject::new_empty();
    item.put(DataElement::new(tags::REQUESTED_PROCEDURE_ID, VR::SH, "RP"));
    let mut object = InMemDicomObject::from_element_iter([
        DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            "1.2.840.10008.5.1.4.1.1.77.1.5.1",
        ),
        DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, "2.25.1"),
        DataElement::new(tags::PATIENT_NAME, VR::PN, "A^B"),
        DataElement::new(Tag(0x0009, 0x0010), VR::LO, "X"),
        DataElement::new(Tag(0x0009, 0x1001), VR::LO, "Y"),
        DataElement::new(
            tags::REQUEST_ATTRIBUTES_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(vec![item], Length::UNDEFINED),
        ),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(2u16)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(2u16)),
    ]);
    if encapsulated {
        let fragments = PixelFragmentSequence::new(Vec::<u32>::new(), vec![vec![1u8, 2, 3, 4]]);
        object.put(DataElement::new(tags::PIXEL_DATA, VR::OB, fragments));
    } else {
        object.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PrimitiveValue::from(vec![1u8, 2, 3, 4]),
        ));
    }
    let file = object
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(transfer_syntax))
        .unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

fn samples() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("jpeg", jpeg_sample()),
        ("png", png_sample()),
        ("tiff", tiff_sample()),
        (
            "dicom explicit",
            dicom_sample(uids::EXPLICIT_VR_LITTLE_ENDIAN, false),
        ),
        (
            "dicom implicit",
            dicom_sample(uids::IMPLICIT_VR_LITTLE_ENDIAN, false),
        ),
        (
            "dicom encapsulated",
            dicom_sample(uids::JPEG_BASELINE8_BIT, true),
        ),
    ]
}

#[test]
fn samples_are_valid_to_begin_with() {
    for (name, bytes) in samples() {
        let limits = ImageLimits::default();
        inspect("sample", &mut &bytes[..], &limits).unwrap_or_else(|err| panic!("{name}: {err}"));
    }
}

#[test]
fn every_truncation_is_survived() {
    for (_name, bytes) in samples() {
        for len in 0..bytes.len() {
            survive(&bytes[..len]);
        }
    }
}

#[test]
fn random_mutations_are_survived() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5EED);
    for (_name, bytes) in samples() {
        for _ in 0..1500 {
            let mut mutated = bytes.clone();
            for _ in 0..rng.gen_range(1..=8) {
                let at = rng.gen_range(0..mutated.len());
                mutated[at] = match rng.gen_range(0..4) {
                    0 => 0xFF,
                    1 => 0x00,
                    2 => mutated[at] ^ (1 << rng.gen_range(0..8)),
                    _ => rng.r#gen(),
                };
            }
            survive(&mutated);
        }
    }
}

#[test]
fn random_bytes_behind_each_magic_are_survived() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut dicom_magic = vec![0u8; 128];
    dicom_magic.extend_from_slice(b"DICM");
    let magics: Vec<Vec<u8>> = vec![
        vec![0xFF, 0xD8, 0xFF],
        b"\x89PNG\r\n\x1a\n".to_vec(),
        b"II*\0".to_vec(),
        b"MM\0*".to_vec(),
        b"II+\0\x08\0\0\0".to_vec(),
        dicom_magic,
        b"{".to_vec(),
    ];
    for magic in &magics {
        for _ in 0..300 {
            let len = rng.gen_range(0..2048);
            let mut bytes = magic.clone();
            bytes.extend((0..len).map(|_| rng.r#gen::<u8>()));
            survive(&bytes);
        }
    }
}
