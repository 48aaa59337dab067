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
                axial_spacing_um: None,
            },
            ExamShape {
                id: "oct-od".into(),
                kind: ExamKind::Oct,
                eye: Some(Eye::Od),
                slices: 10,
                enface: true,
                pixel_spacing_um: Some(6.0),
                axial_spacing_um: Some(2.0),
            },
        ],
        prior: vec![],
        ..CaseShape::default()
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
        key: crate::watermark::test_key(7),
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
    let [r, g, b] = crate::watermark::unmarked(&frame.rgb, frame.width, x, y, &mark());
    [r, g, b & 0xFE]
}

#[test]
fn frames_have_the_viewport_size_and_the_watermark() {
    let (shape, mut images) = case();
    let out = render(&state(&shape), &shape, &mut images, &mark()).unwrap();
    assert_eq!((out.frame.width, out.frame.height), (400, 240));
    assert_eq!(out.frame.rgb.len(), 400 * 240 * 3);
    assert_eq!(
        crate::watermark::decode(&mark().key, 400, 240, &out.frame.rgb).map(|d| d.session),
        Some(crate::watermark::SessionPrefix::of(&mark().session))
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
fn oct_calipers_use_the_axial_pixel_size_down_and_the_lateral_one_across() {
    // Phantom B-scan: 100 × 50 pixels, 6 µm lateral, 2 µm axial.
    let (shape, mut images) = case();
    let mut view = state(&shape);
    view.exam = "oct-od".into();
    let measure = |view: &mut ViewState, images: &mut Images, a: [f32; 2], b: [f32; 2]| {
        view.calipers = vec![Caliper { a, b }];
        render(view, &shape, images, &mark()).unwrap().measurements[0]
    };
    // A vertical line of 25 rows: 25 × 2 µm, not 25 × 6 µm.
    let vertical = measure(&mut view, &mut images, [0.5, 0.0], [0.5, 0.5]).unwrap();
    assert!((vertical - 50.0).abs() < 0.01, "{vertical}");
    // A horizontal line of 50 columns: 50 × 6 µm.
    let horizontal = measure(&mut view, &mut images, [0.0, 0.2], [0.5, 0.2]).unwrap();
    assert!((horizontal - 300.0).abs() < 0.01, "{horizontal}");
    // A diagonal of 30 columns and 40 rows uses both: hypot(180, 80).
    let diagonal = measure(&mut view, &mut images, [0.1, 0.1], [0.4, 0.9]).unwrap();
    assert!((diagonal - 180f64.hypot(80.0)).abs() < 0.01, "{diagonal}");

    // Axial size unknown: depth is not guessed from the lateral size.
    let mut unknown = shape.clone();
    unknown.exams[1].axial_spacing_um = None;
    view.calipers = vec![Caliper {
        a: [0.5, 0.0],
        b: [0.5, 0.5],
    }];
    let out = render(&view, &unknown, &mut images, &mark()).unwrap();
    assert_eq!(out.measurements[0], None);
    view.calipers = vec![Caliper {
        a: [0.0, 0.2],
        b: [0.5, 0.2],
    }];
    let out = render(&view, &unknown, &mut images, &mark()).unwrap();
    assert!((out.measurements[0].unwrap() - 300.0).abs() < 0.01);
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
    // Below the pane's label plate (top left, at most 40 px high at these DPRs).
    let (x0, y0) = (x0.max(p.area.x), y0.max(p.area.y + 40.0));
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

#[test]
fn rounding_to_sixteen_bits_is_round_then_clamp() {
    let reference = |v: f32| v.round().clamp(0.0, 65535.0) as u16;
    let mut values = vec![
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -1.0,
        -0.5,
        -0.0,
        0.0,
        f32::from_bits(0.5f32.to_bits() - 1),
        65535.0,
        65535.4,
        65535.5,
        65536.0,
        1e9,
    ];
    // Every half-way point and its neighbours, and every integer.
    for i in 0..65536u32 {
        let half = i as f32 + 0.5;
        values.extend([
            i as f32,
            half,
            f32::from_bits(half.to_bits() - 1),
            f32::from_bits(half.to_bits() + 1),
        ]);
    }
    // A stride through all the non-negative floats below 65536.
    values.extend((0..0x4780_0000u32).step_by(9973).map(f32::from_bits));
    for v in values {
        assert_eq!(round_u16(v), reference(v), "{v:e}");
    }
}

#[test]
fn the_lookup_table_cache_gives_the_table_it_would_build() {
    let (shape, _) = case();
    for (window, level, gamma, invert) in [
        (1.0, 0.5, 1.0, false),
        (0.37, 0.41, 1.7, true),
        (0.2, 0.8, 0.45, false),
    ] {
        let mut view = state(&shape);
        view.window = window;
        view.level = level;
        view.gamma = gamma;
        view.invert = invert;
        let built = Lut::build(&view);
        assert_eq!(Lut::new(&view).table[..], built[..]);
        assert_eq!(Lut::new(&view).table[..], built[..], "from the cache");
    }
}

/// The bilinear sampler as it was first written (one mix per device pixel and channel), the
/// reference the row-caching one must match to the bit.
fn reference_bilinear(
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
    let (width, height) = (image.width as usize, image.height as usize);
    let mix = |a: f32, b: f32, c: f32, d: f32, x: Tap, y: Tap| {
        let top = a * (1.0 - x.weight) + b * x.weight;
        let bottom = c * (1.0 - x.weight) + d * x.weight;
        (top * (1.0 - y.weight) + bottom * y.weight)
            .round()
            .clamp(0.0, 65535.0) as u16
    };
    for py in y_start..y_end {
        let iy = placement.origin.1 + (py as f32 + 0.5 - area.y) / placement.scale;
        for px in x_start..x_end {
            let ix = placement.origin.0 + (px as f32 + 0.5 - area.x) / placement.scale;
            let i = ((py * frame.width + px) * 3) as usize;
            if ix < 0.0 || ix >= iw || iy < 0.0 || iy >= ih {
                frame.rgb[i..i + 3].copy_from_slice(&BACKGROUND);
                continue;
            }
            let (x, y) = (Tap::new(ix, width), Tap::new(iy, height));
            let (r0, r1) = (y.first * width, y.second * width);
            let (a, b, c, d) = (r0 + x.first, r0 + x.second, r1 + x.first, r1 + x.second);
            let out: [u8; 3] = match &image.pixels {
                Pixels::Gray8(p) => {
                    let g = |i: usize| f32::from(p[i]) * 257.0;
                    let v = lut.map(mix(g(a), g(b), g(c), g(d), x, y));
                    [v, v, v]
                }
                Pixels::Gray16(p) => {
                    let g = |i: usize| f32::from(p[i]);
                    let v = lut.map(mix(g(a), g(b), g(c), g(d), x, y));
                    [v, v, v]
                }
                Pixels::Rgb8(p) => {
                    let g = |i: usize, ch: usize| f32::from(p[i * 3 + ch]) * 257.0;
                    let channel =
                        |ch: usize| lut.map(mix(g(a, ch), g(b, ch), g(c, ch), g(d, ch), x, y));
                    if red_free {
                        let v = channel(1);
                        [v, v, v]
                    } else {
                        [channel(0), channel(1), channel(2)]
                    }
                }
            };
            frame.rgb[i..i + 3].copy_from_slice(&out);
        }
    }
}

/// A 16-bit image with every sample different.
fn ramp16(width: u32, height: u32) -> DecodedImage {
    DecodedImage {
        width,
        height,
        pixels: Pixels::Gray16(
            (0..width * height)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 16) as u16)
                .collect(),
        ),
    }
}

/// The RGB gradient with pseudo-random noise added, so neighbouring samples differ.
fn noisy_gradient(width: u32, height: u32) -> DecodedImage {
    let mut noise = gradient(width, height);
    if let Pixels::Rgb8(p) = &mut noise.pixels {
        for (i, v) in p.iter_mut().enumerate() {
            *v = v.wrapping_add((i.wrapping_mul(2_654_435_761) >> 13) as u8);
        }
    }
    noise
}

#[test]
fn bilinear_sampling_matches_the_per_pixel_reference_exactly() {
    let (shape, _) = case();
    let mut view = state(&shape);
    view.window = 0.6;
    view.level = 0.45;
    view.gamma = 1.4;
    let lut = Lut::new(&view);
    let noise = noisy_gradient(61, 47);
    let images = [
        (noise.clone(), false),
        (noise, true),
        (grey(50, 40, 99), false),
        (ramp16(45, 52), false),
    ];
    let area = Rect {
        x: 7.0,
        y: 5.0,
        w: 190.0,
        h: 130.0,
    };
    for (image, red_free) in &images {
        let size = (image.width as f32, image.height as f32);
        for (scale, center) in [
            (Zoom::Fit, [0.5, 0.5]),
            (Zoom::Scale(1.0), [0.5, 0.5]),
            (Zoom::Scale(1.37), [0.1, 0.9]),
            (Zoom::Scale(2.0), [0.5, 0.5]),
            (Zoom::Scale(3.3), [0.95, 0.02]),
            (Zoom::Scale(7.9), [0.4, 0.6]),
        ] {
            let placement = Placement::new(area, size, scale, center);
            if placement.scale < 1.0 {
                continue;
            }
            let blank = Frame {
                width: 210,
                height: 150,
                rgb: vec![33; 210 * 150 * 3],
            };
            let (mut fast, mut reference) = (blank.clone(), blank);
            blit_bilinear(&mut fast, &placement, image, &lut, *red_free);
            reference_bilinear(&mut reference, &placement, image, &lut, *red_free);
            assert!(
                fast == reference,
                "{image:?} red-free {red_free} at {scale:?} {center:?}"
            );
        }
    }
}

/// Area averaging as first written, one device pixel at a time: for each source column under
/// the pixel, its source rows weighted and summed (in row order), then those sums weighted
/// and summed (in column order), scaled to 16 bits, rounded, through the LUT.
fn reference_area(
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
    let (origin, scale) = (placement.origin, placement.scale);
    let cols = resample::Taps::new(x_start, x_end, area.x, origin.0, scale, iw);
    let rows = resample::Taps::new(y_start, y_end, area.y, origin.1, scale, ih);
    let width = image.width as usize;
    let (channels, factor): (&[usize], f32) = match &image.pixels {
        Pixels::Gray16(_) => (&[0], 1.0),
        Pixels::Rgb8(_) if red_free => (&[1], 257.0),
        Pixels::Rgb8(_) => (&[0, 1, 2], 257.0),
        Pixels::Gray8(_) => (&[0], 257.0),
    };
    let sample = |index: usize, channel: usize| match &image.pixels {
        Pixels::Gray8(p) => f32::from(p[index]),
        Pixels::Gray16(p) => f32::from(p[index]),
        Pixels::Rgb8(p) => f32::from(p[index * 3 + channel]),
    };
    for (r, row) in rows.pixels.iter().enumerate() {
        for (c, col) in cols.pixels.iter().enumerate() {
            let i = (((y_start as usize + r) * frame.width as usize) + x_start as usize + c) * 3;
            let (Some((row_first, row_offset, row_count)), Some((first, offset, count))) =
                (*row, *col)
            else {
                frame.rgb[i..i + 3].copy_from_slice(&BACKGROUND);
                continue;
            };
            let mapped: Vec<u8> = channels
                .iter()
                .map(|&channel| {
                    let mut value = 0f32;
                    for (n, w) in cols.weights[offset..offset + count].iter().enumerate() {
                        let mut sum = 0f32;
                        for (m, v) in rows.weights[row_offset..row_offset + row_count]
                            .iter()
                            .enumerate()
                        {
                            sum += v * sample((row_first + m) * width + first + n, channel);
                        }
                        value += w * sum;
                    }
                    lut.map((value * factor).round().clamp(0.0, 65535.0) as u16)
                })
                .collect();
            let out = if mapped.len() == 1 {
                [mapped[0]; 3]
            } else {
                [mapped[0], mapped[1], mapped[2]]
            };
            frame.rgb[i..i + 3].copy_from_slice(&out);
        }
    }
}

#[test]
fn area_averaging_matches_the_per_pixel_reference_exactly() {
    let (shape, _) = case();
    let mut view = state(&shape);
    view.window = 0.8;
    view.level = 0.55;
    view.gamma = 0.7;
    view.invert = true;
    let lut = Lut::new(&view);
    let noise = noisy_gradient(301, 233);
    let images = [
        (noise.clone(), false),
        (noise, true),
        (grey(250, 190, 99), false),
        (ramp16(277, 205), false),
    ];
    let area = Rect {
        x: 3.0,
        y: 6.0,
        w: 150.0,
        h: 110.0,
    };
    for (image, red_free) in &images {
        let size = (image.width as f32, image.height as f32);
        for (scale, center) in [
            (Zoom::Fit, [0.5, 0.5]),
            (Zoom::Scale(0.93), [0.2, 0.7]),
            (Zoom::Scale(0.5), [0.5, 0.5]),
            (Zoom::Scale(0.31), [0.9, 0.05]),
            (Zoom::Scale(0.11), [0.5, 0.5]),
        ] {
            let placement = Placement::new(area, size, scale, center);
            if placement.scale >= 1.0 {
                continue;
            }
            let blank = Frame {
                width: 160,
                height: 120,
                rgb: vec![33; 160 * 120 * 3],
            };
            let (mut fast, mut reference) = (blank.clone(), blank);
            resample::blit_area(&mut fast, &placement, image, &lut, *red_free);
            reference_area(&mut reference, &placement, image, &lut, *red_free);
            assert!(
                fast == reference,
                "{image:?} red-free {red_free} at {scale:?} {center:?}"
            );
        }
    }
}

/// The lossless budget's unit: source pixels shown at full resolution, whatever the zoom.
#[test]
fn revealed_pixels_are_what_the_screen_shows_at_full_resolution() {
    let area = Rect {
        x: 0.0,
        y: 0.0,
        w: 1000.0,
        h: 800.0,
    };
    let fundus = (3000.0, 3000.0);
    let revealed = |image, zoom| Placement::new(area, image, zoom, [0.5, 0.5]).revealed_px();
    // Fitted (scale 0.27): only the 800×800 device pixels the screen has for it.
    let fit = revealed(fundus, Zoom::Fit);
    assert!((639_000..=641_000).contains(&fit), "{fit}");
    // 1:1: every image pixel on screen, the whole area's worth.
    assert_eq!(revealed(fundus, Zoom::Scale(1.0)), 800_000);
    // 4×: fewer image pixels (250×200), each at full resolution.
    assert_eq!(revealed(fundus, Zoom::Scale(4.0)), 50_000);
    // An image smaller than the area at 1:1: all of it, once.
    assert_eq!(revealed((500.0, 400.0), Zoom::Scale(1.0)), 200_000);
    // A B-scan fitted above 1:1 costs its own size.
    assert_eq!(revealed((512.0, 496.0), Zoom::Fit), 512 * 496);
}

/// Issue 16: the en-face locator has a place of its own, never over the B-scan, whether the
/// pane leaves room below the B-scan (it usually does: B-scans are wide) or only beside it.
#[test]
fn the_oct_locator_never_covers_the_b_scan() {
    let (shape, mut images) = case();
    for (width, height) in [(400, 240), (400, 600), (1200, 240), (1280, 800)] {
        let mut view = state(&shape);
        view.viewport = Viewport {
            width,
            height,
            dpr: 1.0,
        };
        view.exam = "oct-od".into();
        let out = render(&view, &shape, &mut images, &mark()).unwrap();
        let p = out.geometry.primary.unwrap();
        let locator = out.geometry.locator.expect("locator").area;
        let (x0, y0) = p.screen_at(0.0, 0.0);
        let (x1, y1) = p.screen_at(p.image.0, p.image.1);
        let apart = locator.x >= x1
            || locator.x + locator.w <= x0
            || locator.y >= y1
            || locator.y + locator.h <= y0;
        assert!(
            apart,
            "{width}×{height}: B-scan {x0},{y0}–{x1},{y1}, locator {locator:?}"
        );
        // And the B-scan keeps most of the size it would have in the whole pane at fit.
        let diagnostic_height = (height - strip_height(1.0)) as f32;
        let whole = (width as f32 / p.image.0).min(diagnostic_height / p.image.1);
        assert!(p.scale >= 0.75 * whole, "{width}×{height}: {p:?}, {whole}");
    }
}

/// Issue 16: every pane says what it shows, inside the frame: eye and exam, and which visit
/// beside another visit.
#[test]
fn panes_are_labelled_with_eye_exam_and_visit() {
    let fundus = |eye: Eye| ExamShape {
        id: format!("fundus-{}", eye.as_str().to_lowercase()),
        kind: ExamKind::Fundus,
        eye: Some(eye),
        slices: 1,
        enface: false,
        pixel_spacing_um: Some(10.0),
        axial_spacing_um: None,
    };
    assert_eq!(
        super::pane_label(&fundus(Eye::Od), Visit::Current, Layout::Single),
        "OD Fundus"
    );
    assert_eq!(
        super::pane_label(&fundus(Eye::Os), Visit::Current, Layout::BothEyes),
        "OS Fundus"
    );
    assert_eq!(
        super::pane_label(&fundus(Eye::Od), Visit::Current, Layout::Prior),
        "OD Fundus  CURRENT VISIT"
    );
    assert_eq!(
        super::pane_label(&fundus(Eye::Od), Visit::Prior, Layout::Prior),
        "OD Fundus  PRIOR VISIT"
    );
    // Drawn on a dark plate at the pane's top left: the bright image does not show through it.
    let (shape, mut images) = single(grey(1000, 500, 250));
    let out = render(&state(&shape), &shape, &mut images, &mark()).unwrap();
    let area = out.geometry.primary.unwrap().area;
    let plate = pixel(&out.frame, area.x as u32 + 5, area.y as u32 + 5);
    assert!(plate.iter().all(|v| *v < 40), "{plate:?}");
    // Inside the plate ("OD Fundus": 9 glyphs of 8 px and 3 px of padding each side).
    let text: usize = (0..70)
        .flat_map(|x| (5..17).map(move |y| (x, y)))
        .filter(|(x, y)| pixel(&out.frame, area.x as u32 + 5 + x, area.y as u32 + y)[0] > 200)
        .count();
    assert!(text > 20, "label text drawn: {text} bright pixels");
}

/// Issue 16: the ETDRS grid has its four spokes between the central subfield and the outer
/// ring (nine subfields), not only its three circles.
#[test]
fn the_etdrs_grid_has_its_spokes() {
    let (shape, mut images) = single(grey(1000, 1000, 0));
    let mut view = state(&shape);
    view.viewport = Viewport {
        width: 800,
        height: 800,
        dpr: 1.0,
    };
    view.etdrs = true;
    view.etdrs_center = Some([0.5, 0.5]);
    let out = render(&view, &shape, &mut images, &mark()).unwrap();
    let p = out.geometry.primary.unwrap();
    let (cx, cy) = p.screen_at(500.0, 500.0);
    // 10 µm per pixel: the 3 mm ring has a radius of 150 image pixels. Halfway between the
    // 1 mm and 3 mm circles, on the diagonals, the spokes are drawn; on the axes nothing is.
    let r = 100.0 * p.scale;
    let d = r * std::f32::consts::FRAC_1_SQRT_2;
    for (dx, dy) in [(d, d), (-d, d), (-d, -d), (d, -d)] {
        let near = (-1..=1)
            .flat_map(|ox| (-1..=1).map(move |oy| (ox, oy)))
            .any(|(ox, oy)| {
                let x = ((cx + dx) as i64 + ox) as u32;
                let y = ((cy + dy) as i64 + oy) as u32;
                pixel(&out.frame, x, y) == [80, 200, 250 & 0xFE]
            });
        assert!(near, "spoke at ({dx}, {dy})");
    }
    assert_eq!(pixel(&out.frame, (cx + r) as u32, cy as u32), [0, 0, 0]);
}
