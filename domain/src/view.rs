//! What a grader is looking at: the view state the worker renders and the browser changes.
//!
//! The state lives in the worker (the browser never holds image geometry); the browser sends
//! [`ViewChange`]s (absolute or relative) and pointer gestures in device pixels, and the worker
//! answers with the whole [`ViewState`] after each change. Everything here is pure: validation of
//! a change against the case's [`CaseShape`] (which exams exist, how many B-scans) needs no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{ExamKind, Eye, MeasurementValue};

/// Smallest and largest viewport edge in device pixels.
pub const VIEWPORT_MIN: u32 = 64;
/// Largest viewport width in device pixels (4K UHD).
pub const VIEWPORT_MAX_WIDTH: u32 = 3840;
/// Largest viewport height in device pixels (4K UHD).
pub const VIEWPORT_MAX_HEIGHT: u32 = 2160;
/// Smallest and largest zoom (device pixels per image pixel).
pub const ZOOM_RANGE: (f32, f32) = (0.02, 32.0);
/// Smallest and largest gamma.
pub const GAMMA_RANGE: (f32, f32) = (0.2, 5.0);
/// Most calipers on a view.
pub const MAX_CALIPERS: usize = 16;

/// How the screen is divided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One exam fills the viewport.
    #[default]
    Single,
    /// Right eye (OD) on the viewer's left, left eye (OS) on the right, same kind of exam,
    /// linked zoom and position.
    BothEyes,
    /// This visit beside the same exam of the prior visit, linked zoom and position.
    Prior,
}

/// The zoom: fit the panel, or a fixed scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(untagged)]
pub enum Zoom {
    /// `"fit"`: the whole image fits the panel.
    #[default]
    #[serde(with = "fit_literal")]
    Fit,
    /// Device pixels per image pixel (`1.0` = 1:1, `4.0` = each image pixel is 4×4 device pixels).
    Scale(f32),
}

mod fit_literal {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("fit")
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == "fit" {
            Ok(())
        } else {
            Err(D::Error::custom("zoom must be \"fit\" or a number"))
        }
    }
}

/// The browser's drawing surface, in device pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Viewport {
    /// Width in device pixels (even, [`VIEWPORT_MIN`]..=[`VIEWPORT_MAX_WIDTH`]).
    pub width: u32,
    /// Height in device pixels (even, [`VIEWPORT_MIN`]..=[`VIEWPORT_MAX_HEIGHT`]).
    pub height: u32,
    /// Device pixel ratio (0.5..=4), used to size text and overlay strokes.
    pub dpr: f32,
}

/// A measurement line between two points, in normalized image coordinates (0..1 each axis) of
/// the primary exam's image (the fundus photo, or the B-scan of an OCT exam).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caliper {
    /// One end `[x, y]`.
    pub a: [f32; 2],
    /// The other end `[x, y]`.
    pub b: [f32; 2],
}

/// Everything that determines a rendered frame (with the case's images and the watermark).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewState {
    /// Screen layout.
    pub layout: Layout,
    /// The primary exam's manifest id. In [`Layout::BothEyes`] the fellow eye's exam of the same
    /// kind is shown beside it; in [`Layout::Prior`] the same exam id of the prior visit.
    pub exam: String,
    /// OCT B-scan index (0-based) of the primary exam; ignored for other kinds.
    pub slice: u32,
    /// Zoom.
    pub zoom: Zoom,
    /// Centre of the panel in normalized image coordinates `[x, y]` (0..1), the pan position.
    pub center: [f32; 2],
    /// Intensity window width, normalized (0.01..=1; 1 = full range).
    pub window: f32,
    /// Intensity window centre, normalized (0..=1; 0.5 = mid grey).
    pub level: f32,
    /// Gamma applied after window/level (0.2..=5; 1 = linear).
    pub gamma: f32,
    /// Red-free: show the green channel as grey.
    pub red_free: bool,
    /// Invert intensities.
    pub invert: bool,
    /// Draw the ETDRS grid (fundus and en-face).
    pub etdrs: bool,
    /// Centre of the ETDRS grid (the fovea) in normalized image coordinates; image centre if absent.
    pub etdrs_center: Option<[f32; 2]>,
    /// Measurement lines on the primary exam.
    pub calipers: Vec<Caliper>,
    /// The drawing surface.
    pub viewport: Viewport,
}

/// A change requested by the browser. Absent fields stay as they are; `slice_delta` and
/// `zoom_by` are relative so that repeated key presses compose without racing the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewChange {
    /// New layout.
    pub layout: Option<Layout>,
    /// New primary exam (resets slice to the middle B-scan, zoom to fit and the centre).
    pub exam: Option<String>,
    /// Absolute B-scan index.
    pub slice: Option<u32>,
    /// Relative B-scan step (clamped at the ends of the volume).
    pub slice_delta: Option<i32>,
    /// Absolute zoom.
    pub zoom: Option<Zoom>,
    /// Multiply the current zoom (from fit, relative to the fit scale) by this factor (0.1..=10).
    pub zoom_by: Option<f32>,
    /// Absolute centre.
    pub center: Option<[f32; 2]>,
    /// Window width.
    pub window: Option<f32>,
    /// Window centre.
    pub level: Option<f32>,
    /// Gamma.
    pub gamma: Option<f32>,
    /// Red-free on/off.
    pub red_free: Option<bool>,
    /// Invert on/off.
    pub invert: Option<bool>,
    /// ETDRS grid on/off.
    pub etdrs: Option<bool>,
    /// ETDRS grid centre.
    pub etdrs_center: Option<[f32; 2]>,
    /// Replace all calipers.
    pub calipers: Option<Vec<Caliper>>,
    /// New viewport (window resized or moved to another screen).
    pub viewport: Option<Viewport>,
    /// Back to the defaults of the current exam (fit, centred, full window, gamma 1, no filters).
    pub reset: Option<bool>,
}

/// One exam of a case as the view needs it (from the manifest plus what decoding learned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExamShape {
    /// Manifest id.
    pub id: String,
    /// Kind.
    pub kind: ExamKind,
    /// Laterality.
    pub eye: Option<Eye>,
    /// Number of B-scans (OCT), 1 otherwise.
    pub slices: u32,
    /// Whether the exam has an en-face / SLO image.
    pub enface: bool,
    /// Micrometres per pixel of the main image, if known: horizontally (across columns), and
    /// also vertically unless `axial_spacing_um` says otherwise. For an OCT B-scan this is the
    /// lateral pixel size.
    pub pixel_spacing_um: Option<f64>,
    /// Micrometres per pixel row of an OCT B-scan (the axial, depth, pixel size), if known.
    /// B-scan pixels are not square (typically ~4 µm axial against ~12 µm lateral), so vertical
    /// distances on a B-scan use this, never `pixel_spacing_um`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axial_spacing_um: Option<f64>,
}

impl ExamShape {
    /// Micrometres per pixel of the main image as `(horizontal, vertical)`, each if known.
    /// OCT B-scans are anisotropic: lateral across, axial down; the lateral size is never
    /// assumed for depth. Other images have square pixels.
    pub fn spacing_um(&self) -> (Option<f64>, Option<f64>) {
        let valid = |s: Option<f64>| s.filter(|s| s.is_finite() && *s > 0.0);
        let x = valid(self.pixel_spacing_um);
        if self.kind == ExamKind::Oct {
            (x, valid(self.axial_spacing_um))
        } else {
            (x, x)
        }
    }

    /// The physical length in µm of a segment of `dx` × `dy` image pixels, or `None` when the
    /// spacing it needs is unknown (a purely horizontal or vertical segment needs only that
    /// direction's spacing).
    pub fn length_um(&self, dx: f64, dy: f64) -> Option<f64> {
        let (sx, sy) = self.spacing_um();
        let x = if dx == 0.0 {
            Some(0.0)
        } else {
            sx.map(|s| dx * s)
        };
        let y = if dy == 0.0 {
            Some(0.0)
        } else {
            sy.map(|s| dy * s)
        };
        Some(x?.hypot(y?))
    }
}

/// What of a case can be shown: the exams of this visit and, if linked, of the prior visit,
/// and the measurements that come with each (visual acuity, IOP, biometry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CaseShape {
    /// Image exams of this visit, in manifest order.
    pub exams: Vec<ExamShape>,
    /// Image exams of the prior visit (empty if none).
    pub prior: Vec<ExamShape>,
    /// This visit's measurement values keyed as in the manifest (`va_od_logmar`,
    /// `iop_os_mmhg`…), over all its measurement exams. Decrypted by the worker like the
    /// images: the API tier never holds them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measurements: BTreeMap<String, MeasurementValue>,
    /// The prior visit's measurement values (empty if none or no prior visit).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prior_measurements: BTreeMap<String, MeasurementValue>,
}

/// Why a view change was refused (the state is left as it was).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ViewError {
    /// A value outside its allowed range; the message names the field and the range.
    #[error("{0}")]
    OutOfRange(String),
    /// An exam, part or layout this case does not have.
    #[error("{0}")]
    NotAvailable(String),
}

impl ViewError {
    /// The protocol error code for this refusal.
    pub fn code(&self) -> crate::protocol::ErrorCode {
        match self {
            ViewError::OutOfRange(_) => crate::protocol::ErrorCode::OutOfRange,
            ViewError::NotAvailable(_) => crate::protocol::ErrorCode::NotAvailable,
        }
    }
}

fn in_range(field: &str, value: f32, (low, high): (f32, f32)) -> Result<(), ViewError> {
    if value.is_finite() && (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(ViewError::OutOfRange(format!(
            "{field} must be between {low} and {high}"
        )))
    }
}

fn point_in_unit(field: &str, point: [f32; 2]) -> Result<(), ViewError> {
    in_range(field, point[0], (0.0, 1.0))?;
    in_range(field, point[1], (0.0, 1.0))
}

impl Viewport {
    /// Checks the size (even, within bounds) and the device pixel ratio.
    pub fn validate(&self) -> Result<(), ViewError> {
        if !(VIEWPORT_MIN..=VIEWPORT_MAX_WIDTH).contains(&self.width)
            || !self.width.is_multiple_of(2)
        {
            return Err(ViewError::OutOfRange(format!(
                "viewport width must be even and between {VIEWPORT_MIN} and {VIEWPORT_MAX_WIDTH} device pixels"
            )));
        }
        if !(VIEWPORT_MIN..=VIEWPORT_MAX_HEIGHT).contains(&self.height)
            || !self.height.is_multiple_of(2)
        {
            return Err(ViewError::OutOfRange(format!(
                "viewport height must be even and between {VIEWPORT_MIN} and {VIEWPORT_MAX_HEIGHT} device pixels"
            )));
        }
        in_range("viewport dpr", self.dpr, (0.5, 4.0))
    }
}

impl CaseShape {
    /// The exam of this visit with manifest id `id`.
    pub fn exam(&self, id: &str) -> Option<&ExamShape> {
        self.exams.iter().find(|exam| exam.id == id)
    }

    /// The exam of the same kind for the other eye (for the OD|OS layout).
    pub fn fellow(&self, id: &str) -> Option<&ExamShape> {
        let exam = self.exam(id)?;
        let other = match exam.eye? {
            Eye::Od => Eye::Os,
            Eye::Os => Eye::Od,
            Eye::Ou => return None,
        };
        self.exams
            .iter()
            .find(|e| e.kind == exam.kind && e.eye == Some(other))
    }

    /// The prior visit's exam with the same id.
    pub fn prior_of(&self, id: &str) -> Option<&ExamShape> {
        self.prior.iter().find(|exam| exam.id == id)
    }
}

impl ViewState {
    /// The first view of a case: its first image exam, middle B-scan, fit, full window.
    pub fn initial(shape: &CaseShape, viewport: Viewport) -> Option<ViewState> {
        let exam = shape.exams.first()?;
        Some(ViewState {
            layout: Layout::Single,
            exam: exam.id.clone(),
            slice: exam.slices / 2,
            zoom: Zoom::Fit,
            center: [0.5, 0.5],
            window: 1.0,
            level: 0.5,
            gamma: 1.0,
            red_free: false,
            invert: false,
            etdrs: false,
            etdrs_center: None,
            calipers: Vec::new(),
            viewport,
        })
    }

    /// Applies `change` after validating all of it against `shape`; on refusal nothing changes.
    /// A relative zoom from "fit" starts from a scale of 1 (see [`ViewState::apply_with_fit`]).
    pub fn apply(&mut self, change: &ViewChange, shape: &CaseShape) -> Result<(), ViewError> {
        self.apply_with_fit(change, shape, 1.0)
    }

    /// Like [`ViewState::apply`], with the scale "fit" currently means (known to the renderer),
    /// so that `zoom_by` from fit zooms relative to what is on screen.
    pub fn apply_with_fit(
        &mut self,
        change: &ViewChange,
        shape: &CaseShape,
        fit_scale: f32,
    ) -> Result<(), ViewError> {
        let mut next = self.clone();
        if change.reset == Some(true) {
            let viewport = next.viewport;
            let exam = next.exam.clone();
            let layout = next.layout;
            next = ViewState::initial(shape, viewport)
                .ok_or_else(|| ViewError::NotAvailable("the case has no image".into()))?;
            next.exam = exam;
            next.layout = layout;
            if let Some(e) = shape.exam(&next.exam) {
                next.slice = e.slices / 2;
            }
        }
        if let Some(exam) = &change.exam {
            let found = shape.exam(exam).ok_or_else(|| {
                ViewError::NotAvailable(format!(
                    "no exam {:?} in this case",
                    exam.chars().take(64).collect::<String>()
                ))
            })?;
            next.exam = found.id.clone();
            next.slice = found.slices / 2;
            next.zoom = Zoom::Fit;
            next.center = [0.5, 0.5];
            next.calipers.clear();
        }
        let exam = shape
            .exam(&next.exam)
            .ok_or_else(|| ViewError::NotAvailable("the current exam is gone".into()))?;
        if let Some(layout) = change.layout {
            match layout {
                Layout::Single => {}
                Layout::BothEyes if shape.fellow(&next.exam).is_none() => {
                    return Err(ViewError::NotAvailable(
                        "both_eyes needs the same kind of exam for the other eye".into(),
                    ));
                }
                Layout::Prior if shape.prior_of(&next.exam).is_none() => {
                    return Err(ViewError::NotAvailable(
                        "prior needs the same exam in a prior visit".into(),
                    ));
                }
                _ => {}
            }
            next.layout = layout;
        }
        if let Some(slice) = change.slice {
            if slice >= exam.slices {
                return Err(ViewError::OutOfRange(format!(
                    "slice must be between 0 and {}",
                    exam.slices.saturating_sub(1)
                )));
            }
            next.slice = slice;
        }
        if let Some(delta) = change.slice_delta {
            let target = i64::from(next.slice) + i64::from(delta);
            next.slice = target.clamp(0, i64::from(exam.slices.saturating_sub(1))) as u32;
        }
        if let Some(zoom) = change.zoom {
            if let Zoom::Scale(scale) = zoom {
                in_range("zoom", scale, ZOOM_RANGE)?;
            }
            next.zoom = zoom;
        }
        if let Some(factor) = change.zoom_by {
            in_range("zoom_by", factor, (0.1, 10.0))?;
            let current = match next.zoom {
                Zoom::Fit => fit_scale,
                Zoom::Scale(scale) => scale,
            };
            next.zoom = Zoom::Scale((current * factor).clamp(ZOOM_RANGE.0, ZOOM_RANGE.1));
        }
        if let Some(center) = change.center {
            in_range("center", center[0], (-1.0, 2.0))?;
            in_range("center", center[1], (-1.0, 2.0))?;
            next.center = [center[0].clamp(0.0, 1.0), center[1].clamp(0.0, 1.0)];
        }
        if let Some(window) = change.window {
            in_range("window", window, (0.01, 1.0))?;
            next.window = window;
        }
        if let Some(level) = change.level {
            in_range("level", level, (0.0, 1.0))?;
            next.level = level;
        }
        if let Some(gamma) = change.gamma {
            in_range("gamma", gamma, GAMMA_RANGE)?;
            next.gamma = gamma;
        }
        if let Some(red_free) = change.red_free {
            next.red_free = red_free;
        }
        if let Some(invert) = change.invert {
            next.invert = invert;
        }
        if let Some(etdrs) = change.etdrs {
            next.etdrs = etdrs;
        }
        if let Some(center) = change.etdrs_center {
            point_in_unit("etdrs_center", center)?;
            next.etdrs_center = Some(center);
        }
        if let Some(calipers) = &change.calipers {
            if calipers.len() > MAX_CALIPERS {
                return Err(ViewError::OutOfRange(format!(
                    "at most {MAX_CALIPERS} calipers"
                )));
            }
            for caliper in calipers {
                point_in_unit("caliper", caliper.a)?;
                point_in_unit("caliper", caliper.b)?;
            }
            next.calipers = calipers.clone();
        }
        if let Some(viewport) = change.viewport {
            viewport.validate()?;
            next.viewport = viewport;
        }
        *self = next;
        Ok(())
    }
}
