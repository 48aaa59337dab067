use std::collections::HashMap;
use std::sync::Arc;

use readroom_domain::manifest::{ExamKind, Eye};
use readroom_domain::view::{CaseShape, ExamShape, ViewState, Viewport, Zoom};

use super::*;
use crate::image::{DecodedImage, ImageError, ImageProvider, ImageRequest, Part, Pixels};

struct Images(HashMap<ImageRequest, Arc<DecodedImage>>);

impl ImageProvider for Images {
    fn image(&mut self, request: &ImageRequest) -> Result<Arc<DecodedImage>, ImageError> {
        self.0
            .get(request)
            .cloned()
            .ok_or_else(|| ImageError::NotAvailable(format!("{request:?}")))
    }
}

fn gradient(width: u32, height: u32) -> DecodedImage {
    let mut rgb = Vec::new();
    for y in 0..height {
        for x in 0..width {
            rgb.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, 200]);
        }
    }
    DecodedImage {
        width,
        height,
        pixels: Pixels::Rgb8(rgb),
    }
}

fn grey(width: u32, height: u32, value: u8) -> DecodedImage {
    DecodedImage {
        width,
        height,
        pixels: Pixels::Gray8(vec![value; (width * height) as usize]),
    }
}

fn case() -> (CaseShape, Images) {
    let shape = CaseShape {
        exams: vec![
            ExamShape {
                id: "fundus-od".into(),
                kind: ExamKind::Fundus,
                eye: Some(Eye::Od),
                slices: 1,
                enface: false,
                pixel_spacing_um: Some(10.0),
            },
            ExamShape {
                id: "oct-od".into(),
                kind: ExamKind::Oct,
                eye: Some(Eye::Od),
                slices: 10,
                enface: true,
                pixel_spacing_um: Some(6.0),
            },
        ],
        prior: vec![],
    };
    let mut images = HashMap::new();
    let req = |exam: &str, part| ImageRequest {
        visit: Visit::Current,
        exam: exam.into(),
        part,
    };
    images.insert(req("fundus-od", Part::Main), Arc::new(gradient(200, 100)));
    images.insert(req("oct-od", Part::Enface), Arc::new(grey(64, 64, 128)));
    for n in 0..10 {
        images.insert(
            req("oct-od", Part::Slice(n)),
            Arc::new(grey(100, 50, (n * 20) as u8)),
        );
    }
    (shape, Images(images))
}

fn mark() -> Watermark {
    Watermark {
        grader: "grader.kim".into(),
        session: uuid::Uuid::from_u128(7),
        unix_minute: 1000,
    }
}

fn state(shape: &CaseShape) -> ViewState {
    ViewState::initial(
        shape,
        Viewport {
            width: 400,
            height: 240,
            dpr: 1.0,
        },
    )
    .unwrap()
}

fn pixel(frame: &Frame, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * frame.width + x) * 3) as usize;
    [frame.rgb[i], frame.rgb[i + 1], frame.rgb[i + 2] & 0xFE]
}

#[test]
fn frames_have_the_viewport_size_and_the_watermark() {
    let (shape, mut images) = case();
    let out = render(&state(&shape), &shape, &mut images, &mark()).unwrap();
    assert_eq!((out.frame.width, out.frame.height), (400, 240));
    assert_eq!(out.frame.rgb.len(), 400 * 240 * 3);
    assert_eq!(
        crate::watermark::decode(400, 240, &out.frame.rgb),
        Some((mark().session, 1000))
    );
}

#[test]
fn one_to_one_shows_source_pixels_and_red_free_is_the_green_channel() {
    let (shape, mut images) = case();
    let mut view = state(&shape);
    view.zoom = Zoom::Scale(1.0);
    let out = render(&view, &shape, &mut images, &mark()).unwrap();
    // At 1:1 and centred, device (200, 113) shows image pixel (100, 50) of the gradient.
    let diag_h = 240 - strip_height(1.0);
    let (ox, oy) = (100 - 200, 50 - diag_h as i32 / 2);
    let (dx, dy) = (150u32, 100u32);
    let expected_x = (dx as i32 + ox) as u8;
    let expected_y = (dy as i32 + oy) as u8;
    assert_eq!(pixel(&out.frame, dx, dy), [expected_x, expected_y, 200]);
    view.red_free = true;
    let out = render(&view, &shape, &mut images, &mark()).unwrap();
    assert_eq!(
        pixel(&out.frame, dx, dy),
        [expected_y, expected_y, expected_y & 0xFE]
    );
}

#[test]
fn invert_twice_is_identity_and_changes_pixels_once() {
    let (shape, mut images) = case();
    let mut view = state(&shape);
    let plain = render(&view, &shape, &mut images, &mark()).unwrap().frame;
    view.invert = true;
    let inverted = render(&view, &shape, &mut images, &mark()).unwrap().frame;
    assert_ne!(plain.sha256_hex(), inverted.sha256_hex());
    view.invert = false;
    assert_eq!(
        render(&view, &shape, &mut images, &mark()).unwrap().frame,
        plain
    );
}

#[test]
fn the_locator_line_follows_the_slice_and_a_click_picks_a_slice() {
    let (shape, mut images) = case();
    let mut view = state(&shape);
    view.exam = "oct-od".into();
    view.slice = 2;
    let a = render(&view, &shape, &mut images, &mark()).unwrap();
    view.slice = 7;
    let b = render(&view, &shape, &mut images, &mark()).unwrap();
    assert_ne!(a.frame.sha256_hex(), b.frame.sha256_hex());
    let locator = b.geometry.locator.expect("locator");
    let y = locator.area.y + locator.area.h * 0.95;
    let change = pointer(
        &view,
        &shape,
        &b.geometry,
        PointerAction::Click,
        locator.area.x + 2.0,
        y,
        0.0,
        0.0,
    )
    .unwrap();
    assert_eq!(change.slice, Some(9));
}

#[test]
fn calipers_measure_micrometres() {
    let (shape, mut images) = case();
    let mut view = state(&shape);
    view.calipers = vec![Caliper {
        a: [0.0, 0.5],
        b: [0.5, 0.5],
    }];
    let out = render(&view, &shape, &mut images, &mark()).unwrap();
    // Half of a 200-pixel-wide image at 10 µm per pixel.
    let um = out.measurements[0].unwrap();
    assert!((um - 1000.0).abs() < 10.0, "{um}");
}

#[test]
fn fit_keeps_the_whole_image_visible_and_zoom_about_a_point_keeps_it_fixed() {
    let (shape, mut images) = case();
    let view = state(&shape);
    let out = render(&view, &shape, &mut images, &mark()).unwrap();
    let p = out.geometry.primary.unwrap();
    assert!(p.image.0 * p.scale <= p.area.w + 0.01 && p.image.1 * p.scale <= p.area.h + 0.01);
    let (x, y) = (250.0, 90.0);
    let before = p.image_at(x, y);
    let change = pointer(
        &view,
        &shape,
        &out.geometry,
        PointerAction::Zoom,
        x,
        y,
        0.0,
        -1.0,
    )
    .unwrap();
    let mut zoomed = view.clone();
    zoomed.apply(&change, &shape).unwrap();
    let out = render(&zoomed, &shape, &mut images, &mark()).unwrap();
    let after = out.geometry.primary.unwrap().image_at(x, y);
    assert!(
        (before.0 - after.0).abs() < 0.5 && (before.1 - after.1).abs() < 0.5,
        "{before:?} {after:?}"
    );
}

/// Release-mode timing of a fit-to-viewport render of a large fundus photograph, the area
/// filter against the bilinear sampler it replaced for minification (best of several runs, so
/// a busy machine disturbs it less):
/// `cargo test --release -p readroom-worker --lib render::tests::timing -- --ignored --nocapture`
#[test]
#[ignore = "timing, run by hand in release mode"]
fn timing_of_a_1080p_fit_render_of_a_12_megapixel_fundus() {
    let (w, h) = (4000u32, 3000u32);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(&[(x ^ y) as u8, (x * 3 + y) as u8, (y * 5) as u8]);
        }
    }
    let fundus = DecodedImage {
        width: w,
        height: h,
        pixels: Pixels::Rgb8(rgb),
    };
    let view = ViewState::initial(
        &single(grey(1, 1, 0)).0,
        Viewport {
            width: 1920,
            height: 1080,
            dpr: 1.0,
        },
    )
    .unwrap();
    let area = Rect {
        x: 0.0,
        y: 0.0,
        w: 1920.0,
        h: (1080 - strip_height(1.0)) as f32,
    };
    let placement = Placement::new(area, (w as f32, h as f32), Zoom::Fit, [0.5, 0.5]);
    let lut = Lut::new(&view);
    let mut frame = Frame {
        width: 1920,
        height: 1080,
        rgb: vec![0; 1920 * 1080 * 3],
    };
    let best = |f: &mut dyn FnMut()| {
        (0..15)
            .map(|_| {
                let start = std::time::Instant::now();
                f();
                start.elapsed().as_secs_f64() * 1000.0
            })
            .fold(f64::INFINITY, f64::min)
    };
    let bilinear = best(&mut || blit_bilinear(&mut frame, &placement, &fundus, &lut, false));
    let area_ms = best(&mut || resample::blit_area(&mut frame, &placement, &fundus, &lut, false));
    let (shape, mut images) = single(fundus);
    let whole = best(&mut || {
        render(&view, &shape, &mut images, &mark()).unwrap();
    });
    eprintln!(
        "4000x3000 RGB fit into 1920x1080 (scale {:.3}): bilinear blit {bilinear:.1} ms, \
         area blit {area_ms:.1} ms; whole render (area) {whole:.1} ms",
        placement.scale
    );
}

/// Red-channel mean and standard deviation over the drawn image, `margin` pixels in from its
/// edges.
fn drawn_stats(out: &Rendered, margin: f32) -> (f64, f64) {
    let p = out.geometry.primary.unwrap();
    let (x0, y0) = p.screen_at(0.0, 0.0);
    let (x1, y1) = p.screen_at(p.image.0, p.image.1);
    let (x0, y0) = (x0.max(p.area.x), y0.max(p.area.y));
    let (x1, y1) = (x1.min(p.area.x + p.area.w), y1.min(p.area.y + p.area.h));
    let mut values = Vec::new();
    for y in (y0 + margin) as u32..(y1 - margin) as u32 {
        for x in (x0 + margin) as u32..(x1 - margin) as u32 {
            values.push(f64::from(pixel(&out.frame, x, y)[0]));
        }
    }
    assert!(values.len() > 1000, "{} pixels", values.len());
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    (mean, variance.sqrt())
}

fn request_main() -> ImageRequest {
    ImageRequest {
        visit: Visit::Current,
        exam: "fundus-od".into(),
        part: Part::Main,
    }
}

fn single(image: DecodedImage) -> (CaseShape, Images) {
    let (mut shape, _) = case();
    shape.exams.truncate(1);
    let images = Images(HashMap::from([(
        ImageRequest {
            visit: Visit::Current,
            exam: "fundus-od".into(),
            part: Part::Main,
        },
        Arc::new(image),
    )]));
    (shape, images)
}

#[test]
fn minified_fine_patterns_average_to_grey_instead_of_aliasing() {
    let (w, h) = (960u32, 640u32);
    let checkerboard = DecodedImage {
        width: w,
        height: h,
        pixels: Pixels::Gray8(
            (0..w * h)
                .map(|i| if (i % w + i / w) % 2 == 0 { 0 } else { 255 })
                .collect(),
        ),
    };
    let stripes = DecodedImage {
        width: w,
        height: h,
        pixels: Pixels::Rgb8(
            (0..w * h)
                .flat_map(|i| if i % 2 == 0 { [0, 0, 0] } else { [255; 3] })
                .collect(),
        ),
    };
    for (name, image) in [("checkerboard", checkerboard), ("stripes", stripes)] {
        let (shape, mut images) = single(image);
        let mut view = state(&shape);
        // 1/4 exactly, and an off-grid scale whose footprints do not line up with the pattern.
        // A box filter leaves some ripple when its footprint is not a whole number of pattern
        // periods (at most 1/footprint of the contrast); point sampling leaves the full contrast.
        for (scale, max_deviation) in [(0.25f32, 1.0), (0.3, 25.0), (0.17, 10.0)] {
            view.zoom = Zoom::Scale(scale);
            let mut out = render(&view, &shape, &mut images, &mark()).unwrap();
            let (mean, deviation) = drawn_stats(&out, 2.0);
            assert!(
                (mean - 127.5).abs() < 3.0 && deviation < max_deviation,
                "{name} at {scale}: mean {mean:.1}, standard deviation {deviation:.1}"
            );
            if scale != 0.25 {
                let image = images.image(&request_main()).unwrap();
                let placement = out.geometry.primary.unwrap();
                blit_bilinear(&mut out.frame, &placement, &image, &Lut::new(&view), false);
                let (_, point) = drawn_stats(&out, 2.0);
                assert!(
                    point > 3.0 * deviation,
                    "{name} at {scale}: bilinear {point:.1}"
                );
            }
        }
    }
}

#[test]
fn minified_flat_images_stay_exact_and_magnified_ones_are_unchanged() {
    // Area averaging of a flat image is the flat value, up to the image edge.
    let (shape, mut images) = single(grey(1000, 500, 77));
    let mut view = state(&shape);
    for scale in [0.9f32, 0.5, 0.33, 0.1] {
        view.zoom = Zoom::Scale(scale);
        let out = render(&view, &shape, &mut images, &mark()).unwrap();
        let (mean, deviation) = drawn_stats(&out, 1.0);
        assert!(
            (mean - 77.0).abs() < 0.01 && deviation < 0.01,
            "{scale}: {mean} {deviation}"
        );
    }
    // At 2× each source pixel is still a 2×2 block of itself at block centres.
    let (shape, mut images) = single(gradient(200, 100));
    view = state(&shape);
    view.zoom = Zoom::Scale(2.0);
    view.center = [0.5, 0.5];
    let out = render(&view, &shape, &mut images, &mark()).unwrap();
    let p = out.geometry.primary.unwrap();
    let (sx, sy) = p.screen_at(60.5, 40.5);
    assert_eq!(pixel(&out.frame, sx as u32, sy as u32), [60, 40, 200]);
}
