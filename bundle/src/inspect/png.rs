//! PNG: a streaming walk over every chunk to IEND.
//!
//! Text may follow the image data, so all chunks are visited; image data is passed through the
//! CRC check and dropped. Metadata chunks are read whole up to [`MAX_METADATA_CHUNK`] bytes and
//! compressed text is inflated up to [`MAX_INFLATED_TEXT`] bytes.

use std::io::{BufRead, Read};

use flate2::read::ZlibDecoder;

use super::{Ctx, Geometry, InspectError, exif, iptc, text, xmp};

/// Largest metadata chunk read into memory.
const MAX_METADATA_CHUNK: u32 = 8 << 20;
/// Most bytes inflated from one compressed text chunk; the rest is not reported.
const MAX_INFLATED_TEXT: u64 = 1 << 20;
/// Largest chunk length the PNG specification allows.
const MAX_CHUNK_LEN: u32 = 0x7FFF_FFFF;
/// The iTXt keyword of an XMP packet.
const XMP_KEYWORD: &str = "XML:com.adobe.xmp";

/// Reads a PNG's geometry and metadata.
pub(super) fn inspect(
    input: &mut dyn BufRead,
    ctx: &mut Ctx<'_>,
) -> Result<Geometry, InspectError> {
    let mut signature = [0u8; 8];
    ctx.read_exact(input, &mut signature)?;
    let mut geometry: Option<Geometry> = None;
    loop {
        let mut header = [0u8; 8];
        ctx.read_exact(input, &mut header)?;
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = [header[4], header[5], header[6], header[7]];
        let name = String::from_utf8_lossy(&kind).into_owned();
        if length > MAX_CHUNK_LEN {
            return Err(ctx.malformed(format!("chunk {name:?} with length {length}")));
        }
        if geometry.is_none() && &kind != b"IHDR" {
            return Err(ctx.malformed(format!("first chunk is {name:?}, not IHDR")));
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&kind);
        let wanted = matches!(
            &kind,
            b"IHDR" | b"tEXt" | b"zTXt" | b"iTXt" | b"eXIf" | b"tIME" | b"acTL"
        );
        let data = if wanted {
            if length > MAX_METADATA_CHUNK {
                return Err(ctx.unsupported(format!("{name} chunk of {length} bytes")));
            }
            let data = ctx.read_vec(input, u64::from(length))?;
            crc.update(&data);
            Some(data)
        } else {
            skip_hashing(input, ctx, u64::from(length), &mut crc)?;
            None
        };
        let mut stored_crc = [0u8; 4];
        ctx.read_exact(input, &mut stored_crc)?;
        if crc.finalize() != u32::from_be_bytes(stored_crc) {
            return Err(ctx.malformed(format!("CRC mismatch in chunk {name:?}")));
        }
        let data = data.unwrap_or_default();
        match &kind {
            b"IHDR" if geometry.is_some() => return Err(ctx.malformed("second IHDR chunk")),
            b"IHDR" => geometry = Some(image_header(ctx, &data)?),
            b"acTL" => {
                if let (Some(geometry), Some(frames)) = (geometry.as_mut(), be_u32(&data, 0)) {
                    ctx.check_frames(u64::from(frames))?;
                    geometry.frames = frames.max(1);
                }
            }
            b"tEXt" => text_chunk(ctx, &data)?,
            b"zTXt" => compressed_text_chunk(ctx, &data)?,
            b"iTXt" => international_text_chunk(ctx, &data)?,
            b"eXIf" => exif::collect(ctx, data, exif::Scope::All)?,
            b"tIME" => time_chunk(ctx, &data)?,
            b"IEND" => break,
            _ => {}
        }
    }
    let trailing = ctx.drain(input)?;
    if trailing > 0 {
        ctx.push(
            "PNG trailer",
            "TrailingData",
            format!("{trailing} bytes after the IEND chunk"),
        )?;
    }
    geometry.ok_or_else(|| ctx.malformed("no IHDR chunk"))
}

fn image_header(ctx: &Ctx<'_>, data: &[u8]) -> Result<Geometry, InspectError> {
    if data.len() != 13 {
        return Err(ctx.malformed(format!("IHDR of {} bytes", data.len())));
    }
    let width = be_u32(data, 0).unwrap_or(0);
    let height = be_u32(data, 4).unwrap_or(0);
    ctx.check_dimensions(u64::from(width), u64::from(height))?;
    let bit_depth = data[8];
    let channels = match data[9] {
        0 | 3 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        other => return Err(ctx.malformed(format!("colour type {other}"))),
    };
    Ok(Geometry {
        width,
        height,
        frames: 1,
        bits_per_sample: u16::from(bit_depth),
        channels,
    })
}

/// `keyword NUL text` in ISO 8859-1.
fn text_chunk(ctx: &mut Ctx<'_>, data: &[u8]) -> Result<(), InspectError> {
    let (keyword, value) = split_nul(data);
    let keyword = text::latin1(keyword);
    let value = text::latin1(value);
    embedded_profile(ctx, &keyword, &value)?;
    ctx.push("PNG tEXt", keyword, value)
}

/// `keyword NUL method zlib-data`, text in ISO 8859-1.
fn compressed_text_chunk(ctx: &mut Ctx<'_>, data: &[u8]) -> Result<(), InspectError> {
    let (keyword, rest) = split_nul(data);
    let keyword = text::latin1(keyword);
    let Some((&method, compressed)) = rest.split_first() else {
        return Err(ctx.malformed(format!("zTXt chunk {keyword:?} without compression method")));
    };
    if method != 0 {
        return Err(ctx.malformed(format!(
            "zTXt chunk {keyword:?} with compression method {method}"
        )));
    }
    let value = text::latin1(&inflate(ctx, &keyword, compressed)?);
    embedded_profile(ctx, &keyword, &value)?;
    ctx.push("PNG zTXt", keyword, value)
}

/// `keyword NUL flag method language NUL translated-keyword NUL text`, text in UTF-8.
fn international_text_chunk(ctx: &mut Ctx<'_>, data: &[u8]) -> Result<(), InspectError> {
    let (keyword, rest) = split_nul(data);
    let keyword = text::latin1(keyword);
    if rest.len() < 2 {
        return Err(ctx.malformed(format!("iTXt chunk {keyword:?} too short")));
    }
    let (compressed, method) = (rest[0], rest[1]);
    let (_language, rest) = split_nul(&rest[2..]);
    let (translated_keyword, raw_text) = split_nul(rest);
    let bytes = match (compressed, method) {
        (0, _) => raw_text.to_vec(),
        (1, 0) => inflate(ctx, &keyword, raw_text)?,
        _ => {
            return Err(ctx.malformed(format!(
                "iTXt chunk {keyword:?} with compression {compressed}/{method}"
            )));
        }
    };
    if keyword == XMP_KEYWORD {
        return xmp::collect(ctx, &bytes);
    }
    let translated_keyword = String::from_utf8_lossy(translated_keyword);
    if !translated_keyword.trim().is_empty() {
        ctx.push(
            "PNG iTXt",
            format!("{keyword} (translated keyword)"),
            translated_keyword,
        )?;
    }
    ctx.push("PNG iTXt", keyword, String::from_utf8_lossy(&bytes))
}

/// Reads the EXIF, IPTC or XMP blocks that ImageMagick stores hex-encoded in text chunks named
/// `Raw profile type exif|APP1|iptc|8bim|xmp`.
fn embedded_profile(ctx: &mut Ctx<'_>, keyword: &str, value: &str) -> Result<(), InspectError> {
    let Some(kind) = keyword.strip_prefix("Raw profile type ") else {
        return Ok(());
    };
    let Some(bytes) = decode_raw_profile(value) else {
        return Err(ctx.malformed(format!(
            "text chunk {keyword:?} is not a hex-encoded profile"
        )));
    };
    match kind.to_ascii_lowercase().as_str() {
        "exif" | "app1" => {
            let tiff = bytes.strip_prefix(b"Exif\0\0").unwrap_or(&bytes);
            exif::collect(ctx, tiff.to_vec(), exif::Scope::All)
        }
        "iptc" | "8bim" => {
            if bytes.starts_with(b"8BIM") {
                iptc::collect_photoshop(ctx, &bytes)
            } else {
                iptc::collect_iim(ctx, &bytes)
            }
        }
        "xmp" => xmp::collect(ctx, &bytes),
        _ => Ok(()),
    }
}

/// Decodes `\n<name>\n<length>\n<hex...>`.
fn decode_raw_profile(value: &str) -> Option<Vec<u8>> {
    let mut lines = value.trim_start().splitn(3, '\n');
    let _name = lines.next()?;
    let _length = lines.next()?;
    let hex: Vec<u8> = lines
        .next()?
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks_exact(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

fn time_chunk(ctx: &mut Ctx<'_>, data: &[u8]) -> Result<(), InspectError> {
    if data.len() != 7 {
        return Err(ctx.malformed(format!("tIME chunk of {} bytes", data.len())));
    }
    let year = u16::from_be_bytes([data[0], data[1]]);
    let value = format!(
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        data[2], data[3], data[4], data[5], data[6]
    );
    ctx.push("PNG tIME", "tIME", value)
}

fn inflate(ctx: &Ctx<'_>, keyword: &str, compressed: &[u8]) -> Result<Vec<u8>, InspectError> {
    let mut inflated = Vec::new();
    ZlibDecoder::new(compressed)
        .take(MAX_INFLATED_TEXT)
        .read_to_end(&mut inflated)
        .map_err(|err| {
            ctx.malformed(format!(
                "compressed text {keyword:?} does not inflate: {err}"
            ))
        })?;
    Ok(inflated)
}

fn skip_hashing(
    input: &mut dyn BufRead,
    ctx: &Ctx<'_>,
    mut remaining: u64,
    crc: &mut crc32fast::Hasher,
) -> Result<(), InspectError> {
    while remaining > 0 {
        let buffer = input.fill_buf().map_err(|err| ctx.io(err))?;
        if buffer.is_empty() {
            return Err(ctx.malformed("truncated: unexpected end of file"));
        }
        let n_bytes = buffer
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        crc.update(&buffer[..n_bytes]);
        input.consume(n_bytes);
        remaining -= n_bytes as u64;
    }
    Ok(())
}

fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&byte| byte == 0) {
        Some(index) => (&data[..index], &data[index + 1..]),
        None => (data, &[]),
    }
}

fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at + 4)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}
