//! Bounds the ingest gate enforces, so that no input can make readroom allocate without limit.

/// Largest accepted `manifest.json`, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// Most exams one bundle may list.
pub const MAX_EXAMS: usize = 256;
/// Most B-scan frames one OCT exam may list.
pub const MAX_OCT_FRAMES: usize = 2048;
/// Longest identifier (exam id, subject, visit, study code) in characters.
pub const MAX_ID_LEN: usize = 64;
/// Longest path of a bundle entry in bytes.
pub const MAX_PATH_LEN: usize = 255;
/// Smallest plausible pixel spacing in micrometres (sub-micron would be a microscope, not an eye).
pub const MIN_PIXEL_SPACING_UM: f64 = 0.5;
/// Largest plausible pixel spacing in micrometres (a 45° fundus image is ~5–15 µm per pixel).
pub const MAX_PIXEL_SPACING_UM: f64 = 500.0;
