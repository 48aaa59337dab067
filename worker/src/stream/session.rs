//! The life of one viewer session: data-channel messages in, frames and replies out, the
//! lossless settle after the view goes idle, keyframes on request, bitrate from loss reports,
//! and the end (closed, failed, idle, timed out), reported once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use readroom_domain::protocol::{
    ChunkHeader, ClientMessage, ErrorCode, ProtocolError, ServerMessage, VERSION,
};
use readroom_domain::view::ViewState;
use rtc::media::Sample;
use rtc::rtp::extension::HeaderExtension;
use rtc::rtp::extension::playout_delay_extension::PlayoutDelayExtension;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::RTCPeerConnectionState;

use super::peer::{PLAYOUT_DELAY, Peer, PeerEvent};
use super::pipeline::{FrameOut, LosslessOut, Pipeline, encode_lossless};
use super::rtcp::{Feedback, feedback, next_bitrate};
use super::{EndReason, Inner, LosslessRecord, SessionEvent, SessionReport, now_unix};
use crate::admission::Admission;

/// Most data-channel messages handled per second before `rate_limited` replies.
const MAX_MESSAGES_PER_SECOND: u32 = 200;
/// How long a disconnected peer may take to come back.
const DISCONNECT_GRACE: Duration = Duration::from_secs(5);

enum Incoming {
    Text(Bytes),
    Binary,
    Closed,
}

struct Counters {
    frames: u64,
    views: BTreeSet<String>,
    lossless: Vec<LosslessRecord>,
    bytes_sent: u64,
    messages: u64,
    refused: u64,
}

impl Counters {
    /// A lossless send ended with `bytes` of frame `frame`'s image sent.
    fn lossless_sent(&mut self, frame: u64, bytes: u64) {
        self.bytes_sent += bytes;
        if let Some(record) = self.lossless.iter_mut().rev().find(|r| r.frame == frame) {
            record.bytes += bytes;
        }
    }
}

/// Runs a session to its end. `pipeline` is already open on the admitted case.
pub(super) async fn run(
    inner: Arc<Inner>,
    id: Uuid,
    mut admission: Admission,
    mut peer: Peer,
    pipeline: Pipeline,
    mut end: watch::Receiver<Option<EndReason>>,
) {
    let started = Instant::now();
    let started_unix = now_unix();
    let mut counters = Counters {
        frames: 0,
        views: BTreeSet::new(),
        lossless: Vec::new(),
        bytes_sent: 0,
        messages: 0,
        refused: 0,
    };
    // The first frame is rendered and encoded while the connection (ICE, DTLS, SCTP) comes up,
    // so that it is sent as soon as the data channel opens; the pipeline is back when it is done.
    let mut first_render = Some(tokio::task::spawn_blocking(move || {
        let mut pipeline = pipeline;
        let frame = pipeline.frame(true);
        (pipeline, frame)
    }));
    let mut pipeline: Option<Pipeline> = None;
    let mut prerendered: Option<FrameOut> = None;
    let mut channel: Option<Arc<dyn DataChannel>> = None;
    let (incoming_tx, mut incoming) = mpsc::unbounded_channel::<Incoming>();
    let (feedback_tx, mut feedback_rx) = mpsc::unbounded_channel::<Feedback>();
    let (lossless_tx, mut lossless_rx) = mpsc::unbounded_channel::<LosslessOut>();
    // (frame, bytes of its image sent) when a lossless send ends, completed or stopped.
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<(u64, u64)>();
    spawn_feedback_reader(Arc::clone(&peer.track), feedback_tx);

    let mut connected = false;
    let mut ready_sent = false;
    let mut dirty = false;
    let mut keyframe = true;
    let mut acks: Vec<u64> = Vec::new();
    let mut settle_at: Option<tokio::time::Instant> = None;
    let current_frame = Arc::new(AtomicU64::new(0));
    let mut last_message = Instant::now();
    let mut disconnected_at: Option<Instant> = None;
    let mut window_start = Instant::now();
    let mut window_count = 0u32;
    let mut last_sample = Instant::now();
    // When the oldest view change not yet shown arrived (for the per-frame debug log).
    let mut input_at: Option<Instant> = None;
    let mut payload_type = None;
    let connect_deadline = Instant::now() + Duration::from_secs(inner.config.connect_timeout_secs);
    let idle = Duration::from_secs(inner.config.idle_timeout_secs);
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    // The render state of each lossless frame being sent, reported when its send ends.
    let mut lossless_states: HashMap<u64, ViewState> = HashMap::new();

    let reason = loop {
        let settle_sleep = async {
            match settle_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = end.changed() => match (ended, *end.borrow_and_update()) {
                (_, Some(reason)) => break reason,
                (Err(_), None) => break EndReason::Shutdown,
                (Ok(()), None) => {}
            },
            done = async { first_render.as_mut().expect("guarded").await }, if first_render.is_some() => {
                first_render = None;
                let Ok((p, frame)) = done else {
                    tracing::error!(session = %id, "the first render failed unexpectedly");
                    break EndReason::Error;
                };
                pipeline = Some(p);
                // A failure is reported when the frame is rendered again, once connected.
                prerendered = frame.ok();
            },
            event = peer.events.recv() => match event {
                Some(PeerEvent::DataChannel(dc)) => {
                    spawn_channel_reader(Arc::clone(&dc), incoming_tx.clone());
                    channel = Some(dc);
                }
                Some(PeerEvent::State(state)) => match state {
                    RTCPeerConnectionState::Connected => {
                        connected = true;
                        disconnected_at = None;
                        keyframe = true;
                        dirty = true;
                    }
                    RTCPeerConnectionState::Disconnected => {
                        disconnected_at.get_or_insert_with(Instant::now);
                    }
                    RTCPeerConnectionState::Failed => break EndReason::IceFailed,
                    RTCPeerConnectionState::Closed => break EndReason::Closed,
                    _ => {}
                },
                None => break EndReason::Closed,
            },
            message = incoming.recv() => match message {
                Some(Incoming::Closed) | None => break EndReason::Closed,
                Some(Incoming::Binary) => {
                    counters.refused += 1;
                    let error = ProtocolError::new(ErrorCode::BadMessage, "binary messages are not accepted");
                    send_text(&channel, &error.to_message()).await;
                }
                Some(Incoming::Text(text)) => {
                    last_message = Instant::now();
                    counters.messages += 1;
                    if window_start.elapsed() >= Duration::from_secs(1) {
                        window_start = Instant::now();
                        window_count = 0;
                    }
                    window_count += 1;
                    if window_count > MAX_MESSAGES_PER_SECOND {
                        counters.refused += 1;
                        let error = ProtocolError::new(ErrorCode::RateLimited, "more than 200 messages in a second");
                        send_text(&channel, &error.to_message()).await;
                        continue;
                    }
                    if let Some(render) = first_render.take() {
                        let Ok((p, frame)) = render.await else {
                            tracing::error!(session = %id, "the first render failed unexpectedly");
                            break EndReason::Error;
                        };
                        pipeline = Some(p);
                        prerendered = frame.ok();
                    }
                    let Some(p) = pipeline.as_mut() else { continue };
                    match handle_message(&inner, &admission, p, &text, &mut counters).await {
                        Ok(Handled::Changed(seq)) => {
                            input_at.get_or_insert(last_message);
                            acks.push(seq);
                            dirty = true;
                            prerendered = None;
                        }
                        Ok(Handled::Switch(seq, next)) => {
                            let Some(p) = pipeline.take() else { continue };
                            let store = Arc::clone(&inner.store);
                            let handle = tokio::runtime::Handle::current();
                            let cache = inner.cache_bytes();
                            let worker = Arc::clone(&inner);
                            let target = next.clone();
                            let Some((p, result)) = blocking(p, move |p| {
                                p.switch_case(&store, &handle, &worker.identities, &target, cache)
                            })
                            .await else {
                                tracing::error!(session = %id, "opening the next case failed unexpectedly");
                                break EndReason::Error;
                            };
                            pipeline = Some(p);
                            match result {
                                Ok(()) => {
                                    prerendered = None;
                                    inner.case_opened(id, &admission, &next);
                                    admission = next;
                                    acks.push(seq);
                                    ready_sent = false;
                                    dirty = true;
                                    keyframe = true;
                                }
                                Err(err) => {
                                    counters.refused += 1;
                                    let error = ProtocolError { code: ErrorCode::Internal, message: err.to_string(), seq: Some(seq) };
                                    send_text(&channel, &error.to_message()).await;
                                }
                            }
                        }
                        Ok(Handled::Reply(reply)) => send_text(&channel, &reply).await,
                        Ok(Handled::Nothing) => {}
                        Err(error) => {
                            counters.refused += 1;
                            send_text(&channel, &error.to_message()).await;
                        }
                    }
                }
            },
            Some(fb) = feedback_rx.recv() => match fb {
                Feedback::KeyframeRequest => keyframe = true,
                Feedback::Loss(loss) => {
                    if let Some(p) = pipeline.as_mut() {
                        let next = next_bitrate(p.bitrate(), loss, inner.config.bitrate);
                        p.set_bitrate(next);
                    }
                }
            },
            _ = settle_sleep => {
                settle_at = None;
                // The still image is encoded from a copy of the frame on the blocking pool, so a
                // view change that arrives meanwhile is rendered at once; a stale one is dropped.
                if let (Some(p), true) = (pipeline.as_ref(), channel.is_some())
                    && let Some((number, frame)) = p.last_frame()
                {
                    let done = lossless_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        if let Ok(out) = encode_lossless(number, &frame) {
                            let _ = done.send(out);
                        }
                    });
                }
            },
            Some(out) = lossless_rx.recv() => {
                if let Some(dc) = channel.clone()
                    && out.frame == current_frame.load(Ordering::SeqCst)
                {
                    counters.lossless.push(LosslessRecord { frame: out.frame, sha256: out.sha256.clone(), bytes: 0, verified: None });
                    if let Some(p) = pipeline.as_ref() {
                        lossless_states.insert(out.frame, p.state().clone());
                    }
                    let chunk = inner.config.chunk_bytes;
                    let frame_now = Arc::clone(&current_frame);
                    tokio::spawn(send_lossless(dc, out, chunk, frame_now, sent_tx.clone()));
                }
            },
            Some((frame, bytes)) = sent_rx.recv() => {
                counters.lossless_sent(frame, bytes);
                report_lossless(&inner, id, &admission, &counters, &mut lossless_states, frame);
            },
            _ = ticker.tick() => {
                if !connected && Instant::now() > connect_deadline {
                    break EndReason::ConnectTimeout;
                }
                if disconnected_at.is_some_and(|at| at.elapsed() > DISCONNECT_GRACE) {
                    break EndReason::Disconnected;
                }
                if last_message.elapsed() > idle {
                    break EndReason::Idle;
                }
                if admission.not_after > 0 && now_unix() >= admission.not_after {
                    break EndReason::Expired;
                }
            },
        }

        // Coalesce: take everything already queued before rendering once.
        let channel_open = channel.is_some();
        if !(connected && channel_open && (dirty || keyframe)) {
            continue;
        }
        if payload_type.is_none() {
            payload_type = negotiated_payload_type(&peer).await;
            if payload_type.is_none() {
                continue;
            }
        }
        // The first frame, made while connecting (dropped if the view changed since).
        let result = if let Some(out) = prerendered.take() {
            Ok(Some(out))
        } else {
            let Some(p) = pipeline.take() else { continue };
            let force = keyframe;
            let done = if dirty {
                blocking(p, move |p| p.frame(force).map(Some)).await
            } else {
                blocking(p, |p| p.keyframe()).await
            };
            let Some((p, result)) = done else {
                tracing::error!(session = %id, "rendering or encoding failed unexpectedly");
                break EndReason::Error;
            };
            pipeline = Some(p);
            result
        };
        dirty = false;
        keyframe = false;
        match result {
            Ok(Some(out)) => {
                current_frame.store(out.frame, Ordering::SeqCst);
                let elapsed = last_sample.elapsed();
                last_sample = Instant::now();
                let written_at = Instant::now();
                if let Err(err) = write_frame(&peer, payload_type.unwrap_or(0), &out, elapsed).await
                {
                    tracing::warn!(session = %id, error = %err, "writing a video frame failed");
                }
                // Where the time of an input goes (RUST_LOG=readroom_worker::stream=debug):
                // waiting since the first input this frame answers, render, encode, handing
                // the packets to the peer connection.
                tracing::debug!(
                    session = %id,
                    frame = out.frame,
                    input_ms = input_at.take().map(|at| at.elapsed().as_secs_f64() * 1e3),
                    render_ms = out.render_ms,
                    encode_ms = out.encode_ms,
                    write_ms = written_at.elapsed().as_secs_f64() * 1e3,
                    bytes = out.data.len(),
                    "frame sent"
                );
                counters.frames += 1;
                counters.bytes_sent += out.data.len() as u64;
                inner.metrics.frame(out.render_ms, out.encode_ms);
                let p = pipeline.as_ref().expect("pipeline is back");
                counters.views.insert(view_label(p));
                if !ready_sent {
                    ready_sent = true;
                    let ready = ServerMessage::Ready {
                        v: VERSION,
                        session: admission.session.clone(),
                        case: admission.case.clone(),
                        shape: p.shape().clone(),
                        state: p.state().clone(),
                        frame: out.frame,
                    };
                    send_text(&channel, &ready).await;
                }
                for seq in acks.drain(..) {
                    let ack = ServerMessage::Ack {
                        v: VERSION,
                        seq,
                        frame: out.frame,
                        state: p.state().clone(),
                        measurements: p.measurements(),
                    };
                    send_text(&channel, &ack).await;
                }
                settle_at = Some(tokio::time::Instant::now() + inner.config.settle());
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(session = %id, error = %err, "frame failed");
                let error = ProtocolError {
                    code: ErrorCode::Internal,
                    message: err.to_string(),
                    seq: acks.pop(),
                };
                acks.clear();
                send_text(&channel, &error.to_message()).await;
            }
        }
    };

    let _ = peer.connection.close().await;
    while let Ok((frame, bytes)) = sent_rx.try_recv() {
        counters.lossless_sent(frame, bytes);
        report_lossless(
            &inner,
            id,
            &admission,
            &counters,
            &mut lossless_states,
            frame,
        );
    }
    let cached = pipeline.as_ref().map(Pipeline::cached_bytes).unwrap_or(0);
    drop(pipeline);
    let report = SessionReport {
        stream_id: id,
        viewer_session: admission.session.clone(),
        user: admission.user.clone(),
        case: admission.case.clone(),
        started_unix,
        duration_ms: started.elapsed().as_millis() as u64,
        frames: counters.frames,
        views: counters.views.into_iter().collect(),
        lossless: counters.lossless,
        bytes_sent: counters.bytes_sent,
        messages: counters.messages,
        refused: counters.refused,
        end: reason,
    };
    tracing::info!(
        session = %id,
        user_id = %report.user,
        reason = ?reason,
        frames = report.frames,
        released_cache_bytes = cached,
        "stream session ended"
    );
    inner.finish(report);
}

enum Handled {
    Changed(u64),
    Switch(u64, Admission),
    Reply(ServerMessage),
    Nothing,
}

async fn handle_message(
    inner: &Arc<Inner>,
    admission: &Admission,
    pipeline: &mut Pipeline,
    text: &[u8],
    counters: &mut Counters,
) -> Result<Handled, ProtocolError> {
    let message = ClientMessage::parse(text)?;
    let seq = message.seq();
    let with_seq = |mut err: ProtocolError| {
        err.seq = Some(seq);
        err
    };
    match message {
        ClientMessage::Ping { seq, .. } => {
            Ok(Handled::Reply(ServerMessage::Pong { v: VERSION, seq }))
        }
        ClientMessage::View { set, .. } => {
            pipeline.apply(&set).map_err(with_seq)?;
            Ok(Handled::Changed(seq))
        }
        ClientMessage::Pointer {
            action,
            x,
            y,
            dx,
            dy,
            ..
        } => {
            pipeline
                .pointer(action, (x, y), (dx, dy))
                .map_err(with_seq)?;
            Ok(Handled::Changed(seq))
        }
        ClientMessage::Verified { frame, ok, .. } => {
            if let Some(record) = counters
                .lossless
                .iter_mut()
                .rev()
                .find(|r| r.frame == frame)
            {
                record.verified = Some(ok);
                Ok(Handled::Nothing)
            } else {
                Err(with_seq(ProtocolError::new(
                    ErrorCode::OutOfRange,
                    format!("no lossless frame {frame} was sent"),
                )))
            }
        }
        ClientMessage::OpenCase { ticket, .. } => {
            let next = inner.switch_case(admission, &ticket).map_err(|err| {
                with_seq(ProtocolError::new(ErrorCode::Forbidden, err.to_string()))
            })?;
            Ok(Handled::Switch(seq, next))
        }
    }
}

fn view_label(pipeline: &Pipeline) -> String {
    let state = pipeline.state();
    let layout = serde_json::to_value(state.layout)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{}:{}", layout, state.exam)
}

/// Runs `f` on the blocking pool with the pipeline and gives the pipeline back; `None` if `f`
/// panicked (the pipeline is lost with it, and the session ends with [`EndReason::Error`]).
async fn blocking<T: Send + 'static>(
    mut pipeline: Pipeline,
    f: impl FnOnce(&mut Pipeline) -> T + Send + 'static,
) -> Option<(Pipeline, T)> {
    tokio::task::spawn_blocking(move || {
        let out = f(&mut pipeline);
        (pipeline, out)
    })
    .await
    .ok()
}

/// Reports a lossless frame whose send has ended, with the state it was rendered from and the
/// bytes that actually went out (the worker's record, whatever the browser says).
fn report_lossless(
    inner: &Inner,
    id: Uuid,
    admission: &Admission,
    counters: &Counters,
    states: &mut HashMap<u64, ViewState>,
    frame: u64,
) {
    let Some(state) = states.remove(&frame) else {
        return;
    };
    let Some(record) = counters.lossless.iter().rev().find(|r| r.frame == frame) else {
        return;
    };
    inner.emit(SessionEvent::Lossless {
        stream_id: id,
        user: admission.user.clone(),
        case: admission.case.clone(),
        record: record.clone(),
        state: Box::new(state),
    });
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
