//! Reading a bundle safely from a directory or a `.zip` file.
//!
//! [`BundleSource::open`] lists every file of the bundle and refuses, before any file data is
//! read, whatever could escape the bundle or exhaust resources: unsafe paths, symlinks, special
//! files, duplicates, encrypted or exotically compressed zip entries, zip bombs and too many
//! entries.
//! [`BundleSource::open_entry`] then streams one file at a time, holding it to its listed size.
//!
//! This module only reads; deciding whether a file's content or name is identifying is the job of
//! the de-identification gate in `readroom-domain`.

mod archive;
mod bounded;
mod central_directory;
mod dir;
pub(crate) mod path;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use crate::error::BundleError;
use bounded::BoundedReader;

/// Bounds applied while listing and reading a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLimits {
    /// Most entries (files, plus directories for a directory bundle).
    pub max_entries: usize,
    /// Largest single entry in bytes (declared uncompressed size for zips).
    pub max_entry_size: u64,
    /// Largest sum of all entry sizes in bytes.
    pub max_total_size: u64,
    /// Largest ratio of uncompressed to compressed size of a zip entry (entries up to 1 MiB are
    /// exempt).
    pub max_compression_ratio: u64,
}

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            max_entries: 100_000,
            max_entry_size: 4 << 30,
            max_total_size: 64 << 30,
            max_compression_ratio: 100,
        }
    }
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Normalized path: relative, `/`-separated, without `.` or empty components.
    pub path: String,
    /// Size in bytes (declared uncompressed size for zip entries).
    pub size: u64,
}

/// Whether a bundle came from a directory or a zip archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A directory on disk.
    Dir,
    /// A zip archive.
    Zip,
}

/// An opened, fully listed and checked bundle.
pub struct BundleSource {
    storage: Storage,
    /// Sorted by path; the storage's `files[i]` tells where `entries[i]` lives.
    entries: Vec<EntryInfo>,
}

enum Storage {
    Dir {
        root: PathBuf,
        files: Vec<dir::DirFile>,
    },
    Zip {
        archive: ZipArchive<archive::ArchiveReader>,
        files: Vec<archive::ZipEntry>,
    },
}

impl std::fmt::Debug for BundleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleSource")
            .field("kind", &self.kind())
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// Zip archives start with a local file header, or with the end record when empty.
const ZIP_MAGICS: [[u8; 4]; 2] = [*b"PK\x03\x04", *b"PK\x05\x06"];

impl BundleSource {
    /// Opens a directory or a zip archive (recognized by its `PK` signature, whatever its name)
    /// and checks every entry against `limits`.
    pub fn open(path: &Path, limits: &SourceLimits) -> Result<BundleSource, BundleError> {
        let display = || path.display().to_string();
        let metadata = fs::metadata(path).map_err(|source| BundleError::Io {
            path: display(),
            source,
        })?;
        if metadata.is_dir() {
            let root = fs::canonicalize(path).map_err(|source| BundleError::Io {
                path: display(),
                source,
            })?;
            let files = dir::list(&root, limits)?;
            let entries = files.iter().map(|file| file.info.clone()).collect();
            return Ok(BundleSource {
                storage: Storage::Dir { root, files },
                entries,
            });
        }
        if !metadata.is_file() {
            return Err(BundleError::NotABundle { path: display() });
        }
        let mut file = File::open(path).map_err(|source| BundleError::Io {
            path: display(),
            source,
        })?;
        let mut magic = [0u8; 4];
        let n_read = read_up_to(&mut file, &mut magic).map_err(|source| BundleError::Io {
            path: display(),
            source,
        })?;
        if n_read < magic.len() || !ZIP_MAGICS.contains(&magic) {
            return Err(BundleError::NotABundle { path: display() });
        }
        let (archive, files) = archive::open(file, path, limits)?;
        let entries = files.iter().map(|file| file.info.clone()).collect();
        Ok(BundleSource {
            storage: Storage::Zip { archive, files },
            entries,
        })
    }

    /// Whether this bundle is a directory or a zip archive.
    pub fn kind(&self) -> SourceKind {
        match self.storage {
            Storage::Dir { .. } => SourceKind::Dir,
            Storage::Zip { .. } => SourceKind::Zip,
        }
    }

    /// Every file of the bundle, sorted by path. Directories are not listed.
    pub fn entries(&self) -> &[EntryInfo] {
        &self.entries
    }

    /// The entry with this (normalized) path, if any.
    pub fn entry(&self, path: &str) -> Option<&EntryInfo> {
        self.position(path).map(|index| &self.entries[index])
    }

    /// Streams the bytes of one entry.
    ///
    /// The reader yields exactly the entry's listed size: more fails with
    /// [`BundleError::EntryOverflow`] and less with [`BundleError::EntryTruncated`], carried in an
    /// [`io::Error`] (recover them with [`BundleError::from_entry_io`]).
    /// Zip entries are also checked against their CRC-32 at the end
    /// ([`BundleError::ChecksumMismatch`]).
    pub fn open_entry(&mut self, path: &str) -> Result<Box<dyn Read + '_>, BundleError> {
        let Some(index) = self.position(path) else {
            return Err(BundleError::NotFound {
                entry: path.to_owned(),
            });
        };
        let info = &self.entries[index];
        match &mut self.storage {
            Storage::Dir { root, files } => {
                let file = dir::open(root, &files[index])?;
                Ok(Box::new(BoundedReader::new(file, &info.path, info.size)))
            }
            Storage::Zip { archive, files } => archive::open_entry(archive, &files[index]),
        }
    }

    /// Reads a whole entry into memory, refusing it when it is larger than `max` bytes.
    pub fn read_small(&mut self, path: &str, max: u64) -> Result<Vec<u8>, BundleError> {
        let Some(info) = self.entry(path) else {
            return Err(BundleError::NotFound {
                entry: path.to_owned(),
            });
        };
        if info.size > max {
            return Err(BundleError::TooLargeToRead {
                entry: path.to_owned(),
                size: info.size,
                max,
            });
        }
        let capacity = usize::try_from(info.size).unwrap_or(0);
        let mut reader = self.open_entry(path)?;
        let mut bytes = Vec::with_capacity(capacity);
        reader
            .read_to_end(&mut bytes)
            .map_err(|err| BundleError::from_entry_io(path, err))?;
        Ok(bytes)
    }

    fn position(&self, path: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|entry| entry.path.as_str().cmp(path))
            .ok()
    }
}

/// Adds an entry's size to the running total and checks both against the limits.
fn check_sizes(
    entry: &str,
    size: u64,
    total: &mut u64,
    limits: &SourceLimits,
) -> Result<(), BundleError> {
    if size > limits.max_entry_size {
        return Err(BundleError::EntryTooLarge {
            entry: entry.to_owned(),
            size,
            limit: limits.max_entry_size,
        });
    }
    *total = total.saturating_add(size);
    if *total > limits.max_total_size {
        return Err(BundleError::TotalTooLarge {
            entry: entry.to_owned(),
            total: *total,
            limit: limits.max_total_size,
        });
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
pub(crate) fn read_up_to(reader: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}
