//! A reader that yields exactly the number of bytes an entry declared.

use std::io::{self, Read};

use crate::error::BundleError;

/// Wraps an entry's byte stream and holds it to the entry's declared size.
///
/// More bytes than declared fail with [`BundleError::EntryOverflow`], fewer with
/// [`BundleError::EntryTruncated`], both carried inside an [`io::Error`]
/// (see [`BundleError::from_entry_io`]).
/// This is what stops a zip whose local data lies about its size from producing more than the
/// central directory promised.
pub(crate) struct BoundedReader<R> {
    inner: R,
    entry: String,
    declared: u64,
    read: u64,
}

impl<R: Read> BoundedReader<R> {
    pub(crate) fn new(inner: R, entry: &str, declared: u64) -> Self {
        BoundedReader {
            inner,
            entry: entry.to_owned(),
            declared,
            read: 0,
        }
    }

    fn remaining(&self) -> u64 {
        self.declared - self.read
    }
}

impl<R: Read> Read for BoundedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining() == 0 {
            // Probe for one more byte: a well-formed entry ends exactly here.
            let mut probe = [0u8; 1];
            let extra = read_retrying(&mut self.inner, &mut probe)?;
            if extra > 0 {
                let err = BundleError::EntryOverflow {
                    entry: self.entry.clone(),
                    declared: self.declared,
                };
                return Err(err.into_io());
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining()).unwrap_or(usize::MAX));
        let got = read_retrying(&mut self.inner, &mut buf[..want])?;
        if got == 0 {
            let err = BundleError::EntryTruncated {
                entry: self.entry.clone(),
                declared: self.declared,
                read: self.read,
            };
            return Err(err.into_io());
        }
        self.read += got as u64;
        Ok(got)
    }
}

fn read_retrying(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            res => return res,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], declared: u64) -> Result<Vec<u8>, BundleError> {
        let mut reader = BoundedReader::new(data, "x", declared);
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .map_err(|err| BundleError::from_entry_io("x", err))?;
        Ok(out)
    }

    #[test]
    fn exact_size_passes() {
        assert_eq!(read_all(b"abc", 3).unwrap(), b"abc");
        assert_eq!(read_all(b"", 0).unwrap(), b"");
    }

    #[test]
    fn longer_stream_overflows() {
        assert!(matches!(
            read_all(b"abcd", 3),
            Err(BundleError::EntryOverflow { declared: 3, .. })
        ));
    }

    #[test]
    fn shorter_stream_is_truncated() {
        assert!(matches!(
            read_all(b"ab", 3),
            Err(BundleError::EntryTruncated {
                declared: 3,
                read: 2,
                ..
            })
        ));
    }
}
