//! A minimal reader of the zip end-of-central-directory records.
//!
//! The zip crate parses the whole central directory into memory when an archive is opened.
//! Reading the declared entry count first lets [`super::BundleSource::open`] refuse an archive
//! with millions of entries before that happens, and walking the raw central directory names
//! the entry when the zip crate reports duplicate names without saying which.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

const EOCD_SIGNATURE: [u8; 4] = *b"PK\x05\x06";
const EOCD_LEN: u64 = 22;
const ZIP64_LOCATOR_SIGNATURE: [u8; 4] = *b"PK\x06\x07";
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_EOCD_SIGNATURE: [u8; 4] = *b"PK\x06\x06";
const CENTRAL_HEADER_SIGNATURE: [u8; 4] = *b"PK\x01\x02";
/// The EOCD record is followed by a comment of at most this many bytes.
const MAX_COMMENT_LEN: u64 = 0xFFFF;

/// Where the central directory is and how many entries it declares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CentralDirectory {
    /// Declared total number of entries.
    pub(crate) entries: u64,
    /// Offset of the first central directory header, as recorded (relative to the archive start).
    pub(crate) offset: u64,
}

/// Finds the (zip64) end-of-central-directory record and reads the entry count from it.
///
/// Returns a reason in plain words when there is no such record.
pub(crate) fn locate<R: Read + Seek>(reader: &mut R) -> Result<CentralDirectory, String> {
    let file_len = reader
        .seek(SeekFrom::End(0))
        .map_err(|err| err.to_string())?;
    if file_len < EOCD_LEN {
        return Err(format!(
            "only {file_len} bytes, too short for a zip archive"
        ));
    }
    let window_len = file_len.min(EOCD_LEN + MAX_COMMENT_LEN);
    let window_start = file_len - window_len;
    let window = read_at(reader, window_start, window_len).map_err(|err| err.to_string())?;

    // Scan backwards for a signature whose comment length reaches exactly or within the file.
    let eocd_index = (0..=window.len() - EOCD_LEN as usize).rev().find(|&i| {
        window[i..i + 4] == EOCD_SIGNATURE && {
            let comment_len = u16_at(&window, i + 20) as usize;
            i + EOCD_LEN as usize + comment_len <= window.len()
        }
    });
    let Some(eocd_index) = eocd_index else {
        return Err("no end-of-central-directory record (truncated or not a zip)".to_owned());
    };
    let eocd = &window[eocd_index..];
    let entries = u64::from(u16_at(eocd, 10));
    let offset = u64::from(u32_at(eocd, 16));
    let uses_zip64 = entries == 0xFFFF || offset == 0xFFFF_FFFF;
    if !uses_zip64 {
        return Ok(CentralDirectory { entries, offset });
    }

    let eocd_pos = window_start + eocd_index as u64;
    let Some(locator_pos) = eocd_pos.checked_sub(ZIP64_LOCATOR_LEN) else {
        return Err("zip64 end-of-central-directory locator missing".to_owned());
    };
    let locator = read_at(reader, locator_pos, ZIP64_LOCATOR_LEN).map_err(|err| err.to_string())?;
    if locator[..4] != ZIP64_LOCATOR_SIGNATURE {
        return Err("zip64 end-of-central-directory locator missing".to_owned());
    }
    let record_pos = u64_at(&locator, 8);
    if record_pos >= file_len || file_len - record_pos < 56 {
        return Err("zip64 end-of-central-directory record outside the file".to_owned());
    }
    let record = read_at(reader, record_pos, 56).map_err(|err| err.to_string())?;
    if record[..4] != ZIP64_EOCD_SIGNATURE {
        return Err("zip64 end-of-central-directory record missing".to_owned());
    }
    Ok(CentralDirectory {
        entries: u64_at(&record, 32),
        offset: u64_at(&record, 48),
    })
}

/// Reads the raw names of the first `max_entries` central directory headers.
pub(crate) fn raw_names<R: Read + Seek>(
    reader: &mut R,
    directory: &CentralDirectory,
    max_entries: usize,
) -> io::Result<Vec<Vec<u8>>> {
    reader.seek(SeekFrom::Start(directory.offset))?;
    let mut reader = BufReader::new(reader);
    let count = usize::try_from(directory.entries)
        .unwrap_or(usize::MAX)
        .min(max_entries);
    let mut names = Vec::new();
    for _ in 0..count {
        let mut header = [0u8; 46];
        reader.read_exact(&mut header)?;
        if header[..4] != CENTRAL_HEADER_SIGNATURE {
            break;
        }
        let name_len = u16_at(&header, 28) as usize;
        let extra_len = u16_at(&header, 30) as u64;
        let comment_len = u16_at(&header, 32) as u64;
        let mut name = vec![0u8; name_len];
        reader.read_exact(&mut name)?;
        io::copy(
            &mut (&mut reader).take(extra_len + comment_len),
            &mut io::sink(),
        )?;
        names.push(name);
    }
    Ok(names)
}

fn read_at<R: Read + Seek>(reader: &mut R, pos: u64, len: u64) -> io::Result<Vec<u8>> {
    reader.seek(SeekFrom::Start(pos))?;
    let mut buf = vec![0u8; len as usize];
    reader.read_exact(&mut buf)?;
    Ok(buf)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut le = [0u8; 8];
    le.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(le)
}
