//! The decisions of one viewer session, without IO (str0m's shape).
//!
//! [`Session`] is a plain state machine: the driver (`session.rs`) turns what happens — peer
//! state, data-channel messages, RTCP feedback, finished renders and encodes, revocation, the
//! clock — into [`Input`]s for [`Session::handle_input`], performs the [`Output`]s that
//! [`Session::poll_output`] hands back (send a message, apply a change, render, switch case,
//! encode and send the lossless frame, close, report), and wakes it at
//! [`Session::poll_timeout`]. Nothing here reads a clock, spawns, locks or touches a socket:
//! every call takes `now`, so the tests drive it on a simulated clock.
//!
//! What it decides: the rate limit (200 messages a second), parsing and answering messages,
//! when to render (coalescing every change made since the last frame into one), the pace of a
//! cine run (every B-scan rendered, one per tick, never coalesced), acks and
//! `ready`, the lossless settle and dropping stale ones, bitrate from loss, the timeouts
//! (connect, idle, disconnect grace, the absolute lifetime), the end reason (the first one
//! wins) and the counters of the end report, which it emits once.
//!
//! The pipeline (view state, renderer, encoder) belongs to the driver and is used by one
//! operation at a time: while an operation is out ([`Output::Apply`], [`Output::Render`],
//! [`Output::SwitchCase`], and the first frame rendered while connecting), accepted messages
//! wait here in order and are handled when it is back.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use readroom_domain::protocol::{
    CINE_FPS_DEFAULT, ClientMessage, ErrorCode, PointerAction, ProtocolError, ServerMessage,
    VERSION,
};
use readroom_domain::stream_config::LosslessBudgetConfig;
use readroom_domain::view::{CaseShape, ViewChange, ViewState, Viewport};
use readroom_domain::workers::{
    EndReason, LosslessRecord, MarkRecord, SessionEvent, SessionReport,
};
use uuid::Uuid;

use super::budget::{LosslessBudget, Verdict};
use super::pipeline::{FrameOut, LosslessOut};
use super::rtcp::{Feedback, next_bitrate};

/// Most data-channel messages handled per second before `rate_limited` replies.
pub const MAX_MESSAGES_PER_SECOND: u32 = 200;
/// How long a disconnected peer may take to come back.
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(5);
/// The rate limit's window.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// When a frame could not be made yet (no payload type negotiated), how long before trying
/// again if nothing else happens meanwhile.
pub const RENDER_RETRY: Duration = Duration::from_millis(100);

/// What a session starts with.
#[derive(Debug, Clone)]
pub struct Params {
    /// The stream session id.
    pub stream_id: Uuid,
    /// The user (readroom user id).
    pub user: String,
    /// The viewer session.
    pub viewer_session: String,
    /// The admitted case.
    pub case: String,
    /// Its shape (sent in `ready`).
    pub shape: CaseShape,
    /// Start, Unix seconds (for the report).
    pub started_unix: i64,
    /// The absolute end of the session (see [`lifetime_deadline`]), if it has one.
    pub not_after: Option<Instant>,
    /// Idle time after a frame before its lossless version is made.
    pub settle: Duration,
    /// A session with no message for this long ends.
    pub idle_timeout: Duration,
    /// A peer that has not connected within this time ends the session.
    pub connect_timeout: Duration,
    /// The starting and highest video bitrate (loss lowers it).
    pub bitrate: u32,
    /// How many full-resolution pixels lossless frames may show.
    pub lossless_budget: LosslessBudgetConfig,
    /// Full-resolution pixels of the case already shown to the user in earlier sessions.
    pub lossless_spent_px: u64,
    /// The watermark the session's frames carry (reported with each lossless frame).
    pub mark: Option<MarkRecord>,
}

/// The case a switch opened.
#[derive(Debug, Clone)]
pub struct OpenedCase {
    /// Case id.
    pub case: String,
    /// Its shape.
    pub shape: CaseShape,
    /// The new ticket's absolute end of the session.
    pub not_after: Option<Instant>,
    /// Full-resolution pixels of that case already shown to the user (from the ticket).
    pub lossless_spent_px: u64,
}

/// A frame the pipeline made and the driver wrote to the video track.
#[derive(Debug, Clone)]
pub struct FrameInfo {
    /// Frame number.
    pub frame: u64,
    /// Encoded size, bytes.
    pub bytes: u64,
    /// The view it shows.
    pub state: ViewState,
    /// Caliper lengths of the frame, for the ack.
    pub measurements: Vec<Option<f64>>,
    /// Source pixels it shows at full resolution (its cost to the lossless budget).
    pub revealed_px: u64,
}

/// Why an operation on the pipeline did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkError {
    /// Refused or failed; the session goes on and the browser is told (its `seq` is filled in
    /// here).
    Failed(ProtocolError),
    /// It panicked: the pipeline is gone, and the session ends with [`EndReason::Error`].
    Panicked,
}

/// A change of view to apply to the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A `view` message.
    View(ViewChange),
    /// A `pointer` gesture.
    Pointer {
        /// What it does.
        action: PointerAction,
        /// Where, device pixels.
        at: (f32, f32),
        /// Movement, device pixels.
        delta: (f32, f32),
    },
}

/// What to send as the next video frame.
#[derive(Debug)]
pub enum RenderJob {
    /// The first frame, rendered while connecting (the view has not changed since).
    Prerendered(FrameOut),
    /// Render the current view and encode it.
    Frame {
        /// As a keyframe.
        keyframe: bool,
    },
    /// Re-encode the last frame as a keyframe (nothing changed; the browser asked).
    Keyframe,
}

/// What happened.
#[derive(Debug)]
pub enum Input {
    /// The peer connection is connected (again).
    PeerConnected,
    /// The peer connection is disconnected (it may come back within [`DISCONNECT_GRACE`]).
    PeerDisconnected,
    /// ICE failed.
    PeerFailed,
    /// The peer connection closed.
    PeerClosed,
    /// The browser's data channel arrived.
    ChannelOpened,
    /// The data channel closed.
    ChannelClosed,
    /// A text message on the data channel.
    Text(Bytes),
    /// A binary message on the data channel (never accepted).
    Binary,
    /// RTCP feedback.
    Feedback(Feedback),
    /// The first frame, rendered while connecting, is done; the pipeline is back.
    FirstFrameReady(Result<FrameOut, WorkError>),
    /// An [`Output::Apply`] is done.
    Applied {
        /// The message's sequence number.
        seq: u64,
        /// How it went.
        result: Result<(), WorkError>,
    },
    /// An [`Output::Render`] is done (`Ok(None)`: there was nothing to re-encode).
    FrameDone(Result<Option<FrameInfo>, WorkError>),
    /// An [`Output::Render`] could not run yet (no negotiated payload type); the job is back.
    RenderSkipped(RenderJob),
    /// An [`Output::SwitchCase`] is done.
    SwitchDone {
        /// The `open_case` message's sequence number.
        seq: u64,
        /// The case it opened.
        result: Result<OpenedCase, WorkError>,
    },
    /// An [`Output::Prefetch`] is done: `Ok(case)` when that case is ready.
    PrefetchDone {
        /// The `prefetch_case` message's sequence number.
        seq: u64,
        /// The case made ready, or why not.
        result: Result<String, WorkError>,
    },
    /// An [`Output::EncodeLossless`] is done.
    LosslessEncoded(LosslessOut),
    /// An [`Output::SendLossless`] ended, completed or stopped, with `bytes` of the image sent.
    LosslessSent {
        /// Frame number.
        frame: u64,
        /// Image bytes that went out.
        bytes: u64,
    },
    /// Told to end (revocation, shutdown).
    End(EndReason),
    /// [`Session::poll_timeout`] has come.
    Timeout,
    /// After [`Output::Close`]: the connection is closed and the lossless sends that ended
    /// meanwhile were fed in; the report follows.
    Drained,
}

/// What to do.
#[derive(Debug)]
pub enum Output {
    /// Send a text message on the data channel.
    SendText(ServerMessage),
    /// Apply a view change to the pipeline; answer with [`Input::Applied`].
    Apply {
        /// The message's sequence number.
        seq: u64,
        /// The change.
        change: Change,
    },
    /// Make and write the next video frame; answer with [`Input::FrameDone`] (or
    /// [`Input::RenderSkipped`]).
    Render {
        /// What to send.
        job: RenderJob,
        /// When the oldest change this frame shows arrived (for the latency log).
        waiting_since: Option<Instant>,
    },
    /// Admit `ticket` as the next case and open it; answer with [`Input::SwitchDone`].
    SwitchCase {
        /// The `open_case` message's sequence number.
        seq: u64,
        /// The ticket.
        ticket: String,
    },
    /// Check `ticket` and get its case ready beside the pipeline (which stays free); answer
    /// with [`Input::PrefetchDone`].
    Prefetch {
        /// The `prefetch_case` message's sequence number.
        seq: u64,
        /// The ticket.
        ticket: String,
    },
    /// Set the encoder's target bitrate.
    SetBitrate(u32),
    /// Encode frame `frame` (the last one made) losslessly, off the pipeline; answer with
    /// [`Input::LosslessEncoded`] (or nothing if it failed).
    EncodeLossless {
        /// Frame number.
        frame: u64,
    },
    /// Send the lossless frame (announcement and chunks), stopping if a newer frame is made;
    /// answer with [`Input::LosslessSent`].
    SendLossless(LosslessOut),
    /// Report a session event.
    Event(SessionEvent),
    /// Close the peer connection; answer with [`Input::Drained`].
    Close,
    /// The session is over: its report, emitted once.
    Ended(SessionReport),
}

/// Where the pipeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipe {
    /// Rendering the first frame while connecting.
    First,
    /// Home, free for the next operation.
    Idle,
    /// Out on an operation.
    Busy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Closing(EndReason),
    Done,
}

/// The counters of the end report.
#[derive(Debug, Default)]
struct Counters {
    frames: u64,
    views: BTreeSet<String>,
    lossless: Vec<LosslessRecord>,
    bytes_sent: u64,
    messages: u64,
    refused: u64,
}

/// A cine run ([`ClientMessage::Cine`]): the worker steps the B-scans itself, one per tick, so
/// that a held key plays the volume at a steady pace whatever the round trip.
#[derive(Debug, Clone, Copy)]
struct Cine {
    /// The `cine` message's sequence number, acknowledged with every frame of the run.
    seq: u64,
    /// B-scans per step: -1 or 1.
    step: i32,
    /// Time between steps.
    period: Duration,
    /// When the next step is due (steps wait for the pipeline; late ones are not caught up).
    next_at: Instant,
}

/// One viewer session's state.
#[derive(Debug)]
pub struct Session {
    stream_id: Uuid,
    user: String,
    viewer_session: String,
    mark: Option<MarkRecord>,
    case: String,
    shape: CaseShape,
    started: Instant,
    started_unix: i64,
    not_after: Option<Instant>,
    settle: Duration,
    idle_timeout: Duration,
    connect_deadline: Instant,
    bitrate: u32,
    bitrate_ceiling: u32,

    phase: Phase,
    pipe: Pipe,
    connected: bool,
    channel_open: bool,
    ready_sent: bool,
    /// The view changed since the last frame.
    dirty: bool,
    /// The next frame must be a keyframe.
    keyframe: bool,
    /// A render could not run: try again at the next input, or at this instant.
    render_blocked: Option<Instant>,
    /// (dirty, keyframe) as they were when the render out now was asked for.
    rendering: Option<(bool, bool)>,
    /// The change out on [`Output::Apply`]: its arrival.
    applying: Option<Instant>,
    /// Messages waiting for the pipeline, with their arrival.
    held: VecDeque<(Instant, Bytes)>,
    prerendered: Option<FrameOut>,
    acks: Vec<u64>,
    /// When the oldest change not yet shown arrived.
    input_at: Option<Instant>,
    current_frame: u64,
    current_state: Option<ViewState>,
    current_measurements: Vec<Option<f64>>,
    /// The cine run in progress.
    cine: Option<Cine>,
    settle_at: Option<Instant>,
    last_message: Instant,
    disconnected_at: Option<Instant>,
    window_start: Instant,
    window_count: u32,
    /// The render state of each lossless frame being sent, reported when its send ends.
    lossless_states: HashMap<u64, ViewState>,
    /// What lossless frames may still show.
    budget: LosslessBudget,
    /// The last frame's cost to the budget.
    current_revealed: u64,
    /// When the case shown now was opened (the session start, or its `open_case`), and the
    /// frame count then: the case's own part of the session, reported when it is left.
    case_opened_at: Instant,
    case_frames_before: u64,
    /// Cases left so far (each gets a record id of its own).
    cases_left: u128,
    counters: Counters,
    outputs: VecDeque<Output>,
}

/// The instant of the Unix second `not_after` (0 or less: none), given that `now` is `wall`.
pub fn lifetime_deadline(now: Instant, wall: SystemTime, not_after: i64) -> Option<Instant> {
    if not_after <= 0 {
        return None;
    }
    let end = SystemTime::UNIX_EPOCH + Duration::from_secs(not_after as u64);
    Some(match end.duration_since(wall) {
        Ok(ahead) => now + ahead,
        Err(_) => now,
    })
}

/// Whether B-scan `slice` of `slices` is the last one a cine run stepping by `step` can show.
fn at_end(slice: u32, slices: u32, step: i32) -> bool {
    if step < 0 {
        slice == 0
    } else {
        slice + 1 >= slices
    }
}

/// The `layout:exam` label of a view, for the report.
pub fn view_label(state: &ViewState) -> String {
    let layout = serde_json::to_value(state.layout)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{}:{}", layout, state.exam)
}

impl Session {
    /// A session starting at `now`, its first frame being rendered (feed
    /// [`Input::FirstFrameReady`] when it is).
    pub fn new(now: Instant, params: Params) -> Session {
        let mut budget = LosslessBudget::new(now, &params.lossless_budget);
        budget.preload(&params.case, params.lossless_spent_px);
        Session {
            stream_id: params.stream_id,
            user: params.user,
            viewer_session: params.viewer_session,
            mark: params.mark,
            case: params.case,
            shape: params.shape,
            started: now,
            started_unix: params.started_unix,
            not_after: params.not_after,
            settle: params.settle,
            idle_timeout: params.idle_timeout,
            connect_deadline: now + params.connect_timeout,
            bitrate: params.bitrate,
            bitrate_ceiling: params.bitrate,
            phase: Phase::Running,
            pipe: Pipe::First,
            connected: false,
            channel_open: false,
            ready_sent: false,
            dirty: false,
            keyframe: true,
            render_blocked: None,
            rendering: None,
            applying: None,
            held: VecDeque::new(),
            prerendered: None,
            acks: Vec::new(),
            input_at: None,
            current_frame: 0,
            current_state: None,
            current_measurements: Vec::new(),
            cine: None,
            settle_at: None,
            last_message: now,
            disconnected_at: None,
            window_start: now,
            window_count: 0,
            lossless_states: HashMap::new(),
            budget,
            current_revealed: 0,
            case_opened_at: now,
            case_frames_before: 0,
            cases_left: 0,
            counters: Counters::default(),
            outputs: VecDeque::new(),
        }
    }

    /// The number of the last frame sent (0: none yet); a lossless send of another frame stops.
    pub fn current_frame(&self) -> u64 {
        self.current_frame
    }

    /// The viewport of the last frame sent (`None`: none yet).
    pub fn viewport(&self) -> Option<Viewport> {
        self.current_state.as_ref().map(|state| state.viewport)
    }

    /// The case shown now.
    pub fn case(&self) -> &str {
        &self.case
    }

    /// Whether the session was told or decided to end (it may still be closing).
    pub fn is_ending(&self) -> bool {
        self.phase != Phase::Running
    }

    /// Whether the report was emitted.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(output) = self.outputs.pop_front() {
            return Some(output);
        }
        self.render()
    }

    /// When to feed [`Input::Timeout`] next (None: no timer is running).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase != Phase::Running {
            return None;
        }
        [
            self.settle_at,
            (!self.connected).then_some(self.connect_deadline),
            self.disconnected_at.map(|at| at + DISCONNECT_GRACE),
            Some(self.last_message + self.idle_timeout),
            self.not_after,
            self.render_blocked,
            self.cine_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Takes in what happened at `now`.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match self.phase {
            Phase::Running => {}
            Phase::Closing(reason) => {
                match input {
                    Input::LosslessSent { frame, bytes } => self.lossless_sent(frame, bytes),
                    Input::Drained => {
                        let report = self.report(now, reason);
                        self.outputs.push_back(Output::Ended(report));
                        self.phase = Phase::Done;
                    }
                    _ => {}
                }
                return;
            }
            Phase::Done => return,
        }
        if !matches!(input, Input::RenderSkipped(_)) {
            self.render_blocked = None;
        }
        match input {
            Input::PeerConnected => {
                self.connected = true;
                self.disconnected_at = None;
                self.keyframe = true;
                self.dirty = true;
            }
            Input::PeerDisconnected => {
                self.disconnected_at.get_or_insert(now);
            }
            Input::PeerFailed => self.end(EndReason::IceFailed),
            Input::PeerClosed | Input::ChannelClosed => self.end(EndReason::Closed),
            Input::ChannelOpened => {
                self.channel_open = true;
                // The first frame went out when DTLS was up, before the channel (SCTP) opened:
                // its `ready` goes now, and its settle, if it came and went meanwhile, at once.
                if let Some(state) = self.current_state.clone()
                    && !self.ready_sent
                {
                    self.send_ready(state, self.current_frame);
                    if self.settle_at.is_none() && !self.dirty {
                        self.settle_at = Some(now);
                    }
                }
            }
            Input::Text(text) => self.text(now, text),
            Input::Binary => {
                self.counters.refused += 1;
                self.send_error(ProtocolError::new(
                    ErrorCode::BadMessage,
                    "binary messages are not accepted",
                ));
            }
            Input::Feedback(Feedback::KeyframeRequest) => self.keyframe = true,
            Input::Feedback(Feedback::Loss(loss)) => {
                // The pipeline holds the encoder: a report that comes while it is out is
                // dropped (the next one follows within a second or so).
                if self.pipe == Pipe::Idle {
                    let next = next_bitrate(self.bitrate, loss, self.bitrate_ceiling);
                    if next != self.bitrate {
                        self.bitrate = next;
                        self.outputs.push_back(Output::SetBitrate(next));
                    }
                }
            }
            Input::FirstFrameReady(result) => {
                self.pipe = Pipe::Idle;
                match result {
                    Ok(out) => self.prerendered = Some(out),
                    // A failure is reported when the frame is rendered again, once connected.
                    Err(WorkError::Failed(_)) => {}
                    Err(WorkError::Panicked) => return self.end(EndReason::Error),
                }
                self.release();
            }
            Input::Applied { seq, result } => {
                self.pipe = Pipe::Idle;
                let arrived = self.applying.take().unwrap_or(now);
                match result {
                    Ok(()) => {
                        self.input_at.get_or_insert(arrived);
                        self.acks.push(seq);
                        self.dirty = true;
                        self.prerendered = None;
                        // The frame on screen is no longer the view: no lossless for it.
                        self.settle_at = None;
                    }
                    Err(WorkError::Failed(mut error)) => {
                        if self.cine.is_some_and(|cine| cine.seq == seq) {
                            self.cine = None;
                        }
                        self.counters.refused += 1;
                        error.seq = Some(seq);
                        self.send_error(error);
                    }
                    Err(WorkError::Panicked) => return self.end(EndReason::Error),
                }
                self.release();
            }
            Input::FrameDone(result) => {
                self.pipe = Pipe::Idle;
                self.rendering = None;
                match result {
                    Ok(Some(frame)) => self.frame_sent(now, frame),
                    Ok(None) => {}
                    Err(WorkError::Failed(mut error)) => {
                        error.seq = self.acks.pop();
                        self.acks.clear();
                        self.send_error(error);
                    }
                    Err(WorkError::Panicked) => return self.end(EndReason::Error),
                }
                self.release();
            }
            Input::RenderSkipped(job) => {
                self.pipe = Pipe::Idle;
                let (dirty, keyframe) = self.rendering.take().unwrap_or((false, false));
                self.dirty |= dirty;
                self.keyframe |= keyframe;
                if let RenderJob::Prerendered(out) = job {
                    self.prerendered = Some(out);
                }
                self.render_blocked = Some(now + RENDER_RETRY);
                self.release();
            }
            Input::SwitchDone { seq, result } => {
                self.pipe = Pipe::Idle;
                match result {
                    Ok(opened) => {
                        self.prerendered = None;
                        self.case_left(now);
                        self.budget.preload(&opened.case, opened.lossless_spent_px);
                        self.case = opened.case;
                        self.shape = opened.shape;
                        self.not_after = opened.not_after;
                        self.acks.push(seq);
                        self.ready_sent = false;
                        self.dirty = true;
                        self.keyframe = true;
                        self.settle_at = None;
                    }
                    Err(WorkError::Failed(mut error)) => {
                        self.counters.refused += 1;
                        error.seq = Some(seq);
                        self.send_error(error);
                    }
                    Err(WorkError::Panicked) => return self.end(EndReason::Error),
                }
                self.release();
            }
            Input::PrefetchDone { seq, result } => match result {
                Ok(_) => self.send(ServerMessage::Prefetched { v: VERSION, seq }),
                Err(WorkError::Failed(mut error)) => {
                    self.counters.refused += 1;
                    error.seq = Some(seq);
                    self.send_error(error);
                }
                // The prefetch is not the pipeline: what panicked is dropped with it, and
                // the session goes on.
                Err(WorkError::Panicked) => {
                    let mut error =
                        ProtocolError::new(ErrorCode::Internal, "preparing the case failed");
                    error.seq = Some(seq);
                    self.send_error(error);
                }
            },
            Input::LosslessEncoded(out) => {
                // Stale (a newer frame was made, or the view changed since) or nowhere to go.
                if !self.channel_open || out.frame != self.current_frame || self.dirty {
                    return;
                }
                self.budget.charge(now, &self.case, self.current_revealed);
                self.counters.lossless.push(LosslessRecord {
                    frame: out.frame,
                    sha256: out.sha256.clone(),
                    bytes: 0,
                    verified: None,
                    revealed_px: self.current_revealed,
                });
                if let Some(state) = &self.current_state {
                    self.lossless_states.insert(out.frame, state.clone());
                }
                self.outputs.push_back(Output::SendLossless(out));
            }
            Input::LosslessSent { frame, bytes } => self.lossless_sent(frame, bytes),
            Input::End(reason) => self.end(reason),
            Input::Timeout => self.timeout(now),
            Input::Drained => {}
        }
    }

    /// Ends the session with `reason` unless it is already ending (the first reason wins).
    fn end(&mut self, reason: EndReason) {
        if self.phase != Phase::Running {
            return;
        }
        self.phase = Phase::Closing(reason);
        self.settle_at = None;
        self.cine = None;
        self.held.clear();
        self.outputs
            .retain(|o| matches!(o, Output::SendText(_) | Output::Event(_)));
        self.outputs.push_back(Output::Close);
    }

    fn timeout(&mut self, now: Instant) {
        if !self.connected && now >= self.connect_deadline {
            return self.end(EndReason::ConnectTimeout);
        }
        if self
            .disconnected_at
            .is_some_and(|at| now >= at + DISCONNECT_GRACE)
        {
            return self.end(EndReason::Disconnected);
        }
        if now >= self.last_message + self.idle_timeout {
            return self.end(EndReason::Idle);
        }
        if self.not_after.is_some_and(|at| now >= at) {
            return self.end(EndReason::Expired);
        }
        if self.cine_due().is_some_and(|at| now >= at) {
            return self.cine_step(now);
        }
        if self.cine.is_none() && self.settle_at.is_some_and(|at| now >= at) {
            self.settle_at = None;
            // The still image is encoded from a copy of the frame off the pipeline, so a view
            // change that arrives meanwhile is rendered at once; a stale one is dropped.
            if self.channel_open && self.pipe == Pipe::Idle && self.current_frame > 0 {
                self.settled(now);
            }
        }
    }

    fn text(&mut self, now: Instant, text: Bytes) {
        self.last_message = now;
        self.counters.messages += 1;
        if now.saturating_duration_since(self.window_start) >= RATE_WINDOW {
            self.window_start = now;
            self.window_count = 0;
        }
        self.window_count += 1;
        if self.window_count > MAX_MESSAGES_PER_SECOND {
            self.counters.refused += 1;
            self.send_error(ProtocolError::new(
                ErrorCode::RateLimited,
                "more than 200 messages in a second",
            ));
            return;
        }
        if self.pipe != Pipe::Idle || !self.held.is_empty() {
            self.held.push_back((now, text));
            return;
        }
        self.message(now, &text);
    }

    /// Handles the messages that waited for the pipeline, until one takes it out again.
    fn release(&mut self) {
        while self.pipe == Pipe::Idle && self.phase == Phase::Running {
            let Some((arrived, text)) = self.held.pop_front() else {
                return;
            };
            self.message(arrived, &text);
        }
    }

    fn message(&mut self, arrived: Instant, text: &[u8]) {
        let message = match ClientMessage::parse(text) {
            Ok(message) => message,
            Err(error) => {
                self.counters.refused += 1;
                return self.send_error(error);
            }
        };
        match message {
            ClientMessage::Ping { seq, .. } => {
                self.send(ServerMessage::Pong { v: VERSION, seq });
            }
            ClientMessage::View { seq, set, .. } => {
                self.cine = None;
                self.apply(arrived, seq, Change::View(set))
            }
            ClientMessage::Cine { seq, step, fps, .. } => self.start_cine(arrived, seq, step, fps),
            ClientMessage::Pointer {
                seq,
                action,
                x,
                y,
                dx,
                dy,
                ..
            } => {
                self.cine = None;
                self.apply(
                    arrived,
                    seq,
                    Change::Pointer {
                        action,
                        at: (x, y),
                        delta: (dx, dy),
                    },
                )
            }
            ClientMessage::Verified { seq, frame, ok, .. } => {
                if let Some(record) = self
                    .counters
                    .lossless
                    .iter_mut()
                    .rev()
                    .find(|r| r.frame == frame)
                {
                    record.verified = Some(ok);
                } else {
                    self.counters.refused += 1;
                    let mut error = ProtocolError::new(
                        ErrorCode::OutOfRange,
                        format!("no lossless frame {frame} was sent"),
                    );
                    error.seq = Some(seq);
                    self.send_error(error);
                }
            }
            ClientMessage::OpenCase { seq, ticket, .. } => {
                self.cine = None;
                self.pipe = Pipe::Busy;
                self.outputs.push_back(Output::SwitchCase { seq, ticket });
            }
            ClientMessage::PrefetchCase { seq, ticket, .. } => {
                self.outputs.push_back(Output::Prefetch { seq, ticket });
            }
        }
    }

    /// A `cine` message: stop (step 0, not answered), or play the volume shown from the B-scan
    /// shown, the first step at once. Refused where there is no volume to play or no frame yet;
    /// at the end it would move from, it is answered with the frame shown.
    fn start_cine(&mut self, arrived: Instant, seq: u64, step: i32, fps: Option<u32>) {
        self.cine = None;
        if step == 0 {
            return;
        }
        let Some(state) = &self.current_state else {
            self.counters.refused += 1;
            let mut error = ProtocolError::new(ErrorCode::NotAvailable, "no frame is shown yet");
            error.seq = Some(seq);
            return self.send_error(error);
        };
        let Some(slices) = self.slices_of(&state.exam).filter(|n| *n > 1) else {
            self.counters.refused += 1;
            let mut error = ProtocolError::new(
                ErrorCode::NotAvailable,
                "cine needs an OCT volume (the exam shown has one image)",
            );
            error.seq = Some(seq);
            return self.send_error(error);
        };
        if at_end(state.slice, slices, step) {
            let (frame, state) = (self.current_frame, state.clone());
            let measurements = self.current_measurements.clone();
            return self.send(ServerMessage::Ack {
                v: VERSION,
                seq,
                frame,
                state,
                measurements,
            });
        }
        let fps = fps.unwrap_or(CINE_FPS_DEFAULT).max(1);
        self.cine = Some(Cine {
            seq,
            step,
            period: Duration::from_secs(1) / fps,
            next_at: arrived,
        });
        self.cine_step(arrived);
    }

    /// B-scans of exam `id` of the case shown.
    fn slices_of(&self, id: &str) -> Option<u32> {
        self.shape
            .exams
            .iter()
            .find(|exam| exam.id == id)
            .map(|exam| exam.slices)
    }

    /// When the cine run's next step can be taken: due, and the pipeline free with no message
    /// waiting (a waiting `cine` stop or view change goes first).
    fn cine_due(&self) -> Option<Instant> {
        let cine = self.cine?;
        (self.pipe == Pipe::Idle
            && self.held.is_empty()
            && self.channel_open
            && self.connected
            && self.render_blocked.is_none())
        .then_some(cine.next_at)
    }

    /// One step of the cine run: the next B-scan, rendered by the frame it makes.
    fn cine_step(&mut self, now: Instant) {
        let Some(cine) = self.cine.as_mut() else {
            return;
        };
        // On time (or a little late): the next one a period after this one was due, which keeps
        // the pace; a period or more late: a period from now, never a burst to catch up.
        cine.next_at += cine.period;
        if cine.next_at <= now {
            cine.next_at = now + cine.period;
        }
        let (seq, step) = (cine.seq, cine.step);
        // A grader holding a key is at work: the run keeps the session from going idle.
        self.last_message = now;
        self.apply(
            now,
            seq,
            Change::View(ViewChange {
                slice_delta: Some(step),
                ..ViewChange::default()
            }),
        );
    }

    fn apply(&mut self, arrived: Instant, seq: u64, change: Change) {
        self.pipe = Pipe::Busy;
        self.applying = Some(arrived);
        self.outputs.push_back(Output::Apply { seq, change });
    }

    /// The next frame, when there is one to make and somewhere to send it. The video needs only
    /// the peer connection (DTLS): the first frame does not wait for the data channel, whose
    /// SCTP handshake takes another two round trips.
    fn render(&mut self) -> Option<Output> {
        if self.phase != Phase::Running
            || self.pipe != Pipe::Idle
            || self.render_blocked.is_some()
            || !(self.connected && (self.dirty || self.keyframe))
        {
            return None;
        }
        self.rendering = Some((self.dirty, self.keyframe));
        let job = if let Some(out) = self.prerendered.take() {
            RenderJob::Prerendered(out)
        } else if self.dirty {
            RenderJob::Frame {
                keyframe: self.keyframe,
            }
        } else {
            RenderJob::Keyframe
        };
        self.dirty = false;
        self.keyframe = false;
        self.pipe = Pipe::Busy;
        Some(Output::Render {
            job,
            waiting_since: self.input_at.take(),
        })
    }

    fn frame_sent(&mut self, now: Instant, frame: FrameInfo) {
        self.current_frame = frame.frame;
        self.counters.frames += 1;
        self.counters.bytes_sent += frame.bytes;
        let view = view_label(&frame.state);
        if self.counters.views.insert(view.clone()) {
            self.outputs.push_back(Output::Event(SessionEvent::Viewed {
                stream_id: self.stream_id,
                user: self.user.clone(),
                case: self.case.clone(),
                view,
            }));
        }
        if !self.ready_sent && self.channel_open {
            self.send_ready(frame.state.clone(), frame.frame);
        }
        for seq in std::mem::take(&mut self.acks) {
            self.send(ServerMessage::Ack {
                v: VERSION,
                seq,
                frame: frame.frame,
                state: frame.state.clone(),
                measurements: frame.measurements.clone(),
            });
        }
        if let Some(cine) = self.cine
            && self
                .slices_of(&frame.state.exam)
                .is_none_or(|slices| at_end(frame.state.slice, slices, cine.step))
        {
            self.cine = None;
        }
        self.current_state = Some(frame.state);
        self.current_measurements = frame.measurements;
        self.current_revealed = frame.revealed_px;
        self.settle_at = Some(now + self.settle);
    }

    /// Reports the part of the session spent on the case shown until now (its views and frames)
    /// as a record of its own ([`SessionEvent::CaseLeft`]); what follows counts for the next case.
    fn case_left(&mut self, now: Instant) {
        self.cases_left += 1;
        let since_start = self.case_opened_at.saturating_duration_since(self.started);
        let report = SessionReport {
            stream_id: Uuid::from_u128(self.stream_id.as_u128() ^ self.cases_left),
            viewer_session: self.viewer_session.clone(),
            user: self.user.clone(),
            case: self.case.clone(),
            started_unix: self.started_unix + since_start.as_secs() as i64,
            duration_ms: now
                .saturating_duration_since(self.case_opened_at)
                .as_millis() as u64,
            frames: self.counters.frames - self.case_frames_before,
            views: std::mem::take(&mut self.counters.views)
                .into_iter()
                .collect(),
            lossless: Vec::new(),
            bytes_sent: 0,
            messages: 0,
            refused: 0,
            end: EndReason::SwitchedCase,
        };
        self.outputs
            .push_back(Output::Event(SessionEvent::CaseLeft(Box::new(report))));
        self.case_opened_at = now;
        self.case_frames_before = self.counters.frames;
    }

    /// The view stayed: the lossless frame is made if the budget allows, else the browser is
    /// told why not (and, for the rate, when it will come), and the first stop of each bound
    /// per case is reported.
    fn settled(&mut self, now: Instant) {
        let cost = self.current_revealed;
        match self.budget.check(now, &self.case, cost) {
            Verdict::Send => self.outputs.push_back(Output::EncodeLossless {
                frame: self.current_frame,
            }),
            Verdict::Withhold {
                reason,
                retry_after,
                first,
            } => {
                self.send(ServerMessage::LosslessWithheld {
                    v: VERSION,
                    frame: self.current_frame,
                    reason,
                    retry_after_ms: retry_after.map(|retry| retry.as_millis() as u64),
                });
                if let Some(retry) = retry_after {
                    self.settle_at = Some(now + retry);
                }
                if first && let Some(state) = &self.current_state {
                    let event = SessionEvent::LosslessWithheld {
                        stream_id: self.stream_id,
                        user: self.user.clone(),
                        case: self.case.clone(),
                        reason,
                        spent_px: self.budget.spent_on(&self.case),
                        frame_px: cost,
                        state: Box::new(state.clone()),
                    };
                    self.outputs.push_back(Output::Event(event));
                }
            }
        }
    }

    /// A lossless send ended with `bytes` of frame `frame`'s image sent: counted, and reported
    /// with the state it was rendered from (the worker's record, whatever the browser says).
    fn lossless_sent(&mut self, frame: u64, bytes: u64) {
        self.counters.bytes_sent += bytes;
        let Some(record) = self
            .counters
            .lossless
            .iter_mut()
            .rev()
            .find(|r| r.frame == frame)
        else {
            return;
        };
        record.bytes += bytes;
        let record = record.clone();
        if let Some(state) = self.lossless_states.remove(&frame) {
            self.outputs
                .push_back(Output::Event(SessionEvent::Lossless {
                    stream_id: self.stream_id,
                    user: self.user.clone(),
                    case: self.case.clone(),
                    record,
                    state: Box::new(state),
                    mark: self.mark.clone(),
                }));
        }
    }

    /// `ready` for the case shown, in `state` at frame `frame` (once per case).
    fn send_ready(&mut self, state: ViewState, frame: u64) {
        self.ready_sent = true;
        self.send(ServerMessage::Ready {
            v: VERSION,
            session: self.viewer_session.clone(),
            shape: self.shape.clone(),
            state,
            frame,
        });
    }

    fn send(&mut self, message: ServerMessage) {
        self.outputs.push_back(Output::SendText(message));
    }

    fn send_error(&mut self, error: ProtocolError) {
        self.send(error.to_message());
    }

    fn report(&mut self, now: Instant, reason: EndReason) -> SessionReport {
        let counters = std::mem::take(&mut self.counters);
        SessionReport {
            stream_id: self.stream_id,
            viewer_session: self.viewer_session.clone(),
            user: self.user.clone(),
            case: self.case.clone(),
            started_unix: self.started_unix,
            duration_ms: now.saturating_duration_since(self.started).as_millis() as u64,
            frames: counters.frames,
            views: counters.views.into_iter().collect(),
            lossless: counters.lossless,
            bytes_sent: counters.bytes_sent,
            messages: counters.messages,
            refused: counters.refused,
            end: reason,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The session on a simulated clock: `Sim` plays the driver (every operation succeeds at
    //! once unless a test says otherwise) and records what the machine asked for.

    use super::*;
    use readroom_domain::manifest::ExamKind;
    use readroom_domain::protocol::WithholdReason;
    use readroom_domain::view::{ExamShape, Layout, Viewport};

    const SETTLE: Duration = Duration::from_millis(150);
    const IDLE: Duration = Duration::from_secs(60);
    const CONNECT: Duration = Duration::from_secs(8);
    const BITRATE: u32 = 2_000_000;

    fn shape(exams: &[&str]) -> CaseShape {
        CaseShape {
            exams: exams
                .iter()
                .map(|id| ExamShape {
                    id: (*id).to_owned(),
                    kind: ExamKind::Fundus,
                    eye: None,
                    slices: 1,
                    enface: false,
                    pixel_spacing_um: None,
                    axial_spacing_um: None,
                })
                .collect(),
            prior: Vec::new(),
            ..CaseShape::default()
        }
    }

    fn state(exam: &str) -> ViewState {
        let viewport = Viewport {
            width: 800,
            height: 600,
            dpr: 1.0,
        };
        let mut state = ViewState::initial(&shape(&["e1"]), viewport).expect("one exam");
        state.exam = exam.to_owned();
        state
    }

    fn params(not_after: Option<Instant>) -> Params {
        Params {
            stream_id: Uuid::from_u128(42),
            user: "u1".into(),
            viewer_session: "vs1".into(),
            case: "c1".into(),
            shape: shape(&["e1", "e2"]),
            started_unix: 1_800_000_000,
            not_after,
            settle: SETTLE,
            idle_timeout: IDLE,
            connect_timeout: CONNECT,
            bitrate: BITRATE,
            lossless_budget: LosslessBudgetConfig::default(),
            lossless_spent_px: 0,
            mark: Some(MarkRecord {
                label: "grader.one".into(),
                session: Uuid::from_u128(11),
                unix_minute: 30_000_000,
            }),
        }
    }

    fn frame_out(frame: u64, bytes: usize) -> FrameOut {
        FrameOut {
            frame,
            data: vec![0; bytes],
            render_ms: 1.0,
            encode_ms: 1.0,
        }
    }

    fn lossless(frame: u64) -> LosslessOut {
        LosslessOut {
            frame,
            width: 4,
            height: 4,
            sha256: format!("hash-{frame}"),
            format: "image/webp",
            data: vec![1; 5000],
        }
    }

    fn text(value: serde_json::Value) -> Input {
        Input::Text(Bytes::from(value.to_string()))
    }

    fn ping(seq: u64) -> Input {
        text(serde_json::json!({"v": VERSION, "type": "ping", "seq": seq}))
    }

    fn view(seq: u64, exam: &str) -> Input {
        text(serde_json::json!({"v": VERSION, "type": "view", "seq": seq, "set": {"exam": exam}}))
    }

    /// The driver, simulated.
    struct Sim {
        s: Session,
        t0: Instant,
        now: Instant,
        /// The pipeline's frame counter and view.
        frame: u64,
        exam: String,
        /// The pipeline's B-scan, and the B-scans of its volume (1: not a volume).
        slice: u32,
        slices: u32,
        /// Keep renders out until [`Sim::finish_render`] (a slow pipeline).
        defer_renders: bool,
        deferred: Option<RenderJob>,
        /// Bytes of each encoded video frame.
        frame_bytes: usize,
        /// Full-resolution pixels each frame shows.
        revealed_px: u64,
        /// What the next render, apply or switch answers instead of succeeding.
        render_result: Option<Result<Option<FrameInfo>, WorkError>>,
        apply_result: Option<Result<(), WorkError>>,
        switch_result: Option<Result<OpenedCase, WorkError>>,
        /// Answer renders with `RenderSkipped` (no payload type yet).
        skip_renders: bool,
        sent: Vec<ServerMessage>,
        applied: Vec<u64>,
        renders: Vec<String>,
        switches: Vec<(u64, String)>,
        /// `Output::Prefetch` requests (answered by the test).
        prefetches: Vec<(u64, String)>,
        bitrates: Vec<u32>,
        encode_requests: Vec<u64>,
        lossless_sends: Vec<u64>,
        events: Vec<SessionEvent>,
        /// The views reported as they were first shown (`SessionEvent::Viewed`): case, view.
        viewed: Vec<(String, String)>,
        closes: u32,
        reports: Vec<SessionReport>,
    }

    impl Sim {
        fn new(params: Params) -> Sim {
            Sim::with(|_| params)
        }

        fn with(params: impl FnOnce(Instant) -> Params) -> Sim {
            let t0 = Instant::now();
            Sim {
                s: Session::new(t0, params(t0)),
                t0,
                now: t0,
                frame: 0,
                exam: "e1".into(),
                slice: 0,
                slices: 1,
                defer_renders: false,
                deferred: None,
                frame_bytes: 1000,
                revealed_px: 500_000,
                render_result: None,
                apply_result: None,
                switch_result: None,
                skip_renders: false,
                sent: Vec::new(),
                applied: Vec::new(),
                renders: Vec::new(),
                switches: Vec::new(),
                prefetches: Vec::new(),
                bitrates: Vec::new(),
                encode_requests: Vec::new(),
                lossless_sends: Vec::new(),
                events: Vec::new(),
                viewed: Vec::new(),
                closes: 0,
                reports: Vec::new(),
            }
        }

        /// A session whose first frame (1) is rendered, connected, with its channel open,
        /// and that frame sent, at `t0`.
        fn streaming() -> Sim {
            let mut sim = Sim::new(params(None));
            sim.first_frame();
            sim.input(Input::PeerConnected);
            sim.input(Input::ChannelOpened);
            assert_eq!(sim.renders, ["prerendered 1"]);
            assert_eq!(sim.s.current_frame(), 1);
            sim
        }

        fn first_frame(&mut self) {
            self.frame = 1;
            self.input(Input::FirstFrameReady(Ok(frame_out(1, self.frame_bytes))));
        }

        fn at(&mut self, since_start: Duration) {
            assert!(self.t0 + since_start >= self.now, "the clock goes forward");
            self.now = self.t0 + since_start;
        }

        fn input(&mut self, input: Input) {
            self.s.handle_input(self.now, input);
            self.pump();
        }

        /// Moves the clock to `since_start`, feeding `Timeout` whenever one is due on the way.
        fn run_until(&mut self, since_start: Duration) {
            let until = self.t0 + since_start;
            let mut guard = 0;
            while let Some(at) = self.s.poll_timeout() {
                if at > until {
                    break;
                }
                guard += 1;
                assert!(guard < 1000, "the timeout at {at:?} does not move on");
                self.now = self.now.max(at);
                self.input(Input::Timeout);
            }
            self.now = until;
        }

        fn info(&self) -> FrameInfo {
            let mut state = state(&self.exam);
            state.slice = self.slice;
            FrameInfo {
                frame: self.frame,
                bytes: self.frame_bytes as u64,
                state,
                measurements: vec![Some(12.5)],
                revealed_px: self.revealed_px,
            }
        }

        fn pump(&mut self) {
            while let Some(output) = self.s.poll_output() {
                let now = self.now;
                match output {
                    Output::SendText(message) => self.sent.push(message),
                    Output::Apply { seq, change } => {
                        self.applied.push(seq);
                        let result = self.apply_result.take().unwrap_or_else(|| {
                            if let Change::View(set) = &change {
                                if let Some(exam) = &set.exam {
                                    self.exam = exam.clone();
                                }
                                if let Some(delta) = set.slice_delta {
                                    let last = i64::from(self.slices - 1);
                                    let next = i64::from(self.slice) + i64::from(delta);
                                    self.slice = next.clamp(0, last) as u32;
                                }
                            }
                            Ok(())
                        });
                        self.s.handle_input(now, Input::Applied { seq, result });
                    }
                    Output::Render { job, .. } => {
                        if self.defer_renders {
                            assert!(self.deferred.is_none(), "one render out at a time");
                            self.deferred = Some(job);
                            continue;
                        }
                        if self.skip_renders {
                            self.s.handle_input(now, Input::RenderSkipped(job));
                            continue;
                        }
                        let result = match self.render_result.take() {
                            Some(result) => result,
                            None => match job {
                                RenderJob::Prerendered(out) => {
                                    self.renders.push(format!("prerendered {}", out.frame));
                                    Ok(Some(self.info()))
                                }
                                RenderJob::Frame { keyframe } => {
                                    self.frame += 1;
                                    self.renders
                                        .push(format!("frame {} key {keyframe}", self.frame));
                                    Ok(Some(self.info()))
                                }
                                RenderJob::Keyframe => {
                                    self.renders.push(format!("keyframe {}", self.frame));
                                    Ok(Some(self.info()))
                                }
                            },
                        };
                        self.s.handle_input(now, Input::FrameDone(result));
                    }
                    Output::SwitchCase { seq, ticket } => {
                        self.switches.push((seq, ticket.clone()));
                        let result = self.switch_result.take().unwrap_or(Ok(OpenedCase {
                            case: ticket,
                            shape: shape(&["e9"]),
                            not_after: None,
                            lossless_spent_px: 0,
                        }));
                        if result.is_ok() {
                            self.exam = "e9".into();
                        }
                        self.s.handle_input(now, Input::SwitchDone { seq, result });
                    }
                    Output::Prefetch { seq, ticket } => self.prefetches.push((seq, ticket)),
                    Output::SetBitrate(bitrate) => self.bitrates.push(bitrate),
                    Output::EncodeLossless { frame } => self.encode_requests.push(frame),
                    Output::SendLossless(out) => self.lossless_sends.push(out.frame),
                    Output::Event(SessionEvent::Viewed { case, view, .. }) => {
                        self.viewed.push((case, view))
                    }
                    Output::Event(event) => self.events.push(event),
                    Output::Close => {
                        self.closes += 1;
                        self.s.handle_input(now, Input::Drained);
                    }
                    Output::Ended(report) => self.reports.push(report),
                }
            }
        }

        /// Answers the render kept out by `defer_renders`.
        fn finish_render(&mut self) {
            let job = self.deferred.take().expect("a render is out");
            let RenderJob::Frame { keyframe } = job else {
                panic!("a frame render: {job:?}");
            };
            self.frame += 1;
            self.renders
                .push(format!("frame {} key {keyframe}", self.frame));
            let info = self.info();
            self.input(Input::FrameDone(Ok(Some(info))));
        }

        /// The B-scans the acknowledgements of `seq` showed, in order.
        fn acked_slices(&self, wanted: u64) -> Vec<u32> {
            self.sent
                .iter()
                .filter_map(|m| match m {
                    ServerMessage::Ack { seq, state, .. } if *seq == wanted => Some(state.slice),
                    _ => None,
                })
                .collect()
        }

        fn errors(&self) -> Vec<(Option<u64>, ErrorCode)> {
            self.sent
                .iter()
                .filter_map(|m| match m {
                    ServerMessage::Error { seq, code, .. } => Some((*seq, *code)),
                    _ => None,
                })
                .collect()
        }

        fn pongs(&self) -> usize {
            self.sent
                .iter()
                .filter(|m| matches!(m, ServerMessage::Pong { .. }))
                .count()
        }

        fn acks(&self) -> Vec<(u64, u64)> {
            self.sent
                .iter()
                .filter_map(|m| match m {
                    ServerMessage::Ack { seq, frame, .. } => Some((*seq, *frame)),
                    _ => None,
                })
                .collect()
        }

        fn report(&self) -> &SessionReport {
            assert_eq!(self.reports.len(), 1, "exactly one report");
            &self.reports[0]
        }
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn the_201st_message_in_a_second_is_rate_limited_and_the_next_second_is_not() {
        let mut sim = Sim::streaming();
        sim.at(ms(500));
        for seq in 0..200 {
            sim.input(ping(seq));
        }
        assert_eq!(sim.pongs(), 200);
        assert!(sim.errors().is_empty());
        sim.at(ms(999));
        sim.input(ping(200));
        assert_eq!(sim.pongs(), 200, "the 201st is not answered");
        assert_eq!(sim.errors(), [(None, ErrorCode::RateLimited)]);
        sim.at(ms(1000));
        sim.input(ping(201));
        assert_eq!(sim.pongs(), 201, "a new second, a new allowance");
        assert_eq!(sim.errors().len(), 1);
        sim.input(Input::End(EndReason::Closed));
        let report = sim.report();
        assert_eq!(report.messages, 202);
        assert_eq!(report.refused, 1);
    }

    #[test]
    fn a_rate_limited_view_change_is_not_applied() {
        let mut sim = Sim::streaming();
        for seq in 0..200 {
            sim.input(ping(seq));
        }
        sim.input(view(500, "e2"));
        assert!(sim.applied.is_empty());
        assert_eq!(sim.renders.len(), 1, "nothing new to render");
        assert_eq!(sim.errors(), [(None, ErrorCode::RateLimited)]);
    }

    #[test]
    fn the_lossless_frame_is_asked_for_only_after_the_settle_delay() {
        let mut sim = Sim::streaming();
        assert_eq!(sim.s.poll_timeout(), Some(sim.t0 + SETTLE));
        sim.run_until(SETTLE - ms(1));
        assert!(sim.encode_requests.is_empty());
        sim.run_until(SETTLE);
        assert_eq!(sim.encode_requests, [1]);
        sim.run_until(ms(5000));
        assert_eq!(sim.encode_requests, [1], "once per frame");

        sim.input(Input::LosslessEncoded(lossless(1)));
        assert_eq!(sim.lossless_sends, [1]);
        assert!(sim.events.is_empty(), "reported when its send ends");
        sim.input(Input::LosslessSent {
            frame: 1,
            bytes: 5000,
        });
        let [
            SessionEvent::Lossless {
                record,
                state,
                case,
                mark,
                ..
            },
        ] = sim.events.as_slice()
        else {
            panic!("one lossless event: {:?}", sim.events);
        };
        // With the watermark it carries, so that it can be rendered again.
        assert_eq!(mark.as_ref().map(|m| m.unix_minute), Some(30_000_000));
        assert_eq!(record.frame, 1);
        assert_eq!(record.bytes, 5000);
        assert_eq!(record.sha256, "hash-1");
        assert_eq!(state.exam, "e1");
        assert_eq!(case, "c1");
    }

    /// A script that asks for full-resolution frames faster than a grader looks at them gets
    /// them late (the rate), then not at all for that case (its total); the browser is told
    /// each time, the audit once per bound.
    #[test]
    fn past_the_lossless_budget_frames_stay_lossy_and_the_browser_and_audit_are_told() {
        let budget = LosslessBudgetConfig {
            burst_mpx: 2.0,
            mpx_per_s: 0.1,
            case_mpx: 3.5,
        };
        let mut sim = Sim::with(|_| Params {
            lossless_budget: budget,
            ..params(None)
        });
        sim.revealed_px = 1_000_000;
        sim.first_frame();
        sim.input(Input::PeerConnected);
        sim.input(Input::ChannelOpened);
        let withheld = |sim: &Sim| -> Vec<(u64, WithholdReason, Option<u64>)> {
            sim.sent
                .iter()
                .filter_map(|message| match message {
                    ServerMessage::LosslessWithheld {
                        frame,
                        reason,
                        retry_after_ms,
                        ..
                    } => Some((*frame, *reason, *retry_after_ms)),
                    _ => None,
                })
                .collect()
        };
        // Two frames from the 2 Mpx burst.
        sim.run_until(SETTLE);
        sim.input(Input::LosslessEncoded(lossless(1)));
        sim.at(ms(200));
        sim.input(view(1, "e2"));
        sim.run_until(ms(200) + SETTLE);
        sim.input(Input::LosslessEncoded(lossless(2)));
        assert_eq!(sim.lossless_sends, [1, 2]);
        // The third waits for the bucket (~9.6 s at 0.1 Mpx/s); the video goes on.
        sim.at(ms(400));
        sim.input(view(2, "e1"));
        sim.run_until(ms(400) + SETTLE);
        assert_eq!(sim.encode_requests, [1, 2], "not encoded while withheld");
        let told = withheld(&sim);
        assert_eq!(told.len(), 1);
        let (frame, reason, retry) = told[0];
        assert_eq!((frame, reason), (3, WithholdReason::Rate));
        let retry = retry.expect("the rate says when");
        assert!((9_000..10_000).contains(&retry), "{retry} ms");
        // It comes once the bucket can pay, if the view stayed.
        sim.run_until(ms(400) + SETTLE + ms(retry + 5));
        assert_eq!(sim.encode_requests, [1, 2, 3]);
        sim.input(Input::LosslessEncoded(lossless(3)));
        // 3 Mpx of this case shown: a fourth would pass its 3.5 Mpx total, and never comes.
        let later = ms(400) + SETTLE + ms(retry + 1_000);
        sim.at(later);
        sim.input(view(3, "e2"));
        sim.run_until(later + SETTLE + Duration::from_secs(20));
        assert_eq!(sim.encode_requests, [1, 2, 3]);
        assert_eq!(withheld(&sim)[1], (4, WithholdReason::CaseBudget, None));
        let reported: Vec<_> = sim
            .events
            .iter()
            .filter_map(|event| match event {
                SessionEvent::LosslessWithheld {
                    reason,
                    spent_px,
                    frame_px,
                    case,
                    ..
                } => Some((*reason, *spent_px, *frame_px, case.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            reported,
            [
                (WithholdReason::Rate, 2_000_000, 1_000_000, "c1"),
                (WithholdReason::CaseBudget, 3_000_000, 1_000_000, "c1"),
            ]
        );
        // The session goes on.
        assert!(!sim.s.is_ending());
    }

    #[test]
    fn a_view_change_before_the_settle_cancels_the_old_frames_lossless() {
        let mut sim = Sim::streaming();
        sim.run_until(ms(100));
        sim.input(view(1, "e2"));
        assert_eq!(sim.renders, ["prerendered 1", "frame 2 key false"]);
        assert_eq!(sim.acks(), [(1, 2)]);
        sim.run_until(ms(100) + SETTLE - ms(1));
        assert!(sim.encode_requests.is_empty(), "frame 1 never settles");
        sim.run_until(ms(100) + SETTLE);
        assert_eq!(sim.encode_requests, [2]);
    }

    #[test]
    fn a_view_change_not_yet_rendered_cancels_the_settle() {
        let mut sim = Sim::streaming();
        // The frame cannot be made yet (no payload type negotiated).
        sim.skip_renders = true;
        sim.run_until(ms(50));
        sim.input(view(1, "e2"));
        assert_eq!(sim.applied, [1]);
        assert_eq!(sim.renders.len(), 1, "not rendered yet");
        sim.run_until(ms(1000));
        assert!(
            sim.encode_requests.is_empty(),
            "the frame on screen is no longer the view"
        );
        // And a lossless of frame 1 encoded before the change is not sent either.
        sim.input(Input::LosslessEncoded(lossless(1)));
        assert!(sim.lossless_sends.is_empty());
    }

    #[test]
    fn a_lossless_frame_encoded_for_an_older_frame_is_not_sent() {
        let mut sim = Sim::streaming();
        sim.run_until(SETTLE);
        assert_eq!(sim.encode_requests, [1]);
        // The view changes while frame 1 is being encoded losslessly.
        sim.input(view(1, "e2"));
        assert_eq!(sim.s.current_frame(), 2);
        sim.input(Input::LosslessEncoded(lossless(1)));
        assert!(sim.lossless_sends.is_empty());
        sim.input(Input::End(EndReason::Closed));
        assert!(sim.report().lossless.is_empty(), "nothing was sent");
    }

    #[test]
    fn the_connect_timeout_ends_a_session_that_never_connects() {
        let mut sim = Sim::new(params(None));
        sim.first_frame();
        sim.input(Input::ChannelOpened);
        sim.run_until(CONNECT - ms(1));
        assert!(sim.reports.is_empty());
        sim.run_until(CONNECT);
        assert_eq!(sim.closes, 1);
        assert_eq!(sim.report().end, EndReason::ConnectTimeout);
        assert_eq!(sim.report().duration_ms, 8000);
        assert_eq!(sim.report().frames, 0);
    }

    #[test]
    fn a_connected_session_has_no_connect_timeout() {
        let mut sim = Sim::streaming();
        sim.at(ms(7000));
        sim.input(ping(1));
        sim.run_until(ms(30_000));
        assert!(sim.reports.is_empty());
    }

    #[test]
    fn a_disconnected_peer_has_five_seconds_to_come_back() {
        let mut sim = Sim::streaming();
        sim.at(ms(1000));
        sim.input(Input::PeerDisconnected);
        sim.run_until(ms(3000));
        sim.input(Input::PeerConnected);
        assert_eq!(
            sim.renders.last().map(String::as_str),
            Some("frame 2 key true"),
            "a keyframe on reconnect"
        );
        sim.run_until(ms(10_000));
        assert!(sim.reports.is_empty(), "it came back in time");

        sim.input(Input::PeerDisconnected);
        // A second `disconnected` does not restart the grace.
        sim.at(ms(12_000));
        sim.input(Input::PeerDisconnected);
        sim.run_until(ms(15_000) - ms(1));
        assert!(sim.reports.is_empty());
        sim.run_until(ms(15_000));
        assert_eq!(sim.report().end, EndReason::Disconnected);
    }

    #[test]
    fn a_session_without_messages_for_the_idle_timeout_ends() {
        let mut sim = Sim::streaming();
        sim.at(ms(30_000));
        sim.input(ping(1));
        sim.run_until(IDLE + ms(30_000) - ms(1));
        assert!(sim.reports.is_empty(), "the ping moved the idle deadline");
        sim.run_until(IDLE + ms(30_000));
        assert_eq!(sim.report().end, EndReason::Idle);
    }

    #[test]
    fn binary_messages_do_not_keep_a_session_alive() {
        let mut sim = Sim::streaming();
        sim.at(ms(30_000));
        sim.input(Input::Binary);
        assert_eq!(sim.errors(), [(None, ErrorCode::BadMessage)]);
        sim.run_until(IDLE);
        assert_eq!(sim.report().end, EndReason::Idle);
        assert_eq!(sim.report().refused, 1);
        assert_eq!(sim.report().messages, 0);
    }

    #[test]
    fn the_absolute_lifetime_ends_the_session_even_while_it_is_used() {
        let mut sim = Sim::with(|t0| params(Some(t0 + ms(20_000))));
        sim.first_frame();
        sim.input(Input::PeerConnected);
        sim.input(Input::ChannelOpened);
        for second in 1..20 {
            sim.run_until(ms(second * 1000));
            sim.input(ping(second));
        }
        sim.run_until(ms(20_000) - ms(1));
        assert!(sim.reports.is_empty());
        sim.run_until(ms(20_000));
        assert_eq!(sim.report().end, EndReason::Expired);
    }

    /// Issue 17 finding 7: after `open_case`, what was seen of the case left is reported as a
    /// record of that case, not credited to the last case of the session.
    #[test]
    fn a_case_left_by_a_switch_is_reported_with_its_own_views() {
        let mut sim = Sim::streaming();
        sim.at(ms(100));
        sim.input(view(1, "e2"));
        sim.at(ms(500));
        sim.input(text(
            serde_json::json!({"v": VERSION, "type": "open_case", "seq": 2, "ticket": "c2"}),
        ));
        let left: Vec<&SessionReport> = sim
            .events
            .iter()
            .filter_map(|event| match event {
                SessionEvent::CaseLeft(report) => Some(report.as_ref()),
                _ => None,
            })
            .collect();
        assert_eq!(left.len(), 1);
        let left = left[0];
        assert_eq!(left.case, "c1");
        assert_eq!(left.end, EndReason::SwitchedCase);
        assert_eq!(left.views, ["single:e1", "single:e2"]);
        assert_eq!(left.frames, 2);
        assert_eq!(left.duration_ms, 500);
        assert_ne!(
            left.stream_id,
            Uuid::from_u128(42),
            "a record id of its own"
        );
        sim.at(ms(900));
        sim.input(Input::End(EndReason::Closed));
        let report = sim.reports.last().expect("the end report");
        assert_eq!(report.case, "c2");
        assert_eq!(report.views, ["single:e9"], "only what was seen of c2");
        // Each view was also reported once, as it was first shown, against its case.
        let live: Vec<(&str, &str)> = sim
            .viewed
            .iter()
            .map(|(case, view)| (case.as_str(), view.as_str()))
            .collect();
        assert_eq!(
            live,
            [
                ("c1", "single:e1"),
                ("c1", "single:e2"),
                ("c2", "single:e9")
            ]
        );
    }

    #[test]
    fn the_next_cases_ticket_sets_the_lifetime() {
        let mut sim = Sim::streaming();
        let t0 = sim.t0;
        sim.switch_result = Some(Ok(OpenedCase {
            case: "c2".into(),
            shape: shape(&["e9"]),
            not_after: Some(t0 + ms(3000)),
            lossless_spent_px: 0,
        }));
        sim.input(text(
            serde_json::json!({"v": VERSION, "type": "open_case", "seq": 7, "ticket": "t2"}),
        ));
        assert_eq!(sim.switches, [(7, "t2".to_owned())]);
        let ready: Vec<_> = sim
            .sent
            .iter()
            .filter_map(|m| match m {
                // `ready` names no case (a hidden repeat's id must not reach the browser): the
                // new case shows in its shape.
                ServerMessage::Ready { shape, frame, .. } => {
                    Some((shape.exams[0].id.clone(), *frame))
                }
                _ => None,
            })
            .collect();
        assert_eq!(ready, [("e1".into(), 1), ("e9".into(), 2)]);
        assert_eq!(sim.acks(), [(7, 2)]);
        sim.run_until(ms(3000));
        assert_eq!(sim.report().end, EndReason::Expired);
        assert_eq!(sim.report().case, "c2");
    }

    #[test]
    fn a_prefetch_runs_beside_the_pipeline_and_is_answered_when_ready() {
        let prefetch = |seq: u64, ticket: &str| {
            text(
                serde_json::json!({"v": VERSION, "type": "prefetch_case", "seq": seq, "ticket": ticket}),
            )
        };
        let mut sim = Sim::streaming();
        sim.input(prefetch(3, "t2"));
        assert_eq!(sim.prefetches, [(3, "t2".to_owned())]);
        // The pipeline stays free: a view change meanwhile is applied and shown at once.
        sim.input(view(4, "e2"));
        assert_eq!(sim.applied, [4]);
        assert_eq!(sim.acks(), [(4, 2)]);
        sim.input(Input::PrefetchDone {
            seq: 3,
            result: Ok("c2".into()),
        });
        assert!(
            sim.sent
                .contains(&ServerMessage::Prefetched { v: VERSION, seq: 3 })
        );
        // A refused ticket and a failure inside the preparation are answered with their
        // `seq`, and the session goes on showing its case.
        sim.input(prefetch(5, "stolen"));
        let refusal = ProtocolError::new(ErrorCode::Forbidden, "another viewer session");
        sim.input(Input::PrefetchDone {
            seq: 5,
            result: Err(WorkError::Failed(refusal)),
        });
        sim.input(prefetch(6, "t3"));
        sim.input(Input::PrefetchDone {
            seq: 6,
            result: Err(WorkError::Panicked),
        });
        assert_eq!(
            sim.errors(),
            [
                (Some(5), ErrorCode::Forbidden),
                (Some(6), ErrorCode::Internal)
            ]
        );
        sim.input(view(7, "e1"));
        assert_eq!(sim.acks(), [(4, 2), (7, 3)]);
        assert!(sim.reports.is_empty());
        assert_eq!(sim.s.case(), "c1");
    }

    #[test]
    fn lifetime_deadline_follows_the_wall_clock() {
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000_500);
        assert_eq!(lifetime_deadline(now, wall, 0), None);
        assert_eq!(
            lifetime_deadline(now, wall, 1_000_010),
            Some(now + ms(9_500))
        );
        assert_eq!(
            lifetime_deadline(now, wall, 999_000),
            Some(now),
            "past: now"
        );
    }

    #[test]
    fn revocation_ends_the_session_with_its_reason_once() {
        let mut sim = Sim::streaming();
        sim.at(ms(700));
        sim.input(Input::End(EndReason::Revoked));
        assert_eq!(sim.closes, 1);
        assert_eq!(sim.report().end, EndReason::Revoked);
        assert_eq!(sim.report().duration_ms, 700);
        // Whatever comes after changes nothing.
        sim.input(Input::End(EndReason::Shutdown));
        sim.input(Input::PeerFailed);
        sim.input(ping(1));
        sim.run_until(ms(1_000_000));
        assert_eq!(sim.closes, 1);
        assert_eq!(sim.reports.len(), 1);
        assert_eq!(sim.s.poll_timeout(), None);
        assert!(sim.s.is_done());
    }

    #[test]
    fn the_first_end_reason_wins_while_closing() {
        let mut sim = Sim::streaming();
        sim.s.handle_input(sim.now, Input::PeerFailed);
        sim.s.handle_input(sim.now, Input::End(EndReason::Revoked));
        sim.s.handle_input(sim.now, Input::Timeout);
        sim.pump();
        assert_eq!(sim.report().end, EndReason::IceFailed);
    }

    #[test]
    fn the_peer_and_the_channel_closing_end_the_session() {
        for (input, reason) in [
            (Input::PeerClosed, EndReason::Closed),
            (Input::ChannelClosed, EndReason::Closed),
            (Input::PeerFailed, EndReason::IceFailed),
        ] {
            let mut sim = Sim::streaming();
            sim.input(input);
            assert_eq!(sim.report().end, reason);
        }
    }

    #[test]
    fn the_end_report_counts_what_happened() {
        let mut sim = Sim::streaming();
        sim.at(ms(10));
        sim.input(view(1, "e2"));
        sim.input(ping(2));
        sim.input(text(
            serde_json::json!({"v": VERSION, "type": "nope", "seq": 3}),
        ));
        sim.input(Input::Binary);
        sim.apply_result = Some(Err(WorkError::Failed(ProtocolError::new(
            ErrorCode::OutOfRange,
            "slice 99 is beyond the volume",
        ))));
        sim.input(view(4, "e1"));
        sim.run_until(ms(10) + SETTLE);
        assert_eq!(sim.encode_requests, [2]);
        sim.input(Input::LosslessEncoded(lossless(2)));
        // Bytes of a send still going when the session ends are counted at the close.
        sim.s.handle_input(sim.now, Input::End(EndReason::Revoked));
        sim.s.handle_input(
            sim.now,
            Input::LosslessSent {
                frame: 2,
                bytes: 3000,
            },
        );
        sim.at(ms(2500));
        sim.pump();
        let report = sim.report();
        assert_eq!(report.stream_id, Uuid::from_u128(42));
        assert_eq!(report.user, "u1");
        assert_eq!(report.viewer_session, "vs1");
        assert_eq!(report.case, "c1");
        assert_eq!(report.started_unix, 1_800_000_000);
        assert_eq!(report.duration_ms, 2500);
        assert_eq!(report.frames, 2);
        assert_eq!(report.views, ["single:e1", "single:e2"]);
        assert_eq!(report.bytes_sent, 1000 + 1000 + 3000);
        assert_eq!(report.messages, 4, "view, ping, unknown, refused view");
        assert_eq!(report.refused, 3, "unknown type, binary, refused view");
        assert_eq!(
            report.lossless,
            [LosslessRecord {
                frame: 2,
                sha256: "hash-2".into(),
                bytes: 3000,
                verified: None,
                revealed_px: 500_000,
            }]
        );
        assert_eq!(report.end, EndReason::Revoked);
        assert_eq!(
            sim.errors(),
            [
                (Some(3), ErrorCode::UnknownType),
                (None, ErrorCode::BadMessage),
                (Some(4), ErrorCode::OutOfRange),
            ]
        );
        assert_eq!(
            sim.events.len(),
            1,
            "the lossless frame's event at the close"
        );
    }

    #[test]
    fn verified_marks_the_lossless_record_or_is_refused() {
        let mut sim = Sim::streaming();
        sim.run_until(SETTLE);
        sim.input(Input::LosslessEncoded(lossless(1)));
        sim.input(Input::LosslessSent {
            frame: 1,
            bytes: 5000,
        });
        sim.input(text(
            serde_json::json!({"v": VERSION, "type": "verified", "seq": 5, "frame": 1, "ok": true}),
        ));
        sim.input(text(
            serde_json::json!({"v": VERSION, "type": "verified", "seq": 6, "frame": 9, "ok": true}),
        ));
        assert_eq!(sim.errors(), [(Some(6), ErrorCode::OutOfRange)]);
        sim.input(Input::End(EndReason::Closed));
        let report = sim.report();
        assert_eq!(report.lossless[0].verified, Some(true));
        assert_eq!(report.bytes_sent, 1000 + 5000);
        assert_eq!(report.refused, 1);
    }

    #[test]
    fn a_render_panic_ends_the_session_with_error_and_its_report() {
        let mut sim = Sim::streaming();
        sim.at(ms(40));
        sim.render_result = Some(Err(WorkError::Panicked));
        sim.input(view(1, "e2"));
        assert_eq!(sim.closes, 1);
        let report = sim.report();
        assert_eq!(report.end, EndReason::Error);
        assert_eq!(report.frames, 1);
        assert_eq!(report.messages, 1);
        assert_eq!(report.duration_ms, 40);
        assert!(sim.acks().is_empty());
    }

    #[test]
    fn a_panic_in_the_first_render_a_view_change_or_a_case_switch_ends_with_error() {
        let mut sim = Sim::new(params(None));
        sim.input(Input::FirstFrameReady(Err(WorkError::Panicked)));
        assert_eq!(sim.report().end, EndReason::Error);

        let mut sim = Sim::streaming();
        sim.apply_result = Some(Err(WorkError::Panicked));
        sim.input(view(1, "e2"));
        assert_eq!(sim.report().end, EndReason::Error);

        let mut sim = Sim::streaming();
        sim.switch_result = Some(Err(WorkError::Panicked));
        sim.input(text(
            serde_json::json!({"v": VERSION, "type": "open_case", "seq": 2, "ticket": "t"}),
        ));
        assert_eq!(sim.report().end, EndReason::Error);
        assert_eq!(sim.report().case, "c1");
    }

    #[test]
    fn a_render_error_is_answered_and_the_session_goes_on() {
        let mut sim = Sim::streaming();
        sim.render_result = Some(Err(WorkError::Failed(ProtocolError::new(
            ErrorCode::Internal,
            "cannot decode exam e2",
        ))));
        sim.input(view(1, "e2"));
        assert_eq!(sim.errors(), [(Some(1), ErrorCode::Internal)]);
        assert!(sim.acks().is_empty());
        assert!(sim.reports.is_empty());
        sim.input(view(2, "e1"));
        assert_eq!(sim.acks(), [(2, 2)]);
        sim.input(Input::End(EndReason::Closed));
        assert_eq!(
            sim.report().refused,
            0,
            "a failed frame is not a refused message"
        );
        assert_eq!(sim.report().frames, 2);
    }

    #[test]
    fn a_refused_case_switch_keeps_the_case() {
        let mut sim = Sim::streaming();
        sim.switch_result = Some(Err(WorkError::Failed(ProtocolError::new(
            ErrorCode::Forbidden,
            "this ticket was already used",
        ))));
        sim.input(text(
            serde_json::json!({"v": VERSION, "type": "open_case", "seq": 3, "ticket": "t"}),
        ));
        assert_eq!(sim.errors(), [(Some(3), ErrorCode::Forbidden)]);
        assert_eq!(sim.renders.len(), 1);
        sim.input(Input::End(EndReason::Closed));
        assert_eq!(sim.report().case, "c1");
        assert_eq!(sim.report().refused, 1);
    }

    /// A streaming session on a 6-B-scan volume (exam `e1`), showing B-scan 0.
    fn volume_sim() -> Sim {
        let mut params = params(None);
        params.shape.exams[0].kind = ExamKind::Oct;
        params.shape.exams[0].slices = 6;
        let mut sim = Sim::new(params);
        sim.slices = 6;
        sim.first_frame();
        sim.input(Input::PeerConnected);
        sim.input(Input::ChannelOpened);
        sim
    }

    fn cine(seq: u64, step: i32, fps: u32) -> Input {
        text(
            serde_json::json!({"v": VERSION, "type": "cine", "seq": seq, "step": step, "fps": fps}),
        )
    }

    #[test]
    fn cine_steps_every_b_scan_at_its_pace_to_the_end_then_settles() {
        let mut sim = volume_sim();
        sim.at(ms(1000));
        sim.input(cine(5, 1, 20));
        assert_eq!(sim.acked_slices(5), [1], "the first step at once");
        sim.run_until(ms(1049));
        assert_eq!(
            sim.acked_slices(5),
            [1],
            "the next one 50 ms later (20 a second)"
        );
        sim.run_until(ms(1050));
        assert_eq!(sim.acked_slices(5), [1, 2]);
        sim.run_until(ms(1200));
        assert_eq!(
            sim.acked_slices(5),
            [1, 2, 3, 4, 5],
            "every B-scan, in order"
        );
        let frames: Vec<u64> = sim.acks().iter().map(|(_, frame)| *frame).collect();
        assert_eq!(frames, [2, 3, 4, 5, 6], "one frame each");
        assert!(sim.encode_requests.is_empty(), "no lossless while playing");
        sim.run_until(ms(1400));
        assert_eq!(sim.acked_slices(5).len(), 5, "it stops at the last B-scan");
        assert_eq!(
            sim.encode_requests,
            [6],
            "the last B-scan settles to lossless"
        );
        assert!(sim.errors().is_empty());
    }

    #[test]
    fn a_slow_render_slows_a_cine_run_and_skips_nothing() {
        let mut sim = volume_sim();
        sim.defer_renders = true;
        sim.input(cine(5, 1, 50));
        sim.run_until(ms(95));
        assert_eq!(
            sim.applied,
            [5],
            "no step while the first is being rendered"
        );
        sim.finish_render();
        sim.run_until(ms(95));
        assert_eq!(
            sim.applied,
            [5, 5],
            "the late step comes as soon as the pipeline is back"
        );
        sim.run_until(ms(100));
        assert_eq!(sim.applied.len(), 2);
        sim.finish_render();
        sim.run_until(ms(114));
        assert_eq!(
            sim.applied.len(),
            2,
            "the missed ticks are not caught up with a burst"
        );
        sim.run_until(ms(115));
        assert_eq!(sim.applied.len(), 3, "the pace again, from the late step");
        sim.finish_render();
        assert_eq!(sim.acked_slices(5), [1, 2, 3]);
    }

    #[test]
    fn a_cine_run_stops_on_its_stop_on_a_view_change_and_on_a_gesture() {
        let mut sim = volume_sim();
        sim.input(cine(5, 1, 30));
        sim.run_until(ms(40));
        assert_eq!(sim.acked_slices(5), [1, 2]);
        sim.input(cine(6, 0, 30));
        sim.run_until(ms(500));
        assert_eq!(sim.acked_slices(5), [1, 2], "stopped");
        assert!(sim.acked_slices(6).is_empty(), "a stop is not answered");
        assert_eq!(sim.encode_requests, [3], "the B-scan it stopped on settles");

        sim.input(cine(7, -1, 30));
        assert_eq!(sim.acked_slices(7), [1]);
        sim.input(view(8, "e1"));
        sim.run_until(ms(1000));
        assert_eq!(sim.acked_slices(7), [1], "a view change ends the run");

        sim.input(cine(9, 1, 30));
        sim.input(text(serde_json::json!({"v": VERSION, "type": "pointer", "seq": 10, "action": "pan", "x": 1, "y": 1, "dx": 4, "dy": 0})));
        sim.run_until(ms(1500));
        assert_eq!(sim.acked_slices(9), [2], "so does a gesture");
        assert!(sim.errors().is_empty());
    }

    #[test]
    fn cine_is_refused_without_a_volume_and_answered_at_the_end() {
        let mut sim = Sim::streaming();
        sim.input(cine(3, 1, 30));
        assert_eq!(sim.errors(), [(Some(3), ErrorCode::NotAvailable)]);
        assert!(sim.applied.is_empty());

        let mut sim = volume_sim();
        sim.input(cine(4, -1, 30));
        assert_eq!(
            sim.acked_slices(4),
            [0],
            "already at the first B-scan: the frame shown"
        );
        sim.run_until(ms(500));
        assert!(sim.applied.is_empty(), "nothing to play");
    }

    #[test]
    fn messages_wait_for_the_first_frame_and_changes_coalesce_into_one_frame() {
        let mut sim = Sim::new(params(None));
        sim.input(Input::PeerConnected);
        sim.input(Input::ChannelOpened);
        sim.input(view(1, "e2"));
        sim.input(ping(2));
        sim.input(view(3, "e1"));
        assert!(
            sim.applied.is_empty(),
            "the pipeline is out on the first frame"
        );
        assert_eq!(
            sim.pongs(),
            0,
            "answered in order, after the changes before it"
        );
        assert!(sim.renders.is_empty());
        sim.first_frame();
        assert_eq!(sim.applied, [1, 3]);
        assert_eq!(sim.pongs(), 1);
        assert_eq!(
            sim.renders,
            ["frame 2 key true"],
            "the first frame is stale: one new frame for both changes"
        );
        assert_eq!(sim.acks(), [(1, 2), (3, 2)]);
    }

    #[test]
    fn nothing_is_rendered_before_the_peer_is_up() {
        let mut sim = Sim::new(params(None));
        sim.first_frame();
        sim.input(Input::ChannelOpened);
        assert!(sim.renders.is_empty());
        sim.input(Input::PeerConnected);
        assert_eq!(sim.renders, ["prerendered 1"]);
        let [ServerMessage::Ready { shape, frame, .. }] = sim.sent.as_slice() else {
            panic!("ready: {:?}", sim.sent);
        };
        assert_eq!((shape.exams.len(), *frame), (2, 1));
    }

    #[test]
    fn the_first_frame_goes_when_dtls_is_up_and_ready_when_the_channel_opens() {
        let mut sim = Sim::new(params(None));
        sim.first_frame();
        sim.input(Input::PeerConnected);
        assert_eq!(sim.renders, ["prerendered 1"], "the video needs no channel");
        assert!(sim.sent.is_empty(), "nothing to say it with yet");
        sim.run_until(SETTLE + ms(50));
        assert!(
            sim.encode_requests.is_empty(),
            "no lossless without the channel"
        );
        sim.input(Input::ChannelOpened);
        let [ServerMessage::Ready { frame: 1, .. }] = sim.sent.as_slice() else {
            panic!("ready: {:?}", sim.sent);
        };
        sim.run_until(SETTLE + ms(50));
        assert_eq!(
            sim.encode_requests,
            [1],
            "the still first frame settles at once"
        );
        assert_eq!(sim.renders, ["prerendered 1"], "and is not rendered again");
    }

    #[test]
    fn a_skipped_render_keeps_its_frame_and_is_retried_at_the_next_input() {
        let mut sim = Sim::new(params(None));
        sim.first_frame();
        sim.skip_renders = true;
        sim.input(Input::PeerConnected);
        sim.input(Input::ChannelOpened);
        assert!(sim.renders.is_empty());
        assert!(sim.s.poll_output().is_none(), "no retry without news");
        sim.skip_renders = false;
        sim.input(ping(1));
        assert_eq!(sim.renders, ["prerendered 1"]);
    }

    #[test]
    fn a_skipped_render_is_retried_after_a_while_if_nothing_happens() {
        let mut sim = Sim::new(params(None));
        sim.first_frame();
        sim.skip_renders = true;
        sim.at(ms(1000));
        sim.input(Input::PeerConnected);
        sim.input(Input::ChannelOpened);
        assert_eq!(sim.s.poll_timeout(), Some(sim.t0 + ms(1000) + RENDER_RETRY));
        sim.skip_renders = false;
        sim.run_until(ms(1000) + RENDER_RETRY - ms(1));
        assert!(sim.renders.is_empty());
        sim.run_until(ms(1000) + RENDER_RETRY);
        assert_eq!(sim.renders, ["prerendered 1"]);
    }

    #[test]
    fn keyframe_requests_re_encode_the_last_frame() {
        let mut sim = Sim::streaming();
        sim.input(Input::Feedback(Feedback::KeyframeRequest));
        assert_eq!(sim.renders, ["prerendered 1", "keyframe 1"]);
    }

    #[test]
    fn loss_moves_the_bitrate_within_its_ceiling() {
        let mut sim = Sim::new(params(None));
        sim.input(Input::Feedback(Feedback::Loss(0.5)));
        assert!(
            sim.bitrates.is_empty(),
            "the encoder is out on the first frame"
        );
        sim.first_frame();
        sim.input(Input::Feedback(Feedback::Loss(0.5)));
        sim.input(Input::Feedback(Feedback::Loss(0.0)));
        sim.input(Input::Feedback(Feedback::Loss(0.0)));
        assert_eq!(sim.bitrates.len(), 3);
        assert_eq!(sim.bitrates[..2], [1_500_000, 1_575_000]);
        for _ in 0..20 {
            sim.input(Input::Feedback(Feedback::Loss(0.0)));
        }
        assert_eq!(sim.bitrates.last(), Some(&BITRATE));
    }

    #[test]
    fn view_labels_name_the_layout_and_the_exam() {
        let mut s = state("e7");
        assert_eq!(view_label(&s), "single:e7");
        s.layout = Layout::Prior;
        assert_eq!(view_label(&s), "prior:e7");
    }
}
