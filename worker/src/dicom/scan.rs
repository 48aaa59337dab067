//! The worker's own structure walk of a DICOM file, before `dicom-object` parses it: every
//! declared length is checked against the bytes left and its enclosing sequence or item, and
//! nesting and element counts are capped, so no header can make the parser allocate more than
//! the file holds or recurse without bound.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, uids};

use super::{DEFLATED, EXPLICIT_VR_BIG_ENDIAN, MAGIC_AT};

/// Most nested containers (a sequence and its item count as two).
const MAX_NESTING: usize = 64;
/// Most elements and items in one file.
const MAX_ELEMENTS: u64 = 500_000;
/// A value length of all ones means "undefined": the value ends with a delimiter.
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Why the structure walk stopped.
#[derive(Debug, PartialEq)]
pub(super) enum ScanError {
    /// The bytes end inside an element.
    Truncated,
    /// The structure is invalid.
    Malformed(String),
    /// Too many elements or too deep.
    TooLarge(String),
}

/// What the structure walk found.
#[derive(Debug, PartialEq)]
pub(super) struct Scanned {
    /// Whether the data set has top-level pixel data.
    pub(super) pixel_data: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Sequence,
    Item,
    Fragments,
}

#[derive(Clone, Copy)]
struct Container {
    kind: Kind,
    /// Where a defined-length container ends.
    end: Option<usize>,
    /// Elements inside use implicit VR (inside an undefined-length UN value).
    implicit: bool,
}

/// Walks the file's element headers, checking every declared length against the bytes left and
/// its enclosing container; with `stop_at_pixels`, stops at the top-level pixel data.
pub(super) fn scan(bytes: &[u8], stop_at_pixels: bool) -> Result<Scanned, ScanError> {
    let mut at = MAGIC_AT + 4;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], ScanError> {
        let slice = bytes.get(*at..*at + n).ok_or(ScanError::Truncated)?;
        *at += n;
        Ok(slice)
    };
    // File meta group: explicit VR little endian.
    let mut transfer_syntax = String::new();
    loop {
        let Some(tag) = bytes.get(at..at + 4) else {
            return Ok(Scanned { pixel_data: false });
        };
        if u16::from_le_bytes([tag[0], tag[1]]) != 0x0002 {
            break;
        }
        let element = u16::from_le_bytes([tag[2], tag[3]]);
        at += 4;
        let (_, length) = explicit_header(bytes, &mut at, false)?;
        if length == UNDEFINED {
            return Err(ScanError::Malformed(
                "a file meta element has an undefined length".into(),
            ));
        }
        let value = take(&mut at, length as usize)?;
        if element == 0x0010 {
            transfer_syntax = String::from_utf8_lossy(value)
                .trim_end_matches(['\0', ' '])
                .to_owned();
        }
    }
    let big_endian = match transfer_syntax.as_str() {
        "" => {
            return Err(ScanError::Malformed(
                "the file meta group has no TransferSyntaxUID".into(),
            ));
        }
        DEFLATED => {
            return Err(ScanError::Malformed(
                "the deflated transfer syntax is not supported".into(),
            ));
        }
        EXPLICIT_VR_BIG_ENDIAN => true,
        _ => false,
    };
    let implicit_default = transfer_syntax == uids::IMPLICIT_VR_LITTLE_ENDIAN;
    let u16_at = |b: &[u8]| {
        if big_endian {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        }
    };
    let u32_at = |b: &[u8]| {
        if big_endian {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
    };
    let mut stack: Vec<Container> = Vec::new();
    let mut elements = 0u64;
    let mut found_pixels = false;
    loop {
        while let Some(top) = stack.last() {
            match top.end {
                Some(end) if end == at => {
                    stack.pop();
                }
                Some(end) if end < at => {
                    return Err(ScanError::Malformed(
                        "an element crosses the end of its sequence or item".into(),
                    ));
                }
                _ => break,
            }
        }
        if at == bytes.len() {
            return if stack.is_empty() {
                Ok(Scanned {
                    pixel_data: found_pixels,
                })
            } else {
                Err(ScanError::Truncated)
            };
        }
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(ScanError::TooLarge(format!(
                "more than {MAX_ELEMENTS} data elements"
            )));
        }
        let tag = take(&mut at, 4)?;
        let (group, element) = (u16_at(&tag[0..2]), u16_at(&tag[2..4]));
        let top = stack.last().copied();
        let implicit = top.map_or(implicit_default, |c| c.implicit);
        let enclosing_end = stack.iter().rev().find_map(|c| c.end);
        let within = |end: usize| -> Result<(), ScanError> {
            if end > bytes.len() {
                return Err(ScanError::Truncated);
            }
            if enclosing_end.is_some_and(|enclosing| end > enclosing) {
                return Err(ScanError::Malformed(
                    "an element is longer than its enclosing sequence or item".into(),
                ));
            }
            Ok(())
        };
        let push = |stack: &mut Vec<Container>, container: Container| {
            if stack.len() >= MAX_NESTING {
                return Err(ScanError::TooLarge(format!(
                    "sequences nested deeper than {}",
                    MAX_NESTING / 2
                )));
            }
            stack.push(container);
            Ok(())
        };

        if group == 0xFFFE {
            let length = u32_at(take(&mut at, 4)?);
            match (element, top.map(|c| c.kind)) {
                (0xE000, Some(Kind::Fragments)) => {
                    if length == UNDEFINED {
                        return Err(ScanError::Malformed(
                            "a pixel data fragment has an undefined length".into(),
                        ));
                    }
                    within(at + length as usize)?;
                    at += length as usize;
                }
                (0xE000, Some(Kind::Sequence)) => {
                    let end = (length != UNDEFINED).then(|| at + length as usize);
                    if let Some(end) = end {
                        within(end)?;
                    }
                    push(
                        &mut stack,
                        Container {
                            kind: Kind::Item,
                            end,
                            implicit,
                        },
                    )?;
                }
                (0xE00D, Some(Kind::Item)) if top.is_some_and(|c| c.end.is_none()) => {
                    stack.pop();
                }
                (0xE0DD, Some(Kind::Sequence | Kind::Fragments))
                    if top.is_some_and(|c| c.end.is_none()) =>
                {
                    stack.pop();
                }
                _ => {
                    return Err(ScanError::Malformed(format!(
                        "misplaced item or delimiter (FFFE,{element:04X})"
                    )));
                }
            }
            continue;
        }

        let (vr, length) = if implicit {
            (implicit_vr(group, element), u32_at(take(&mut at, 4)?))
        } else {
            explicit_header(bytes, &mut at, big_endian)?
        };
        let pixel_data = (group, element) == (0x7FE0, 0x0010);
        if pixel_data && stack.is_empty() {
            if stop_at_pixels {
                return Ok(Scanned { pixel_data: true });
            }
            if length == UNDEFINED {
                push(
                    &mut stack,
                    Container {
                        kind: Kind::Fragments,
                        end: None,
                        implicit,
                    },
                )?;
            } else {
                within(at + length as usize)?;
                at += length as usize;
            }
            // Whatever follows the pixel data (trailing groups) is walked too.
            found_pixels = true;
            continue;
        }
        if length == UNDEFINED {
            let kind = if pixel_data {
                Kind::Fragments
            } else if vr == VR::SQ || vr == VR::UN || implicit {
                Kind::Sequence
            } else {
                return Err(ScanError::Malformed(format!(
                    "element ({group:04X},{element:04X}) of VR {vr} has an undefined length"
                )));
            };
            push(
                &mut stack,
                Container {
                    kind,
                    end: None,
                    implicit: implicit || vr == VR::UN,
                },
            )?;
        } else if vr == VR::SQ {
            let end = at + length as usize;
            within(end)?;
            push(
                &mut stack,
                Container {
                    kind: Kind::Sequence,
                    end: Some(end),
                    implicit,
                },
            )?;
        } else {
            within(at + length as usize)?;
            at += length as usize;
        }
    }
}

/// Reads the VR and length of an explicit VR element header (the tag already read).
fn explicit_header(bytes: &[u8], at: &mut usize, big_endian: bool) -> Result<(VR, u32), ScanError> {
    let vr_bytes = bytes.get(*at..*at + 2).ok_or(ScanError::Truncated)?;
    let vr = std::str::from_utf8(vr_bytes)
        .ok()
        .and_then(|name| name.parse::<VR>().ok())
        .ok_or_else(|| ScanError::Malformed("an element has an invalid VR".into()))?;
    *at += 2;
    let long_form = readroom_domain::dicom::has_long_length([vr_bytes[0], vr_bytes[1]]);
    let length = if long_form {
        let b = bytes.get(*at + 2..*at + 6).ok_or(ScanError::Truncated)?;
        *at += 6;
        if big_endian {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
    } else {
        let b = bytes.get(*at..*at + 2).ok_or(ScanError::Truncated)?;
        *at += 2;
        u32::from(if big_endian {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    Ok((vr, length))
}

/// The VR of an implicit VR element, from the standard dictionary (UN when unknown).
fn implicit_vr(group: u16, element: u16) -> VR {
    if group % 2 == 1 {
        return VR::UN;
    }
    match StandardDataDictionary
        .by_tag(Tag(group, element))
        .map(|entry| entry.vr())
    {
        Some(VirtualVr::Exact(vr)) => vr,
        _ => VR::UN,
    }
}
