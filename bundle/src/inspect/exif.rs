//! EXIF, through the `kamadak-exif` crate.
//!
//! The same TIFF-structured EXIF block appears in JPEG APP1, PNG eXIf and TIFF files themselves.
//! Every field is reported, in every IFD the crate reads (0th, 1st, Exif, GPS, Interoperability).

use exif::{Context, Field, Tag, Value};

use super::{Ctx, InspectError, text};

/// The container name of EXIF items.
pub(super) const CONTAINER: &str = "EXIF";

/// Which fields to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// All fields (EXIF embedded in JPEG or PNG).
    All,
    /// Only the Exif, GPS and Interoperability sub-IFDs: the caller reports the TIFF file's own
    /// directories itself.
    SubIfdsOnly,
}

/// Parses a TIFF-structured EXIF block and records its fields.
pub(super) fn collect(ctx: &mut Ctx<'_>, data: Vec<u8>, scope: Scope) -> Result<(), InspectError> {
    let parsed = exif::Reader::new()
        .continue_on_error(true)
        .read_raw(data)
        .or_else(|err| err.distill_partial_result(|_ignored| {}));
    let exif = match parsed {
        Ok(exif) => exif,
        Err(err) => return Err(ctx.malformed(format!("unreadable EXIF block: {err}"))),
    };
    for field in exif.fields() {
        let context = field.tag.context();
        if scope == Scope::SubIfdsOnly && context == Context::Tiff {
            continue;
        }
        ctx.push(
            CONTAINER,
            key(field.tag),
            value(field, exif.little_endian()),
        )?;
    }
    Ok(())
}

fn key(tag: Tag) -> String {
    if tag.description().is_some() {
        return tag.to_string();
    }
    if tag.context() == Context::Tiff
        && let Some(name) = windows_tag_name(tag.number())
    {
        return name.to_owned();
    }
    format!("{:?}.0x{:04X}", tag.context(), tag.number())
}

fn value(field: &Field, little_endian: bool) -> String {
    let is_windows_tag =
        field.tag.context() == Context::Tiff && windows_tag_name(field.tag.number()).is_some();
    match &field.value {
        Value::Ascii(strings) => {
            let parts: Vec<String> = strings
                .iter()
                .map(|bytes| text::utf8_or_latin1(bytes))
                .collect();
            parts.join("\\")
        }
        Value::Byte(bytes) if is_windows_tag => text::utf16le(bytes),
        Value::Undefined(bytes, _) if field.tag == Tag::UserComment => {
            user_comment(bytes, little_endian)
        }
        Value::Undefined(bytes, _) => text::bytes_as_text(bytes, 4096),
        _ => field.display_value().to_string(),
    }
}

/// Names of the Windows Explorer tags (UTF-16LE in BYTE fields of the 0th IFD).
pub(super) fn windows_tag_name(number: u16) -> Option<&'static str> {
    match number {
        0x9C9B => Some("XPTitle"),
        0x9C9C => Some("XPComment"),
        0x9C9D => Some("XPAuthor"),
        0x9C9E => Some("XPKeywords"),
        0x9C9F => Some("XPSubject"),
        _ => None,
    }
}

/// Decodes a UserComment: an 8-byte character code, then the text.
fn user_comment(bytes: &[u8], little_endian: bool) -> String {
    if bytes.len() < 8 {
        return text::bytes_as_text(bytes, 4096);
    }
    let (code, rest) = bytes.split_at(8);
    if code == b"UNICODE\0" {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|pair| {
                let pair = [pair[0], pair[1]];
                if little_endian {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                }
            })
            .collect();
        return String::from_utf16_lossy(&units)
            .trim_end_matches(['\0', ' '])
            .to_owned();
    }
    text::utf8_or_latin1(rest).trim_end().to_owned()
}
