//! The error type of file inspection.

use std::io;

use super::ImageFormat;

/// Why a bundle file failed inspection. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// Reading the file failed.
    #[error("{path:?}: read failed: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file name's extension promises one format and the bytes are another.
    #[error("{path:?}: the name says {expected} but the content is {content}")]
    FormatMismatch {
        /// The file.
        path: String,
        /// The format the extension promises.
        expected: ImageFormat,
        /// The format found from the bytes.
        actual: ImageFormat,
        /// What the bytes are, in words (e.g. "text", "a PNG image").
        content: &'static str,
    },
    /// The header declares an image larger than the limits; nothing was allocated for it.
    #[error(
        "{path:?}: {format} image of {width}x{height} pixels is over the limits ({max_side} pixels per side, {max_pixels} pixels in all)"
    )]
    ImageTooLarge {
        /// The file.
        path: String,
        /// Its format.
        format: ImageFormat,
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
        /// Limit per side.
        max_side: u32,
        /// Limit on width times height.
        max_pixels: u64,
    },
    /// The file declares more frames (pages, B-scans) than allowed.
    #[error("{path:?}: {format} with {frames} frames, more than the limit of {limit}")]
    TooManyFrames {
        /// The file.
        path: String,
        /// Its format.
        format: ImageFormat,
        /// Declared frames.
        frames: u64,
        /// The limit.
        limit: u32,
    },
    /// A file that must be held in memory to be inspected is larger than allowed.
    #[error("{path:?}: {format} {what} larger than the {limit} bytes that can be inspected")]
    TooLargeToInspect {
        /// The file.
        path: String,
        /// Its format.
        format: ImageFormat,
        /// What had to be buffered (e.g. "file", "header").
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The file is not well-formed.
    #[error("{path:?}: malformed {format}: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// Its format.
        format: ImageFormat,
        /// What is wrong.
        reason: String,
    },
    /// The file is well-formed but uses a feature readroom does not read.
    #[error("{path:?}: unsupported {format}: {reason}")]
    Unsupported {
        /// The file.
        path: String,
        /// Its format.
        format: ImageFormat,
        /// What is unsupported.
        reason: String,
    },
}
