//! `inspect` on JPEG, PNG, TIFF and non-image files: geometry from headers, every metadata item,
//! and refusals.

mod common;

use common::*;
use readroom_bundle::inspect::inspect;
use readroom_bundle::{FileReport, ImageFormat, ImageLimits, InspectError};

fn check(path: &str, bytes: &[u8]) -> Result<FileReport, InspectError> {
    inspect(path, &mut &bytes[..], &ImageLimits::default())
}

fn keys(report: &FileReport) -> Vec<(String, String)> {
    report
        .metadata
        .iter()
        .map(|item| (item.container.to_owned(), item.key.clone()))
        .collect()
}

#[test]
fn plain_jpeg_geometry_and_no_metadata() {
    let report = check("fundus_od.jpg", &plain_jpeg(64, 48)).unwrap();
    assert_eq!(report.format, ImageFormat::Jpeg);
    assert_eq!((report.width, report.height, report.frames), (64, 48, 1));
    assert_eq!((report.bits_per_sample, report.channels), (8, 1));
    assert!(report.metadata.is_empty(), "{:?}", report.metadata);
    assert!(report.dicom.is_none());
}

#[test]
fn jpeg_exif_gps_and_artist_are_reported() {
    let exif = exif_block(&[
        ascii_field(exif::Tag::Artist, "Dr. Hong Gildong"),
        ascii_field(exif::Tag::DateTimeOriginal, "2024:03:01 09:30:00"),
        ascii_field(exif::Tag::BodySerialNumber, "SN-4411"),
        ascii_field(exif::Tag::GPSLatitudeRef, "N"),
        rational_field(exif::Tag::GPSLatitude, &[(37, 1), (33, 1), (5999, 100)]),
    ]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&exif);
    let jpeg = jpeg_with_segments(&plain_jpeg(32, 32), &[(0xE1, app1)]);
    let report = check("fundus.jpg", &jpeg).unwrap();
    assert_eq!(item(&report, "EXIF", "Artist"), Some("Dr. Hong Gildong"));
    assert_eq!(
        item(&report, "EXIF", "DateTimeOriginal"),
        Some("2024:03:01 09:30:00")
    );
    assert_eq!(item(&report, "EXIF", "BodySerialNumber"), Some("SN-4411"));
    assert_eq!(item(&report, "EXIF", "GPSLatitudeRef"), Some("N"));
    let latitude = item(&report, "EXIF", "GPSLatitude").unwrap();
    assert!(
        latitude.contains("37") && latitude.contains("33"),
        "{latitude}"
    );
    assert_eq!((report.width, report.height), (32, 32));
}

#[test]
fn jpeg_xmp_iptc_and_comments_are_reported() {
    let packet = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" photoshop:DateCreated="2024-03-01">
<dc:creator><rdf:Seq><rdf:li>Kim Minsu</rdf:li></rdf:Seq></dc:creator>
</rdf:Description></rdf:RDF></x:xmpmeta>"#;
    let jpeg = jpeg_with_segments(
        &plain_jpeg(16, 16),
        &[
            (0xE1, xmp_app1(packet)),
            (
                0xED,
                photoshop_iptc_app13(&[
                    (2, 80, "Lee Jiwon"),
                    (2, 5, "Patient 12345"),
                    (2, 55, "20240301"),
                ]),
            ),
            (0xFE, b"scanned at Seoul Eye Clinic".to_vec()),
        ],
    );
    let report = check("fundus.jpg", &jpeg).unwrap();
    assert_eq!(item(&report, "XMP", "dc:creator"), Some("Kim Minsu"));
    assert_eq!(
        item(&report, "XMP", "photoshop:DateCreated"),
        Some("2024-03-01")
    );
    assert_eq!(item(&report, "IPTC", "2:80 By-line"), Some("Lee Jiwon"));
    assert_eq!(
        item(&report, "IPTC", "2:05 Object Name"),
        Some("Patient 12345")
    );
    assert_eq!(item(&report, "IPTC", "2:55 Date Created"), Some("20240301"));
    assert_eq!(
        item(&report, "JPEG COM", "Comment"),
        Some("scanned at Seoul Eye Clinic")
    );
}

#[test]
fn jpeg_bytes_after_the_end_of_image_are_reported() {
    let mut jpeg = plain_jpeg(8, 8);
    jpeg.extend_from_slice(b"hidden trailer with a name");
    let report = check("a.jpg", &jpeg).unwrap();
    assert_eq!(
        item(&report, "JPEG trailer", "TrailingData"),
        Some("26 bytes after the end-of-image marker")
    );
}

#[test]
fn comment_after_the_scan_data_is_found() {
    let jpeg = plain_jpeg(8, 8);
    let eoi = jpeg.len() - 2;
    let mut with_comment = jpeg[..eoi].to_vec();
    with_comment.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x06]);
    with_comment.extend_from_slice(b"Park");
    with_comment.extend_from_slice(&jpeg[eoi..]);
    let report = check("a.jpg", &with_comment).unwrap();
    assert_eq!(item(&report, "JPEG COM", "Comment"), Some("Park"));
}

#[test]
fn retina_fixture_is_inspected() {
    // The workspace's shared fixture (CC0, see tests/fixtures/SOURCES.md).
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/retina.jpg");
    let bytes = std::fs::read(path).expect("tests/fixtures/retina.jpg is part of the repository");
    let report = check("fundus_od.jpg", &bytes).unwrap();
    assert_eq!(report.format, ImageFormat::Jpeg);
    assert!(
        report.width > 100 && report.height > 100,
        "{}x{}",
        report.width,
        report.height
    );
    assert_eq!(report.frames, 1);
}

#[test]
fn png_text_chunks_after_image_data_are_reported() {
    let mut ztxt = b"Comment\0\0".to_vec();
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, b"seen by Dr. Choi").unwrap();
    ztxt.extend_from_slice(&encoder.finish().unwrap());
    let itxt =
        b"Title\0\0\0ko\0\xEC\xA0\x9C\xEB\xAA\xA9\0\xEB\xB0\x95\xEC\xA7\x80\xEB\xAF\xBC".to_vec();
    let png = png_with_trailing_chunks(
        &plain_png(20, 10),
        &[
            png_chunk(b"tEXt", b"Author\0Hong Gildong"),
            png_chunk(b"zTXt", &ztxt),
            png_chunk(b"iTXt", &itxt),
            png_chunk(b"tIME", &[0x07, 0xE8, 3, 1, 9, 30, 0]),
        ],
    );
    let report = check("slo_od.png", &png).unwrap();
    assert_eq!(report.format, ImageFormat::Png);
    assert_eq!(
        (
            report.width,
            report.height,
            report.bits_per_sample,
            report.channels
        ),
        (20, 10, 8, 1)
    );
    assert_eq!(item(&report, "PNG tEXt", "Author"), Some("Hong Gildong"));
    assert_eq!(
        item(&report, "PNG zTXt", "Comment"),
        Some("seen by Dr. Choi")
    );
    assert_eq!(item(&report, "PNG iTXt", "Title"), Some("박지민"));
    assert_eq!(
        item(&report, "PNG iTXt", "Title (translated keyword)"),
        Some("제목")
    );
    assert_eq!(
        item(&report, "PNG tIME", "tIME"),
        Some("2024-03-01 09:30:00")
    );
}

#[test]
fn png_xmp_and_exif_chunks_are_reported() {
    let mut itxt = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
    itxt.extend_from_slice(br#"<x:xmpmeta><rdf:RDF><rdf:Description xmp:CreatorTool="Eye Scanner 3" dc:title="Jung"/></rdf:RDF></x:xmpmeta>"#);
    let exif = exif_block(&[ascii_field(exif::Tag::Copyright, "Busan Hospital")]);
    let png = png_with_trailing_chunks(
        &plain_png(4, 4),
        &[png_chunk(b"iTXt", &itxt), png_chunk(b"eXIf", &exif)],
    );
    let report = check("a.png", &png).unwrap();
    assert_eq!(
        item(&report, "XMP", "xmp:CreatorTool"),
        Some("Eye Scanner 3")
    );
    assert_eq!(item(&report, "XMP", "dc:title"), Some("Jung"));
    assert_eq!(item(&report, "EXIF", "Copyright"), Some("Busan Hospital"));
}

#[test]
fn png_raw_profile_text_is_decoded() {
    let exif = exif_block(&[ascii_field(exif::Tag::Artist, "Yoon")]);
    let hex: String = exif.iter().map(|byte| format!("{byte:02x}")).collect();
    let text = format!("Raw profile type exif\0\nexif\n{:8}\n{hex}\n", exif.len());
    let png = png_with_trailing_chunks(&plain_png(4, 4), &[png_chunk(b"tEXt", text.as_bytes())]);
    let report = check("a.png", &png).unwrap();
    assert_eq!(item(&report, "EXIF", "Artist"), Some("Yoon"));
    assert!(item(&report, "PNG tEXt", "Raw profile type exif").is_some());
}

#[test]
fn png_header_claiming_100000_squared_is_refused_before_allocation() {
    let err = check("huge.png", &png_header_only(100_000, 100_000)).unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::ImageTooLarge {
                width: 100_000,
                height: 100_000,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("huge.png") && message.contains("100000x100000"),
        "{message}"
    );
}

#[test]
fn png_with_a_bad_crc_is_malformed() {
    let mut png = plain_png(4, 4);
    png[29] ^= 0xFF; // inside the IHDR CRC
    let err = check("a.png", &png).unwrap_err();
    assert!(matches!(err, InspectError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("CRC"), "{err}");
}

#[test]
fn apng_frame_count_is_reported_and_limited() {
    let mut actl = 3u32.to_be_bytes().to_vec();
    actl.extend_from_slice(&0u32.to_be_bytes());
    let png = plain_png(4, 4);
    let mut apng = png[..33].to_vec();
    apng.extend_from_slice(&png_chunk(b"acTL", &actl));
    apng.extend_from_slice(&png[33..]);
    assert_eq!(check("a.png", &apng).unwrap().frames, 3);
    let limits = ImageLimits {
        max_frames: 2,
        ..ImageLimits::default()
    };
    let err = inspect("a.png", &mut &apng[..], &limits).unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::TooManyFrames {
                frames: 3,
                limit: 2,
                ..
            }
        ),
        "{err}"
    );
}

fn tiff_16bit(artist: &str, pages: usize) -> Vec<u8> {
    use tiff::encoder::{TiffEncoder, colortype};
    use tiff::tags::Tag;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut encoder = TiffEncoder::new(&mut out).unwrap();
    let pixels: Vec<u16> = (0..24 * 16).map(|index| (index * 97) as u16).collect();
    for _ in 0..pages {
        let mut image = encoder.new_image::<colortype::Gray16>(24, 16).unwrap();
        image.encoder().write_tag(Tag::Artist, artist).unwrap();
        image
            .encoder()
            .write_tag(Tag::Software, "OCT Export 2.1")
            .unwrap();
        image
            .encoder()
            .write_tag(Tag::Unknown(316), "WS-CLINIC-07")
            .unwrap();
        image.write_data(&pixels).unwrap();
    }
    out.into_inner()
}

#[test]
fn tiff_16bit_artist_and_ascii_tags_are_reported() {
    let report = check("oct_b0.tif", &tiff_16bit("Dr. Seo", 1)).unwrap();
    assert_eq!(report.format, ImageFormat::Tiff);
    assert_eq!((report.width, report.height, report.frames), (24, 16, 1));
    assert_eq!((report.bits_per_sample, report.channels), (16, 1));
    assert_eq!(item(&report, "TIFF", "Artist"), Some("Dr. Seo"));
    assert_eq!(item(&report, "TIFF", "Software"), Some("OCT Export 2.1"));
    assert_eq!(item(&report, "TIFF", "HostComputer"), Some("WS-CLINIC-07"));
}

#[test]
fn multipage_tiff_counts_pages_and_reports_every_page() {
    let report = check("volume.tiff", &tiff_16bit("Dr. Seo", 3)).unwrap();
    assert_eq!(report.frames, 3);
    let artists = report
        .metadata
        .iter()
        .filter(|item| item.key == "Artist")
        .count();
    assert_eq!(artists, 3);
    let limits = ImageLimits {
        max_frames: 2,
        ..ImageLimits::default()
    };
    let tiff = tiff_16bit("x", 3);
    let err = inspect("volume.tiff", &mut &tiff[..], &limits).unwrap_err();
    assert!(matches!(err, InspectError::TooManyFrames { .. }), "{err}");
}

#[test]
fn tiff_over_the_buffer_limit_is_refused() {
    let limits = ImageLimits {
        max_buffered_bytes: 100,
        ..ImageLimits::default()
    };
    let tiff = tiff_16bit("x", 1);
    let err = inspect("big.tif", &mut &tiff[..], &limits).unwrap_err();
    assert!(
        matches!(err, InspectError::TooLargeToInspect { limit: 100, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("big.tif"), "{err}");
}

#[test]
fn tiff_with_exif_sub_directory_is_reported() {
    use tiff::encoder::{TiffEncoder, colortype};
    use tiff::tags::Tag;
    // Build the image, then append an Exif IFD by hand and point tag 34665 at it.
    let mut out = std::io::Cursor::new(Vec::new());
    let mut encoder = TiffEncoder::new(&mut out).unwrap();
    let mut image = encoder.new_image::<colortype::Gray8>(4, 4).unwrap();
    // Placeholder offset, patched below once the Exif IFD's position is known.
    image
        .encoder()
        .write_tag(Tag::Unknown(34665), 0xDEAD_BEEFu32)
        .unwrap();
    image.write_data(&[0u8; 16]).unwrap();
    let mut tiff = out.into_inner();
    while tiff.len() % 2 == 1 {
        tiff.push(0);
    }
    let exif_ifd = tiff.len() as u32;
    // One entry: CameraOwnerName (0xA430), ASCII, "Ahn\0" inline.
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0xA430u16.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&4u32.to_le_bytes());
    tiff.extend_from_slice(b"Ahn\0");
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let placeholder = 0xDEAD_BEEFu32.to_le_bytes();
    let at = tiff
        .windows(4)
        .position(|window| window == placeholder)
        .unwrap();
    tiff[at..at + 4].copy_from_slice(&exif_ifd.to_le_bytes());
    let report = check("a.tif", &tiff).unwrap();
    assert_eq!(item(&report, "EXIF", "CameraOwnerName"), Some("Ahn"));
    // The TIFF's own tags are reported once, as TIFF items, not again as EXIF.
    assert!(
        report
            .metadata
            .iter()
            .all(|item| item.container != "EXIF" || item.key == "CameraOwnerName"),
        "{:?}",
        keys(&report)
    );
}

#[test]
fn text_named_jpg_is_refused_naming_both() {
    let err = check("fundus_od.jpg", b"Patient: Kim Minsu\nDOB 1950-01-01\n").unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::FormatMismatch {
                expected: ImageFormat::Jpeg,
                actual: ImageFormat::Other,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("fundus_od.jpg") && message.contains("JPEG") && message.contains("text"),
        "{message}"
    );
}

#[test]
fn png_named_jpg_is_refused() {
    let err = check("fundus_od.jpg", &plain_png(4, 4)).unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::FormatMismatch {
                expected: ImageFormat::Jpeg,
                actual: ImageFormat::Png,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("a PNG image"), "{err}");
}

#[test]
fn unknown_extensions_are_judged_by_content() {
    let report = check("scan_0001", &plain_png(4, 4)).unwrap();
    assert_eq!(report.format, ImageFormat::Png);
    let report = check("notes.txt", b"hello").unwrap();
    assert_eq!(report.format, ImageFormat::Other);
    let report = check("manifest.json", b" {\"format\": \"readroom-bundle/1\"}").unwrap();
    assert_eq!(report.format, ImageFormat::Json);
    assert_eq!((report.width, report.height, report.frames), (0, 0, 0));
}

#[test]
fn jpeg_dimension_limits_apply() {
    let limits = ImageLimits {
        max_side: 40,
        ..ImageLimits::default()
    };
    let jpeg = plain_jpeg(64, 8);
    let err = inspect("wide.jpg", &mut &jpeg[..], &limits).unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::ImageTooLarge {
                width: 64,
                height: 8,
                ..
            }
        ),
        "{err}"
    );
}
