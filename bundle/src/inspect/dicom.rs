//! DICOM: every attribute outside the pixel data, through `dicom-object`.
//!
//! The file is first walked here, element header by element header, as a stream:
//! everything but the top-level pixel data is copied into a buffer of at most
//! [`ImageLimits::max_buffered_bytes`](super::ImageLimits::max_buffered_bytes), and the pixel data
//! is skipped.
//! Every declared length is checked against that budget and against its enclosing sequence
//! before any byte is read, so a header claiming a 4 GiB value can make neither this walk nor
//! `dicom-object` allocate it; sequence nesting is capped so parsing cannot recurse without
//! bound.
//! Elements after the pixel data (trailing private groups such as `7FE1`) are kept too.
//! `dicom-object` then parses the buffer, which decodes values and character sets.

use std::error::Error as StdError;
use std::io::{BufRead, Cursor};

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::file::ReadPreamble;
use dicom_object::{InMemDicomObject, OpenFileOptions};

use super::{Ctx, DicomAttribute, DicomInfo, Geometry, InspectError, text};

/// Longest attribute value kept, in characters.
const MAX_ATTRIBUTE_CHARS: usize = 256;
/// Most nested containers (a sequence and its item count as two).
const MAX_NESTING: usize = 64;
/// Most elements and items kept; real headers, even enhanced multi-frame ones with a
/// functional group item per frame, stay far below.
const MAX_ELEMENTS: u64 = 500_000;
/// A value length of all ones means "undefined": the value ends with a delimiter.
const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;

const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";

/// Reads a DICOM file's geometry and attributes.
pub(super) fn inspect(
    input: &mut dyn BufRead,
    ctx: &mut Ctx<'_>,
) -> Result<(Geometry, DicomInfo), InspectError> {
    let mut walker = Walker {
        input,
        buffer: Vec::new(),
        budget: ctx.limits.max_buffered_bytes,
        position: 0,
        big_endian: false,
        has_pixel_data: false,
        n_elements: 0,
    };
    walker.walk(ctx)?;
    let Walker {
        buffer,
        has_pixel_data,
        ..
    } = walker;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerKind {
    Sequence,
    Item,
    /// Encapsulated pixel data: items hold raw fragments, not elements.
    Fragments,
}

#[derive(Debug, Clone, Copy)]
struct Container {
    kind: ContainerKind,
    /// Data set position where a defined-length container ends.
    end: Option<u64>,
    /// Whether its bytes go to the buffer (false only inside the top-level pixel data).
    buffered: bool,
    /// Whether its elements use implicit VR (inside an undefined-length UN value).
    implicit: bool,
}

/// Streams the file and copies all of it but the top-level pixel data into `buffer`.
struct Walker<'i> {
    input: &'i mut dyn BufRead,
    buffer: Vec<u8>,
    budget: u64,
    /// Bytes of the data set (after the file meta group) consumed so far.
    position: u64,
    big_endian: bool,
    has_pixel_data: bool,
    /// Elements and items read, to bound the parsed object's size.
    n_elements: u64,
}

impl Walker<'_> {
    fn walk(&mut self, ctx: &Ctx<'_>) -> Result<(), InspectError> {
        let mut preamble = [0u8; 128];
        ctx.read_exact(self.input, &mut preamble)?;
        let mut magic = [0u8; 4];
        ctx.read_exact(self.input, &mut magic)?;
        self.buffer.extend_from_slice(&magic);
        let (transfer_syntax, first_tag) = self.read_meta(ctx)?;
        let implicit = match transfer_syntax.as_str() {
            "" => return Err(ctx.malformed("file meta group without TransferSyntaxUID")),
            IMPLICIT_VR_LITTLE_ENDIAN => true,
            EXPLICIT_VR_BIG_ENDIAN => {
                self.big_endian = true;
                false
            }
            DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN => {
                return Err(ctx.unsupported("deflated transfer syntax"));
            }
            _ => false,
        };
        let Some(first_tag) = first_tag else {
            return Ok(());
        };
        self.read_data_set(ctx, first_tag, implicit)
    }

    /// Copies the file meta group (always explicit VR little endian); returns the transfer
    /// syntax and the first data set tag, already read.
    fn read_meta(&mut self, ctx: &Ctx<'_>) -> Result<(String, Option<[u8; 4]>), InspectError> {
        let mut transfer_syntax = String::new();
        loop {
            let Some(tag_bytes) = self.read_tag_bytes(ctx)? else {
                return Ok((transfer_syntax, None));
            };
            let group = u16::from_le_bytes([tag_bytes[0], tag_bytes[1]]);
            let element = u16::from_le_bytes([tag_bytes[2], tag_bytes[3]]);
            if group != 0x0002 {
                return Ok((transfer_syntax, Some(tag_bytes)));
            }
            let (vr, length, header) = self.read_explicit_header(ctx, tag_bytes, false)?;
            if length == UNDEFINED_LENGTH {
                return Err(ctx.malformed(format!(
                    "file meta element (0002,{element:04X}) with undefined length ({vr})"
                )));
            }
            self.append(ctx, &header)?;
            let start = self.buffer.len();
            self.copy_value(ctx, u64::from(length), true)?;
            if element == 0x0010 {
                let value = &self.buffer[start..];
                transfer_syntax = String::from_utf8_lossy(value)
                    .trim_end_matches(['\0', ' '])
                    .to_owned();
            }
        }
    }

    fn read_data_set(
        &mut self,
        ctx: &Ctx<'_>,
        first_tag: [u8; 4],
        implicit_default: bool,
    ) -> Result<(), InspectError> {
        // The meta group's bytes are not data set positions.
        self.position = 4;
        let mut stack: Vec<Container> = Vec::new();
        let mut next_tag = Some(first_tag);
        loop {
            while let Some(top) = stack.last() {
                match top.end {
                    Some(end) if end == self.position => {
                        stack.pop();
                    }
                    Some(end) if end < self.position => {
                        return Err(
                            ctx.malformed("an element crosses the end of its sequence or item")
                        );
                    }
                    _ => break,
                }
            }
            let tag_bytes = match next_tag.take() {
                Some(tag_bytes) => tag_bytes,
                None => match self.read_tag_bytes(ctx)? {
                    Some(tag_bytes) => tag_bytes,
                    None if stack.is_empty() => return Ok(()),
                    None => return Err(ctx.malformed("truncated inside a sequence or pixel data")),
                },
            };
            let (group, element) = self.tag_of(tag_bytes);
            let top = stack.last().copied();
            let buffered = top.is_none_or(|container| container.buffered);
            if buffered {
                self.n_elements += 1;
                if self.n_elements > MAX_ELEMENTS {
                    return Err(ctx.unsupported(format!("more than {MAX_ELEMENTS} data elements")));
                }
            }
            let implicit = top.map_or(implicit_default, |container| container.implicit);

            if group == 0xFFFE {
                let length = self.read_u32(ctx)?;
                let mut header = tag_bytes.to_vec();
                header.extend_from_slice(&self.encode_u32(length));
                self.delimiter_or_item(
                    ctx, &mut stack, element, length, &header, buffered, implicit,
                )?;
                continue;
            }

            let (vr, length, header) = if implicit {
                let length = self.read_u32(ctx)?;
                let mut header = tag_bytes.to_vec();
                header.extend_from_slice(&self.encode_u32(length));
                (implicit_vr(group, element), length, header)
            } else {
                self.read_explicit_header(ctx, tag_bytes, self.big_endian)?
            };
            let is_top_level_pixels =
                stack.is_empty() && group == 0x7FE0 && matches!(element, 0x0008 | 0x0009 | 0x0010);
            if is_top_level_pixels {
                self.has_pixel_data = true;
                if length == UNDEFINED_LENGTH {
                    let fragments = Container {
                        kind: ContainerKind::Fragments,
                        end: None,
                        buffered: false,
                        implicit,
                    };
                    self.push(ctx, &mut stack, fragments)?;
                } else {
                    self.copy_value(ctx, u64::from(length), false)?;
                }
                continue;
            }
            if buffered {
                self.append(ctx, &header)?;
            }
            if length == UNDEFINED_LENGTH {
                let container = if (group, element) == (0x7FE0, 0x0010) {
                    Container {
                        kind: ContainerKind::Fragments,
                        end: None,
                        buffered,
                        implicit,
                    }
                } else if vr == VR::SQ || vr == VR::UN || implicit {
                    Container {
                        kind: ContainerKind::Sequence,
                        end: None,
                        buffered,
                        implicit: implicit || vr == VR::UN,
                    }
                } else {
                    return Err(ctx.malformed(format!(
                        "element ({group:04X},{element:04X}) of VR {vr} with undefined length"
                    )));
                };
                self.push(ctx, &mut stack, container)?;
            } else if vr == VR::SQ {
                let end = self.position + u64::from(length);
                self.check_within(ctx, &stack, end)?;
                self.push(
                    ctx,
                    &mut stack,
                    Container {
                        kind: ContainerKind::Sequence,
                        end: Some(end),
                        buffered,
                        implicit,
                    },
                )?;
            } else {
                self.check_within(ctx, &stack, self.position + u64::from(length))?;
                self.copy_value(ctx, u64::from(length), buffered)?;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn delimiter_or_item(
        &mut self,
        ctx: &Ctx<'_>,
        stack: &mut Vec<Container>,
        element: u16,
        length: u32,
        header: &[u8],
        buffered: bool,
        implicit: bool,
    ) -> Result<(), InspectError> {
        let top = stack.last().copied();
        match (element, top.map(|container| container.kind)) {
            (0xE000, Some(ContainerKind::Fragments)) => {
                if length == UNDEFINED_LENGTH {
                    return Err(ctx.malformed("pixel data fragment with undefined length"));
                }
                if buffered {
                    self.append(ctx, header)?;
                }
                self.copy_value(ctx, u64::from(length), buffered)
            }
            (0xE000, Some(ContainerKind::Sequence)) => {
                if buffered {
                    self.append(ctx, header)?;
                }
                let end = (length != UNDEFINED_LENGTH).then(|| self.position + u64::from(length));
                if let Some(end) = end {
                    self.check_within(ctx, stack, end)?;
                }
                self.push(
                    ctx,
                    stack,
                    Container {
                        kind: ContainerKind::Item,
                        end,
                        buffered,
                        implicit,
                    },
                )
            }
            (0xE00D, Some(ContainerKind::Item)) if top.is_some_and(|item| item.end.is_none()) => {
                stack.pop();
                if buffered {
                    self.append(ctx, header)
                } else {
                    Ok(())
                }
            }
            (0xE0DD, Some(ContainerKind::Sequence | ContainerKind::Fragments))
                if top.is_some_and(|sequence| sequence.end.is_none()) =>
            {
                stack.pop();
                if buffered {
                    self.append(ctx, header)
                } else {
                    Ok(())
                }
            }
            _ => Err(ctx.malformed(format!("misplaced item or delimiter (FFFE,{element:04X})"))),
        }
    }

    fn push(
        &self,
        ctx: &Ctx<'_>,
        stack: &mut Vec<Container>,
        container: Container,
    ) -> Result<(), InspectError> {
        if stack.len() >= MAX_NESTING {
            return Err(
                ctx.unsupported(format!("sequences nested deeper than {}", MAX_NESTING / 2))
            );
        }
        stack.push(container);
        Ok(())
    }

    /// Refuses a value or container that would end after its enclosing defined-length container.
    fn check_within(
        &self,
        ctx: &Ctx<'_>,
        stack: &[Container],
        end: u64,
    ) -> Result<(), InspectError> {
        let enclosing_end = stack.iter().rev().find_map(|container| container.end);
        if enclosing_end.is_some_and(|enclosing_end| end > enclosing_end) {
            return Err(ctx.malformed("an element is longer than its enclosing sequence or item"));
        }
        Ok(())
    }

    /// Reads `VR` and the length of an explicit VR element header.
    fn read_explicit_header(
        &mut self,
        ctx: &Ctx<'_>,
        tag_bytes: [u8; 4],
        big_endian: bool,
    ) -> Result<(VR, u32, Vec<u8>), InspectError> {
        let mut vr_bytes = [0u8; 2];
        self.read_exact(ctx, &mut vr_bytes)?;
        let Some(vr) = std::str::from_utf8(&vr_bytes)
            .ok()
            .and_then(|name| name.parse::<VR>().ok())
        else {
            return Err(ctx.malformed(format!(
                "invalid VR {:?}",
                String::from_utf8_lossy(&vr_bytes)
            )));
        };
        let mut header = tag_bytes.to_vec();
        header.extend_from_slice(&vr_bytes);
        let long_form = readroom_domain::dicom::has_long_length(vr_bytes);
        let length = if long_form {
            let mut reserved_and_length = [0u8; 6];
            self.read_exact(ctx, &mut reserved_and_length)?;
            header.extend_from_slice(&reserved_and_length);
            let bytes = [
                reserved_and_length[2],
                reserved_and_length[3],
                reserved_and_length[4],
                reserved_and_length[5],
            ];
            if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            }
        } else {
            let mut bytes = [0u8; 2];
            self.read_exact(ctx, &mut bytes)?;
            header.extend_from_slice(&bytes);
            u32::from(if big_endian {
                u16::from_be_bytes(bytes)
            } else {
                u16::from_le_bytes(bytes)
            })
        };
        Ok((vr, length, header))
    }

    fn tag_of(&self, bytes: [u8; 4]) -> (u16, u16) {
        if self.big_endian {
            (
                u16::from_be_bytes([bytes[0], bytes[1]]),
                u16::from_be_bytes([bytes[2], bytes[3]]),
            )
        } else {
            (
                u16::from_le_bytes([bytes[0], bytes[1]]),
                u16::from_le_bytes([bytes[2], bytes[3]]),
            )
        }
    }

    fn encode_u32(&self, value: u32) -> [u8; 4] {
        if self.big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        }
    }

    fn read_u32(&mut self, ctx: &Ctx<'_>) -> Result<u32, InspectError> {
        let mut bytes = [0u8; 4];
        self.read_exact(ctx, &mut bytes)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    /// Reads a tag, or `None` when the input ends cleanly before it.
    fn read_tag_bytes(&mut self, ctx: &Ctx<'_>) -> Result<Option<[u8; 4]>, InspectError> {
        let at_end = self.input.fill_buf().map_err(|err| ctx.io(err))?.is_empty();
        if at_end {
            return Ok(None);
        }
        let mut bytes = [0u8; 4];
        self.read_exact(ctx, &mut bytes)?;
        Ok(Some(bytes))
    }

    fn read_exact(&mut self, ctx: &Ctx<'_>, buf: &mut [u8]) -> Result<(), InspectError> {
        ctx.read_exact(self.input, buf)?;
        self.position += buf.len() as u64;
        Ok(())
    }

    /// Appends header bytes to the buffer, within the budget.
    fn append(&mut self, ctx: &Ctx<'_>, bytes: &[u8]) -> Result<(), InspectError> {
        self.reserve(ctx, bytes.len() as u64)?;
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    /// Copies a value into the buffer (within the budget), or skips it.
    fn copy_value(
        &mut self,
        ctx: &Ctx<'_>,
        length: u64,
        buffered: bool,
    ) -> Result<(), InspectError> {
        if buffered {
            self.reserve(ctx, length)?;
            let bytes = ctx.read_vec(self.input, length)?;
            self.buffer.extend_from_slice(&bytes);
        } else {
            ctx.skip(self.input, length)?;
        }
        self.position += length;
        Ok(())
    }

    fn reserve(&self, ctx: &Ctx<'_>, length: u64) -> Result<(), InspectError> {
        if self.buffer.len() as u64 + length > self.budget {
            return Err(InspectError::TooLargeToInspect {
                path: ctx.path.to_owned(),
                format: ctx.format,
                what: "header (everything but the pixel data)",
                limit: self.budget,
            });
        }
        Ok(())
    }
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
