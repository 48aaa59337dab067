//! Bundles built around a real fundus photograph: the public-domain normal left eye
//! `tests/fixtures/retina.jpg` (Häggström 2014, CC0; see `tests/fixtures/SOURCES.md`).
//!
//! The photograph goes into the bundle losslessly but without metadata: [`strip_jpeg_metadata`]
//! copies only the segments a decoder needs (quantization and Huffman tables, frame and scan
//! headers, the entropy-coded data) and writes a minimal JFIF header, so no APPn segment (EXIF,
//! XMP, ICC, IPTC) or comment survives.
//! The bundle adds what a clinic would acquire with it: an en-face image sampled from the
//! photograph's green channel, a synthetic normal OCT volume whose vessel shadows follow the
//! photograph's vessels, and normal measurements.

use std::path::Path;

use image::ImageFormat;
use readroom_domain::manifest::{Exam, ExamKind, Eye, FORMAT_V1, Manifest, OctGeometry};

use super::SynthError;
use super::bundle::write_manifest;
use super::disease::{Disease, EyeGrades};
use super::encode::{create_dir, png_gray, write_file};
use super::geometry::{ImageFrame, RetinaPoint};
use super::lesions::LesionPlan;
use super::measurements::Measurements;
use super::oct::{self, AXIAL_UM, BSCAN_DEPTH, BSCAN_WIDTH, OctModel, ScanPattern};
use super::rng::{derive, fnv1a, stream};
use super::truth::round_px;
use super::vessels::VesselMaps;

/// Width of the bundled photograph, to which the landmarks below refer.
pub const RETINA_WIDTH: u32 = 1411;
/// Fovea of the bundled photograph, in its pixels.
pub const RETINA_FOVEA_PX: (f64, f64) = (705.0, 698.0);
/// Optic disc centre of the bundled photograph, in its pixels.
pub const RETINA_DISC_PX: (f64, f64) = (220.0, 630.0);
/// Pixel spacing of the bundled photograph in micrometres (its disc is about 1.8 mm across).
pub const RETINA_PIXEL_SPACING_UM: f64 = 10.0;
/// Number of B-scans of the synthetic OCT volume.
const RETINA_OCT_FRAMES: u32 = 49;

/// A minimal JFIF APP0 segment: version 1.01, no density units, 1:1 aspect, no thumbnail.
const JFIF_HEADER: [u8; 18] = [
    0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01,
    0x00, 0x00,
];

/// Rewrites a JPEG without metadata, keeping its compressed image data byte for byte.
///
/// Drops every APPn segment except an Adobe APP14 (which only says how colours are encoded),
/// every comment and anything after the end-of-image marker; adds a minimal JFIF header when there is no
/// Adobe segment, so decoders still read YCbCr.
pub fn strip_jpeg_metadata(bytes: &[u8]) -> Result<Vec<u8>, SynthError> {
    let invalid = |message: &str| SynthError::InvalidJpeg(message.to_owned());
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return Err(invalid("no start-of-image marker"));
    }
    let mut kept: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut adobe = false;
    let mut position = 2usize;
    loop {
        if position >= bytes.len() || bytes[position] != 0xFF {
            return Err(invalid("expected a marker"));
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while position < bytes.len() && bytes[position] == 0xFF {
            position += 1;
        }
        let Some(&marker) = bytes.get(position) else {
            return Err(invalid("truncated marker"));
        };
        position += 1;
        match marker {
            0xD9 => {
                kept.extend_from_slice(&[0xFF, 0xD9]);
                break;
            }
            0x01 | 0xD0..=0xD7 => {
                kept.extend_from_slice(&[0xFF, marker]);
                continue;
            }
            0x00 | 0xD8 => return Err(invalid("unexpected marker")),
            _ => {}
        }
        let Some(length_bytes) = bytes.get(position..position + 2) else {
            return Err(invalid("truncated segment length"));
        };
        let length = usize::from(u16::from_be_bytes([length_bytes[0], length_bytes[1]]));
        let Some(segment) = bytes
            .get(position..position + length)
            .filter(|_| length >= 2)
        else {
            return Err(invalid("truncated segment"));
        };
        position += length;
        let is_adobe = marker == 0xEE && segment.get(2..7) == Some(b"Adobe".as_slice());
        let is_metadata = (0xE0..=0xEF).contains(&marker) && !is_adobe || marker == 0xFE;
        adobe |= is_adobe;
        if !is_metadata {
            kept.extend_from_slice(&[0xFF, marker]);
            kept.extend_from_slice(segment);
        }
        if marker == 0xDA {
            // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00 nor a
            // restart marker.
            let start = position;
            while position + 1 < bytes.len() {
                let next = bytes[position + 1];
                if bytes[position] == 0xFF && next != 0x00 && !(0xD0..=0xD7).contains(&next) {
                    break;
                }
                position += 1;
            }
            if position + 1 >= bytes.len() {
                return Err(invalid("scan data without an end-of-image marker"));
            }
            kept.extend_from_slice(&bytes[start..position]);
        }
    }
    let mut out = Vec::with_capacity(kept.len() + 2 + JFIF_HEADER.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    if !adobe {
        out.extend_from_slice(&JFIF_HEADER);
    }
    out.extend_from_slice(&kept);
    Ok(out)
}

/// Writes a bundle for `subject` (study `DEMO`, visit `V1`) around the photograph `jpeg_bytes`,
/// which must be the bundled normal left eye or another photograph framed the same way (landmarks
/// and spacing are scaled with its width).
///
/// Files: `manifest.json`, `fundus_os.jpg` (the photograph without metadata), `slo_os.png`,
/// `oct_os/000.png`… and the `iop` and `va` measurements.
pub fn write_retina_bundle(jpeg_bytes: &[u8], subject: &str, dir: &Path) -> Result<(), SynthError> {
    let stripped = strip_jpeg_metadata(jpeg_bytes)?;
    let photo = image::load_from_memory_with_format(&stripped, ImageFormat::Jpeg)?.to_rgb8();
    let (width, height) = photo.dimensions();
    if !(256..=8192).contains(&width) || !(256..=8192).contains(&height) {
        return Err(SynthError::InvalidJpeg(format!(
            "{width}×{height} is not a fundus photograph size"
        )));
    }
    let mut spec = super::SynthSpec::new(0, subject);
    spec.eyes = vec![Eye::Os];
    spec.validate()?;
    let seed = fnv1a(subject.as_bytes(), 0x7265_7469_6e61);
    let eye = Eye::Os;
    let scale = f64::from(width) / f64::from(RETINA_WIDTH);
    let spacing_um = RETINA_PIXEL_SPACING_UM / scale;
    let photo_frame = ImageFrame::anchored(
        width,
        height,
        spacing_um / 1000.0,
        eye,
        (RETINA_FOVEA_PX.0 * scale, RETINA_FOVEA_PX.1 * scale),
    );
    let green = Green::new(&photo);
    let global_mean = green.mean_in_field(&photo_frame);
    create_dir(dir)?;
    write_file(&dir.join("fundus_os.jpg"), &stripped)?;

    let slo_frame = ImageFrame::slo(eye);
    let slo = enface_from_photo(&green, global_mean, &photo_frame, &slo_frame);
    write_file(
        &dir.join("slo_os.png"),
        &png_gray(&slo, slo_frame.width, slo_frame.height)?,
    )?;

    let pattern = ScanPattern {
        eye,
        frames: RETINA_OCT_FRAMES,
        centre: RetinaPoint::new(0.0, 0.0),
    };
    let shadows = shadows_from_photo(&green, &photo_frame, &pattern.enface_frame());
    let model = OctModel::generate(&mut stream(seed, &["retina", "oct"]));
    let volume = oct::render(&LesionPlan::default(), &pattern, &model, &shadows);
    create_dir(&dir.join("oct_os"))?;
    let mut frames = Vec::with_capacity(volume.frames.len());
    for (index, frame) in volume.frames.iter().enumerate() {
        let name = format!("oct_os/{index:03}.png");
        write_file(
            &dir.join(&name),
            &png_gray(frame, BSCAN_WIDTH, BSCAN_DEPTH)?,
        )?;
        frames.push(name);
    }

    let grades = [(
        eye,
        EyeGrades {
            icdr_level: 0,
            dme: false,
            areds_category: 1,
            vcdr: 0.4,
        },
    )];
    let mut measurements = Measurements::generate(
        &Disease::Normal,
        &grades,
        &mut stream(seed, &["retina", "subject"]),
        &mut stream(derive(seed, &["retina"]), &["visit"]),
    );
    measurements.axial_length_mm.clear();
    let mut exams = vec![
        Exam {
            id: "fundus-os".to_owned(),
            kind: ExamKind::Fundus,
            eye: Some(eye),
            file: Some("fundus_os.jpg".to_owned()),
            frames: None,
            enface: None,
            pixel_spacing_um: Some(round_px(spacing_um)),
            oct: None,
            values: None,
            device: None,
        },
        Exam {
            id: "oct-os".to_owned(),
            kind: ExamKind::Oct,
            eye: Some(eye),
            file: None,
            frames: Some(frames),
            enface: Some("slo_os.png".to_owned()),
            pixel_spacing_um: None,
            oct: Some(OctGeometry {
                lateral_um: Some(round_px(pattern.lateral_um())),
                axial_um: Some(AXIAL_UM),
                bscan_spacing_um: Some(round_px(pattern.bscan_spacing_um())),
                enface_scan_rect: Some(pattern.enface_rect(&slo_frame)),
            }),
            values: None,
            device: None,
        },
    ];
    exams.extend(measurements.exams());
    let manifest = Manifest {
        format: FORMAT_V1.to_owned(),
        study: spec.study,
        subject: subject.to_owned(),
        visit: spec.visit,
        prior_visit: None,
        exams,
    };
    write_manifest(dir, &manifest)
}

/// The photograph's green channel (where vessels have the most contrast) and its local mean.
struct Green {
    width: usize,
    height: usize,
    values: Vec<f32>,
    local_mean: Vec<f32>,
}

impl Green {
    fn new(photo: &image::RgbImage) -> Green {
        let width = photo.width() as usize;
        let height = photo.height() as usize;
        let values: Vec<f32> = photo.pixels().map(|pixel| f32::from(pixel[1])).collect();
        // Box mean over a window wider than the widest vessel, from an integral image.
        let radius = (width / 60).max(2);
        let mut integral = vec![0.0f64; (width + 1) * (height + 1)];
        for row in 0..height {
            let mut line = 0.0f64;
            for column in 0..width {
                line += f64::from(values[row * width + column]);
                integral[(row + 1) * (width + 1) + column + 1] =
                    integral[row * (width + 1) + column + 1] + line;
            }
        }
        let mut local_mean = vec![0.0f32; width * height];
        for row in 0..height {
            let top = row.saturating_sub(radius);
            let bottom = (row + radius + 1).min(height);
            for column in 0..width {
                let left = column.saturating_sub(radius);
                let right = (column + radius + 1).min(width);
                let sum = integral[bottom * (width + 1) + right]
                    - integral[top * (width + 1) + right]
                    - integral[bottom * (width + 1) + left]
                    + integral[top * (width + 1) + left];
                let count = ((bottom - top) * (right - left)) as f64;
                local_mean[row * width + column] = (sum / count) as f32;
            }
        }
        Green {
            width,
            height,
            values,
            local_mean,
        }
    }

    /// Mean green within 5 mm of the fovea (inside the field, away from its dark surround).
    fn mean_in_field(&self, photo: &ImageFrame) -> f32 {
        let mut sum = 0.0f64;
        let mut count = 0.0f64;
        for row in (0..self.height).step_by(4) {
            for column in (0..self.width).step_by(4) {
                if photo.to_retina(column as f64, row as f64).eccentricity() < 5.0 {
                    sum += f64::from(self.values[row * self.width + column]);
                    count += 1.0;
                }
            }
        }
        if count == 0.0 {
            1.0
        } else {
            (sum / count).max(1.0) as f32
        }
    }

    /// Bilinear sample of `plane` at fractional pixel coordinates; `None` outside the photograph.
    fn sample(&self, plane: &[f32], x: f64, y: f64) -> Option<f32> {
        if !(x >= 0.0 && y >= 0.0) {
            return None;
        }
        let x0 = x as usize;
        let y0 = y as usize;
        if x0 + 1 >= self.width || y0 + 1 >= self.height {
            return None;
        }
        let wx = (x - x0 as f64) as f32;
        let wy = (y - y0 as f64) as f32;
        let at = |column: usize, row: usize| plane[row * self.width + column];
        let top = at(x0, y0) + (at(x0 + 1, y0) - at(x0, y0)) * wx;
        let bottom = at(x0, y0 + 1) + (at(x0 + 1, y0 + 1) - at(x0, y0 + 1)) * wx;
        Some(top + (bottom - top) * wy)
    }
}

/// An infrared-looking en-face image: the photograph's green channel, with its broad brightness
/// compressed and its local (vessel) contrast kept.
fn enface_from_photo(
    green: &Green,
    global_mean: f32,
    photo: &ImageFrame,
    enface: &ImageFrame,
) -> Vec<u8> {
    let width = enface.width as usize;
    let height = enface.height as usize;
    let mut pixels = vec![0u8; width * height];
    for row in 0..height {
        for column in 0..width {
            let (x, y) = photo.to_px(enface.to_retina(column as f64, row as f64));
            let (Some(value), Some(mean)) = (
                green.sample(&green.values, x, y),
                green.sample(&green.local_mean, x, y),
            ) else {
                continue;
            };
            let relative = (value - mean) / mean.max(1.0);
            let broad = (mean / global_mean).max(0.0).powf(0.7);
            let grey = 115.0 * broad + 260.0 * relative;
            pixels[row * width + column] = (grey + 0.5).clamp(0.0, 255.0) as u8;
        }
    }
    pixels
}

/// Vessel shadows for the OCT: how much darker than its surroundings the photograph is.
fn shadows_from_photo(green: &Green, photo: &ImageFrame, grid: &ImageFrame) -> VesselMaps {
    let width = grid.width as usize;
    let height = grid.height as usize;
    let mut maps = VesselMaps::empty(width, height);
    for row in 0..height {
        for column in 0..width {
            let point = grid.to_retina(column as f64, row as f64);
            let (x, y) = photo.to_px(point);
            let (Some(value), Some(mean)) = (
                green.sample(&green.values, x, y),
                green.sample(&green.local_mean, x, y),
            ) else {
                continue;
            };
            // The dark foveal centre is macular pigment, not blood: the fovea has no vessels.
            let outside_fovea = ((point.eccentricity() - 0.3) / 0.3).clamp(0.0, 1.0) as f32;
            let darker = (mean - value) / mean.max(1.0);
            maps.artery[row * width + column] =
                ((darker - 0.06) / 0.25).clamp(0.0, 1.0) * outside_fovea;
        }
    }
    maps
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETINA: &[u8] = include_bytes!("../../../tests/fixtures/retina.jpg");

    #[test]
    fn stripping_keeps_pixels_and_drops_metadata() {
        let stripped = strip_jpeg_metadata(RETINA).expect("fixture is a valid JPEG");
        assert_eq!(&stripped[2..20], &JFIF_HEADER);
        // The original density (150 dpi) is gone: no other APPn or COM segment remains.
        let original =
            image::load_from_memory_with_format(RETINA, ImageFormat::Jpeg).expect("decodes");
        let rewritten =
            image::load_from_memory_with_format(&stripped, ImageFormat::Jpeg).expect("decodes");
        assert_eq!(original.to_rgb8().as_raw(), rewritten.to_rgb8().as_raw());
        assert_eq!(
            header_markers(&stripped),
            [0xE0, 0xDB, 0xDB, 0xC0, 0xC4, 0xC4, 0xC4, 0xC4]
        );

        // Planted EXIF and a comment are removed.
        let mut planted = vec![0xFF, 0xD8];
        planted.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x0F]);
        planted.extend_from_slice(b"Exif\0\0DOEJANE");
        planted.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x07]);
        planted.extend_from_slice(b"Smith");
        planted.extend_from_slice(&RETINA[2..]);
        let cleaned = strip_jpeg_metadata(&planted).expect("valid");
        assert!(!cleaned.windows(7).any(|window| window == b"DOEJANE"));
        assert!(!cleaned.windows(5).any(|window| window == b"Smith"));
        assert_eq!(cleaned, stripped);
    }

    /// The markers of the segments before the first scan.
    fn header_markers(jpeg: &[u8]) -> Vec<u8> {
        let mut markers = Vec::new();
        let mut position = 2;
        while position + 4 <= jpeg.len() && jpeg[position + 1] != 0xDA {
            markers.push(jpeg[position + 1]);
            let length = usize::from(u16::from_be_bytes([jpeg[position + 2], jpeg[position + 3]]));
            position += 2 + length;
        }
        markers
    }

    #[test]
    fn broken_jpegs_are_errors() {
        assert!(strip_jpeg_metadata(b"").is_err());
        assert!(strip_jpeg_metadata(b"GIF89a").is_err());
        assert!(strip_jpeg_metadata(&RETINA[..RETINA.len() / 2]).is_err());
        assert!(strip_jpeg_metadata(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00]).is_err());
    }
}
