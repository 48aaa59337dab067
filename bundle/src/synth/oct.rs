//! The OCT volume: B-scans of a layered retina, centred on the fovea.
//!
//! Each A-scan (image column) is modelled as a stack of layers with thicknesses that depend on the
//! position on the retina: the inner layers vanish into the foveal pit, the nerve fibre layer
//! thickens towards the disc, and the outer nuclear layer and photoreceptors lengthen at the fovea.
//! Lesions insert or thicken layers: intraretinal cysts open in the inner nuclear and outer
//! plexiform layers, subretinal fluid lifts the retina off the RPE, drusen lift the RPE off
//! Bruch's membrane, and macular edema thickens the retina.
//! The column's reflectivity is integrated over each pixel (so boundaries are anti-aliased), then
//! attenuated with depth, shadowed under retinal vessels, textured in the choroid and overlaid with
//! laterally correlated speckle drawn from a per-frame random stream.
//!
//! Only lesions visible in a B-scan (at least a pixel wide and two pixels high) are drawn there, and
//! exactly those are reported in the ground truth.

use rand::{Rng, RngCore};
use readroom_domain::manifest::Eye;

use super::geometry::{ImageFrame, OCT_SCAN_MM, RetinaPoint};
use super::lesions::{FluidLayer, LesionPlan};
use super::noise::ValueNoise;
use super::rng::{SynthRng, stream, uniform};
use super::truth::{LesionKind, OctLesion, round_px};
use super::vessels::{VesselMaps, VesselTree, rasterize};

/// Width of a B-scan (A-scans per B-scan).
pub const BSCAN_WIDTH: u32 = 512;
/// Depth of a B-scan in pixels.
pub const BSCAN_DEPTH: u32 = 496;
/// Axial pixel size in micrometres (a spectral-domain OCT's usual 3.9 µm).
pub const AXIAL_UM: f64 = 3.9;

/// Where the B-scans of a volume lie on the retina.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanPattern {
    /// Which eye.
    pub eye: Eye,
    /// Number of B-scans.
    pub frames: u32,
    /// Retina point at the centre of the square scan area (the fixation, near the fovea).
    pub centre: RetinaPoint,
}

impl ScanPattern {
    /// Lateral pixel size in micrometres.
    pub fn lateral_um(&self) -> f64 {
        OCT_SCAN_MM * 1000.0 / f64::from(BSCAN_WIDTH - 1)
    }

    /// Distance between neighbouring B-scans in micrometres.
    pub fn bscan_spacing_um(&self) -> f64 {
        OCT_SCAN_MM * 1000.0 / f64::from(self.frames.max(2) - 1)
    }

    /// Retina `y` of B-scan `index` (B-scan 0 is the most superior).
    pub fn bscan_y(&self, index: u32) -> f64 {
        self.centre.y - OCT_SCAN_MM / 2.0 + f64::from(index) * self.bscan_spacing_um() / 1000.0
    }

    /// The en-face frame of the scan square with one pixel per A-scan, used for vessel shadows.
    pub fn enface_frame(&self) -> ImageFrame {
        ImageFrame::new(
            BSCAN_WIDTH,
            BSCAN_WIDTH,
            self.centre,
            self.lateral_um() / 1000.0,
            self.eye,
        )
    }

    /// Retina point of B-scan column `column` at retina height `y`.
    pub fn point(&self, column: f64, y: f64) -> RetinaPoint {
        let frame = self.enface_frame();
        let row = frame.to_px(RetinaPoint::new(self.centre.x, y)).1;
        frame.to_retina(column, row)
    }

    /// B-scan column showing retina `x`.
    pub fn column(&self, x: f64) -> f64 {
        self.enface_frame()
            .to_px(RetinaPoint::new(x, self.centre.y))
            .0
    }

    /// The scan square on an en-face image, `[x0, y0, x1, y1]` in its pixels, as the manifest
    /// wants it: B-scan `i` runs from `x0` to `x1` at `y0 + i (y1 − y0) / (n − 1)`.
    pub fn enface_rect(&self, enface: &ImageFrame) -> [f64; 4] {
        let half = OCT_SCAN_MM / 2.0;
        let own = self.enface_frame();
        // Column 0 and the last column of a B-scan, and the first and last B-scan.
        let first = own.to_retina(0.0, 0.0);
        let last = own.to_retina(f64::from(BSCAN_WIDTH - 1), 0.0);
        let (x0, _) = enface.to_px(first);
        let (x1, _) = enface.to_px(last);
        let (_, y0) = enface.to_px(RetinaPoint::new(self.centre.x, self.centre.y - half));
        let (_, y1) = enface.to_px(RetinaPoint::new(self.centre.x, self.centre.y + half));
        [round_px(x0), round_px(y0), round_px(x1), round_px(y1)]
    }
}

/// A rendered OCT volume.
#[derive(Debug, Clone)]
pub struct OctVolume {
    /// Where the B-scans lie.
    pub pattern: ScanPattern,
    /// One 8-bit grayscale B-scan per frame, `BSCAN_WIDTH × BSCAN_DEPTH`, row-major.
    pub frames: Vec<Vec<u8>>,
    /// Lesions drawn into at least one B-scan.
    pub lesions: Vec<OctLesion>,
    /// Index of the B-scan closest to the fovea.
    pub fovea_bscan: u32,
    /// Column of the fovea on that B-scan.
    pub fovea_x: f64,
}

/// Per-eye, per-visit parameters of the OCT image.
#[derive(Debug, Clone, PartialEq)]
pub struct OctModel {
    /// Depth of Bruch's membrane at the scan centre, in pixels from the top.
    pub base_px: f64,
    /// Bowl shape: rise of Bruch's membrane per mm² of eccentricity, in pixels.
    pub bowl: f64,
    /// Tilt of the retina in pixels per mm along x and y.
    pub tilt: (f64, f64),
    /// Choroidal thickness under the fovea in micrometres.
    pub choroid_um: f64,
    /// Overall signal gain.
    pub gain: f64,
    /// Seed of the textures and speckle.
    pub noise_seed: u64,
}

impl OctModel {
    /// Draws plausible parameters.
    pub fn generate(rng: &mut SynthRng) -> OctModel {
        OctModel {
            base_px: uniform(rng, 0.5, 0.56) * f64::from(BSCAN_DEPTH),
            bowl: uniform(rng, 2.0, 5.0),
            tilt: (uniform(rng, -5.0, 5.0), uniform(rng, -3.0, 3.0)),
            choroid_um: uniform(rng, 200.0, 320.0),
            gain: uniform(rng, 0.93, 1.05),
            noise_seed: rng.next_u64(),
        }
    }
}

/// Regions of an A-scan from the inner retina down; the vitreous lies above and the sclera below.
const REGIONS: usize = 19;
const ILM: usize = 0;
const INL_CYST: usize = 5;
const OPL: usize = 7;
const OPL_CYST: usize = 8;
const SRF: usize = 15;
const RPE: usize = 16;
const DRUSEN: usize = 17;
const CHOROID: usize = 18;

/// Reflectivity of each region (display scale 0–1).
const REFLECTIVITY: [f32; REGIONS] = [
    0.7,   // inner limiting membrane
    0.8,   // nerve fibre layer
    0.42,  // ganglion cell layer
    0.56,  // inner plexiform layer
    0.24,  // inner nuclear layer, upper half
    0.015, // cyst in the inner nuclear layer
    0.24,  // inner nuclear layer, lower half
    0.52,  // outer plexiform layer
    0.015, // cyst at the outer plexiform layer
    0.15,  // outer nuclear layer
    0.42,  // external limiting membrane
    0.2,   // myoid zone
    0.82,  // ellipsoid zone
    0.3,   // outer segments
    0.55,  // interdigitation zone
    0.02,  // subretinal fluid
    0.92,  // retinal pigment epithelium
    0.42,  // drusen material
    0.44,  // choroid
];
const VITREOUS: f32 = 0.02;
const SCLERA: f32 = 0.3;

/// The lesions visible in one B-scan, as indices into the plan.
#[derive(Debug, Default)]
struct Visible {
    /// Indices into `plan.lesions` (drusen and hard exudates).
    lesions: Vec<usize>,
    /// Indices into `plan.fluid`.
    fluid: Vec<usize>,
}

/// Layer boundaries of one A-scan in pixels from the top, non-decreasing.
struct Column {
    /// `boundaries[k]` is the top of region `k`; `boundaries[REGIONS]` is the choroid–sclera border.
    boundaries: [f64; REGIONS + 1],
}

fn gauss(value: f64, width: f64) -> f64 {
    (-(value / width).powi(2)).exp()
}

/// The layer boundaries at `point`.
fn column_at(point: RetinaPoint, model: &OctModel, plan: &LesionPlan, visible: &Visible) -> Column {
    let radial = point.eccentricity();
    let pit = 1.0 - gauss(radial, 0.55);
    let bump = gauss(radial - 1.1, 0.9);
    let central = gauss(radial, 0.5);
    let thin = 1.0 - plan.inner_thinning;
    let edema = plan.edema_um * gauss(radial, 1.3);
    let mut cyst_inl = 0.0;
    let mut cyst_opl = 0.0;
    let mut subretinal = 0.0;
    for &index in &visible.fluid {
        let pocket = &plan.fluid[index];
        let height = pocket.height_at(point);
        match pocket.layer {
            FluidLayer::InnerNuclear => cyst_inl += height,
            FluidLayer::OuterPlexiform => cyst_opl += height,
            FluidLayer::Subretinal => subretinal += height,
        }
    }
    let mut drusen = 0.0f64;
    for &index in &visible.lesions {
        let lesion = &plan.lesions[index];
        if lesion.kind != LesionKind::Drusen {
            continue;
        }
        let distance = point.distance(lesion.centre) / lesion.radius;
        if distance < 1.0 {
            drusen = drusen.max(lesion.height_um * (1.0 - distance * distance).sqrt());
        }
    }
    let inl = pit * (26.0 + 12.0 * bump) + 0.4 * edema;
    let thickness_um: [f64; REGIONS] = [
        4.0,
        pit * (6.0 + 4.0 * radial + 6.0 * point.x.max(0.0) + 2.5 * point.y.abs()) * thin,
        pit * (18.0 + 34.0 * bump) * thin,
        pit * (24.0 + 14.0 * bump) * (1.0 - 0.5 * plan.inner_thinning),
        // A cyst takes about half its height from the layer it sits in, so the retina above it
        // bulges by half the cyst, as in real edema, instead of rising like a column.
        (inl / 2.0 - 0.25 * cyst_inl).max(3.0),
        cyst_inl,
        (inl / 2.0 - 0.25 * cyst_inl).max(3.0),
        (8.0 + pit * (16.0 + 6.0 * bump) - 0.1 * cyst_opl).max(4.0),
        cyst_opl,
        // Over drusen the outer nuclear layer and outer segments thin, so the inner retina stays
        // nearly flat while the RPE domes up.
        (62.0 + 50.0 * central + 0.6 * edema - 0.45 * cyst_opl - 0.6 * drusen).max(15.0),
        5.0,
        22.0 + 8.0 * central,
        12.0,
        (22.0 + 12.0 * central - 0.2 * drusen).max(8.0),
        10.0,
        subretinal,
        24.0,
        drusen,
        model.choroid_um * (1.0 - 0.06 * point.x).clamp(0.6, 1.2),
    ];
    let relative_x = point.x;
    let relative_y = point.y;
    let bruch = model.base_px - model.bowl * (relative_x * relative_x + relative_y * relative_y)
        + model.tilt.0 * relative_x
        + model.tilt.1 * relative_y;
    let mut boundaries = [0.0; REGIONS + 1];
    boundaries[CHOROID] = bruch;
    boundaries[REGIONS] = bruch + thickness_um[CHOROID] / AXIAL_UM;
    for region in (0..CHOROID).rev() {
        boundaries[region] = boundaries[region + 1] - thickness_um[region] / AXIAL_UM;
    }
    Column { boundaries }
}

/// Decides which drusen, exudates and fluid pockets are visible in B-scan `index`, returning them
/// with their extent on that B-scan as `(kind, plan index, is_fluid, column_min, column_max)`.
fn visible_in(
    pattern: &ScanPattern,
    plan: &LesionPlan,
    index: u32,
) -> (Visible, Vec<(usize, bool, f64, f64)>) {
    let y = pattern.bscan_y(index);
    let lateral_mm = pattern.lateral_um() / 1000.0;
    let mut visible = Visible::default();
    let mut extents = Vec::new();
    for (lesion_index, lesion) in plan.lesions.iter().enumerate() {
        let (height_um, radius) = match lesion.kind {
            LesionKind::Drusen => (lesion.height_um, lesion.radius),
            LesionKind::HardExudate => (lesion.radius * 2000.0, lesion.radius),
            _ => continue,
        };
        let offset = (y - lesion.centre.y).abs();
        if offset >= radius {
            continue;
        }
        let half_width = (radius * radius - offset * offset).sqrt();
        let local_height = height_um * (1.0 - (offset / radius).powi(2)).sqrt();
        if half_width < lateral_mm || local_height < 2.0 * AXIAL_UM {
            continue;
        }
        let (low, high) = column_range(pattern, lesion.centre.x, half_width);
        if high < 0.0 || low > f64::from(BSCAN_WIDTH - 1) {
            continue;
        }
        visible.lesions.push(lesion_index);
        extents.push((lesion_index, false, low, high));
    }
    for (pocket_index, pocket) in plan.fluid.iter().enumerate() {
        let offset = (y - pocket.centre.y).abs();
        if offset >= pocket.radius_y {
            continue;
        }
        let shrink = (1.0 - (offset / pocket.radius_y).powi(2)).sqrt();
        let half_width = pocket.radius_x * shrink;
        if half_width < lateral_mm || pocket.peak_height_on_line(y) < 2.0 * AXIAL_UM {
            continue;
        }
        let (low, high) = column_range(pattern, pocket.centre.x, half_width);
        if high < 0.0 || low > f64::from(BSCAN_WIDTH - 1) {
            continue;
        }
        visible.fluid.push(pocket_index);
        extents.push((pocket_index, true, low, high));
    }
    (visible, extents)
}

/// The column range covering retina `x ± half_width`, clipped to the B-scan.
fn column_range(pattern: &ScanPattern, x: f64, half_width: f64) -> (f64, f64) {
    let first = pattern.column(x - half_width);
    let second = pattern.column(x + half_width);
    let last = f64::from(BSCAN_WIDTH - 1);
    (first.min(second).max(0.0), first.max(second).min(last))
}

/// The vessel shadow map of a volume: the tree rasterized on the scan square, one pixel per A-scan.
pub fn shadow_map(tree: &VesselTree, pattern: &ScanPattern) -> VesselMaps {
    rasterize(tree, &pattern.enface_frame())
}

/// Renders the OCT volume of one eye; `shadows` is the retinal blood seen from above on the scan
/// square (see [`shadow_map`]), one pixel per A-scan.
pub fn render(
    plan: &LesionPlan,
    pattern: &ScanPattern,
    model: &OctModel,
    shadows: &VesselMaps,
) -> OctVolume {
    let mut noise_rng = stream(model.noise_seed, &["oct-texture"]);
    let layer_noise = ValueNoise::new(&mut noise_rng, 64, 64);
    let choroid_noise = ValueNoise::new(&mut noise_rng, 128, 64);
    let speckle = speckle_table(&mut noise_rng);
    let mut frames = Vec::with_capacity(pattern.frames as usize);
    let mut truth: Vec<OctLesion> = Vec::new();
    // For each lesion, the B-scans it is visible in with its column range there.
    let mut seen: Vec<(usize, bool, u32, f64, f64)> = Vec::new();
    for index in 0..pattern.frames {
        let (visible, extents) = visible_in(pattern, plan, index);
        let frame = render_bscan(
            pattern,
            model,
            plan,
            &visible,
            index,
            Textures {
                shadows,
                layer_noise: &layer_noise,
                choroid_noise: &choroid_noise,
                speckle: &speckle,
            },
        );
        frames.push(frame);
        seen.extend(
            extents
                .into_iter()
                .map(|(lesion, fluid, low, high)| (lesion, fluid, index, low, high)),
        );
    }
    // One ground-truth entry per lesion, described on the B-scan nearest its centre.
    let mut keys: Vec<(bool, usize)> = seen
        .iter()
        .map(|(lesion, fluid, ..)| (*fluid, *lesion))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for (fluid, lesion_index) in keys {
        let (kind, centre) = if fluid {
            let pocket = &plan.fluid[lesion_index];
            (pocket.kind, pocket.centre)
        } else {
            let lesion = &plan.lesions[lesion_index];
            (lesion.kind, lesion.centre)
        };
        let scans: Vec<_> = seen
            .iter()
            .filter(|(lesion, is_fluid, ..)| *lesion == lesion_index && *is_fluid == fluid)
            .collect();
        let Some(&&(_, _, central, low, high)) = scans.iter().min_by(|a, b| {
            (pattern.bscan_y(a.2) - centre.y)
                .abs()
                .total_cmp(&(pattern.bscan_y(b.2) - centre.y).abs())
        }) else {
            continue;
        };
        let first = scans.iter().map(|scan| scan.2).min().unwrap_or(central);
        let last = scans.iter().map(|scan| scan.2).max().unwrap_or(central);
        let (visible, _) = visible_in(pattern, plan, central);
        let y = pattern.bscan_y(central);
        let centre_column = pattern
            .column(centre.x)
            .clamp(0.0, f64::from(BSCAN_WIDTH - 1));
        let column = column_at(pattern.point(centre_column, y), model, plan, &visible);
        let (top, bottom) = match kind {
            LesionKind::IntraretinalFluid
                if plan.fluid[lesion_index].layer == FluidLayer::InnerNuclear =>
            {
                (column.boundaries[INL_CYST], column.boundaries[INL_CYST + 1])
            }
            LesionKind::IntraretinalFluid => {
                (column.boundaries[OPL_CYST], column.boundaries[OPL_CYST + 1])
            }
            LesionKind::SubretinalFluid => (column.boundaries[SRF], column.boundaries[SRF + 1]),
            LesionKind::Drusen => (column.boundaries[RPE], column.boundaries[CHOROID]),
            _ => {
                let (centre_depth, half_depth) =
                    exudate_depth(&column, plan.lesions[lesion_index].radius);
                (centre_depth - half_depth, centre_depth + half_depth)
            }
        };
        truth.push(OctLesion {
            kind,
            bscan: central,
            first_bscan: first,
            last_bscan: last,
            x_min: round_px(low),
            x_max: round_px(high),
            top: round_px(top),
            bottom: round_px(bottom),
        });
    }
    truth.sort_by(|a, b| a.bscan.cmp(&b.bscan).then(a.x_min.total_cmp(&b.x_min)));
    let fovea = RetinaPoint::new(0.0, 0.0);
    let fovea_bscan = ((fovea.y - pattern.bscan_y(0)) / (pattern.bscan_spacing_um() / 1000.0))
        .round()
        .clamp(0.0, f64::from(pattern.frames.max(1) - 1)) as u32;
    OctVolume {
        pattern: pattern.clone(),
        frames,
        lesions: truth,
        fovea_bscan,
        fovea_x: round_px(pattern.column(fovea.x)),
    }
}

/// Depth of a hard exudate's centre (in the outer plexiform layer) and its half height, in pixels.
fn exudate_depth(column: &Column, radius_mm: f64) -> (f64, f64) {
    let centre = (column.boundaries[OPL] + column.boundaries[OPL + 1]) / 2.0;
    (centre, radius_mm * 1000.0 / AXIAL_UM)
}

/// Shared read-only inputs of B-scan rendering.
#[derive(Clone, Copy)]
struct Textures<'a> {
    shadows: &'a VesselMaps,
    layer_noise: &'a ValueNoise,
    choroid_noise: &'a ValueNoise,
    speckle: &'a [f32],
}

/// Log-compressed speckle of four averaged frames, normalized to zero mean and unit variance.
fn speckle_table(rng: &mut SynthRng) -> Vec<f32> {
    let mut table: Vec<f32> = (0..4096)
        .map(|_| {
            let sum: f64 = (0..4).map(|_| -(1.0 - rng.r#gen::<f64>()).ln()).sum();
            (sum / 4.0).max(1e-6).ln() as f32
        })
        .collect();
    let mean = table.iter().sum::<f32>() / table.len() as f32;
    let variance = table
        .iter()
        .map(|value| (value - mean).powi(2))
        .sum::<f32>()
        / table.len() as f32;
    let scale = 1.0 / variance.sqrt().max(1e-6);
    for value in &mut table {
        *value = (*value - mean) * scale;
    }
    table
}

fn render_bscan(
    pattern: &ScanPattern,
    model: &OctModel,
    plan: &LesionPlan,
    visible: &Visible,
    index: u32,
    textures: Textures<'_>,
) -> Vec<u8> {
    let width = BSCAN_WIDTH as usize;
    let depth = BSCAN_DEPTH as usize;
    // Rendered column by column into a column-major buffer (contiguous writes), transposed at the end.
    let mut columns = vec![0u8; width * depth];
    let y = pattern.bscan_y(index);
    let mut rng = stream(model.noise_seed, &["oct-speckle", &index.to_string()]);
    // Speckle of the previous column, for lateral correlation.
    let mut previous = vec![0.0f32; depth];
    let mut cumulative = vec![0.0f64; depth + 2];
    let mut profile = vec![0.0f32; depth];
    let shadow_row =
        f64::from(index) * f64::from(BSCAN_WIDTH - 1) / f64::from(pattern.frames.max(2) - 1);
    let gain = model.gain as f32;
    let exudates: Vec<usize> = visible
        .lesions
        .iter()
        .copied()
        .filter(|&lesion| plan.lesions[lesion].kind == LesionKind::HardExudate)
        .collect();
    for column_index in 0..width {
        let point = pattern.point(column_index as f64, y);
        let column = column_at(point, model, plan, visible);
        let boundaries = &column.boundaries;
        // Reflectivities with a little lateral variation per layer.
        let mut values = [0.0f32; REGIONS + 2];
        values[0] = VITREOUS;
        for region in 0..REGIONS {
            let wobble = textures.layer_noise.sample(
                point.x * 6.0 + region as f64 * 7.3,
                point.y * 6.0 + region as f64 * 3.1,
            );
            values[region + 1] = REFLECTIVITY[region] * (1.0 + 0.12 * wobble);
        }
        values[REGIONS + 1] = SCLERA;
        integrate(boundaries, &values, &mut cumulative);
        for row in 0..depth {
            profile[row] = ((cumulative[row + 2] - cumulative[row]) / 2.0) as f32;
        }
        // Retinal vessels: a bright cross-section in the inner retina and a shadow below.
        let blood = textures
            .shadows
            .sample_blood(column_index as f64, shadow_row);
        let vessel_top = boundaries[ILM] + 4.0;
        let vessel_bottom = vessel_top + (8.0 + 22.0 * f64::from(blood));
        // Hard exudates: hyperreflective foci in the outer plexiform layer, with a shadow.
        let mut exudate_bottom = f64::INFINITY;
        let mut exudate_span = (f64::INFINITY, f64::NEG_INFINITY);
        for &lesion_index in &exudates {
            let lesion = &plan.lesions[lesion_index];
            let offset = point.distance(lesion.centre) / lesion.radius;
            if offset < 1.0 {
                let (centre, half) = exudate_depth(&column, lesion.radius);
                let half = half * (1.0 - offset * offset).sqrt();
                exudate_span = (centre - half, centre + half);
                exudate_bottom = exudate_bottom.min(centre + half);
            }
        }
        let ilm = boundaries[ILM];
        let rpe_bottom = boundaries[DRUSEN];
        let choroid_top = boundaries[CHOROID];
        let sclera_top = boundaries[REGIONS];
        let choroid_depth_um = ((sclera_top - choroid_top) * AXIAL_UM).max(1.0);
        let small_vessels = textures.choroid_noise.line(point.x / 0.07 + point.y * 3.0);
        let large_vessels = textures
            .choroid_noise
            .line(point.x / 0.2 + point.y * 1.3 + 40.0);
        let mut attenuation = 1.0f32;
        let retina_loss = (-0.0012f32).exp();
        let choroid_loss = (-0.009f32).exp();
        for (row, speckle_previous) in previous.iter_mut().enumerate() {
            let depth_px = row as f64;
            let mut signal = profile[row];
            if depth_px > ilm {
                attenuation *= retina_loss;
            }
            if depth_px > rpe_bottom {
                attenuation *= choroid_loss;
            }
            if depth_px > choroid_top && depth_px < sclera_top + 4.0 {
                // Choroidal vessel lumens: small near the choriocapillaris (Sattler's layer),
                // large and laterally elongated deeper (Haller's layer).
                let below = (depth_px - choroid_top) * AXIAL_UM;
                let deep = (below / choroid_depth_um).min(1.0);
                let small = small_vessels.at(below / 30.0);
                let large = large_vessels.at(below / 70.0 + 17.0);
                let lumen = small * (1.0 - deep as f32) + large * deep as f32;
                let vessel = ((lumen + 0.05) / 0.5).clamp(0.0, 1.0);
                signal *= 1.0 - 0.4 * vessel * (below / 25.0).min(1.0) as f32;
            }
            if blood > 0.02 {
                if depth_px >= vessel_top && depth_px <= vessel_bottom {
                    signal += 0.3 * blood;
                } else if depth_px > vessel_bottom {
                    signal *= 1.0 - 0.65 * blood;
                }
            }
            if depth_px >= exudate_span.0 && depth_px <= exudate_span.1 {
                signal = signal.max(0.85);
            } else if depth_px > exudate_bottom {
                signal *= 0.7;
            }
            let signal = signal * attenuation * gain;
            let bits = rng.next_u32();
            let fresh = textures.speckle[(bits & 0xfff) as usize];
            let correlated = 0.6 * fresh + 0.4 * *speckle_previous;
            *speckle_previous = correlated;
            // Correlation shrinks the variance; 1.36 restores roughly unit variance.
            let noise = correlated * 1.36;
            let value = 255.0 * signal + (4.0 + 50.0 * signal) * noise;
            columns[column_index * depth + row] = (value + 0.5).clamp(0.0, 255.0) as u8;
        }
    }
    transpose(&columns, depth, width)
}

/// Transposes a `columns × rows` column-major buffer into a row-major image, in cache-sized tiles.
fn transpose(column_major: &[u8], rows: usize, columns: usize) -> Vec<u8> {
    const TILE: usize = 32;
    let mut row_major = vec![0u8; rows * columns];
    for column_start in (0..columns).step_by(TILE) {
        for row_start in (0..rows).step_by(TILE) {
            for column in column_start..(column_start + TILE).min(columns) {
                for row in row_start..(row_start + TILE).min(rows) {
                    row_major[row * columns + column] = column_major[column * rows + row];
                }
            }
        }
    }
    row_major
}

/// Fills `cumulative[j]` with the integral of the piecewise-constant reflectivity from row −1 to
/// row `j − 1`, so a pixel's mean over the two-pixel window around row `r` is
/// `(cumulative[r + 2] − cumulative[r]) / 2`.
fn integrate(boundaries: &[f64; REGIONS + 1], values: &[f32; REGIONS + 2], cumulative: &mut [f64]) {
    let mut pointer = 0usize;
    let mut position = -1.0f64;
    while pointer < boundaries.len() && boundaries[pointer] <= position {
        pointer += 1;
    }
    let mut accumulated = 0.0f64;
    for (step, slot) in cumulative.iter_mut().enumerate() {
        let target = step as f64 - 1.0;
        while pointer < boundaries.len() && boundaries[pointer] <= target {
            accumulated += f64::from(values[pointer]) * (boundaries[pointer] - position);
            position = boundaries[pointer];
            pointer += 1;
        }
        accumulated += f64::from(values[pointer]) * (target - position);
        position = target;
        *slot = accumulated;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::disease::{Disease, grades_for};
    use crate::synth::geometry::Anatomy;
    use crate::synth::lesions::plan as plan_lesions;

    fn volume(disease: &Disease, eye: Eye, frames: u32) -> OctVolume {
        let anatomy = Anatomy::generate(&mut stream(21, &["anatomy"]), 0.3);
        let tree = VesselTree::generate(&anatomy, &mut stream(21, &["vessels"]));
        let grades = grades_for(disease, eye, 0.3, &mut stream(21, &["grades"]));
        let plan = plan_lesions(
            disease,
            &grades,
            &anatomy,
            &tree,
            21,
            &mut stream(21, &["counts"]),
        );
        let pattern = ScanPattern {
            eye,
            frames,
            centre: RetinaPoint::new(0.0, 0.0),
        };
        let model = OctModel::generate(&mut stream(21, &["oct"]));
        render(&plan, &pattern, &model, &shadow_map(&tree, &pattern))
    }

    /// Rows of the inner limiting membrane and of the brightest (RPE) row at `column`.
    fn ilm_and_rpe(frame: &[u8], column: usize) -> (usize, usize) {
        let width = BSCAN_WIDTH as usize;
        let depth = BSCAN_DEPTH as usize;
        let smoothed: Vec<f64> = (0..depth)
            .map(|row| {
                let mut sum = 0.0;
                let mut count = 0.0;
                for dy in row.saturating_sub(2)..(row + 3).min(depth) {
                    for dx in column.saturating_sub(3)..(column + 4).min(width) {
                        sum += f64::from(frame[dy * width + dx]);
                        count += 1.0;
                    }
                }
                sum / count
            })
            .collect();
        let ilm = smoothed
            .iter()
            .position(|value| *value > 70.0)
            .unwrap_or(depth);
        // The RPE is the brightest band at least 60 µm below the surface.
        let rpe = (ilm + 15..(ilm + 150).min(depth))
            .max_by(|a, b| smoothed[*a].total_cmp(&smoothed[*b]))
            .unwrap_or(0);
        (ilm, rpe)
    }

    #[test]
    fn the_pit_is_deepest_on_the_central_bscan() {
        let volume = volume(&Disease::Normal, Eye::Od, 9);
        assert_eq!(volume.frames.len(), 9);
        assert_eq!(volume.fovea_bscan, 4);
        // Median thickness over the central columns: robust to a column lost in a vessel shadow.
        let thickness: Vec<usize> = volume
            .frames
            .iter()
            .map(|frame| {
                let mut columns: Vec<usize> = (226..286)
                    .map(|column| {
                        let (ilm, rpe) = ilm_and_rpe(frame, column);
                        rpe.saturating_sub(ilm)
                    })
                    .collect();
                columns.sort_unstable();
                columns[columns.len() / 2]
            })
            .collect();
        let thinnest = (0..thickness.len())
            .min_by_key(|index| thickness[*index])
            .unwrap_or(0);
        assert_eq!(thinnest, 4, "{thickness:?}");
        // Central retina about 250 µm, parafovea thicker.
        let central_um = thickness[4] as f64 * AXIAL_UM;
        assert!((180.0..320.0).contains(&central_um), "{central_um}");
    }

    #[test]
    fn fluid_is_dark_where_the_truth_says() {
        let volume = volume(
            &Disease::DiabeticRetinopathy {
                icdr_level: 2,
                dme: true,
            },
            Eye::Os,
            25,
        );
        let fluid: Vec<_> = volume
            .lesions
            .iter()
            .filter(|lesion| lesion.kind == LesionKind::IntraretinalFluid)
            .collect();
        assert!(!fluid.is_empty());
        for lesion in fluid {
            assert!(lesion.first_bscan <= lesion.bscan && lesion.bscan <= lesion.last_bscan);
            let frame = &volume.frames[lesion.bscan as usize];
            let column = ((lesion.x_min + lesion.x_max) / 2.0).round() as usize;
            let row = ((lesion.top + lesion.bottom) / 2.0).round() as usize;
            if lesion.bottom - lesion.top < 6.0 || lesion.x_max - lesion.x_min < 6.0 {
                continue;
            }
            let mut sum = 0.0;
            for dy in row - 1..=row + 1 {
                for dx in column - 1..=column + 1 {
                    sum += f64::from(frame[dy * BSCAN_WIDTH as usize + dx]);
                }
            }
            assert!(sum / 9.0 < 40.0, "{lesion:?}: {}", sum / 9.0);
        }
    }
}
