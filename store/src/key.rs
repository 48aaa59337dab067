//! Object key validation, shared by every backend.
//!
//! Keys are deliberately narrow: `/`-separated segments of `[A-Za-z0-9._-]`.
//! This is what keeps the local backend free of path traversal, and it also keeps keys
//! portable between file systems and S3 implementations.

use crate::StoreError;

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// Checks that `key` is an acceptable object key.
///
/// A key is non-empty, at most [`MAX_KEY_LEN`] bytes, does not start with `/`, and consists of
/// segments separated by single `/` characters; each segment is non-empty, is neither `.` nor `..`,
/// and contains only ASCII letters, digits, `.`, `_` and `-`.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::invalid_key(key, "the key is empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(StoreError::invalid_key(
            key,
            format!(
                "the key is {} bytes long; the limit is {MAX_KEY_LEN}",
                key.len()
            ),
        ));
    }
    if key.starts_with('/') {
        return Err(StoreError::invalid_key(
            key,
            "the key starts with `/`; keys are relative",
        ));
    }
    if let Some((index, character)) = key.char_indices().find(|&(_, c)| !is_key_char(c)) {
        return Err(StoreError::invalid_key(
            key,
            format!(
                "character {character:?} at byte {index} is not allowed (use A-Z, a-z, 0-9, `.`, `_`, `-` and `/` between segments)"
            ),
        ));
    }
    for segment in key.split('/') {
        match segment {
            "" => {
                return Err(StoreError::invalid_key(
                    key,
                    "the key has an empty segment (`//` or a trailing `/`)",
                ));
            }
            "." | ".." => {
                return Err(StoreError::invalid_key(
                    key,
                    format!("the key has a `{segment}` segment"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_key_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '.' | '_' | '-' | '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_rejected(key: &str, reason_part: &str) {
        match validate_key(key) {
            Err(StoreError::InvalidKey {
                key: reported,
                reason,
            }) => {
                assert_eq!(reported, key);
                assert!(
                    reason.contains(reason_part),
                    "{key:?}: reason {reason:?} lacks {reason_part:?}"
                );
            }
            other => panic!("{key:?} was not rejected as invalid: {other:?}"),
        }
    }

    #[test]
    fn accepts_ordinary_keys() {
        for key in [
            "a",
            "bundles/EYE-2026/S000123_V1.age",
            "a/b/c",
            ".hidden",
            "x..y",
            "..a",
            "a/.b",
        ] {
            assert!(validate_key(key).is_ok(), "{key:?} rejected");
        }
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
    }

    #[test]
    fn rejects_bad_keys_with_a_specific_reason() {
        check_rejected("", "empty");
        check_rejected(&"k".repeat(MAX_KEY_LEN + 1), "513 bytes");
        check_rejected("/abs", "starts with `/`");
        check_rejected("a//b", "empty segment");
        check_rejected("a/", "empty segment");
        check_rejected("../x", "`..` segment");
        check_rejected("a/../b", "`..` segment");
        check_rejected("a/./b", "`.` segment");
        check_rejected(".", "`.` segment");
        check_rejected("a b", "' ' at byte 1");
        check_rejected("a\\b", "'\\\\'");
        check_rejected("é", "'é' at byte 0");
        check_rejected("a\0b", "'\\0'");
    }
}
