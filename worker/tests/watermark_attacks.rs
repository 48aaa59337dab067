//! The invisible watermark against the attacks of issue 17, on frames rendered by the project's
//! renderer at the demo's 1518×832: a colour fundus photograph (tests/fixtures/retina.jpg) and a
//! synthetic OCT B-scan (speckled grey layers). Each attack test would fail on the old unkeyed
//! blue-LSB mark (which any lossy step, and randomising the low bits, erased).
//!
//! `cargo test -p readroom-worker --release --test watermark_attacks -- --nocapture table`
//! prints the robustness table of BENCHMARKS.md and docs/watermark.md.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use image::{ImageBuffer, Rgb, imageops::FilterType};
use readroom_domain::manifest::{ExamKind, Eye};
use readroom_domain::view::{CaseShape, ExamShape, ViewState, Viewport};
use readroom_worker::image::{
    DecodedImage, ImageError, ImageProvider, ImageRequest, Part, Pixels, Visit,
};
use readroom_worker::watermark::{self, Watermark, WatermarkKey};
use uuid::Uuid;

const WIDTH: u32 = 1518;
const HEIGHT: u32 = 832;

struct Images(HashMap<ImageRequest, Arc<DecodedImage>>);

impl ImageProvider for Images {
    fn image(&mut self, request: &ImageRequest) -> Result<Arc<DecodedImage>, ImageError> {
        self.0
            .get(request)
            .cloned()
            .ok_or_else(|| ImageError::NotAvailable(format!("{request:?}")))
    }
}

fn key(seed: u8) -> Arc<WatermarkKey> {
    Arc::new(WatermarkKey::from_bytes(format!("{seed:02x}").repeat(32).as_bytes()).unwrap())
}

fn mark() -> Watermark {
    Watermark {
        grader: "grader.kim".into(),
        session: Uuid::parse_str("5f0c2a9e-7d41-4b8a-9c3e-0a1b2c3d4e5f").unwrap(),
        unix_minute: 29_876_543,
        key: key(1),
    }
}

fn request(exam: &str, part: Part) -> ImageRequest {
    ImageRequest {
        visit: Visit::Current,
        exam: exam.into(),
        part,
    }
}

fn exam(id: &str, kind: ExamKind, slices: u32, enface: bool) -> ExamShape {
    ExamShape {
        id: id.into(),
        kind,
        eye: Some(Eye::Os),
        slices,
        enface,
        pixel_spacing_um: Some(10.0),
        axial_spacing_um: if kind == ExamKind::Oct {
            Some(3.9)
        } else {
            None
        },
    }
}

fn render(shape: CaseShape, images: &mut Images, mark: &Watermark) -> Vec<u8> {
    let state = ViewState::initial(
        &shape,
        Viewport {
            width: WIDTH,
            height: HEIGHT,
            dpr: 1.0,
        },
    )
    .unwrap();
    let out = readroom_worker::render::render(&state, &shape, images, mark).unwrap();
    assert_eq!((out.frame.width, out.frame.height), (WIDTH, HEIGHT));
    out.frame.rgb
}

/// The fundus photograph, fitted into the viewport as a grader first sees it.
fn fundus_frame(mark: &Watermark) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/retina.jpg");
    let photo = image::open(path).unwrap().to_rgb8();
    let shape = CaseShape {
        exams: vec![exam("fundus", ExamKind::Fundus, 1, false)],
        prior: vec![],
        ..CaseShape::default()
    };
    let mut images = Images(HashMap::from([(
        request("fundus", Part::Main),
        Arc::new(DecodedImage {
            width: photo.width(),
            height: photo.height(),
            pixels: Pixels::Rgb8(photo.into_raw()),
        }),
    )]));
    render(shape, &mut images, mark)
}

/// A synthetic OCT B-scan (512×496: retinal layers of different brightness, multiplicative
/// speckle, dark vitreous) with its en-face locator, as the renderer lays an OCT exam out.
fn oct_frame(mark: &Watermark) -> Vec<u8> {
    let (w, h) = (512u32, 496u32);
    let mut state = 0x9e37_79b9u32;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        f32::from((state >> 16) as u16) / 65535.0
    };
    let mut scan = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            let surface = 180.0 + 25.0 * (x as f32 / 80.0).sin() + 10.0 * (x as f32 / 23.0).cos();
            let depth = y as f32 - surface;
            let layer = match depth {
                d if d < 0.0 => 8.0,
                d if d < 12.0 => 190.0,
                d if d < 40.0 => 110.0,
                d if d < 60.0 => 60.0,
                d if d < 95.0 => 130.0,
                d if d < 110.0 => 230.0,
                d if d < 140.0 => 150.0,
                _ => 40.0 * (-(depth - 140.0) / 80.0).exp() + 10.0,
            };
            let speckle = -(noise().max(1e-4)).ln();
            scan.push((layer * speckle * 0.9).clamp(0.0, 255.0) as u8);
        }
    }
    let shape = CaseShape {
        exams: vec![exam("oct", ExamKind::Oct, 1, true)],
        prior: vec![],
        ..CaseShape::default()
    };
    let enface: Vec<u8> = (0..256u32 * 256)
        .map(|i| (100 + (i % 256) / 4 + (i / 256) / 8) as u8)
        .collect();
    let mut images = Images(HashMap::from([
        (
            request("oct", Part::Slice(0)),
            Arc::new(DecodedImage {
                width: w,
                height: h,
                pixels: Pixels::Gray8(scan),
            }),
        ),
        (
            request("oct", Part::Enface),
            Arc::new(DecodedImage {
                width: 256,
                height: 256,
                pixels: Pixels::Gray8(enface),
            }),
        ),
    ]));
    render(shape, &mut images, mark)
}

type Picture = ImageBuffer<Rgb<u8>, Vec<u8>>;

fn picture(width: u32, height: u32, rgb: Vec<u8>) -> Picture {
    ImageBuffer::from_raw(width, height, rgb).unwrap()
}

fn crop(p: &Picture, x: u32, y: u32, w: u32, h: u32) -> Picture {
    image::imageops::crop_imm(p, x, y, w, h).to_image()
}

fn jpeg(p: &Picture, quality: u8) -> Picture {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode_image(p)
        .unwrap();
    image::load_from_memory(&bytes).unwrap().to_rgb8()
}

fn rescale(p: &Picture, factor: f64, filter: FilterType) -> Picture {
    let w = (f64::from(p.width()) * factor).round() as u32;
    let h = (f64::from(p.height()) * factor).round() as u32;
    image::imageops::resize(p, w, h, filter)
}

fn randomise_low_bits(p: &Picture, bits: u32) -> Picture {
    let mut out = p.clone();
    let mut state = 0x2545_f491u32;
    let mask = (1u8 << bits) - 1;
    for v in out.iter_mut() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        *v = (*v & !mask) | (state as u8 & mask);
    }
    out
}

/// Encodes the frame with the stream's own H.264 encoder (a keyframe, then `repeats` more
/// frames of the same picture as a still view streams them) and decodes the last one.
fn h264(p: &Picture, bitrate: u32, repeats: usize) -> (Picture, usize) {
    use openh264::OpenH264API;
    use openh264::decoder::{Decoder, DecoderConfig};
    let (w, h) = p.dimensions();
    let mut encoder = readroom_worker::encode::H264Encoder::new(w, h, bitrate).unwrap();
    let mut decoder =
        Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new()).unwrap();
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    let mut bytes = 0;
    for n in 0..=repeats {
        let unit = encoder.encode(w, h, p.as_raw(), n == 0).unwrap();
        if n == 0 {
            bytes = unit.data.len();
        }
        if let Some(frame) = decoder.decode(&unit.data).unwrap() {
            frame.write_rgb8(&mut rgb);
        }
    }
    (picture(w, h, rgb), bytes)
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

fn decoded(p: &Picture, key: &WatermarkKey) -> Option<watermark::Detection> {
    watermark::decode(key, p.width(), p.height(), p.as_raw())
}

fn assert_decodes(name: &str, p: &Picture) {
    let found = decoded(p, &mark().key);
    let found = found.unwrap_or_else(|| panic!("{name}: no mark found"));
    assert!(found.session.matches(&mark().session), "{name}: {found:?}");
}

fn marked(frame: fn(&Watermark) -> Vec<u8>) -> Picture {
    picture(WIDTH, HEIGHT, frame(&mark()))
}

fn both() -> [(&'static str, Picture); 2] {
    [("fundus", marked(fundus_frame)), ("oct", marked(oct_frame))]
}

/// The diagnostic area without the visible strip (the strip is the bottom 24 px at dpr 1, a
/// crop of 40 px removes it with margin).
#[test]
fn cropping_away_the_strip() {
    for (name, p) in both() {
        assert_decodes(name, &crop(&p, 0, 0, WIDTH, HEIGHT - 40));
    }
}

#[test]
fn randomising_the_low_bits_of_every_channel() {
    for (name, p) in both() {
        assert_decodes(name, &randomise_low_bits(&p, 1));
        assert_decodes(name, &randomise_low_bits(&p, 2));
    }
}

#[test]
fn jpeg_at_quality_75() {
    for (name, p) in both() {
        assert_decodes(name, &jpeg(&p, 75));
    }
}

#[test]
fn rescaling_to_three_quarters() {
    for (name, p) in both() {
        assert_decodes(name, &rescale(&p, 0.75, FilterType::Triangle));
        assert_decodes(name, &rescale(&p, 0.75, FilterType::Lanczos3));
    }
}

#[test]
fn a_512_crop_at_an_arbitrary_offset() {
    for (name, p) in both() {
        assert_decodes(name, &crop(&p, 301, 157, 512, 512));
    }
}

#[test]
fn a_frame_grabbed_from_the_h264_stream() {
    for (name, p) in both() {
        // The stream's default bitrate (stream.bitrate = 8 Mbit/s): the first keyframe.
        assert_decodes(name, &h264(&p, 8_000_000, 0).0);
    }
}

#[test]
fn unmarked_frames_and_wrong_keys_decode_to_nothing() {
    let plain = picture(WIDTH, HEIGHT, {
        // Rendered with another session and then the mark taken out is not possible; an
        // unmarked frame is the photograph itself, resized to the frame.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/retina.jpg");
        let photo = image::open(path).unwrap().to_rgb8();
        image::imageops::resize(&photo, WIDTH, HEIGHT, FilterType::Triangle).into_raw()
    });
    assert_eq!(decoded(&plain, &mark().key), None);
    for (name, p) in both() {
        assert_eq!(decoded(&p, &key(2)), None, "{name} with another key");
    }
}

#[test]
fn the_pixel_change_is_bounded() {
    let plain = key(9);
    for frame in [fundus_frame as fn(&Watermark) -> Vec<u8>, oct_frame] {
        // The same render with a mark of a different key differs from ours only by the marks:
        // every value within 2 × DELTA, and R, G, B moved equally.
        let a = frame(&mark());
        let b = frame(&Watermark {
            key: Arc::clone(&plain),
            ..mark()
        });
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.abs_diff(*y) <= 2 * watermark::DELTA)
        );
    }
}

/// Prints the robustness table (run with `--release --nocapture`).
#[test]
fn table() {
    let mut lines = vec![
        "| frame | attack | decoded | coded-bit errors (of 172) | sync (σ) | found at scale |"
            .to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    for (name, frame) in [
        ("fundus", fundus_frame as fn(&Watermark) -> Vec<u8>),
        ("oct", oct_frame),
    ] {
        let marked_rgb = frame(&mark());
        let mut plain = marked_rgb.clone();
        let marked_p = picture(WIDTH, HEIGHT, marked_rgb.clone());
        let started = Instant::now();
        let runs = 50;
        for _ in 0..runs {
            watermark::embed(WIDTH, HEIGHT, &mut plain, &mark());
        }
        let embed_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
        let unmarked = unmark_reference(frame);
        lines.push(format!(
            "| {name} | (none) PSNR {:.1} dB, max change {} levels, embed {:.2} ms | | | | |",
            psnr(&marked_rgb, &unmarked),
            marked_rgb
                .iter()
                .zip(&unmarked)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap(),
            embed_ms
        ));
        let (video8, bytes8) = h264(&marked_p, 8_000_000, 0);
        let (video2, bytes2) = h264(&marked_p, 2_000_000, 0);
        let (video_low, bytes_low) = h264(&marked_p, 500_000, 0);
        let attacks: Vec<(String, Picture)> = vec![
            ("none".into(), marked_p.clone()),
            (
                "strip cropped (bottom 40 px)".into(),
                crop(&marked_p, 0, 0, WIDTH, HEIGHT - 40),
            ),
            (
                "low 2 bits of every channel randomised".into(),
                randomise_low_bits(&marked_p, 2),
            ),
            ("JPEG q75".into(), jpeg(&marked_p, 75)),
            ("JPEG q50".into(), jpeg(&marked_p, 50)),
            (
                "0.75× bilinear".into(),
                rescale(&marked_p, 0.75, FilterType::Triangle),
            ),
            (
                "0.75× Lanczos3".into(),
                rescale(&marked_p, 0.75, FilterType::Lanczos3),
            ),
            (
                "0.5× bilinear".into(),
                rescale(&marked_p, 0.5, FilterType::Triangle),
            ),
            (
                "512×512 crop at (301, 157)".into(),
                crop(&marked_p, 301, 157, 512, 512),
            ),
            (
                "0.75× then 512×512 crop then JPEG q75".into(),
                jpeg(
                    &crop(
                        &rescale(&marked_p, 0.75, FilterType::Triangle),
                        77,
                        41,
                        512,
                        512,
                    ),
                    75,
                ),
            ),
            (
                format!("H.264 keyframe 8 Mbit/s ({} kB)", bytes8 / 1000),
                video8,
            ),
            (
                format!("H.264 keyframe 2 Mbit/s ({} kB)", bytes2 / 1000),
                video2,
            ),
            (
                format!("H.264 keyframe 0.5 Mbit/s ({} kB)", bytes_low / 1000),
                video_low,
            ),
        ];
        for (attack, p) in attacks {
            let report = watermark::inspect(&mark().key, p.width(), p.height(), p.as_raw());
            let truth = watermark::codeword(&mark().key, &mark().session);
            let errors = truth
                .iter()
                .zip(&report.hard_bits)
                .filter(|(a, b)| a != b)
                .count();
            let ok = report
                .found
                .as_ref()
                .is_some_and(|f| f.session.matches(&mark().session));
            lines.push(format!(
                "| {name} | {attack} | {} | {errors} | {:.1} | {:.2} |",
                if ok { "yes" } else { "**no**" },
                report.best_sync,
                report.best_scale
            ));
        }
    }
    let p = marked(fundus_frame);
    let started = Instant::now();
    assert!(decoded(&p, &mark().key).is_some());
    let hit_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    assert!(decoded(&p, &key(3)).is_none());
    let miss_ms = started.elapsed().as_secs_f64() * 1000.0;
    lines.push(format!(
        "\ndecode 1518×832: {hit_ms:.0} ms when marked (scale 1 first), {miss_ms:.0} ms for no mark (all {} scales)",
        watermark::SCALES.len()
    ));
    println!("{}", lines.join("\n"));
}

/// The frame without the invisible mark. Embedding is a saturating add of ±DELTA, so embedding
/// once more moves every value that did not clip by the same chip again: the chip is
/// (twice − once) and the plain value once − chip (exact except within DELTA of 0 or 255).
fn unmark_reference(frame: fn(&Watermark) -> Vec<u8>) -> Vec<u8> {
    // Find the embed's change by embedding once more on a copy: embed is additive with
    // saturation, so applying it twice moves unclipped values by 2 × the chip; the chip is
    // (twice − once) and the plain value is once − chip.
    let once = frame(&mark());
    let mut twice = once.clone();
    watermark::embed(WIDTH, HEIGHT, &mut twice, &mark());
    once.iter()
        .zip(&twice)
        .map(|(a, b)| {
            let chip = i16::from(*b) - i16::from(*a);
            (i16::from(*a) - chip).clamp(0, 255) as u8
        })
        .collect()
}
