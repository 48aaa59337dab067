use super::*;

/// A smooth, textured test picture (no image files in unit tests): gradients, soft blobs and
/// mild noise, roughly like a fundus photograph's statistics.
fn picture(width: usize, height: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let blobs: Vec<(f32, f32, f32, f32)> = (0..12)
        .map(|_| {
            (
                (next() % width as u32) as f32,
                (next() % height as u32) as f32,
                20.0 + (next() % 80) as f32,
                (next() % 60) as f32 - 30.0,
            )
        })
        .collect();
    let mut rgb = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        for x in 0..width {
            let mut v = 60.0 + 80.0 * x as f32 / width as f32 + 30.0 * y as f32 / height as f32;
            for (bx, by, r, a) in &blobs {
                let d2 = ((x as f32 - bx).powi(2) + (y as f32 - by).powi(2)) / (r * r);
                v += a * (-d2).exp();
            }
            v += (next() % 7) as f32 - 3.0;
            let v = v.clamp(0.0, 255.0);
            rgb.extend_from_slice(&[(v * 1.1).min(255.0) as u8, (v * 0.7) as u8, (v * 0.4) as u8]);
        }
    }
    rgb
}

fn key(seed: u8) -> Arc<WatermarkKey> {
    test_key(seed)
}

fn mark() -> Watermark {
    Watermark {
        grader: "grader.kim".into(),
        session: Uuid::from_u128(0x0123_4567_89ab_4def_8011_2233_4455_6677),
        unix_minute: 29_876_543,
        key: key(7),
    }
}

fn crop(rgb: &[u8], width: usize, x: usize, y: usize, w: usize, h: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h * 3);
    for row in y..y + h {
        out.extend_from_slice(&rgb[(row * width + x) * 3..(row * width + x + w) * 3]);
    }
    out
}

#[test]
fn the_mark_survives_the_whole_frame_and_a_crop_and_moves_no_value_more_than_delta() {
    let (w, h) = (640usize, 400usize);
    let original = picture(w, h, 1);
    let mut frame = original.clone();
    embed(w as u32, h as u32, &mut frame, &mark());
    assert!(
        frame
            .iter()
            .zip(&original)
            .all(|(a, b)| a.abs_diff(*b) <= DELTA)
    );
    // Equal on R, G and B wherever nothing clipped.
    for (a, b) in frame.chunks(3).zip(original.chunks(3)) {
        if a.iter().chain(b).all(|v| (3..253).contains(v)) {
            let d: Vec<i16> = (0..3).map(|c| i16::from(a[c]) - i16::from(b[c])).collect();
            assert!(d[0] == d[1] && d[1] == d[2], "{d:?}");
        }
    }
    let found = decode(&mark().key, w as u32, h as u32, &frame).expect("decoded");
    assert!(found.session.matches(&mark().session), "{found:?}");
    assert_eq!(found.session.to_string(), "01234567-89ab-4def");
    let (cx, cy, cw, ch) = (37usize, 23usize, 300usize, 250usize);
    let part = crop(&frame, w, cx, cy, cw, ch);
    let found = decode(&mark().key, cw as u32, ch as u32, &part).expect("crop decoded");
    assert!(found.session.matches(&mark().session));
}

#[test]
fn unmarked_frames_wrong_keys_and_tiny_crops_decode_to_nothing() {
    let (w, h) = (640usize, 400usize);
    let plain = picture(w, h, 2);
    assert_eq!(decode(&mark().key, w as u32, h as u32, &plain), None);
    let mut frame = plain.clone();
    embed(w as u32, h as u32, &mut frame, &mark());
    let wrong = decode(&key(8), w as u32, h as u32, &frame);
    assert_eq!(wrong, None);
    let small = crop(&frame, w, 0, 0, 100, 100);
    assert_eq!(decode(&mark().key, 100, 100, &small), None);
}

#[test]
fn embedding_matches_the_per_pixel_reference() {
    let m = mark();
    let chips = chips(&m.key, &m.session);
    let reference = |width: usize, height: usize, rgb: &mut [u8]| {
        for y in 0..height {
            for x in 0..width {
                let chip =
                    chips[(y / BLOCK) % TILE_BLOCKS * TILE_BLOCKS + (x / BLOCK) % TILE_BLOCKS];
                for c in 0..3 {
                    if let Some(v) = rgb.get_mut((y * width + x) * 3 + c) {
                        *v = if chip > 0 {
                            v.saturating_add(DELTA)
                        } else {
                            v.saturating_sub(DELTA)
                        };
                    }
                }
            }
        }
    };
    for (w, h, len) in [
        (200usize, 120usize, None),
        (1, 1, None),
        (192, 12, None),
        (397, 13, None),
        (47, 25, Some(47 * 25 * 3 - 1)),
        (47, 25, Some(47 * 20 * 3 + 5)),
        (33, 10, Some(33 * 12 * 3)),
    ] {
        let mut frame = picture(w, h + 2, 3);
        frame.truncate(len.unwrap_or(w * h * 3));
        let mut expected = frame.clone();
        embed(w as u32, h as u32, &mut frame, &m);
        reference(w, h, &mut expected);
        assert_eq!(frame, expected, "{w}x{h} ({len:?} bytes)");
    }
}

#[test]
fn the_key_decides_the_pattern_and_sessions_differ() {
    let a = chips(&key(1), &mark().session);
    let b = chips(&key(2), &mark().session);
    let agree = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!((80..176).contains(&agree), "{agree} of 256 chips agree");
    assert_eq!(WatermarkKey::from_bytes(&[1; 31]), None);
    assert!(format!("{:?}", key(1)).len() < 60);
    assert!(!format!("{:?}", key(1)).contains("0101"));
}

#[test]
fn key_files_are_created_0600_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("watermark.key");
    let (created, fresh) = WatermarkKey::load_or_create(&path).unwrap();
    assert!(fresh);
    let (again, fresh) = WatermarkKey::load_or_create(&path).unwrap();
    assert!(!fresh);
    assert_eq!(created, again);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            WatermarkKey::load(&path),
            Err(KeyError::Permissions { .. })
        ));
    }
    let short = dir.path().join("short.key");
    std::fs::write(&short, "0123456789\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert!(matches!(
        WatermarkKey::load(&short),
        Err(KeyError::TooShort { .. })
    ));
}

#[test]
fn the_visible_text_names_grader_session_and_time() {
    let text = visible_text(&mark());
    assert!(text.contains("grader.kim"), "{text}");
    assert!(text.contains("session 01234567"), "{text}");
    assert!(text.ends_with('Z'), "{text}");
}
