//! Drawing primitives on a frame, clipped to a rectangle: fill, line, circle, text.

use font8x8::UnicodeFonts;

use super::{Frame, Rect};

/// Stroke width in device pixels for a device pixel ratio.
pub fn stroke(dpr: f32) -> f32 {
    dpr.round().max(1.0)
}

fn put(frame: &mut Frame, clip: Rect, x: i64, y: i64, colour: [u8; 3]) {
    if x < clip.x as i64
        || y < clip.y as i64
        || x >= (clip.x + clip.w) as i64
        || y >= (clip.y + clip.h) as i64
    {
        return;
    }
    if x < 0 || y < 0 || x >= i64::from(frame.width) || y >= i64::from(frame.height) {
        return;
    }
    let i = (y as usize * frame.width as usize + x as usize) * 3;
    frame.rgb[i..i + 3].copy_from_slice(&colour);
}

/// Fills a rectangle.
pub fn fill(frame: &mut Frame, rect: Rect, colour: [u8; 3]) {
    for y in rect.y as i64..(rect.y + rect.h) as i64 {
        for x in rect.x as i64..(rect.x + rect.w) as i64 {
            put(frame, rect, x, y, colour);
        }
    }
}

/// A line of the given width.
#[allow(clippy::too_many_arguments)]
pub fn line(
    frame: &mut Frame,
    clip: Rect,
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
    colour: [u8; 3],
    width: f32,
) {
    let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as i64;
    let half = (width / 2.0).floor() as i64;
    for step in 0..=steps {
        let t = step as f32 / steps as f32;
        let x = (x0 + (x1 - x0) * t).round() as i64;
        let y = (y0 + (y1 - y0) * t).round() as i64;
        for oy in -half..=half.max(0) {
            for ox in -half..=half.max(0) {
                put(frame, clip, x + ox, y + oy, colour);
            }
        }
    }
}

/// A circle outline.
pub fn circle(
    frame: &mut Frame,
    clip: Rect,
    cx: f32,
    cy: f32,
    radius: f32,
    colour: [u8; 3],
    width: f32,
) {
    let steps = (radius * std::f32::consts::TAU).ceil().max(8.0) as i64;
    let half = (width / 2.0).floor() as i64;
    for step in 0..steps {
        let angle = step as f32 / steps as f32 * std::f32::consts::TAU;
        let x = (cx + radius * angle.cos()).round() as i64;
        let y = (cy + radius * angle.sin()).round() as i64;
        for oy in -half..=half.max(0) {
            for ox in -half..=half.max(0) {
                put(frame, clip, x + ox, y + oy, colour);
            }
        }
    }
}

/// Text in an 8×8 bitmap font scaled by `scale`, starting at (x, y); unknown characters are
/// drawn as `?`.
pub fn text(frame: &mut Frame, x: u32, y: u32, text: &str, scale: u32, colour: [u8; 3]) {
    let clip = Rect {
        x: 0.0,
        y: 0.0,
        w: frame.width as f32,
        h: frame.height as f32,
    };
    text_in(frame, clip, x, y, text, scale, colour);
}

/// [`text`] clipped to `clip`.
#[allow(clippy::too_many_arguments)]
pub fn text_in(
    frame: &mut Frame,
    clip: Rect,
    x: u32,
    y: u32,
    text: &str,
    scale: u32,
    colour: [u8; 3],
) {
    let scale = scale.max(1);
    for (n, ch) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS
            .get(ch)
            .or_else(|| font8x8::LATIN_FONTS.get(ch))
            .or_else(|| font8x8::BASIC_FONTS.get(if ch == '·' { '-' } else { '?' }))
            .unwrap_or([0; 8]);
        let left = i64::from(x) + (n as i64) * 8 * i64::from(scale);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    for sy in 0..scale {
                        for sx in 0..scale {
                            put(
                                frame,
                                clip,
                                left + i64::from(col * scale + sx),
                                i64::from(y) + (row as i64) * i64::from(scale) + i64::from(sy),
                                colour,
                            );
                        }
                    }
                }
            }
        }
    }
}
