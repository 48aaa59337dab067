//! `PackWriter`: streamed, stored, deterministic bundle zips that read back byte for byte.

use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

use rand::{RngCore, SeedableRng};
use readroom_bundle::{BundleError, BundleSource, PackWriter, SourceLimits};

/// A write-only sink: the writer must not need `Seek`.
struct Sink(Vec<u8>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

fn sample_entries() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "manifest.json",
            br#"{"format":"readroom-bundle/1","study":"EYE-2026"}"#.to_vec(),
        ),
        ("fundus_od.jpg", random_bytes(600 * 1024, 1)),
        ("oct_os/000.png", random_bytes(1000, 2)),
        ("oct_os/001.png", Vec::new()),
    ]
}

fn pack(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut writer = PackWriter::new(Sink(Vec::new()));
    for (path, bytes) in entries {
        let written = writer.add(path, &mut bytes.as_slice()).unwrap();
        assert_eq!(written, bytes.len() as u64);
    }
    writer.finish().unwrap().0
}

#[test]
fn round_trip_is_byte_identical_stored_and_in_order() {
    let entries = sample_entries();
    let packed = pack(&entries);
    let mut archive = zip::ZipArchive::new(Cursor::new(&packed)).unwrap();
    assert_eq!(archive.len(), entries.len());
    for (index, (path, bytes)) in entries.iter().enumerate() {
        let mut file = archive.by_index(index).unwrap();
        assert_eq!(file.name().unwrap(), *path);
        assert_eq!(file.compression(), zip::CompressionMethod::Stored);
        assert_eq!(file.size(), bytes.len() as u64);
        assert_eq!(file.compressed_size(), bytes.len() as u64);
        let modified = file.last_modified().unwrap();
        assert_eq!(
            (modified.year(), modified.month(), modified.day()),
            (1980, 1, 1)
        );
        assert_eq!(file.unix_mode().map(|mode| mode & 0o777), Some(0o644));
        let mut read_back = Vec::new();
        file.read_to_end(&mut read_back).unwrap();
        assert_eq!(&read_back, bytes, "{path}");
    }
}

#[test]
fn packed_bundle_opens_as_a_source() {
    let entries = sample_entries();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("packed.zip");
    std::fs::write(&path, pack(&entries)).unwrap();
    let mut source = BundleSource::open(&path, &SourceLimits::default()).unwrap();
    assert_eq!(source.entries().len(), entries.len());
    for (path, bytes) in &entries {
        assert_eq!(&source.read_small(path, 1 << 20).unwrap(), bytes);
    }
}

#[test]
fn packing_is_deterministic() {
    let entries = sample_entries();
    assert_eq!(pack(&entries), pack(&entries));
}

#[test]
fn add_sized_refuses_a_reader_of_another_size() {
    let mut writer = PackWriter::new(Sink(Vec::new()));
    let err = writer
        .add_sized("a.png", 10, &mut &b"12345"[..])
        .unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::EntryTruncated {
                declared: 10,
                read: 5,
                ..
            }
        ),
        "{err}"
    );
    // A streamed zip cannot take the entry back, so the writer stays failed.
    let err = writer.add("b.png", &mut &b"x"[..]).unwrap_err();
    assert!(matches!(err, BundleError::WriterFailed { .. }), "{err}");
    assert!(matches!(
        writer.finish(),
        Err(BundleError::WriterFailed { .. })
    ));

    let mut writer = PackWriter::new(Sink(Vec::new()));
    let err = writer
        .add_sized("a.png", 3, &mut &b"12345"[..])
        .unwrap_err();
    assert!(
        matches!(err, BundleError::EntryOverflow { declared: 3, .. }),
        "{err}"
    );
}

#[test]
fn add_sized_round_trips() {
    let mut writer = PackWriter::new(Sink(Vec::new()));
    writer
        .add_sized("manifest.json", 2, &mut &b"{}"[..])
        .unwrap();
    writer.add_sized("a.png", 5, &mut &b"12345"[..]).unwrap();
    let packed = writer.finish().unwrap().0;
    let mut archive = zip::ZipArchive::new(Cursor::new(packed)).unwrap();
    let mut read_back = String::new();
    archive
        .by_name("a.png")
        .unwrap()
        .read_to_string(&mut read_back)
        .unwrap();
    assert_eq!(read_back, "12345");
}

#[test]
fn unsafe_and_duplicate_paths_are_refused() {
    let mut writer = PackWriter::new(Sink(Vec::new()));
    assert!(matches!(
        writer.add("../x", &mut &b""[..]),
        Err(BundleError::PathTraversal { .. })
    ));
    assert!(matches!(
        writer.add("./x", &mut &b""[..]),
        Err(BundleError::InvalidName { .. })
    ));
    writer.add("manifest.json", &mut &b"{}"[..]).unwrap();
    let err = writer.add("Manifest.json", &mut &b"{}"[..]).unwrap_err();
    assert!(matches!(err, BundleError::DuplicateEntry { .. }), "{err}");
}

/// An in-memory file that stores runs of zero bytes as lengths, so a bundle of several GiB
/// fits in a few kilobytes.
#[derive(Default)]
struct SparseFile {
    /// (start, bytes) of non-zero data; everything else reads as zero.
    chunks: Vec<(u64, Vec<u8>)>,
    len: u64,
    position: u64,
}

impl Write for SparseFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.iter().any(|&byte| byte != 0) {
            self.chunks.push((self.len, buf.to_vec()));
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for SparseFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n_bytes = buf
            .len()
            .min((self.len - self.position.min(self.len)) as usize);
        let window = self.position..self.position + n_bytes as u64;
        buf[..n_bytes].fill(0);
        for (start, bytes) in &self.chunks {
            let end = start + bytes.len() as u64;
            if end <= window.start || *start >= window.end {
                continue;
            }
            let from = window.start.max(*start);
            let to = window.end.min(end);
            buf[(from - window.start) as usize..(to - window.start) as usize]
                .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
        }
        self.position += n_bytes as u64;
        Ok(n_bytes)
    }
}

impl Seek for SparseFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.position = match pos {
            SeekFrom::Start(offset) => offset,
            SeekFrom::End(delta) => self.len.checked_add_signed(delta).unwrap(),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta).unwrap(),
        };
        Ok(self.position)
    }
}

#[test]
fn bundles_over_4_gib_use_zip64_and_read_back() {
    const BIG: u64 = (4 << 30) + 12_345;
    let mut writer = PackWriter::new(SparseFile::default());
    writer.add("manifest.json", &mut &b"{}"[..]).unwrap();
    let written = writer
        .add("oct_od.dcm", &mut io::repeat(0).take(BIG))
        .unwrap();
    assert_eq!(written, BIG);
    writer
        .add_sized("after.txt", 5, &mut &b"after"[..])
        .unwrap();
    let mut file = writer.finish().unwrap();
    assert!(file.len > BIG);

    file.position = 0;
    let mut archive = zip::ZipArchive::new(file).unwrap();
    assert_eq!(archive.len(), 3);
    let big = archive.by_name("oct_od.dcm").unwrap();
    assert_eq!(big.size(), BIG);
    assert_eq!(big.compression(), zip::CompressionMethod::Stored);
    drop(big);
    let mut after = String::new();
    archive
        .by_name("after.txt")
        .unwrap()
        .read_to_string(&mut after)
        .unwrap();
    assert_eq!(after, "after");
    let mut manifest = String::new();
    archive
        .by_name("manifest.json")
        .unwrap()
        .read_to_string(&mut manifest)
        .unwrap();
    assert_eq!(manifest, "{}");
}
