//! The colour fundus photograph.
//!
//! Rendering works on a floating-point RGB buffer in display space, in layers from deep to
//! superficial: the textured orange-red background with the darker macula and the optic disc and
//! cup, then deep lesions (microaneurysms, hemorrhages, exudates, drusen), then the vessels, then
//! superficial lesions (cotton-wool spots, neovascular tufts), and finally the camera: uneven
//! illumination, vignetting, the circular field stop and sensor noise.

use rand::RngCore;
use readroom_domain::manifest::Eye;

use super::geometry::{Anatomy, ImageFrame, RetinaPoint};
use super::lesions::{LesionPlan, PlannedLesion};
use super::noise::fractal_field;
use super::rng::{SynthRng, stream, uniform};
use super::truth::{FundusLesion, LesionKind, round_px};
use super::vessels::{VesselMaps, VesselTree, rasterize};

/// A rendered fundus photograph.
#[derive(Debug, Clone)]
pub struct FundusImage {
    /// How the retina maps onto the image.
    pub frame: ImageFrame,
    /// Interleaved RGB8 pixels, row-major.
    pub rgb: Vec<u8>,
    /// The lesions drawn, in image pixels.
    pub lesions: Vec<FundusLesion>,
}

/// Per-visit camera settings: exposure, white balance and illumination.
#[derive(Debug, Clone, PartialEq)]
pub struct Acquisition {
    /// Overall brightness factor.
    pub exposure: f64,
    /// White balance: positive is warmer (more red, less blue).
    pub warmth: f64,
    /// Direction and strength of the illumination gradient across the field (pixels⁻¹ scaled).
    pub gradient: (f64, f64),
    /// Seed of the sensor noise.
    pub noise_seed: u64,
}

impl Acquisition {
    /// Draws a plausible acquisition.
    pub fn generate(rng: &mut SynthRng) -> Acquisition {
        let angle = uniform(rng, 0.0, std::f64::consts::TAU);
        let strength = uniform(rng, 0.03, 0.1);
        Acquisition {
            exposure: uniform(rng, 0.93, 1.05),
            warmth: uniform(rng, -0.03, 0.03),
            gradient: (strength * angle.cos(), strength * angle.sin()),
            noise_seed: rng.next_u64(),
        }
    }
}

/// Linear interpolation between colours.
fn mix(from: [f32; 3], to: [f32; 3], alpha: f32) -> [f32; 3] {
    [
        from[0] + (to[0] - from[0]) * alpha,
        from[1] + (to[1] - from[1]) * alpha,
        from[2] + (to[2] - from[2]) * alpha,
    ]
}

/// Multiplies a colour by a tint, weighted by `density` (0 leaves it, 1 applies the full tint).
fn tint(colour: [f32; 3], tint: [f32; 3], density: f32) -> [f32; 3] {
    [
        colour[0] * (1.0 - density * (1.0 - tint[0])),
        colour[1] * (1.0 - density * (1.0 - tint[1])),
        colour[2] * (1.0 - density * (1.0 - tint[2])),
    ]
}

fn smoothstep(edge0: f64, edge1: f64, value: f64) -> f64 {
    let t = ((value - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Colour buffer with its frame.
struct Canvas {
    frame: ImageFrame,
    width: usize,
    height: usize,
    pixels: Vec<[f32; 3]>,
}

impl Canvas {
    /// Calls `paint(point, colour)` for every pixel within `radius_mm` of `centre`.
    fn paint_around(
        &mut self,
        centre: RetinaPoint,
        radius_mm: f64,
        mut paint: impl FnMut(RetinaPoint, [f32; 3]) -> [f32; 3],
    ) {
        let (x, y) = self.frame.to_px(centre);
        let reach = radius_mm / self.frame.mm_per_px + 2.0;
        let min_x = (x - reach).floor().max(0.0) as usize;
        let max_x = ((x + reach).ceil().max(0.0) as usize).min(self.width.saturating_sub(1));
        let min_y = (y - reach).floor().max(0.0) as usize;
        let max_y = ((y + reach).ceil().max(0.0) as usize).min(self.height.saturating_sub(1));
        for row in min_y..=max_y {
            for column in min_x..=max_x {
                let point = self.frame.to_retina(column as f64, row as f64);
                let index = row * self.width + column;
                self.pixels[index] = paint(point, self.pixels[index]);
            }
        }
    }
}

/// Renders the fundus photograph of one eye.
pub fn render(
    anatomy: &Anatomy,
    tree: &VesselTree,
    plan: &LesionPlan,
    size: u32,
    eye: Eye,
    acquisition: &Acquisition,
) -> FundusImage {
    let frame = ImageFrame::fundus(size, anatomy, eye);
    let width = size as usize;
    let height = size as usize;
    let mut canvas = Canvas {
        frame: frame.clone(),
        width,
        height,
        pixels: vec![[0.0; 3]; width * height],
    };
    paint_background(&mut canvas, anatomy, acquisition);
    for lesion in plan.lesions.iter().filter(|lesion| is_deep(lesion.kind)) {
        paint_lesion(&mut canvas, lesion);
    }
    let maps = rasterize(tree, &frame);
    paint_vessels(&mut canvas, &maps);
    for lesion in plan.lesions.iter().filter(|lesion| !is_deep(lesion.kind)) {
        paint_lesion(&mut canvas, lesion);
    }
    soften(&mut canvas);
    let rgb = expose(&canvas, acquisition);
    let lesions = plan
        .lesions
        .iter()
        .map(|lesion| {
            let (x, y) = frame.to_px(lesion.centre);
            FundusLesion {
                kind: lesion.kind,
                x: round_px(x),
                y: round_px(y),
                radius: round_px(lesion.extent() / frame.mm_per_px),
            }
        })
        .collect();
    FundusImage {
        frame,
        rgb,
        lesions,
    }
}

/// Whether a lesion lies beneath the retinal vessels.
fn is_deep(kind: LesionKind) -> bool {
    !matches!(
        kind,
        LesionKind::CottonWoolSpot | LesionKind::Neovascularization
    )
}

/// Background, macula and optic disc.
fn paint_background(canvas: &mut Canvas, anatomy: &Anatomy, acquisition: &Acquisition) {
    let width = canvas.width;
    let height = canvas.height;
    let size = width.max(height) as f64;
    let mut rng = stream(acquisition.noise_seed, &["fundus-texture"]);
    // Texture is anatomy, not acquisition, but reseeding it per visit is invisible at this scale.
    let mottle = fractal_field(&mut rng, width, height, size / 10.0, 3, 0.5);
    let grain = fractal_field(&mut rng, width, height, (size / 300.0).max(2.0), 1, 0.6);
    let choroid = fractal_field(&mut rng, width, height, size / 45.0, 2, 0.45);
    let pigment = anatomy.pigmentation as f32;
    let base = mix([0.88, 0.33, 0.22], [0.70, 0.27, 0.11], pigment);
    let rim = [0.92, 0.47, 0.3];
    let cup = [1.0, 0.88, 0.68];
    let atrophy = [0.82, 0.55, 0.4];
    let disc = anatomy.disc_centre;
    let mm_per_px = canvas.frame.mm_per_px;
    let (centre_x, centre_y) = canvas.frame.centre_px();
    let outside = (canvas.frame.fov_radius_px() + 3.0).powi(2);
    for row in 0..height {
        for column in 0..width {
            let index = row * width + column;
            let from_centre = (column as f64 - centre_x).powi(2) + (row as f64 - centre_y).powi(2);
            if from_centre > outside {
                continue;
            }
            let point = canvas.frame.to_retina(column as f64, row as f64);
            let eccentricity = point.eccentricity();
            // Choroidal tessellation: a network of ridges, stronger towards the periphery.
            let ridge = (1.0 - choroid[index].abs() * 3.0).max(0.0);
            let tessellation = anatomy.tessellation * smoothstep(1.5, 6.0, eccentricity);
            let texture = 1.0 + 0.07 * mottle[index] + 0.035 * grain[index];
            let mut colour = [
                base[0] * texture * (1.0 - 0.1 * tessellation as f32 * (1.0 - ridge)),
                base[1] * texture * (1.0 - 0.25 * tessellation as f32 * (1.0 - ridge)),
                base[2] * texture * (1.0 - 0.3 * tessellation as f32 * (1.0 - ridge)),
            ];
            // Macular pigment: broad darkening plus the darker foveal pit.
            if eccentricity < 4.5 {
                let macula = (-(eccentricity / 1.3).powi(2)).exp() as f32;
                let foveola = (-(eccentricity / 0.35).powi(2)).exp() as f32;
                colour = tint(colour, [0.86, 0.62, 0.5], macula);
                colour = tint(colour, [0.93, 0.85, 0.85], foveola);
            }
            // The bright peripapillary nerve fibre layer and the disc itself.
            let disc_distance = anatomy.disc_distance(point);
            if disc_distance < 2.5 {
                let halo = (0.03 * (-(disc_distance - 1.0).max(0.0) * 3.0).exp()) as f32;
                colour = [
                    colour[0] * (1.0 + halo),
                    colour[1] * (1.0 + 2.0 * halo),
                    colour[2] * (1.0 + 2.0 * halo),
                ];
                let temporal = (disc.x - point.x) / (point.distance(disc) + 1e-9);
                if anatomy.peripapillary_atrophy > 0.0 && temporal > 0.4 {
                    let band = smoothstep(0.98, 1.02, disc_distance)
                        * (1.0
                            - smoothstep(
                                1.0 + anatomy.peripapillary_atrophy * 0.8,
                                1.0 + anatomy.peripapillary_atrophy,
                                disc_distance,
                            ))
                        * smoothstep(0.4, 0.7, temporal);
                    colour = mix(colour, atrophy, (0.55 * band) as f32);
                }
                let edge = (mm_per_px / anatomy.disc_radius_x).max(0.02) * 2.5;
                let on_disc = 1.0 - smoothstep(1.0 - edge, 1.0 + edge, disc_distance);
                if on_disc > 0.0 {
                    // The temporal rim is paler than the nasal one.
                    let rim_colour =
                        mix(rim, [0.96, 0.6, 0.4], (0.5 + 0.5 * temporal) as f32 * 0.5);
                    colour = mix(colour, rim_colour, on_disc as f32);
                    let cup_distance = anatomy.cup_distance(point);
                    let in_cup = 1.0 - smoothstep(0.85, 1.05, cup_distance);
                    colour = mix(colour, cup, (in_cup * on_disc) as f32 * 0.95);
                }
            }
            canvas.pixels[index] = colour;
        }
    }
}

/// Multiplies the vessel tints into the canvas.
fn paint_vessels(canvas: &mut Canvas, maps: &VesselMaps) {
    const ARTERY: [f32; 3] = [0.86, 0.6, 0.66];
    const VEIN: [f32; 3] = [0.7, 0.4, 0.5];
    for (index, colour) in canvas.pixels.iter_mut().enumerate() {
        let artery = maps.artery[index];
        let vein = maps.vein[index];
        if artery <= 0.0 && vein <= 0.0 {
            continue;
        }
        let mut painted = tint(*colour, ARTERY, artery);
        painted = tint(painted, VEIN, vein);
        let reflex = maps.reflex[index] * 0.09;
        *colour = [
            painted[0] + reflex,
            painted[1] + reflex,
            painted[2] + reflex * 0.8,
        ];
    }
}

/// Paints one lesion.
fn paint_lesion(canvas: &mut Canvas, lesion: &PlannedLesion) {
    let soft = (canvas.frame.mm_per_px / lesion.radius).min(0.8);
    let extent = lesion.extent();
    match lesion.kind {
        LesionKind::Microaneurysm => canvas.paint_around(lesion.centre, extent, |point, colour| {
            let alpha = smoothstep(-soft, soft, lesion.inside(point)) as f32;
            tint(colour, [0.6, 0.22, 0.28], alpha * 0.95)
        }),
        LesionKind::Hemorrhage => canvas.paint_around(lesion.centre, extent, |point, colour| {
            let inside = lesion.inside(point);
            let alpha = (smoothstep(-soft, soft, inside) * (0.75 + 0.25 * inside.max(0.0))) as f32;
            tint(colour, [0.58, 0.2, 0.24], alpha)
        }),
        LesionKind::SubretinalHemorrhage => {
            canvas.paint_around(lesion.centre, extent, |point, colour| {
                let inside = lesion.inside(point);
                let alpha = (smoothstep(-0.15, 0.2, inside) * (0.6 + 0.4 * inside.max(0.0))) as f32;
                tint(colour, [0.62, 0.24, 0.3], alpha)
            })
        }
        LesionKind::HardExudate => canvas.paint_around(lesion.centre, extent, |point, colour| {
            let alpha = smoothstep(-soft, soft, lesion.inside(point)) as f32;
            mix(colour, [0.98, 0.88, 0.52], alpha * 0.92)
        }),
        LesionKind::Drusen => canvas.paint_around(lesion.centre, extent, |point, colour| {
            let inside = lesion.inside(point);
            let alpha = (smoothstep(-0.25, 0.9, inside) * 0.6) as f32;
            mix(colour, [0.93, 0.74, 0.44], alpha)
        }),
        LesionKind::Hyperpigmentation => {
            canvas.paint_around(lesion.centre, extent, |point, colour| {
                let alpha = smoothstep(-soft, soft, lesion.inside(point)) as f32;
                tint(colour, [0.42, 0.34, 0.36], alpha * 0.9)
            })
        }
        LesionKind::CottonWoolSpot => {
            let mut rng = stream(lesion.seed, &["cotton-wool"]);
            let fluff = super::noise::ValueNoise::new(&mut rng, 16, 16);
            canvas.paint_around(lesion.centre, extent, |point, colour| {
                let fluffy = lesion.inside(point)
                    + 0.25 * f64::from(fluff.sample(point.x * 14.0, point.y * 14.0));
                let alpha = smoothstep(-0.1, 0.6, fluffy) as f32;
                mix(colour, [0.92, 0.84, 0.74], alpha * 0.72)
            })
        }
        LesionKind::Neovascularization => paint_new_vessels(canvas, lesion),
        // Fluid is invisible in the photograph; it is drawn on OCT only.
        LesionKind::IntraretinalFluid | LesionKind::SubretinalFluid => {}
    }
}

/// A tuft of fine, looping new vessels confined to the lesion's radius.
fn paint_new_vessels(canvas: &mut Canvas, lesion: &PlannedLesion) {
    let mut rng = stream(lesion.seed, &["neovascularization"]);
    let mut segments = Vec::new();
    for _ in 0..24 {
        let start_distance = lesion.radius * uniform(&mut rng, 0.0, 0.6);
        let start_angle = uniform(&mut rng, 0.0, std::f64::consts::TAU);
        let mut point = RetinaPoint::new(
            lesion.centre.x + start_distance * start_angle.cos(),
            lesion.centre.y + start_distance * start_angle.sin(),
        );
        let mut heading = uniform(&mut rng, 0.0, std::f64::consts::TAU);
        let turn = uniform(&mut rng, -6.0, 6.0);
        for _ in 0..30 {
            heading += (turn + uniform(&mut rng, -4.0, 4.0)) * 0.02;
            let next = RetinaPoint::new(
                point.x + 0.02 * heading.cos(),
                point.y + 0.02 * heading.sin(),
            );
            if next.distance(lesion.centre) > lesion.radius * 0.95 {
                heading += std::f64::consts::PI * 0.7;
                continue;
            }
            segments.push((point, next));
            point = next;
        }
    }
    // Rasterize the loops into a local density patch (max-blended, so joints leave no seams),
    // then tint the canvas through it.
    let line_radius_px = 0.009 / canvas.frame.mm_per_px;
    let (centre_x, centre_y) = canvas.frame.to_px(lesion.centre);
    let reach = lesion.radius / canvas.frame.mm_per_px + line_radius_px + 2.0;
    let min_x = (centre_x - reach).floor().max(0.0) as usize;
    let min_y = (centre_y - reach).floor().max(0.0) as usize;
    let max_x = ((centre_x + reach).ceil().max(0.0) as usize).min(canvas.width.saturating_sub(1));
    let max_y = ((centre_y + reach).ceil().max(0.0) as usize).min(canvas.height.saturating_sub(1));
    if min_x > max_x || min_y > max_y {
        return;
    }
    let patch_width = max_x - min_x + 1;
    let mut density = vec![0.0f32; patch_width * (max_y - min_y + 1)];
    let drawn = line_radius_px.max(0.7);
    for (start, end) in &segments {
        let (x0, y0) = canvas.frame.to_px(*start);
        let (x1, y1) = canvas.frame.to_px(*end);
        let dx = x1 - x0;
        let dy = y1 - y0;
        let length_sq = (dx * dx + dy * dy).max(1e-12);
        let low_x = ((x0.min(x1) - drawn - 1.0).floor().max(min_x as f64)) as usize;
        let high_x = ((x0.max(x1) + drawn + 1.0).ceil().min(max_x as f64)).max(0.0) as usize;
        let low_y = ((y0.min(y1) - drawn - 1.0).floor().max(min_y as f64)) as usize;
        let high_y = ((y0.max(y1) + drawn + 1.0).ceil().min(max_y as f64)).max(0.0) as usize;
        for row in low_y..=high_y {
            for column in low_x..=high_x {
                let px = column as f64;
                let py = row as f64;
                let t = (((px - x0) * dx + (py - y0) * dy) / length_sq).clamp(0.0, 1.0);
                let offset_x = px - x0 - t * dx;
                let offset_y = py - y0 - t * dy;
                let distance = (offset_x * offset_x + offset_y * offset_y).sqrt();
                let alpha = ((drawn + 0.5 - distance).clamp(0.0, 1.0)
                    * (line_radius_px / drawn).min(1.0)) as f32;
                let cell = &mut density[(row - min_y) * patch_width + (column - min_x)];
                if alpha > *cell {
                    *cell = alpha;
                }
            }
        }
    }
    for row in min_y..=max_y {
        for column in min_x..=max_x {
            let alpha = density[(row - min_y) * patch_width + (column - min_x)];
            if alpha > 0.0 {
                let index = row * canvas.width + column;
                canvas.pixels[index] = tint(canvas.pixels[index], [0.72, 0.4, 0.46], alpha * 0.85);
            }
        }
    }
}

/// The camera's optical blur: a separable [1 2 1]/4 filter in both directions.
fn soften(canvas: &mut Canvas) {
    let width = canvas.width;
    let height = canvas.height;
    if width < 3 || height < 3 {
        return;
    }
    let mut row_buffer = vec![[0.0f32; 3]; width];
    for row in 0..height {
        let line = &mut canvas.pixels[row * width..(row + 1) * width];
        row_buffer.copy_from_slice(line);
        for column in 1..width - 1 {
            for channel in 0..3 {
                line[column][channel] = 0.25 * row_buffer[column - 1][channel]
                    + 0.5 * row_buffer[column][channel]
                    + 0.25 * row_buffer[column + 1][channel];
            }
        }
    }
    let mut previous = canvas.pixels[..width].to_vec();
    for row in 1..height - 1 {
        for (column, saved) in previous.iter_mut().enumerate() {
            let above = *saved;
            let here = canvas.pixels[row * width + column];
            let below = canvas.pixels[(row + 1) * width + column];
            *saved = here;
            for channel in 0..3 {
                canvas.pixels[row * width + column][channel] =
                    0.25 * above[channel] + 0.5 * here[channel] + 0.25 * below[channel];
            }
        }
    }
}

/// Applies illumination, the field stop, white balance and noise, and quantizes to RGB8.
fn expose(canvas: &Canvas, acquisition: &Acquisition) -> Vec<u8> {
    let width = canvas.width;
    let (centre_x, centre_y) = canvas.frame.centre_px();
    let fov = canvas.frame.fov_radius_px();
    let mut rng = stream(acquisition.noise_seed, &["fundus-sensor"]);
    let exposure = acquisition.exposure as f32;
    let warmth = acquisition.warmth as f32;
    let balance = [
        exposure * (1.0 + warmth),
        exposure,
        exposure * (1.0 - 2.0 * warmth),
    ];
    let mut rgb = Vec::with_capacity(canvas.pixels.len() * 3);
    for (index, colour) in canvas.pixels.iter().enumerate() {
        let column = (index % width) as f64;
        let row = (index / width) as f64;
        let dx = column - centre_x;
        let dy = row - centre_y;
        let radial = (dx * dx + dy * dy).sqrt() / fov;
        let noise = rng.next_u32();
        let jitter = |shift: u32| ((noise >> shift) & 0xff) as f32 / 255.0 - 0.5;
        if radial > 1.01 {
            // The black surround of the field stop, with a little sensor noise.
            for shift in [0, 8, 16] {
                rgb.push((2.5 + 3.0 * jitter(shift)).clamp(0.0, 255.0) as u8);
            }
            continue;
        }
        let stop = (1.0 - smoothstep(0.995, 1.005, radial)) as f32;
        let illumination = ((1.0 - 0.3 * radial * radial * radial.sqrt())
            * (1.0 + acquisition.gradient.0 * dx / fov + acquisition.gradient.1 * dy / fov))
            as f32;
        for (channel, shift) in [0usize, 1, 2].into_iter().zip([0u32, 8, 16]) {
            let value = colour[channel] * balance[channel] * illumination * stop;
            let value = value * 255.0 + 2.0 * jitter(shift) + 2.0 * (1.0 - stop);
            // Adding ½ and truncating rounds without a libm call.
            rgb.push((value + 0.5).clamp(0.0, 255.0) as u8);
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::disease::{Disease, grades_for};
    use crate::synth::lesions::plan;

    /// Renders a small fundus of the given disease.
    pub(crate) fn small_fundus(disease: &Disease, eye: Eye, size: u32) -> FundusImage {
        let anatomy = Anatomy::generate(&mut stream(11, &["anatomy"]), 0.4);
        let tree = VesselTree::generate(&anatomy, &mut stream(11, &["vessels"]));
        let grades = grades_for(disease, eye, 0.4, &mut stream(11, &["grades"]));
        let plan = plan(
            disease,
            &grades,
            &anatomy,
            &tree,
            11,
            &mut stream(11, &["counts"]),
        );
        let acquisition = Acquisition::generate(&mut stream(11, &["acquisition"]));
        render(&anatomy, &tree, &plan, size, eye, &acquisition)
    }

    fn green(image: &FundusImage, x: f64, y: f64) -> f64 {
        let width = image.frame.width as usize;
        let index = (y.round() as usize * width + x.round() as usize) * 3;
        f64::from(image.rgb[index + 1])
    }

    #[test]
    fn corners_are_black_and_centre_is_orange() {
        let image = small_fundus(&Disease::Normal, Eye::Od, 256);
        assert_eq!(image.rgb.len(), 256 * 256 * 3);
        assert!(image.rgb[..3].iter().all(|value| *value < 8));
        let centre = (128 * 256 + 100) * 3;
        let [red, green, blue] = [
            image.rgb[centre],
            image.rgb[centre + 1],
            image.rgb[centre + 2],
        ];
        assert!(
            red > green && green > blue && red > 120,
            "{red} {green} {blue}"
        );
    }

    #[test]
    fn exudates_are_bright_and_microaneurysms_dark() {
        let image = small_fundus(
            &Disease::DiabeticRetinopathy {
                icdr_level: 2,
                dme: true,
            },
            Eye::Os,
            768,
        );
        let mut checked = 0;
        for lesion in &image.lesions {
            let ring: Vec<f64> = (0..16)
                .map(|step| {
                    let angle = f64::from(step) * std::f64::consts::TAU / 16.0;
                    let distance = lesion.radius + 4.0;
                    green(
                        &image,
                        lesion.x + distance * angle.cos(),
                        lesion.y + distance * angle.sin(),
                    )
                })
                .collect();
            let mut sorted = ring.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[8];
            let centre = green(&image, lesion.x, lesion.y);
            match lesion.kind {
                LesionKind::Microaneurysm | LesionKind::Hemorrhage => {
                    assert!(centre < median - 4.0, "{lesion:?}: {centre} vs {median}");
                    checked += 1;
                }
                LesionKind::HardExudate => {
                    assert!(centre > median + 10.0, "{lesion:?}: {centre} vs {median}");
                    checked += 1;
                }
                _ => {}
            }
        }
        assert!(checked > 10, "{checked}");
    }
}
