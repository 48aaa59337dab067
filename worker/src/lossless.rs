//! The lossless settle's still image: the exact rendered frame as lossless WebP (libwebp).
//!
//! Lossless WebP decorrelates the colour channels (subtract-green), predicts each pixel from
//! its neighbours per tile and entropy-codes the residuals with back-references. On rendered
//! frames of the demo cases it was 2–2.5× smaller than the fast PNG sent before (measured with
//! the earlier blue low-bit mark, which PNG paid for in full on every pixel and WebP coded as a
//! small blue−green residual). Browsers decode it natively and
//! exactly; the browser's re-hash of the drawn pixels still decides the LOSSLESS badge.

use crate::render::Frame;

/// MIME type of the encoded frames (the `format` of the `lossless` announcement).
pub const FORMAT: &str = "image/webp";

/// Why a frame could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum LosslessError {
    /// The frame's size does not match its pixels, or WebP cannot hold it (16383 px a side).
    #[error("cannot encode a {width}×{height} frame of {bytes} bytes as lossless WebP")]
    Size {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Bytes of RGB.
        bytes: usize,
    },
    /// libwebp refused the picture.
    #[error("lossless WebP encoding failed: {0}")]
    Encode(String),
}

/// Largest width or height of a WebP image.
const MAX_SIDE: u32 = 16383;

/// Encodes `frame` as lossless WebP at libwebp's fastest lossless preset (level 0): about
/// 40–60 ms for a 1518×832 frame on this project's 2-core machine.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, LosslessError> {
    let size_error = || LosslessError::Size {
        width: frame.width,
        height: frame.height,
        bytes: frame.rgb.len(),
    };
    let expected = (frame.width as usize)
        .checked_mul(frame.height as usize)
        .and_then(|pixels| pixels.checked_mul(3))
        .ok_or_else(size_error)?;
    if frame.width == 0
        || frame.height == 0
        || frame.width > MAX_SIDE
        || frame.height > MAX_SIDE
        || frame.rgb.len() != expected
    {
        return Err(size_error());
    }
    let mut config = webp::WebPConfig::new()
        .map_err(|()| LosslessError::Encode("libwebp version mismatch".into()))?;
    config.lossless = 1;
    // Level 0 of libwebp's lossless presets (`cwebp -lossless -z 0`): method 0, quality 0.
    // Higher levels save 2–5 % more for 3–5× the time.
    config.method = 0;
    config.quality = 0.0;
    // Keep the exact RGB of every pixel (there is no alpha; nothing is "invisible").
    config.exact = 1;
    let encoded = webp::Encoder::from_rgb(&frame.rgb, frame.width, frame.height)
        .encode_advanced(&config)
        .map_err(|err| LosslessError::Encode(format!("{err:?}")))?;
    Ok(encoded.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u32, height: u32, mut pixel: impl FnMut(u32, u32) -> [u8; 3]) -> Frame {
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..height {
            for x in 0..width {
                rgb.extend_from_slice(&pixel(x, y));
            }
        }
        Frame { width, height, rgb }
    }

    fn decode(data: &[u8]) -> Frame {
        let image = webp::Decoder::new(data).decode().expect("a WebP image");
        assert!(!image.is_alpha(), "an opaque frame has no alpha");
        Frame {
            width: image.width(),
            height: image.height(),
            rgb: image.to_vec(),
        }
    }

    #[test]
    fn frames_come_back_bit_exact() {
        // A grey ramp with the invisible mark's kind of low-bit blue pattern, a coloured
        // overlay line and pseudo-random noise (OCT speckle).
        let mut seed = 0x2545_f491_u32;
        let noisy = frame(301, 157, |x, y| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            if y == 80 {
                return [60, 220, 90];
            }
            let grey = ((x + y) as u8).wrapping_add((seed % 23) as u8);
            [grey, grey, (grey & !1) | ((x ^ y) & 1) as u8]
        });
        let encoded = encode(&noisy).unwrap();
        assert_eq!(&encoded[..4], b"RIFF");
        assert_eq!(&encoded[8..12], b"WEBP");
        assert_eq!(decode(&encoded), noisy);
    }

    #[test]
    fn a_grey_frame_with_a_low_bit_mark_is_much_smaller_than_its_pixels() {
        let grey = frame(640, 360, |x, y| {
            let v = ((x / 3 + y / 2) % 256) as u8;
            [v, v, (v & !1) | (((x % 16) + (y % 12)) & 1) as u8]
        });
        let encoded = encode(&grey).unwrap();
        assert!(
            encoded.len() * 20 < grey.rgb.len(),
            "{} bytes for {} bytes of RGB",
            encoded.len(),
            grey.rgb.len()
        );
        assert_eq!(decode(&encoded), grey);
    }

    #[test]
    fn a_frame_whose_pixels_do_not_match_its_size_is_refused() {
        let mut bad = frame(10, 10, |_, _| [1, 2, 3]);
        bad.rgb.pop();
        assert!(matches!(encode(&bad), Err(LosslessError::Size { .. })));
        let empty = Frame {
            width: 0,
            height: 0,
            rgb: Vec::new(),
        };
        assert!(matches!(encode(&empty), Err(LosslessError::Size { .. })));
        let wide = Frame {
            width: 20_000,
            height: 1,
            rgb: vec![0; 60_000],
        };
        assert!(matches!(encode(&wide), Err(LosslessError::Size { .. })));
    }
}
