//! The renderer: view state + decoded images → the exact RGB frame the grader sees.
//!
//! Pure apart from asking the [`ImageProvider`] for pixels: no sockets, files or clock. The
//! frame is exactly the viewport's device-pixel size; panels fill the diagnostic area above the
//! watermark strip. Magnified (1 device pixel per image pixel or more), images are sampled
//! bilinearly, so 1:1 shows the source pixels exactly; minified, each device pixel is the area
//! average of the source pixels under it (`resample.rs`), so fine detail does not alias.
//! Intensities go through one lookup table per frame (window/level, then gamma as
//! `v^(1/gamma)`, then invert).

mod draw;
mod resample;

use readroom_domain::manifest::ExamKind;
use readroom_domain::protocol::PointerAction;
use readroom_domain::view::{
    Caliper, CaseShape, ExamShape, Layout, ViewChange, ViewError, ViewState, Zoom,
};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

use crate::image::{DecodedImage, ImageError, ImageProvider, ImageRequest, Part, Pixels, Visit};
use crate::watermark::{self, Watermark};

/// A rendered frame: RGB8, row-major, no padding.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The pixels.
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

impl Frame {
    /// SHA-256 (lowercase hex) of the RGB bytes: what the browser re-computes from the canvas.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.rgb))
    }
}

/// A rectangle in device pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left.
    pub x: f32,
    /// Top.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl Rect {
    fn contains(&self, x: f32, y: f32) -> bool {
        x >= self.x && y >= self.y && x < self.x + self.w && y < self.y + self.h
    }

    /// The device pixels of this area inside `frame`: `(x_start, y_start, x_end, y_end)`,
    /// ends exclusive, or `None` when nothing of it is inside.
    fn pixels_in(&self, frame: &Frame) -> Option<(u32, u32, u32, u32)> {
        let x_start = self.x.max(0.0) as u32;
        let y_start = self.y.max(0.0) as u32;
        let x_end = ((self.x + self.w) as u32).min(frame.width);
        let y_end = ((self.y + self.h) as u32).min(frame.height);
        (x_start < x_end && y_start < y_end).then_some((x_start, y_start, x_end, y_end))
    }
}

/// Where an image landed on screen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// The area the image is drawn in.
    pub area: Rect,
    /// Image width and height in pixels.
    pub image: (f32, f32),
    /// Device pixels per image pixel.
    pub scale: f32,
    /// Image coordinate (pixels) at the area's top-left corner.
    pub origin: (f32, f32),
}

impl Placement {
    fn new(area: Rect, image: (f32, f32), zoom: Zoom, center: [f32; 2]) -> Placement {
        let fit = (area.w / image.0).min(area.h / image.1);
        let scale = match zoom {
            Zoom::Fit => fit,
            Zoom::Scale(s) => s,
        };
        let (cx, cy) = match zoom {
            Zoom::Fit => (image.0 / 2.0, image.1 / 2.0),
            Zoom::Scale(_) => (center[0] * image.0, center[1] * image.1),
        };
        Placement {
            area,
            image,
            scale,
            origin: (cx - area.w / 2.0 / scale, cy - area.h / 2.0 / scale),
        }
    }

    fn fit_scale(&self) -> f32 {
        (self.area.w / self.image.0).min(self.area.h / self.image.1)
    }

    /// Source pixels this placement shows at full resolution: the image pixels inside the
    /// area times `min(1, scale)²` (a downscaled view shows only as many pixels as the screen
    /// has for it). What the lossless budget counts.
    pub fn revealed_px(&self) -> u64 {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return 0;
        }
        let visible = |origin: f32, extent: f32, image: f32| {
            let start = origin.max(0.0);
            let end = (origin + extent / self.scale).min(image);
            f64::from((end - start).max(0.0))
        };
        let w = visible(self.origin.0, self.area.w, self.image.0);
        let h = visible(self.origin.1, self.area.h, self.image.1);
        let resolution = f64::from(self.scale.min(1.0)).powi(2);
        (w * h * resolution).round() as u64
    }

    /// Image pixel coordinates under a device pixel.
    fn image_at(&self, x: f32, y: f32) -> (f32, f32) {
        (
            self.origin.0 + (x - self.area.x) / self.scale,
            self.origin.1 + (y - self.area.y) / self.scale,
        )
    }

    /// Device coordinates of an image point.
    fn screen_at(&self, ix: f32, iy: f32) -> (f32, f32) {
        (
            self.area.x + (ix - self.origin.0) * self.scale,
            self.area.y + (iy - self.origin.1) * self.scale,
        )
    }
}

/// The en-face locator of an OCT panel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Locator {
    /// Where the en-face image is drawn.
    pub area: Rect,
    /// B-scans in the volume.
    pub slices: u32,
}

/// What was drawn where, for mapping pointer gestures back to the images.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FrameGeometry {
    /// The primary exam's image (left panel).
    pub primary: Option<Placement>,
    /// The primary OCT exam's en-face locator.
    pub locator: Option<Locator>,
}

/// A rendered view.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The pixels.
    pub frame: Frame,
    /// Where things are.
    pub geometry: FrameGeometry,
    /// Caliper lengths in µm (None when the pixel spacing is unknown).
    pub measurements: Vec<Option<f64>>,
    /// Source pixels shown at full resolution, all panels together
    /// ([`Placement::revealed_px`]): the frame's cost to the lossless budget.
    pub revealed_px: u64,
}

/// Height of the watermark strip for a device pixel ratio.
pub fn strip_height(dpr: f32) -> u32 {
    ((14.0 * dpr).round() as u32).max(12)
}

const BACKGROUND: [u8; 3] = [0, 0, 0];
const STRIP: [u8; 3] = [34, 34, 34];
const STRIP_TEXT: [u8; 3] = [170, 170, 170];
const LINE: [u8; 3] = [60, 220, 90];
const CALIPER: [u8; 3] = [250, 210, 60];
const GRID: [u8; 3] = [80, 200, 250];
const LABEL_PLATE: [u8; 3] = [16, 16, 16];
const LABEL_TEXT: [u8; 3] = [235, 235, 235];

/// Renders the view.
pub fn render(
    state: &ViewState,
    shape: &CaseShape,
    images: &mut dyn ImageProvider,
    mark: &Watermark,
) -> Result<Rendered, ImageError> {
    let (width, height) = (state.viewport.width, state.viewport.height);
    let mut frame = Frame {
        width,
        height,
        rgb: vec![0; width as usize * height as usize * 3],
    };
    let strip = strip_height(state.viewport.dpr).min(height / 4);
    let diagnostic = Rect {
        x: 0.0,
        y: 0.0,
        w: width as f32,
        h: (height - strip) as f32,
    };
    let primary = shape
        .exam(&state.exam)
        .ok_or_else(|| ImageError::NotAvailable(format!("no exam {:?}", state.exam)))?
        .clone();
    let panels: Vec<(Visit, ExamShape)> = match state.layout {
        Layout::Single => vec![(Visit::Current, primary.clone())],
        Layout::BothEyes => {
            let fellow = shape
                .fellow(&state.exam)
                .cloned()
                .ok_or_else(|| ImageError::NotAvailable("no fellow-eye exam".into()))?;
            let mut pair = vec![(Visit::Current, primary.clone()), (Visit::Current, fellow)];
            // OD on the viewer's left.
            if pair[0].1.eye == Some(readroom_domain::manifest::Eye::Os) {
                pair.swap(0, 1);
            }
            pair
        }
        Layout::Prior => {
            let prior = shape
                .prior_of(&state.exam)
                .cloned()
                .ok_or_else(|| ImageError::NotAvailable("no prior-visit exam".into()))?;
            vec![(Visit::Current, primary.clone()), (Visit::Prior, prior)]
        }
    };
    let lut = Lut::new(state);
    let count = panels.len() as f32;
    let gap = if panels.len() > 1 { 2.0 } else { 0.0 };
    let panel_w = ((diagnostic.w - gap * (count - 1.0)) / count).floor();
    let mut geometry = FrameGeometry::default();
    let mut revealed_px = 0;
    for (index, (visit, exam)) in panels.iter().enumerate() {
        let area = Rect {
            x: index as f32 * (panel_w + gap),
            y: 0.0,
            w: panel_w,
            h: diagnostic.h,
        };
        let is_primary = exam.id == primary.id && *visit == Visit::Current;
        let slice = if exam.slices == primary.slices {
            state.slice
        } else {
            ((state.slice as f32 + 0.5) / primary.slices.max(1) as f32 * exam.slices as f32) as u32
        }
        .min(exam.slices.saturating_sub(1));
        let (placement, locator) =
            draw_panel(&mut frame, area, *visit, exam, slice, state, &lut, images)?;
        revealed_px += placement.revealed_px();
        if is_primary || (index == 0 && geometry.primary.is_none()) {
            geometry.primary = Some(placement);
            geometry.locator = locator;
        }
    }
    let mut measurements = Vec::new();
    if let Some(placement) = geometry.primary {
        let scale = draw::stroke(state.viewport.dpr);
        for caliper in &state.calipers {
            measurements.push(draw_caliper(
                &mut frame, &placement, caliper, &primary, scale,
            ));
        }
        let grid_spacing = primary.pixel_spacing_um.filter(|s| *s > 0.0);
        if let Some(spacing) = grid_spacing.filter(|_| state.etdrs && primary.kind != ExamKind::Oct)
        {
            let center = state.etdrs_center.unwrap_or([0.5, 0.5]);
            let (cx, cy) =
                placement.screen_at(center[0] * placement.image.0, center[1] * placement.image.1);
            let radius = |diameter_mm: f32| diameter_mm * 500.0 / spacing as f32 * placement.scale;
            for diameter_mm in [1.0f32, 3.0, 6.0] {
                draw::circle(
                    &mut frame,
                    placement.area,
                    cx,
                    cy,
                    radius(diameter_mm),
                    GRID,
                    scale,
                );
            }
            // The spokes at 45°, 135°, 225° and 315° from the central subfield outwards: the
            // superior, nasal, inferior and temporal sectors of the inner and outer rings (nine
            // subfields in all).
            for quarter in 0..4 {
                let angle = std::f32::consts::FRAC_PI_4 * (2 * quarter + 1) as f32;
                let (dx, dy) = (angle.cos(), angle.sin());
                let (inner, outer) = (radius(1.0), radius(6.0));
                draw::line(
                    &mut frame,
                    placement.area,
                    cx + dx * inner,
                    cy + dy * inner,
                    cx + dx * outer,
                    cy + dy * outer,
                    GRID,
                    scale,
                );
            }
        }
    }
    // The watermark strip, outside the diagnostic area.
    draw::fill(
        &mut frame,
        Rect {
            x: 0.0,
            y: (height - strip) as f32,
            w: width as f32,
            h: strip as f32,
        },
        STRIP,
    );
    let text_scale = ((strip as f32 - 2.0) / 8.0).floor().max(1.0) as u32;
    draw::text(
        &mut frame,
        4,
        height - strip + (strip - 8 * text_scale) / 2,
        &watermark::visible_text(mark),
        text_scale,
        STRIP_TEXT,
    );
    watermark::embed(width, height, &mut frame.rgb, mark);
    Ok(Rendered {
        frame,
        geometry,
        measurements,
        revealed_px,
    })
}

#[allow(clippy::too_many_arguments)]
fn draw_panel(
    frame: &mut Frame,
    area: Rect,
    visit: Visit,
    exam: &ExamShape,
    slice: u32,
    state: &ViewState,
    lut: &Lut,
    images: &mut dyn ImageProvider,
) -> Result<(Placement, Option<Locator>), ImageError> {
    let request = |part| ImageRequest {
        visit,
        exam: exam.id.clone(),
        part,
    };
    if exam.kind == ExamKind::Oct {
        let bscan = images.image(&request(Part::Slice(slice)))?;
        let side = (area.w.min(area.h) * 0.3).floor();
        let bscan_size = (bscan.width as f32, bscan.height as f32);
        // The en-face locator gets a band of its own, never drawn over the B-scan: below it
        // (B-scans are wide, so a pane usually has height to spare), or beside it when that
        // leaves the B-scan larger (a wide, short pane).
        let (main, inset) = if exam.enface {
            oct_split(area, bscan_size, side)
        } else {
            (area, area)
        };
        let placement = Placement::new(main, bscan_size, state.zoom, state.center);
        // B-scans are greyscale: red-free (the green channel) would change nothing.
        blit(frame, &placement, &bscan, lut, false);
        let mut locator = None;
        if exam.enface {
            let enface = images.image(&request(Part::Enface))?;
            draw::fill(frame, inset, BACKGROUND);
            let fit = Placement::new(
                inset,
                (enface.width as f32, enface.height as f32),
                Zoom::Fit,
                [0.5, 0.5],
            );
            blit(frame, &fit, &enface, lut, state.red_free);
            let drawn = Rect {
                x: fit.screen_at(0.0, 0.0).0,
                y: fit.screen_at(0.0, 0.0).1,
                w: fit.image.0 * fit.scale,
                h: fit.image.1 * fit.scale,
            };
            let y = drawn.y + (slice as f32 + 0.5) / exam.slices.max(1) as f32 * drawn.h;
            let stroke = draw::stroke(state.viewport.dpr);
            draw::line(frame, inset, drawn.x, y, drawn.x + drawn.w, y, LINE, stroke);
            locator = Some(Locator {
                area: drawn,
                slices: exam.slices,
            });
        }
        let label = format!(
            "{}  B-scan {}/{}",
            pane_label(exam, visit, state.layout),
            slice + 1,
            exam.slices
        );
        draw_pane_label(frame, area, &label, state.viewport.dpr);
        Ok((placement, locator))
    } else {
        let image = images.image(&request(Part::Main))?;
        let placement = Placement::new(
            area,
            (image.width as f32, image.height as f32),
            state.zoom,
            state.center,
        );
        blit(frame, &placement, &image, lut, state.red_free);
        draw_pane_label(
            frame,
            area,
            &pane_label(exam, visit, state.layout),
            state.viewport.dpr,
        );
        Ok((placement, None))
    }
}

/// What a pane shows, in its top-left corner: eye and exam, and the visit beside another
/// visit (`OD Fundus`, `OS OCT`, `OD Fundus  PRIOR VISIT`).
fn pane_label(exam: &ExamShape, visit: Visit, layout: Layout) -> String {
    let kind = match exam.kind {
        ExamKind::Fundus => "Fundus",
        ExamKind::RedFree => "Red-free",
        ExamKind::Oct => "OCT",
        ExamKind::VisualField => "Visual field",
        ExamKind::Report => "Report",
        ExamKind::Measurement => "Measurements",
    };
    let eye = exam.eye.map_or("", |eye| eye.as_str());
    let visit = match (layout, visit) {
        (Layout::Prior, Visit::Current) => "  CURRENT VISIT",
        (_, Visit::Prior) => "  PRIOR VISIT",
        _ => "",
    };
    format!("{eye} {kind}{visit}").trim_start().to_owned()
}

/// A pane's label on a dark plate, so it reads over a bright image.
fn draw_pane_label(frame: &mut Frame, area: Rect, label: &str, dpr: f32) {
    let scale = draw::stroke(dpr) as u32;
    let pad = 3 * scale;
    let width = (label.chars().count() as u32 * 8 * scale + 2 * pad) as f32;
    let plate = Rect {
        x: area.x + 4.0,
        y: area.y + 4.0,
        w: width.min(area.w - 8.0).max(0.0),
        h: (8 * scale + 2 * pad) as f32,
    };
    draw::fill(frame, plate, LABEL_PLATE);
    draw::text_in(
        frame,
        plate,
        plate.x as u32 + pad,
        plate.y as u32 + pad,
        label,
        scale,
        LABEL_TEXT,
    );
}

/// Splits an OCT pane into the B-scan's area and a square of `side` for the en-face locator:
/// a band below the B-scan or a column beside it, whichever shows the B-scan larger at fit.
fn oct_split(area: Rect, bscan: (f32, f32), side: f32) -> (Rect, Rect) {
    let band = side + 16.0;
    let below = Rect {
        h: (area.h - band).max(1.0),
        ..area
    };
    let beside = Rect {
        w: (area.w - band).max(1.0),
        ..area
    };
    let fit = |r: Rect| (r.w / bscan.0).min(r.h / bscan.1);
    if fit(below) >= fit(beside) {
        let inset = Rect {
            x: area.x + area.w - side - 8.0,
            y: area.y + area.h - side - 8.0,
            w: side,
            h: side,
        };
        (below, inset)
    } else {
        let inset = Rect {
            x: area.x + area.w - side - 8.0,
            y: area.y + 8.0,
            w: side,
            h: side,
        };
        (beside, inset)
    }
}

fn draw_caliper(
    frame: &mut Frame,
    placement: &Placement,
    caliper: &Caliper,
    exam: &ExamShape,
    stroke: f32,
) -> Option<f64> {
    let (w, h) = placement.image;
    let (ax, ay) = placement.screen_at(caliper.a[0] * w, caliper.a[1] * h);
    let (bx, by) = placement.screen_at(caliper.b[0] * w, caliper.b[1] * h);
    draw::line(frame, placement.area, ax, ay, bx, by, CALIPER, stroke);
    let (dx, dy) = (
        f64::from((caliper.b[0] - caliper.a[0]) * w),
        f64::from((caliper.b[1] - caliper.a[1]) * h),
    );
    let pixels = dx.hypot(dy);
    // Anisotropic on OCT B-scans: lateral µm across, axial µm down.
    let um = exam.length_um(dx, dy);
    let label = match um {
        Some(um) => format!("{um:.0} um"),
        None => format!("{pixels:.0} px"),
    };
    draw::text(
        frame,
        bx.max(0.0) as u32 + 4,
        by.max(0.0) as u32,
        &label,
        stroke as u32,
        CALIPER,
    );
    um
}

/// Intensity mapping for the frame.
struct Lut {
    table: Arc<[u8; 65536]>,
}

/// What a [`Lut`] depends on: window, level, gamma (as bits) and invert.
type LutKey = (u32, u32, u32, bool);

/// The last few tables made: building one takes 65536 `powf` (~1 ms), and the view changes
/// most often (slices, pan, zoom) keep the intensity mapping.
static LUT_CACHE: Mutex<Vec<(LutKey, Arc<[u8; 65536]>)>> = Mutex::new(Vec::new());
/// Tables kept in [`LUT_CACHE`] (64 KiB each).
const LUT_CACHE_ENTRIES: usize = 8;

impl Lut {
    fn new(state: &ViewState) -> Lut {
        let key = (
            state.window.to_bits(),
            state.level.to_bits(),
            state.gamma.to_bits(),
            state.invert,
        );
        let cached = LUT_CACHE.lock().ok().and_then(|cache| {
            cache
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, table)| Arc::clone(table))
        });
        if let Some(table) = cached {
            return Lut { table };
        }
        let table = Lut::build(state);
        if let Ok(mut cache) = LUT_CACHE.lock() {
            if cache.len() >= LUT_CACHE_ENTRIES {
                cache.remove(0);
            }
            cache.push((key, Arc::clone(&table)));
        }
        Lut { table }
    }

    fn build(state: &ViewState) -> Arc<[u8; 65536]> {
        let low = state.level - state.window / 2.0;
        let inverse_gamma = 1.0 / state.gamma;
        let mut table = Arc::new([0u8; 65536]);
        let entries = Arc::get_mut(&mut table).expect("just made");
        for (entry, v) in entries.iter_mut().zip(0..=u16::MAX) {
            *entry = {
                let x = f32::from(v) / 65535.0;
                let y = ((x - low) / state.window)
                    .clamp(0.0, 1.0)
                    .powf(inverse_gamma);
                let y = if state.invert { 1.0 - y } else { y };
                (y * 255.0).round() as u8
            };
        }
        table
    }

    #[inline]
    fn map(&self, sixteen: u16) -> u8 {
        self.table[sixteen as usize]
    }
}

/// `v.round().clamp(0.0, 65535.0) as u16`, exactly (half away from zero), without `roundf`:
/// on x86-64 without SSE4.1 `f32::round` is a libm call, which cost as much as the rest of
/// the bilinear inner loop. After the clamp `0 <= v <= 65535`, so its integer part `t` is exact
/// and so is `v - t` (Sterbenz), and rounding half away from zero is `t + (v - t >= 0.5)`.
/// (`t` is at most 65535, and `t = 65535` only when `v = 65535` exactly, so `t + up` fits.)
///
/// The clamp is written as two selects (`maxss`/`minss`); `f32::clamp` adds NaN checks and
/// branches. A NaN gives 0 either way.
#[inline]
fn round_u16(v: f32) -> u16 {
    let v = if v > 0.0 { v } else { 0.0 };
    let v = if v < 65535.0 { v } else { 65535.0 };
    let t = v as i32;
    let up = i32::from(v - t as f32 >= 0.5);
    (t + up) as u16
}

/// Draws `image` through `placement` into its area; pixels outside the image stay black.
fn blit(frame: &mut Frame, placement: &Placement, image: &DecodedImage, lut: &Lut, red_free: bool) {
    if placement.scale < 1.0 {
        resample::blit_area(frame, placement, image, lut, red_free);
    } else {
        blit_bilinear(frame, placement, image, lut, red_free);
    }
}

/// One bilinear tap along an axis: the two neighbouring source indices (clamped to the image),
/// the weight of the second and of the first (`1 - weight`).
#[derive(Clone, Copy)]
struct Tap {
    first: usize,
    second: usize,
    weight: f32,
    rest: f32,
}

impl Tap {
    /// The tap for source coordinate `at` (pixel centres at +0.5) in an axis of `size` pixels.
    fn new(at: f32, size: usize) -> Tap {
        let at = at - 0.5;
        let floor = at.floor();
        let last = size as i32 - 1;
        let i = floor as i32;
        let weight = at - floor;
        Tap {
            first: i.clamp(0, last) as usize,
            second: (i + 1).clamp(0, last) as usize,
            weight,
            rest: 1.0 - weight,
        }
    }
}

/// [`blit`] by bilinear sampling at each device pixel's centre (magnification, 1:1).
///
/// Each device pixel is `round(top × (1 − wy) + bottom × wy)` through the LUT, where `top` and
/// `bottom` are the horizontal mixes `a × (1 − wx) + b × wx` of the two source rows around it.
/// A horizontal mix depends only on the source row and the device column, so it is computed
/// once per source row (kept while the device rows between that row and the next use it)
/// instead of once per device row: at 1.6× magnification that halves the work, and the device
/// rows then only blend two precomputed rows (same operations in the same order, so the same
/// pixels).
fn blit_bilinear(
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
    let width = image.width as usize;
    let columns: Vec<Option<Tap>> = (x_start..x_end)
        .map(|px| {
            let ix = placement.origin.0 + (px as f32 + 0.5 - area.x) / placement.scale;
            (ix >= 0.0 && ix < iw).then(|| Tap::new(ix, width))
        })
        .collect();
    // The columns inside the image are one run (ix grows with px).
    let Some(inside_start) = columns.iter().position(Option::is_some) else {
        fill_rows(frame, x_start, x_end, y_start, y_end);
        return;
    };
    let taps: Vec<Tap> = columns[inside_start..]
        .iter()
        .map_while(|tap| *tap)
        .collect();
    let inside_end = inside_start + taps.len();
    let target = BilinearTarget {
        frame,
        placement,
        x: (x_start, x_end),
        y: (y_start, y_end),
        inside: (inside_start, inside_end),
        taps: &taps,
        height: image.height as usize,
        width,
        ih,
    };
    let grey = |v: [u16; 1]| {
        let v = lut.map(v[0]);
        [v, v, v]
    };
    match &image.pixels {
        Pixels::Gray8(p) => target.draw::<1>(|i, _| f32::from(p[i]) * 257.0, grey),
        Pixels::Gray16(p) => target.draw::<1>(|i, _| f32::from(p[i]), grey),
        Pixels::Rgb8(p) if red_free => {
            target.draw::<1>(|i, _| f32::from(p[i * 3 + 1]) * 257.0, grey)
        }
        Pixels::Rgb8(p) => target.draw::<3>(
            |i, ch| f32::from(p[i * 3 + ch]) * 257.0,
            |v| [lut.map(v[0]), lut.map(v[1]), lut.map(v[2])],
        ),
    }
}

/// Paints device rows `y_start..y_end`, columns `x_start..x_end` with the background.
fn fill_rows(frame: &mut Frame, x_start: u32, x_end: u32, y_start: u32, y_end: u32) {
    for py in y_start..y_end {
        let row_start = (py * frame.width + x_start) as usize * 3;
        let row_end = (py * frame.width + x_end) as usize * 3;
        fill_background(&mut frame.rgb[row_start..row_end]);
    }
}

/// Paints RGB pixels with the background (black: a memset).
fn fill_background(pixels: &mut [u8]) {
    const { assert!(BACKGROUND[0] == 0 && BACKGROUND[1] == 0 && BACKGROUND[2] == 0) };
    pixels.fill(0);
}

/// Where [`blit_bilinear`] draws and with which horizontal taps.
struct BilinearTarget<'a> {
    frame: &'a mut Frame,
    placement: &'a Placement,
    /// Device columns `x_start..x_end` of the area.
    x: (u32, u32),
    /// Device rows `y_start..y_end` of the area.
    y: (u32, u32),
    /// Columns (offsets from `x_start`) whose centre is inside the image.
    inside: (usize, usize),
    /// Their taps.
    taps: &'a [Tap],
    /// Source size in pixels.
    width: usize,
    height: usize,
    /// Image height as placed.
    ih: f32,
}

impl BilinearTarget<'_> {
    /// Draws `N` channels: `sample(pixel index, channel)` is a source sample scaled to 16 bits,
    /// `colour` turns the rounded 16-bit mix into the device pixel.
    fn draw<const N: usize>(
        self,
        sample: impl Fn(usize, usize) -> f32,
        colour: impl Fn([u16; N]) -> [u8; 3],
    ) {
        let BilinearTarget {
            frame,
            placement,
            x: (x_start, x_end),
            y: (y_start, y_end),
            inside: (inside_start, inside_end),
            taps,
            width,
            height,
            ih,
        } = self;
        let area = placement.area;
        let columns = (x_end - x_start) as usize;
        // Horizontal mixes of two source rows (row index, N values per inside column).
        let mut mixes: [(Option<usize>, Vec<f32>); 2] = [
            (None, vec![0.0; taps.len() * N]),
            (None, vec![0.0; taps.len() * N]),
        ];
        let mut blended = vec![0u16; taps.len() * N];
        let horizontal = |row: usize, out: &mut [f32]| {
            let base = row * width;
            for (values, x) in out.chunks_exact_mut(N).zip(taps) {
                for (k, value) in values.iter_mut().enumerate() {
                    let a = sample(base + x.first, k);
                    let b = sample(base + x.second, k);
                    *value = a * x.rest + b * x.weight;
                }
            }
        };
        for py in y_start..y_end {
            let iy = placement.origin.1 + (py as f32 + 0.5 - area.y) / placement.scale;
            let row_start = (py * frame.width + x_start) as usize * 3;
            let row = &mut frame.rgb[row_start..row_start + columns * 3];
            if iy < 0.0 || iy >= ih {
                fill_background(row);
                continue;
            }
            let y = Tap::new(iy, height);
            // Make sure both source rows are mixed, replacing a row no longer needed.
            for wanted in [y.first, y.second] {
                if mixes.iter().any(|(r, _)| *r == Some(wanted)) {
                    continue;
                }
                let other = if wanted == y.first { y.second } else { y.first };
                let slot = if mixes[0].0 == Some(other) { 1 } else { 0 };
                horizontal(wanted, &mut mixes[slot].1);
                mixes[slot].0 = Some(wanted);
            }
            let find = |r: usize| if mixes[0].0 == Some(r) { 0 } else { 1 };
            let (top, bottom) = (&mixes[find(y.first)].1, &mixes[find(y.second)].1);
            let (before, rest) = row.split_at_mut(inside_start * 3);
            let (drawn, after) = rest.split_at_mut((inside_end - inside_start) * 3);
            fill_background(before);
            fill_background(after);
            // The blend in one pass (the compiler vectorises it), the table lookups in another.
            for ((value, t), b) in blended.iter_mut().zip(top).zip(bottom) {
                *value = round_u16(t * y.rest + b * y.weight);
            }
            for (out, v) in drawn.chunks_exact_mut(3).zip(blended.chunks_exact(N)) {
                out.copy_from_slice(&colour(std::array::from_fn(|k| v[k])));
            }
        }
    }
}

/// Maps a pointer gesture (device pixels) on the last frame to a view change.
#[allow(clippy::too_many_arguments)]
pub fn pointer(
    state: &ViewState,
    _shape: &CaseShape,
    geometry: &FrameGeometry,
    action: PointerAction,
    x: f32,
    y: f32,
    dx: f32,
    dy: f32,
) -> Result<ViewChange, ViewError> {
    if ![x, y, dx, dy].iter().all(|v| v.is_finite()) {
        return Err(ViewError::OutOfRange(
            "pointer coordinates must be finite".into(),
        ));
    }
    if let Some(locator) = geometry.locator.filter(|l| l.area.contains(x, y)) {
        let slice = ((y - locator.area.y) / locator.area.h * locator.slices as f32) as u32;
        return Ok(ViewChange {
            slice: Some(slice.min(locator.slices.saturating_sub(1))),
            ..ViewChange::default()
        });
    }
    let placement = geometry
        .primary
        .filter(|p| p.area.contains(x, y))
        .ok_or_else(|| ViewError::NotAvailable("the pointer is not on an image".into()))?;
    let normalized = |(ix, iy): (f32, f32)| {
        [
            (ix / placement.image.0).clamp(0.0, 1.0),
            (iy / placement.image.1).clamp(0.0, 1.0),
        ]
    };
    let center_now = {
        let c = placement.image_at(
            placement.area.x + placement.area.w / 2.0,
            placement.area.y + placement.area.h / 2.0,
        );
        [c.0 / placement.image.0, c.1 / placement.image.1]
    };
    Ok(match action {
        PointerAction::Click => ViewChange::default(),
        PointerAction::Pan => ViewChange {
            zoom: Some(Zoom::Scale(placement.scale)),
            center: Some([
                center_now[0] - dx / placement.scale / placement.image.0,
                center_now[1] - dy / placement.scale / placement.image.1,
            ]),
            ..ViewChange::default()
        },
        PointerAction::WindowLevel => ViewChange {
            window: Some((state.window + dx * 0.002).clamp(0.01, 1.0)),
            level: Some((state.level - dy * 0.002).clamp(0.0, 1.0)),
            ..ViewChange::default()
        },
        PointerAction::Measure => {
            let mut calipers = state.calipers.clone();
            if calipers.len() >= readroom_domain::view::MAX_CALIPERS {
                calipers.remove(0);
            }
            calipers.push(Caliper {
                a: normalized(placement.image_at(x, y)),
                b: normalized(placement.image_at(x + dx, y + dy)),
            });
            ViewChange {
                calipers: Some(calipers),
                ..ViewChange::default()
            }
        }
        PointerAction::PlaceGrid => ViewChange {
            etdrs_center: Some(normalized(placement.image_at(x, y))),
            etdrs: Some(true),
            ..ViewChange::default()
        },
        PointerAction::Zoom => {
            let factor = if dy < 0.0 { 1.25 } else { 0.8 };
            let scale = (placement.scale * factor).clamp(
                readroom_domain::view::ZOOM_RANGE.0,
                readroom_domain::view::ZOOM_RANGE.1,
            );
            // Keep the image point under the pointer where it is.
            let (ix, iy) = placement.image_at(x, y);
            let origin = (
                ix - (x - placement.area.x) / scale,
                iy - (y - placement.area.y) / scale,
            );
            let cx = origin.0 + placement.area.w / 2.0 / scale;
            let cy = origin.1 + placement.area.h / 2.0 / scale;
            ViewChange {
                zoom: Some(Zoom::Scale(scale)),
                center: Some([
                    (cx / placement.image.0).clamp(0.0, 1.0),
                    (cy / placement.image.1).clamp(0.0, 1.0),
                ]),
                ..ViewChange::default()
            }
        }
    })
}

/// The scale "fit" means for the primary image of the last frame (for relative zoom).
pub fn fit_scale(geometry: &FrameGeometry) -> Option<f32> {
    geometry.primary.map(|p| p.fit_scale())
}

#[cfg(test)]
mod tests;
