//! Streaming: one WebRTC session per viewer, fed by the renderer and the H.264 encoder.
//!
//! [`Streamer`] is the worker's front door: [`Streamer::open`] takes a ticket from the server,
//! the browser's SDP offer and its viewport, admits the ticket ([`crate::admission`]), opens the
//! encrypted bundle with ranged reads, answers the offer and runs the session
//! ([`session`]) until it ends; each ended session produces one [`SessionReport`].
//! - [`config`]: `[stream]` settings (UDP ports, public IPs, ICE servers, cache, timeouts).
//! - [`peer`]: the webrtc-rs peer connection.
//! - [`pipeline`]: the blocking half (decrypted case → render → encode → PNG).
//! - [`rtcp`]: keyframe requests and loss reports from the browser.

pub mod config;
pub mod peer;
pub mod pipeline;
pub mod rtcp;
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use readroom_domain::ticket::TicketVerifier;
use readroom_domain::view::Viewport;
use readroom_store::ObjectStore;
use serde::Serialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::admission::{Admission, AdmissionError, TicketGate};
use crate::keys::WorkerIdentity;
use crate::watermark::Watermark;
pub use config::{IceServer, StreamConfig};
use pipeline::Pipeline;

/// What the browser sends to start a session (through the server).
#[derive(Debug, Clone)]
pub struct OpenRequest {
    /// The server's ticket for the case.
    pub ticket: String,
    /// The browser's SDP offer.
    pub offer_sdp: String,
    /// The browser's drawing surface.
    pub viewport: Viewport,
}

/// The worker's answer.
#[derive(Debug, Clone)]
pub struct OpenAnswer {
    /// SDP answer with all candidates.
    pub answer_sdp: String,
    /// This stream session's id (one peer connection).
    pub stream_id: Uuid,
}

/// Why a session was not started.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The ticket was refused.
    #[error("ticket refused: {0}")]
    Ticket(#[from] AdmissionError),
    /// The offer cannot be answered.
    #[error("{0}")]
    BadOffer(String),
    /// The viewport is out of range.
    #[error("{0}")]
    BadViewport(String),
    /// The worker has no room for another session.
    #[error("the worker is at its session limit ({0})")]
    Busy(usize),
    /// The case could not be opened or a local failure.
    #[error("{0}")]
    Internal(String),
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The browser closed the connection or the data channel (tab closed, navigation).
    Closed,
    /// ICE failed.
    IceFailed,
    /// Disconnected and did not come back within the grace period.
    Disconnected,
    /// The peer never connected.
    ConnectTimeout,
    /// No message for the idle timeout.
    Idle,
    /// The worker is shutting down.
    Shutdown,
}

/// A lossless frame sent during a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LosslessRecord {
    /// Frame number.
    pub frame: u64,
    /// SHA-256 of its pixels.
    pub sha256: String,
    /// Bytes of the image actually sent: all of it, or what went out before a newer frame
    /// stopped it.
    pub bytes: u64,
    /// What the browser said after re-hashing (None: it did not say).
    pub verified: Option<bool>,
}

/// One ended session, for the record.
#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    /// Stream session id.
    pub stream_id: Uuid,
    /// Viewer session id.
    pub viewer_session: String,
    /// User id.
    pub user: String,
    /// The case shown last.
    pub case: String,
    /// Start (Unix seconds).
    pub started_unix: i64,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Video frames sent.
    pub frames: u64,
    /// Views used (`layout:exam`).
    pub views: Vec<String>,
    /// Lossless frames sent, with their hashes.
    pub lossless: Vec<LosslessRecord>,
    /// Bytes of video and lossless frames sent (a lossless frame stopped by a newer one counts
    /// what went out).
    pub bytes_sent: u64,
    /// Data-channel messages received.
    pub messages: u64,
    /// Messages refused.
    pub refused: u64,
    /// Why it ended.
    pub end: EndReason,
}

/// Render and encode times, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct StreamMetrics {
    frames: AtomicU64,
    render_us: AtomicU64,
    encode_us: AtomicU64,
}

impl StreamMetrics {
    fn frame(&self, render_ms: f64, encode_ms: f64) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.render_us
            .fetch_add((render_ms * 1e3) as u64, Ordering::Relaxed);
        self.encode_us
            .fetch_add((encode_ms * 1e3) as u64, Ordering::Relaxed);
        metrics::histogram!("readroom_render_seconds").record(render_ms / 1e3);
        metrics::histogram!("readroom_encode_seconds").record(encode_ms / 1e3);
    }

    /// (frames, mean render ms, mean encode ms) since start.
    pub fn snapshot(&self) -> (u64, f64, f64) {
        let frames = self.frames.load(Ordering::Relaxed);
        let per = |us: &AtomicU64| {
            if frames == 0 {
                0.0
            } else {
                us.load(Ordering::Relaxed) as f64 / 1e3 / frames as f64
            }
        };
        (frames, per(&self.render_us), per(&self.encode_us))
    }
}

struct Inner {
    config: StreamConfig,
    identities: Vec<WorkerIdentity>,
    store: Arc<dyn ObjectStore>,
    gate: Mutex<TicketGate>,
    sessions: Mutex<HashMap<Uuid, String>>,
    reports: mpsc::UnboundedSender<SessionReport>,
    shutting_down: AtomicBool,
    metrics: StreamMetrics,
}

impl Inner {
    fn switch_case(&self, current: &Admission, ticket: &str) -> Result<Admission, AdmissionError> {
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        gate.switch_case(current, ticket, now_unix())
    }

    fn cache_bytes(&self) -> usize {
        self.config.cache_mib.saturating_mul(1024 * 1024)
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    fn finish(&self, report: SessionReport) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&report.stream_id);
        metrics::gauge!("readroom_stream_sessions").decrement(1.0);
        let _ = self.reports.send(report);
    }
}

/// The worker's streaming front door (cheap to clone).
#[derive(Clone)]
pub struct Streamer {
    inner: Arc<Inner>,
}

impl Streamer {
    /// A streamer decrypting with `identities`, reading `store`, trusting tickets verified by
    /// `verifier`; ended sessions are reported on the returned receiver.
    pub fn new(
        config: StreamConfig,
        identities: Vec<WorkerIdentity>,
        store: Arc<dyn ObjectStore>,
        verifier: TicketVerifier,
    ) -> (Streamer, mpsc::UnboundedReceiver<SessionReport>) {
        let (reports, receiver) = mpsc::unbounded_channel();
        let inner = Inner {
            config,
            identities,
            store,
            gate: Mutex::new(TicketGate::new(verifier)),
            sessions: Mutex::new(HashMap::new()),
            reports,
            shutting_down: AtomicBool::new(false),
            metrics: StreamMetrics::default(),
        };
        (
            Streamer {
                inner: Arc::new(inner),
            },
            receiver,
        )
    }

    /// The settings.
    pub fn config(&self) -> &StreamConfig {
        &self.inner.config
    }

    /// Sessions running now.
    pub fn active_sessions(&self) -> usize {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Render/encode timing so far.
    pub fn metrics(&self) -> &StreamMetrics {
        &self.inner.metrics
    }

    /// Ends every session (at shutdown); their reports follow.
    pub fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Admits the ticket, opens the case, answers the offer and starts the session.
    pub async fn open(&self, request: OpenRequest) -> Result<OpenAnswer, OpenError> {
        let inner = &self.inner;
        request
            .viewport
            .validate()
            .map_err(|err| OpenError::BadViewport(err.to_string()))?;
        if self.active_sessions() >= inner.config.max_sessions {
            return Err(OpenError::Busy(inner.config.max_sessions));
        }
        let codec = peer::check_offer(&request.offer_sdp).map_err(OpenError::BadOffer)?;
        let admission = {
            let mut gate = inner.gate.lock().unwrap_or_else(|e| e.into_inner());
            gate.admit(&request.ticket, now_unix())?
        };
        let stream_id = Uuid::new_v4();
        let watermark = Watermark {
            grader: admission.label.clone(),
            session: Uuid::parse_str(&admission.session).unwrap_or(stream_id),
            unix_minute: (now_unix() / 60) as u32,
        };
        let store = Arc::clone(&inner.store);
        let handle = tokio::runtime::Handle::current();
        let worker = Arc::clone(inner);
        let opened = admission.clone();
        let viewport = request.viewport;
        let pipeline = tokio::task::spawn_blocking(move || {
            Pipeline::open(
                &store,
                &handle,
                &worker.identities,
                &opened,
                viewport,
                watermark,
                worker.cache_bytes(),
                worker.config.bitrate,
                codec,
            )
        })
        .await
        .map_err(|err| OpenError::Internal(err.to_string()))?
        .map_err(|err| OpenError::Internal(err.to_string()))?;
        let (peer, answer_sdp) = peer::answer(&inner.config, &request.offer_sdp)
            .await
            .map_err(|err| match err {
                peer::PeerError::BadOffer(message) => OpenError::BadOffer(message),
                other => OpenError::Internal(other.to_string()),
            })?;
        inner
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stream_id, admission.user.clone());
        metrics::gauge!("readroom_stream_sessions").increment(1.0);
        tracing::info!(session = %stream_id, user_id = %admission.user, "stream session started");
        tokio::spawn(session::run(
            Arc::clone(inner),
            stream_id,
            admission,
            peer,
            pipeline,
        ));
        Ok(OpenAnswer {
            answer_sdp,
            stream_id,
        })
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
