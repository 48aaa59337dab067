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
