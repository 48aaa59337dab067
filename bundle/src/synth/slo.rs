//! The en-face infrared reflectance (SLO) image acquired with an OCT volume.
//!
//! It is rendered from the same anatomy, vessel tree and lesions as the fundus photograph, in the
//! grey tones of an 820 nm confocal scanning laser ophthalmoscope: vessels dark with a bright
//! central reflex, the disc pale, the fovea darker, drusen and exudates faintly bright.

use rand::RngCore;

use super::geometry::{Anatomy, ImageFrame, RetinaPoint};
use super::lesions::LesionPlan;
use super::noise::fractal_field;
use super::rng::{SynthRng, stream};
use super::truth::LesionKind;
use super::vessels::{VesselTree, rasterize};

/// A rendered en-face image.
#[derive(Debug, Clone)]
pub struct SloImage {
    /// How the retina maps onto the image.
    pub frame: ImageFrame,
    /// 8-bit grayscale pixels, row-major.
    pub pixels: Vec<u8>,
}

fn smoothstep(edge0: f64, edge1: f64, value: f64) -> f64 {
    let t = ((value - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Renders the en-face image of one eye in `frame`.
pub fn render(
    anatomy: &Anatomy,
    tree: &VesselTree,
    plan: &LesionPlan,
    frame: &ImageFrame,
    rng: &mut SynthRng,
) -> SloImage {
    let width = frame.width as usize;
    let height = frame.height as usize;
    let maps = rasterize(tree, frame);
    let mut texture_rng = stream(rng.next_u64(), &["slo-texture"]);
    let texture = fractal_field(&mut texture_rng, width, height, width as f64 / 8.0, 4, 0.55);
    let (centre_x, centre_y) = frame.centre_px();
    let half_diagonal = (centre_x * centre_x + centre_y * centre_y).sqrt().max(1.0);
    let mut values = vec![0.0f32; width * height];
    for row in 0..height {
        for column in 0..width {
            let index = row * width + column;
            let point = frame.to_retina(column as f64, row as f64);
            let eccentricity = point.eccentricity();
            let mut value = 0.44 + 0.05 * f64::from(texture[index]);
            value -= 0.1 * (-(eccentricity / 0.8).powi(2)).exp();
            let disc_distance = anatomy.disc_distance(point);
            if disc_distance < 1.3 {
                let on_disc = 1.0 - smoothstep(0.92, 1.05, disc_distance);
                let ring = (-((disc_distance - 1.02) / 0.05).powi(2)).exp();
                let cup = 1.0 - smoothstep(0.85, 1.05, anatomy.cup_distance(point));
                value += 0.18 * on_disc + 0.12 * cup * on_disc - 0.06 * ring;
            }
            let blood = f64::from(maps.blood(index));
            value *= 1.0 - 0.5 * blood;
            value += 0.22 * f64::from(maps.reflex[index]);
            values[index] = value as f32;
        }
    }
    for lesion in &plan.lesions {
        let (change, multiply) = match lesion.kind {
            LesionKind::Drusen => (0.07, false),
            LesionKind::HardExudate => (0.16, false),
            LesionKind::CottonWoolSpot => (0.08, false),
            LesionKind::Hyperpigmentation => (0.12, false),
            LesionKind::Microaneurysm
            | LesionKind::Hemorrhage
            | LesionKind::SubretinalHemorrhage => (0.7, true),
            LesionKind::Neovascularization => (0.85, true),
            LesionKind::IntraretinalFluid | LesionKind::SubretinalFluid => continue,
        };
        let (x, y) = frame.to_px(lesion.centre);
        let reach = lesion.extent() / frame.mm_per_px + 2.0;
        let min_x = (x - reach).floor().max(0.0) as usize;
        let max_x = ((x + reach).ceil().max(0.0) as usize).min(width.saturating_sub(1));
        let min_y = (y - reach).floor().max(0.0) as usize;
        let max_y = ((y + reach).ceil().max(0.0) as usize).min(height.saturating_sub(1));
        let soft = (frame.mm_per_px / lesion.radius).min(0.8);
        for row in min_y..=max_y {
            for column in min_x..=max_x {
                let point: RetinaPoint = frame.to_retina(column as f64, row as f64);
                let alpha = smoothstep(-soft, soft, lesion.inside(point)) as f32;
                let value = &mut values[row * width + column];
                if multiply {
                    *value *= 1.0 - alpha * (1.0 - change as f32);
                } else {
                    *value += alpha * change as f32;
                }
            }
        }
    }
    let mut noise_rng = stream(rng.next_u64(), &["slo-noise"]);
    let pixels = values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let column = (index % width) as f64 - centre_x;
            let row = (index / width) as f64 - centre_y;
            let radial = (column * column + row * row) / (half_diagonal * half_diagonal);
            let vignette = (1.0 - 0.3 * radial) as f32;
            let noise = (noise_rng.next_u32() & 0xff) as f32 / 255.0 - 0.5;
            (value * vignette * 255.0 + 6.0 * noise + 0.5).clamp(0.0, 255.0) as u8
        })
        .collect();
    SloImage {
        frame: frame.clone(),
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::lesions::LesionPlan;
    use readroom_domain::manifest::Eye;

    #[test]
    fn disc_is_bright_and_mirrored() {
        let anatomy = Anatomy::generate(&mut stream(31, &["anatomy"]), 0.5);
        let tree = VesselTree::generate(&anatomy, &mut stream(31, &["vessels"]));
        let plan = LesionPlan::default();
        // Mean brightness in a small window, in pixels.
        let mean = |image: &SloImage, (x, y): (f64, f64), half: i64| {
            let mut sum = 0.0f64;
            let mut count = 0.0f64;
            for row in (y as i64 - half)..=(y as i64 + half) {
                for column in (x as i64 - half)..=(x as i64 + half) {
                    if (0..512).contains(&row) && (0..512).contains(&column) {
                        sum += f64::from(image.pixels[row as usize * 512 + column as usize]);
                        count += 1.0;
                    }
                }
            }
            sum / count.max(1.0)
        };
        for eye in [Eye::Od, Eye::Os] {
            let frame = ImageFrame::slo(eye);
            let image = render(&anatomy, &tree, &plan, &frame, &mut stream(31, &["slo"]));
            let disc = frame.to_px(anatomy.disc_centre);
            let fovea = frame.to_px(RetinaPoint::new(0.0, 0.0));
            let on_right = disc.0 > fovea.0;
            assert_eq!(
                on_right,
                eye == Eye::Od,
                "{eye:?}: disc at {disc:?}, fovea at {fovea:?}"
            );
            let (disc_mean, fovea_mean) = (mean(&image, disc, 15), mean(&image, fovea, 15));
            assert!(
                disc_mean > fovea_mean + 30.0,
                "{eye:?}: {disc_mean} vs {fovea_mean}"
            );
        }
    }
}
