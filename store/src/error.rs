//! The one error type of the store, [`StoreError`].
//!
//! Every variant names what went wrong in words a user or operator can act on
//! (which key, which endpoint, which path) and never carries credentials.

use std::ops::Range;
use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No object exists under `key`.
    #[error("object {key:?} not found")]
    NotFound {
        /// The key that was looked up.
        key: String,
    },

    /// The key is not an acceptable object key (see [`crate::validate_key`]).
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key, verbatim.
        key: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// The object store could not be reached at all (connection refused, DNS failure, timeout).
    #[error("object store at {endpoint} is unreachable: {detail}")]
    Unreachable {
        /// Where the store was expected, without credentials.
        endpoint: String,
        /// What the network layer reported.
        detail: String,
    },

    /// The object store refused the credentials or the operation.
    #[error(
        "object store denied access (check the access key id, the secret key and the bucket policy): {detail}"
    )]
    AccessDenied {
        /// The server's error code and message.
        detail: String,
    },

    /// The configured bucket does not exist.
    #[error("bucket {bucket:?} does not exist at {endpoint}")]
    BucketNotFound {
        /// The bucket name.
        bucket: String,
        /// Where it was looked up.
        endpoint: String,
    },

    /// A ranged read asked for bytes past the end of the object.
    #[error("byte range {}..{} of object {key:?} is outside the object, which has {size} bytes", range.start, range.end)]
    RangeNotSatisfiable {
        /// The object key.
        key: String,
        /// The requested half-open range.
        range: Range<u64>,
        /// The object's size in bytes (0 when the server did not say).
        size: u64,
    },

    /// The store's configuration is unusable (for example a part size below the S3 minimum).
    #[error("invalid object store configuration: {detail}")]
    Config {
        /// What is wrong and how to fix it.
        detail: String,
    },

    /// A file-system operation of the local store failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// Any other failure reported by the backend (server errors, malformed responses).
    #[error("object store error: {detail}")]
    Backend {
        /// The backend's description of the failure.
        detail: String,
    },
}

impl StoreError {
    /// Builds an [`StoreError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`StoreError::InvalidKey`].
    pub(crate) fn invalid_key(key: &str, reason: impl Into<String>) -> Self {
        StoreError::InvalidKey {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}
