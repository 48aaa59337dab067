//! Listing a zip bundle from its central directory, with every check done before any entry
//! data is read.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use zip::CompressionMethod;
use zip::ZipArchive;

use super::bounded::BoundedReader;
use super::{EntryInfo, SourceLimits, central_directory, path};
use crate::error::BundleError;

/// The reader the zip archive works on.
pub(crate) type ArchiveReader = BufReader<File>;

/// Entries of this size or smaller are exempt from the compression ratio check: they cannot
/// bomb anything, and small text files (manifest, reports) legitimately compress well.
pub(crate) const RATIO_EXEMPT_SIZE: u64 = 1024 * 1024;

/// File type bits of a unix mode.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// A listed zip entry and its index in the archive.
#[derive(Debug)]
pub(crate) struct ZipEntry {
    pub(crate) info: EntryInfo,
    pub(crate) index: usize,
    deflated: bool,
    crc32: u32,
}

/// Opens `file` (already known to start with a zip signature) and lists its file entries.
pub(crate) fn open(
    file: File,
    display_path: &Path,
    limits: &SourceLimits,
) -> Result<(ZipArchive<ArchiveReader>, Vec<ZipEntry>), BundleError> {
    let path_string = || display_path.display().to_string();
    let corrupt = |reason: String| BundleError::CorruptZip {
        path: path_string(),
        reason,
    };
    let mut reader = BufReader::new(file);

    let directory = central_directory::locate(&mut reader).map_err(corrupt)?;
    if directory.entries > limits.max_entries as u64 {
        return Err(BundleError::TooManyEntries {
            count: directory.entries,
            limit: limits.max_entries,
        });
    }
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|source| BundleError::Io {
            path: path_string(),
            source,
        })?;
    let mut archive = ZipArchive::new(reader).map_err(|err| corrupt(err.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(BundleError::TooManyEntries {
            count: archive.len() as u64,
            limit: limits.max_entries,
        });
    }
    if archive.has_duplicate_names() {
        let mut reader = archive.into_inner();
        return Err(duplicate_raw_name(&mut reader, &directory, limits));
    }

    let mut entries = Vec::with_capacity(archive.len());
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|err| corrupt(err.to_string()))?;
        let raw_name = match entry.name() {
            Ok(name) => name.into_owned(),
            Err(_) => {
                let entry = String::from_utf8_lossy(entry.name_raw()).into_owned();
                return Err(BundleError::InvalidName { entry });
            }
        };
        let normalized = path::normalize(&raw_name)?;
        let file_type = entry.unix_mode().map(|mode| mode & S_IFMT).unwrap_or(0);
        match file_type {
            S_IFLNK => return Err(BundleError::Symlink { entry: normalized }),
            0 | S_IFREG | S_IFDIR => {}
            other => {
                return Err(BundleError::SpecialFile {
                    entry: normalized,
                    kind: special_kind(other),
                });
            }
        }
        if entry.is_dir() || file_type == S_IFDIR {
            continue;
        }
        if entry.encrypted() {
            return Err(BundleError::EncryptedEntry { entry: normalized });
        }
        let method = entry.compression();
        if !matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(BundleError::UnsupportedCompression {
                entry: normalized,
                method: format!("{method:?}"),
            });
        }
        let size = entry.size();
        let compressed = entry.compressed_size();
        super::check_sizes(&normalized, size, &mut total, limits)?;
        let ratio_exceeded = size > RATIO_EXEMPT_SIZE
            && size > compressed.saturating_mul(limits.max_compression_ratio);
        if ratio_exceeded {
            return Err(BundleError::CompressionRatio {
                entry: normalized,
                size,
                compressed,
                limit: limits.max_compression_ratio,
            });
        }
        entries.push(ZipEntry {
            info: EntryInfo {
                path: normalized,
                size,
            },
            index,
            deflated: method == CompressionMethod::Deflated,
            crc32: entry.crc32(),
        });
    }
    entries.sort_by(|a, b| a.info.path.cmp(&b.info.path));
    path::check_duplicates(entries.iter().map(|entry| entry.info.path.as_str()))?;

    let overlapping = archive
        .has_overlapping_files()
        .map_err(|err| corrupt(err.to_string()))?;
    if overlapping {
        return Err(BundleError::OverlappingEntries {
            path: path_string(),
        });
    }
    Ok((archive, entries))
}

/// Names an entry whose raw name occurs twice in the central directory.
fn duplicate_raw_name(
    reader: &mut ArchiveReader,
    directory: &central_directory::CentralDirectory,
    limits: &SourceLimits,
) -> BundleError {
    let names =
        central_directory::raw_names(reader, directory, limits.max_entries).unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for name in &names {
        if !seen.insert(name.as_slice()) {
            let entry = String::from_utf8_lossy(name).into_owned();
            return BundleError::DuplicateEntry {
                other: entry.clone(),
                entry,
            };
        }
    }
    BundleError::DuplicateEntry {
        entry: "(unidentified)".to_owned(),
        other: "(unidentified)".to_owned(),
    }
}

fn special_kind(file_type: u32) -> &'static str {
    match file_type {
        0o010_000 => "FIFO",
        0o020_000 => "character device",
        0o060_000 => "block device",
        0o140_000 => "socket",
        _ => "special file",
    }
}

/// Reads an entry's bytes, decompressed, held to the declared size and checked against the
/// declared CRC-32 at the end.
///
/// The compressed bytes come from the zip crate's raw reader and are inflated here, so the
/// size and checksum errors are this crate's own variants.
pub(crate) fn open_entry<'a>(
    archive: &'a mut ZipArchive<ArchiveReader>,
    entry: &ZipEntry,
) -> Result<Box<dyn Read + 'a>, BundleError> {
    let path = &entry.info.path;
    let raw = archive
        .by_index_raw(entry.index)
        .map_err(|source| BundleError::Zip {
            entry: path.clone(),
            source,
        })?;
    let decoded: Box<dyn Read + 'a> = if entry.deflated {
        Box::new(flate2::read::DeflateDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let bounded = BoundedReader::new(decoded, path, entry.info.size);
    Ok(Box::new(CrcReader {
        inner: bounded,
        hasher: crc32fast::Hasher::new(),
        expected: entry.crc32,
        entry: path.clone(),
    }))
}

/// Checks the CRC-32 of everything read once the inner reader ends.
struct CrcReader<R> {
    inner: R,
    hasher: crc32fast::Hasher,
    expected: u32,
    entry: String,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n_read = self.inner.read(buf)?;
        if n_read > 0 {
            self.hasher.update(&buf[..n_read]);
            return Ok(n_read);
        }
        if !buf.is_empty() && self.hasher.clone().finalize() != self.expected {
            return Err(BundleError::ChecksumMismatch {
                entry: self.entry.clone(),
            }
            .into_io());
        }
        Ok(0)
    }
}
