//! Recognizing a format from a file's first bytes.

use super::ImageFormat;

/// Bytes needed to recognize every format (DICOM's preamble plus `DICM`).
pub(super) const PREFIX_LEN: usize = 132;

const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const TIFF_MAGICS: [&[u8]; 4] = [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"];

/// The format the bytes start with.
pub(super) fn detect(prefix: &[u8]) -> ImageFormat {
    if prefix.starts_with(JPEG_MAGIC) {
        return ImageFormat::Jpeg;
    }
    if prefix.starts_with(PNG_MAGIC) {
        return ImageFormat::Png;
    }
    if TIFF_MAGICS.iter().any(|magic| prefix.starts_with(magic)) {
        return ImageFormat::Tiff;
    }
    if prefix.len() >= 132 && &prefix[128..132] == b"DICM" {
        return ImageFormat::Dicom;
    }
    if looks_like_json(prefix) {
        return ImageFormat::Json;
    }
    ImageFormat::Other
}

/// What the bytes are, in words, for error messages.
pub(super) fn describe(prefix: &[u8], format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "a JPEG image",
        ImageFormat::Png => "a PNG image",
        ImageFormat::Tiff => "a TIFF image",
        ImageFormat::Dicom => "a DICOM file",
        ImageFormat::Json => "JSON text",
        ImageFormat::Other if prefix.is_empty() => "empty",
        ImageFormat::Other if looks_like_text(prefix) => "text",
        ImageFormat::Other => "binary data of no recognized format",
    }
}

fn looks_like_json(prefix: &[u8]) -> bool {
    let without_bom = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    let first = without_bom.iter().find(|byte| !byte.is_ascii_whitespace());
    matches!(first, Some(b'{' | b'['))
}

fn looks_like_text(prefix: &[u8]) -> bool {
    let valid = match std::str::from_utf8(prefix) {
        Ok(_) => prefix,
        // A multi-byte character may be cut at the end of the prefix.
        Err(err) if err.error_len().is_none() => &prefix[..err.valid_up_to()],
        Err(_) => return false,
    };
    let text = String::from_utf8_lossy(valid);
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(detect(b"\xFF\xD8\xFF\xE0"), ImageFormat::Jpeg);
        assert_eq!(detect(PNG_MAGIC), ImageFormat::Png);
        assert_eq!(detect(b"MM\0*\0\0\0\x08"), ImageFormat::Tiff);
        let mut dicom = vec![0u8; 128];
        dicom.extend_from_slice(b"DICM");
        assert_eq!(detect(&dicom), ImageFormat::Dicom);
        assert_eq!(detect(b"\xEF\xBB\xBF  {\"a\":1}"), ImageFormat::Json);
        assert_eq!(detect(b"hello"), ImageFormat::Other);
        assert_eq!(describe(b"hello\n", ImageFormat::Other), "text");
        assert_eq!(
            describe(&[0, 1, 2], ImageFormat::Other),
            "binary data of no recognized format"
        );
    }
}
