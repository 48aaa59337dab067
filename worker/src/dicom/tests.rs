//! DICOM decoding: objects written in memory with `dicom-object` (and the bundle crate's
//! synthetic OP/OPT writer), read back through the worker's path.

use dicom_core::value::PixelFragmentSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use readroom_bundle::synth::dicom::{DicomIdentity, op_object, opt_object, to_bytes};
use readroom_domain::manifest::Eye;

use super::*;

pub(crate) fn identity() -> DicomIdentity {
    DicomIdentity::derive(1, "S0001", "V1", "oct", Eye::Od)
}

/// `frames` B-scans of `width`×`height`, each a distinct pattern.
pub(crate) fn bscans(width: u32, height: u32, frames: u32) -> Vec<Vec<u8>> {
    (0..frames)
        .map(|f| {
            (0..width * height)
                .map(|i| ((i % width) * 3 + (i / width) * 5 + f * 40) as u8)
                .collect()
        })
        .collect()
}

/// A native 8-bit multi-frame OPT file.
pub(crate) fn opt_bytes(width: u32, height: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let object = opt_object(&identity(), width, height, frames, (0.0039, 0.0117), 0.12).unwrap();
    to_bytes(object).unwrap()
}

/// An object written with another transfer syntax.
fn with_syntax(object: InMemDicomObject, ts: &str) -> Vec<u8> {
    let file = object
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(ts))
        .unwrap();
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).unwrap();
    bytes
}

fn put_u16(object: &mut InMemDicomObject, tag: dicom_core::Tag, value: u16) {
    object.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

fn encapsulate(object: &mut InMemDicomObject, fragments: Vec<Vec<u8>>) {
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PixelFragmentSequence::new(Vec::<u32>::new(), fragments),
    ));
}

/// PackBits, as DICOM RLE segments use it: repeat runs for 3+ equal bytes, literals otherwise.
fn packbits(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let mut run = 1;
        while i + run < data.len() && data[i + run] == data[i] && run < 128 {
            run += 1;
        }
        if run >= 3 {
            out.push((1i16 - run as i16) as i8 as u8);
            out.push(data[i]);
            i += run;
        } else {
            let start = i;
            while i < data.len() && i - start < 128 {
                if i + 2 < data.len() && data[i] == data[i + 1] && data[i] == data[i + 2] {
                    break;
                }
                i += 1;
            }
            out.push((i - start - 1) as u8);
            out.extend_from_slice(&data[start..i]);
        }
    }
    if out.len() % 2 == 1 {
        out.push(0x80);
    }
    out
}

/// One RLE fragment from segments (most significant byte first per sample).
fn rle_fragment(segments: &[Vec<u8>]) -> Vec<u8> {
    let encoded: Vec<Vec<u8>> = segments.iter().map(|s| packbits(s)).collect();
    let mut header = vec![0u8; 64];
    header[..4].copy_from_slice(&(segments.len() as u32).to_le_bytes());
    let mut offset = 64u32;
    for (n, segment) in encoded.iter().enumerate() {
        header[4 + 4 * n..8 + 4 * n].copy_from_slice(&offset.to_le_bytes());
        offset += segment.len() as u32;
    }
    let mut fragment = header;
    for segment in encoded {
        fragment.extend_from_slice(&segment);
    }
    fragment
}

fn gray8(image: &DecodedImage) -> &[u8] {
    match &image.pixels {
        Pixels::Gray8(p) => p,
        _ => panic!("expected 8-bit grey, got {image:?}"),
    }
}

#[test]
fn a_native_opt_gives_its_frames_and_spacing() {
    let frames = bscans(32, 24, 5);
    let bytes = opt_bytes(32, 24, &frames);
    let header = read_header("oct_od.dcm", &bytes, true).unwrap().unwrap();
    assert_eq!((header.columns, header.rows, header.frames), (32, 24, 5));
    // PixelSpacing is row \ column (axial \ lateral) in mm; the column spacing is used.
    assert!((header.pixel_spacing_um.unwrap() - 11.7).abs() < 1e-9);
    // The row spacing of an OPT frame is axial (depth), not the lateral column spacing.
    assert!((header.row_spacing_um.unwrap() - 3.9).abs() < 1e-9);
    let volume = DicomVolume::parse("oct_od.dcm", &bytes).unwrap();
    for n in [0, 3, 4] {
        let image = volume.frame(n).unwrap();
        assert_eq!((image.width, image.height), (32, 24));
        assert_eq!(gray8(&image), frames[n as usize].as_slice(), "frame {n}");
    }
    assert!(matches!(
        volume.frame(5),
        Err(ImageError::NotAvailable(message)) if message.contains("oct_od.dcm")
    ));
}

#[test]
fn the_header_is_read_from_a_prefix_or_asks_for_more() {
    let bytes = opt_bytes(32, 24, &bscans(32, 24, 3));
    let pixel_data = bytes
        .windows(4)
        .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00])
        .unwrap();
    assert!(pixel_data + 12 < 2048 && 2048 < bytes.len());
    let header = read_header("oct.dcm", &bytes[..2048], false)
        .unwrap()
        .expect("the header fits in 2 KiB");
    assert_eq!(header.frames, 3);
    // Cut inside the header: not an error while only a prefix was read.
    assert_eq!(read_header("oct.dcm", &bytes[..300], false).unwrap(), None);
    let err = read_header("oct.dcm", &bytes[..300], true).unwrap_err();
    assert!(
        matches!(&err, ImageError::Decode { entry, detail } if entry == "oct.dcm" && detail.contains("truncated")),
        "{err}"
    );
}

#[test]
fn a_native_op_decodes_to_rgb() {
    let rgb: Vec<u8> = (0..16 * 8 * 3).map(|i| (i * 7 % 256) as u8).collect();
    let object = op_object(
        &DicomIdentity::derive(1, "S0001", "V1", "fundus", Eye::Os),
        16,
        8,
        &rgb,
        Some(0.0065),
    )
    .unwrap();
    let bytes = to_bytes(object).unwrap();
    let volume = DicomVolume::parse("fundus_os.dcm", &bytes).unwrap();
    assert!((volume.header().pixel_spacing_um.unwrap() - 6.5).abs() < 1e-9);
    let image = volume.frame(0).unwrap();
    assert!(image.pixels == Pixels::Rgb8(rgb));
}

#[test]
fn a_header_claiming_huge_sizes_is_refused_before_decoding() {
    let frames = bscans(8, 8, 2);
    let mut object = opt_object(&identity(), 8, 8, &frames, (0.004, 0.012), 0.1).unwrap();
    // Rows and Columns are US (at most 65535) in a valid file; a writer can still put UL.
    object.put(DataElement::new(
        tags::ROWS,
        VR::UL,
        PrimitiveValue::from(100_000u32),
    ));
    object.put(DataElement::new(
        tags::COLUMNS,
        VR::UL,
        PrimitiveValue::from(100_000u32),
    ));
    let bytes = to_bytes(object).unwrap();
    for err in [
        read_header("big.dcm", &bytes, true).unwrap_err(),
        DicomVolume::parse("big.dcm", &bytes).unwrap_err(),
    ] {
        match err {
            ImageError::TooLarge { entry, detail } => {
                assert_eq!(entry, "big.dcm");
                assert!(detail.contains("100000×100000"), "{detail}");
            }
            other => panic!("expected TooLarge, got {other}"),
        }
    }

    // Within the side limit, but the volume is over the decoded-bytes limit.
    let mut object = opt_object(&identity(), 8, 8, &frames, (0.004, 0.012), 0.1).unwrap();
    put_u16(&mut object, tags::ROWS, 16_000);
    put_u16(&mut object, tags::COLUMNS, 16_000);
    object.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("3"),
    ));
    let err = DicomVolume::parse("wide.dcm", &to_bytes(object).unwrap()).unwrap_err();
    assert!(
        matches!(&err, ImageError::TooLarge { entry, detail } if entry == "wide.dcm" && detail.contains("limit")),
        "{err}"
    );

    // Too many frames.
    let mut object = opt_object(&identity(), 8, 8, &frames, (0.004, 0.012), 0.1).unwrap();
    object.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("100000"),
    ));
    let err = read_header("many.dcm", &to_bytes(object).unwrap(), true).unwrap_err();
    assert!(matches!(err, ImageError::TooLarge { .. }), "{err}");
}

#[test]
fn a_value_longer_than_the_file_is_refused_without_allocating_it() {
    let bytes = opt_bytes(8, 8, &bscans(8, 8, 2));
    // Patch the pixel data's declared length (explicit VR LE: tag, "OB", 2 reserved, u32) to
    // almost 4 GiB.
    let tag = [0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0];
    let at = bytes
        .windows(tag.len())
        .rposition(|w| w == tag)
        .expect("pixel data header");
    let mut patched = bytes.clone();
    patched[at + 8..at + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let err = DicomVolume::parse("oct.dcm", &patched).unwrap_err();
    assert!(
        matches!(&err, ImageError::Decode { entry, detail } if entry == "oct.dcm" && detail.contains("truncated")),
        "{err}"
    );
}

#[test]
fn a_truncated_file_names_the_entry() {
    let bytes = opt_bytes(32, 24, &bscans(32, 24, 3));
    for cut in [bytes.len() - 100, bytes.len() / 2, 140, 100] {
        let err = DicomVolume::parse("oct_os.dcm", &bytes[..cut]).unwrap_err();
        match err {
            ImageError::Decode { entry, .. } => assert_eq!(entry, "oct_os.dcm", "cut {cut}"),
            other => panic!("cut {cut}: {other}"),
        }
    }
}

#[test]
fn rle_frames_decode_8_and_16_bit() {
    let (w, h) = (20u32, 10u32);
    let frames = bscans(w, h, 3);
    let mut object = opt_object(&identity(), w, h, &frames, (0.004, 0.012), 0.1).unwrap();
    encapsulate(
        &mut object,
        frames
            .iter()
            .map(|f| rle_fragment(std::slice::from_ref(f)))
            .collect(),
    );
    let bytes = with_syntax(object, uids::RLE_LOSSLESS);
    let volume = DicomVolume::parse("oct.dcm", &bytes).unwrap();
    for n in 0..3 {
        assert_eq!(
            gray8(&volume.frame(n).unwrap()),
            frames[n as usize].as_slice()
        );
    }

    // 12 bits stored in 16: two segments per frame (high bytes, then low bytes), scaled to the
    // full 16-bit range.
    let words: Vec<u16> = (0..w * h).map(|i| (i * 37 % 4096) as u16).collect();
    let high: Vec<u8> = words.iter().map(|v| (v >> 8) as u8).collect();
    let low: Vec<u8> = words.iter().map(|v| *v as u8).collect();
    let mut object = opt_object(&identity(), w, h, &frames[..1], (0.004, 0.012), 0.1).unwrap();
    put_u16(&mut object, tags::BITS_ALLOCATED, 16);
    put_u16(&mut object, tags::BITS_STORED, 12);
    put_u16(&mut object, tags::HIGH_BIT, 11);
    encapsulate(&mut object, vec![rle_fragment(&[high, low])]);
    let bytes = with_syntax(object, uids::RLE_LOSSLESS);
    let image = DicomVolume::parse("oct16.dcm", &bytes)
        .unwrap()
        .frame(0)
        .unwrap();
    let expected: Vec<u16> = words
        .iter()
        .map(|v| (u32::from(*v) * 65535 / 4095) as u16)
        .collect();
    assert!(image.pixels == Pixels::Gray16(expected));
}

#[test]
fn a_damaged_rle_fragment_is_an_error_not_a_panic() {
    let (w, h) = (16u32, 8u32);
    let frames = bscans(w, h, 1);
    let good = rle_fragment(&[frames[0].clone()]);
    let damaged = [
        good[..40].to_vec(),             // shorter than the header
        good[..good.len() / 2].to_vec(), // segment cut short
        {
            let mut f = good.clone();
            f[0] = 15; // more segments than one sample needs
            f
        },
        {
            let mut f = good.clone();
            f[4..8].copy_from_slice(&u32::MAX.to_le_bytes()); // offset outside the fragment
            f
        },
    ];
    for (n, fragment) in damaged.into_iter().enumerate() {
        let mut object = opt_object(&identity(), w, h, &frames, (0.004, 0.012), 0.1).unwrap();
        encapsulate(&mut object, vec![fragment]);
        let bytes = with_syntax(object, uids::RLE_LOSSLESS);
        let err = DicomVolume::parse("oct.dcm", &bytes)
            .and_then(|v| v.frame(0))
            .unwrap_err();
        assert!(
            matches!(&err, ImageError::Decode { entry, .. } if entry == "oct.dcm"),
            "case {n}: {err}"
        );
    }
}

fn jpeg_op(width: u32, height: u32, rgb: &[u8], jpeg: Vec<u8>) -> Vec<u8> {
    let mut object = op_object(
        &DicomIdentity::derive(1, "S0001", "V1", "fundus", Eye::Od),
        width,
        height,
        rgb,
        None,
    )
    .unwrap();
    object.put(DataElement::new(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        PrimitiveValue::from("YBR_FULL_422"),
    ));
    encapsulate(&mut object, vec![jpeg]);
    with_syntax(object, uids::JPEG_BASELINE8_BIT)
}

fn encode_jpeg(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode(rgb, width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    if jpeg.len() % 2 == 1 {
        jpeg.push(0);
    }
    jpeg
}

#[test]
fn a_jpeg_baseline_op_decodes_close_to_its_source() {
    let (w, h) = (48u32, 32u32);
    let rgb: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            [(x * 5) as u8, (y * 7) as u8, 120]
        })
        .collect();
    let bytes = jpeg_op(w, h, &rgb, encode_jpeg(w, h, &rgb));
    let image = DicomVolume::parse("fundus.dcm", &bytes)
        .unwrap()
        .frame(0)
        .unwrap();
    let Pixels::Rgb8(decoded) = &image.pixels else {
        panic!("expected RGB, got {image:?}");
    };
    let error: f64 = decoded
        .iter()
        .zip(&rgb)
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / rgb.len() as f64;
    assert!(error < 4.0, "mean error {error}");
}

#[test]
fn a_jpeg_larger_than_its_header_is_refused() {
    let (w, h) = (16u32, 16u32);
    let rgb = vec![100u8; (w * h * 3) as usize];
    // The fragment holds a 64×64 JPEG; the header says 16×16.
    let big = encode_jpeg(64, 64, &vec![100u8; 64 * 64 * 3]);
    let bytes = jpeg_op(w, h, &rgb, big);
    let err = DicomVolume::parse("fundus.dcm", &bytes)
        .unwrap()
        .frame(0)
        .unwrap_err();
    assert!(
        matches!(&err, ImageError::Decode { entry, detail } if entry == "fundus.dcm" && detail.contains("64×64")),
        "{err}"
    );
}

#[test]
fn grey_conversion_handles_monochrome1_signed_and_short_depths() {
    let header =
        |bits_allocated: u16, bits_stored: u16, signed: bool, photometric: &str| DicomHeader {
            rows: 1,
            columns: 4,
            frames: 1,
            samples: 1,
            bits_allocated,
            bits_stored,
            signed,
            photometric: photometric.to_owned(),
            planar: false,
            pixel_spacing_um: None,
            row_spacing_um: None,
            transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.to_owned(),
        };
    let image = convert("a", &header(8, 8, false, "MONOCHROME1"), &[0, 1, 128, 255]).unwrap();
    assert!(image.pixels == Pixels::Gray8(vec![255, 254, 127, 0]));
    // Signed 8-bit: -128 → 0, -1 → 127, 0 → 128, 127 → 255.
    let image = convert(
        "a",
        &header(8, 8, true, "MONOCHROME2"),
        &[0x80, 0xFF, 0, 0x7F],
    )
    .unwrap();
    assert!(image.pixels == Pixels::Gray8(vec![0, 127, 128, 255]));
    // 10 bits stored: 1023 is white; bits above the stored ones are ignored.
    let raw: Vec<u8> = [0u16, 1023, 512, 0xFC00 | 1023]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let image = convert("a", &header(16, 10, false, "MONOCHROME2"), &raw).unwrap();
    assert!(image.pixels == Pixels::Gray16(vec![0, 65535, 32799, 65535]));
    assert!(matches!(
        convert("a", &header(8, 8, false, "PALETTE COLOR"), &[0; 4]),
        Err(ImageError::Decode { .. })
    ));
}

#[test]
fn planar_and_ybr_colour_become_interleaved_rgb() {
    let mut h = DicomHeader {
        rows: 1,
        columns: 2,
        frames: 1,
        samples: 3,
        bits_allocated: 8,
        bits_stored: 8,
        signed: false,
        photometric: "RGB".to_owned(),
        planar: true,
        pixel_spacing_um: None,
        row_spacing_um: None,
        transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.to_owned(),
    };
    let image = convert("a", &h, &[1, 2, 3, 4, 5, 6]).unwrap();
    assert!(image.pixels == Pixels::Rgb8(vec![1, 3, 5, 2, 4, 6]));
    h.planar = false;
    h.photometric = "YBR_FULL".to_owned();
    let image = convert("a", &h, &[128, 128, 128, 255, 128, 128]).unwrap();
    assert!(image.pixels == Pixels::Rgb8(vec![128, 128, 128, 255, 255, 255]));
}

#[test]
fn rle_colour_is_interleaved_whatever_the_planar_configuration() {
    let (w, h) = (6u32, 4u32);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 11 % 256) as u8).collect();
    let planes: Vec<Vec<u8>> = (0..3)
        .map(|c| rgb.iter().skip(c).step_by(3).copied().collect())
        .collect();
    for planar in [0u16, 1] {
        let mut object = op_object(
            &DicomIdentity::derive(1, "S0001", "V1", "fundus", Eye::Od),
            w,
            h,
            &rgb,
            None,
        )
        .unwrap();
        put_u16(&mut object, tags::PLANAR_CONFIGURATION, planar);
        encapsulate(&mut object, vec![rle_fragment(&planes)]);
        let bytes = with_syntax(object, uids::RLE_LOSSLESS);
        let image = DicomVolume::parse("fundus.dcm", &bytes)
            .unwrap()
            .frame(0)
            .unwrap();
        assert!(image.pixels == Pixels::Rgb8(rgb.clone()), "planar {planar}");
    }
}
