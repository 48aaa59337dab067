//! Minification: when an image is drawn smaller than 1:1, each device pixel is the area (box)
//! average of the source pixels under its footprint, weighted by how much of each source pixel
//! it covers. Point sampling (nearest or bilinear) at these scales skips most source pixels, so
//! fine detail such as small vessels aliases and shimmers as the view moves.
//!
//! The filter is separable and needs no state between frames: footprints are computed once per
//! device column and row; for each device row the source rows under it are summed over the
//! columns in use (a contiguous pass the compiler vectorises), then each device column sums its
//! footprint of that. The cost is about one read of each visible source pixel whatever the
//! scale: a 4000×3000 RGB photograph fitted into 1920×1080 takes less time than the bilinear
//! sampler it replaces for minification (see the timing test in `tests.rs`).

use super::{Frame, Lut, Placement};
use crate::image::{DecodedImage, Pixels};

/// The source pixels under one device pixel along one axis.
#[derive(Clone, Copy)]
struct Span {
    /// First source index covered.
    first: usize,
    /// Last source index covered (inclusive).
    last: usize,
    /// Coverage of `first` (0..=1).
    first_weight: f32,
    /// Coverage of `last` (0..=1), when `last > first`.
    last_weight: f32,
    /// 1 / total coverage.
    inverse: f32,
}

impl Span {
    /// The footprint `[low, high)` in source pixel coordinates, clipped to `[0, size)`; `None`
    /// when the device pixel's centre is outside the image (drawn as background, as when
    /// magnifying).
    fn new(low: f32, high: f32, size: f32) -> Option<Span> {
        let centre = (low + high) / 2.0;
        if centre < 0.0 || centre >= size {
            return None;
        }
        let low = low.max(0.0);
        let high = high.min(size);
        if high <= low {
            return None;
        }
        let first = low.floor() as usize;
        let last = ((high.ceil() as usize).max(first + 1) - 1).min(size as usize - 1);
        let (first_weight, last_weight) = if first == last {
            (high - low, 0.0)
        } else {
            ((first + 1) as f32 - low, high - last as f32)
        };
        Some(Span {
            first,
            last,
            first_weight,
            last_weight,
            inverse: 1.0 / (high - low),
        })
    }

    fn weight(&self, index: usize) -> f32 {
        if index == self.first {
            self.first_weight
        } else if index == self.last {
            self.last_weight
        } else {
            1.0
        }
    }
}

/// The footprints of the device pixels `start..end` along one axis, as normalised tap weights.
pub(super) struct Taps {
    /// Per device pixel: first source index, offset into `weights`, number of taps; `None`
    /// for background.
    pub(super) pixels: Vec<Option<(usize, usize, usize)>>,
    pub(super) weights: Vec<f32>,
}

impl Taps {
    pub(super) fn new(
        start: u32,
        end: u32,
        area_start: f32,
        origin: f32,
        scale: f32,
        size: f32,
    ) -> Taps {
        let mut taps = Taps {
            pixels: Vec::with_capacity((end - start) as usize),
            weights: Vec::new(),
        };
        for p in start..end {
            let low = origin + (p as f32 - area_start) / scale;
            let high = origin + (p as f32 + 1.0 - area_start) / scale;
            let entry = Span::new(low, high, size).map(|span| {
                let offset = taps.weights.len();
                taps.weights.extend(
                    (span.first..=span.last).map(|index| span.weight(index) * span.inverse),
                );
                (span.first, offset, span.last - span.first + 1)
            });
            taps.pixels.push(entry);
        }
        taps
    }
}

/// Draws `image` into `placement`'s area with area averaging (for `placement.scale < 1`).
///
/// Separable: each source row in use is averaged horizontally once into the device columns
/// (kept while the device rows that need it are drawn), then the device rows average those.
pub(super) fn blit_area(
    frame: &mut Frame,
    placement: &Placement,
    image: &DecodedImage,
    lut: &Lut,
    red_free: bool,
) {
    let area = placement.area;
    let Some((x_start, y_start, x_end, y_end)) = area.pixels_in(frame) else {
        return;
    };
    let (iw, ih) = placement.image;
    let cols = Taps::new(
        x_start,
        x_end,
        area.x,
        placement.origin.0,
        placement.scale,
        iw,
    );
    let rows = Taps::new(
        y_start,
        y_end,
        area.y,
        placement.origin.1,
        placement.scale,
        ih,
    );
    let target = Target {
        frame,
        x_start,
        y_start,
        cols: &cols,
        rows: &rows,
        width: image.width as usize,
    };
    // Averages are scaled to 16 bits (× 257 for 8-bit samples; × 1 is exact for 16-bit ones),
    // rounded and mapped through the LUT.
    let grey = |v: [u16; 1]| {
        let v = lut.map(v[0]);
        [v, v, v]
    };
    match &image.pixels {
        Pixels::Gray8(p) => target.draw(&Gray8(p), 257.0, grey),
        Pixels::Gray16(p) => target.draw(&Gray16(p), 1.0, grey),
        Pixels::Rgb8(p) if red_free => target.draw(&Green(p), 257.0, grey),
        Pixels::Rgb8(p) => target.draw(&Rgb8(p), 257.0, |v| {
            [lut.map(v[0]), lut.map(v[1]), lut.map(v[2])]
        }),
    }
}

/// Adds a weighted run of one source row into an accumulator, channel by channel (in the
/// source's own sample scale).
trait Row<const N: usize> {
    /// `acc[j·N + k] += weight × channel k of pixel start + j`, for the `acc.len() / N` pixels.
    fn accumulate(&self, start: usize, weight: f32, acc: &mut [f32]);
}

struct Gray8<'a>(&'a [u8]);
struct Gray16<'a>(&'a [u16]);
struct Rgb8<'a>(&'a [u8]);
/// The green channel of RGB (red-free).
struct Green<'a>(&'a [u8]);

impl Row<1> for Gray8<'_> {
    fn accumulate(&self, start: usize, weight: f32, acc: &mut [f32]) {
        let pixels = &self.0[start..start + acc.len()];
        for (a, v) in acc.iter_mut().zip(pixels) {
            *a += weight * f32::from(*v);
        }
    }
}

impl Row<1> for Gray16<'_> {
    fn accumulate(&self, start: usize, weight: f32, acc: &mut [f32]) {
        let pixels = &self.0[start..start + acc.len()];
        for (a, v) in acc.iter_mut().zip(pixels) {
            *a += weight * f32::from(*v);
        }
    }
}

impl Row<3> for Rgb8<'_> {
    fn accumulate(&self, start: usize, weight: f32, acc: &mut [f32]) {
        // Interleaved samples line up with the interleaved accumulator.
        let samples = &self.0[start * 3..start * 3 + acc.len()];
        for (a, v) in acc.iter_mut().zip(samples) {
            *a += weight * f32::from(*v);
        }
    }
}

impl Row<1> for Green<'_> {
    fn accumulate(&self, start: usize, weight: f32, acc: &mut [f32]) {
        let pixels = &self.0[start * 3..(start + acc.len()) * 3];
        for (a, px) in acc.iter_mut().zip(pixels.chunks_exact(3)) {
            *a += weight * f32::from(px[1]);
        }
    }
}

/// Where the averaged pixels go.
struct Target<'a> {
    frame: &'a mut Frame,
    x_start: u32,
    y_start: u32,
    cols: &'a Taps,
    rows: &'a Taps,
    /// Source row length in pixels.
    width: usize,
}

impl Target<'_> {
    /// Averages `N` channels of `source` and writes them through `colour`: for each device
    /// row, the source rows under it are summed with their vertical weights over the source
    /// columns in use (a contiguous, vectorisable pass), then each device column sums its
    /// horizontal footprint of that; the sums are scaled by `scale` and rounded to 16 bits in
    /// a pass of their own (vectorised), and `colour` makes the device pixel of them.
    fn draw<const N: usize>(
        self,
        source: &impl Row<N>,
        scale: f32,
        colour: impl Fn([u16; N]) -> [u8; 3],
    ) {
        let frame_width = self.frame.width as usize;
        let columns = self.cols.pixels.len();
        // The columns whose centre is inside the image are one run.
        let Some(inside_start) = self.cols.pixels.iter().position(Option::is_some) else {
            self.fill_background();
            return;
        };
        let inside: Vec<(usize, usize, usize)> = self.cols.pixels[inside_start..]
            .iter()
            .map_while(|tap| *tap)
            .collect();
        let (Some(&(x_low, _, _)), Some(&(last_first, _, last_count))) =
            (inside.first(), inside.last())
        else {
            self.fill_background();
            return;
        };
        let x_high = last_first + last_count;
        let mut acc = vec![0f32; (x_high - x_low) * N];
        let mut sums = vec![0f32; inside.len() * N];
        let mut rounded = vec![0u16; inside.len() * N];
        for (r, row) in self.rows.pixels.iter().enumerate() {
            let line = (self.y_start as usize + r) * frame_width + self.x_start as usize;
            let out = &mut self.frame.rgb[line * 3..(line + columns) * 3];
            let Some((first, offset, count)) = *row else {
                super::fill_background(out);
                continue;
            };
            acc.fill(0.0);
            let weights = &self.rows.weights[offset..offset + count];
            for (j, w) in weights.iter().enumerate() {
                source.accumulate((first + j) * self.width + x_low, *w, &mut acc);
            }
            for (sum, &(first, offset, count)) in sums.chunks_exact_mut(N).zip(&inside) {
                let weights = &self.cols.weights[offset..offset + count];
                let run = &acc[(first - x_low) * N..(first - x_low + count) * N];
                let mut value = [0f32; N];
                for (w, sample) in weights.iter().zip(run.chunks_exact(N)) {
                    for k in 0..N {
                        value[k] += w * sample[k];
                    }
                }
                sum.copy_from_slice(&value);
            }
            for (r, v) in rounded.iter_mut().zip(&sums) {
                *r = super::round_u16(v * scale);
            }
            let (before, rest) = out.split_at_mut(inside_start * 3);
            let (drawn, after) = rest.split_at_mut(inside.len() * 3);
            super::fill_background(before);
            super::fill_background(after);
            for (pixel, v) in drawn.chunks_exact_mut(3).zip(rounded.chunks_exact(N)) {
                pixel.copy_from_slice(&colour(std::array::from_fn(|k| v[k])));
            }
        }
    }

    fn fill_background(self) {
        let frame_width = self.frame.width as usize;
        let columns = self.cols.pixels.len();
        for r in 0..self.rows.pixels.len() {
            let line = (self.y_start as usize + r) * frame_width + self.x_start as usize;
            super::fill_background(&mut self.frame.rgb[line * 3..(line + columns) * 3]);
        }
    }
}
