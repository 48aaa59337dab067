//! Object storage for readroom ciphertext.
//!
//! Exam bundles are stored age-encrypted, and workers read them back piece by piece, so this crate
//! is built around one narrow trait, [`ObjectStore`], whose key operation is [`ObjectStore::get_range`]:
//! a ranged read that lets a worker open a zip's central directory and seek inside the age stream
//! without downloading the whole bundle.
//! Writes go through [`ObjectStore::begin_upload`], a streaming [`Upload`] that makes nothing
//! visible until [`Upload::finish`] and leaves nothing behind after [`Upload::abort`].
//!
//! Backends:
//! - [`local::LocalStore`]: a directory (the embedded default); atomic temp-file-and-rename writes.
//! - `s3::S3Store` (feature `s3`, on by default): any S3 implementation (AWS, MinIO, s3s);
//!   multipart uploads and ranged GETs.
//!
//! [`blocking`] adapts a store to `std::io` (`Read + Seek` with a block cache, and `Write`) for the
//! zip and age crates, which run in `tokio::task::spawn_blocking`.
//!
//! Every key is checked by [`validate_key`] before it reaches a backend, which is what keeps the
//! local backend free of path traversal.
//! Errors are one enum, [`StoreError`], whose messages name the key, endpoint or path involved and
//! never contain credentials.

#![deny(missing_docs)]

pub mod blocking;
mod error;
mod key;
pub mod local;
mod range;
#[cfg(feature = "s3")]
pub mod s3;

use std::ops::Range;

use bytes::Bytes;

pub use error::StoreError;
pub use key::{MAX_KEY_LEN, validate_key};

/// The name and size of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's key.
    pub key: String,
    /// The object's size in bytes.
    pub size: u64,
}

/// A place to keep objects: a local directory or an S3 bucket.
///
/// Implementations validate every key with [`validate_key`] and report failures as [`StoreError`].
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Starts a streaming upload; nothing is visible under `key` until `finish`, and `abort` leaves nothing behind.
    ///
    /// Dropping the upload without calling either also leaves nothing behind (best effort for S3,
    /// where the abort runs on a spawned task).
    async fn begin_upload(&self, key: &str) -> Result<Box<dyn Upload>, StoreError>;

    /// Reads bytes `range` (half-open) of an object (ranged GET for S3). Errors if the range passes the end.
    ///
    /// An empty range within the object returns empty bytes.
    /// A range whose end passes the object's size is [`StoreError::RangeNotSatisfiable`], never a short read.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError>;

    /// Returns the object's size, or [`StoreError::NotFound`].
    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError>;

    /// Stores a small object in one piece, replacing any previous object under `key`.
    ///
    /// Small whole-object helpers (for checkpoints, manifests of keys...).
    async fn put(&self, key: &str, data: Bytes) -> Result<ObjectMeta, StoreError>;

    /// Reads a whole (small) object.
    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;

    /// Deletes an object. Deleting a key that does not exist succeeds, as in S3.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Lists the objects whose keys start with `prefix` (a plain string prefix, not only whole
    /// segments), sorted by key. An empty prefix lists everything.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;

    /// Readiness check used by /readyz (can we reach and write/list the bucket or directory?).
    async fn check(&self) -> Result<(), StoreError>;

    /// Human description without secrets, e.g. `local:/data/store` or `s3://bucket at http://127.0.0.1:9000`.
    fn describe(&self) -> String;
}

/// A streaming upload started by [`ObjectStore::begin_upload`].
///
/// Call [`Upload::write`] any number of times, then exactly one of [`Upload::finish`] or [`Upload::abort`].
#[async_trait::async_trait]
pub trait Upload: Send {
    /// Appends `chunk` to the object being written.
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError>;

    /// Makes the object visible under its key, atomically, and returns its final size.
    async fn finish(self: Box<Self>) -> Result<ObjectMeta, StoreError>;

    /// Discards everything written so far; nothing is left behind.
    async fn abort(self: Box<Self>) -> Result<(), StoreError>;
}
