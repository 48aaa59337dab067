//! Turning metadata bytes into text.

/// Cuts `value` to at most `max_chars` characters.
pub(super) fn truncate(value: &str, max_chars: usize) -> String {
    match value.char_indices().nth(max_chars) {
        Some((end, _)) => value[..end].to_owned(),
        None => value.to_owned(),
    }
}

/// Decodes ISO 8859-1 (the encoding of PNG tEXt/zTXt), dropping trailing NULs.
pub(super) fn latin1(bytes: &[u8]) -> String {
    trim_nuls(bytes)
        .iter()
        .map(|&byte| char::from(byte))
        .collect()
}

/// Decodes UTF-8, falling back to ISO 8859-1 when the bytes are not UTF-8.
pub(super) fn utf8_or_latin1(bytes: &[u8]) -> String {
    match std::str::from_utf8(trim_nuls(bytes)) {
        Ok(text) => text.to_owned(),
        Err(_) => latin1(bytes),
    }
}

/// Decodes UTF-16 little endian (the Windows `XP*` tags), dropping trailing NULs.
pub(super) fn utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    let text = String::from_utf16_lossy(&units);
    text.trim_end_matches('\0').to_owned()
}

/// Shows bytes as text when they read as text, otherwise as hex.
///
/// Binary values (DICOM OB/UN, EXIF UNDEFINED) often hold plain text, and the de-identification
/// rules can only judge text.
pub(super) fn bytes_as_text(bytes: &[u8], max_chars: usize) -> String {
    let trimmed = trim_end(bytes);
    if let Ok(text) = std::str::from_utf8(trimmed) {
        let printable = text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'));
        if printable {
            return truncate(text, max_chars);
        }
    }
    let n_bytes = trimmed.len().min(max_chars / 2);
    let mut hex = String::with_capacity(n_bytes * 2);
    for byte in &trimmed[..n_bytes] {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

fn trim_nuls(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |index| index + 1);
    &bytes[..end]
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&byte| byte != 0 && byte != b' ')
        .map_or(0, |index| index + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(latin1(b"caf\xe9\0\0"), "café");
        assert_eq!(utf8_or_latin1("café".as_bytes()), "café");
        assert_eq!(utf16le(b"J\0o\0\0\0"), "Jo");
        assert_eq!(bytes_as_text(b"DOE^JOHN ", 256), "DOE^JOHN");
        assert_eq!(bytes_as_text(&[1, 2, 255], 256), "0102ff");
    }
}
