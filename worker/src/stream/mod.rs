//! Streaming: one WebRTC session per viewer, fed by the renderer and the H.264 encoder.
//!
//! [`Streamer`] is the worker's front door: [`Streamer::open`] takes a ticket from the server,
//! the browser's SDP offer and its viewport, admits the ticket ([`crate::admission`]), opens the
//! encrypted bundle with ranged reads, answers the offer and runs the session (the sans-IO
//! [`machine`], driven by `session`) until it ends; each ended session produces one
//! [`SessionReport`], and case switches and lossless frames are reported as they happen
//! ([`SessionEvent`]).
//! [`Streamer::end`] ends the sessions a filter names (revocation), [`Streamer::drain`] stops
//! new ones. The settings are `readroom_domain::stream_config::StreamConfig`.
//! - [`machine`]: the decisions of a session as a state machine without IO (inputs in, outputs
//!   out, `now` passed in); `session` is its async driver.
//! - [`ports`]: the UDP port of the next session.
//! - [`peer`]: the webrtc-rs peer connection.
//! - [`pipeline`]: the blocking half (decrypted case → render → encode → PNG).
//! - [`budget`]: the lossless budget (how many full-resolution pixels lossless frames may show).
//! - [`rtcp`]: keyframe requests and loss reports from the browser.

mod budget;
pub mod machine;
pub mod peer;
pub mod pipeline;
pub mod ports;
mod prefetch;
pub mod rtcp;
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use readroom_domain::ticket::TicketVerifier;
use readroom_store::ObjectStore;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::admission::{Admission, AdmissionError, TicketGate};
use crate::keys::WorkerIdentity;
use crate::watermark::Watermark;
use pipeline::Pipeline;
pub use readroom_domain::stream_config::{IceServer, StreamConfig};
pub use readroom_domain::workers::{
    EndReason, LosslessRecord, OpenSession, RefusalCode, SessionEvent, SessionFilter, SessionInfo,
    SessionOpened, SessionReport, WorkerRefusal,
};

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
    /// The worker is draining and takes no new sessions.
    #[error("the worker is shutting down and takes no new sessions")]
    Draining,
    /// The case could not be opened or a local failure.
    #[error("{0}")]
    Internal(String),
}

impl OpenError {
    /// The refusal as the control protocol carries it.
    pub fn refusal(&self) -> WorkerRefusal {
        let code = match self {
            OpenError::Ticket(_) => RefusalCode::Ticket,
            OpenError::BadOffer(_) => RefusalCode::BadOffer,
            OpenError::BadViewport(_) => RefusalCode::BadViewport,
            OpenError::Busy(_) => RefusalCode::Busy,
            OpenError::Draining => RefusalCode::Draining,
            OpenError::Internal(_) => RefusalCode::Internal,
        };
        WorkerRefusal {
            code,
            message: self.to_string(),
        }
    }
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

/// A running session, as the streamer tracks it.
struct SessionEntry {
    info: SessionInfo,
    /// Tells the session loop to end (revocation, shutdown).
    end: watch::Sender<Option<EndReason>>,
}

struct Inner {
    config: StreamConfig,
    identities: Arc<[WorkerIdentity]>,
    store: Arc<dyn ObjectStore>,
    gate: Mutex<TicketGate>,
    sessions: Mutex<HashMap<Uuid, SessionEntry>>,
    events: mpsc::UnboundedSender<SessionEvent>,
    draining: AtomicBool,
    metrics: StreamMetrics,
}

impl Inner {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, SessionEntry>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits `ticket` as the next case of a session (same user and viewer session).
    fn switch_case(&self, current: &Admission, ticket: &str) -> Result<Admission, AdmissionError> {
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        gate.switch_case(current, ticket, now_unix())
    }

    /// What `ticket` would admit `current`'s session to next, without using the ticket up.
    fn check_next(&self, current: &Admission, ticket: &str) -> Result<Admission, AdmissionError> {
        let gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        gate.check_next(current, ticket, now_unix())
    }

    /// Records that session `id` now shows `next` (after its bundle opened, or from the case
    /// made ready beforehand when `prefetched`).
    fn case_opened(&self, id: Uuid, previous: &Admission, next: &Admission, prefetched: bool) {
        if let Some(entry) = self.sessions().get_mut(&id) {
            entry.info.case = next.case.clone();
            entry.info.study = next.study.clone();
        }
        self.emit(SessionEvent::CaseOpened {
            stream_id: id,
            user: next.user.clone(),
            case: next.case.clone(),
            previous_case: previous.case.clone(),
            prefetched,
        });
    }

    fn emit(&self, event: SessionEvent) {
        let _ = self.events.send(event);
    }

    fn cache_bytes(&self) -> usize {
        self.config.cache_mib.saturating_mul(1024 * 1024)
    }

    fn finish(&self, report: SessionReport) {
        self.sessions().remove(&report.stream_id);
        metrics::gauge!("readroom_stream_sessions").decrement(1.0);
        self.emit(SessionEvent::Ended(Box::new(report)));
    }
}

/// The worker's streaming front door (cheap to clone).
#[derive(Clone)]
pub struct Streamer {
    inner: Arc<Inner>,
}

impl Streamer {
    /// A streamer decrypting with `identities`, reading `store`, trusting tickets verified by
    /// `verifier`; what happens in sessions (case switches, lossless frames, ends) is reported
    /// on the returned receiver.
    pub fn new(
        config: StreamConfig,
        identities: Vec<WorkerIdentity>,
        store: Arc<dyn ObjectStore>,
        verifier: TicketVerifier,
    ) -> (Streamer, mpsc::UnboundedReceiver<SessionEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let identities: Arc<[WorkerIdentity]> = Arc::from(identities);
        let inner = Inner {
            config,
            identities: Arc::clone(&identities),
            store,
            gate: Mutex::new(TicketGate::new(verifier).with_identities(identities)),
            sessions: Mutex::new(HashMap::new()),
            events,
            draining: AtomicBool::new(false),
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
        self.inner.sessions().len()
    }

    /// The sessions running now.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.inner
            .sessions()
            .values()
            .map(|entry| entry.info.clone())
            .collect()
    }

    /// Render/encode timing so far.
    pub fn metrics(&self) -> &StreamMetrics {
        &self.inner.metrics
    }

    /// Tells the sessions `filter` names to end with `reason`; returns how many. Their
    /// reports follow as [`SessionEvent::Ended`].
    pub fn end(&self, filter: &SessionFilter, reason: EndReason) -> usize {
        let sessions = self.inner.sessions();
        let mut ended = 0;
        for entry in sessions.values().filter(|e| filter.matches(&e.info)) {
            entry.end.send_replace(Some(reason));
            ended += 1;
        }
        ended
    }

    /// Takes no new sessions from now on (a drain before shutdown); running ones go on.
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    /// Whether [`Streamer::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// Ends every session (at shutdown); their reports follow.
    pub fn shutdown(&self) {
        self.drain();
        for entry in self.inner.sessions().values() {
            entry.end.send_replace(Some(EndReason::Shutdown));
        }
    }

    /// Admits the ticket, opens the case, answers the offer and starts the session.
    pub async fn open(&self, request: OpenSession) -> Result<SessionOpened, OpenError> {
        let inner = &self.inner;
        if self.is_draining() {
            return Err(OpenError::Draining);
        }
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
            key: crate::watermark::worker_key(&inner.config.watermark_key_file)
                .map_err(|err| OpenError::Internal(err.to_string()))?,
        };
        let store = Arc::clone(&inner.store);
        let handle = tokio::runtime::Handle::current();
        let worker = Arc::clone(inner);
        let opened = admission.clone();
        let viewport = request.viewport;
        // The case is opened (fetch, decrypt, first decode) on the blocking pool while the peer
        // connection is built and its answer made: neither waits for the other.
        let opening = tokio::task::spawn_blocking(move || {
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
        });
        let (opening, answered) =
            tokio::join!(opening, peer::answer(&inner.config, &request.offer_sdp));
        let pipeline = opening
            .map_err(|err| OpenError::Internal(format!("opening the case failed: {err}")))
            .and_then(|opened| opened.map_err(|err| OpenError::Internal(err.to_string())));
        let pipeline = match pipeline {
            Ok(pipeline) => pipeline,
            Err(err) => {
                if let Ok((peer, _)) = answered {
                    let _ = peer.connection.close().await;
                }
                return Err(err);
            }
        };
        let (peer, answer_sdp) = answered.map_err(|err| match err {
            peer::PeerError::BadOffer(message) => OpenError::BadOffer(message),
            other => OpenError::Internal(other.to_string()),
        })?;
        let (end_tx, end_rx) = watch::channel(None);
        inner.sessions().insert(
            stream_id,
            SessionEntry {
                info: SessionInfo {
                    stream_id,
                    user: admission.user.clone(),
                    case: admission.case.clone(),
                    viewer_session: admission.session.clone(),
                    study: admission.study.clone(),
                },
                end: end_tx,
            },
        );
        metrics::gauge!("readroom_stream_sessions").increment(1.0);
        tracing::info!(session = %stream_id, user_id = %admission.user, "stream session started");
        tokio::spawn(session::run(
            Arc::clone(inner),
            stream_id,
            admission,
            peer,
            pipeline,
            end_rx,
        ));
        Ok(SessionOpened {
            stream_id,
            answer_sdp,
        })
    }
}

/// The current Unix second.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
