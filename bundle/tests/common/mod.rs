//! Fixture builders shared by the integration tests: hand-made zips (so hostile fields can be
//! set), and small images with chosen metadata.
#![allow(dead_code)]

use std::io::{Cursor, Write};

use image::ImageEncoder;

/// One entry of a hand-made zip archive, with every header field under the test's control.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub name: Vec<u8>,
    /// The bytes stored in the archive (already compressed for method 8).
    pub data: Vec<u8>,
    pub method: u16,
    pub flags: u16,
    pub crc: u32,
    pub compressed_size: u32,
    pub size: u32,
    /// "Version made by": the high byte is the host system (3 = unix).
    pub made_by: u16,
    pub external_attributes: u32,
    /// Point this entry's central header at another entry's local header.
    pub local_header_of: Option<usize>,
}

impl RawEntry {
    /// A stored regular file.
    pub fn stored(name: &str, data: &[u8]) -> RawEntry {
        RawEntry {
            name: name.as_bytes().to_vec(),
            data: data.to_vec(),
            method: 0,
            flags: 0,
            crc: crc32fast::hash(data),
            compressed_size: data.len() as u32,
            size: data.len() as u32,
            made_by: (3 << 8) | 20,
            external_attributes: 0o100_644 << 16,
            local_header_of: None,
        }
    }

    /// A deflated regular file.
    pub fn deflated(name: &str, data: &[u8]) -> RawEntry {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        let compressed = encoder.finish().unwrap();
        RawEntry {
            method: 8,
            compressed_size: compressed.len() as u32,
            data: compressed,
            ..RawEntry::stored(name, data)
        }
    }

    /// A symbolic link to `target`.
    pub fn symlink(name: &str, target: &str) -> RawEntry {
        RawEntry {
            external_attributes: 0o120_777 << 16,
            ..RawEntry::stored(name, target.as_bytes())
        }
    }
}

/// Serializes entries as a zip archive: local headers and data, central directory, end record.
pub fn raw_zip(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for entry in entries {
        offsets.push(out.len() as u32);
        out.extend_from_slice(b"PK\x03\x04");
        put16(&mut out, 20);
        put16(&mut out, entry.flags);
        put16(&mut out, entry.method);
        put16(&mut out, 0); // time
        put16(&mut out, 0x21); // date 1980-01-01
        put32(&mut out, entry.crc);
        put32(&mut out, entry.compressed_size);
        put32(&mut out, entry.size);
        put16(&mut out, entry.name.len() as u16);
        put16(&mut out, 0);
        out.extend_from_slice(&entry.name);
        out.extend_from_slice(&entry.data);
    }
    let directory_start = out.len() as u32;
    for (index, entry) in entries.iter().enumerate() {
        let offset = offsets[entry.local_header_of.unwrap_or(index)];
        out.extend_from_slice(b"PK\x01\x02");
        put16(&mut out, entry.made_by);
        put16(&mut out, 20);
        put16(&mut out, entry.flags);
        put16(&mut out, entry.method);
        put16(&mut out, 0);
        put16(&mut out, 0x21);
        put32(&mut out, entry.crc);
        put32(&mut out, entry.compressed_size);
        put32(&mut out, entry.size);
        put16(&mut out, entry.name.len() as u16);
        put16(&mut out, 0); // extra
        put16(&mut out, 0); // comment
        put16(&mut out, 0); // disk
        put16(&mut out, 0); // internal attributes
        put32(&mut out, entry.external_attributes);
        put32(&mut out, offset);
        out.extend_from_slice(&entry.name);
    }
    let directory_len = out.len() as u32 - directory_start;
    out.extend_from_slice(b"PK\x05\x06");
    put16(&mut out, 0);
    put16(&mut out, 0);
    put16(&mut out, entries.len() as u16);
    put16(&mut out, entries.len() as u16);
    put32(&mut out, directory_len);
    put32(&mut out, directory_start);
    put16(&mut out, 0);
    out
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// A small gray gradient.
pub fn gray_pixels(width: u32, height: u32) -> Vec<u8> {
    (0..width * height)
        .map(|index| (index % 251) as u8)
        .collect()
}

/// A plain baseline JPEG without metadata.
pub fn plain_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    encoder
        .write_image(
            &gray_pixels(width, height),
            width,
            height,
            image::ExtendedColorType::L8,
        )
        .unwrap();
    out
}

/// A plain 8-bit gray PNG without metadata.
pub fn plain_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut out);
    encoder
        .write_image(
            &gray_pixels(width, height),
            width,
            height,
            image::ExtendedColorType::L8,
        )
        .unwrap();
    out
}

/// Inserts JPEG marker segments right after SOI.
pub fn jpeg_with_segments(jpeg: &[u8], segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for (marker, payload) in segments {
        out.push(0xFF);
        out.push(*marker);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// One PNG chunk with its CRC.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out
}

/// Inserts chunks just before IEND (that is, after the image data).
pub fn png_with_trailing_chunks(png: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    let iend_at = png.len() - 12;
    assert_eq!(&png[iend_at + 4..iend_at + 8], b"IEND");
    let mut out = png[..iend_at].to_vec();
    for chunk in chunks {
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&png[iend_at..]);
    out
}

/// A PNG signature and IHDR claiming `width`x`height`, with a valid CRC and nothing else.
pub fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    out.extend_from_slice(&png_chunk(b"IHDR", &ihdr));
    out
}

/// A TIFF-structured EXIF block with the given fields (in the 0th IFD, Exif IFD or GPS IFD
/// according to each tag's context).
pub fn exif_block(fields: &[exif::Field]) -> Vec<u8> {
    let mut writer = exif::experimental::Writer::new();
    for field in fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).unwrap();
    out.into_inner()
}

pub fn ascii_field(tag: exif::Tag, value: &str) -> exif::Field {
    exif::Field {
        tag,
        ifd_num: exif::In::PRIMARY,
        value: exif::Value::Ascii(vec![value.as_bytes().to_vec()]),
    }
}

pub fn rational_field(tag: exif::Tag, values: &[(u32, u32)]) -> exif::Field {
    exif::Field {
        tag,
        ifd_num: exif::In::PRIMARY,
        value: exif::Value::Rational(
            values
                .iter()
                .map(|&(num, denom)| exif::Rational { num, denom })
                .collect(),
        ),
    }
}

/// IPTC-IIM datasets in a Photoshop 8BIM 0x0404 resource, as an APP13 payload.
pub fn photoshop_iptc_app13(datasets: &[(u8, u8, &str)]) -> Vec<u8> {
    let mut iim = Vec::new();
    for (record, dataset, value) in datasets {
        iim.extend_from_slice(&[0x1C, *record, *dataset]);
        iim.extend_from_slice(&(value.len() as u16).to_be_bytes());
        iim.extend_from_slice(value.as_bytes());
    }
    let mut out = b"Photoshop 3.0\0".to_vec();
    out.extend_from_slice(b"8BIM");
    out.extend_from_slice(&0x0404u16.to_be_bytes());
    out.extend_from_slice(&[0, 0]); // empty Pascal name, padded
    out.extend_from_slice(&(iim.len() as u32).to_be_bytes());
    out.extend_from_slice(&iim);
    if iim.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// An XMP packet in an APP1 payload.
pub fn xmp_app1(packet: &str) -> Vec<u8> {
    let mut out = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    out.extend_from_slice(packet.as_bytes());
    out
}

/// Finds an item by container and key.
pub fn item<'r>(
    report: &'r readroom_bundle::FileReport,
    container: &str,
    key: &str,
) -> Option<&'r str> {
    report
        .metadata
        .iter()
        .find(|item| item.container == container && item.key == key)
        .map(|item| item.value.as_str())
}
