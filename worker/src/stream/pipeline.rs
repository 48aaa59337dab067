//! The synchronous half of a session: the decrypted case, the view state, the renderer and the
//! encoder. It runs on the blocking pool (`spawn_blocking`), one call at a time per session.

use std::sync::Arc;
use std::time::Instant;

use readroom_domain::protocol::{ErrorCode, PointerAction, ProtocolError};
use readroom_domain::view::{CaseShape, ViewChange, ViewState, Viewport};
use readroom_store::ObjectStore;
use readroom_store::blocking::RangeReader;

use crate::admission::Admission;
use crate::encode::{Codec, VideoEncoder};
use crate::keys::WorkerIdentity;
use crate::reader::EncryptedBundle;
use crate::render::{self, Frame, Rendered};
use crate::source::CaseImages;
use crate::watermark::Watermark;

/// Ciphertext read-ahead block for ranged GETs.
const RANGE_BLOCK: usize = 256 * 1024;

/// One encoded, ready-to-send frame.
#[derive(Debug)]
pub struct FrameOut {
    /// Frame number.
    pub frame: u64,
    /// H.264 access unit.
    pub data: Vec<u8>,
    /// Milliseconds spent rendering.
    pub render_ms: f64,
    /// Milliseconds spent encoding.
    pub encode_ms: f64,
}

/// A lossless frame ready to send.
#[derive(Debug)]
pub struct LosslessOut {
    /// Frame number.
    pub frame: u64,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// SHA-256 (hex) of the RGB pixels.
    pub sha256: String,
    /// MIME type of `data` ([`crate::lossless::FORMAT`]).
    pub format: &'static str,
    /// The encoded image.
    pub data: Vec<u8>,
}

/// Why a session could not start or a frame could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The bundle could not be fetched or decrypted.
    #[error("cannot open the case: {0}")]
    Open(String),
    /// Rendering or encoding failed.
    #[error("{0}")]
    Frame(String),
}

/// The session's case, view and codec.
pub struct Pipeline {
    images: CaseImages<RangeReader>,
    shape: CaseShape,
    state: ViewState,
    watermark: Watermark,
    codec: Codec,
    encoder: Option<VideoEncoder>,
    bitrate: u32,
    last: Option<Rendered>,
    /// The first view of a case made ready beforehand ([`PreparedCase`]), rendered for the
    /// current state: the next frame encodes it instead of rendering again.
    pending: Option<Rendered>,
    frame: u64,
}

/// A case opened and its first view rendered beside a running session (`prefetch_case`),
/// waiting for the session to move to it ([`Pipeline::switch_to`]). Holds decrypted images in
/// memory only, like the pipeline; dropping it drops them.
pub struct PreparedCase {
    images: CaseImages<RangeReader>,
    shape: CaseShape,
    state: ViewState,
    first: Rendered,
}

impl PreparedCase {
    /// Opens the case `next` admits and renders its first view for `viewport` with
    /// `watermark`, the session's (call on the blocking pool).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        store: &Arc<dyn ObjectStore>,
        handle: &tokio::runtime::Handle,
        identities: &[WorkerIdentity],
        next: &Admission,
        viewport: Viewport,
        watermark: &Watermark,
        cache_bytes: usize,
    ) -> Result<PreparedCase, PipelineError> {
        let (mut images, shape, state) =
            open_case(store, handle, identities, next, viewport, cache_bytes)?;
        let first = render::render(&state, &shape, &mut images, watermark)
            .map_err(|err| PipelineError::Frame(err.to_string()))?;
        Ok(PreparedCase {
            images,
            shape,
            state,
            first,
        })
    }

    /// Bytes of decoded images held.
    pub fn cached_bytes(&self) -> usize {
        self.images.cached_bytes()
    }
}

/// Opens an encrypted bundle from the store with ranged reads (call on the blocking pool).
fn open_bundle(
    store: &Arc<dyn ObjectStore>,
    handle: &tokio::runtime::Handle,
    identities: &[WorkerIdentity],
    key: &str,
) -> Result<EncryptedBundle<RangeReader>, PipelineError> {
    let size = handle
        .block_on(store.head(key))
        .map_err(|err| PipelineError::Open(format!("bundle object: {err}")))?
        .size;
    let reader = RangeReader::new(Arc::clone(store), key, size, handle.clone(), RANGE_BLOCK);
    EncryptedBundle::open(reader, identities.iter().map(WorkerIdentity::as_age))
        .map_err(|err| PipelineError::Open(err.to_string()))
}

/// Opens a case's bundle (and its prior visit's) and reads its shape.
pub(crate) fn open_images(
    store: &Arc<dyn ObjectStore>,
    handle: &tokio::runtime::Handle,
    identities: &[WorkerIdentity],
    bundle: &str,
    prior_bundle: Option<&str>,
    cache_bytes: usize,
) -> Result<(CaseImages<RangeReader>, CaseShape), PipelineError> {
    let current = open_bundle(store, handle, identities, bundle)?;
    let prior = match prior_bundle {
        Some(key) => Some(open_bundle(store, handle, identities, key)?),
        None => None,
    };
    let mut images = CaseImages::new(current, prior, cache_bytes);
    let shape = images
        .shape()
        .map_err(|err| PipelineError::Open(err.to_string()))?;
    Ok((images, shape))
}

/// Opens the admitted case's bundle (and its prior visit's) and its first view.
fn open_case(
    store: &Arc<dyn ObjectStore>,
    handle: &tokio::runtime::Handle,
    identities: &[WorkerIdentity],
    admission: &Admission,
    viewport: Viewport,
    cache_bytes: usize,
) -> Result<(CaseImages<RangeReader>, CaseShape, ViewState), PipelineError> {
    let (images, shape) = open_images(
        store,
        handle,
        identities,
        &admission.bundle,
        admission.prior_bundle.as_deref(),
        cache_bytes,
    )?;
    let state = ViewState::initial(&shape, viewport)
        .ok_or_else(|| PipelineError::Open("the case has no image to show".into()))?;
    Ok((images, shape, state))
}

impl Pipeline {
    /// Fetches and opens the admitted case (and its prior visit), and sets the first view.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        store: &Arc<dyn ObjectStore>,
        handle: &tokio::runtime::Handle,
        identities: &[WorkerIdentity],
        admission: &Admission,
        viewport: Viewport,
        watermark: Watermark,
        cache_bytes: usize,
        bitrate: u32,
        codec: Codec,
    ) -> Result<Pipeline, PipelineError> {
        let (images, shape, state) =
            open_case(store, handle, identities, admission, viewport, cache_bytes)?;
        Ok(Pipeline {
            images,
            shape,
            state,
            watermark,
            codec,
            encoder: None,
            bitrate,
            last: None,
            pending: None,
            frame: 0,
        })
    }

    /// Switches to another case (same viewport and watermark session).
    pub fn switch_case(
        &mut self,
        store: &Arc<dyn ObjectStore>,
        handle: &tokio::runtime::Handle,
        identities: &[WorkerIdentity],
        admission: &Admission,
        cache_bytes: usize,
    ) -> Result<(), PipelineError> {
        let (images, shape, state) = open_case(
            store,
            handle,
            identities,
            admission,
            self.state.viewport,
            cache_bytes,
        )?;
        self.images = images;
        self.shape = shape;
        self.state = state;
        self.last = None;
        self.pending = None;
        Ok(())
    }

    /// Switches to a case made ready beforehand. Its first frame is used as rendered unless
    /// the viewport changed since (then the view starts afresh for the new one; the images
    /// are decoded already).
    pub fn switch_to(&mut self, prepared: PreparedCase) {
        let PreparedCase {
            images,
            shape,
            state,
            first,
        } = prepared;
        self.images = images;
        self.last = None;
        if state.viewport == self.state.viewport {
            self.state = state;
            self.pending = Some(first);
        } else {
            self.state = ViewState::initial(&shape, self.state.viewport).unwrap_or(state);
            self.pending = None;
        }
        self.shape = shape;
    }

    /// The session's watermark.
    pub fn watermark(&self) -> &Watermark {
        &self.watermark
    }

    /// The case's shape.
    pub fn shape(&self) -> &CaseShape {
        &self.shape
    }

    /// The current view.
    pub fn state(&self) -> &ViewState {
        &self.state
    }

    /// Source pixels the last frame shows at full resolution (its lossless budget cost).
    pub fn revealed_px(&self) -> u64 {
        self.last.as_ref().map_or(0, |r| r.revealed_px)
    }

    /// Caliper lengths of the last frame.
    pub fn measurements(&self) -> Vec<Option<f64>> {
        self.last
            .as_ref()
            .map(|r| r.measurements.clone())
            .unwrap_or_default()
    }

    /// Bytes of decoded images held.
    pub fn cached_bytes(&self) -> usize {
        self.images.cached_bytes()
    }

    /// Applies a view change; a refused change leaves the view as it was.
    pub fn apply(&mut self, change: &ViewChange) -> Result<(), ProtocolError> {
        self.pending = None;
        let fit = self
            .last
            .as_ref()
            .and_then(|r| render::fit_scale(&r.geometry))
            .unwrap_or(1.0);
        self.state
            .apply_with_fit(change, &self.shape, fit)
            .map_err(|err| ProtocolError::new(err.code(), err.to_string()))
    }

    /// Applies a pointer gesture through the geometry of the last frame.
    pub fn pointer(
        &mut self,
        action: PointerAction,
        at: (f32, f32),
        delta: (f32, f32),
    ) -> Result<(), ProtocolError> {
        let Some(last) = &self.last else {
            return Err(ProtocolError::new(
                ErrorCode::NotAvailable,
                "no frame has been shown yet",
            ));
        };
        let change = render::pointer(
            &self.state,
            &self.shape,
            &last.geometry,
            action,
            at.0,
            at.1,
            delta.0,
            delta.1,
        )
        .map_err(|err| ProtocolError::new(err.code(), err.to_string()))?;
        self.apply(&change)
    }

    /// Sets the target bitrate; a change of more than 20 % from the encoder's takes a new
    /// encoder (and so a keyframe) at the next frame.
    pub fn set_bitrate(&mut self, bitrate: u32) {
        self.bitrate = bitrate;
        if let Some(encoder) = &self.encoder {
            let current = f64::from(encoder.bitrate());
            if (f64::from(bitrate) - current).abs() > 0.2 * current {
                self.encoder = None;
            }
        }
    }

    /// The encoder's bitrate.
    pub fn bitrate(&self) -> u32 {
        self.bitrate
    }

    /// Renders the current view and encodes it (a keyframe when asked, or when the size
    /// changed).
    pub fn frame(&mut self, keyframe: bool) -> Result<FrameOut, PipelineError> {
        let started = Instant::now();
        let rendered = match self.pending.take() {
            Some(rendered) => rendered,
            None => render::render(&self.state, &self.shape, &mut self.images, &self.watermark)
                .map_err(|err| PipelineError::Frame(err.to_string()))?,
        };
        let render_ms = started.elapsed().as_secs_f64() * 1e3;
        let (width, height) = (rendered.frame.width, rendered.frame.height);
        let mut keyframe = keyframe;
        if self.encoder.as_ref().map(VideoEncoder::size) != Some((width, height)) {
            self.encoder = Some(
                VideoEncoder::new(self.codec, width, height, self.bitrate)
                    .map_err(|err| PipelineError::Frame(err.to_string()))?,
            );
            keyframe = true;
        }
        let started = Instant::now();
        let encoder = self.encoder.as_mut().expect("encoder was just created");
        let encoded = encoder
            .encode(width, height, &rendered.frame.rgb, keyframe)
            .map_err(|err| PipelineError::Frame(err.to_string()))?;
        let encode_ms = started.elapsed().as_secs_f64() * 1e3;
        self.frame += 1;
        self.last = Some(rendered);
        Ok(FrameOut {
            frame: self.frame,
            data: encoded.data,
            render_ms,
            encode_ms,
        })
    }

    /// Re-encodes the last frame as a keyframe (the browser asked for one).
    pub fn keyframe(&mut self) -> Result<Option<FrameOut>, PipelineError> {
        let Some(last) = &self.last else {
            return Ok(None);
        };
        let Some(encoder) = self.encoder.as_mut() else {
            return Ok(None);
        };
        let started = Instant::now();
        let encoded = encoder
            .encode(last.frame.width, last.frame.height, &last.frame.rgb, true)
            .map_err(|err| PipelineError::Frame(err.to_string()))?;
        Ok(Some(FrameOut {
            frame: self.frame,
            data: encoded.data,
            render_ms: 0.0,
            encode_ms: started.elapsed().as_secs_f64() * 1e3,
        }))
    }

    /// The number and a copy of the last frame, for [`encode_lossless`] off the pipeline (so
    /// the lossless encoding does not hold back the next view change).
    pub fn last_frame(&self) -> Option<(u64, Frame)> {
        self.last
            .as_ref()
            .map(|last| (self.frame, last.frame.clone()))
    }
}

/// Frame `number`, exactly, as lossless WebP with its pixel hash (the lossless settle).
pub fn encode_lossless(number: u64, frame: &Frame) -> Result<LosslessOut, PipelineError> {
    let data =
        crate::lossless::encode(frame).map_err(|err| PipelineError::Frame(err.to_string()))?;
    Ok(LosslessOut {
        frame: number,
        width: frame.width,
        height: frame.height,
        sha256: frame.sha256_hex(),
        format: crate::lossless::FORMAT,
        data,
    })
}
