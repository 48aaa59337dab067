//! Range checks shared by the backends and the blocking reader.

use std::ops::Range;

use crate::StoreError;

/// Checks that `range` is well formed and lies within an object of `size` bytes.
pub(crate) fn check_range(key: &str, range: &Range<u64>, size: u64) -> Result<(), StoreError> {
    let inside = range.start <= range.end && range.end <= size;
    if inside {
        return Ok(());
    }
    Err(StoreError::RangeNotSatisfiable {
        key: key.to_owned(),
        range: range.clone(),
        size,
    })
}
