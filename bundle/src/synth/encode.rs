//! Deterministic image encoding and file writing.
//!
//! The encoders add no metadata: no EXIF, no text chunks, no timestamps.

use std::path::Path;

use image::ExtendedColorType;
use image::ImageEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

use super::SynthError;

/// JPEG quality of synthetic fundus photographs (high, as clinical cameras save them).
pub(crate) const JPEG_QUALITY: u8 = 92;

/// Encodes RGB8 pixels as a baseline JPEG.
pub(crate) fn jpeg_rgb(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, SynthError> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY).encode(
        rgb,
        width,
        height,
        ExtendedColorType::Rgb8,
    )?;
    Ok(bytes)
}

/// Encodes 8-bit grayscale pixels as PNG, favouring speed (OCT speckle barely compresses).
pub(crate) fn png_gray(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>, SynthError> {
    let mut bytes = Vec::new();
    PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, FilterType::Sub).write_image(
        pixels,
        width,
        height,
        ExtendedColorType::L8,
    )?;
    Ok(bytes)
}

/// Writes `bytes` to `path`.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    std::fs::write(path, bytes).map_err(|source| SynthError::io(path, source))
}

/// Creates `path` and its parents.
pub(crate) fn create_dir(path: &Path) -> Result<(), SynthError> {
    std::fs::create_dir_all(path).map_err(|source| SynthError::io(path, source))
}
