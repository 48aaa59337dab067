//! DICOM entries (ophthalmic photography OP, multi-frame OCT OPT): header for the case shape,
//! one frame at a time for the renderer.
//!
//! The entry's bytes are first walked element header by element header by the same walk the
//! ingest gate uses (`readroom_bundle::dicom::walk_bytes`): every declared length is checked
//! against the bytes that remain and against its enclosing sequence or item, and nesting and
//! element counts are capped, before `dicom-object` parses anything, so a header claiming a
//! 4 GiB value cannot make the parser allocate it. The gate has already walked the file on the
//! way in; this is the worker's own check. Rows × Columns × frames × samples × bytes are then
//! checked against the decode limits before any pixel is touched.
//!
//! Pixels are decoded here for native (uncompressed) and RLE Lossless pixel data, and through
//! `dicom-pixeldata` for the JPEG transfer syntaxes, after the JPEG frame header has been checked
//! against Rows, Columns and SamplesPerPixel. Grey samples are scaled to the full 8- or 16-bit
//! range from BitsStored (signed samples are shifted, MONOCHROME1 is inverted); no modality or
//! VOI LUT is applied: the grader's window/level is.

use std::borrow::Cow;
use std::io::Cursor;

use dicom_core::Tag;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use readroom_bundle::dicom::{
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN as DEFLATED, EXPLICIT_VR_BIG_ENDIAN, PixelData, WalkError,
    WalkOptions, walk_bytes,
};
use readroom_domain::limits::{MAX_OCT_FRAMES, MAX_PIXEL_SPACING_UM, MIN_PIXEL_SPACING_UM};

use crate::image::{DecodedImage, ImageError, Pixels};
use crate::source::{MAX_DECODED, MAX_SIDE};

#[cfg(test)]
pub(crate) mod tests;

const ENCAPSULATED_UNCOMPRESSED: &str = "1.2.840.10008.1.2.1.98";
const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
/// JPEG Baseline, Extended, Lossless (process 14) and Lossless SV1: what `dicom-pixeldata`'s
/// JPEG adapter decodes.
const JPEG: [&str; 4] = [
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
];

/// Whether `bytes` start like a DICOM file (128-byte preamble, then `DICM`).
pub fn is_dicom(bytes: &[u8]) -> bool {
    readroom_bundle::dicom::is_dicom(bytes)
}

/// What a DICOM header says about its pixels, checked against the decode limits.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomHeader {
    /// Rows (image height).
    pub rows: u32,
    /// Columns (image width).
    pub columns: u32,
    /// NumberOfFrames (1 when absent).
    pub frames: u32,
    /// SamplesPerPixel: 1 (grey) or 3 (colour).
    pub samples: u16,
    /// BitsAllocated: 8 or 16.
    pub bits_allocated: u16,
    /// BitsStored (≤ BitsAllocated).
    pub bits_stored: u16,
    /// PixelRepresentation 1: two's complement samples.
    pub signed: bool,
    /// PhotometricInterpretation, trimmed.
    pub photometric: String,
    /// PlanarConfiguration 1: colour planes one after the other.
    pub planar: bool,
    /// Column spacing (horizontal, lateral for OCT) in µm, from PixelSpacing at the top level or
    /// in the shared functional groups, when plausible.
    pub pixel_spacing_um: Option<f64>,
    /// Row spacing (vertical; axial, i.e. depth, for an OCT B-scan) in µm, from the same
    /// PixelSpacing, when plausible. OCT pixels are not square: never assume it equals the
    /// column spacing.
    pub row_spacing_um: Option<f64>,
    /// The transfer syntax UID.
    pub transfer_syntax: String,
}

impl DicomHeader {
    /// Bytes of one decoded frame as stored (before conversion).
    pub fn frame_bytes(&self) -> usize {
        self.rows as usize
            * self.columns as usize
            * usize::from(self.samples)
            * usize::from(self.bits_allocated / 8)
    }
}

/// A parsed DICOM entry whose frames can be decoded one at a time (kept in the case cache for a
/// multi-frame OPT, so that a slice does not re-parse the file).
pub struct DicomVolume {
    entry: String,
    object: DefaultDicomObject,
    header: DicomHeader,
    bytes: usize,
}

/// Never print pixel data: the debug form shows only the entry and the shape.
impl std::fmt::Debug for DicomVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DicomVolume({} {}x{}x{})",
            self.entry, self.header.columns, self.header.rows, self.header.frames
        )
    }
}

impl DicomVolume {
    /// Parses a whole DICOM entry (checking its structure and its pixel limits first).
    pub fn parse(entry: &str, bytes: &[u8]) -> Result<DicomVolume, ImageError> {
        let object = parse_object(entry, bytes, true)
            .map_err(|err| err.into_error(entry))?
            .ok_or_else(|| ImageError::Decode {
                entry: entry.to_owned(),
                detail: "the file has no pixel data".to_owned(),
            })?;
        let header = header_of(entry, &object)?;
        Ok(DicomVolume {
            entry: entry.to_owned(),
            object,
            header,
            bytes: bytes.len(),
        })
    }

    /// The header.
    pub fn header(&self) -> &DicomHeader {
        &self.header
    }

    /// Bytes held (the parsed object holds about as much as the encoded entry).
    pub fn byte_size(&self) -> usize {
        self.bytes
    }

    /// Decodes frame `n` (0-based).
    pub fn frame(&self, n: u32) -> Result<DecodedImage, ImageError> {
        let h = &self.header;
        if n >= h.frames {
            return Err(ImageError::NotAvailable(format!(
                "frame {n} of {} ({} frames)",
                self.entry, h.frames
            )));
        }
        let (samples, layout) = self.raw_frame(n)?;
        let header = match layout {
            Layout::Declared => Cow::Borrowed(h),
            Layout::Interleaved => Cow::Owned(DicomHeader {
                planar: false,
                ..h.clone()
            }),
            // The JPEG decoder has already converted colour to RGB.
            Layout::Rgb if h.samples == 3 => Cow::Owned(DicomHeader {
                photometric: "RGB".to_owned(),
                planar: false,
                ..h.clone()
            }),
            Layout::Rgb => Cow::Borrowed(h),
        };
        convert(&self.entry, &header, &samples)
    }

    fn fail(&self, detail: impl Into<String>) -> ImageError {
        ImageError::Decode {
            entry: self.entry.clone(),
            detail: detail.into(),
        }
    }

    /// The stored samples of frame `n` (native little-endian) and how they are laid out.
    fn raw_frame(&self, n: u32) -> Result<(Cow<'_, [u8]>, Layout), ImageError> {
        let h = &self.header;
        let len = h.frame_bytes();
        let start = n as usize * len;
        let short = || self.fail(format!("the pixel data is shorter than {} frames", n + 1));
        let element = self
            .object
            .get(tags::PIXEL_DATA)
            .ok_or_else(|| self.fail("the file has no pixel data"))?;
        let raw = match element.value() {
            Value::Primitive(PrimitiveValue::U8(bytes)) => {
                let frame = bytes.get(start..start + len).ok_or_else(short)?;
                if h.bits_allocated == 16 && h.transfer_syntax == EXPLICIT_VR_BIG_ENDIAN {
                    Ok(Cow::Owned(
                        frame
                            .chunks_exact(2)
                            .flat_map(|pair| [pair[1], pair[0]])
                            .collect(),
                    ))
                } else {
                    Ok(Cow::Borrowed(frame))
                }
            }
            Value::Primitive(PrimitiveValue::U16(words)) => {
                // OW: the words hold the byte stream little-endian (8-bit samples in pairs).
                let first = start / 2;
                let last = (start + len).div_ceil(2);
                let frame = words.get(first..last).ok_or_else(short)?;
                let bytes: Vec<u8> = frame.iter().flat_map(|word| word.to_le_bytes()).collect();
                let skip = start % 2;
                Ok(Cow::Owned(bytes[skip..skip + len].to_vec()))
            }
            Value::Primitive(_) => Err(self.fail("pixel data of an unexpected value type")),
            Value::Sequence(_) => Err(self.fail("pixel data is a sequence")),
            Value::PixelSequence(sequence) => {
                let fragments = sequence.fragments();
                let ts = h.transfer_syntax.as_str();
                if ts == RLE_LOSSLESS || ts == ENCAPSULATED_UNCOMPRESSED {
                    // One fragment per frame, as both transfer syntaxes require.
                    if fragments.len() != h.frames as usize {
                        return Err(self.fail(format!(
                            "{} pixel data fragments for {} frames",
                            fragments.len(),
                            h.frames
                        )));
                    }
                    let fragment = &fragments[n as usize];
                    if ts == RLE_LOSSLESS {
                        // Decoded from colour-by-plane segments into interleaved samples.
                        let decoded = rle_decode(h, fragment).map_err(|d| self.fail(d))?;
                        return Ok((Cow::Owned(decoded), Layout::Interleaved));
                    } else {
                        fragment.get(..len).map(Cow::Borrowed).ok_or_else(short)
                    }
                } else if JPEG.contains(&ts) {
                    let stream = jpeg_stream(fragments, sequence.offset_table(), h.frames, n)
                        .map_err(|d| self.fail(d))?;
                    check_jpeg_header(h, &stream).map_err(|d| self.fail(d))?;
                    return self
                        .jpeg_decode(n)
                        .map(|data| (Cow::Owned(data), Layout::Rgb));
                } else {
                    Err(self.fail(format!(
                        "transfer syntax {ts} ({}) is not supported",
                        transfer_syntax_name(ts)
                    )))
                }
            }
        };
        raw.map(|raw| (raw, Layout::Declared))
    }

    /// Decodes a JPEG frame with `dicom-pixeldata` (its header already checked).
    fn jpeg_decode(&self, n: u32) -> Result<Vec<u8>, ImageError> {
        use dicom_pixeldata::PixelDecoder;
        let len = self.header.frame_bytes();
        // The adapter indexes slices by the sizes it computed; the header check makes them
        // agree, and a panic in a third-party decoder must still not take the session down.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.object
                .decode_pixel_data_frame(n)
                .map(|pixels| pixels.data().get(..len).map(<[u8]>::to_vec))
        }));
        match decoded {
            Ok(Ok(Some(data))) => Ok(data),
            Ok(Ok(None)) => Err(self.fail("the JPEG frame decoded to fewer samples than declared")),
            Ok(Err(err)) => Err(self.fail(format!("JPEG: {}", error_chain(&err)))),
            Err(_) => Err(self.fail("the JPEG decoder failed on this frame")),
        }
    }
}

/// How a frame's decoded samples are laid out.
enum Layout {
    /// As the header says (native pixel data).
    Declared,
    /// Samples interleaved per pixel whatever PlanarConfiguration says (RLE).
    Interleaved,
    /// Interleaved, and colour already converted to RGB (JPEG).
    Rgb,
}

/// Reads the header of a DICOM entry for the case shape. `bytes` may be only the start of the
/// entry (`whole` false): `Ok(None)` then means the header runs past them and the whole entry
/// is needed.
pub fn read_header(
    entry: &str,
    bytes: &[u8],
    whole: bool,
) -> Result<Option<DicomHeader>, ImageError> {
    match parse_object(entry, bytes, false) {
        Ok(Some(object)) => header_of(entry, &object).map(Some),
        Ok(None) if whole => Err(ImageError::Decode {
            entry: entry.to_owned(),
            detail: "the file has no pixel data".to_owned(),
        }),
        Ok(None) => Ok(None),
        Err(Incomplete::Yes(_)) if !whole => Ok(None),
        Err(err) => Err(err.into_error(entry)),
    }
}

/// Why parsing stopped.
enum Incomplete {
    /// The bytes end inside an element (truncated, or only a prefix was given).
    Yes(WalkError),
    /// Anything else.
    No(ImageError),
}

impl Incomplete {
    fn into_error(self, entry: &str) -> ImageError {
        match self {
            Incomplete::Yes(err) => ImageError::Decode {
                entry: entry.to_owned(),
                detail: err.to_string(),
            },
            Incomplete::No(err) => err,
        }
    }
}

impl From<ImageError> for Incomplete {
    fn from(err: ImageError) -> Self {
        Incomplete::No(err)
    }
}

/// Walks and parses `bytes`; with `pixels` false, stops before the top-level pixel data.
/// `Ok(None)`: the file has no top-level (integer) pixel data.
fn parse_object(
    entry: &str,
    bytes: &[u8],
    pixels: bool,
) -> Result<Option<DefaultDicomObject>, Incomplete> {
    let fail = |detail: String| ImageError::Decode {
        entry: entry.to_owned(),
        detail,
    };
    if !is_dicom(bytes) {
        return Err(fail("not a DICOM file (no DICM magic after the preamble)".into()).into());
    }
    let options = WalkOptions {
        stop_at_pixel_data: !pixels,
        keep_up_to: None,
    };
    let walked = match walk_bytes(bytes, &options) {
        Ok(walked) => walked,
        Err(err @ WalkError::Truncated { .. }) => return Err(Incomplete::Yes(err)),
        Err(err @ WalkError::OverLimit { .. }) => {
            return Err(ImageError::TooLarge {
                entry: entry.to_owned(),
                detail: err.to_string(),
            }
            .into());
        }
        Err(err) => return Err(fail(err.to_string()).into()),
    };
    if walked.pixel_data != Some(PixelData::Integer) {
        return Ok(None);
    }
    let mut options = OpenFileOptions::new().read_preamble(ReadPreamble::Always);
    if !pixels {
        options = options.read_until(tags::PIXEL_DATA);
    }
    let object = options
        .from_reader(Cursor::new(bytes))
        .map_err(|err| fail(error_chain(&err)))?;
    Ok(Some(object))
}

/// The pixel attributes of `object`, checked against the limits.
fn header_of(entry: &str, object: &DefaultDicomObject) -> Result<DicomHeader, ImageError> {
    let fail = |detail: String| ImageError::Decode {
        entry: entry.to_owned(),
        detail,
    };
    let too_large = |detail: String| ImageError::TooLarge {
        entry: entry.to_owned(),
        detail,
    };
    let int = |tag: Tag, name: &str| -> Result<Option<u64>, ImageError> {
        match object.get(tag) {
            None => Ok(None),
            Some(element) => element
                .to_int::<u64>()
                .map(Some)
                .map_err(|_| fail(format!("{name} is not a non-negative integer"))),
        }
    };
    let required =
        |tag: Tag, name: &str| int(tag, name)?.ok_or_else(|| fail(format!("{name} is missing")));
    let rows = required(tags::ROWS, "Rows")?;
    let columns = required(tags::COLUMNS, "Columns")?;
    let frames = int(tags::NUMBER_OF_FRAMES, "NumberOfFrames")?.unwrap_or(1);
    let samples = int(tags::SAMPLES_PER_PIXEL, "SamplesPerPixel")?.unwrap_or(1);
    let bits_allocated = required(tags::BITS_ALLOCATED, "BitsAllocated")?;
    let bits_stored = int(tags::BITS_STORED, "BitsStored")?.unwrap_or(bits_allocated);
    let signed = int(tags::PIXEL_REPRESENTATION, "PixelRepresentation")?.unwrap_or(0) == 1;
    let planar = int(tags::PLANAR_CONFIGURATION, "PlanarConfiguration")?.unwrap_or(0) == 1;

    if rows == 0 || columns == 0 || frames == 0 {
        return Err(fail(format!(
            "{columns}×{rows} pixels, {frames} frames: nothing to show"
        )));
    }
    if rows > u64::from(MAX_SIDE) || columns > u64::from(MAX_SIDE) {
        return Err(too_large(format!(
            "{columns}×{rows} exceeds {MAX_SIDE} pixels per side"
        )));
    }
    if frames > MAX_OCT_FRAMES as u64 {
        return Err(too_large(format!(
            "{frames} frames exceed the limit of {MAX_OCT_FRAMES}"
        )));
    }
    if samples != 1 && samples != 3 {
        return Err(fail(format!(
            "{samples} samples per pixel (only 1 or 3 are supported)"
        )));
    }
    if bits_allocated != 8 && bits_allocated != 16 {
        return Err(fail(format!(
            "{bits_allocated} bits allocated (only 8 or 16 are supported)"
        )));
    }
    if bits_stored == 0 || bits_stored > bits_allocated {
        return Err(fail(format!(
            "{bits_stored} bits stored in {bits_allocated} allocated"
        )));
    }
    let decoded = rows * columns * samples * (bits_allocated / 8) * frames;
    if decoded > MAX_DECODED {
        return Err(too_large(format!(
            "{columns}×{rows}×{frames} frames×{samples} samples×{} bytes is {decoded} bytes \
             decoded; the limit is {MAX_DECODED}",
            bits_allocated / 8
        )));
    }
    let photometric = object
        .get(tags::PHOTOMETRIC_INTERPRETATION)
        .and_then(|element| element.to_str().ok())
        .map(|text| text.trim_matches(['\0', ' ']).to_owned())
        .unwrap_or_else(|| if samples == 1 { "MONOCHROME2" } else { "RGB" }.to_owned());
    Ok(DicomHeader {
        rows: rows as u32,
        columns: columns as u32,
        frames: frames as u32,
        samples: samples as u16,
        bits_allocated: bits_allocated as u16,
        bits_stored: bits_stored as u16,
        signed,
        photometric,
        planar,
        pixel_spacing_um: pixel_spacing_um(object, Spacing::Column),
        row_spacing_um: pixel_spacing_um(object, Spacing::Row),
        transfer_syntax: object
            .meta()
            .transfer_syntax()
            .trim_end_matches(['\0', ' '])
            .to_owned(),
    })
}

/// Which value of PixelSpacing.
#[derive(Clone, Copy)]
enum Spacing {
    /// The first: distance between rows (vertical; axial on an OCT B-scan).
    Row,
    /// The second: distance between columns (horizontal; lateral on an OCT B-scan).
    Column,
}

/// PixelSpacing (row spacing \ column spacing, mm) → the chosen spacing in µm, from the top
/// level or the shared functional groups' pixel measures; `None` when absent or implausible.
/// A single value is taken for both.
fn pixel_spacing_um(object: &DefaultDicomObject, which: Spacing) -> Option<f64> {
    let from = |item: &InMemDicomObject| {
        item.get(tags::PIXEL_SPACING)
            .and_then(|element| element.to_multi_float64().ok())
            .and_then(|values| match which {
                Spacing::Column => values.get(1).or(values.first()).copied(),
                Spacing::Row => values.first().copied(),
            })
    };
    let shared = || {
        let groups = object.get(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)?;
        let measures = groups
            .items()?
            .first()?
            .get(tags::PIXEL_MEASURES_SEQUENCE)?;
        from(measures.items()?.first()?)
    };
    let mm = from(object).or_else(shared)?;
    let um = mm * 1000.0;
    (um.is_finite() && (MIN_PIXEL_SPACING_UM..=MAX_PIXEL_SPACING_UM).contains(&um)).then_some(um)
}

/// Stored samples of one frame → the renderer's image.
fn convert(entry: &str, h: &DicomHeader, raw: &[u8]) -> Result<DecodedImage, ImageError> {
    let fail = |detail: String| ImageError::Decode {
        entry: entry.to_owned(),
        detail,
    };
    let (width, height) = (h.columns, h.rows);
    let pixels = width as usize * height as usize;
    if raw.len() < h.frame_bytes() {
        return Err(fail("the frame is shorter than Rows × Columns".into()));
    }
    let photometric = h.photometric.as_str();
    let pixels = match (h.samples, h.bits_allocated) {
        (1, bits) => {
            let invert = match photometric {
                "MONOCHROME1" => true,
                "MONOCHROME2" => false,
                other => {
                    return Err(fail(format!(
                        "photometric interpretation {other} with one sample is not supported"
                    )));
                }
            };
            let stored = u32::from(h.bits_stored);
            let mask = if stored >= 16 {
                0xFFFF
            } else {
                (1u32 << stored) - 1
            };
            let to_unsigned = |v: u32| -> u32 {
                let v = v & mask;
                if h.signed {
                    // Two's complement in `stored` bits → offset binary.
                    v ^ (1 << (stored - 1))
                } else {
                    v
                }
            };
            if bits == 8 {
                if stored == 8 && !h.signed && !invert {
                    Pixels::Gray8(raw[..pixels].to_vec())
                } else {
                    let table: Vec<u8> = (0..=255u32)
                        .map(|v| {
                            let v = to_unsigned(v) * 255 / mask;
                            (if invert { 255 - v } else { v }) as u8
                        })
                        .collect();
                    Pixels::Gray8(raw[..pixels].iter().map(|v| table[*v as usize]).collect())
                }
            } else {
                Pixels::Gray16(
                    raw[..pixels * 2]
                        .chunks_exact(2)
                        .map(|pair| {
                            let v = to_unsigned(u32::from(u16::from_le_bytes([pair[0], pair[1]])));
                            let v = if mask == 0xFFFF { v } else { v * 65535 / mask };
                            (if invert { 65535 - v } else { v }) as u16
                        })
                        .collect(),
                )
            }
        }
        (3, 8) => {
            let mut rgb = if h.planar {
                let (r, rest) = raw[..pixels * 3].split_at(pixels);
                let (g, b) = rest.split_at(pixels);
                let mut out = Vec::with_capacity(pixels * 3);
                for i in 0..pixels {
                    out.extend_from_slice(&[r[i], g[i], b[i]]);
                }
                out
            } else {
                raw[..pixels * 3].to_vec()
            };
            match photometric {
                "RGB" => {}
                "YBR_FULL" => ybr_full_to_rgb(&mut rgb),
                other => {
                    return Err(fail(format!(
                        "photometric interpretation {other} with three samples is not supported"
                    )));
                }
            }
            Pixels::Rgb8(rgb)
        }
        (samples, bits) => {
            return Err(fail(format!(
                "{samples} samples of {bits} bits are not supported"
            )));
        }
    };
    Ok(DecodedImage {
        width,
        height,
        pixels,
    })
}

/// YCbCr (full range, PS3.3 C.7.6.3.1.2) → RGB, in place.
fn ybr_full_to_rgb(pixels: &mut [u8]) {
    for pixel in pixels.chunks_exact_mut(3) {
        let y = f32::from(pixel[0]);
        let cb = f32::from(pixel[1]) - 128.0;
        let cr = f32::from(pixel[2]) - 128.0;
        let r = y + 1.402 * cr;
        let g = y - 0.344_136 * cb - 0.714_136 * cr;
        let b = y + 1.772 * cb;
        pixel[0] = r.round().clamp(0.0, 255.0) as u8;
        pixel[1] = g.round().clamp(0.0, 255.0) as u8;
        pixel[2] = b.round().clamp(0.0, 255.0) as u8;
    }
}

/// Decodes one RLE Lossless frame (PS3.5 Annex G) to native little-endian interleaved samples.
fn rle_decode(h: &DicomHeader, fragment: &[u8]) -> Result<Vec<u8>, String> {
    let bytes_per_sample = usize::from(h.bits_allocated / 8);
    let samples = usize::from(h.samples);
    let segments = bytes_per_sample * samples;
    let pixels = h.rows as usize * h.columns as usize;
    let header = fragment
        .get(..64)
        .ok_or("the RLE fragment is shorter than its 64-byte header")?;
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let declared = word(0) as usize;
    if declared != segments {
        return Err(format!(
            "the RLE header declares {declared} segments; {samples} samples of \
             {bytes_per_sample} bytes need {segments}"
        ));
    }
    let mut out = vec![0u8; pixels * segments];
    for segment in 0..segments {
        let start = word(4 + 4 * segment) as usize;
        let end = if segment + 1 < segments {
            word(8 + 4 * segment) as usize
        } else {
            fragment.len()
        };
        let data = fragment
            .get(start..end)
            .filter(|_| start >= 64)
            .ok_or_else(|| format!("RLE segment {segment} lies outside its fragment"))?;
        // Segment order: per sample, most significant byte first; the output is little endian.
        let sample = segment / bytes_per_sample;
        let byte = bytes_per_sample - 1 - segment % bytes_per_sample;
        let offset = sample * bytes_per_sample + byte;
        let stride = segments;
        let mut written = 0usize;
        let mut i = 0usize;
        while i < data.len() && written < pixels {
            let n = data[i] as i8;
            i += 1;
            let (run, repeat) = if n >= 0 {
                let count = n as usize + 1;
                let literal = data
                    .get(i..i + count)
                    .ok_or_else(|| format!("RLE segment {segment} ends inside a literal run"))?;
                i += count;
                (literal, false)
            } else if n != -128 {
                let value = data
                    .get(i..i + 1)
                    .ok_or_else(|| format!("RLE segment {segment} ends inside a repeat run"))?;
                i += 1;
                (value, true)
            } else {
                continue;
            };
            let count = if repeat {
                (1 - isize::from(n)) as usize
            } else {
                run.len()
            };
            for k in 0..count.min(pixels - written) {
                let value = if repeat { run[0] } else { run[k] };
                out[(written + k) * stride + offset] = value;
            }
            written += count.min(pixels - written);
        }
        if written < pixels {
            return Err(format!(
                "RLE segment {segment} decodes to {written} of {pixels} pixels"
            ));
        }
    }
    Ok(out)
}

/// The JPEG stream of frame `n` (mirroring how `dicom-pixeldata` gathers fragments).
fn jpeg_stream<'a>(
    fragments: &'a [Vec<u8>],
    offsets: &[u32],
    frames: u32,
    n: u32,
) -> Result<Cow<'a, [u8]>, String> {
    if fragments.len() == 1 || fragments.len() == frames as usize {
        return fragments
            .get(n as usize)
            .map(|fragment| Cow::Borrowed(fragment.as_slice()))
            .ok_or_else(|| format!("no pixel data fragment for frame {n}"));
    }
    let base = match offsets.get(n as usize) {
        Some(offset) => *offset as usize,
        None if n == 0 => 0,
        None => return Err(format!("no offset table entry for frame {n}")),
    };
    let next = offsets.get(n as usize + 1).map(|offset| *offset as usize);
    let mut offset = 0usize;
    let mut stream = Vec::new();
    for fragment in fragments {
        if offset >= base {
            stream.extend_from_slice(fragment);
        }
        offset += fragment.len() + 8;
        if next.is_some_and(|next| offset >= next) {
            break;
        }
    }
    Ok(Cow::Owned(stream))
}

/// Checks the JPEG frame header (SOF) against the DICOM header, so the decoder allocates and
/// writes exactly what the pixel attributes declare.
fn check_jpeg_header(h: &DicomHeader, stream: &[u8]) -> Result<(), String> {
    if stream.get(..2) != Some([0xFF, 0xD8].as_slice()) {
        return Err("the JPEG frame does not start with SOI".to_owned());
    }
    let mut i = 2usize;
    loop {
        // Skip fill bytes before a marker.
        while stream.get(i) == Some(&0xFF) && stream.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(0xFF), Some(&marker)) = (stream.get(i), stream.get(i + 1)) else {
            return Err("the JPEG frame has no frame header before its data".to_owned());
        };
        i += 2;
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            continue;
        }
        let length = stream
            .get(i..i + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or("the JPEG frame ends inside a marker")?;
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let sof = stream
                .get(i + 2..i + 8)
                .ok_or("the JPEG frame header is truncated")?;
            let precision = sof[0];
            let height = u32::from(u16::from_be_bytes([sof[1], sof[2]]));
            let width = u32::from(u16::from_be_bytes([sof[3], sof[4]]));
            let components = u16::from(sof[5]);
            if (width, height) != (h.columns, h.rows) || components != h.samples {
                return Err(format!(
                    "the JPEG frame is {width}×{height} with {components} components; the \
                     header declares {}×{} with {} samples",
                    h.columns, h.rows, h.samples
                ));
            }
            let bytes = if precision == 8 { 1 } else { 2 };
            if bytes != h.bits_allocated / 8 {
                return Err(format!(
                    "a {precision}-bit JPEG frame in {} allocated bits",
                    h.bits_allocated
                ));
            }
            return Ok(());
        }
        if marker == 0xDA || marker == 0xD9 {
            return Err("the JPEG frame has no frame header before its data".to_owned());
        }
        i += length;
    }
}

fn transfer_syntax_name(uid: &str) -> &'static str {
    match uid {
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "JPEG-LS",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "JPEG 2000",
        "1.2.840.10008.1.2.4.100" | "1.2.840.10008.1.2.4.101" | "1.2.840.10008.1.2.4.102" => "MPEG",
        DEFLATED => "deflated",
        _ => "unknown",
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
