//! Hand-made image bytes for bad-input tests.

/// A PNG signature and an IHDR chunk (valid CRC) claiming a `side`×`side` 8-bit greyscale
/// image, and nothing else: the header of an image bomb, for checks that must refuse it from
/// the header alone.
pub fn png_header_claiming(side: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
    png
}
