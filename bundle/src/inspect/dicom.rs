//! DICOM: every attribute outside the pixel data, through `dicom-object`.
//!
//! The file is first walked as a stream by [`crate::dicom::walk_reader`], element header by
//! element header: everything but the top-level pixel data is copied into a buffer of at most
//! [`ImageLimits::max_buffered_bytes`](super::ImageLimits::max_buffered_bytes), and the pixel data
//! is skipped.
//! Every declared length is checked against that budget and against its enclosing sequence
//! before any byte is read, so a header claiming a 4 GiB value can make neither the walk nor
//! `dicom-object` allocate it; sequence nesting is capped so parsing cannot recurse without
//! bound.
//! Elements after the pixel data (trailing private groups such as `7FE1`) are kept too.
//! `dicom-object` then parses the buffer, which decodes values and character sets.

use std::error::Error as StdError;
use std::io::{BufRead, Cursor};

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::file::ReadPreamble;
use dicom_object::{InMemDicomObject, OpenFileOptions};

use super::{Ctx, DicomAttribute, DicomInfo, Geometry, InspectError, text};
use crate::dicom::{WalkError, WalkOptions, walk_reader};

/// Longest attribute value kept, in characters.
const MAX_ATTRIBUTE_CHARS: usize = 256;

/// Reads a DICOM file's geometry and attributes.
pub(super) fn inspect(
    input: &mut dyn BufRead,
    ctx: &mut Ctx<'_>,
) -> Result<(Geometry, DicomInfo), InspectError> {
    let options = WalkOptions {
        stop_at_pixel_data: false,
        keep_up_to: Some(ctx.limits.max_buffered_bytes),
    };
    let walked = walk_reader(input, &options).map_err(|err| walk_error(ctx, err))?;
    let has_pixel_data = walked.pixel_data.is_some();
    let buffer = walked.kept;

    let object = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .from_reader(Cursor::new(buffer))
        .map_err(|err| ctx.malformed(error_chain(&err)))?;

    let mut attributes = Vec::new();
    flatten(&object, "", &mut attributes);
    let text_of = |tag: Tag| {
        object
            .element(tag)
            .ok()
            .and_then(|element| element.to_str().ok())
            .map(|value| value.trim().to_owned())
    };
    let mut sop_class_uid = object
        .meta()
        .media_storage_sop_class_uid()
        .trim_end_matches(['\0', ' '])
        .to_owned();
    if sop_class_uid.is_empty() {
        sop_class_uid = text_of(tags::SOP_CLASS_UID).unwrap_or_default();
    }
    let modality = text_of(tags::MODALITY).unwrap_or_default();
    let int_of = |tag: Tag| {
        object
            .element(tag)
            .ok()
            .and_then(|element| element.to_int::<u64>().ok())
    };
    let rows = int_of(tags::ROWS);
    let columns = int_of(tags::COLUMNS);
    let mut geometry = Geometry {
        bits_per_sample: int_of(tags::BITS_ALLOCATED)
            .and_then(|bits| u16::try_from(bits).ok())
            .unwrap_or(0),
        channels: int_of(tags::SAMPLES_PER_PIXEL)
            .and_then(|samples| u8::try_from(samples).ok())
            .unwrap_or(0),
        ..Geometry::default()
    };
    if has_pixel_data {
        let (Some(rows), Some(columns)) = (rows, columns) else {
            return Err(ctx.malformed("pixel data without Rows and Columns"));
        };
        ctx.check_dimensions(columns, rows)?;
        let frames = int_of(tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
        ctx.check_frames(frames)?;
        geometry.width = columns as u32;
        geometry.height = rows as u32;
        geometry.frames = frames as u32;
    }
    Ok((
        geometry,
        DicomInfo {
            sop_class_uid,
            modality,
            attributes,
        },
    ))
}

/// Lists the elements of `object` and, depth first, of its sequence items.
fn flatten(object: &InMemDicomObject, path: &str, out: &mut Vec<DicomAttribute>) {
    let dictionary = StandardDataDictionary;
    for element in object {
        let tag = element.header().tag;
        if tag.group() == 0x0002 {
            continue;
        }
        let private = tag.group() % 2 == 1;
        let keyword = if private {
            String::new()
        } else {
            dictionary
                .by_tag(tag)
                .map(|entry| entry.alias().to_owned())
                .unwrap_or_default()
        };
        let value = match element.value() {
            Value::Primitive(primitive) => primitive_text(primitive),
            Value::Sequence(sequence) => format!("{} item(s)", sequence.items().len()),
            Value::PixelSequence(pixels) => {
                format!(
                    "encapsulated pixel data, {} fragment(s)",
                    pixels.fragments().len()
                )
            }
        };
        out.push(DicomAttribute {
            path: path.to_owned(),
            tag: (tag.group(), tag.element()),
            keyword,
            vr: element.vr().to_string().to_owned(),
            value,
            private,
        });
        if let Value::Sequence(sequence) = element.value() {
            for (index, item) in sequence.items().iter().enumerate() {
                let separator = if path.is_empty() { "" } else { "/" };
                let item_path = format!(
                    "{path}{separator}({:04X},{:04X})[{index}]",
                    tag.group(),
                    tag.element()
                );
                flatten(item, &item_path, out);
            }
        }
    }
}

fn primitive_text(value: &PrimitiveValue) -> String {
    match value {
        PrimitiveValue::U8(bytes) => text::bytes_as_text(bytes, MAX_ATTRIBUTE_CHARS),
        other => text::truncate(&other.to_str(), MAX_ATTRIBUTE_CHARS),
    }
}

fn error_chain(err: &dyn StdError) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The inspection error for a refused walk: running out of input is a malformed (truncated)
/// file, as for the other formats; over-deep or over-long headers are unsupported.
fn walk_error(ctx: &Ctx<'_>, err: WalkError) -> InspectError {
    match err {
        WalkError::KeptTooLarge { limit } => InspectError::TooLargeToInspect {
            path: ctx.path.to_owned(),
            format: ctx.format,
            what: "header (everything but the pixel data)",
            limit,
        },
        WalkError::Io(source) => ctx.io(source),
        err @ (WalkError::Unsupported(_) | WalkError::OverLimit { .. }) => {
            ctx.unsupported(err.to_string())
        }
        err => ctx.malformed(err.to_string()),
    }
}
