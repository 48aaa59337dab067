//! DICOM encoding facts shared by the ingest gate's inspector and the worker's scanner.

/// Whether an explicit-VR data element with this two-letter VR has the long header form
/// (2 reserved bytes and a 32-bit length) rather than a 16-bit length (PS3.5 §7.1.2).
pub fn has_long_length(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_short_forms() {
        for vr in [*b"OB", *b"OW", *b"SQ", *b"UN", *b"UT", *b"UV"] {
            assert!(has_long_length(vr));
        }
        for vr in [*b"PN", *b"LO", *b"US", *b"DA", *b"CS", *b"xx"] {
            assert!(!has_long_length(vr));
        }
    }
}
