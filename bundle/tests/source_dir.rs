//! `BundleSource` over directories: listing without following symlinks, refusals, and files
//! that change after listing.

use std::fs;
use std::io::Read;
use std::path::Path;

use readroom_bundle::{BundleError, BundleSource, SourceKind, SourceLimits};

fn bundle_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("manifest.json"), b"{}").unwrap();
    dir
}

fn open(root: &Path) -> Result<BundleSource, BundleError> {
    BundleSource::open(root, &SourceLimits::default())
}

fn assert_names(err: &BundleError, entry: &str) {
    let message = err.to_string();
    assert!(
        message.contains(entry),
        "message {message:?} does not name {entry:?}"
    );
}

#[test]
fn lists_files_sorted_with_sizes_including_os_junk() {
    let dir = bundle_dir();
    fs::create_dir_all(dir.path().join("oct_os/empty")).unwrap();
    fs::write(dir.path().join("oct_os/001.png"), b"12345").unwrap();
    fs::write(dir.path().join("oct_os/000.png"), b"123").unwrap();
    fs::write(dir.path().join(".DS_Store"), b"j").unwrap();
    let source = open(dir.path()).unwrap();
    assert_eq!(source.kind(), SourceKind::Dir);
    let listed: Vec<(&str, u64)> = source
        .entries()
        .iter()
        .map(|entry| (entry.path.as_str(), entry.size))
        .collect();
    assert_eq!(
        listed,
        vec![
            (".DS_Store", 1),
            ("manifest.json", 2),
            ("oct_os/000.png", 3),
            ("oct_os/001.png", 5)
        ]
    );
}

#[test]
fn reads_entries() {
    let dir = bundle_dir();
    let mut source = open(dir.path()).unwrap();
    assert_eq!(source.read_small("manifest.json", 1 << 20).unwrap(), b"{}");
}

#[test]
fn symlink_out_of_the_root_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.png"), b"x").unwrap();
    let dir = bundle_dir();
    std::os::unix::fs::symlink(
        outside.path().join("secret.png"),
        dir.path().join("fundus.png"),
    )
    .unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, BundleError::Symlink { .. }), "{err}");
    assert_names(&err, "fundus.png");
}

#[test]
fn symlink_within_the_root_is_refused_too() {
    let dir = bundle_dir();
    fs::create_dir(dir.path().join("images")).unwrap();
    std::os::unix::fs::symlink("../manifest.json", dir.path().join("images/link.json")).unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, BundleError::Symlink { .. }), "{err}");
    assert_names(&err, "images/link.json");
}

#[test]
fn symlinked_directory_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let dir = bundle_dir();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("images")).unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, BundleError::Symlink { .. }), "{err}");
}

#[test]
fn sockets_are_refused() {
    let dir = bundle_dir();
    let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(
        matches!(err, BundleError::SpecialFile { kind: "socket", .. }),
        "{err}"
    );
    assert_names(&err, "sock");
}

#[test]
fn backslash_in_a_file_name_is_refused() {
    let dir = bundle_dir();
    fs::write(dir.path().join("oct\\000.png"), b"x").unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, BundleError::Backslash { .. }), "{err}");
    assert_names(&err, "oct\\\\000.png");
}

#[test]
fn control_character_in_a_file_name_is_refused() {
    let dir = bundle_dir();
    fs::write(dir.path().join("a\u{7}b.png"), b"x").unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, BundleError::ControlCharacter { .. }), "{err}");
    assert_names(&err, "a\\u{7}b.png");
}

#[test]
fn non_utf8_file_name_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let dir = bundle_dir();
    fs::write(
        dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.png")),
        b"x",
    )
    .unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, BundleError::InvalidName { .. }), "{err}");
    assert_names(&err, ".png");
}

#[test]
fn names_differing_only_in_case_are_duplicates() {
    let dir = bundle_dir();
    fs::write(dir.path().join("Fundus.jpg"), b"1").unwrap();
    fs::write(dir.path().join("fundus.jpg"), b"2").unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, BundleError::DuplicateEntry { .. }), "{err}");
    assert_names(&err, "undus.jpg");
}

#[test]
fn too_many_entries_are_refused() {
    let dir = bundle_dir();
    for index in 0..10 {
        fs::write(dir.path().join(format!("{index}.png")), b"x").unwrap();
    }
    let limits = SourceLimits {
        max_entries: 5,
        ..SourceLimits::default()
    };
    let err = BundleSource::open(dir.path(), &limits).unwrap_err();
    assert!(
        matches!(err, BundleError::TooManyEntries { limit: 5, .. }),
        "{err}"
    );
}

#[test]
fn entry_and_total_size_limits_apply() {
    let dir = bundle_dir();
    fs::write(dir.path().join("big.png"), vec![0u8; 2000]).unwrap();
    let limits = SourceLimits {
        max_entry_size: 1000,
        ..SourceLimits::default()
    };
    let err = BundleSource::open(dir.path(), &limits).unwrap_err();
    assert!(
        matches!(err, BundleError::EntryTooLarge { size: 2000, .. }),
        "{err}"
    );
    assert_names(&err, "big.png");

    let limits = SourceLimits {
        max_total_size: 1000,
        ..SourceLimits::default()
    };
    let err = BundleSource::open(dir.path(), &limits).unwrap_err();
    assert!(matches!(err, BundleError::TotalTooLarge { .. }), "{err}");
}

#[test]
fn a_file_replaced_after_listing_is_refused() {
    let dir = bundle_dir();
    fs::write(dir.path().join("fundus.jpg"), b"listed").unwrap();
    let mut source = open(dir.path()).unwrap();
    // Write the replacement while the listed file still exists, so it gets another inode.
    fs::write(dir.path().join("fundus.jpg.new"), b"swapped").unwrap();
    fs::rename(
        dir.path().join("fundus.jpg.new"),
        dir.path().join("fundus.jpg"),
    )
    .unwrap();
    let err = source.open_entry("fundus.jpg").err().unwrap();
    assert!(matches!(err, BundleError::EntryChanged { .. }), "{err}");
    assert_names(&err, "fundus.jpg");
}

#[test]
fn a_file_replaced_by_a_symlink_after_listing_is_refused() {
    let dir = bundle_dir();
    fs::write(dir.path().join("fundus.jpg"), b"listed").unwrap();
    let mut source = open(dir.path()).unwrap();
    fs::remove_file(dir.path().join("fundus.jpg")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("fundus.jpg")).unwrap();
    let err = source.open_entry("fundus.jpg").err().unwrap();
    assert!(matches!(err, BundleError::Symlink { .. }), "{err}");
}

#[test]
fn a_file_that_grows_after_listing_yields_only_its_listed_size() {
    let dir = bundle_dir();
    let path = dir.path().join("fundus.jpg");
    fs::write(&path, b"0123456789").unwrap();
    let mut source = open(dir.path()).unwrap();
    let mut appender = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut appender, b"more").unwrap();
    let mut out = Vec::new();
    let err = source
        .open_entry("fundus.jpg")
        .unwrap()
        .read_to_end(&mut out)
        .unwrap_err();
    let err = BundleError::from_entry_io("fundus.jpg", err);
    assert!(
        matches!(err, BundleError::EntryOverflow { declared: 10, .. }),
        "{err}"
    );
    assert_eq!(out, b"0123456789");
}

#[test]
fn a_file_that_shrinks_after_listing_is_truncated() {
    let dir = bundle_dir();
    let path = dir.path().join("fundus.jpg");
    fs::write(&path, b"0123456789").unwrap();
    let mut source = open(dir.path()).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4)
        .unwrap();
    let err = source.read_small("fundus.jpg", 100).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::EntryTruncated {
                declared: 10,
                read: 4,
                ..
            }
        ),
        "{err}"
    );
}
