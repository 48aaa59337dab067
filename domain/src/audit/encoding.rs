//! The byte encoding shared by hashed events and signed checkpoints: `str(s)` and `opt(s)`
//! (length-prefixed text) and hash hex decoding.

use super::error::ChainError;

pub(super) fn decode_hash(hex_text: &str, field: &'static str) -> Result<[u8; 32], ChainError> {
    let lowercase_hex = |b: u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    if hex_text.len() != 64 || !hex_text.bytes().all(lowercase_hex) {
        return Err(ChainError::MalformedHash { field });
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut bytes).map_err(|_| ChainError::MalformedHash { field })?;
    Ok(bytes)
}

pub(super) fn put_str(bytes: &mut Vec<u8>, field: &'static str, s: &str) -> Result<(), ChainError> {
    let len = u32::try_from(s.len()).map_err(|_| ChainError::FieldTooLong {
        field,
        size: s.len(),
        max: u32::MAX as usize,
    })?;
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(s.as_bytes());
    Ok(())
}

pub(super) fn put_opt(
    bytes: &mut Vec<u8>,
    field: &'static str,
    s: Option<&str>,
) -> Result<(), ChainError> {
    match s {
        None => {
            bytes.push(0);
            Ok(())
        }
        Some(s) => {
            bytes.push(1);
            put_str(bytes, field, s)
        }
    }
}
