//! What a bundle file is, and its raw metadata.
//!
//! [`inspect`] recognizes the format from the file's first bytes (never from its name, although
//! a name that promises another format is refused), reads the image geometry from headers only,
//! and lists every metadata item it finds: EXIF (including GPS), XMP, IPTC, PNG text chunks,
//! TIFF ASCII tags, JPEG comments and, for DICOM, every attribute outside the pixel data.
//!
//! Nothing here decides whether an item is identifying; the de-identification rules in
//! `readroom-domain` do that with the [`FileReport`].
//! Pixels are never decoded, and every read is bounded: JPEG and PNG are walked as streams, DICOM
//! is streamed with its pixel data skipped, and only TIFF (whose directories may point anywhere)
//! is held in memory, up to [`ImageLimits::max_buffered_bytes`].

mod dicom;
mod error;
mod exif;
mod iptc;
mod jpeg;
mod png;
mod sniff;
mod text;
mod tiff;
mod xmp;

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

pub use error::InspectError;

use crate::source::read_up_to;

/// Bounds on what an inspected file may declare or need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLimits {
    /// Longest accepted image side in pixels.
    pub max_side: u32,
    /// Most pixels (width times height) of one frame.
    pub max_pixels: u64,
    /// Most frames (TIFF pages, DICOM frames, APNG frames).
    pub max_frames: u32,
    /// Most bytes held in memory for one file: a whole TIFF, or the non-pixel part of a DICOM.
    pub max_buffered_bytes: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_side: 16_384,
            max_pixels: 200_000_000,
            max_frames: 2048,
            max_buffered_bytes: 64 << 20,
        }
    }
}

/// A file format, as recognized from the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG (JFIF or EXIF).
    Jpeg,
    /// PNG (including APNG).
    Png,
    /// TIFF or BigTIFF.
    Tiff,
    /// DICOM Part 10 file (128-byte preamble and `DICM`).
    Dicom,
    /// A JSON document (starts with `{` or `[`).
    Json,
    /// Anything else.
    Other,
}

impl ImageFormat {
    /// The format's usual name.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Png => "PNG",
            ImageFormat::Tiff => "TIFF",
            ImageFormat::Dicom => "DICOM",
            ImageFormat::Json => "JSON",
            ImageFormat::Other => "other data",
        }
    }

    /// The format a file name's extension promises, if it names one of the known formats.
    ///
    /// Unknown extensions and names without one promise nothing (DICOM files are often named
    /// without an extension).
    pub fn from_path(path: &str) -> Option<ImageFormat> {
        let file_name = path.rsplit('/').next().unwrap_or(path);
        let (_, extension) = file_name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" | "jpe" | "jfif" => Some(ImageFormat::Jpeg),
            "png" | "apng" => Some(ImageFormat::Png),
            "tif" | "tiff" => Some(ImageFormat::Tiff),
            "dcm" | "dicom" => Some(ImageFormat::Dicom),
            "json" => Some(ImageFormat::Json),
            _ => None,
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`inspect`] found in one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// The file's bundle path, as given.
    pub path: String,
    /// The format recognized from the bytes.
    pub format: ImageFormat,
    /// Width in pixels of the first frame (0 for JSON, other data and DICOM without pixels).
    pub width: u32,
    /// Height in pixels of the first frame.
    pub height: u32,
    /// Frames: TIFF pages, DICOM NumberOfFrames, APNG frames; 1 for a still image.
    pub frames: u32,
    /// Bits per sample as stored (PNG palette images report the index depth).
    pub bits_per_sample: u16,
    /// Samples per pixel as stored (1 for a PNG palette image).
    pub channels: u8,
    /// Every metadata item found, in file order.
    pub metadata: Vec<MetadataItem>,
    /// DICOM details, for DICOM files.
    pub dicom: Option<DicomInfo>,
}

/// One raw metadata item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataItem {
    /// Where it was found: `"EXIF"`, `"XMP"`, `"IPTC"`, `"PNG tEXt"`, `"PNG iTXt"`, `"PNG zTXt"`,
    /// `"PNG tIME"`, `"TIFF"`, `"JPEG COM"`, or `"JPEG trailer"` / `"PNG trailer"` for bytes after
    /// the end of the image.
    pub container: &'static str,
    /// The item's name in its container, e.g. `"Artist"`, `"GPSLatitude"`, `"dc:creator"`,
    /// `"2:80 By-line"`, `"Author"`.
    pub key: String,
    /// The value as text, truncated to 4096 characters.
    pub value: String,
}

/// What a DICOM file holds besides its pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DicomInfo {
    /// SOP Class UID (from the file meta group, else from the data set).
    pub sop_class_uid: String,
    /// Modality (0008,0060), empty when absent.
    pub modality: String,
    /// Every element of the data set except pixel data and the file meta group (0002), with the
    /// contents of sequences flattened after the sequence element itself.
    pub attributes: Vec<DicomAttribute>,
}

/// One DICOM data element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DicomAttribute {
    /// Where the element sits: empty at the top level, otherwise the enclosing sequences and item
    /// indices, e.g. `(0040,0275)[0]` or `(0040,0275)[0]/(0008,1110)[1]`.
    pub path: String,
    /// Group and element.
    pub tag: (u16, u16),
    /// Keyword from the standard dictionary, or empty for private and unknown tags.
    pub keyword: String,
    /// Value representation, e.g. `"PN"`.
    pub vr: String,
    /// The value as text (multiple values joined with `\`), truncated to 256 characters.
    /// Sequences show their item count, binary values their bytes as text when printable and as
    /// hex otherwise.
    pub value: String,
    /// Whether the tag is private (odd group).
    pub private: bool,
}

/// Geometry read from a header.
#[derive(Debug, Default, Clone, Copy)]
struct Geometry {
    width: u32,
    height: u32,
    frames: u32,
    bits_per_sample: u16,
    channels: u8,
}

/// Longest metadata value kept, in characters.
const MAX_VALUE_CHARS: usize = 4096;
/// Most metadata items kept for one file.
const MAX_METADATA_ITEMS: usize = 65_536;
/// Most bytes of metadata values kept for one file.
const MAX_METADATA_BYTES: usize = 16 << 20;
/// Read buffer size.
const READ_BUFFER_LEN: usize = 64 * 1024;

/// Recognizes `reader`'s format, reads its geometry and metadata, and reads it to its end.
///
/// `path` is the file's bundle path; its extension must agree with the content when it names a
/// known format. The whole input is consumed on success, so a caller may hash or copy the bytes
/// as they pass.
pub fn inspect(
    path: &str,
    reader: &mut dyn Read,
    limits: &ImageLimits,
) -> Result<FileReport, InspectError> {
    let mut prefix = [0u8; sniff::PREFIX_LEN];
    let n_prefix = read_up_to(reader, &mut prefix).map_err(|source| InspectError::Io {
        path: path.to_owned(),
        source,
    })?;
    let prefix = &prefix[..n_prefix];
    let detected = sniff::detect(prefix);
    if let Some(expected) = ImageFormat::from_path(path)
        && expected != detected
    {
        return Err(InspectError::FormatMismatch {
            path: path.to_owned(),
            expected,
            actual: detected,
            content: sniff::describe(prefix, detected),
        });
    }

    let mut input =
        BufReader::with_capacity(READ_BUFFER_LEN, io::Cursor::new(prefix).chain(reader));
    let mut ctx = Ctx {
        path,
        format: detected,
        limits,
        metadata: Vec::new(),
        metadata_bytes: 0,
    };
    let (geometry, dicom) = match detected {
        ImageFormat::Jpeg => (jpeg::inspect(&mut input, &mut ctx)?, None),
        ImageFormat::Png => (png::inspect(&mut input, &mut ctx)?, None),
        ImageFormat::Tiff => (tiff::inspect(&mut input, &mut ctx)?, None),
        ImageFormat::Dicom => {
            let (geometry, info) = dicom::inspect(&mut input, &mut ctx)?;
            (geometry, Some(info))
        }
        ImageFormat::Json | ImageFormat::Other => {
            ctx.drain(&mut input)?;
            (Geometry::default(), None)
        }
    };
    Ok(FileReport {
        path: path.to_owned(),
        format: detected,
        width: geometry.width,
        height: geometry.height,
        frames: geometry.frames,
        bits_per_sample: geometry.bits_per_sample,
        channels: geometry.channels,
        metadata: ctx.metadata,
        dicom,
    })
}

/// State shared by the format readers: who is being read, the limits, and the items found.
struct Ctx<'a> {
    path: &'a str,
    format: ImageFormat,
    limits: &'a ImageLimits,
    metadata: Vec<MetadataItem>,
    /// Bytes of keys and values in `metadata`.
    metadata_bytes: usize,
}

impl Ctx<'_> {
    fn malformed(&self, reason: impl Into<String>) -> InspectError {
        InspectError::Malformed {
            path: self.path.to_owned(),
            format: self.format,
            reason: reason.into(),
        }
    }

    fn unsupported(&self, reason: impl Into<String>) -> InspectError {
        InspectError::Unsupported {
            path: self.path.to_owned(),
            format: self.format,
            reason: reason.into(),
        }
    }

    /// Maps a read error; running out of input is a malformed (truncated) file.
    fn io(&self, err: io::Error) -> InspectError {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            return self.malformed("truncated: unexpected end of file");
        }
        InspectError::Io {
            path: self.path.to_owned(),
            source: err,
        }
    }

    /// Records a metadata item, truncating its value.
    fn push(
        &mut self,
        container: &'static str,
        key: impl Into<String>,
        value: impl AsRef<str>,
    ) -> Result<(), InspectError> {
        if self.metadata.len() >= MAX_METADATA_ITEMS {
            return Err(self.malformed(format!("more than {MAX_METADATA_ITEMS} metadata items")));
        }
        let key = key.into();
        let value = text::truncate(value.as_ref(), MAX_VALUE_CHARS);
        self.metadata_bytes += key.len() + value.len();
        if self.metadata_bytes > MAX_METADATA_BYTES {
            return Err(self.malformed(format!("more than {MAX_METADATA_BYTES} bytes of metadata")));
        }
        self.metadata.push(MetadataItem {
            container,
            key,
            value,
        });
        Ok(())
    }

    /// Refuses a frame whose declared size is over the limits.
    fn check_dimensions(&self, width: u64, height: u64) -> Result<(), InspectError> {
        let limits = self.limits;
        let too_large = width > u64::from(limits.max_side)
            || height > u64::from(limits.max_side)
            || width.saturating_mul(height) > limits.max_pixels;
        if too_large {
            return Err(InspectError::ImageTooLarge {
                path: self.path.to_owned(),
                format: self.format,
                width,
                height,
                max_side: limits.max_side,
                max_pixels: limits.max_pixels,
            });
        }
        if width == 0 || height == 0 {
            return Err(self.malformed(format!("image of {width}x{height} pixels")));
        }
        Ok(())
    }

    /// Refuses more frames than allowed.
    fn check_frames(&self, frames: u64) -> Result<(), InspectError> {
        if frames > u64::from(self.limits.max_frames) {
            return Err(InspectError::TooManyFrames {
                path: self.path.to_owned(),
                format: self.format,
                frames,
                limit: self.limits.max_frames,
            });
        }
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes.
    fn read_exact(&self, input: &mut dyn BufRead, buf: &mut [u8]) -> Result<(), InspectError> {
        input.read_exact(buf).map_err(|err| self.io(err))
    }

    /// Reads exactly `len` bytes into a new vector, growing it only as data arrives.
    fn read_vec(&self, input: &mut dyn BufRead, len: u64) -> Result<Vec<u8>, InspectError> {
        let mut bytes = Vec::new();
        let n_read = (&mut *input)
            .take(len)
            .read_to_end(&mut bytes)
            .map_err(|err| self.io(err))?;
        if (n_read as u64) < len {
            return Err(self.malformed("truncated: unexpected end of file"));
        }
        Ok(bytes)
    }

    /// Reads the input to its end; returns the number of bytes.
    fn drain(&self, input: &mut dyn BufRead) -> Result<u64, InspectError> {
        io::copy(input, &mut io::sink()).map_err(|err| self.io(err))
    }
}
