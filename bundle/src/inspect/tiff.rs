//! TIFF and BigTIFF: a walk over every image file directory.
//!
//! Directories and values may sit anywhere in the file, so the file is held in memory, up to
//! [`ImageLimits::max_buffered_bytes`](super::ImageLimits::max_buffered_bytes).
//! Every page of the main chain and every SubIFD is visited; ASCII tags, the Windows `XP*` tags,
//! XMP (700), IPTC (33723) and Photoshop resources (34377) are reported with container `"TIFF"`,
//! `"XMP"` and `"IPTC"`, and the Exif and GPS sub-directories through [`super::exif`].

use std::collections::HashSet;
use std::io::{BufRead, Read};

use super::{Ctx, Geometry, InspectError, exif, iptc, text, xmp};

/// The container name of TIFF tag items.
const CONTAINER: &str = "TIFF";
/// Most SubIFDs (thumbnails, reduced resolutions) visited.
const MAX_SUB_IFDS: usize = 256;

const TAG_IMAGE_WIDTH: u16 = 256;
const TAG_IMAGE_LENGTH: u16 = 257;
const TAG_BITS_PER_SAMPLE: u16 = 258;
const TAG_SAMPLES_PER_PIXEL: u16 = 277;
const TAG_SUB_IFDS: u16 = 330;
const TAG_XMP: u16 = 700;
const TAG_IPTC: u16 = 33723;
const TAG_PHOTOSHOP: u16 = 34377;
const TAG_EXIF_IFD: u16 = 34665;
const TAG_GPS_IFD: u16 = 34853;

const TYPE_BYTE: u16 = 1;
const TYPE_ASCII: u16 = 2;

/// Reads a TIFF's geometry and metadata.
pub(super) fn inspect(
    input: &mut dyn BufRead,
    ctx: &mut Ctx<'_>,
) -> Result<Geometry, InspectError> {
    let limit = ctx.limits.max_buffered_bytes;
    let mut data = Vec::new();
    (&mut *input)
        .take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|err| ctx.io(err))?;
    if data.len() as u64 > limit {
        return Err(InspectError::TooLargeToInspect {
            path: ctx.path.to_owned(),
            format: ctx.format,
            what: "file",
            limit,
        });
    }
    let layout = Layout::from_header(&data).ok_or_else(|| ctx.malformed("invalid header"))?;
    let first_ifd = layout
        .offset(&data, if layout.big { 8 } else { 4 })
        .ok_or_else(|| ctx.malformed("invalid header"))?;

    let mut visited = HashSet::new();
    let mut geometry: Option<Geometry> = None;
    let mut n_pages: u64 = 0;
    let mut sub_ifds: Vec<u64> = Vec::new();
    let mut has_exif = false;
    let mut offset = first_ifd;
    while offset != 0 {
        if !visited.insert(offset) {
            return Err(ctx.malformed(format!("directory at offset {offset} is visited twice")));
        }
        n_pages += 1;
        ctx.check_frames(n_pages)?;
        let (entries, next) = layout
            .read_ifd(&data, offset)
            .map_err(|reason| ctx.malformed(reason))?;
        let page = page_geometry(ctx, &layout, &data, &entries)?;
        geometry.get_or_insert(page);
        for entry in &entries {
            match entry.tag {
                TAG_SUB_IFDS => {
                    let n_values = usize::try_from(entry.count)
                        .unwrap_or(usize::MAX)
                        .min(MAX_SUB_IFDS);
                    for index in 0..n_values {
                        if let Some(sub_ifd) = layout.uint(&data, entry, index)
                            && sub_ifds.len() < MAX_SUB_IFDS
                        {
                            sub_ifds.push(sub_ifd);
                        }
                    }
                }
                TAG_EXIF_IFD | TAG_GPS_IFD => has_exif = true,
                _ => {}
            }
            collect_entry(ctx, &data, entry)?;
        }
        offset = next;
    }
    let mut sub_index = 0;
    while sub_index < sub_ifds.len() {
        let sub_offset = sub_ifds[sub_index];
        sub_index += 1;
        if !visited.insert(sub_offset) {
            continue;
        }
        let (entries, _next) = layout
            .read_ifd(&data, sub_offset)
            .map_err(|reason| ctx.malformed(reason))?;
        for entry in &entries {
            if entry.tag == TAG_SUB_IFDS {
                for index in 0..usize::try_from(entry.count)
                    .unwrap_or(usize::MAX)
                    .min(MAX_SUB_IFDS)
                {
                    if let Some(nested) = layout.uint(&data, entry, index)
                        && sub_ifds.len() < MAX_SUB_IFDS
                    {
                        sub_ifds.push(nested);
                    }
                }
            }
            collect_entry(ctx, &data, entry)?;
        }
    }
    if has_exif && !layout.big {
        exif::collect(ctx, data, exif::Scope::SubIfdsOnly)?;
    }
    let mut geometry = geometry.ok_or_else(|| ctx.malformed("no image directory"))?;
    geometry.frames = u32::try_from(n_pages).unwrap_or(u32::MAX);
    Ok(geometry)
}

fn page_geometry(
    ctx: &Ctx<'_>,
    layout: &Layout,
    data: &[u8],
    entries: &[Entry],
) -> Result<Geometry, InspectError> {
    let find = |tag: u16| entries.iter().find(|entry| entry.tag == tag);
    let value = |tag: u16| find(tag).and_then(|entry| layout.uint(data, entry, 0));
    let (Some(width), Some(height)) = (value(TAG_IMAGE_WIDTH), value(TAG_IMAGE_LENGTH)) else {
        return Err(ctx.malformed("directory without ImageWidth or ImageLength"));
    };
    ctx.check_dimensions(width, height)?;
    let bits = value(TAG_BITS_PER_SAMPLE).unwrap_or(1);
    let samples = value(TAG_SAMPLES_PER_PIXEL).unwrap_or(1);
    let (Ok(bits_per_sample), Ok(channels)) = (u16::try_from(bits), u8::try_from(samples)) else {
        return Err(ctx.malformed(format!(
            "{bits} bits per sample, {samples} samples per pixel"
        )));
    };
    Ok(Geometry {
        width: width as u32,
        height: height as u32,
        frames: 1,
        bits_per_sample,
        channels,
    })
}

/// Reports one directory entry if it carries metadata.
fn collect_entry(ctx: &mut Ctx<'_>, data: &[u8], entry: &Entry) -> Result<(), InspectError> {
    let is_windows_tag = entry.kind == TYPE_BYTE && exif::windows_tag_name(entry.tag).is_some();
    let is_metadata = entry.kind == TYPE_ASCII
        || is_windows_tag
        || matches!(entry.tag, TAG_XMP | TAG_IPTC | TAG_PHOTOSHOP);
    if !is_metadata {
        return Ok(());
    }
    let Some(bytes) = entry.bytes(data) else {
        return Err(ctx.malformed(format!("tag {} has its value outside the file", entry.tag)));
    };
    match entry.tag {
        TAG_XMP => xmp::collect(ctx, bytes),
        TAG_IPTC => iptc::collect_iim(ctx, bytes),
        TAG_PHOTOSHOP => iptc::collect_photoshop(ctx, bytes),
        tag if is_windows_tag => {
            let name = exif::windows_tag_name(tag).unwrap_or("XP");
            ctx.push(CONTAINER, name, text::utf16le(bytes))
        }
        tag => {
            let parts: Vec<String> = bytes
                .split(|&byte| byte == 0)
                .filter(|part| !part.is_empty())
                .map(text::utf8_or_latin1)
                .collect();
            ctx.push(CONTAINER, tag_name(tag), parts.join("\\"))
        }
    }
}

/// The name of a baseline or extension TIFF tag.
fn tag_name(tag: u16) -> String {
    let name = match tag {
        269 => "DocumentName",
        270 => "ImageDescription",
        271 => "Make",
        272 => "Model",
        285 => "PageName",
        305 => "Software",
        306 => "DateTime",
        315 => "Artist",
        316 => "HostComputer",
        333 => "InkNames",
        337 => "TargetPrinter",
        32781 => "ImageID",
        33432 => "Copyright",
        _ => {
            let known = ::exif::Tag(::exif::Context::Tiff, tag);
            if known.description().is_some() {
                return known.to_string();
            }
            return format!("Tag{tag}");
        }
    };
    name.to_owned()
}

/// Byte order and offset size of the file.
struct Layout {
    little_endian: bool,
    big: bool,
}

/// One directory entry, with its value located.
struct Entry {
    tag: u16,
    kind: u16,
    count: u64,
    /// Where the value bytes are, when they lie within the file and the type is known.
    value: Option<(usize, usize)>,
}

impl Entry {
    fn bytes<'d>(&self, data: &'d [u8]) -> Option<&'d [u8]> {
        let (start, len) = self.value?;
        data.get(start..start + len)
    }
}

impl Layout {
    fn from_header(data: &[u8]) -> Option<Layout> {
        let header = data.get(..4)?;
        let little_endian = match &header[..2] {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        let layout = Layout {
            little_endian,
            big: false,
        };
        match layout.u16(data, 2)? {
            42 => Some(layout),
            43 if layout.u16(data, 4)? == 8 => Some(Layout {
                little_endian,
                big: true,
            }),
            _ => None,
        }
    }

    fn u16(&self, data: &[u8], at: usize) -> Option<u16> {
        let bytes: [u8; 2] = data.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.little_endian {
            u16::from_le_bytes(bytes)
        } else {
            u16::from_be_bytes(bytes)
        })
    }

    fn u32(&self, data: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little_endian {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        })
    }

    fn u64(&self, data: &[u8], at: usize) -> Option<u64> {
        let bytes: [u8; 8] = data.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.little_endian {
            u64::from_le_bytes(bytes)
        } else {
            u64::from_be_bytes(bytes)
        })
    }

    /// An offset field: 4 bytes in TIFF, 8 in BigTIFF.
    fn offset(&self, data: &[u8], at: usize) -> Option<u64> {
        if self.big {
            self.u64(data, at)
        } else {
            self.u32(data, at).map(u64::from)
        }
    }

    /// Reads the directory at `offset`: its entries and the next directory's offset.
    fn read_ifd(&self, data: &[u8], offset: u64) -> Result<(Vec<Entry>, u64), String> {
        let outside = || format!("directory at offset {offset} lies outside the file");
        let start = usize::try_from(offset).map_err(|_| outside())?;
        let (count, count_len, entry_len, inline_len) = if self.big {
            (
                self.u64(data, start).ok_or_else(outside)?,
                8usize,
                20usize,
                8usize,
            )
        } else {
            (
                u64::from(self.u16(data, start).ok_or_else(outside)?),
                2,
                12,
                4,
            )
        };
        let entries_len = usize::try_from(count)
            .ok()
            .and_then(|count| count.checked_mul(entry_len))
            .filter(|&len| len <= data.len())
            .ok_or_else(|| format!("directory at offset {offset} declares {count} entries"))?;
        let first_entry = start + count_len;
        let next_at = first_entry.checked_add(entries_len).ok_or_else(outside)?;
        let next = self.offset(data, next_at).ok_or_else(outside)?;
        let mut entries = Vec::with_capacity(count as usize);
        for index in 0..count as usize {
            let at = first_entry + index * entry_len;
            let tag = self.u16(data, at).ok_or_else(outside)?;
            let kind = self.u16(data, at + 2).ok_or_else(outside)?;
            let count = if self.big {
                self.u64(data, at + 4).ok_or_else(outside)?
            } else {
                u64::from(self.u32(data, at + 4).ok_or_else(outside)?)
            };
            let value_field = at + if self.big { 12 } else { 8 };
            let value = type_size(kind)
                .and_then(|size| count.checked_mul(size))
                .and_then(|len| usize::try_from(len).ok())
                .and_then(|len| {
                    let start = if len <= inline_len {
                        value_field
                    } else {
                        usize::try_from(self.offset(data, value_field)?).ok()?
                    };
                    (start.checked_add(len)? <= data.len()).then_some((start, len))
                });
            entries.push(Entry {
                tag,
                kind,
                count,
                value,
            });
        }
        Ok((entries, next))
    }

    /// The `index`-th value of an unsigned integer entry.
    fn uint(&self, data: &[u8], entry: &Entry, index: usize) -> Option<u64> {
        let (start, len) = entry.value?;
        let size = type_size(entry.kind)? as usize;
        let at = start.checked_add(index.checked_mul(size)?)?;
        if at + size > start + len {
            return None;
        }
        match entry.kind {
            1 => data.get(at).map(|&byte| u64::from(byte)),
            3 => self.u16(data, at).map(u64::from),
            4 | 13 => self.u32(data, at).map(u64::from),
            16 | 18 => self.u64(data, at),
            _ => None,
        }
    }
}

/// Bytes per value of a TIFF field type, or `None` for unknown types.
fn type_size(kind: u16) -> Option<u64> {
    match kind {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 | 16 | 17 | 18 => Some(8),
        _ => None,
    }
}
