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
            for diameter_mm in [1.0f32, 3.0, 6.0] {
                let radius = diameter_mm * 500.0 / spacing as f32 * placement.scale;
                draw::circle(&mut frame, placement.area, cx, cy, radius, GRID, scale);
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
        let main = Rect { w: area.w, ..area };
        let placement = Placement::new(
            main,
            (bscan.width as f32, bscan.height as f32),
            state.zoom,
            state.center,
        );
        blit(frame, &placement, &bscan, lut, state.red_free);
        let mut locator = None;
        if exam.enface {
            let enface = images.image(&request(Part::Enface))?;
            let inset = Rect {
                x: area.x + area.w - side - 8.0,
                y: area.y + 8.0,
                w: side,
                h: side,
            };
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
        let label = format!("B-scan {}/{}", slice + 1, exam.slices);
        let scale = draw::stroke(state.viewport.dpr) as u32;
        draw::text(
            frame,
            area.x as u32 + 6,
            area.y as u32 + 6,
            &label,
            scale,
            STRIP_TEXT,
        );
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
        Ok((placement, None))
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
    let pixels = f64::from((caliper.b[0] - caliper.a[0]) * w)
        .hypot(f64::from((caliper.b[1] - caliper.a[1]) * h));
    let um = exam.pixel_spacing_um.map(|s| pixels * s);
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
    table: Vec<u8>,
}

impl Lut {
    fn new(state: &ViewState) -> Lut {
        let low = state.level - state.window / 2.0;
        let inverse_gamma = 1.0 / state.gamma;
        let table = (0..=u16::MAX)
            .map(|v| {
                let x = f32::from(v) / 65535.0;
                let y = ((x - low) / state.window)
                    .clamp(0.0, 1.0)
                    .powf(inverse_gamma);
                let y = if state.invert { 1.0 - y } else { y };
                (y * 255.0).round() as u8
            })
            .collect();
        Lut { table }
    }

    fn map(&self, sixteen: u16) -> u8 {
        self.table[sixteen as usize]
    }
}

/// Draws `image` through `placement` into its area; pixels outside the image stay black.
fn blit(frame: &mut Frame, placement: &Placement, image: &DecodedImage, lut: &Lut, red_free: bool) {
    if placement.scale < 1.0 {
        resample::blit_area(frame, placement, image, lut, red_free);
    } else {
        blit_bilinear(frame, placement, image, lut, red_free);
    }
}

/// One bilinear tap along an axis: the two neighbouring source indices (clamped to the image)
/// and the weight of the second.
#[derive(Clone, Copy)]
struct Tap {
    first: usize,
    second: usize,
    weight: f32,
}

impl Tap {
    /// The tap for source coordinate `at` (pixel centres at +0.5) in an axis of `size` pixels.
    fn new(at: f32, size: usize) -> Tap {
        let at = at - 0.5;
        let floor = at.floor();
        let last = size as i32 - 1;
        let i = floor as i32;
        Tap {
            first: i.clamp(0, last) as usize,
            second: (i + 1).clamp(0, last) as usize,
            weight: at - floor,
        }
    }
}

/// Bilinear mix of four 16-bit-scaled samples, rounded to 16 bits.
#[inline]
fn mix(a: f32, b: f32, c: f32, d: f32, x: Tap, y: Tap) -> u16 {
    let top = a * (1.0 - x.weight) + b * x.weight;
    let bottom = c * (1.0 - x.weight) + d * x.weight;
    (top * (1.0 - y.weight) + bottom * y.weight)
        .round()
        .clamp(0.0, 65535.0) as u16
}

/// [`blit`] by bilinear sampling at each device pixel's centre (magnification, 1:1).
///
/// The horizontal taps are the same for every row and the vertical tap for every pixel of a
/// row, so both are computed once; the inner loop only reads four samples per channel.
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
    let height = image.height as usize;
    let columns: Vec<Option<Tap>> = (x_start..x_end)
        .map(|px| {
            let ix = placement.origin.0 + (px as f32 + 0.5 - area.x) / placement.scale;
            (ix >= 0.0 && ix < iw).then(|| Tap::new(ix, width))
        })
        .collect();
    for py in y_start..y_end {
        let iy = placement.origin.1 + (py as f32 + 0.5 - area.y) / placement.scale;
        let row_start = (py * frame.width + x_start) as usize * 3;
        let row = &mut frame.rgb[row_start..row_start + columns.len() * 3];
        if iy < 0.0 || iy >= ih {
            for out in row.chunks_exact_mut(3) {
                out.copy_from_slice(&BACKGROUND);
            }
            continue;
        }
        let y = Tap::new(iy, height);
        let (r0, r1) = (y.first * width, y.second * width);
        for (out, column) in row.chunks_exact_mut(3).zip(&columns) {
            let Some(x) = *column else {
                out.copy_from_slice(&BACKGROUND);
                continue;
            };
            let (a, b, c, d) = (r0 + x.first, r0 + x.second, r1 + x.first, r1 + x.second);
            match &image.pixels {
                Pixels::Gray8(p) => {
                    let g = |i: usize| f32::from(p[i]) * 257.0;
                    let v = lut.map(mix(g(a), g(b), g(c), g(d), x, y));
                    out.copy_from_slice(&[v, v, v]);
                }
                Pixels::Gray16(p) => {
                    let g = |i: usize| f32::from(p[i]);
                    let v = lut.map(mix(g(a), g(b), g(c), g(d), x, y));
                    out.copy_from_slice(&[v, v, v]);
                }
                Pixels::Rgb8(p) => {
                    let g = |i: usize, ch: usize| f32::from(p[i * 3 + ch]) * 257.0;
                    let channel =
                        |ch: usize| lut.map(mix(g(a, ch), g(b, ch), g(c, ch), g(d, ch), x, y));
                    if red_free {
                        let v = channel(1);
                        out.copy_from_slice(&[v, v, v]);
                    } else {
                        out.copy_from_slice(&[channel(0), channel(1), channel(2)]);
                    }
                }
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
