//! Random access to an encrypted bundle: age STREAM seek + zip central directory.
//!
//! A stored bundle is `age(zip)`: a zip of stored (uncompressed) entries, encrypted to the
//! workers' recipients. age encrypts in independent 64 KiB chunks, and its stream reader can seek,
//! decrypting only the chunk it lands in. The zip's central directory sits at the end and gives
//! every entry's offset. So opening a bundle reads the age header, the last chunk or two (the
//! central directory), and reading an entry reads only the chunks that hold it.
//!
//! This type is synchronous: give it a `Read + Seek` over the ciphertext (for the object store,
//! `readroom_store::blocking::RangeReader` in `spawn_blocking`).

use std::io::{Read, Seek};

use readroom_domain::manifest::{MANIFEST_FILE, Manifest, ManifestError};

/// Why an encrypted bundle could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// None of the worker's identities is among the bundle's recipients.
    #[error(
        "this worker's identity cannot decrypt the bundle (it was encrypted to other recipients)"
    )]
    WrongKey,
    /// The object is not an age file (or its header is damaged).
    #[error("the stored object is not a valid age file: {detail}")]
    NotAge {
        /// The decryptor's message.
        detail: String,
    },
    /// The ciphertext failed authentication or ended early: it was corrupted or truncated.
    #[error("the ciphertext is corrupted or truncated ({context}): {detail}")]
    Corrupt {
        /// What was being read.
        context: String,
        /// The underlying error.
        detail: String,
    },
    /// The decrypted bundle lacks an entry.
    #[error("the bundle has no entry {path:?}")]
    NoEntry {
        /// The entry.
        path: String,
    },
    /// An entry is larger than the caller allows.
    #[error("entry {path:?} is {size} bytes; the limit here is {limit}")]
    TooLarge {
        /// The entry.
        path: String,
        /// Its size.
        size: u64,
        /// The caller's limit.
        limit: u64,
    },
    /// The decrypted manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// An opened encrypted bundle. Holds the decrypted central directory and manifest, nothing else.
pub struct EncryptedBundle<R: Read + Seek> {
    archive: zip::ZipArchive<age::stream::StreamReader<R>>,
    manifest: Manifest,
}

impl<R: Read + Seek> EncryptedBundle<R> {
    /// Opens `ciphertext` with the worker's identities and reads the manifest.
    pub fn open<'a>(
        ciphertext: R,
        identities: impl Iterator<Item = &'a dyn age::Identity>,
    ) -> Result<Self, OpenError> {
        let decryptor = age::Decryptor::new(ciphertext).map_err(classify_decrypt_error)?;
        let plaintext = decryptor
            .decrypt(identities)
            .map_err(classify_decrypt_error)?;
        let config = zip::read::Config {
            archive_offset: zip::read::ArchiveOffset::Known(0),
        };
        let archive =
            zip::ZipArchive::with_config(config, plaintext).map_err(|err| OpenError::Corrupt {
                context: "zip central directory".to_owned(),
                detail: err.to_string(),
            })?;
        let mut archive = archive;
        let bytes = read_archive_entry(
            &mut archive,
            MANIFEST_FILE,
            readroom_domain::limits::MAX_MANIFEST_BYTES,
        )?;
        let manifest = Manifest::from_json(&bytes)?;
        Ok(EncryptedBundle { archive, manifest })
    }

    /// The bundle's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Paths of all entries, in archive order.
    pub fn entry_names(&self) -> Vec<String> {
        self.archive
            .file_names()
            .filter_map(Result::ok)
            .map(|n| n.into_owned())
            .collect()
    }

    /// Size in bytes of an entry.
    pub fn entry_size(&mut self, path: &str) -> Result<u64, OpenError> {
        let entry = self.archive.by_name(path).map_err(|_| OpenError::NoEntry {
            path: path.to_owned(),
        })?;
        Ok(entry.size())
    }

    /// Decrypts and returns one entry, refusing entries over `limit` bytes.
    pub fn read_entry(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, OpenError> {
        read_archive_entry(&mut self.archive, path, limit)
    }

    /// Decrypts the first `limit` bytes of an entry (all of it when it is smaller), e.g. a
    /// header; the flag is true when that is the whole entry.
    pub fn read_entry_prefix(
        &mut self,
        path: &str,
        limit: u64,
    ) -> Result<(Vec<u8>, bool), OpenError> {
        let mut entry = open_archive_entry(&mut self.archive, path)?;
        let size = entry.size();
        let mut bytes = Vec::with_capacity(size.min(limit) as usize);
        entry
            .by_ref()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|err| OpenError::Corrupt {
                context: format!("entry {path:?}"),
                detail: err.to_string(),
            })?;
        Ok((bytes, size <= limit))
    }
}

fn open_archive_entry<'a, R: Read + Seek>(
    archive: &'a mut zip::ZipArchive<age::stream::StreamReader<R>>,
    path: &str,
) -> Result<zip::read::ZipFile<'a, age::stream::StreamReader<R>>, OpenError> {
    archive.by_name(path).map_err(|err| match err {
        zip::result::ZipError::FileNotFound => OpenError::NoEntry {
            path: path.to_owned(),
        },
        other => OpenError::Corrupt {
            context: format!("entry {path:?} header"),
            detail: other.to_string(),
        },
    })
}

/// Decrypts one entry of `archive`, refusing entries over `limit` bytes.
fn read_archive_entry<R: Read + Seek>(
    archive: &mut zip::ZipArchive<age::stream::StreamReader<R>>,
    path: &str,
    limit: u64,
) -> Result<Vec<u8>, OpenError> {
    let mut entry = open_archive_entry(archive, path)?;
    let size = entry.size();
    if size > limit {
        return Err(OpenError::TooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    entry
        .by_ref()
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|err| OpenError::Corrupt {
            context: format!("entry {path:?}"),
            detail: err.to_string(),
        })?;
    Ok(bytes)
}

fn classify_decrypt_error(err: age::DecryptError) -> OpenError {
    match err {
        age::DecryptError::NoMatchingKeys => OpenError::WrongKey,
        age::DecryptError::Io(io) => OpenError::Corrupt {
            context: "age header".to_owned(),
            detail: io.to_string(),
        },
        other => OpenError::NotAge {
            detail: other.to_string(),
        },
    }
}
