//! The async driver of one viewer session: it turns what happens on the peer connection, the
//! data channel, the blocking pool and the clock into inputs of the sans-IO [`Session`]
//! ([`super::machine`]) and performs its outputs: data-channel sends, view changes, render +
//! encode + write, case switches, the lossless encode and its chunked send, session events, the
//! close and the end report. The decisions (rate limit, coalescing, settle, timeouts, end
//! reason, counters) are the machine's; what is left here is IO.
//!
//! A panic in the pipeline (render, encode, a view change, opening the next case) is caught
//! and ends the session with [`EndReason::Error`]; a panic anywhere else in this task still
//! writes the report and frees the slot ([`Guarded`]'s `Drop`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use readroom_domain::protocol::{ChunkHeader, ErrorCode, ProtocolError, ServerMessage, VERSION};
use rtc::media::Sample;
use rtc::rtp::extension::HeaderExtension;
use rtc::rtp::extension::playout_delay_extension::PlayoutDelayExtension;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::RTCPeerConnectionState;

use super::machine::{
    Change, FrameInfo, Input, OpenedCase, Output, Params, RenderJob, Session, WorkError,
    lifetime_deadline,
};
use super::peer::{PLAYOUT_DELAY, Peer, PeerEvent};
use super::pipeline::{
    FrameOut, LosslessOut, Pipeline, PipelineError, PreparedCase, encode_lossless,
};
use super::prefetch::{self, Plan, Prefetch, Slot};
use super::rtcp::{Feedback, feedback};
use super::{EndReason, Inner, now_unix};
use crate::admission::Admission;
use crate::watermark::Watermark;

enum Incoming {
    Text(Bytes),
    Binary,
    Closed,
}

/// The first frame, rendered and encoded while the connection comes up; the pipeline comes
/// back with it.
type FirstRender = JoinHandle<(Pipeline, Result<FrameOut, PipelineError>)>;

/// Runs a session to its end. `pipeline` is already open on the admitted case.
pub(super) async fn run(
    inner: Arc<Inner>,
    id: Uuid,
    admission: Admission,
    peer: Peer,
    pipeline: Pipeline,
    end: watch::Receiver<Option<EndReason>>,
) {
    let now = Instant::now();
    let config = &inner.config;
    let params = Params {
        stream_id: id,
        user: admission.user.clone(),
        viewer_session: admission.session.clone(),
        case: admission.case.clone(),
        shape: pipeline.shape().clone(),
        started_unix: now_unix(),
        not_after: lifetime_deadline(now, SystemTime::now(), admission.not_after),
        settle: config.settle(),
        idle_timeout: Duration::from_secs(config.idle_timeout_secs),
        connect_timeout: Duration::from_secs(config.connect_timeout_secs),
        bitrate: config.bitrate,
        lossless_budget: config.lossless_budget,
        lossless_spent_px: admission.lossless_spent_px,
        mark: Some(pipeline.watermark().record()),
    };
    let watermark = pipeline.watermark().clone();
    // The first frame is rendered and encoded while the connection (ICE, DTLS, SCTP) comes up,
    // so that it is sent as soon as the data channel opens.
    let first = tokio::task::spawn_blocking(move || {
        let mut pipeline = pipeline;
        let frame = pipeline.frame(true);
        (pipeline, frame)
    });
    let (incoming_tx, incoming) = mpsc::unbounded_channel();
    let (feedback_tx, feedback_rx) = mpsc::unbounded_channel();
    let (lossless_tx, lossless_rx) = mpsc::unbounded_channel();
    let (sent_tx, sent_rx) = mpsc::unbounded_channel();
    spawn_feedback_reader(Arc::clone(&peer.track), feedback_tx);
    let mut driver = Driver {
        session: Guarded {
            machine: Session::new(now, params),
            inner: Arc::clone(&inner),
            finished: false,
        },
        inner,
        id,
        admission,
        peer,
        pipeline: None,
        watermark,
        prefetch: Prefetch::new(),
        channel: None,
        payload_type: None,
        last_sample: now,
        current_frame: Arc::new(AtomicU64::new(0)),
        incoming_tx,
        incoming,
        feedback_rx,
        lossless_tx,
        lossless_rx,
        sent_tx,
        sent_rx,
        admitted: Some(now),
    };
    driver.run(first, end).await;
}

/// The machine, and the promise that its report is written even if the task panics.
struct Guarded {
    machine: Session,
    inner: Arc<Inner>,
    finished: bool,
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Unwinding from a panic in the driver (a bug): the session ends as failed, with the
        // counters so far, and frees its slot. Dropped otherwise (the runtime shutting down):
        // it ends as a shutdown.
        let reason = if std::thread::panicking() {
            tracing::error!(case = %self.machine.case(), "a stream session task panicked");
            EndReason::Error
        } else {
            EndReason::Shutdown
        };
        let now = Instant::now();
        self.machine.handle_input(now, Input::End(reason));
        self.machine.handle_input(now, Input::Drained);
        while let Some(output) = self.machine.poll_output() {
            match output {
                Output::Event(event) => self.inner.emit(event),
                Output::Ended(report) => self.inner.finish(report),
                _ => {}
            }
        }
    }
}

struct Driver {
    session: Guarded,
    inner: Arc<Inner>,
    id: Uuid,
    admission: Admission,
    peer: Peer,
    /// Home between operations; None while the first frame is rendered, or once lost.
    pipeline: Option<Pipeline>,
    /// The session's watermark (for rendering a prefetched case beside the pipeline).
    watermark: Watermark,
    /// The next case, made ready beside the pipeline.
    prefetch: Prefetch,
    channel: Option<Arc<dyn DataChannel>>,
    payload_type: Option<u8>,
    last_sample: Instant,
    /// The last frame sent, for lossless sends to stop at a newer one.
    current_frame: Arc<AtomicU64>,
    incoming_tx: mpsc::UnboundedSender<Incoming>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    feedback_rx: mpsc::UnboundedReceiver<Feedback>,
    lossless_tx: mpsc::UnboundedSender<LosslessOut>,
    lossless_rx: mpsc::UnboundedReceiver<LosslessOut>,
    /// (frame, bytes of its image sent) when a lossless send ends, completed or stopped.
    sent_tx: mpsc::UnboundedSender<(u64, u64)>,
    sent_rx: mpsc::UnboundedReceiver<(u64, u64)>,
    /// When the session was admitted, until its first frame is written (then `None`).
    admitted: Option<Instant>,
}

impl Driver {
    async fn run(&mut self, first: FirstRender, mut end: watch::Receiver<Option<EndReason>>) {
        let mut first = Some(first);
        loop {
            while let Some(output) = self.session.machine.poll_output() {
                self.perform(output).await;
            }
            if self.session.machine.is_done() {
                return;
            }
            let deadline = self.session.machine.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let input = tokio::select! {
                ended = end.changed() => match (ended, *end.borrow_and_update()) {
                    (_, Some(reason)) => Input::End(reason),
                    (Err(_), None) => Input::End(EndReason::Shutdown),
                    (Ok(()), None) => continue,
                },
                done = async { first.as_mut().expect("guarded").await }, if first.is_some() => {
                    first = None;
                    match done {
                        Ok((pipeline, frame)) => {
                            self.pipeline = Some(pipeline);
                            Input::FirstFrameReady(frame.map_err(|err| {
                                tracing::debug!(session = %self.id, error = %err, "the first frame failed");
                                failed(err)
                            }))
                        }
                        Err(_) => {
                            tracing::error!(session = %self.id, "the first render panicked");
                            Input::FirstFrameReady(Err(WorkError::Panicked))
                        }
                    }
                },
                event = self.peer.events.recv() => match event {
                    Some(PeerEvent::DataChannel(dc)) => {
                        spawn_channel_reader(Arc::clone(&dc), self.incoming_tx.clone());
                        self.channel = Some(dc);
                        Input::ChannelOpened
                    }
                    Some(PeerEvent::State(state)) => match state {
                        RTCPeerConnectionState::Connected => Input::PeerConnected,
                        RTCPeerConnectionState::Disconnected => Input::PeerDisconnected,
                        RTCPeerConnectionState::Failed => Input::PeerFailed,
                        RTCPeerConnectionState::Closed => Input::PeerClosed,
                        _ => continue,
                    },
                    None => Input::PeerClosed,
                },
                message = self.incoming.recv() => match message {
                    Some(Incoming::Text(text)) => Input::Text(text),
                    Some(Incoming::Binary) => Input::Binary,
                    Some(Incoming::Closed) | None => Input::ChannelClosed,
                },
                done = async { self.prefetch.task().expect("guarded").await }, if self.prefetch.task().is_some() => {
                    let (waiting, answer) = self.prefetch.finished(done);
                    if let Err(WorkError::Panicked) = answer {
                        tracing::error!(session = %self.id, "preparing the next case panicked");
                    }
                    for seq in waiting {
                        self.feed(Input::PrefetchDone { seq, result: answer.clone() });
                    }
                    continue;
                },
                Some(fb) = self.feedback_rx.recv() => Input::Feedback(fb),
                Some(out) = self.lossless_rx.recv() => Input::LosslessEncoded(out),
                Some((frame, bytes)) = self.sent_rx.recv() => Input::LosslessSent { frame, bytes },
                () = sleep => Input::Timeout,
            };
            self.feed(input);
        }
    }

    fn feed(&mut self, input: Input) {
        self.session.machine.handle_input(Instant::now(), input);
        self.current_frame
            .store(self.session.machine.current_frame(), Ordering::SeqCst);
    }

    async fn perform(&mut self, output: Output) {
        match output {
            Output::SendText(message) => send_text(&self.channel, &message).await,
            Output::Apply { seq, change } => {
                let result = match self.pipeline.as_mut() {
                    None => Err(WorkError::Panicked),
                    Some(pipeline) => {
                        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| match change {
                            Change::View(set) => pipeline.apply(&set),
                            Change::Pointer { action, at, delta } => {
                                pipeline.pointer(action, at, delta)
                            }
                        }));
                        match applied {
                            Ok(result) => result.map_err(WorkError::Failed),
                            Err(_) => {
                                tracing::error!(session = %self.id, "applying a view change panicked");
                                self.pipeline = None;
                                Err(WorkError::Panicked)
                            }
                        }
                    }
                };
                self.feed(Input::Applied { seq, result });
            }
            Output::Render { job, waiting_since } => self.render(job, waiting_since).await,
            Output::SwitchCase { seq, ticket } => {
                let result = self.switch_case(&ticket).await;
                self.feed(Input::SwitchDone { seq, result });
            }
            Output::Prefetch { seq, ticket } => self.prefetch(seq, &ticket),
            Output::SetBitrate(bitrate) => {
                if let Some(pipeline) = self.pipeline.as_mut() {
                    pipeline.set_bitrate(bitrate);
                }
            }
            Output::EncodeLossless { frame } => {
                // The still image is encoded from a copy of the frame on the blocking pool.
                if let Some((number, image)) = self.pipeline.as_ref().and_then(Pipeline::last_frame)
                    && number == frame
                {
                    let done = self.lossless_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        if let Ok(out) = encode_lossless(number, &image) {
                            let _ = done.send(out);
                        }
                    });
                }
            }
            Output::SendLossless(out) => match self.channel.clone() {
                Some(dc) => {
                    let chunk = self.inner.config.chunk_bytes;
                    let current = Arc::clone(&self.current_frame);
                    tokio::spawn(send_lossless(dc, out, chunk, current, self.sent_tx.clone()));
                }
                None => self.feed(Input::LosslessSent {
                    frame: out.frame,
                    bytes: 0,
                }),
            },
            Output::Event(event) => self.inner.emit(event),
            Output::Close => {
                let _ = self.peer.connection.close().await;
                while let Ok((frame, bytes)) = self.sent_rx.try_recv() {
                    self.feed(Input::LosslessSent { frame, bytes });
                }
                self.feed(Input::Drained);
            }
            Output::Ended(report) => {
                let cached = self
                    .pipeline
                    .as_ref()
                    .map(Pipeline::cached_bytes)
                    .unwrap_or(0)
                    + self.prefetch.cached_bytes();
                self.pipeline = None;
                self.prefetch = Prefetch::new();
                tracing::info!(
                    session = %self.id,
                    user_id = %report.user,
                    reason = ?report.end,
                    frames = report.frames,
                    released_cache_bytes = cached,
                    "stream session ended"
                );
                self.session.finished = true;
                self.inner.finish(report);
            }
        }
    }

    /// Makes the frame `job` asks for, writes it to the track and tells the machine.
    async fn render(&mut self, job: RenderJob, waiting_since: Option<Instant>) {
        if self.payload_type.is_none() {
            self.payload_type = negotiated_payload_type(&self.peer).await;
            if self.payload_type.is_none() {
                return self.feed(Input::RenderSkipped(job));
            }
        }
        let result = match job {
            RenderJob::Prerendered(out) => Some(Ok(Some(out))),
            RenderJob::Frame { keyframe } => {
                self.blocking(move |p| p.frame(keyframe).map(Some)).await
            }
            RenderJob::Keyframe => self.blocking(Pipeline::keyframe).await,
        };
        let result = match result {
            None => {
                tracing::error!(session = %self.id, "rendering or encoding panicked");
                Err(WorkError::Panicked)
            }
            Some(Err(err)) => {
                tracing::warn!(session = %self.id, error = %err, "frame failed");
                Err(failed(err))
            }
            Some(Ok(None)) => Ok(None),
            Some(Ok(Some(out))) => Ok(self.write(out, waiting_since).await),
        };
        self.feed(Input::FrameDone(result));
    }

    /// Writes a frame to the video track; what the machine needs to know of it.
    async fn write(&mut self, out: FrameOut, waiting_since: Option<Instant>) -> Option<FrameInfo> {
        let pipeline = self.pipeline.as_ref()?;
        let elapsed = self.last_sample.elapsed();
        self.last_sample = Instant::now();
        let written_at = Instant::now();
        let payload_type = self.payload_type.unwrap_or(0);
        if let Err(err) = write_frame(&self.peer, payload_type, &out, elapsed).await {
            tracing::warn!(session = %self.id, error = %err, "writing a video frame failed");
        }
        // Where the time of an input goes (RUST_LOG=readroom_worker::stream=debug): waiting
        // since the first input this frame answers, render, encode, handing the packets to
        // the peer connection.
        tracing::debug!(
            session = %self.id,
            frame = out.frame,
            input_ms = waiting_since.map(|at| at.elapsed().as_secs_f64() * 1e3),
            render_ms = out.render_ms,
            encode_ms = out.encode_ms,
            write_ms = written_at.elapsed().as_secs_f64() * 1e3,
            bytes = out.data.len(),
            "frame sent"
        );
        self.inner.metrics.frame(out.render_ms, out.encode_ms);
        if let Some(admitted) = self.admitted.take() {
            metrics::histogram!("readroom_first_frame_seconds")
                .record(admitted.elapsed().as_secs_f64());
        }
        if let Some(at) = waiting_since {
            metrics::histogram!("readroom_input_to_frame_seconds")
                .record(at.elapsed().as_secs_f64());
        }
        Some(FrameInfo {
            frame: out.frame,
            bytes: out.data.len() as u64,
            state: pipeline.state().clone(),
            measurements: pipeline.measurements(),
            revealed_px: pipeline.revealed_px(),
        })
    }

    /// Checks a `prefetch_case` ticket and starts getting its case ready beside the pipeline
    /// (or joins the preparation under way, or answers at once when it is ready).
    fn prefetch(&mut self, seq: u64, ticket: &str) {
        let next = match self.inner.check_next(&self.admission, ticket) {
            Ok(next) => next,
            Err(err) => {
                let error = ProtocolError::new(ErrorCode::Forbidden, err.to_string());
                let result = Err(WorkError::Failed(error));
                return self.feed(Input::PrefetchDone { seq, result });
            }
        };
        if next.case == self.admission.case {
            // Already showing it.
            let result = Ok(next.case);
            return self.feed(Input::PrefetchDone { seq, result });
        }
        match self.prefetch.request(seq, &next) {
            Plan::Answer => self.feed(Input::PrefetchDone {
                seq,
                result: Ok(next.case),
            }),
            Plan::Wait => {}
            Plan::Busy => self.feed(Input::PrefetchDone {
                seq,
                result: Err(prefetch::busy()),
            }),
            Plan::Start => {
                let viewport = match (&self.pipeline, self.session.machine.viewport()) {
                    (Some(pipeline), _) => pipeline.state().viewport,
                    (None, Some(viewport)) => viewport,
                    (None, None) => {
                        let error = ProtocolError::new(
                            ErrorCode::NotAvailable,
                            "no frame has been shown yet",
                        );
                        let result = Err(WorkError::Failed(error));
                        return self.feed(Input::PrefetchDone { seq, result });
                    }
                };
                let store = Arc::clone(&self.inner.store);
                let handle = tokio::runtime::Handle::current();
                let cache = self.inner.cache_bytes();
                let worker = Arc::clone(&self.inner);
                let watermark = self.watermark.clone();
                let target = next.clone();
                let task = tokio::task::spawn_blocking(move || {
                    PreparedCase::open(
                        &store,
                        &handle,
                        &worker.identities,
                        &target,
                        viewport,
                        &watermark,
                        cache,
                    )
                });
                self.prefetch.start(seq, next, task);
            }
        }
    }

    /// Admits `ticket` as the next case and opens it on the pipeline: the case made ready by
    /// a prefetch when there is one for it (waiting for it if it is still being prepared),
    /// otherwise fetched and opened now.
    async fn switch_case(&mut self, ticket: &str) -> Result<OpenedCase, WorkError> {
        let next = self
            .inner
            .switch_case(&self.admission, ticket)
            .map_err(|err| {
                WorkError::Failed(ProtocolError::new(ErrorCode::Forbidden, err.to_string()))
            })?;
        let prepared = match self.prefetch.take_for(&next) {
            Slot::Ready { case, .. } => Some(*case),
            Slot::Preparing { waiting, task, .. } => {
                let done = task.await;
                let ready = matches!(done, Ok(Ok(_)));
                for seq in waiting {
                    let result = if ready {
                        Ok(next.case.clone())
                    } else {
                        Err(WorkError::Failed(ProtocolError::new(
                            ErrorCode::Internal,
                            "preparing the case failed",
                        )))
                    };
                    self.feed(Input::PrefetchDone { seq, result });
                }
                done.ok().and_then(Result::ok)
            }
            Slot::Empty => None,
        };
        let store = Arc::clone(&self.inner.store);
        let handle = tokio::runtime::Handle::current();
        let cache = self.inner.cache_bytes();
        let worker = Arc::clone(&self.inner);
        let target = next.clone();
        let prefetched = prepared.is_some();
        let opened = self
            .blocking(move |p| match prepared {
                Some(case) => {
                    p.switch_to(case);
                    Ok(())
                }
                None => p.switch_case(&store, &handle, &worker.identities, &target, cache),
            })
            .await;
        match opened {
            None => {
                tracing::error!(session = %self.id, "opening the next case panicked");
                Err(WorkError::Panicked)
            }
            Some(Err(err)) => Err(failed(err)),
            Some(Ok(())) => {
                self.inner
                    .case_opened(self.id, &self.admission, &next, prefetched);
                let now = Instant::now();
                let opened = OpenedCase {
                    case: next.case.clone(),
                    shape: self
                        .pipeline
                        .as_ref()
                        .map(|p| p.shape().clone())
                        .unwrap_or_default(),
                    not_after: lifetime_deadline(now, SystemTime::now(), next.not_after),
                    lossless_spent_px: next.lossless_spent_px,
                };
                self.admission = next;
                Ok(opened)
            }
        }
    }

    /// Runs `f` on the blocking pool with the pipeline and takes the pipeline back; `None` if
    /// `f` panicked or the pipeline was gone (it is lost with it, and the session ends with
    /// [`EndReason::Error`]).
    async fn blocking<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Pipeline) -> T + Send + 'static,
    ) -> Option<T> {
        let mut pipeline = self.pipeline.take()?;
        let (pipeline, out) = tokio::task::spawn_blocking(move || {
            let out = f(&mut pipeline);
            (pipeline, out)
        })
        .await
        .ok()?;
        self.pipeline = Some(pipeline);
        Some(out)
    }
}

/// A pipeline failure as the browser is told about it (the session goes on).
fn failed(err: PipelineError) -> WorkError {
    WorkError::Failed(ProtocolError::new(ErrorCode::Internal, err.to_string()))
}

async fn negotiated_payload_type(peer: &Peer) -> Option<u8> {
    peer.sender
        .get_parameters()
        .await
        .ok()?
        .rtp_parameters
        .codecs
        .first()
        .map(|codec| codec.payload_type)
}

async fn write_frame(
    peer: &Peer,
    payload_type: u8,
    out: &FrameOut,
    since_last: Duration,
) -> Result<(), webrtc::error::Error> {
    let duration = since_last.clamp(Duration::from_millis(1), Duration::from_secs(1));
    let (min, max) = PLAYOUT_DELAY;
    // On every packet (the receiver applies it per frame); an offer without the extension
    // negotiates no id for it, and the writer then leaves it out.
    peer.track
        .sample_writer(peer.ssrc, payload_type)
        .with_extension(HeaderExtension::PlayoutDelay(PlayoutDelayExtension::new(
            min, max,
        )))
        .write_sample(&Sample {
            data: Bytes::copy_from_slice(&out.data),
            duration,
            ..Sample::new(Instant::now())
        })
        .await
}

async fn send_text(channel: &Option<Arc<dyn DataChannel>>, message: &ServerMessage) {
    let Some(dc) = channel else { return };
    if let Err(err) = dc.send_text(&message.to_json()).await {
        tracing::debug!(error = %err, "data channel send failed");
    }
}

/// Sends the announcement and the chunks; stops if a newer frame was rendered meanwhile.
/// Reports the bytes of the image that went out on `sent` when it ends, either way.
async fn send_lossless(
    dc: Arc<dyn DataChannel>,
    out: super::pipeline::LosslessOut,
    chunk_bytes: usize,
    current_frame: Arc<AtomicU64>,
    sent: mpsc::UnboundedSender<(u64, u64)>,
) {
    let frame = out.frame;
    let bytes = send_chunks(dc, out, chunk_bytes, current_frame).await;
    metrics::counter!("readroom_lossless_bytes_total").increment(bytes);
    let _ = sent.send((frame, bytes));
}

/// The announcement and chunks of a lossless frame; returns the image bytes sent.
async fn send_chunks(
    dc: Arc<dyn DataChannel>,
    out: super::pipeline::LosslessOut,
    chunk_bytes: usize,
    current_frame: Arc<AtomicU64>,
) -> u64 {
    let payload = chunk_bytes
        .saturating_sub(readroom_domain::protocol::CHUNK_HEADER_LEN)
        .max(1);
    let chunks = out.data.len().div_ceil(payload) as u32;
    let announce = ServerMessage::Lossless {
        v: VERSION,
        frame: out.frame,
        width: out.width,
        height: out.height,
        sha256: out.sha256,
        format: out.format.to_owned(),
        bytes: out.data.len() as u64,
        chunks,
    };
    if dc.send_text(&announce.to_json()).await.is_err() {
        return 0;
    }
    let mut sent = 0u64;
    for (index, part) in out.data.chunks(payload).enumerate() {
        if current_frame.load(Ordering::SeqCst) != out.frame {
            break;
        }
        let header = ChunkHeader {
            frame: out.frame,
            index: index as u32,
        };
        let mut message = BytesMut::with_capacity(part.len() + 16);
        message.extend_from_slice(&header.encode());
        message.extend_from_slice(part);
        if dc.send(message).await.is_err() {
            break;
        }
        sent += part.len() as u64;
    }
    sent
}

fn spawn_channel_reader(dc: Arc<dyn DataChannel>, tx: mpsc::UnboundedSender<Incoming>) {
    tokio::spawn(async move {
        while let Some(event) = dc.poll().await {
            let item = match event {
                DataChannelEvent::OnMessage(message) if message.is_string => {
                    Incoming::Text(message.data.freeze())
                }
                DataChannelEvent::OnMessage(_) => Incoming::Binary,
                DataChannelEvent::OnClose => Incoming::Closed,
                _ => continue,
            };
            let closed = matches!(item, Incoming::Closed);
            if tx.send(item).is_err() || closed {
                return;
            }
        }
        let _ = tx.send(Incoming::Closed);
    });
}

fn spawn_feedback_reader(
    track: Arc<webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample>,
    tx: mpsc::UnboundedSender<Feedback>,
) {
    tokio::spawn(async move {
        while let Some(event) = track.poll().await {
            let TrackLocalEvent::OnRtcpPacket(packets) = event else {
                continue;
            };
            for item in feedback(&packets) {
                if tx.send(item).is_err() {
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use readroom_domain::ticket::TicketSigner;
    use readroom_domain::view::CaseShape;
    use readroom_store::local::LocalStore;

    use super::*;
    use crate::stream::{SessionEntry, SessionEvent, SessionInfo, StreamConfig, Streamer};

    /// A streamer with one session entry, as `Streamer::open` leaves it, and that session's
    /// machine guarded as the driver holds it.
    fn session() -> (
        tempfile::TempDir,
        Streamer,
        mpsc::UnboundedReceiver<SessionEvent>,
        Guarded,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(LocalStore::open(dir.path()).expect("store"));
        let verifier = TicketSigner::from_seed(&[7; 32]).verifier();
        let (streamer, events) =
            Streamer::new(StreamConfig::default(), Vec::new(), store, verifier);
        let id = Uuid::from_u128(9);
        let (end, _) = watch::channel(None);
        let info = SessionInfo {
            stream_id: id,
            user: "u1".into(),
            case: "c1".into(),
            viewer_session: "vs1".into(),
            study: String::new(),
        };
        streamer
            .inner
            .sessions()
            .insert(id, SessionEntry { info, end });
        let params = Params {
            stream_id: id,
            user: "u1".into(),
            viewer_session: "vs1".into(),
            case: "c1".into(),
            shape: CaseShape::default(),
            started_unix: 1_800_000_000,
            not_after: None,
            settle: Duration::from_millis(150),
            idle_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(8),
            bitrate: 1_000_000,
            lossless_budget: Default::default(),
            lossless_spent_px: 0,
            mark: None,
        };
        let guarded = Guarded {
            machine: Session::new(Instant::now(), params),
            inner: Arc::clone(&streamer.inner),
            finished: false,
        };
        (dir, streamer, events, guarded)
    }

    fn ended(events: &mut mpsc::UnboundedReceiver<SessionEvent>) -> EndReason {
        match events.try_recv() {
            Ok(SessionEvent::Ended(report)) => {
                assert_eq!(report.case, "c1");
                report.end
            }
            other => panic!("expected the end report, got {other:?}"),
        }
    }

    #[test]
    fn a_panic_in_the_driver_still_reports_the_session_and_frees_its_slot() {
        let (_dir, streamer, mut events, guarded) = session();
        assert_eq!(streamer.active_sessions(), 1);
        let unwound = catch_unwind(AssertUnwindSafe(move || {
            let _held = guarded;
            panic!("a bug in the driver");
        }));
        assert!(unwound.is_err());
        assert_eq!(streamer.active_sessions(), 0, "the slot is free");
        assert_eq!(ended(&mut events), EndReason::Error);
        assert!(events.try_recv().is_err(), "one report");
    }

    #[test]
    fn a_dropped_session_task_reports_a_shutdown() {
        let (_dir, streamer, mut events, guarded) = session();
        drop(guarded);
        assert_eq!(streamer.active_sessions(), 0);
        assert_eq!(ended(&mut events), EndReason::Shutdown);
    }

    #[test]
    fn a_finished_session_is_not_reported_again() {
        let (_dir, streamer, mut events, mut guarded) = session();
        guarded.finished = true;
        drop(guarded);
        assert_eq!(streamer.active_sessions(), 1);
        assert!(events.try_recv().is_err());
    }
}
