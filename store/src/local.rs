//! [`LocalStore`]: objects as files under a root directory (the embedded default).
//!
//! A key maps to the relative path of the same name under the root, so `bundles/a.age` is
//! `<root>/bundles/a.age`.
//! Writes are atomic: an upload writes a temporary file in `<root>/.tmp` (the same file system, so
//! the final rename is atomic), syncs it to disk, then renames it into place and syncs the
//! directory.
//! Until then readers see either the previous object or none; an aborted or dropped upload deletes
//! its temporary file.
//! The first key segment `.tmp` is reserved for this and rejected as a key.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

use crate::range::check_range;
use crate::{ObjectMeta, ObjectStore, StoreError, Upload, validate_key};

/// The directory under the root that holds uploads in progress.
const TMP_DIR: &str = ".tmp";

/// An [`ObjectStore`] over a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    /// Absolute, canonical path of the root directory.
    root: PathBuf,
    /// `root/.tmp`, where uploads in progress live.
    tmp_dir: PathBuf,
}

impl LocalStore {
    /// Opens (creating it if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|source| StoreError::io(&root, source))?;
        let root = root
            .canonicalize()
            .map_err(|source| StoreError::io(&root, source))?;
        let tmp_dir = root.join(TMP_DIR);
        fs::create_dir_all(&tmp_dir).map_err(|source| StoreError::io(&tmp_dir, source))?;
        Ok(LocalStore { root, tmp_dir })
    }

    /// The store's root directory (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a key to its file path, after validating it.
    fn object_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        let first_segment = key.split('/').next().unwrap_or_default();
        if first_segment == TMP_DIR {
            return Err(StoreError::invalid_key(
                key,
                format!("the first segment `{TMP_DIR}` is reserved by the local store"),
            ));
        }
        Ok(self.root.join(key))
    }
}

/// Runs blocking file-system work off the async runtime.
async fn run_blocking<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join_error) => Err(StoreError::Backend {
            detail: format!("local store task failed: {join_error}"),
        }),
    }
}

/// Opens an object file for reading and returns it with its size; a missing file or a directory
/// (a key that is only a prefix of other keys) is [`StoreError::NotFound`].
fn open_object(path: &Path, key: &str) -> Result<(fs::File, u64), StoreError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(error) if is_missing(&error) => {
            return Err(StoreError::NotFound {
                key: key.to_owned(),
            });
        }
        Err(error) => return Err(StoreError::io(path, error)),
    };
    let metadata = file
        .metadata()
        .map_err(|source| StoreError::io(path, source))?;
    if !metadata.is_file() {
        return Err(StoreError::NotFound {
            key: key.to_owned(),
        });
    }
    Ok((file, metadata.len()))
}

/// True for errors that mean "there is no such file here".
fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Syncs a directory so that a rename inside it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let handle = fs::File::open(dir).map_err(|source| StoreError::io(dir, source))?;
    handle
        .sync_all()
        .map_err(|source| StoreError::io(dir, source))
}

#[async_trait::async_trait]
impl ObjectStore for LocalStore {
    async fn begin_upload(&self, key: &str) -> Result<Box<dyn Upload>, StoreError> {
        let destination = self.object_path(key)?;
        let tmp_dir = self.tmp_dir.clone();
        let (file, temp_path) = run_blocking(move || {
            let named = tempfile::Builder::new()
                .prefix("upload-")
                .suffix(".part")
                .tempfile_in(&tmp_dir)
                .map_err(|source| StoreError::io(&tmp_dir, source))?;
            Ok(named.into_parts())
        })
        .await?;
        Ok(Box::new(LocalUpload {
            key: key.to_owned(),
            destination,
            file: Some(tokio::fs::File::from_std(file)),
            temp_path: Some(temp_path),
            size: 0,
        }))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        let path = self.object_path(key)?;
        let key = key.to_owned();
        run_blocking(move || {
            let (mut file, size) = open_object(&path, &key)?;
            check_range(&key, &range, size)?;
            let length = usize::try_from(range.end - range.start).map_err(|_| {
                StoreError::RangeNotSatisfiable {
                    key: key.clone(),
                    range: range.clone(),
                    size,
                }
            })?;
            let mut buffer = vec![0; length];
            file.seek(SeekFrom::Start(range.start))
                .map_err(|source| StoreError::io(&path, source))?;
            file.read_exact(&mut buffer)
                .map_err(|source| StoreError::io(&path, source))?;
            Ok(Bytes::from(buffer))
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        let path = self.object_path(key)?;
        let key = key.to_owned();
        run_blocking(move || {
            let (_file, size) = open_object(&path, &key)?;
            Ok(ObjectMeta { key, size })
        })
        .await
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<ObjectMeta, StoreError> {
        let mut upload = self.begin_upload(key).await?;
        upload.write(data).await?;
        upload.finish().await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.object_path(key)?;
        let key = key.to_owned();
        run_blocking(move || {
            let (mut file, size) = open_object(&path, &key)?;
            let mut buffer = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.read_to_end(&mut buffer)
                .map_err(|source| StoreError::io(&path, source))?;
            Ok(Bytes::from(buffer))
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.object_path(key)?;
        run_blocking(move || match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if is_missing(&error) => Ok(()),
            // A directory is a key prefix, not an object: there is nothing to delete.
            Err(_) if path.is_dir() => Ok(()),
            Err(error) => Err(StoreError::io(&path, error)),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        run_blocking(move || {
            let mut objects = Vec::new();
            list_dir(&root, "", &prefix, &mut objects)?;
            objects.sort_by(|left, right| left.key.cmp(&right.key));
            Ok(objects)
        })
        .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        let root = self.root.clone();
        let tmp_dir = self.tmp_dir.clone();
        run_blocking(move || {
            fs::read_dir(&root).map_err(|source| StoreError::io(&root, source))?;
            let mut probe = tempfile::Builder::new()
                .prefix("readyz-")
                .tempfile_in(&tmp_dir)
                .map_err(|source| StoreError::io(&tmp_dir, source))?;
            io::Write::write_all(&mut probe, b"ok")
                .map_err(|source| StoreError::io(probe.path(), source))?;
            probe
                .close()
                .map_err(|source| StoreError::io(&tmp_dir, source))
        })
        .await
    }

    fn describe(&self) -> String {
        format!("local:{}", self.root.display())
    }
}

/// Appends to `objects` every file under `dir` (whose key prefix is `dir_key`, empty for the root)
/// whose key starts with `prefix`.
fn list_dir(
    dir: &Path,
    dir_key: &str,
    prefix: &str,
    objects: &mut Vec<ObjectMeta>,
) -> Result<(), StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // The directory vanished while we were listing (a concurrent delete): nothing to list.
        Err(error) if is_missing(&error) => return Ok(()),
        Err(error) => return Err(StoreError::io(dir, error)),
    };
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::io(dir, source))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if dir_key.is_empty() && name == TMP_DIR {
            continue;
        }
        let key = if dir_key.is_empty() {
            name
        } else {
            format!("{dir_key}/{name}")
        };
        if validate_key(&key).is_err() {
            continue;
        }
        let file_type = entry
            .file_type()
            .map_err(|source| StoreError::io(entry.path(), source))?;
        if file_type.is_dir() {
            let dir_prefix = format!("{key}/");
            let may_match = dir_prefix.starts_with(prefix) || prefix.starts_with(&dir_prefix);
            if may_match {
                list_dir(&entry.path(), &key, prefix, objects)?;
            }
            continue;
        }
        if !file_type.is_file() || !key.starts_with(prefix) {
            continue;
        }
        let metadata = entry
            .metadata()
            .map_err(|source| StoreError::io(entry.path(), source))?;
        objects.push(ObjectMeta {
            key,
            size: metadata.len(),
        });
    }
    Ok(())
}

/// An upload into a temporary file of the local store.
struct LocalUpload {
    key: String,
    destination: PathBuf,
    /// The open temporary file; `None` once finished or aborted.
    file: Option<tokio::fs::File>,
    /// The temporary file's path; deleting it on drop is what makes a forgotten upload leave nothing.
    temp_path: Option<TempPath>,
    /// Bytes written so far.
    size: u64,
}

impl LocalUpload {
    fn temp_display_path(&self) -> PathBuf {
        self.temp_path
            .as_ref()
            .map(|path| path.to_path_buf())
            .unwrap_or_default()
    }

    fn closed_error(&self) -> StoreError {
        StoreError::Backend {
            detail: format!("upload of {:?} is already finished or aborted", self.key),
        }
    }
}

#[async_trait::async_trait]
impl Upload for LocalUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        let temp_display_path = self.temp_display_path();
        let Some(file) = self.file.as_mut() else {
            return Err(self.closed_error());
        };
        file.write_all(&chunk)
            .await
            .map_err(|source| StoreError::io(temp_display_path, source))?;
        self.size += chunk.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<ObjectMeta, StoreError> {
        let temp_display_path = self.temp_display_path();
        let (Some(mut file), Some(temp_path)) = (self.file.take(), self.temp_path.take()) else {
            return Err(self.closed_error());
        };
        file.flush()
            .await
            .map_err(|source| StoreError::io(&temp_display_path, source))?;
        file.sync_all()
            .await
            .map_err(|source| StoreError::io(&temp_display_path, source))?;
        drop(file);
        let destination = self.destination.clone();
        run_blocking(move || {
            let parent = destination.parent().unwrap_or(Path::new("/")).to_path_buf();
            fs::create_dir_all(&parent).map_err(|source| StoreError::io(&parent, source))?;
            temp_path
                .persist(&destination)
                .map_err(|error| StoreError::io(&destination, error.error))?;
            sync_dir(&parent)
        })
        .await?;
        Ok(ObjectMeta {
            key: self.key.clone(),
            size: self.size,
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        drop(self.file.take());
        let Some(temp_path) = self.temp_path.take() else {
            return Ok(());
        };
        let temp_display_path = temp_path.to_path_buf();
        run_blocking(move || {
            temp_path
                .close()
                .map_err(|source| StoreError::io(temp_display_path, source))
        })
        .await
    }
}
