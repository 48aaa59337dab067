//! IPTC-IIM records, and the Photoshop image resource blocks that carry them in JPEG APP13 and
//! TIFF tag 34377.

use super::{Ctx, InspectError, exif, text, xmp};

/// The container name of IPTC items.
pub(super) const CONTAINER: &str = "IPTC";

/// Photoshop image resource ids read here.
const RESOURCE_IPTC: u16 = 0x0404;
const RESOURCE_EXIF: u16 = 0x0422;
const RESOURCE_EXIF_2: u16 = 0x0423;
const RESOURCE_XMP: u16 = 0x0424;

/// Walks Photoshop image resource blocks (`8BIM` id name size data) and reads the IPTC, EXIF
/// and XMP resources.
pub(super) fn collect_photoshop(ctx: &mut Ctx<'_>, data: &[u8]) -> Result<(), InspectError> {
    let mut pos = 0usize;
    while data.len().saturating_sub(pos) >= 12 {
        let signature = &data[pos..pos + 4];
        if !matches!(signature, b"8BIM" | b"MeSa" | b"PHUT" | b"AgHg" | b"DCSR") {
            break;
        }
        let id = u16::from_be_bytes([data[pos + 4], data[pos + 5]]);
        // Pascal string name, padded so that length byte plus name is even.
        let name_len = usize::from(data[pos + 6]);
        let name_total = (1 + name_len + 1) & !1;
        let size_at = pos + 6 + name_total;
        let Some(size_bytes) = data.get(size_at..size_at + 4) else {
            break;
        };
        let size = u32::from_be_bytes([size_bytes[0], size_bytes[1], size_bytes[2], size_bytes[3]])
            as usize;
        let value_start = size_at + 4;
        let Some(value) = value_start
            .checked_add(size)
            .and_then(|end| data.get(value_start..end))
        else {
            return Err(ctx.malformed(format!(
                "Photoshop resource 0x{id:04X} runs past its segment"
            )));
        };
        match id {
            RESOURCE_IPTC => collect_iim(ctx, value)?,
            RESOURCE_EXIF | RESOURCE_EXIF_2 => {
                exif::collect(ctx, value.to_vec(), exif::Scope::All)?
            }
            RESOURCE_XMP => xmp::collect(ctx, value)?,
            _ => {}
        }
        pos = value_start + ((size + 1) & !1);
    }
    Ok(())
}

/// Reads IPTC-IIM datasets: `0x1C record dataset length value`.
pub(super) fn collect_iim(ctx: &mut Ctx<'_>, data: &[u8]) -> Result<(), InspectError> {
    let mut pos = 0usize;
    while data.len().saturating_sub(pos) >= 5 && data[pos] == 0x1C {
        let record = data[pos + 1];
        let dataset = data[pos + 2];
        let short_len = u16::from_be_bytes([data[pos + 3], data[pos + 4]]);
        pos += 5;
        let len = if short_len & 0x8000 == 0 {
            usize::from(short_len)
        } else {
            // Extended dataset: the low bits give how many bytes hold the length.
            let n_len_bytes = usize::from(short_len & 0x7FFF);
            if n_len_bytes > 8 || data.len() - pos < n_len_bytes {
                return Err(ctx.malformed("IPTC dataset with an invalid extended length"));
            }
            let len = data[pos..pos + n_len_bytes]
                .iter()
                .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte));
            pos += n_len_bytes;
            usize::try_from(len).unwrap_or(usize::MAX)
        };
        let Some(value) = pos.checked_add(len).and_then(|end| data.get(pos..end)) else {
            return Err(ctx.malformed(format!(
                "IPTC dataset {record}:{dataset:02} runs past its block"
            )));
        };
        pos += len;
        let key = match dataset_name(record, dataset) {
            Some(name) => format!("{record}:{dataset:02} {name}"),
            None => format!("{record}:{dataset:02}"),
        };
        let value = if (record, dataset) == (2, 0) && value.len() == 2 {
            u16::from_be_bytes([value[0], value[1]]).to_string()
        } else {
            text::utf8_or_latin1(value)
        };
        ctx.push(CONTAINER, key, value)?;
    }
    Ok(())
}

/// IIM dataset names (IPTC-NAA Information Interchange Model 4.2, records 1 and 2).
fn dataset_name(record: u8, dataset: u8) -> Option<&'static str> {
    let name = match (record, dataset) {
        (1, 0) => "Envelope Record Version",
        (1, 5) => "Destination",
        (1, 20) => "File Format",
        (1, 22) => "File Format Version",
        (1, 30) => "Service Identifier",
        (1, 40) => "Envelope Number",
        (1, 50) => "Product ID",
        (1, 60) => "Envelope Priority",
        (1, 70) => "Date Sent",
        (1, 80) => "Time Sent",
        (1, 90) => "Coded Character Set",
        (1, 100) => "UNO",
        (2, 0) => "Record Version",
        (2, 3) => "Object Type Reference",
        (2, 4) => "Object Attribute Reference",
        (2, 5) => "Object Name",
        (2, 7) => "Edit Status",
        (2, 10) => "Urgency",
        (2, 12) => "Subject Reference",
        (2, 15) => "Category",
        (2, 20) => "Supplemental Category",
        (2, 22) => "Fixture Identifier",
        (2, 25) => "Keywords",
        (2, 26) => "Content Location Code",
        (2, 27) => "Content Location Name",
        (2, 30) => "Release Date",
        (2, 35) => "Release Time",
        (2, 37) => "Expiration Date",
        (2, 38) => "Expiration Time",
        (2, 40) => "Special Instructions",
        (2, 42) => "Action Advised",
        (2, 45) => "Reference Service",
        (2, 47) => "Reference Date",
        (2, 50) => "Reference Number",
        (2, 55) => "Date Created",
        (2, 60) => "Time Created",
        (2, 62) => "Digital Creation Date",
        (2, 63) => "Digital Creation Time",
        (2, 65) => "Originating Program",
        (2, 70) => "Program Version",
        (2, 75) => "Object Cycle",
        (2, 80) => "By-line",
        (2, 85) => "By-line Title",
        (2, 90) => "City",
        (2, 92) => "Sub-location",
        (2, 95) => "Province/State",
        (2, 100) => "Country Code",
        (2, 101) => "Country Name",
        (2, 103) => "Original Transmission Reference",
        (2, 105) => "Headline",
        (2, 110) => "Credit",
        (2, 115) => "Source",
        (2, 116) => "Copyright Notice",
        (2, 118) => "Contact",
        (2, 120) => "Caption/Abstract",
        (2, 121) => "Local Caption",
        (2, 122) => "Writer/Editor",
        (2, 130) => "Image Type",
        (2, 131) => "Image Orientation",
        (2, 135) => "Language Identifier",
        _ => return None,
    };
    Some(name)
}
