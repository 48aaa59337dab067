//! Writing the normalized bundle zip as a stream.
//!
//! [`PackWriter`] writes a zip without seeking, so its output can go straight into an encryptor.
//! Every entry is stored (images are already compressed), dated 1980-01-01 and given mode 0644,
//! so packing the same files in the same order always produces the same bytes.
//! Entries whose size is unknown or may exceed 4 GiB are written with zip64 sizes; the archive's
//! end records switch to zip64 on their own when offsets or counts need it.

use std::collections::HashMap;
use std::io::{Read, Write};

use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use crate::error::BundleError;
use crate::source::path;

/// Size of the copy buffer.
const COPY_BUFFER_LEN: usize = 256 * 1024;

/// Writes a bundle zip entry by entry; the caller adds `manifest.json` first.
pub struct PackWriter<W: Write> {
    zip: ZipWriter<StreamWriter<W>>,
    buffer: Vec<u8>,
    /// Lower-cased names written so far, mapped to their spelling, to refuse duplicates.
    names: HashMap<String, String>,
    /// The entry whose write failed; the zip stream is unusable after that.
    failed: Option<String>,
}

impl<W: Write> PackWriter<W> {
    /// Starts a bundle zip written to `out`, which needs no `Seek`.
    pub fn new(out: W) -> Self {
        PackWriter {
            zip: ZipWriter::new_stream(out),
            buffer: vec![0u8; COPY_BUFFER_LEN],
            names: HashMap::new(),
            failed: None,
        }
    }

    /// Adds an entry of unknown size, copying `reader` to its end; returns the bytes written.
    ///
    /// The entry is written with zip64 sizes (20 bytes more) so it may exceed 4 GiB.
    /// After an error the writer is unusable: a streamed zip cannot take an entry back.
    pub fn add(&mut self, path: &str, reader: &mut dyn Read) -> Result<u64, BundleError> {
        self.write_entry(path, None, reader)
    }

    /// Adds an entry of known size; zip64 sizes are used only when `size` needs them.
    ///
    /// Fails with [`BundleError::EntryOverflow`] or [`BundleError::EntryTruncated`] when the
    /// reader yields more or fewer than `size` bytes.
    pub fn add_sized(
        &mut self,
        path: &str,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<u64, BundleError> {
        self.write_entry(path, Some(size), reader)
    }

    /// Writes the central directory and returns the output.
    pub fn finish(self) -> Result<W, BundleError> {
        if let Some(entry) = self.failed {
            return Err(BundleError::WriterFailed { entry });
        }
        let stream = self.zip.finish().map_err(|source| BundleError::Write {
            source: source.into(),
        })?;
        let mut out = stream.into_inner();
        out.flush()
            .map_err(|source| BundleError::Write { source })?;
        Ok(out)
    }

    fn write_entry(
        &mut self,
        path: &str,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<u64, BundleError> {
        if let Some(entry) = &self.failed {
            return Err(BundleError::WriterFailed {
                entry: entry.clone(),
            });
        }
        let normalized = path::normalize(path)?;
        if normalized != path {
            return Err(BundleError::InvalidName {
                entry: path.to_owned(),
            });
        }
        let folded = path.to_lowercase();
        if let Some(other) = self.names.get(&folded) {
            return Err(BundleError::DuplicateEntry {
                entry: path.to_owned(),
                other: other.clone(),
            });
        }
        let result = self.copy_entry(path, size, reader);
        match &result {
            Ok(_) => {
                self.names.insert(folded, path.to_owned());
            }
            Err(_) => self.failed = Some(path.to_owned()),
        }
        result
    }

    fn copy_entry(
        &mut self,
        path: &str,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<u64, BundleError> {
        let large_file = size.is_none_or(|size| size >= zip::ZIP64_BYTES_THR);
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .last_modified_time(DateTime::default())
            .system(System::Unix)
            .unix_permissions(0o644)
            .large_file(large_file);
        self.zip
            .start_file(path, options)
            .map_err(|source| BundleError::Zip {
                entry: path.to_owned(),
                source,
            })?;
        let limit = size.unwrap_or(u64::MAX);
        let mut written: u64 = 0;
        loop {
            let n_read = match reader.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(BundleError::from_entry_io(path, err)),
            };
            if written + n_read as u64 > limit {
                return Err(BundleError::EntryOverflow {
                    entry: path.to_owned(),
                    declared: limit,
                });
            }
            self.zip
                .write_all(&self.buffer[..n_read])
                .map_err(|source| BundleError::Write { source })?;
            written += n_read as u64;
        }
        if let Some(size) = size
            && written != size
        {
            return Err(BundleError::EntryTruncated {
                entry: path.to_owned(),
                declared: size,
                read: written,
            });
        }
        Ok(written)
    }
}
