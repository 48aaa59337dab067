//! Validation and normalization of entry paths.
//!
//! A bundle path is relative, `/`-separated, valid UTF-8, and has no `..`, no empty or `.`
//! components, no backslashes and no control characters.
//! Zip entry names and directory-bundle file names both go through [`normalize`].

use std::collections::HashMap;

use crate::error::BundleError;

/// Checks a raw entry name and returns its normal form (empty and `.` components dropped).
pub(crate) fn normalize(raw: &str) -> Result<String, BundleError> {
    let entry = || raw.to_owned();
    if raw.is_empty() {
        return Err(BundleError::InvalidName { entry: entry() });
    }
    if raw.chars().any(char::is_control) {
        return Err(BundleError::ControlCharacter { entry: entry() });
    }
    if is_absolute(raw) {
        return Err(BundleError::AbsolutePath { entry: entry() });
    }
    if raw.split(['/', '\\']).any(|component| component == "..") {
        return Err(BundleError::PathTraversal { entry: entry() });
    }
    if raw.contains('\\') {
        return Err(BundleError::Backslash { entry: entry() });
    }
    let components: Vec<&str> = raw
        .split('/')
        .filter(|component| !component.is_empty() && *component != ".")
        .collect();
    if components.is_empty() {
        return Err(BundleError::InvalidName { entry: entry() });
    }
    Ok(components.join("/"))
}

/// Whether `raw` is rooted: `/x`, `\x`, or a drive-letter path such as `C:\x`, `C:/x` or `C:x`.
fn is_absolute(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let rooted = matches!(bytes.first(), Some(b'/' | b'\\'));
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    rooted || drive
}

/// Rejects two paths that are equal or differ only in letter case.
///
/// Letter case matters because a bundle unpacked or viewed on a case-insensitive file system
/// (macOS, Windows) would silently merge such entries.
pub(crate) fn check_duplicates<'a>(
    paths: impl IntoIterator<Item = &'a str>,
) -> Result<(), BundleError> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for path in paths {
        if let Some(other) = seen.insert(path.to_lowercase(), path) {
            return Err(BundleError::DuplicateEntry {
                entry: path.to_owned(),
                other: other.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        assert_eq!(normalize("a/b.png").unwrap(), "a/b.png");
        assert_eq!(normalize("./a//b.png").unwrap(), "a/b.png");
        assert_eq!(normalize("a/./b/").unwrap(), "a/b");
        assert_eq!(normalize("ab:c").unwrap(), "ab:c");
    }

    #[test]
    fn rejections() {
        assert!(matches!(
            normalize(""),
            Err(BundleError::InvalidName { .. })
        ));
        assert!(matches!(
            normalize("./"),
            Err(BundleError::InvalidName { .. })
        ));
        assert!(matches!(
            normalize("a\0b"),
            Err(BundleError::ControlCharacter { .. })
        ));
        assert!(matches!(
            normalize("a\u{7f}"),
            Err(BundleError::ControlCharacter { .. })
        ));
        assert!(matches!(
            normalize("/x"),
            Err(BundleError::AbsolutePath { .. })
        ));
        assert!(matches!(
            normalize("C:\\x"),
            Err(BundleError::AbsolutePath { .. })
        ));
        assert!(matches!(
            normalize("c:/x"),
            Err(BundleError::AbsolutePath { .. })
        ));
        assert!(matches!(
            normalize("a/../b"),
            Err(BundleError::PathTraversal { .. })
        ));
        assert!(matches!(
            normalize("a\\..\\b"),
            Err(BundleError::PathTraversal { .. })
        ));
        assert!(matches!(
            normalize("a\\b"),
            Err(BundleError::Backslash { .. })
        ));
    }
}
