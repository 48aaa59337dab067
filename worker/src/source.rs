//! Decoded images of an open case for the renderer: manifest entries are decrypted and decoded
//! on first use and kept in a byte-capped least-recently-used cache.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::sync::Arc;

use readroom_domain::manifest::{Exam, ExamKind, Manifest};
use readroom_domain::view::{CaseShape, ExamShape};

use crate::image::{DecodedImage, ImageError, ImageProvider, ImageRequest, Part, Pixels, Visit};
use crate::reader::EncryptedBundle;

/// Largest image entry read (bytes of the encoded file).
const MAX_ENTRY_BYTES: u64 = 256 * 1024 * 1024;
/// Largest decoded image side.
const MAX_SIDE: u32 = 16_384;
/// Largest decoded image, bytes.
const MAX_DECODED: u64 = 512 * 1024 * 1024;

/// The open case: this visit's bundle, the prior visit's if any, and the cache.
pub struct CaseImages<R: Read + Seek> {
    current: EncryptedBundle<R>,
    prior: Option<EncryptedBundle<R>>,
    cache: HashMap<ImageRequest, (Arc<DecodedImage>, u64)>,
    cached_bytes: usize,
    cap: usize,
    clock: u64,
}

impl<R: Read + Seek> CaseImages<R> {
    /// A case over opened bundles, caching at most `cap` bytes of decoded pixels.
    pub fn new(current: EncryptedBundle<R>, prior: Option<EncryptedBundle<R>>, cap: usize) -> Self {
        CaseImages {
            current,
            prior,
            cache: HashMap::new(),
            cached_bytes: 0,
            cap,
            clock: 0,
        }
    }

    /// Bytes of decoded pixels held.
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes
    }

    /// What the view can show: the image exams of both visits.
    pub fn shape(&mut self) -> Result<CaseShape, ImageError> {
        let exams = shapes(self.current.manifest());
        let prior = self
            .prior
            .as_ref()
            .map(|b| shapes(b.manifest()))
            .unwrap_or_default();
        Ok(CaseShape { exams, prior })
    }

    fn insert(&mut self, request: ImageRequest, image: Arc<DecodedImage>) {
        let size = image.byte_size();
        if size > self.cap {
            return;
        }
        while self.cached_bytes + size > self.cap {
            let Some(oldest) = self
                .cache
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some((old, _)) = self.cache.remove(&oldest) {
                self.cached_bytes -= old.byte_size();
            }
        }
        self.cached_bytes += size;
        self.cache.insert(request, (image, self.clock));
    }
}

fn shapes(manifest: &Manifest) -> Vec<ExamShape> {
    manifest
        .exams
        .iter()
        .filter(|exam| exam.kind.is_image())
        .filter(|exam| exam.kind != ExamKind::Oct || exam.frames.is_some())
        .map(|exam| ExamShape {
            id: exam.id.clone(),
            kind: exam.kind,
            eye: exam.eye,
            slices: exam.frames.as_ref().map_or(1, |f| f.len() as u32),
            enface: exam.enface.is_some(),
            pixel_spacing_um: exam
                .pixel_spacing_um
                .or_else(|| exam.oct.as_ref().and_then(|o| o.lateral_um)),
        })
        .collect()
}

fn entry_of(exam: &Exam, part: Part) -> Option<&str> {
    match part {
        Part::Main => exam.file.as_deref(),
        Part::Enface => exam.enface.as_deref(),
        Part::Slice(n) => exam.frames.as_ref()?.get(n as usize).map(String::as_str),
    }
}

impl<R: Read + Seek> ImageProvider for CaseImages<R> {
    fn image(&mut self, request: &ImageRequest) -> Result<Arc<DecodedImage>, ImageError> {
        self.clock += 1;
        let clock = self.clock;
        if let Some((image, used)) = self.cache.get_mut(request) {
            *used = clock;
            return Ok(Arc::clone(image));
        }
        let bundle = match request.visit {
            Visit::Current => &mut self.current,
            Visit::Prior => self
                .prior
                .as_mut()
                .ok_or_else(|| ImageError::NotAvailable("no prior visit".into()))?,
        };
        let exam = bundle
            .manifest()
            .exams
            .iter()
            .find(|e| e.id == request.exam)
            .ok_or_else(|| ImageError::NotAvailable(format!("no exam {:?}", request.exam)))?;
        let entry = entry_of(exam, request.part)
            .ok_or_else(|| {
                ImageError::NotAvailable(format!("{:?} of exam {:?}", request.part, request.exam))
            })?
            .to_owned();
        let bytes =
            bundle
                .read_entry(&entry, MAX_ENTRY_BYTES)
                .map_err(|err| ImageError::Decode {
                    entry: entry.clone(),
                    detail: err.to_string(),
                })?;
        let image = Arc::new(decode(&entry, &bytes)?);
        self.insert(request.clone(), Arc::clone(&image));
        Ok(image)
    }
}

/// Decodes a JPEG, PNG or TIFF entry, checking its dimensions before allocating.
pub fn decode(entry: &str, bytes: &[u8]) -> Result<DecodedImage, ImageError> {
    let fail = |detail: String| ImageError::Decode {
        entry: entry.to_owned(),
        detail,
    };
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|err| fail(err.to_string()))?;
    let (width, height) = reader
        .into_dimensions()
        .map_err(|err| fail(err.to_string()))?;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageError::TooLarge {
            entry: entry.to_owned(),
            detail: format!("{width}×{height} exceeds {MAX_SIDE} pixels per side"),
        });
    }
    reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|err| fail(err.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|err| fail(err.to_string()))?;
    let pixels = match decoded {
        image::DynamicImage::ImageLuma8(img) => Pixels::Gray8(img.into_raw()),
        image::DynamicImage::ImageLuma16(img) => Pixels::Gray16(img.into_raw()),
        image::DynamicImage::ImageRgb8(img) => Pixels::Rgb8(img.into_raw()),
        other if other.color().has_color() => Pixels::Rgb8(other.to_rgb8().into_raw()),
        other => Pixels::Gray16(other.to_luma16().into_raw()),
    };
    Ok(DecodedImage {
        width,
        height,
        pixels,
    })
}
