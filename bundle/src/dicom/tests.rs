//! The walk on hand-made files: each case is a few raw elements, so every hostile field is
//! exactly what the test says, and the outcome is compared as one line of text.

use super::*;

const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

/// Appends an explicit VR element (little endian unless `big`) with its value.
fn element(out: &mut Vec<u8>, tag: (u16, u16), vr: &[u8; 2], value: &[u8], big: bool) {
    header(out, tag, vr, value.len() as u32, big);
    out.extend_from_slice(value);
}

/// Appends an explicit VR element header declaring `length`.
fn header(out: &mut Vec<u8>, (group, element): (u16, u16), vr: &[u8; 2], length: u32, big: bool) {
    let u16_bytes = |value: u16| {
        if big {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        }
    };
    out.extend_from_slice(&u16_bytes(group));
    out.extend_from_slice(&u16_bytes(element));
    out.extend_from_slice(vr);
    if readroom_domain::dicom::has_long_length(*vr) {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&if big {
            length.to_be_bytes()
        } else {
            length.to_le_bytes()
        });
    } else {
        out.extend_from_slice(&u16_bytes(length as u16));
    }
}

/// Appends an item or delimiter `(FFFE,element)` with `length` (little endian).
fn item(out: &mut Vec<u8>, element: u16, length: u32) {
    out.extend_from_slice(&0xFFFEu16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
}

/// Preamble, magic and a file meta group with `transfer_syntax` (none when empty).
fn file(transfer_syntax: &str) -> Vec<u8> {
    let mut out = vec![0u8; MAGIC_AT];
    out.extend_from_slice(b"DICM");
    if !transfer_syntax.is_empty() {
        let mut value = transfer_syntax.as_bytes().to_vec();
        if value.len() % 2 == 1 {
            value.push(0);
        }
        element(&mut out, (0x0002, 0x0010), b"UI", &value, false);
    }
    out
}

/// An explicit VR little endian file: a patient name, 4 bytes of pixel data, a trailing
/// private element.
fn valid() -> Vec<u8> {
    let mut out = file(EXPLICIT_VR_LITTLE_ENDIAN);
    element(&mut out, (0x0010, 0x0010), b"PN", b"DOE^J ", false);
    element(&mut out, (0x7FE0, 0x0010), b"OB", &[1, 2, 3, 4], false);
    element(&mut out, (0x7FE1, 0x1001), b"LO", b"after ", false);
    out
}

fn keep() -> WalkOptions {
    WalkOptions {
        stop_at_pixel_data: false,
        keep_up_to: Some(1 << 20),
    }
}

/// The walk's outcome in one line, after checking that the in-memory and the streaming walk
/// agree (except where only the in-memory walk can know the input's length).
fn check(bytes: &[u8], options: &WalkOptions) -> String {
    let from_bytes = outcome(walk_bytes(bytes, options));
    let from_reader = outcome(walk_reader(&mut &bytes[..], options));
    let known_length_matters = from_bytes.starts_with("truncated") && from_reader != from_bytes;
    if !known_length_matters {
        assert_eq!(from_bytes, from_reader, "in memory vs streamed");
    }
    from_bytes
}

fn outcome(result: Result<Walked, WalkError>) -> String {
    match result {
        Ok(walked) => format!(
            "ok {} pixel_data={:?} elements={} kept={}",
            walked.transfer_syntax,
            walked.pixel_data,
            walked.n_elements,
            walked.kept.len()
        ),
        Err(err) => err.to_string(),
    }
}

#[test]
fn a_valid_file_is_walked_and_its_pixel_data_left_out_of_what_is_kept() {
    let bytes = valid();
    assert_eq!(
        check(&bytes, &keep()),
        "ok 1.2.840.10008.1.2.1 pixel_data=Some(Integer) elements=3 kept=60"
    );
    // Kept: magic (4) + meta element (8 + 20) + patient name (8 + 6) + trailing (8 + 6) = 60;
    // the 12 + 4 bytes of pixel data are all that is left out.
    let walked = walk_bytes(&bytes, &keep()).unwrap();
    assert_eq!(walked.kept.len(), bytes.len() - MAGIC_AT - 16);
    assert!(!walked.kept.windows(4).any(|w| w == [1, 2, 3, 4]));
    assert_eq!(
        check(&bytes, &WalkOptions::default()),
        "ok 1.2.840.10008.1.2.1 pixel_data=Some(Integer) elements=3 kept=0"
    );
}

#[test]
fn stopping_at_the_pixel_data_reads_nothing_after_its_header() {
    let mut bytes = file(EXPLICIT_VR_LITTLE_ENDIAN);
    element(&mut bytes, (0x0010, 0x0010), b"PN", b"DOE^J ", false);
    header(&mut bytes, (0x7FE0, 0x0010), b"OB", 0xFFFF_FFF0, false);
    let options = WalkOptions {
        stop_at_pixel_data: true,
        keep_up_to: None,
    };
    assert_eq!(
        check(&bytes, &options),
        "ok 1.2.840.10008.1.2.1 pixel_data=Some(Integer) elements=2 kept=0"
    );
}

#[test]
fn float_pixel_data_is_pixel_data_too() {
    let mut bytes = file(EXPLICIT_VR_LITTLE_ENDIAN);
    element(&mut bytes, (0x7FE0, 0x0008), b"OF", &[0; 8], false);
    assert_eq!(
        check(&bytes, &keep()),
        "ok 1.2.840.10008.1.2.1 pixel_data=Some(Float) elements=1 kept=32"
    );
}

#[test]
fn implicit_and_big_endian_files_are_walked() {
    let mut bytes = file(IMPLICIT_VR_LITTLE_ENDIAN);
    for (tag, value) in [
        ((0x0010u16, 0x0010u16), &b"DOE^J "[..]),
        ((0x7FE0, 0x0010), &[9; 4]),
    ] {
        bytes.extend_from_slice(&tag.0.to_le_bytes());
        bytes.extend_from_slice(&tag.1.to_le_bytes());
        bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
        bytes.extend_from_slice(value);
    }
    assert_eq!(
        check(&bytes, &keep()),
        "ok 1.2.840.10008.1.2 pixel_data=Some(Integer) elements=2 kept=44"
    );

    let mut bytes = file(EXPLICIT_VR_BIG_ENDIAN);
    element(&mut bytes, (0x0010, 0x0010), b"PN", b"DOE^J ", true);
    element(&mut bytes, (0x7FE0, 0x0010), b"OW", &[0; 4], true);
    assert_eq!(
        check(&bytes, &keep()),
        "ok 1.2.840.10008.1.2.2 pixel_data=Some(Integer) elements=2 kept=46"
    );
}

/// Every refusal, by name: what the file holds and what the walk says about it.
#[test]
fn hostile_files_are_refused_with_what_is_wrong() {
    let with = |build: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = file(EXPLICIT_VR_LITTLE_ENDIAN);
        build(&mut bytes);
        bytes
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "shorter than the preamble",
            vec![0; 100],
            "truncated: the file ends inside the 128-byte preamble (byte 0)",
        ),
        (
            "no magic",
            vec![0; 200],
            "no DICM magic after the 128-byte preamble (byte 128)",
        ),
        (
            "no transfer syntax",
            file(""),
            "the file meta group has no TransferSyntaxUID (byte 132)",
        ),
        (
            "deflated",
            file(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN),
            "the deflated transfer syntax is not supported",
        ),
        (
            "transfer syntax longer than a UID",
            {
                let mut bytes = file("");
                element(&mut bytes, (0x0002, 0x0010), b"UI", &[b'1'; 80], false);
                bytes
            },
            "TransferSyntaxUID (0002,0010) of 80 bytes, longer than a UID (64) (byte 132)",
        ),
        (
            "meta element of undefined length",
            {
                let mut bytes = file("");
                header(&mut bytes, (0x0002, 0x0001), b"OB", UNDEFINED_LENGTH, false);
                bytes
            },
            "file meta element (0002,0001) has an undefined length (OB) (byte 132)",
        ),
        (
            "invalid VR",
            with(&|b| element(b, (0x0010, 0x0010), b"zz", b"x ", false)),
            "element (0010,0010) has an invalid VR \"zz\" (byte 160)",
        ),
        (
            "text of undefined length",
            with(&|b| header(b, (0x0010, 0x0010), b"UT", UNDEFINED_LENGTH, false)),
            "element (0010,0010) of VR UT has an undefined length (byte 160)",
        ),
        (
            "value past the end of the file",
            with(&|b| {
                header(b, (0x0010, 0x0010), b"UT", 5, false);
                b.extend_from_slice(b"sho");
            }),
            "truncated: the file ends inside the value of (0010,0010) (5 bytes declared) (byte 172)",
        ),
        (
            "delimiter at the top level",
            with(&|b| item(b, 0xE00D, 0)),
            "misplaced item or delimiter (FFFE,E00D) (byte 160)",
        ),
        (
            "item longer than its sequence",
            with(&|b| {
                header(b, (0x0008, 0x1115), b"SQ", 8, false);
                item(b, 0xE000, 16);
                b.extend_from_slice(&[0; 16]);
            }),
            "the value of (FFFE,E000) is longer than its enclosing sequence or item (byte 180)",
        ),
        (
            "sequence never closed",
            with(&|b| header(b, (0x0008, 0x1115), b"SQ", UNDEFINED_LENGTH, false)),
            "truncated: the file ends inside a sequence, an item or the pixel data fragments (byte 172)",
        ),
        (
            "fragment of undefined length",
            with(&|b| {
                header(b, (0x7FE0, 0x0010), b"OB", UNDEFINED_LENGTH, false);
                item(b, 0xE000, UNDEFINED_LENGTH);
            }),
            "a pixel data fragment has an undefined length (byte 172)",
        ),
        (
            "sequences nested 40 deep",
            with(&|b| {
                for _ in 0..40 {
                    header(b, (0x0008, 0x1115), b"SQ", UNDEFINED_LENGTH, false);
                    item(b, 0xE000, UNDEFINED_LENGTH);
                }
            }),
            "more than 32 levels of sequence nesting",
        ),
    ];
    let wrong: Vec<String> = cases
        .into_iter()
        .filter_map(|(name, bytes, expected)| {
            let found = check(&bytes, &keep());
            (found != expected)
                .then(|| format!("{name}:\n  expected {expected}\n  found    {found}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_4_gib_length_is_refused_before_anything_is_allocated() {
    let mut bytes = valid();
    header(&mut bytes, (0x7FE1, 0x1010), b"OB", 0xFFFF_FFF0, false);
    bytes.extend_from_slice(b"tiny");
    // In memory, the length is past the end of the input; as a stream, it is over the budget.
    assert_eq!(
        outcome(walk_bytes(&bytes, &keep())),
        "truncated: the file ends inside the value of (7FE1,1010) (4294967280 bytes declared) \
         (byte 216)"
    );
    assert_eq!(
        outcome(walk_reader(&mut &bytes[..], &keep())),
        "the header (everything but the pixel data) is larger than the 1048576 bytes allowed"
    );
    // Skipped (not kept) and streamed, the walk reads what there is and then stops.
    assert_eq!(
        outcome(walk_reader(&mut &bytes[..], &WalkOptions::default())),
        "truncated: the file ends inside the value of (7FE1,1010) (4294967280 bytes declared) \
         (byte 216)"
    );
}

#[test]
fn only_elements_that_will_be_parsed_count_against_the_limit() {
    let mut bytes = file(EXPLICIT_VR_LITTLE_ENDIAN);
    header(&mut bytes, (0x7FE0, 0x0010), b"OB", UNDEFINED_LENGTH, false);
    for _ in 0..MAX_ELEMENTS {
        item(&mut bytes, 0xE000, 0);
    }
    item(&mut bytes, 0xE0DD, 0);
    // Kept: the fragments are skipped, never parsed.
    assert_eq!(
        check(&bytes, &keep()),
        "ok 1.2.840.10008.1.2.1 pixel_data=Some(Integer) elements=1 kept=32"
    );
    // Not kept: the caller parses the whole file, fragments included.
    assert_eq!(
        check(&bytes, &WalkOptions::default()),
        "more than 500000 data elements"
    );
}

#[test]
fn is_dicom_needs_the_magic_after_the_preamble() {
    assert!(is_dicom(&valid()));
    assert!(!is_dicom(&valid()[MAGIC_AT..]));
    assert!(!is_dicom(b"DICM"));
}
