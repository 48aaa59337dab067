//! Smooth value noise: the texture source for the fundus background, the choroid and the SLO.
//!
//! A lattice of random values is interpolated with a smoothstep weight.
//! Fields are rendered octave by octave with per-column weights precomputed, so a full-resolution
//! fundus texture costs a few lookups per pixel and no allocation per pixel.

use rand::Rng;

use super::rng::SynthRng;

/// A periodic lattice of random values in `[-1, 1]`.
///
/// Lattice sides are powers of two so wrapping is a bit mask, not a division.
pub(crate) struct ValueNoise {
    columns: usize,
    rows: usize,
    values: Vec<f32>,
}

/// The smoothstep weight `3t² − 2t³`.
fn smooth(t: f64) -> f64 {
    t * t * (3.0 - 2.0 * t)
}

/// `u.floor()` without the libm call `floor` compiles to on baseline x86-64; saturates far out.
pub(crate) fn fast_floor(u: f64) -> f64 {
    let truncated = u as i64 as f64;
    if truncated > u {
        truncated - 1.0
    } else {
        truncated
    }
}

/// Lattice index and interpolation weight of coordinate `u` on a periodic axis of `period` cells;
/// `period` must be a power of two.
fn cell(u: f64, period: usize) -> (usize, usize, f32) {
    let floor = fast_floor(u);
    let mask = period.max(1) as i64 - 1;
    let index = ((floor as i64) & mask) as usize;
    let next = (index + 1) & mask as usize;
    (index, next, smooth(u - floor) as f32)
}

impl ValueNoise {
    /// A lattice of at least `columns × rows` random values, each side rounded up to a power of two.
    pub(crate) fn new(rng: &mut SynthRng, columns: usize, rows: usize) -> ValueNoise {
        let columns = columns.clamp(1, 1 << 20).next_power_of_two();
        let rows = rows.clamp(1, 1 << 20).next_power_of_two();
        let values = (0..columns * rows)
            .map(|_| rng.r#gen::<f32>() * 2.0 - 1.0)
            .collect();
        ValueNoise {
            columns,
            rows,
            values,
        }
    }

    /// The interpolated value at lattice coordinates `(u, v)`; the lattice repeats outside its size.
    pub(crate) fn sample(&self, u: f64, v: f64) -> f32 {
        let (x0, x1, wx) = cell(u, self.columns);
        let (y0, y1, wy) = cell(v, self.rows);
        self.blend(x0, x1, wx, y0, y1, wy)
    }

    /// Prepares fast sampling along the line `u = constant` (one A-scan of a B-scan).
    pub(crate) fn line(&self, u: f64) -> NoiseLine {
        let (x0, x1, wx) = cell(u, self.columns);
        let values = (0..self.rows)
            .map(|row| {
                let base = row * self.columns;
                self.values[base + x0] + (self.values[base + x1] - self.values[base + x0]) * wx
            })
            .collect();
        NoiseLine { values }
    }

    fn blend(&self, x0: usize, x1: usize, wx: f32, y0: usize, y1: usize, wy: f32) -> f32 {
        let row0 = y0 * self.columns;
        let row1 = y1 * self.columns;
        let top = self.values[row0 + x0] + (self.values[row0 + x1] - self.values[row0 + x0]) * wx;
        let bottom =
            self.values[row1 + x0] + (self.values[row1 + x1] - self.values[row1 + x0]) * wx;
        top + (bottom - top) * wy
    }
}

/// The noise along one line `u = constant`, interpolated across `u` once so that each sample
/// along the line costs a single interpolation.
pub(crate) struct NoiseLine {
    values: Vec<f32>,
}

impl NoiseLine {
    /// The noise at `v` along the line (equal to [`ValueNoise::sample`] at `(u, v)`).
    pub(crate) fn at(&self, v: f64) -> f32 {
        let (y0, y1, wy) = cell(v, self.values.len());
        self.values[y0] + (self.values[y1] - self.values[y0]) * wy
    }
}

/// Fractal (multi-octave) value noise over a `width × height` pixel grid, row-major.
///
/// The first octave has cells of `cell_px` pixels; each further octave halves the cell and
/// multiplies the amplitude by `gain`. Values are roughly in `[-1, 1]`.
pub(crate) fn fractal_field(
    rng: &mut SynthRng,
    width: usize,
    height: usize,
    cell_px: f64,
    octaves: u32,
    gain: f32,
) -> Vec<f32> {
    let mut field = vec![0.0f32; width * height];
    let mut cell_size = cell_px.max(1.0);
    let mut amplitude = 1.0f32;
    let mut total = 0.0f32;
    let mut columns = Vec::with_capacity(width);
    for _ in 0..octaves.max(1) {
        let noise = ValueNoise::new(
            rng,
            (width as f64 / cell_size).ceil() as usize + 2,
            (height as f64 / cell_size).ceil() as usize + 2,
        );
        let lattice_columns = noise.columns;
        let lattice_rows = noise.rows;
        // A random offset keeps lattice points of different octaves from lining up.
        let offset_x = rng.r#gen::<f64>();
        let offset_y = rng.r#gen::<f64>();
        columns.clear();
        columns.extend((0..width).map(|x| cell(x as f64 / cell_size + offset_x, lattice_columns)));
        for y in 0..height {
            let (y0, y1, wy) = cell(y as f64 / cell_size + offset_y, lattice_rows);
            let row = &mut field[y * width..(y + 1) * width];
            for (value, &(x0, x1, wx)) in row.iter_mut().zip(columns.iter()) {
                *value += amplitude * noise.blend(x0, x1, wx, y0, y1, wy);
            }
        }
        total += amplitude;
        amplitude *= gain;
        cell_size = (cell_size / 2.0).max(1.0);
    }
    let scale = 1.0 / total.max(f32::EPSILON);
    for value in &mut field {
        *value *= scale;
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::rng::stream;

    #[test]
    fn noise_is_continuous_and_bounded() {
        let noise = ValueNoise::new(&mut stream(1, &["noise"]), 8, 8);
        let mut previous = noise.sample(0.0, 0.5);
        for step in 1..400 {
            let value = noise.sample(f64::from(step) * 0.01, 0.5);
            assert!((-1.0..=1.0).contains(&value));
            assert!((value - previous).abs() < 0.1, "jump at step {step}");
            previous = value;
        }
        // Far outside the lattice the noise wraps instead of panicking.
        let _ = noise.sample(-1.0e6, 3.0e7);
        // Line sampling agrees with point sampling.
        let line = noise.line(2.7);
        for step in 0..50 {
            let v = f64::from(step) * 0.37 - 3.0;
            assert!((line.at(v) - noise.sample(2.7, v)).abs() < 1e-5);
        }
    }

    #[test]
    fn fractal_field_has_the_requested_size_and_varies() {
        let field = fractal_field(&mut stream(2, &["field"]), 64, 32, 16.0, 3, 0.5);
        assert_eq!(field.len(), 64 * 32);
        let min = field.iter().copied().fold(f32::MAX, f32::min);
        let max = field.iter().copied().fold(f32::MIN, f32::max);
        assert!(max - min > 0.3 && min >= -1.0 && max <= 1.0);
    }
}
