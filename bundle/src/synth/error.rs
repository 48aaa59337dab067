//! The error type of the synthetic bundle generator.

use std::path::PathBuf;

/// Why a synthetic bundle could not be generated or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// The specification asks for something the generator does not produce (the message says what).
    #[error("invalid synthetic bundle specification: {0}")]
    InvalidSpec(String),
    /// A file or directory could not be written.
    #[error("cannot write {path}")]
    Io {
        /// The file or directory being written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An image could not be encoded or decoded.
    #[error("image encoding failed")]
    Image(#[from] image::ImageError),
    /// A DICOM object could not be built or written.
    #[error("DICOM encoding failed: {0}")]
    Dicom(String),
    /// The manifest or ground truth could not be serialized.
    #[error("JSON serialization failed")]
    Json(#[from] serde_json::Error),
    /// A rendering thread failed (a bug, reported instead of propagating a panic).
    #[error("synthetic bundle generation failed: {0}")]
    Internal(String),
    /// The input photograph is not a baseline or progressive JPEG this module can rewrite.
    #[error("invalid JPEG input: {0}")]
    InvalidJpeg(String),
}

impl SynthError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> SynthError {
        SynthError::Io {
            path: path.into(),
            source,
        }
    }
}
