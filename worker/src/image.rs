//! Decoded pixels as the renderer consumes them (plaintext: lives only in worker memory).

/// Pixel samples of a decoded image, row-major, no padding.
#[derive(Clone, PartialEq, Eq)]
pub enum Pixels {
    /// 8-bit grey, one byte per pixel.
    Gray8(Vec<u8>),
    /// 16-bit grey (TIFF, DICOM), one sample per pixel, full 0..=65535 range after decoding.
    Gray16(Vec<u16>),
    /// 8-bit RGB, three bytes per pixel.
    Rgb8(Vec<u8>),
}

/// A decoded image.
#[derive(Clone, PartialEq, Eq)]
pub struct DecodedImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The samples.
    pub pixels: Pixels,
}

impl DecodedImage {
    /// Bytes held by the samples (for the per-session cache cap).
    pub fn byte_size(&self) -> usize {
        match &self.pixels {
            Pixels::Gray8(samples) | Pixels::Rgb8(samples) => samples.len(),
            Pixels::Gray16(samples) => samples.len() * 2,
        }
    }
}

/// Never print pixel data: the debug form shows only the shape.
impl std::fmt::Debug for DecodedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.pixels {
            Pixels::Gray8(_) => "gray8",
            Pixels::Gray16(_) => "gray16",
            Pixels::Rgb8(_) => "rgb8",
        };
        write!(f, "DecodedImage({}x{} {kind})", self.width, self.height)
    }
}

/// Which visit an image belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visit {
    /// The case being graded.
    Current,
    /// The same subject's prior visit (layout `prior`).
    Prior,
}

/// Which image of an exam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The exam's single image (fundus, red-free, visual field, report).
    Main,
    /// B-scan `n` (0-based) of an OCT volume.
    Slice(u32),
    /// The OCT exam's en-face / SLO image.
    Enface,
}

/// A request for one decoded image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRequest {
    /// Which visit.
    pub visit: Visit,
    /// Manifest exam id.
    pub exam: String,
    /// Which image of the exam.
    pub part: Part,
}

/// Why an image could not be provided. Messages name exams, entries and sizes, never content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The exam or part does not exist in the bundle.
    #[error("not available: {0}")]
    NotAvailable(String),
    /// The entry could not be read or decoded.
    #[error("cannot decode {entry}: {detail}")]
    Decode {
        /// Bundle entry path.
        entry: String,
        /// What went wrong.
        detail: String,
    },
    /// The image is larger than the limits allow (an image bomb).
    #[error("{entry} is too large: {detail}")]
    TooLarge {
        /// Bundle entry path.
        entry: String,
        /// Which limit.
        detail: String,
    },
}

/// Gives decoded images to the renderer (decoding lazily and caching, in the real provider).
pub trait ImageProvider {
    /// The decoded image, shared.
    fn image(&mut self, request: &ImageRequest)
    -> Result<std::sync::Arc<DecodedImage>, ImageError>;
}
