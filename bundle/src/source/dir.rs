//! Listing and opening the files of a directory bundle without following symbolic links.

use std::fs::{self, File, Metadata};
use std::path::{Path, PathBuf};

use super::{EntryInfo, SourceLimits, path};
use crate::error::BundleError;

/// A listed file: its entry, where it is relative to the root, and which file it was.
#[derive(Debug)]
pub(crate) struct DirFile {
    pub(crate) info: EntryInfo,
    pub(crate) relative: PathBuf,
    pub(crate) identity: FileIdentity,
}

/// The device and inode of a listed file, so a file swapped after listing is noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    #[cfg(unix)]
    fn of(metadata: &Metadata) -> FileIdentity {
        use std::os::unix::fs::MetadataExt;
        FileIdentity {
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }

    #[cfg(not(unix))]
    fn of(_metadata: &Metadata) -> FileIdentity {
        FileIdentity {
            device: 0,
            inode: 0,
        }
    }
}

/// Lists every regular file under `root`, refusing symlinks and special files.
///
/// Directories count towards `max_entries` too, so a tree of millions of empty directories is
/// refused as well. The result is sorted by path.
pub(crate) fn list(root: &Path, limits: &SourceLimits) -> Result<Vec<DirFile>, BundleError> {
    let mut files = Vec::new();
    let mut pending: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    let mut n_entries: u64 = 0;
    let mut total: u64 = 0;
    while let Some((dir, prefix)) = pending.pop() {
        let read_dir = fs::read_dir(&dir).map_err(|source| io_error(&dir, source))?;
        for dir_entry in read_dir {
            let dir_entry = dir_entry.map_err(|source| io_error(&dir, source))?;
            n_entries += 1;
            if n_entries > limits.max_entries as u64 {
                return Err(BundleError::TooManyEntries {
                    count: n_entries,
                    limit: limits.max_entries,
                });
            }
            let file_name = dir_entry.file_name();
            let Some(name) = file_name.to_str() else {
                let entry = format!("{prefix}{}", file_name.to_string_lossy());
                return Err(BundleError::InvalidName { entry });
            };
            let raw = format!("{prefix}{name}");
            let normalized = path::normalize(&raw)?;
            // `DirEntry::file_type` does not follow symlinks.
            let file_type = dir_entry
                .file_type()
                .map_err(|source| io_error(&dir_entry.path(), source))?;
            if file_type.is_symlink() {
                return Err(BundleError::Symlink { entry: normalized });
            }
            if file_type.is_dir() {
                pending.push((dir_entry.path(), format!("{normalized}/")));
                continue;
            }
            if !file_type.is_file() {
                return Err(BundleError::SpecialFile {
                    entry: normalized,
                    kind: special_kind(&file_type),
                });
            }
            let metadata = fs::symlink_metadata(dir_entry.path())
                .map_err(|source| io_error(&dir_entry.path(), source))?;
            let size = metadata.len();
            super::check_sizes(&normalized, size, &mut total, limits)?;
            files.push(DirFile {
                relative: PathBuf::from(&normalized),
                identity: FileIdentity::of(&metadata),
                info: EntryInfo {
                    path: normalized,
                    size,
                },
            });
        }
    }
    files.sort_by(|a, b| a.info.path.cmp(&b.info.path));
    path::check_duplicates(files.iter().map(|file| file.info.path.as_str()))?;
    Ok(files)
}

/// Opens a listed file, refusing it if it is no longer the file that was listed.
pub(crate) fn open(root: &Path, file: &DirFile) -> Result<File, BundleError> {
    let entry = || file.info.path.clone();
    let full_path = root.join(&file.relative);
    let link_metadata =
        fs::symlink_metadata(&full_path).map_err(|source| BundleError::EntryIo {
            entry: entry(),
            source,
        })?;
    if link_metadata.file_type().is_symlink() {
        return Err(BundleError::Symlink { entry: entry() });
    }
    let opened = File::open(&full_path).map_err(|source| BundleError::EntryIo {
        entry: entry(),
        source,
    })?;
    let metadata = opened.metadata().map_err(|source| BundleError::EntryIo {
        entry: entry(),
        source,
    })?;
    let unchanged = metadata.is_file() && FileIdentity::of(&metadata) == file.identity;
    if !unchanged {
        return Err(BundleError::EntryChanged { entry: entry() });
    }
    Ok(opened)
}

fn io_error(path: &Path, source: std::io::Error) -> BundleError {
    BundleError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(unix)]
fn special_kind(file_type: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_file_type: &fs::FileType) -> &'static str {
    "special file"
}
