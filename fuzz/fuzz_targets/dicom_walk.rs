//! The DICOM structure walk (`readroom_bundle::dicom`) in both of its uses, and what each caller
//! parses after it accepted a file:
//!
//! - the ingest gate's inspector: a streamed walk keeping the non-pixel part, then
//!   `dicom-object` on that part (`inspect::inspect`, the whole path);
//! - the worker: an in-memory walk keeping nothing, then `dicom-object` on the file's bytes up to
//!   the pixel data (the worker's `dicom::read_header` does the same two steps; the worker crate
//!   itself, with its video stack, is too heavy to build here).
//!
//! Properties checked besides "no panic": the streamed and in-memory walks agree, and nothing
//! kept is longer than the budget.
#![no_main]

use std::io::Cursor;

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use dicom_object::file::ReadPreamble;
use libfuzzer_sys::fuzz_target;
use readroom_bundle::ImageLimits;
use readroom_bundle::dicom::{PixelData, WalkError, WalkOptions, walk_bytes, walk_reader};
use readroom_bundle::inspect::inspect;

const BUDGET: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // Most inputs should look like a Part 10 file: put the magic in place.
    let mut bytes = vec![0u8; 128];
    bytes.extend_from_slice(b"DICM");
    bytes.extend_from_slice(data);

    let keep = WalkOptions {
        stop_at_pixel_data: false,
        keep_up_to: Some(BUDGET),
    };
    let streamed = walk_reader(&mut &bytes[..], &keep);
    let in_memory = walk_bytes(&bytes, &keep);
    match (&streamed, &in_memory) {
        (Ok(streamed), Ok(in_memory)) => {
            assert_eq!(streamed, in_memory, "streamed and in-memory walks differ");
            assert!(
                streamed.kept.len() as u64 <= BUDGET,
                "kept more than the budget"
            );
        }
        // Only the in-memory walk knows the length: it may call a value truncated that the
        // stream finds over the budget (or vice versa for a delimiter-ended container).
        (Err(_), Err(WalkError::Truncated { .. })) | (Err(WalkError::Truncated { .. }), Err(_)) => {
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "walks refuse differently"),
        (Ok(_), Err(err)) | (Err(err), Ok(_)) => {
            panic!("one walk accepted what the other refused: {err}")
        }
    }

    let limits = ImageLimits {
        max_side: 4096,
        max_pixels: 4 << 20,
        max_frames: 64,
        max_buffered_bytes: BUDGET,
    };
    let _ = inspect("fuzz.dcm", &mut &bytes[..], &limits);

    let header_only = WalkOptions {
        stop_at_pixel_data: true,
        keep_up_to: None,
    };
    if let Ok(walked) = walk_bytes(&bytes, &header_only)
        && walked.pixel_data == Some(PixelData::Integer)
    {
        let _ = OpenFileOptions::new()
            .read_preamble(ReadPreamble::Always)
            .read_until(tags::PIXEL_DATA)
            .from_reader(Cursor::new(&bytes[..]));
    }
});
