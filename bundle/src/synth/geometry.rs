//! Retina coordinates, the anatomy of one simulated eye, and the mapping from retina to image pixels.
//!
//! All anatomy is modelled in millimetres in the right-eye frame: the fovea is the origin, `x` grows
//! nasally (towards the optic disc) and `y` grows inferiorly.
//! An [`ImageFrame`] places that frame into an image: a left eye is the mirror image, so its disc
//! lands on the left.
//! Image coordinates put pixel centres on integers: pixel `(column, row)` is at `(column, row)`.

use readroom_domain::manifest::Eye;

use super::rng::{SynthRng, normal, uniform};

/// Diameter of the retina seen by a 45° fundus camera, in millimetres.
pub const FUNDUS_FIELD_MM: f64 = 13.0;
/// Radius of the circular field of view as a fraction of the fundus image size.
pub const FUNDUS_FOV_FRACTION: f64 = 0.47;
/// Width and height of the en-face (SLO) image, in pixels.
pub const SLO_SIZE: u32 = 512;
/// Side of the retina shown by the en-face (SLO) image, in millimetres (about 30°).
pub const SLO_FIELD_MM: f64 = 8.8;
/// Side of the square OCT scan area centred on the fovea, in millimetres.
pub const OCT_SCAN_MM: f64 = 6.0;

/// A point on the retina, in millimetres, in the right-eye frame described in the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetinaPoint {
    /// Nasal (positive) or temporal (negative) distance from the fovea.
    pub x: f64,
    /// Inferior (positive) or superior (negative) distance from the fovea.
    pub y: f64,
}

impl RetinaPoint {
    /// A point at `(x, y)` millimetres.
    pub fn new(x: f64, y: f64) -> RetinaPoint {
        RetinaPoint { x, y }
    }

    /// Euclidean distance to `other`, in millimetres.
    pub fn distance(self, other: RetinaPoint) -> f64 {
        let dx = self.x - other.x;
        let dy = self.y - other.y;
        (dx * dx + dy * dy).sqrt()
    }

    /// Distance from the fovea, in millimetres.
    pub fn eccentricity(self) -> f64 {
        (self.x * self.x + self.y * self.y).sqrt()
    }
}

/// The fixed anatomy of one simulated eye.
#[derive(Debug, Clone, PartialEq)]
pub struct Anatomy {
    /// Centre of the optic disc.
    pub disc_centre: RetinaPoint,
    /// Horizontal radius of the optic disc, in millimetres.
    pub disc_radius_x: f64,
    /// Vertical radius of the optic disc, in millimetres.
    pub disc_radius_y: f64,
    /// Vertical cup-to-disc ratio (ground truth for glaucoma grading).
    pub vcdr: f64,
    /// Horizontal cup-to-disc ratio; a little smaller than the vertical one, as in most eyes.
    pub hcdr: f64,
    /// Fundus pigmentation from 0 (blond) to 1 (dark); darkens and browns the background.
    pub pigmentation: f64,
    /// Strength of the visible choroidal pattern (tessellation), from 0 to 1.
    pub tessellation: f64,
    /// Size of the temporal peripapillary atrophy crescent, as a fraction of the disc radius.
    pub peripapillary_atrophy: f64,
}

impl Anatomy {
    /// Draws a plausible eye with the given vertical cup-to-disc ratio.
    pub fn generate(rng: &mut SynthRng, vcdr: f64) -> Anatomy {
        let disc_distance = uniform(rng, 4.1, 4.7);
        let disc_drop = uniform(rng, 0.25, 0.6);
        let disc_radius_y = uniform(rng, 0.78, 0.92);
        let vcdr = vcdr.clamp(0.05, 0.95);
        Anatomy {
            disc_centre: RetinaPoint::new(disc_distance, -disc_drop),
            disc_radius_x: disc_radius_y * uniform(rng, 0.86, 0.96),
            disc_radius_y,
            vcdr,
            hcdr: vcdr * uniform(rng, 0.85, 0.97),
            pigmentation: (0.45 + 0.2 * normal(rng)).clamp(0.1, 0.9),
            tessellation: uniform(rng, 0.0, 0.4),
            peripapillary_atrophy: if uniform(rng, 0.0, 1.0) < 0.4 {
                uniform(rng, 0.15, 0.4)
            } else {
                0.0
            },
        }
    }

    /// Elliptical distance from the disc centre: below 1 on the disc, exactly 1 at its margin.
    pub fn disc_distance(&self, point: RetinaPoint) -> f64 {
        let dx = (point.x - self.disc_centre.x) / self.disc_radius_x;
        let dy = (point.y - self.disc_centre.y) / self.disc_radius_y;
        (dx * dx + dy * dy).sqrt()
    }

    /// Centre of the optic cup (slightly temporal in the disc, as it usually is).
    pub fn cup_point(&self) -> RetinaPoint {
        RetinaPoint::new(
            self.disc_centre.x - 0.08 * self.disc_radius_x,
            self.disc_centre.y,
        )
    }

    /// Elliptical distance from the cup centre: below 1 inside the cup.
    pub fn cup_distance(&self, point: RetinaPoint) -> f64 {
        let centre_x = self.cup_point().x;
        let dx = (point.x - centre_x) / (self.disc_radius_x * self.hcdr);
        let dy = (point.y - self.disc_centre.y) / (self.disc_radius_y * self.vcdr);
        (dx * dx + dy * dy).sqrt()
    }
}

/// How retina millimetres map onto the pixels of one image of one eye.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFrame {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// The retina point shown at the image centre.
    pub centre: RetinaPoint,
    /// Millimetres per pixel (square pixels).
    pub mm_per_px: f64,
    /// Whether the image is mirrored (left eyes).
    pub mirrored: bool,
}

impl ImageFrame {
    /// A frame of `width × height` pixels centred on `centre` at `mm_per_px`, mirrored for `OS`.
    pub fn new(
        width: u32,
        height: u32,
        centre: RetinaPoint,
        mm_per_px: f64,
        eye: Eye,
    ) -> ImageFrame {
        ImageFrame {
            width,
            height,
            centre,
            mm_per_px,
            mirrored: eye == Eye::Os,
        }
    }

    /// The frame of a 45° colour fundus photograph of `size × size` pixels.
    pub fn fundus(size: u32, anatomy: &Anatomy, eye: Eye) -> ImageFrame {
        let fov_radius_px = FUNDUS_FOV_FRACTION * f64::from(size);
        let mm_per_px = FUNDUS_FIELD_MM / (2.0 * fov_radius_px);
        // Centred between fovea and disc, closer to the fovea, like a posterior-pole photograph.
        let centre = RetinaPoint::new(0.2 * anatomy.disc_centre.x, 0.4 * anatomy.disc_centre.y);
        ImageFrame::new(size, size, centre, mm_per_px, eye)
    }

    /// The frame of the 30° en-face (SLO) image acquired with an OCT volume centred on the fovea.
    pub fn slo(eye: Eye) -> ImageFrame {
        let mm_per_px = SLO_FIELD_MM / f64::from(SLO_SIZE);
        ImageFrame::new(
            SLO_SIZE,
            SLO_SIZE,
            RetinaPoint::new(1.0, 0.0),
            mm_per_px,
            eye,
        )
    }

    /// A frame for an existing image of `width × height` pixels in which the fovea is at pixel
    /// `fovea_px`.
    pub fn anchored(
        width: u32,
        height: u32,
        mm_per_px: f64,
        eye: Eye,
        fovea_px: (f64, f64),
    ) -> ImageFrame {
        let mut frame = ImageFrame::new(width, height, RetinaPoint::new(0.0, 0.0), mm_per_px, eye);
        // Shift the frame so the fovea (retina origin) lands on `fovea_px`.
        let (x, y) = frame.to_px(RetinaPoint::new(0.0, 0.0));
        let sign = if frame.mirrored { -1.0 } else { 1.0 };
        frame.centre = RetinaPoint::new(
            sign * (x - fovea_px.0) * mm_per_px,
            (y - fovea_px.1) * mm_per_px,
        );
        frame
    }

    /// Micrometres per pixel.
    pub fn um_per_px(&self) -> f64 {
        self.mm_per_px * 1000.0
    }

    /// Radius of the circular field of view in pixels, for fundus frames.
    pub fn fov_radius_px(&self) -> f64 {
        FUNDUS_FOV_FRACTION * f64::from(self.width.min(self.height))
    }

    /// The image centre in pixel coordinates.
    pub fn centre_px(&self) -> (f64, f64) {
        (
            (f64::from(self.width) - 1.0) / 2.0,
            (f64::from(self.height) - 1.0) / 2.0,
        )
    }

    /// Pixel coordinates of a retina point.
    pub fn to_px(&self, point: RetinaPoint) -> (f64, f64) {
        let (centre_x, centre_y) = self.centre_px();
        let sign = if self.mirrored { -1.0 } else { 1.0 };
        (
            centre_x + sign * (point.x - self.centre.x) / self.mm_per_px,
            centre_y + (point.y - self.centre.y) / self.mm_per_px,
        )
    }

    /// The retina point shown at pixel coordinates `(x, y)`.
    pub fn to_retina(&self, x: f64, y: f64) -> RetinaPoint {
        let (centre_x, centre_y) = self.centre_px();
        let sign = if self.mirrored { -1.0 } else { 1.0 };
        RetinaPoint::new(
            self.centre.x + sign * (x - centre_x) * self.mm_per_px,
            self.centre.y + (y - centre_y) * self.mm_per_px,
        )
    }

    /// Whether pixel coordinates lie inside the circular field of view, `margin_px` from its edge.
    pub fn inside_fov(&self, x: f64, y: f64, margin_px: f64) -> bool {
        let (centre_x, centre_y) = self.centre_px();
        (x - centre_x).hypot(y - centre_y) + margin_px <= self.fov_radius_px()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::rng::stream;

    #[test]
    fn frames_round_trip_and_mirror() {
        let anatomy = Anatomy::generate(&mut stream(1, &["a"]), 0.3);
        let od = ImageFrame::fundus(1000, &anatomy, Eye::Od);
        let os = ImageFrame::fundus(1000, &anatomy, Eye::Os);
        let (x, y) = od.to_px(anatomy.disc_centre);
        let back = od.to_retina(x, y);
        assert!(back.distance(anatomy.disc_centre) < 1e-9);
        let (x_os, y_os) = os.to_px(anatomy.disc_centre);
        assert!(
            x > 500.0 && x_os < 500.0,
            "disc nasal: right for OD, left for OS"
        );
        assert!((x + x_os - 999.0).abs() < 1e-9 && (y - y_os).abs() < 1e-9);
        assert!(od.inside_fov(x, y, 0.0));
        let spacing = od.um_per_px();
        assert!((6.0..=15.0).contains(&spacing), "{spacing}");
    }

    #[test]
    fn anchored_frames_put_the_fovea_where_asked() {
        for eye in [Eye::Od, Eye::Os] {
            let frame = ImageFrame::anchored(1411, 1411, 0.01, eye, (700.0, 696.0));
            let (x, y) = frame.to_px(RetinaPoint::new(0.0, 0.0));
            assert!(
                (x - 700.0).abs() < 1e-9 && (y - 696.0).abs() < 1e-9,
                "{eye:?}: {x} {y}"
            );
        }
    }

    #[test]
    fn cup_lies_inside_disc() {
        let anatomy = Anatomy::generate(&mut stream(2, &["a"]), 0.8);
        let top_of_cup = RetinaPoint::new(
            anatomy.disc_centre.x - 0.08 * anatomy.disc_radius_x,
            anatomy.disc_centre.y - anatomy.vcdr * anatomy.disc_radius_y,
        );
        assert!((anatomy.cup_distance(top_of_cup) - 1.0).abs() < 1e-9);
        assert!(anatomy.disc_distance(top_of_cup) < 1.0);
    }
}
