//! The error type of bundle reading and writing.
//!
//! Every variant names the bundle entry (or the bundle itself) that is wrong, so a refusal can be
//! shown to the person who prepared the bundle as is.
//! Entry names are printed with `{:?}` so control characters in hostile names are escaped.

use std::io;

use crate::inspect::InspectError;

/// Why a bundle could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bundle path or one of its files could not be read.
    #[error("{path:?}: cannot read: {source}")]
    Io {
        /// The file or directory that failed.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The path is neither a directory nor a zip archive.
    #[error("{path:?}: not a bundle: neither a directory nor a zip archive")]
    NotABundle {
        /// The path given.
        path: String,
    },
    /// The file starts like a zip archive but its structure is broken.
    #[error("{path:?}: corrupt or truncated zip archive: {reason}")]
    CorruptZip {
        /// The archive.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bundle holds more entries than allowed.
    #[error("bundle has {count} entries, more than the limit of {limit}")]
    TooManyEntries {
        /// Entries found (or declared by the zip central directory).
        count: u64,
        /// The limit.
        limit: usize,
    },
    /// An entry name is empty, not UTF-8 or has no file name part.
    #[error("entry {entry:?}: empty or invalid name")]
    InvalidName {
        /// The entry name as found (lossily decoded).
        entry: String,
    },
    /// An entry name contains NUL or another control character.
    #[error("entry {entry:?}: control character in name")]
    ControlCharacter {
        /// The entry name as found.
        entry: String,
    },
    /// An entry name is an absolute path (`/x`, `\x`, `C:\x`, `C:/x`).
    #[error("entry {entry:?}: absolute path")]
    AbsolutePath {
        /// The entry name as found.
        entry: String,
    },
    /// An entry name has a `..` component.
    #[error("entry {entry:?}: path leaves the bundle with '..'")]
    PathTraversal {
        /// The entry name as found.
        entry: String,
    },
    /// An entry name uses backslashes; bundle paths are `/`-separated.
    #[error("entry {entry:?}: backslash in path (bundle paths use '/')")]
    Backslash {
        /// The entry name as found.
        entry: String,
    },
    /// An entry is a symbolic link (zip unix mode `S_IFLNK`, or a symlink in a directory bundle).
    #[error("entry {entry:?}: symbolic link")]
    Symlink {
        /// The entry name.
        entry: String,
    },
    /// An entry is a FIFO, socket or device rather than a regular file.
    #[error("entry {entry:?}: not a regular file but a {kind}")]
    SpecialFile {
        /// The entry name.
        entry: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// Two entries have the same path after normalization (or differ only in letter case).
    #[error("entry {entry:?}: duplicate of entry {other:?}")]
    DuplicateEntry {
        /// The entry found second.
        entry: String,
        /// The entry it collides with.
        other: String,
    },
    /// A zip entry is encrypted.
    #[error("entry {entry:?}: encrypted")]
    EncryptedEntry {
        /// The entry name.
        entry: String,
    },
    /// A zip entry uses a compression method other than stored or deflate.
    #[error("entry {entry:?}: unsupported compression method {method}")]
    UnsupportedCompression {
        /// The entry name.
        entry: String,
        /// The method, as the zip crate names it.
        method: String,
    },
    /// An entry's (declared) size exceeds the per-entry limit.
    #[error("entry {entry:?}: size {size} bytes exceeds the limit of {limit} bytes")]
    EntryTooLarge {
        /// The entry name.
        entry: String,
        /// Its declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The entries' sizes add up to more than the total limit.
    #[error("entry {entry:?}: brings the bundle to {total} bytes, over the limit of {limit} bytes")]
    TotalTooLarge {
        /// The entry at which the limit was crossed.
        entry: String,
        /// The running total including this entry.
        total: u64,
        /// The limit.
        limit: u64,
    },
    /// A zip entry declares a compression ratio typical of a zip bomb.
    #[error(
        "entry {entry:?}: compression ratio over {limit}:1 ({size} bytes from {compressed} compressed bytes)"
    )]
    CompressionRatio {
        /// The entry name.
        entry: String,
        /// Declared uncompressed size.
        size: u64,
        /// Declared compressed size.
        compressed: u64,
        /// The ratio limit.
        limit: u64,
    },
    /// Zip entries share compressed bytes, a construction used by zip bombs.
    #[error("{path:?}: zip entries overlap each other")]
    OverlappingEntries {
        /// The archive.
        path: String,
    },
    /// An entry yielded more bytes than its header declared.
    #[error("entry {entry:?}: holds more than its declared {declared} bytes")]
    EntryOverflow {
        /// The entry name.
        entry: String,
        /// Declared (or listed) size.
        declared: u64,
    },
    /// An entry ended before its declared size.
    #[error("entry {entry:?}: ended after {read} of its declared {declared} bytes")]
    EntryTruncated {
        /// The entry name.
        entry: String,
        /// Declared (or listed) size.
        declared: u64,
        /// Bytes actually read.
        read: u64,
    },
    /// A zip entry's bytes do not match its CRC-32.
    #[error("entry {entry:?}: data does not match its CRC-32 checksum")]
    ChecksumMismatch {
        /// The entry name.
        entry: String,
    },
    /// No entry has this path.
    #[error("entry {entry:?}: not in the bundle")]
    NotFound {
        /// The path asked for.
        entry: String,
    },
    /// An entry is larger than the caller allowed for an in-memory read.
    #[error("entry {entry:?}: {size} bytes, more than the {max} bytes allowed")]
    TooLargeToRead {
        /// The entry name.
        entry: String,
        /// Its size.
        size: u64,
        /// The caller's maximum.
        max: u64,
    },
    /// A file of a directory bundle was replaced or changed type after the bundle was listed.
    #[error("entry {entry:?}: changed on disk after the bundle was listed")]
    EntryChanged {
        /// The entry name.
        entry: String,
    },
    /// Reading an entry's bytes failed.
    #[error("entry {entry:?}: read failed: {source}")]
    EntryIo {
        /// The entry name.
        entry: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The zip library refused to open or write an entry.
    #[error("entry {entry:?}: {source}")]
    Zip {
        /// The entry name.
        entry: String,
        /// The underlying error.
        #[source]
        source: zip::result::ZipError,
    },
    /// Writing the output bundle failed.
    #[error("writing the bundle failed: {source}")]
    Write {
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A [`PackWriter`](crate::pack::PackWriter) is unusable after an earlier failure.
    #[error("the bundle writer failed earlier (entry {entry:?}) and cannot continue")]
    WriterFailed {
        /// The entry that failed.
        entry: String,
    },
    /// A file of the bundle failed inspection.
    #[error(transparent)]
    Inspect(#[from] InspectError),
}

impl BundleError {
    /// Converts an I/O error met while reading `entry`.
    ///
    /// Entry readers from [`BundleSource::open_entry`](crate::source::BundleSource::open_entry)
    /// report [`BundleError::EntryOverflow`], [`BundleError::EntryTruncated`] and
    /// [`BundleError::ChecksumMismatch`] inside an
    /// [`io::Error`]; this unwraps them again, and wraps any other error in
    /// [`BundleError::EntryIo`].
    pub fn from_entry_io(entry: &str, err: io::Error) -> BundleError {
        let carries_bundle_error = err.get_ref().is_some_and(|inner| inner.is::<BundleError>());
        if !carries_bundle_error {
            return BundleError::EntryIo {
                entry: entry.to_owned(),
                source: err,
            };
        }
        let kind = err.kind();
        match err
            .into_inner()
            .map(|inner| inner.downcast::<BundleError>())
        {
            Some(Ok(bundle_error)) => *bundle_error,
            Some(Err(other)) => BundleError::EntryIo {
                entry: entry.to_owned(),
                source: io::Error::new(kind, other),
            },
            None => BundleError::EntryIo {
                entry: entry.to_owned(),
                source: io::Error::from(kind),
            },
        }
    }

    /// Wraps this error in an [`io::Error`] so it can travel through [`std::io::Read`].
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}
