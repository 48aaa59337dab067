//! Watermarks: a visible strip naming the grader, the session and the time, drawn under the
//! diagnostic area, and an invisible keyed mark naming the viewer session, spread over the
//! whole frame so that a crop, a JPEG, a rescaled copy or a frame grabbed from the video still
//! carries it. [`decode`] recovers it (`readroom watermark decode`); docs/watermark.md explains
//! it for operators and auditors.
//!
//! The invisible mark is spread-spectrum in luminance: the frame is cut into blocks of
//! [`BLOCK`]×[`BLOCK`] pixels from its top-left corner, and each block is lightened or darkened
//! by [`DELTA`] levels, equally on R, G and B (grey stays grey). [`TILE_BLOCKS`]² blocks make a
//! tile, repeated over the frame; of a tile's 256 blocks, [`SYNC_CHIPS`] carry a fixed keyed
//! sync pattern and the others one coded bit each. The payload is the first 8 bytes of the
//! viewer session id plus [`TAG_BITS`] keyed check bits, protected by a rate-1/2 K=7
//! convolutional code. Which block is sync or which bit, and the sign (chip) it is multiplied
//! with, come from the key (SHA-256 of it), so without the key the pattern is
//! indistinguishable from ±2 noise and cannot be written for another session.
//!
//! Detection ([`inspect`]): the luminance is averaged per block through an integral image, each
//! block mean minus the mean of its 8 neighbours (a high-pass that removes most of the image)
//! is clipped (so vessel edges do not dominate) and folded modulo the tile; the sync pattern
//! is correlated at every block offset and cyclic shift for a few scales, and at the best
//! alignment the payload is Viterbi-decoded and accepted only if the sync is strong and the
//! keyed check bits match.

use std::sync::Arc;

use uuid::Uuid;

mod code;
mod key;

pub use key::{KeyError, MIN_KEY_BYTES, WatermarkKey, worker_key};

/// What a frame is marked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// Shown in the visible strip (the username).
    pub grader: String,
    /// The viewer session (visible prefix; its first 8 bytes invisible).
    pub session: Uuid,
    /// Unix minute the session started (visible strip only).
    pub unix_minute: u32,
    /// The server's watermark key.
    pub key: Arc<WatermarkKey>,
}

impl Watermark {
    /// What the frames are marked with, for the record (everything but the key).
    pub fn record(&self) -> readroom_domain::workers::MarkRecord {
        readroom_domain::workers::MarkRecord {
            label: self.grader.clone(),
            session: self.session,
            unix_minute: self.unix_minute,
        }
    }
}

/// Side of a block (one chip) in pixels (8 decoded better than 12 after a 512×512 crop,
/// H.264 and on small frames: more copies of each chip; BENCHMARKS.md).
pub const BLOCK: usize = 8;
/// Blocks per tile side; the tile (`BLOCK × TILE_BLOCKS` = 128 pixels) repeats over the frame.
pub const TILE_BLOCKS: usize = 16;
/// Levels added to or taken from R, G and B of every pixel (the most any value changes).
pub const DELTA: u8 = 2;
/// Payload bits: the first 8 bytes of the viewer session id.
pub const PAYLOAD_BITS: usize = 64;
/// Keyed check bits appended to the payload.
pub const TAG_BITS: usize = 16;
const INFO_BITS: usize = PAYLOAD_BITS + TAG_BITS;
/// Coded bits per tile.
pub const CODED_BITS: usize = 2 * (INFO_BITS + code::TAIL);
const CHIPS: usize = TILE_BLOCKS * TILE_BLOCKS;
const _: () = assert!(CHIPS <= 256, "one PRF block of chip signs");
/// Sync chips per tile.
pub const SYNC_CHIPS: usize = CHIPS - CODED_BITS;
/// Sync correlation (in standard deviations of an unmarked image's) needed to accept a mark.
pub const MIN_SYNC: f32 = 5.0;
/// High-passed block values are clipped to ± this many levels before folding.
const CLIP: f32 = 4.0;
/// The scales tried by [`inspect`] (suspect size / frame size), most likely first.
pub const SCALES: [f64; 11] = [
    1.0,
    0.75,
    0.5,
    2.0 / 3.0,
    0.8,
    0.9,
    1.1,
    1.25,
    4.0 / 3.0,
    1.5,
    2.0,
];

/// Where the sync chips and the coded bits sit in a tile, and their keyed signs.
pub(crate) struct Layout {
    /// ±1 per tile position.
    pn: [i8; CHIPS],
    /// Tile positions of the sync chips.
    sync: [u16; SYNC_CHIPS],
    /// Tile position of each coded bit.
    data: [u16; CODED_BITS],
}

impl Layout {
    fn derive(master: &[u8; 32]) -> Layout {
        let mut pn = [0i8; CHIPS];
        let bits = WatermarkKey::prf(master, b"pn\0", 0);
        for (i, chip) in pn.iter_mut().enumerate() {
            *chip = if bits[i / 8] >> (i % 8) & 1 == 1 {
                1
            } else {
                -1
            };
        }
        // Fisher–Yates with keyed 32-bit draws.
        let mut order: Vec<u16> = (0..CHIPS as u16).collect();
        let mut pool = Vec::new();
        let mut counter = 0;
        for i in (1..CHIPS).rev() {
            if pool.len() < 4 {
                pool.extend_from_slice(&WatermarkKey::prf(master, b"order\0", counter));
                counter += 1;
            }
            let draw = u32::from_le_bytes([pool[0], pool[1], pool[2], pool[3]]);
            pool.drain(..4);
            let j = ((u64::from(draw) * (i as u64 + 1)) >> 32) as usize;
            order.swap(i, j);
        }
        Layout {
            pn,
            sync: order[..SYNC_CHIPS].try_into().expect("sync chips"),
            data: order[SYNC_CHIPS..].try_into().expect("coded bits"),
        }
    }
}

/// The part of a viewer session id the invisible mark carries: its first 8 bytes (60 random
/// bits of a v4 UUID plus its version digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionPrefix(pub [u8; 8]);

impl SessionPrefix {
    /// The prefix of `session`.
    pub fn of(session: &Uuid) -> SessionPrefix {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&session.as_bytes()[..8]);
        SessionPrefix(prefix)
    }

    /// Whether `session` starts with this prefix.
    pub fn matches(&self, session: &Uuid) -> bool {
        session.as_bytes()[..8] == self.0
    }
}

impl std::fmt::Display for SessionPrefix {
    /// As the start of the UUID: `01234567-89ab-cdef`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = hex::encode(self.0);
        write!(f, "{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..])
    }
}

fn info_bits(key: &WatermarkKey, prefix: &SessionPrefix) -> Vec<u8> {
    let tag = key.tag(&prefix.0);
    let mut bits = Vec::with_capacity(INFO_BITS);
    for i in 0..PAYLOAD_BITS {
        bits.push((prefix.0[i / 8] >> (7 - i % 8)) & 1);
    }
    for i in 0..TAG_BITS {
        bits.push((tag[i / 8] >> (7 - i % 8)) & 1);
    }
    bits
}

/// The coded bits a session's mark carries (for measuring bit errors).
pub fn codeword(key: &WatermarkKey, session: &Uuid) -> Vec<u8> {
    code::encode(&info_bits(key, &SessionPrefix::of(session)))
}

/// The ±1 chip of each tile position (row-major, [`TILE_BLOCKS`] per row).
fn chips(key: &WatermarkKey, session: &Uuid) -> [i8; CHIPS] {
    let layout = &key.layout;
    let mut chips = layout.pn;
    for (&position, bit) in layout.data.iter().zip(codeword(key, session)) {
        if bit == 1 {
            chips[usize::from(position)] *= -1;
        }
    }
    chips
}

/// Writes the invisible mark into an RGB8 frame: every value moves by at most [`DELTA`]
/// (less where it would leave 0..=255), R, G and B of a pixel by the same amount.
///
/// Per block row, one tile period of the row is turned into two byte masks (what to add, what
/// to take away), applied to each period of every pixel row with saturating byte operations
/// the compiler vectorises.
pub fn embed(width: u32, height: u32, rgb: &mut [u8], mark: &Watermark) {
    const PERIOD: usize = BLOCK * TILE_BLOCKS * 3;
    let width = width as usize;
    if width == 0 {
        return;
    }
    let chips = chips(&mark.key, &mark.session);
    let mut plus = [0u8; PERIOD];
    let mut minus = [0u8; PERIOD];
    for (y, line) in rgb.chunks_mut(width * 3).take(height as usize).enumerate() {
        if y % BLOCK == 0 {
            let row = &chips[(y / BLOCK) % TILE_BLOCKS * TILE_BLOCKS..][..TILE_BLOCKS];
            for (bx, &chip) in row.iter().enumerate() {
                let span = bx * BLOCK * 3..(bx + 1) * BLOCK * 3;
                plus[span.clone()].fill(if chip > 0 { DELTA } else { 0 });
                minus[span].fill(if chip < 0 { DELTA } else { 0 });
            }
        }
        for run in line.chunks_mut(PERIOD) {
            for ((byte, add), sub) in run.iter_mut().zip(&plus).zip(&minus) {
                *byte = byte.saturating_add(*add).saturating_sub(*sub);
            }
        }
    }
}

/// A mark found by [`decode`].
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The viewer session's first 8 bytes.
    pub session: SessionPrefix,
    /// Suspect image size relative to the marked frame (0.75: shrunk to three quarters).
    pub scale: f64,
    /// Sync correlation, in standard deviations of an unmarked image's.
    pub sync: f32,
    /// Coded bits whose hard decision the error-correcting code overruled.
    pub corrected_bits: usize,
}

/// What [`inspect`] found at the best alignment, marked or not.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The accepted mark, if any.
    pub found: Option<Detection>,
    /// Strongest sync correlation over every scale and alignment tried.
    pub best_sync: f32,
    /// The scale it was found at.
    pub best_scale: f64,
    /// Hard decisions of the coded bits at that alignment (compare with [`codeword`]).
    pub hard_bits: Vec<u8>,
}

/// The viewer session prefix hidden in an RGB8 frame or a copy of it (crop, JPEG, rescale,
/// video grab) marked with `key`; `None` if there is none.
pub fn decode(key: &WatermarkKey, width: u32, height: u32, rgb: &[u8]) -> Option<Detection> {
    inspect(key, width, height, rgb).found
}

/// Searches `rgb` for a mark of `key` at every scale of [`SCALES`] (stopping at the first
/// accepted one) and reports the best alignment.
pub fn inspect(key: &WatermarkKey, width: u32, height: u32, rgb: &[u8]) -> Inspection {
    let mut report = Inspection {
        found: None,
        best_sync: f32::NEG_INFINITY,
        best_scale: 1.0,
        hard_bits: Vec::new(),
    };
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || rgb.len() < w * h * 3 {
        return report;
    }
    let integral = Integral::new(w, h, rgb);
    for scale in SCALES {
        let Some(best) = integral.search(&key.layout, scale) else {
            continue;
        };
        let soft = best.soft_bits(&key.layout);
        let hard: Vec<u8> = soft.iter().map(|v| u8::from(*v < 0.0)).collect();
        let decoded = code::decode(&soft, INFO_BITS);
        let mut prefix = [0u8; 8];
        for (i, bit) in decoded[..PAYLOAD_BITS].iter().enumerate() {
            prefix[i / 8] |= bit << (7 - i % 8);
        }
        let prefix = SessionPrefix(prefix);
        let valid = info_bits(key, &prefix) == decoded;
        if best.sync > report.best_sync {
            report.best_sync = best.sync;
            report.best_scale = scale;
            report.hard_bits.clone_from(&hard);
        }
        if valid && best.sync >= MIN_SYNC {
            let corrected_bits = code::encode(&decoded)
                .iter()
                .zip(&hard)
                .filter(|(a, b)| a != b)
                .count();
            report.found = Some(Detection {
                session: prefix,
                scale,
                sync: best.sync,
                corrected_bits,
            });
            report.best_sync = best.sync;
            report.best_scale = scale;
            report.hard_bits = hard;
            break;
        }
    }
    report
}

/// Summed luminance of every rectangle from the top-left corner.
struct Integral {
    width: usize,
    height: usize,
    sums: Vec<f64>,
}

/// The best alignment at one scale.
struct Alignment {
    sync: f32,
    /// High-passed block values folded modulo the tile, already shifted to tile positions.
    folded: [f32; CHIPS],
}

impl Alignment {
    /// Soft values of the coded bits. The high-pass leaves each block minus an eighth of its
    /// neighbours' chips, and as the tile repeats that is the same in every copy, so it does
    /// not average out: it is estimated from the decided chips (sync chips known, data chips
    /// by sign) and added back, twice.
    fn soft_bits(&self, layout: &Layout) -> Vec<f32> {
        let t = TILE_BLOCKS;
        let folded = &self.folded;
        let mut chip: [f32; CHIPS] = std::array::from_fn(|p| folded[p].signum());
        for &p in &layout.sync {
            chip[usize::from(p)] = f32::from(layout.pn[usize::from(p)]);
        }
        let mut corrected = *folded;
        for _ in 0..2 {
            let around: [f32; CHIPS] = std::array::from_fn(|p| {
                let (u, v) = (p / t, p % t);
                let mut total = 0.0;
                for du in [t - 1, 0, 1] {
                    for dv in [t - 1, 0, 1] {
                        if (du, dv) != (0, 0) {
                            total += chip[(u + du) % t * t + (v + dv) % t];
                        }
                    }
                }
                total / 8.0
            });
            let (mut num, mut den) = (0f32, 0f32);
            for p in 0..CHIPS {
                let h = chip[p] - around[p];
                num += folded[p] * h;
                den += h * h;
            }
            let gain = if den > 0.0 { num / den } else { 0.0 };
            for p in 0..CHIPS {
                corrected[p] = folded[p] + gain * around[p];
            }
            for &p in &layout.data {
                chip[usize::from(p)] = corrected[usize::from(p)].signum();
            }
        }
        layout
            .data
            .iter()
            .map(|&p| corrected[usize::from(p)] * f32::from(layout.pn[usize::from(p)]))
            .collect()
    }
}

impl Integral {
    fn new(width: usize, height: usize, rgb: &[u8]) -> Integral {
        let stride = width + 1;
        let mut sums = vec![0f64; stride * (height + 1)];
        for y in 0..height {
            let mut row = 0f64;
            for x in 0..width {
                let i = (y * width + x) * 3;
                row += 0.299 * f64::from(rgb[i])
                    + 0.587 * f64::from(rgb[i + 1])
                    + 0.114 * f64::from(rgb[i + 2]);
                sums[(y + 1) * stride + x + 1] = sums[y * stride + x + 1] + row;
            }
        }
        Integral {
            width,
            height,
            sums,
        }
    }

    /// The best sync correlation over block offsets and tile shifts at `scale`.
    fn search(&self, layout: &Layout, scale: f64) -> Option<Alignment> {
        let size = BLOCK as f64 * scale;
        let span = size.ceil() as usize;
        // Coarse offsets (every other pixel for blocks of 6 px or more), then the neighbours of
        // the best one.
        let step = if size >= 6.0 { 2 } else { 1 };
        let mut best: Option<(Alignment, usize, usize)> = None;
        let consider = |ox: usize, oy: usize, best: &mut Option<(Alignment, usize, usize)>| {
            if let Some(found) = self.align(layout, size, ox, oy)
                && best.as_ref().is_none_or(|(b, _, _)| found.sync > b.sync)
            {
                *best = Some((found, ox, oy));
            }
        };
        for oy in (0..span).step_by(step) {
            for ox in (0..span).step_by(step) {
                consider(ox, oy, &mut best);
            }
        }
        if step > 1
            && let Some((_, bx, by)) = best.as_ref().map(|(_, x, y)| (0, *x, *y))
        {
            for oy in by.saturating_sub(1)..=(by + 1).min(span - 1) {
                for ox in bx.saturating_sub(1)..=(bx + 1).min(span - 1) {
                    if (ox, oy) != (bx, by) {
                        consider(ox, oy, &mut best);
                    }
                }
            }
        }
        best.map(|(alignment, _, _)| alignment)
    }

    /// Folds the high-passed block means of the grid starting at (`ox`, `oy`) with blocks of
    /// `size` pixels, and finds the tile shift that best matches the sync chips.
    fn align(&self, layout: &Layout, size: f64, ox: usize, oy: usize) -> Option<Alignment> {
        let columns = ((self.width - ox.min(self.width)) as f64 / size).floor() as usize;
        let rows = ((self.height - oy.min(self.height)) as f64 / size).floor() as usize;
        if columns < TILE_BLOCKS + 2 || rows < TILE_BLOCKS + 2 {
            return None;
        }
        let stride = self.width + 1;
        let xs: Vec<usize> = (0..=columns)
            .map(|j| ((ox as f64 + j as f64 * size).round() as usize).min(self.width))
            .collect();
        let ys: Vec<usize> = (0..=rows)
            .map(|i| ((oy as f64 + i as f64 * size).round() as usize).min(self.height))
            .collect();
        let mut means = vec![0f32; rows * columns];
        for i in 0..rows {
            let (top, bottom) = (ys[i] * stride, ys[i + 1] * stride);
            let height = (ys[i + 1] - ys[i]) as f64;
            for j in 0..columns {
                let (left, right) = (xs[j], xs[j + 1]);
                let area = height * (right - left) as f64;
                let sum =
                    self.sums[bottom + right] - self.sums[top + right] - self.sums[bottom + left]
                        + self.sums[top + left];
                means[i * columns + j] = (sum / area.max(1.0)) as f32;
            }
        }
        // High-pass: each block minus the mean of its 8 neighbours.
        let mut high = vec![0f32; rows * columns];
        for i in 1..rows - 1 {
            for j in 1..columns - 1 {
                let at = |di: usize, dj: usize| means[(i + di - 1) * columns + j + dj - 1];
                let around = at(0, 0)
                    + at(0, 1)
                    + at(0, 2)
                    + at(1, 0)
                    + at(1, 2)
                    + at(2, 0)
                    + at(2, 1)
                    + at(2, 2);
                high[i * columns + j] = at(1, 1) - around / 8.0;
            }
        }
        // Fold, clipped and weighted by how busy the neighbourhood is (speckle, vessel edges
        // and text carry little of the mark and much noise): a per-position weighted mean.
        let delta2 = f32::from(DELTA) * f32::from(DELTA);
        let mut sum = [0f32; CHIPS];
        let mut weight = [0f32; CHIPS];
        for i in 1..rows - 1 {
            for j in 1..columns - 1 {
                let (mut activity, mut count) = (0f32, 0f32);
                for y in i.max(2) - 1..=(i + 1).min(rows - 2) {
                    for x in j.max(2) - 1..=(j + 1).min(columns - 2) {
                        activity += high[y * columns + x].abs();
                        count += 1.0;
                    }
                }
                let activity = activity / count;
                let w = 1.0 / (activity * activity + delta2);
                let position = (i % TILE_BLOCKS) * TILE_BLOCKS + j % TILE_BLOCKS;
                sum[position] += w * high[i * columns + j].clamp(-CLIP, CLIP);
                weight[position] += w;
            }
        }
        let mut folded = [0f32; CHIPS];
        for ((f, s), w) in folded.iter_mut().zip(&sum).zip(&weight) {
            *f = if *w > 0.0 { s / w } else { 0.0 };
        }
        // Grid block (i, j) is tile position ((i + ci) mod T, (j + cj) mod T).
        let t = TILE_BLOCKS;
        let mut best = (f32::NEG_INFINITY, 0, 0);
        for ci in 0..t {
            for cj in 0..t {
                let (mut dot, mut energy) = (0f32, 0f32);
                for &p in &layout.sync {
                    let (u, v) = (usize::from(p) / t, usize::from(p) % t);
                    let a = folded[((u + t - ci) % t) * t + (v + t - cj) % t];
                    dot += a * f32::from(layout.pn[usize::from(p)]);
                    energy += a * a;
                }
                let z = dot / energy.sqrt().max(1e-6);
                if z > best.0 {
                    best = (z, ci, cj);
                }
            }
        }
        let (sync, ci, cj) = best;
        let mut shifted = [0f32; CHIPS];
        for u in 0..t {
            for v in 0..t {
                shifted[u * t + v] = folded[((u + t - ci) % t) * t + (v + t - cj) % t];
            }
        }
        Some(Alignment {
            sync,
            folded: shifted,
        })
    }
}

/// The visible line: `readroom · <grader> · session <8 hex> · YYYY-MM-DD HH:MMZ`.
pub fn visible_text(mark: &Watermark) -> String {
    let seconds = i64::from(mark.unix_minute) * 60;
    let time = time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]Z"
            ))
            .ok()
        })
        .unwrap_or_default();
    let session = mark.session.simple().to_string();
    format!(
        "readroom · {} · session {} · {time}",
        mark.grader,
        &session[..8]
    )
}

/// A key for tests.
#[cfg(test)]
pub(crate) fn test_key(seed: u8) -> Arc<WatermarkKey> {
    Arc::new(WatermarkKey::from_bytes(&[seed; 32]).expect("32 bytes"))
}

/// Pixel (`x`, `y`) of a frame of `width` before `mark` was embedded (exact unless the mark
/// clipped it at 0 or 255), for tests that check rendered values.
#[cfg(test)]
pub(crate) fn unmarked(rgb: &[u8], width: u32, x: u32, y: u32, mark: &Watermark) -> [u8; 3] {
    let (x, y) = (x as usize, y as usize);
    let chip = chips(&mark.key, &mark.session)
        [(y / BLOCK) % TILE_BLOCKS * TILE_BLOCKS + (x / BLOCK) % TILE_BLOCKS];
    let i = (y * width as usize + x) * 3;
    std::array::from_fn(|c| {
        (i16::from(rgb[i + c]) - i16::from(chip) * i16::from(DELTA)).clamp(0, 255) as u8
    })
}

#[cfg(test)]
mod tests;
