//! The bundle manifest parser: `Manifest::from_json`, then everything the gate does with a
//! manifest that parsed (validation against its own file list, the de-identification rules,
//! entry path checks), and writing it back out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use readroom_domain::deid::check_manifest;
use readroom_domain::manifest::{Manifest, check_entry_path};

fuzz_target!(|data: &[u8]| {
    let Ok(manifest) = Manifest::from_json(data) else {
        return;
    };
    let files = manifest.referenced_files();
    let paths: Vec<&str> = files.iter().map(|file| file.path).collect();
    for path in &paths {
        let _ = check_entry_path(path);
    }
    let _ = manifest.validate(&paths);
    let _ = manifest.validate(&[]);
    let _ = check_manifest(&manifest);
    // What readroom writes, it must read back.
    let written = manifest.to_json();
    if let Err(err) = Manifest::from_json(&written) {
        panic!("a parsed manifest, written back, does not parse: {err}");
    }
});
