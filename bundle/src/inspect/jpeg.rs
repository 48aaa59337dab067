//! JPEG: a streaming walk over every marker segment up to EOI.
//!
//! Segments are at most 64 KiB, so each is read whole; entropy-coded scan data is scanned for
//! the next marker without being kept, which also finds comments and APP segments placed between
//! the scans of a progressive JPEG.

use std::io::BufRead;

use super::{Ctx, Geometry, InspectError, exif, iptc, xmp};

const EXIF_HEADER: &[u8] = b"Exif\0\0";
const XMP_HEADER: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const XMP_EXTENSION_HEADER: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";
const PHOTOSHOP_HEADER: &[u8] = b"Photoshop 3.0\0";
/// Extended XMP and Photoshop resources may be split over several segments; at most this many
/// bytes of each are gathered.
const MAX_GATHERED: usize = 16 << 20;

/// Reads a JPEG's geometry and metadata.
pub(super) fn inspect(
    input: &mut dyn BufRead,
    ctx: &mut Ctx<'_>,
) -> Result<Geometry, InspectError> {
    let mut soi = [0u8; 2];
    ctx.read_exact(input, &mut soi)?;
    let mut geometry: Option<Geometry> = None;
    let mut extended_xmp: Vec<u8> = Vec::new();
    let mut photoshop: Vec<u8> = Vec::new();
    let mut pending_marker: Option<u8> = None;
    let mut ended = false;
    loop {
        let marker = match pending_marker.take() {
            Some(marker) => marker,
            None => match next_marker(input, ctx)? {
                Some(marker) => marker,
                None => break,
            },
        };
        match marker {
            0xD9 => {
                ended = true;
                break;
            }
            0xD8 => return Err(ctx.malformed("second start-of-image marker")),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let mut length = [0u8; 2];
        ctx.read_exact(input, &mut length)?;
        let length = u16::from_be_bytes(length);
        if length < 2 {
            return Err(ctx.malformed(format!("segment 0xFF{marker:02X} with length {length}")));
        }
        let payload = ctx.read_vec(input, u64::from(length - 2))?;
        match marker {
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF if geometry.is_none() => {
                geometry = Some(frame_header(ctx, &payload)?);
            }
            0xE1 => app1(ctx, &payload, &mut extended_xmp)?,
            0xED => {
                if let Some(resources) = payload.strip_prefix(PHOTOSHOP_HEADER)
                    && photoshop.len() + resources.len() <= MAX_GATHERED
                {
                    photoshop.extend_from_slice(resources);
                }
            }
            0xFE => ctx.push("JPEG COM", "Comment", super::text::utf8_or_latin1(&payload))?,
            0xDA => pending_marker = skip_scan(input, ctx)?,
            _ => {}
        }
    }
    if !photoshop.is_empty() {
        iptc::collect_photoshop(ctx, &photoshop)?;
    }
    if !extended_xmp.is_empty() {
        xmp::collect(ctx, &extended_xmp)?;
    }
    let Some(geometry) = geometry else {
        return Err(ctx.malformed("no frame header (SOF) before the end of the file"));
    };
    if ended {
        let trailing = ctx.drain(input)?;
        if trailing > 0 {
            ctx.push(
                "JPEG trailer",
                "TrailingData",
                format!("{trailing} bytes after the end-of-image marker"),
            )?;
        }
    }
    Ok(geometry)
}

/// Reads a frame header: precision, height, width, components.
fn frame_header(ctx: &Ctx<'_>, payload: &[u8]) -> Result<Geometry, InspectError> {
    if payload.len() < 6 {
        return Err(ctx.malformed("frame header too short"));
    }
    let precision = payload[0];
    let height = u16::from_be_bytes([payload[1], payload[2]]);
    let width = u16::from_be_bytes([payload[3], payload[4]]);
    let components = payload[5];
    if height == 0 {
        return Err(ctx.unsupported("height defined by a DNL marker"));
    }
    ctx.check_dimensions(u64::from(width), u64::from(height))?;
    Ok(Geometry {
        width: u32::from(width),
        height: u32::from(height),
        frames: 1,
        bits_per_sample: u16::from(precision),
        channels: components,
    })
}

/// Reads EXIF and XMP from an APP1 segment; gathers extended XMP chunks.
fn app1(ctx: &mut Ctx<'_>, payload: &[u8], extended_xmp: &mut Vec<u8>) -> Result<(), InspectError> {
    if let Some(tiff) = payload.strip_prefix(EXIF_HEADER) {
        return exif::collect(ctx, tiff.to_vec(), exif::Scope::All);
    }
    if let Some(packet) = payload.strip_prefix(XMP_HEADER) {
        return xmp::collect(ctx, packet);
    }
    if let Some(chunk) = payload.strip_prefix(XMP_EXTENSION_HEADER) {
        // 32-byte GUID, 4-byte full length, 4-byte offset, then the chunk. Chunks are gathered in
        // file order, which is the order writers use.
        if let Some(data) = chunk.get(40..)
            && extended_xmp.len() + data.len() <= MAX_GATHERED
        {
            extended_xmp.extend_from_slice(data);
        }
    }
    Ok(())
}

/// Reads the next marker code, skipping fill bytes. Returns `None` at the end of the input.
fn next_marker(input: &mut dyn BufRead, ctx: &Ctx<'_>) -> Result<Option<u8>, InspectError> {
    let Some(byte) = read_byte(input, ctx)? else {
        return Ok(None);
    };
    if byte != 0xFF {
        return Err(ctx.malformed(format!("expected a marker, found byte 0x{byte:02X}")));
    }
    loop {
        match read_byte(input, ctx)? {
            None => return Ok(None),
            Some(0xFF) => continue,
            Some(marker) => return Ok(Some(marker)),
        }
    }
}

/// Skips entropy-coded data after a scan header and returns the marker that ends it.
fn skip_scan(input: &mut dyn BufRead, ctx: &Ctx<'_>) -> Result<Option<u8>, InspectError> {
    loop {
        let buffer = input.fill_buf().map_err(|err| ctx.io(err))?;
        if buffer.is_empty() {
            return Ok(None);
        }
        let Some(index) = buffer.iter().position(|&byte| byte == 0xFF) else {
            let n_bytes = buffer.len();
            input.consume(n_bytes);
            continue;
        };
        input.consume(index + 1);
        loop {
            match read_byte(input, ctx)? {
                None => return Ok(None),
                Some(0xFF) => continue,
                // Stuffed zero byte or restart marker: still inside the scan.
                Some(0x00 | 0xD0..=0xD7) => break,
                Some(marker) => return Ok(Some(marker)),
            }
        }
    }
}

fn read_byte(input: &mut dyn BufRead, ctx: &Ctx<'_>) -> Result<Option<u8>, InspectError> {
    let buffer = input.fill_buf().map_err(|err| ctx.io(err))?;
    let Some(&byte) = buffer.first() else {
        return Ok(None);
    };
    input.consume(1);
    Ok(Some(byte))
}
