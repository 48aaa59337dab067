//! The one structure walk of a DICOM Part 10 file, shared by the ingest gate's inspector
//! ([`crate::inspect`]) and the worker's decoder (`readroom-worker`'s `dicom.rs`).
//!
//! `dicom-object` believes the lengths a file declares: a header claiming a 4 GiB value makes it
//! try to allocate 4 GiB, and deeply nested sequences make it recurse. So before it parses
//! anything, [`walk_reader`] or [`walk_bytes`] walks the file element header by element header
//! and checks every declared length against the byte budget, against the end of its enclosing
//! defined-length sequence or item and, when the input's length is known, against the bytes
//! left; sequence nesting and the number of elements are capped. The walk never allocates more
//! than it was allowed to keep and never panics; every refusal is a [`WalkError`] that says what
//! is wrong and at which byte.
//!
//! The design decision: one walker with two uses, chosen by [`WalkOptions`], rather than one
//! walker per caller. The inspector streams a bundle entry and keeps everything but the top-level
//! pixel data (up to a byte budget) for `dicom-object` to parse; the worker holds the whole entry
//! in memory, keeps nothing, and parses the same bytes once the walk has accepted them (or stops
//! at the pixel data when it only needs the header). Two walkers had drifted apart in which
//! lengths they checked; one walker cannot.

use std::io::{self, BufRead};

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

#[cfg(test)]
mod tests;

/// Offset of the `DICM` magic: after the 128-byte preamble.
pub const MAGIC_AT: usize = 128;
/// Most nested containers (a sequence and its item count as two).
pub const MAX_NESTING: usize = 64;
/// Most elements and items the parser will be given; real headers, even enhanced multi-frame ones
/// with a functional group item per frame, stay far below.
pub const MAX_ELEMENTS: u64 = 500_000;
/// Longest TransferSyntaxUID value: a UI value is at most 64 bytes (PS3.5 §6.2).
const MAX_TRANSFER_SYNTAX_LEN: u32 = 64;
/// A value length of all ones means "undefined": the value ends with a delimiter.
const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;

/// Implicit VR Little Endian, the default transfer syntax.
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
/// Explicit VR Big Endian (retired, still met).
pub const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
/// Deflated Explicit VR Little Endian: the data set is a deflate stream, which neither caller
/// reads.
pub const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";

/// Whether `bytes` start like a DICOM Part 10 file (a 128-byte preamble, then `DICM`).
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.get(MAGIC_AT..MAGIC_AT + 4) == Some(b"DICM".as_slice())
}

/// What the walk does besides checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkOptions {
    /// Stop right after the header of the first top-level pixel data element (the caller wants
    /// only the attributes before it); otherwise the pixel data is checked and skipped, and the
    /// elements after it (trailing private groups) are walked too.
    pub stop_at_pixel_data: bool,
    /// Copy the magic, the file meta group and every element but the top-level pixel data into
    /// [`Walked::kept`], refusing ([`WalkError::KeptTooLarge`]) to keep more than this many
    /// bytes. `None`: keep nothing. Only kept elements count against [`MAX_ELEMENTS`] then,
    /// since only they will be parsed; without keeping, every element does.
    pub keep_up_to: Option<u64>,
}

/// Which top-level pixel data element a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelData {
    /// (7FE0,0010) Pixel Data: integer samples, native or encapsulated.
    Integer,
    /// (7FE0,0008) Float Pixel Data.
    Float,
    /// (7FE0,0009) Double Float Pixel Data.
    DoubleFloat,
}

impl PixelData {
    fn from_element(element: u16) -> Option<PixelData> {
        match element {
            0x0010 => Some(PixelData::Integer),
            0x0008 => Some(PixelData::Float),
            0x0009 => Some(PixelData::DoubleFloat),
            _ => None,
        }
    }
}

/// What a successful walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walked {
    /// The TransferSyntaxUID from the file meta group, without padding.
    pub transfer_syntax: String,
    /// The first top-level pixel data element, if any.
    pub pixel_data: Option<PixelData>,
    /// `DICM`, the file meta group and the data set without its top-level pixel data, when
    /// [`WalkOptions::keep_up_to`] asked for them (empty otherwise): a Part 10 file without its
    /// preamble, for `dicom-object` with `ReadPreamble::Never`.
    pub kept: Vec<u8>,
    /// Elements and items counted against [`MAX_ELEMENTS`].
    pub n_elements: u64,
}

/// Why a walk refused a file. Offsets are bytes from the start of the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// The input ends inside something.
    #[error("truncated: the file ends inside {what} (byte {offset})")]
    Truncated {
        /// What was being read, e.g. "the value of (0010,0010)".
        what: String,
        /// Where that read started.
        offset: u64,
    },
    /// The structure is invalid.
    #[error("{reason} (byte {offset})")]
    Malformed {
        /// What is wrong, naming the element when there is one.
        reason: String,
        /// Where the offending element or header starts.
        offset: u64,
    },
    /// A valid file in an encoding readroom does not read.
    #[error("{0}")]
    Unsupported(String),
    /// More elements, or deeper nesting, than allowed.
    #[error("more than {limit} {what}")]
    OverLimit {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The non-pixel part is larger than [`WalkOptions::keep_up_to`].
    #[error("the header (everything but the pixel data) is larger than the {limit} bytes allowed")]
    KeptTooLarge {
        /// The limit.
        limit: u64,
    },
    /// Reading the input failed (not at its end).
    #[error("read failed: {0}")]
    Io(#[source] io::Error),
}

/// Walks a file held in memory: lengths past the end of `bytes` are refused as
/// [`WalkError::Truncated`] before anything is read.
pub fn walk_bytes(bytes: &[u8], options: &WalkOptions) -> Result<Walked, WalkError> {
    let mut input = bytes;
    Walker::new(&mut input, Some(bytes.len() as u64), options).walk()
}

/// Walks a file as a stream. On success without [`WalkOptions::stop_at_pixel_data`], the input
/// has been read to its end.
pub fn walk_reader(input: &mut dyn BufRead, options: &WalkOptions) -> Result<Walked, WalkError> {
    Walker::new(input, None, options).walk()
}

/// What a read was for, to name it when the input ends.
#[derive(Debug, Clone, Copy)]
enum Site {
    Preamble,
    Magic,
    Tag,
    Header(u16, u16),
    Value(u16, u16),
}

impl Site {
    fn describe(self) -> String {
        match self {
            Site::Preamble => "the 128-byte preamble".to_owned(),
            Site::Magic => "the DICM magic".to_owned(),
            Site::Tag => "an element tag".to_owned(),
            Site::Header(group, element) => {
                format!("the header of ({group:04X},{element:04X})")
            }
            Site::Value(group, element) => format!("the value of ({group:04X},{element:04X})"),
        }
    }
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
    /// File offset where a defined-length container ends.
    end: Option<u64>,
    /// Whether its bytes are kept (false inside the top-level pixel data).
    kept: bool,
    /// Whether its elements use implicit VR (inside an undefined-length UN value).
    implicit: bool,
}

struct Walker<'i> {
    input: &'i mut dyn BufRead,
    /// The input's length, when known.
    len: Option<u64>,
    /// Bytes consumed so far.
    position: u64,
    stop_at_pixel_data: bool,
    keep_up_to: Option<u64>,
    big_endian: bool,
    walked: Walked,
}

impl<'i> Walker<'i> {
    fn new(input: &'i mut dyn BufRead, len: Option<u64>, options: &WalkOptions) -> Walker<'i> {
        Walker {
            input,
            len,
            position: 0,
            stop_at_pixel_data: options.stop_at_pixel_data,
            keep_up_to: options.keep_up_to,
            big_endian: false,
            walked: Walked::default(),
        }
    }

    fn walk(mut self) -> Result<Walked, WalkError> {
        self.skip(MAGIC_AT as u64, Site::Preamble)?;
        let mut magic = [0u8; 4];
        self.read_exact(&mut magic, Site::Magic)?;
        if &magic != b"DICM" {
            return Err(
                self.malformed("no DICM magic after the 128-byte preamble", MAGIC_AT as u64)
            );
        }
        self.keep(&magic)?;
        let first_tag = self.read_meta()?;
        let implicit = match self.walked.transfer_syntax.as_str() {
            "" => {
                return Err(self.malformed(
                    "the file meta group has no TransferSyntaxUID",
                    MAGIC_AT as u64 + 4,
                ));
            }
            DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN => {
                return Err(WalkError::Unsupported(
                    "the deflated transfer syntax is not supported".to_owned(),
                ));
            }
            EXPLICIT_VR_BIG_ENDIAN => {
                self.big_endian = true;
                false
            }
            IMPLICIT_VR_LITTLE_ENDIAN => true,
            _ => false,
        };
        if let Some(first_tag) = first_tag {
            self.read_data_set(first_tag, implicit)?;
        }
        Ok(self.walked)
    }

    /// Reads the file meta group (always explicit VR little endian) and its TransferSyntaxUID;
    /// returns the first data set tag, already read.
    fn read_meta(&mut self) -> Result<Option<[u8; 4]>, WalkError> {
        loop {
            let Some(tag_bytes) = self.read_tag_bytes()? else {
                return Ok(None);
            };
            let group = u16::from_le_bytes([tag_bytes[0], tag_bytes[1]]);
            let element = u16::from_le_bytes([tag_bytes[2], tag_bytes[3]]);
            if group != 0x0002 {
                return Ok(Some(tag_bytes));
            }
            let start = self.position - 4;
            let (vr, length, header) = self.read_explicit_header(tag_bytes, (group, element))?;
            if length == UNDEFINED_LENGTH {
                return Err(self.malformed(
                    format!(
                        "file meta element (0002,{element:04X}) has an undefined length ({vr})"
                    ),
                    start,
                ));
            }
            self.keep(&header)?;
            self.check_end(
                self.position + u64::from(length),
                &[],
                Site::Value(group, element),
            )?;
            if element != 0x0010 {
                self.value(u64::from(length), true, Site::Value(group, element))?;
                continue;
            }
            if length > MAX_TRANSFER_SYNTAX_LEN {
                return Err(self.malformed(
                    format!(
                        "TransferSyntaxUID (0002,0010) of {length} bytes, longer than a UID \
                         ({MAX_TRANSFER_SYNTAX_LEN})"
                    ),
                    start,
                ));
            }
            let mut value = vec![0u8; length as usize];
            self.read_exact(&mut value, Site::Value(group, element))?;
            self.keep(&value)?;
            self.walked.transfer_syntax = String::from_utf8_lossy(&value)
                .trim_end_matches(['\0', ' '])
                .to_owned();
        }
    }

    fn read_data_set(
        &mut self,
        first_tag: [u8; 4],
        implicit_default: bool,
    ) -> Result<(), WalkError> {
        let keeping = self.keep_up_to.is_some();
        let mut stack: Vec<Container> = Vec::new();
        let mut next_tag = Some(first_tag);
        loop {
            while let Some(top) = stack.last() {
                match top.end {
                    Some(end) if end == self.position => {
                        stack.pop();
                    }
                    Some(end) if end < self.position => {
                        return Err(self
                            .malformed("an element crosses the end of its sequence or item", end));
                    }
                    _ => break,
                }
            }
            let tag_bytes = match next_tag.take() {
                Some(tag_bytes) => tag_bytes,
                None => match self.read_tag_bytes()? {
                    Some(tag_bytes) => tag_bytes,
                    None if stack.is_empty() => return Ok(()),
                    None => {
                        return Err(WalkError::Truncated {
                            what: "a sequence, an item or the pixel data fragments".to_owned(),
                            offset: self.position,
                        });
                    }
                },
            };
            let start = self.position - 4;
            let (group, element) = self.tag_of(tag_bytes);
            let top = stack.last().copied();
            let kept = keeping && top.is_none_or(|container| container.kept);
            if kept || !keeping {
                self.walked.n_elements += 1;
                if self.walked.n_elements > MAX_ELEMENTS {
                    return Err(WalkError::OverLimit {
                        what: "data elements",
                        limit: MAX_ELEMENTS,
                    });
                }
            }
            let implicit = top.map_or(implicit_default, |container| container.implicit);

            if group == 0xFFFE {
                let length = self.read_u32(Site::Header(group, element))?;
                let mut header = tag_bytes.to_vec();
                header.extend_from_slice(&self.encode_u32(length));
                self.delimiter_or_item(
                    &mut stack, element, length, &header, kept, implicit, start,
                )?;
                continue;
            }

            let (vr, length, header) = if implicit {
                let length = self.read_u32(Site::Header(group, element))?;
                let mut header = tag_bytes.to_vec();
                header.extend_from_slice(&self.encode_u32(length));
                (implicit_vr(group, element), length, header)
            } else {
                self.read_explicit_header(tag_bytes, (group, element))?
            };
            let top_level_pixels = match group {
                0x7FE0 if stack.is_empty() => PixelData::from_element(element),
                _ => None,
            };
            if let Some(pixel_data) = top_level_pixels {
                self.walked.pixel_data.get_or_insert(pixel_data);
                if self.stop_at_pixel_data {
                    return Ok(());
                }
                if length == UNDEFINED_LENGTH {
                    let fragments = Container {
                        kind: ContainerKind::Fragments,
                        end: None,
                        kept: false,
                        implicit,
                    };
                    self.push(&mut stack, fragments)?;
                } else {
                    let site = Site::Value(group, element);
                    self.check_end(self.position + u64::from(length), &stack, site)?;
                    self.value(u64::from(length), false, site)?;
                }
                continue;
            }
            if kept {
                self.keep(&header)?;
            }
            if length == UNDEFINED_LENGTH {
                let container = if (group, element) == (0x7FE0, 0x0010) {
                    Container {
                        kind: ContainerKind::Fragments,
                        end: None,
                        kept,
                        implicit,
                    }
                } else if vr == VR::SQ || vr == VR::UN || implicit {
                    Container {
                        kind: ContainerKind::Sequence,
                        end: None,
                        kept,
                        implicit: implicit || vr == VR::UN,
                    }
                } else {
                    return Err(self.malformed(
                        format!(
                            "element ({group:04X},{element:04X}) of VR {vr} has an undefined length"
                        ),
                        start,
                    ));
                };
                self.push(&mut stack, container)?;
            } else if vr == VR::SQ {
                let end = self.position + u64::from(length);
                self.check_end(end, &stack, Site::Value(group, element))?;
                let sequence = Container {
                    kind: ContainerKind::Sequence,
                    end: Some(end),
                    kept,
                    implicit,
                };
                self.push(&mut stack, sequence)?;
            } else {
                let site = Site::Value(group, element);
                self.check_end(self.position + u64::from(length), &stack, site)?;
                self.value(u64::from(length), kept, site)?;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn delimiter_or_item(
        &mut self,
        stack: &mut Vec<Container>,
        element: u16,
        length: u32,
        header: &[u8],
        kept: bool,
        implicit: bool,
        start: u64,
    ) -> Result<(), WalkError> {
        let top = stack.last().copied();
        let site = Site::Value(0xFFFE, element);
        match (element, top.map(|container| container.kind)) {
            (0xE000, Some(ContainerKind::Fragments)) => {
                if length == UNDEFINED_LENGTH {
                    return Err(
                        self.malformed("a pixel data fragment has an undefined length", start)
                    );
                }
                if kept {
                    self.keep(header)?;
                }
                self.check_end(self.position + u64::from(length), stack, site)?;
                self.value(u64::from(length), kept, site)
            }
            (0xE000, Some(ContainerKind::Sequence)) => {
                if kept {
                    self.keep(header)?;
                }
                let end = (length != UNDEFINED_LENGTH).then(|| self.position + u64::from(length));
                if let Some(end) = end {
                    self.check_end(end, stack, site)?;
                }
                let item = Container {
                    kind: ContainerKind::Item,
                    end,
                    kept,
                    implicit,
                };
                self.push(stack, item)
            }
            (0xE00D, Some(ContainerKind::Item)) if top.is_some_and(|item| item.end.is_none()) => {
                stack.pop();
                if kept { self.keep(header) } else { Ok(()) }
            }
            (0xE0DD, Some(ContainerKind::Sequence | ContainerKind::Fragments))
                if top.is_some_and(|sequence| sequence.end.is_none()) =>
            {
                stack.pop();
                if kept { self.keep(header) } else { Ok(()) }
            }
            _ => Err(self.malformed(
                format!("misplaced item or delimiter (FFFE,{element:04X})"),
                start,
            )),
        }
    }

    fn push(&self, stack: &mut Vec<Container>, container: Container) -> Result<(), WalkError> {
        if stack.len() >= MAX_NESTING {
            return Err(WalkError::OverLimit {
                what: "levels of sequence nesting",
                limit: (MAX_NESTING / 2) as u64,
            });
        }
        stack.push(container);
        Ok(())
    }

    /// Refuses a value or container that would end after the input (when its length is known)
    /// or after its enclosing defined-length container.
    fn check_end(&self, end: u64, stack: &[Container], site: Site) -> Result<(), WalkError> {
        if self.len.is_some_and(|len| end > len) {
            return Err(WalkError::Truncated {
                what: format!(
                    "{} ({} bytes declared)",
                    site.describe(),
                    end - self.position
                ),
                offset: self.position,
            });
        }
        let enclosing_end = stack.iter().rev().find_map(|container| container.end);
        if enclosing_end.is_some_and(|enclosing_end| end > enclosing_end) {
            return Err(self.malformed(
                format!(
                    "{} is longer than its enclosing sequence or item",
                    site.describe()
                ),
                self.position,
            ));
        }
        Ok(())
    }

    /// Reads the VR and length of an explicit VR element header (the tag already read);
    /// returns them with the header's bytes.
    fn read_explicit_header(
        &mut self,
        tag_bytes: [u8; 4],
        (group, element): (u16, u16),
    ) -> Result<(VR, u32, Vec<u8>), WalkError> {
        let site = Site::Header(group, element);
        let start = self.position - 4;
        let mut vr_bytes = [0u8; 2];
        self.read_exact(&mut vr_bytes, site)?;
        let Some(vr) = std::str::from_utf8(&vr_bytes)
            .ok()
            .and_then(|name| name.parse::<VR>().ok())
        else {
            return Err(self.malformed(
                format!(
                    "element ({group:04X},{element:04X}) has an invalid VR {:?}",
                    String::from_utf8_lossy(&vr_bytes)
                ),
                start,
            ));
        };
        let mut header = tag_bytes.to_vec();
        header.extend_from_slice(&vr_bytes);
        // False while reading the file meta group: it is set from the transfer syntax after it.
        let big_endian = self.big_endian;
        let length = if readroom_domain::dicom::has_long_length(vr_bytes) {
            let mut reserved_and_length = [0u8; 6];
            self.read_exact(&mut reserved_and_length, site)?;
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
            self.read_exact(&mut bytes, site)?;
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

    fn read_u32(&mut self, site: Site) -> Result<u32, WalkError> {
        let mut bytes = [0u8; 4];
        self.read_exact(&mut bytes, site)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    /// Reads a tag, or `None` when the input ends cleanly before it.
    fn read_tag_bytes(&mut self) -> Result<Option<[u8; 4]>, WalkError> {
        let at_end = self.input.fill_buf().map_err(WalkError::Io)?.is_empty();
        if at_end {
            return Ok(None);
        }
        let mut bytes = [0u8; 4];
        self.read_exact(&mut bytes, Site::Tag)?;
        Ok(Some(bytes))
    }

    fn read_exact(&mut self, buf: &mut [u8], site: Site) -> Result<(), WalkError> {
        match self.input.read_exact(buf) {
            Ok(()) => {
                self.position += buf.len() as u64;
                Ok(())
            }
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Err(WalkError::Truncated {
                what: site.describe(),
                offset: self.position,
            }),
            Err(err) => Err(WalkError::Io(err)),
        }
    }

    /// Keeps header bytes, within the budget (nothing when not keeping).
    fn keep(&mut self, bytes: &[u8]) -> Result<(), WalkError> {
        if self.keep_up_to.is_none() {
            return Ok(());
        }
        self.reserve(bytes.len() as u64)?;
        self.walked.kept.extend_from_slice(bytes);
        Ok(())
    }

    /// Keeps (within the budget) or skips a value of `length` bytes.
    fn value(&mut self, length: u64, kept: bool, site: Site) -> Result<(), WalkError> {
        let kept = kept && self.keep_up_to.is_some();
        if kept {
            self.reserve(length)?;
        }
        let start = self.position;
        let mut left = length;
        while left > 0 {
            let chunk = self.input.fill_buf().map_err(WalkError::Io)?;
            if chunk.is_empty() {
                let what = match site {
                    Site::Value(..) => format!("{} ({length} bytes declared)", site.describe()),
                    _ => site.describe(),
                };
                return Err(WalkError::Truncated {
                    what,
                    offset: start,
                });
            }
            let n = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if kept {
                self.walked.kept.extend_from_slice(&chunk[..n]);
            }
            self.input.consume(n);
            left -= n as u64;
            self.position += n as u64;
        }
        Ok(())
    }

    fn skip(&mut self, length: u64, site: Site) -> Result<(), WalkError> {
        self.value(length, false, site)
    }

    fn reserve(&self, length: u64) -> Result<(), WalkError> {
        let Some(limit) = self.keep_up_to else {
            return Ok(());
        };
        if self.walked.kept.len() as u64 + length > limit {
            return Err(WalkError::KeptTooLarge { limit });
        }
        Ok(())
    }

    fn malformed(&self, reason: impl Into<String>, offset: u64) -> WalkError {
        WalkError::Malformed {
            reason: reason.into(),
            offset,
        }
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
