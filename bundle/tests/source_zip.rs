//! `BundleSource` over zip archives: what is listed, what is refused before any data is read,
//! and what is refused while reading.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;

use common::{RawEntry, raw_zip};
use readroom_bundle::{BundleError, BundleSource, SourceKind, SourceLimits};

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn write_file(name: &str, bytes: &[u8]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    Fixture { _dir: dir, path }
}

fn open_with(entries: &[RawEntry], limits: &SourceLimits) -> Result<BundleSource, BundleError> {
    let fixture = write_file("bundle.zip", &raw_zip(entries));
    BundleSource::open(&fixture.path, limits)
}

fn open(entries: &[RawEntry]) -> Result<BundleSource, BundleError> {
    open_with(entries, &SourceLimits::default())
}

/// Asserts the error's message names `entry`.
fn assert_names(err: &BundleError, entry: &str) {
    let message = err.to_string();
    assert!(
        message.contains(entry),
        "message {message:?} does not name {entry:?}"
    );
}

fn manifest() -> RawEntry {
    RawEntry::stored("manifest.json", br#"{"format":"readroom-bundle/1"}"#)
}

#[test]
fn lists_sorted_normalized_entries_and_skips_directories() {
    let mut directory = RawEntry::stored("oct_os/", b"");
    directory.external_attributes = 0o040_755 << 16;
    let source = open(&[
        RawEntry::stored("oct_os/001.png", b"one"),
        directory,
        manifest(),
        RawEntry::stored("./oct_os/000.png", b"zero"),
        RawEntry::stored("__MACOSX/._manifest.json", b"junk"),
        RawEntry::stored(".DS_Store", b"junk"),
    ])
    .unwrap();
    assert_eq!(source.kind(), SourceKind::Zip);
    let listed: Vec<(&str, u64)> = source
        .entries()
        .iter()
        .map(|entry| (entry.path.as_str(), entry.size))
        .collect();
    assert_eq!(
        listed,
        vec![
            (".DS_Store", 4),
            ("__MACOSX/._manifest.json", 4),
            ("manifest.json", 30),
            ("oct_os/000.png", 4),
            ("oct_os/001.png", 3),
        ]
    );
}

#[test]
fn reads_stored_and_deflated_entries() {
    let text: Vec<u8> = b"fundus ".iter().copied().cycle().take(100_000).collect();
    let mut source = open(&[manifest(), RawEntry::deflated("notes/big.txt", &text)]).unwrap();
    assert_eq!(
        source.read_small("manifest.json", 1 << 20).unwrap(),
        br#"{"format":"readroom-bundle/1"}"#
    );
    let mut streamed = Vec::new();
    source
        .open_entry("notes/big.txt")
        .unwrap()
        .read_to_end(&mut streamed)
        .unwrap();
    assert_eq!(streamed, text);
}

#[test]
fn reads_archives_written_by_the_zip_crate() {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut out);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    writer.add_directory("images/", deflated).unwrap();
    writer.start_file("images/a.txt", deflated).unwrap();
    writer.write_all(&[b'a'; 5000]).unwrap();
    writer.start_file("manifest.json", deflated).unwrap();
    writer.write_all(b"{}").unwrap();
    writer.finish().unwrap();
    let fixture = write_file("bundle.zip", out.get_ref());
    let mut source = BundleSource::open(&fixture.path, &SourceLimits::default()).unwrap();
    let paths: Vec<&str> = source
        .entries()
        .iter()
        .map(|entry| entry.path.as_str())
        .collect();
    assert_eq!(paths, vec!["images/a.txt", "manifest.json"]);
    assert_eq!(
        source.read_small("images/a.txt", 10_000).unwrap(),
        vec![b'a'; 5000]
    );
}

#[test]
fn zip_is_recognized_by_content_not_extension() {
    let fixture = write_file("bundle.bin", &raw_zip(&[manifest()]));
    let source = BundleSource::open(&fixture.path, &SourceLimits::default()).unwrap();
    assert_eq!(source.kind(), SourceKind::Zip);
}

#[test]
fn non_zip_file_is_not_a_bundle() {
    let fixture = write_file("bundle.zip", b"this is not a zip archive at all");
    let err = BundleSource::open(&fixture.path, &SourceLimits::default()).unwrap_err();
    assert!(matches!(err, BundleError::NotABundle { .. }), "{err}");
    assert_names(&err, "bundle.zip");
}

#[test]
fn truncated_zip_is_corrupt() {
    let bytes = raw_zip(&[manifest(), RawEntry::stored("a.png", &[7u8; 1000])]);
    let fixture = write_file("bundle.zip", &bytes[..bytes.len() / 2]);
    let err = BundleSource::open(&fixture.path, &SourceLimits::default()).unwrap_err();
    assert!(matches!(err, BundleError::CorruptZip { .. }), "{err}");
    assert_names(&err, "bundle.zip");
    assert!(
        err.to_string().contains("end-of-central-directory"),
        "{err}"
    );
}

#[test]
fn missing_central_directory_is_corrupt() {
    let mut bytes = raw_zip(&[manifest()]);
    // Point the end record at a central directory that is not there.
    let eocd = bytes.len() - 22;
    bytes[eocd + 16..eocd + 20].copy_from_slice(&3u32.to_le_bytes());
    let fixture = write_file("bundle.zip", &bytes);
    let err = BundleSource::open(&fixture.path, &SourceLimits::default()).unwrap_err();
    assert!(matches!(err, BundleError::CorruptZip { .. }), "{err}");
}

#[test]
fn parent_directory_component_is_refused() {
    let err = open(&[manifest(), RawEntry::stored("images/../../evil.png", b"x")]).unwrap_err();
    assert!(matches!(err, BundleError::PathTraversal { .. }), "{err}");
    assert_names(&err, "images/../../evil.png");
}

#[test]
fn absolute_paths_are_refused() {
    for name in ["/etc/evil.png", "C:\\evil.png", "c:/evil.png"] {
        let err = open(&[manifest(), RawEntry::stored(name, b"x")]).unwrap_err();
        assert!(
            matches!(err, BundleError::AbsolutePath { .. }),
            "{name}: {err}"
        );
        assert_names(&err, format!("{name:?}").trim_matches('"'));
    }
}

#[test]
fn backslashes_are_refused() {
    let err = open(&[manifest(), RawEntry::stored("oct\\000.png", b"x")]).unwrap_err();
    assert!(matches!(err, BundleError::Backslash { .. }), "{err}");
    assert_names(&err, "oct\\\\000.png");
}

#[test]
fn control_characters_are_refused() {
    for name in ["a\0b.png", "a\u{1}b.png", "a\nb.png"] {
        let err = open(&[manifest(), RawEntry::stored(name, b"x")]).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::ControlCharacter { .. } | BundleError::InvalidName { .. }
            ),
            "{name:?}: {err}"
        );
        assert_names(&err, "a\\");
    }
}

#[test]
fn symlink_entries_are_refused() {
    let err = open(&[manifest(), RawEntry::symlink("fundus.jpg", "/etc/passwd")]).unwrap_err();
    assert!(matches!(err, BundleError::Symlink { .. }), "{err}");
    assert_names(&err, "fundus.jpg");
}

#[test]
fn special_file_entries_are_refused() {
    let mut fifo = RawEntry::stored("pipe", b"");
    fifo.external_attributes = 0o010_644 << 16;
    let err = open(&[manifest(), fifo]).unwrap_err();
    assert!(
        matches!(err, BundleError::SpecialFile { kind: "FIFO", .. }),
        "{err}"
    );
    assert_names(&err, "pipe");
}

#[test]
fn duplicates_after_normalization_are_refused() {
    let err = open(&[
        manifest(),
        RawEntry::stored("a/b.png", b"1"),
        RawEntry::stored("a//./b.png", b"2"),
    ])
    .unwrap_err();
    assert!(matches!(err, BundleError::DuplicateEntry { .. }), "{err}");
    assert_names(&err, "a/b.png");
}

#[test]
fn names_differing_only_in_case_are_duplicates() {
    let err = open(&[
        manifest(),
        RawEntry::stored("Fundus.jpg", b"1"),
        RawEntry::stored("fundus.jpg", b"2"),
    ])
    .unwrap_err();
    assert!(matches!(err, BundleError::DuplicateEntry { .. }), "{err}");
    assert_names(&err, "undus.jpg");
}

#[test]
fn identical_raw_names_are_duplicates() {
    let err = open(&[
        manifest(),
        RawEntry::stored("a.png", b"1"),
        RawEntry::stored("a.png", b"2"),
    ])
    .unwrap_err();
    assert!(matches!(err, BundleError::DuplicateEntry { .. }), "{err}");
    assert_names(&err, "a.png");
}

#[test]
fn encrypted_entries_are_refused() {
    let mut secret = RawEntry::stored("secret.png", b"xxxxxxxxxxxx");
    secret.flags = 1;
    let err = open(&[manifest(), secret]).unwrap_err();
    assert!(matches!(err, BundleError::EncryptedEntry { .. }), "{err}");
    assert_names(&err, "secret.png");
}

#[test]
fn unsupported_compression_is_refused() {
    let mut lzma = RawEntry::stored("scan.dcm", b"xxxx");
    lzma.method = 14;
    let err = open(&[manifest(), lzma]).unwrap_err();
    assert!(
        matches!(err, BundleError::UnsupportedCompression { .. }),
        "{err}"
    );
    assert_names(&err, "scan.dcm");
}

#[test]
fn declared_entry_size_over_the_limit_is_refused_before_reading() {
    // The entry declares 3 GiB but holds 4 bytes: only the declaration is looked at.
    let mut huge = RawEntry::stored("huge.dcm", b"tiny");
    huge.size = 3 << 30;
    let limits = SourceLimits {
        max_entry_size: 1 << 30,
        ..SourceLimits::default()
    };
    let err = open_with(&[manifest(), huge], &limits).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::EntryTooLarge {
                size: 3221225472,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, "huge.dcm");
}

#[test]
fn total_size_over_the_limit_is_refused() {
    let limits = SourceLimits {
        max_total_size: 1500,
        ..SourceLimits::default()
    };
    let err = open_with(
        &[
            RawEntry::stored("a.png", &[1u8; 800]),
            RawEntry::stored("b.png", &[2u8; 800]),
        ],
        &limits,
    )
    .unwrap_err();
    assert!(
        matches!(err, BundleError::TotalTooLarge { total: 1600, .. }),
        "{err}"
    );
    assert_names(&err, "b.png");
}

#[test]
fn compression_ratio_over_the_limit_is_refused() {
    let zeros = vec![0u8; 4 << 20];
    let bomb = RawEntry::deflated("bomb.png", &zeros);
    assert!(bomb.data.len() * 100 < zeros.len());
    let err = open(&[manifest(), bomb]).unwrap_err();
    assert!(
        matches!(err, BundleError::CompressionRatio { limit: 100, .. }),
        "{err}"
    );
    assert_names(&err, "bomb.png");
}

#[test]
fn small_entries_may_compress_well() {
    let spaces = vec![b' '; 200_000];
    let source = open(&[manifest(), RawEntry::deflated("report.txt", &spaces)]).unwrap();
    assert_eq!(source.entry("report.txt").unwrap().size, 200_000);
}

#[test]
fn a_lying_size_cannot_produce_more_than_declared() {
    // Deflated data of 100 000 bytes whose headers claim 1 000.
    let mut liar = RawEntry::deflated("liar.png", &vec![b'z'; 100_000]);
    liar.size = 1000;
    let mut source = open(&[manifest(), liar]).unwrap();
    let mut reader = source.open_entry("liar.png").unwrap();
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).unwrap_err();
    let err = BundleError::from_entry_io("liar.png", err);
    assert!(
        matches!(err, BundleError::EntryOverflow { declared: 1000, .. }),
        "{err}"
    );
    assert_names(&err, "liar.png");
    assert!(out.len() <= 1000);
}

#[test]
fn an_entry_shorter_than_declared_is_truncated() {
    let mut short = RawEntry::stored("short.png", b"0123456789");
    short.size = 20;
    let mut source = open(&[manifest(), short]).unwrap();
    let mut out = Vec::new();
    let err = source
        .open_entry("short.png")
        .unwrap()
        .read_to_end(&mut out)
        .unwrap_err();
    let err = BundleError::from_entry_io("short.png", err);
    assert!(
        matches!(
            err,
            BundleError::EntryTruncated {
                declared: 20,
                read: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn too_many_entries_are_refused_from_the_end_record() {
    let entries: Vec<RawEntry> = (0..6)
        .map(|index| RawEntry::stored(&format!("{index}.png"), b"x"))
        .collect();
    let limits = SourceLimits {
        max_entries: 5,
        ..SourceLimits::default()
    };
    let err = open_with(&entries, &limits).unwrap_err();
    assert!(
        matches!(err, BundleError::TooManyEntries { count: 6, limit: 5 }),
        "{err}"
    );
}

#[test]
fn overlapping_entries_are_refused() {
    let shared = RawEntry::stored("a.png", &[9u8; 64]);
    let mut alias = RawEntry::stored("b.png", &[9u8; 64]);
    alias.local_header_of = Some(0);
    let err = open(&[shared, alias]).unwrap_err();
    assert!(
        matches!(err, BundleError::OverlappingEntries { .. }),
        "{err}"
    );
}

#[test]
fn read_small_refuses_entries_over_its_maximum() {
    let mut source = open(&[RawEntry::stored("manifest.json", &[b' '; 2000])]).unwrap();
    let err = source.read_small("manifest.json", 1000).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::TooLargeToRead {
                size: 2000,
                max: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert_names(&err, "manifest.json");
}

#[test]
fn unknown_entries_are_not_found() {
    let mut source = open(&[manifest()]).unwrap();
    let err = source.open_entry("missing.png").err().unwrap();
    assert!(matches!(err, BundleError::NotFound { .. }), "{err}");
    assert_names(&err, "missing.png");
}

#[test]
fn corrupted_data_fails_its_checksum() {
    let mut corrupted = RawEntry::stored("fundus.jpg", b"original bytes");
    corrupted.data = b"modified bytes".to_vec();
    let mut source = open(&[manifest(), corrupted]).unwrap();
    let err = source.read_small("fundus.jpg", 100).unwrap_err();
    assert!(matches!(err, BundleError::ChecksumMismatch { .. }), "{err}");
    assert_names(&err, "fundus.jpg");
}
