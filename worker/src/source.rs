//! Decoded images of an open case for the renderer: manifest entries are decrypted and decoded
//! on first use and kept in a byte-capped least-recently-used cache. JPEG, PNG and TIFF entries
//! are decoded with `image`; DICOM entries (OP, multi-frame OPT) with [`crate::dicom`].

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};
use std::sync::Arc;

use readroom_domain::manifest::{Exam, ExamKind, MeasurementValue};
use readroom_domain::view::{CaseShape, ExamShape};

use crate::dicom::{self, DicomHeader, DicomVolume};
use crate::image::{DecodedImage, ImageError, ImageProvider, ImageRequest, Part, Pixels, Visit};
use crate::reader::EncryptedBundle;

/// Largest image entry read (bytes of the encoded file).
const MAX_ENTRY_BYTES: u64 = 256 * 1024 * 1024;
/// Largest decoded image side.
pub(crate) const MAX_SIDE: u32 = 16_384;
/// Largest decoded image (or, for a multi-frame DICOM, decoded volume), bytes.
pub(crate) const MAX_DECODED: u64 = 512 * 1024 * 1024;

/// Bytes of a DICOM entry read for its header when building the case shape (the whole entry is
/// read when the header is longer).
const DICOM_HEADER_PREFIX: u64 = 64 * 1024;

/// What the cache holds under a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    /// A decoded image.
    Image(ImageRequest),
    /// The parsed multi-frame DICOM entry of a visit's bundle.
    Volume(Visit, String),
}

enum Cached {
    Image(Arc<DecodedImage>),
    Volume(Arc<DicomVolume>),
}

struct Slot {
    value: Cached,
    bytes: usize,
    used: u64,
}

/// The open case: this visit's bundle, the prior visit's if any, and the cache.
///
/// The cache holds decoded images and, for a multi-frame DICOM (OPT), the parsed entry of the
/// last volume used, so that moving through the B-scans decodes one frame each without
/// decrypting and parsing the file again. Both count against the byte cap.
pub struct CaseImages<R: Read + Seek> {
    current: EncryptedBundle<R>,
    prior: Option<EncryptedBundle<R>>,
    cache: HashMap<CacheKey, Slot>,
    cached_bytes: usize,
    cap: usize,
    clock: u64,
}

impl<R: Read + Seek> CaseImages<R> {
    /// A case over opened bundles, caching at most `cap` bytes of decoded pixels and parsed
    /// DICOM volumes.
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

    /// Bytes held by the cache (decoded pixels and the parsed DICOM volume).
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes
    }

    /// What the view can show: the image exams of both visits.
    ///
    /// An OCT exam given as one multi-frame DICOM `file` has as many slices as the file has
    /// frames (read from its header); a DICOM file's PixelSpacing is used when the manifest
    /// gives no spacing. A DICOM header that cannot be read or exceeds the limits is an error
    /// naming the entry.
    pub fn shape(&mut self) -> Result<CaseShape, ImageError> {
        let exams = shapes(&mut self.current)?;
        let measurements = measurements_of(&self.current);
        let (prior, prior_measurements) = match self.prior.as_mut() {
            Some(bundle) => (shapes(bundle)?, measurements_of(bundle)),
            None => (Vec::new(), BTreeMap::new()),
        };
        Ok(CaseShape {
            exams,
            prior,
            measurements,
            prior_measurements,
        })
    }

    fn bundle(&mut self, visit: Visit) -> Result<&mut EncryptedBundle<R>, ImageError> {
        match visit {
            Visit::Current => Ok(&mut self.current),
            Visit::Prior => self
                .prior
                .as_mut()
                .ok_or_else(|| ImageError::NotAvailable("no prior visit".into())),
        }
    }

    fn insert(&mut self, key: CacheKey, value: Cached, size: usize) {
        if size > self.cap {
            return;
        }
        if matches!(key, CacheKey::Volume(..)) {
            // Only the last multi-frame entry used is kept.
            let volumes: Vec<CacheKey> = self
                .cache
                .keys()
                .filter(|key| matches!(key, CacheKey::Volume(..)))
                .cloned()
                .collect();
            for old in volumes {
                self.remove(&old);
            }
        }
        while self.cached_bytes + size > self.cap {
            let Some(oldest) = self
                .cache
                .iter()
                .min_by_key(|(_, slot)| slot.used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            self.remove(&oldest);
        }
        self.cached_bytes += size;
        self.cache.insert(
            key,
            Slot {
                value,
                bytes: size,
                used: self.clock,
            },
        );
    }

    fn remove(&mut self, key: &CacheKey) {
        if let Some(slot) = self.cache.remove(key) {
            self.cached_bytes -= slot.bytes;
        }
    }

    /// The cached parsed DICOM entry, if it is the one asked for.
    fn cached_volume(&mut self, visit: Visit, entry: &str) -> Option<Arc<DicomVolume>> {
        let clock = self.clock;
        let slot = self
            .cache
            .get_mut(&CacheKey::Volume(visit, entry.to_owned()))?;
        slot.used = clock;
        match &slot.value {
            Cached::Volume(volume) => Some(Arc::clone(volume)),
            Cached::Image(_) => None,
        }
    }

    /// Decodes frame `frame` of `entry` (0 for a single image), through the cached volume when
    /// the entry is a multi-frame DICOM.
    fn decode_entry(
        &mut self,
        visit: Visit,
        entry: &str,
        frame: u32,
    ) -> Result<DecodedImage, ImageError> {
        if let Some(volume) = self.cached_volume(visit, entry) {
            return volume.frame(frame);
        }
        let bytes = self
            .bundle(visit)?
            .read_entry(entry, MAX_ENTRY_BYTES)
            .map_err(|err| ImageError::Decode {
                entry: entry.to_owned(),
                detail: err.to_string(),
            })?;
        if !dicom::is_dicom(&bytes) {
            if frame != 0 {
                return Err(ImageError::NotAvailable(format!(
                    "frame {frame} of {entry}, which is a single image"
                )));
            }
            return decode(entry, &bytes);
        }
        let volume = DicomVolume::parse(entry, &bytes)?;
        drop(bytes);
        let image = volume.frame(frame)?;
        if volume.header().frames > 1 {
            let size = volume.byte_size();
            self.insert(
                CacheKey::Volume(visit, entry.to_owned()),
                Cached::Volume(Arc::new(volume)),
                size,
            );
        }
        Ok(image)
    }
}

/// A bundle's measurement values over all its measurement exams, keyed as in the manifest
/// (keys are unique across a bundle's exams; were one repeated, the later exam's value wins).
fn measurements_of<R: Read + Seek>(
    bundle: &EncryptedBundle<R>,
) -> BTreeMap<String, MeasurementValue> {
    bundle
        .manifest()
        .exams
        .iter()
        .filter(|exam| exam.kind == ExamKind::Measurement)
        .filter_map(|exam| exam.values.as_ref())
        .flat_map(|values| values.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect()
}

/// The shapes of a bundle's image exams.
fn shapes<R: Read + Seek>(bundle: &mut EncryptedBundle<R>) -> Result<Vec<ExamShape>, ImageError> {
    let exams: Vec<Exam> = bundle
        .manifest()
        .exams
        .iter()
        .filter(|exam| exam.kind.is_image())
        .cloned()
        .collect();
    let mut shapes = Vec::with_capacity(exams.len());
    for exam in exams {
        let manifest_spacing = exam
            .pixel_spacing_um
            .or_else(|| exam.oct.as_ref().and_then(|o| o.lateral_um));
        let mut slices = exam.frames.as_ref().map_or(1, |f| f.len() as u32);
        let mut spacing = manifest_spacing;
        // B-scan rows are axial: the manifest's `oct.axial_um`, else the OPT's row spacing.
        let mut axial = exam
            .oct
            .as_ref()
            .and_then(|o| o.axial_um)
            .filter(|_| exam.kind == ExamKind::Oct);
        let oct_volume = exam.kind == ExamKind::Oct && exam.frames.is_none();
        if let Some(file) = exam
            .file
            .as_deref()
            .filter(|_| oct_volume || spacing.is_none())
        {
            match dicom_header(bundle, file)? {
                Some(header) => {
                    if oct_volume {
                        slices = header.frames;
                    }
                    spacing = spacing.or(header.pixel_spacing_um);
                    if oct_volume {
                        axial = axial.or(header.row_spacing_um);
                    }
                }
                None if oct_volume => {
                    return Err(ImageError::Decode {
                        entry: file.to_owned(),
                        detail: "an OCT volume given as `file` must be a multi-frame DICOM"
                            .to_owned(),
                    });
                }
                None => {}
            }
        } else if oct_volume {
            // An OCT exam with neither `frames` nor `file` has nothing to show.
            continue;
        }
        shapes.push(ExamShape {
            id: exam.id.clone(),
            kind: exam.kind,
            eye: exam.eye,
            slices,
            enface: exam.enface.is_some(),
            pixel_spacing_um: spacing,
            axial_spacing_um: axial,
        });
    }
    Ok(shapes)
}

/// The DICOM header of `entry`, or `None` when the entry is not DICOM. Reads the first
/// [`DICOM_HEADER_PREFIX`] bytes, or the whole entry when the header is longer.
fn dicom_header<R: Read + Seek>(
    bundle: &mut EncryptedBundle<R>,
    entry: &str,
) -> Result<Option<DicomHeader>, ImageError> {
    let read_error = |err: crate::reader::OpenError| ImageError::Decode {
        entry: entry.to_owned(),
        detail: err.to_string(),
    };
    let (prefix, whole) = bundle
        .read_entry_prefix(entry, DICOM_HEADER_PREFIX)
        .map_err(read_error)?;
    if !dicom::is_dicom(&prefix) {
        return Ok(None);
    }
    if let Some(header) = dicom::read_header(entry, &prefix, whole)? {
        return Ok(Some(header));
    }
    drop(prefix);
    let bytes = bundle
        .read_entry(entry, MAX_ENTRY_BYTES)
        .map_err(read_error)?;
    dicom::read_header(entry, &bytes, true)
}

fn entry_of(exam: &Exam, part: Part) -> Option<(&str, u32)> {
    match part {
        Part::Main => exam.file.as_deref().map(|file| (file, 0)),
        Part::Enface => exam.enface.as_deref().map(|file| (file, 0)),
        Part::Slice(n) => match (&exam.frames, &exam.file) {
            (Some(frames), _) => frames.get(n as usize).map(|frame| (frame.as_str(), 0)),
            (None, Some(file)) if exam.kind == ExamKind::Oct => Some((file.as_str(), n)),
            _ => None,
        },
    }
}

impl<R: Read + Seek> ImageProvider for CaseImages<R> {
    fn image(&mut self, request: &ImageRequest) -> Result<Arc<DecodedImage>, ImageError> {
        self.clock += 1;
        let clock = self.clock;
        let key = CacheKey::Image(request.clone());
        if let Some(slot) = self.cache.get_mut(&key)
            && let Cached::Image(image) = &slot.value
        {
            slot.used = clock;
            return Ok(Arc::clone(image));
        }
        let exam = self
            .bundle(request.visit)?
            .manifest()
            .exams
            .iter()
            .find(|e| e.id == request.exam)
            .ok_or_else(|| ImageError::NotAvailable(format!("no exam {:?}", request.exam)))?;
        let (entry, frame) = entry_of(exam, request.part)
            .map(|(entry, frame)| (entry.to_owned(), frame))
            .ok_or_else(|| {
                ImageError::NotAvailable(format!("{:?} of exam {:?}", request.part, request.exam))
            })?;
        let image = Arc::new(self.decode_entry(request.visit, &entry, frame)?);
        let size = image.byte_size();
        self.insert(key, Cached::Image(Arc::clone(&image)), size);
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

#[cfg(test)]
mod tests;
