//! A bundle read from a zip: `BundleSource::open` (central directory checks: traversal,
//! absolute paths, symlinks, bombs, duplicates), every entry streamed to its end, then the whole
//! ingest gate (`gate::check`: manifest, de-identification, every file inspected).
//!
//! `BundleSource` opens paths only, so each input is written to one file per process (on
//! `/dev/shm` when there is one) and opened from there.
#![no_main]

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use readroom_bundle::gate::{self, GateOptions};
use readroom_bundle::{BundleError, BundleSource, ImageLimits, SourceLimits};

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("readroom-fuzz-zip-{}.zip", std::process::id()))
    })
}

/// Small limits, so a bomb is refused (or read) quickly.
fn limits() -> SourceLimits {
    SourceLimits {
        max_entries: 1_000,
        max_entry_size: 16 << 20,
        max_total_size: 64 << 20,
        max_compression_ratio: 100,
    }
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch zip");
    let Ok(mut source) = BundleSource::open(path, &limits()) else {
        return;
    };
    let entries: Vec<(String, u64)> = source
        .entries()
        .iter()
        .map(|entry| (entry.path.clone(), entry.size))
        .collect();
    for (entry, size) in entries {
        let Ok(mut reader) = source.open_entry(&entry) else {
            continue;
        };
        let mut n_read = 0u64;
        let mut buffer = [0u8; 16 * 1024];
        let outcome = loop {
            match reader.read(&mut buffer) {
                Ok(0) => break Ok(()),
                Ok(n) => n_read += n as u64,
                Err(err) => break Err(err),
            }
        };
        drop(reader);
        match outcome {
            // The reader yields exactly the listed size or fails.
            Ok(()) => assert_eq!(n_read, size, "entry {entry:?} read short without an error"),
            Err(err) => {
                let _ = BundleError::from_entry_io(&entry, err);
            }
        }
    }
    drop(source);
    let Ok(mut source) = BundleSource::open(path, &limits()) else {
        panic!("a zip that opened once does not open again");
    };
    let options = GateOptions {
        study: "FUZZ".to_owned(),
        policy: Default::default(),
        limits: ImageLimits {
            max_side: 4096,
            max_pixels: 4 << 20,
            max_frames: 64,
            max_buffered_bytes: 4 << 20,
        },
    };
    let _ = gate::check(&mut source, &options);
});
