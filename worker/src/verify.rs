//! Grade evidence, checked again from the source: a lossless frame a worker recorded sending
//! (its render state and watermark) is rendered again from the encrypted bundle, and its pixel
//! hash compared with the recorded one (`readroom grade verify`). The renderer is deterministic,
//! so an equal hash shows that the grade's frame is exactly what that state of that bundle
//! looks like, marked for that viewer session.

use std::sync::Arc;

use readroom_domain::view::ViewState;
use readroom_store::ObjectStore;

use crate::keys::WorkerIdentity;
use crate::render;
use crate::stream::pipeline::{PipelineError, open_images};
use crate::watermark::Watermark;

/// Decoded images kept while rendering one frame.
const CACHE_BYTES: usize = 256 * 1024 * 1024;

/// What a recorded lossless frame was rendered from.
#[derive(Debug, Clone)]
pub struct RecordedFrame {
    /// The case's bundle object key.
    pub bundle: String,
    /// Its prior visit's bundle object key, if the case has one.
    pub prior_bundle: Option<String>,
    /// The render state the worker recorded.
    pub state: ViewState,
    /// The watermark the frame carried.
    pub mark: Watermark,
}

/// Renders `recorded` again from its encrypted bundle(s) and returns the SHA-256 (lowercase
/// hex) of the frame's RGB pixels, the hash a lossless frame is recorded and graded with.
/// Blocking: call on a blocking thread.
pub fn rerender_sha256(
    store: &Arc<dyn ObjectStore>,
    handle: &tokio::runtime::Handle,
    identities: &[WorkerIdentity],
    recorded: &RecordedFrame,
) -> Result<String, PipelineError> {
    recorded
        .state
        .viewport
        .validate()
        .map_err(|err| PipelineError::Frame(format!("recorded viewport: {err}")))?;
    let (mut images, shape) = open_images(
        store,
        handle,
        identities,
        &recorded.bundle,
        recorded.prior_bundle.as_deref(),
        CACHE_BYTES,
    )?;
    let rendered = render::render(&recorded.state, &shape, &mut images, &recorded.mark)
        .map_err(|err| PipelineError::Frame(err.to_string()))?;
    Ok(rendered.frame.sha256_hex())
}
