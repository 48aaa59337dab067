//! The server ↔ worker protocol, version 1 (`readroom-worker/1`): what a server asks of a
//! worker, what a worker reports back, and what both sides know of a session.
//!
//! The same types travel two ways: as JSON over HTTP between `readroom serve` and
//! `readroom worker` processes (see `docs/workers.md`), and as plain values between the server
//! and the in-process worker of the embedded default, so both paths run the same code.
//! Requests are signed with [`crate::control_auth`].
//!
//! Server → worker (signed with the server's key, which is also the ticket key):
//! - `POST /v1/sessions` [`OpenSession`] → [`SessionOpened`] or [`WorkerRefusal`];
//! - `POST /v1/sessions/end` [`EndSessions`] → [`SessionsEnded`];
//! - `GET /v1/status` → [`Heartbeat`].
//!
//! Worker → server (signed with the worker's own key, which the server must trust):
//! - `POST /internal/worker/v1/heartbeat` [`Heartbeat`] → [`HeartbeatReply`];
//! - `POST /internal/worker/v1/events` [`EventBatch`] → `204`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::view::{ViewState, Viewport};

/// The protocol's name and version, sent in every heartbeat.
pub const PROTOCOL: &str = "readroom-worker/1";

/// Longest JSON body either side accepts on the control protocol (an SDP offer is a few KiB;
/// an event batch is bounded by [`MAX_EVENTS_PER_BATCH`]).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Most events a worker sends in one batch.
pub const MAX_EVENTS_PER_BATCH: usize = 256;

/// Start a session: the server's ticket for the case, the browser's offer and viewport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSession {
    /// The server-signed ticket (`rt1.…`).
    pub ticket: String,
    /// The browser's SDP offer (non-trickle, with its candidates).
    pub offer_sdp: String,
    /// The browser's drawing surface.
    pub viewport: Viewport,
}

/// The worker's answer to [`OpenSession`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionOpened {
    /// This stream session (one peer connection).
    pub stream_id: Uuid,
    /// The SDP answer with all of the worker's candidates.
    pub answer_sdp: String,
}

/// Why a worker did not open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The ticket is malformed, forged, expired or used.
    Ticket,
    /// The offer cannot be answered.
    BadOffer,
    /// The viewport is out of range.
    BadViewport,
    /// The worker is at its session limit.
    Busy,
    /// The worker is draining (shutting down) and takes no new sessions.
    Draining,
    /// The case could not be opened, or a local failure.
    Internal,
}

/// A refused [`OpenSession`] (also the body of every non-2xx answer of a worker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerRefusal {
    /// What kind of refusal.
    pub code: RefusalCode,
    /// A message naming what is wrong (never image content).
    pub message: String,
}

impl RefusalCode {
    /// Whether another worker might take the same request (the request itself is fine).
    pub fn try_elsewhere(self) -> bool {
        matches!(self, RefusalCode::Busy | RefusalCode::Draining)
    }
}

/// Which sessions to end; a session matches when every field given matches (an empty filter
/// matches nothing, so a mistake cannot end every session).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionFilter {
    /// One stream session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<Uuid>,
    /// Every session of this user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every session showing this case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// Every session of this viewer session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewer_session: Option<String>,
    /// Every session showing a case of this study (with `user`: a user's sessions under a
    /// study grant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study: Option<String>,
}

impl SessionFilter {
    /// A filter for one stream session.
    pub fn stream(id: Uuid) -> SessionFilter {
        SessionFilter {
            stream: Some(id),
            ..SessionFilter::default()
        }
    }

    /// A filter for every session of `user`.
    pub fn user(user: impl Into<String>) -> SessionFilter {
        SessionFilter {
            user: Some(user.into()),
            ..SessionFilter::default()
        }
    }

    /// Whether nothing is named (matches no session).
    pub fn is_empty(&self) -> bool {
        self.stream.is_none()
            && self.user.is_none()
            && self.case.is_none()
            && self.viewer_session.is_none()
            && self.study.is_none()
    }

    /// Whether `session` is one this filter names.
    pub fn matches(&self, session: &SessionInfo) -> bool {
        !self.is_empty()
            && self.stream.is_none_or(|s| s == session.stream_id)
            && self.user.as_deref().is_none_or(|u| u == session.user)
            && self.case.as_deref().is_none_or(|c| c == session.case)
            && self
                .viewer_session
                .as_deref()
                .is_none_or(|v| v == session.viewer_session)
            && self.study.as_deref().is_none_or(|s| s == session.study)
    }

    /// A filter for every session of `user` showing a case of `study` (a revoked study
    /// grant).
    pub fn user_in_study(user: impl Into<String>, study: impl Into<String>) -> SessionFilter {
        SessionFilter {
            user: Some(user.into()),
            study: Some(study.into()),
            ..SessionFilter::default()
        }
    }
}

/// End the sessions a filter names, for a reason the report will carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndSessions {
    /// Which sessions.
    pub filter: SessionFilter,
    /// Why (usually [`EndReason::Revoked`]).
    pub reason: EndReason,
}

/// How many sessions an [`EndSessions`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsEnded {
    /// Sessions told to end (their reports follow as events).
    pub ended: usize,
}

/// A session as the worker knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionInfo {
    /// The stream session.
    pub stream_id: Uuid,
    /// The user (readroom user id).
    pub user: String,
    /// The case it shows now.
    pub case: String,
    /// The viewer session.
    pub viewer_session: String,
    /// The study of the case it shows (empty: unknown, a ticket from before December 2026).
    #[serde(default)]
    pub study: String,
}

/// A worker's registration and load, sent every heartbeat interval to any server replica
/// (and answered by `GET /v1/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// [`PROTOCOL`].
    pub protocol: String,
    /// The worker's id (stable across restarts: its name).
    pub worker_id: String,
    /// Where servers reach its control API (`http://10.0.3.7:7443`).
    pub control_url: String,
    /// The address its media sockets announce (for operators).
    pub media_address: String,
    /// Most concurrent sessions.
    pub capacity: u32,
    /// Sessions running now.
    pub active_sessions: u32,
    /// Load average over one minute divided by the cores (0 = idle, 1 = saturated).
    pub cpu_load: f32,
    /// Shutting down: takes no new sessions.
    pub draining: bool,
    /// The sessions running now.
    pub sessions: Vec<SessionInfo>,
}

/// What a server answers to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatReply {
    /// Seconds until the next heartbeat is expected.
    pub interval_secs: u64,
}

/// What happened in a session, reported as it happens so the server writes the audit log even
/// if the worker dies later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SessionEvent {
    /// The session moved to another case (an `open_case` with a fresh ticket).
    CaseOpened {
        /// The stream session.
        stream_id: Uuid,
        /// The user.
        user: String,
        /// The case it shows now.
        case: String,
        /// The case it showed before.
        previous_case: String,
        /// Whether the case had been made ready beforehand (`prefetch_case`) rather than
        /// opened when asked for (absent from workers before December 2026: false).
        #[serde(default)]
        prefetched: bool,
    },
    /// A view shown for the first time on this case in this session (`single:fundus-od`, as
    /// in the report's `views`), reported as it happens so that the grading form's check of
    /// what was looked at does not wait for the session's end (absent from workers before
    /// December 2026: their views arrive with the report only).
    Viewed {
        /// The stream session.
        stream_id: Uuid,
        /// The user.
        user: String,
        /// The case.
        case: String,
        /// The view label.
        view: String,
    },
    /// A lossless frame went out, with the exact state it was rendered from.
    Lossless {
        /// The stream session.
        stream_id: Uuid,
        /// The user.
        user: String,
        /// The case.
        case: String,
        /// The frame (its record, as in the end report).
        record: LosslessRecord,
        /// The render state (exam, slice, zoom, centre, W/L, filters, viewport).
        state: Box<ViewState>,
        /// The watermark it carries, so that `readroom grade verify` can render it again
        /// (absent from workers before December 2026).
        #[serde(default)]
        mark: Option<MarkRecord>,
    },
    /// The session's lossless budget stopped a frame (reported once per case and bound).
    LosslessWithheld {
        /// The stream session.
        stream_id: Uuid,
        /// The user.
        user: String,
        /// The case.
        case: String,
        /// Which bound.
        reason: crate::protocol::WithholdReason,
        /// Full-resolution pixels of this case sent losslessly in the session so far.
        spent_px: u64,
        /// What the withheld frame would have shown, in full-resolution pixels.
        frame_px: u64,
        /// The render state of the withheld frame.
        state: Box<ViewState>,
    },
    /// The session moved to another case: the part spent on the case it left, as a report of
    /// its own (its own id, derived from the stream's; end reason
    /// [`EndReason::SwitchedCase`]; the views and frames of that case only), so that "who saw
    /// what" and the grading coverage are per case, not credited to the last case shown.
    CaseLeft(Box<SessionReport>),
    /// The session ended; its full report.
    Ended(Box<SessionReport>),
}

/// Events from one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// The worker's id.
    pub worker_id: String,
    /// At most [`MAX_EVENTS_PER_BATCH`] events, oldest first.
    pub events: Vec<SessionEvent>,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The access that admitted it ended (assignment, role, account, sign-in session).
    Revoked,
    /// Its absolute lifetime (the sign-in session's) ran out.
    Expired,
    /// Rendering or encoding failed; the session was ended cleanly.
    Error,
    /// The worker stopped answering; the server closed the record.
    WorkerLost,
    /// Not the end of the connection: the viewer session moved to another case
    /// (`open_case`), and this record is the part of the session spent on the case it left.
    SwitchedCase,
}

impl EndReason {
    /// The snake_case name stored with the session.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::IceFailed => "ice_failed",
            EndReason::Disconnected => "disconnected",
            EndReason::ConnectTimeout => "connect_timeout",
            EndReason::Idle => "idle",
            EndReason::Shutdown => "shutdown",
            EndReason::Revoked => "revoked",
            EndReason::Expired => "expired",
            EndReason::Error => "error",
            EndReason::WorkerLost => "worker_lost",
            EndReason::SwitchedCase => "switched_case",
        }
    }
}

/// The parameters of the watermark a session's frames carry (everything but the key): with
/// the render state and the bundle, they reproduce a frame exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRecord {
    /// The grader's label in the visible strip (the username the ticket named).
    pub label: String,
    /// The viewer session the mark names.
    pub session: Uuid,
    /// The Unix minute in the visible strip.
    pub unix_minute: u32,
}

/// A lossless frame sent during a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// Source pixels it shows at full resolution: its cost to the lossless budget (0 in
    /// records from before December 2026).
    #[serde(default)]
    pub revealed_px: u64,
}

/// One ended session, for the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> SessionInfo {
        SessionInfo {
            stream_id: Uuid::from_u128(7),
            user: "u1".into(),
            case: "c1".into(),
            viewer_session: "v1".into(),
            study: "s1".into(),
        }
    }

    #[test]
    fn a_study_grant_names_the_users_sessions_in_that_study() {
        assert!(SessionFilter::user_in_study("u1", "s1").matches(&info()));
        assert!(!SessionFilter::user_in_study("u1", "s2").matches(&info()));
        assert!(!SessionFilter::user_in_study("u2", "s1").matches(&info()));
        // A session from a ticket without a study is in no study.
        let mut older = info();
        older.study = String::new();
        assert!(!SessionFilter::user_in_study("u1", "s1").matches(&older));
        let wire = serde_json::to_string(&SessionFilter::user_in_study("u1", "s1")).unwrap();
        assert_eq!(wire, r#"{"user":"u1","study":"s1"}"#);
    }

    #[test]
    fn an_empty_filter_ends_nothing() {
        assert!(!SessionFilter::default().matches(&info()));
    }

    #[test]
    fn every_named_field_must_match() {
        assert!(SessionFilter::user("u1").matches(&info()));
        assert!(!SessionFilter::user("u2").matches(&info()));
        assert!(SessionFilter::stream(Uuid::from_u128(7)).matches(&info()));
        let both = SessionFilter {
            user: Some("u1".into()),
            case: Some("c2".into()),
            ..SessionFilter::default()
        };
        assert!(!both.matches(&info()), "same user, other case");
        let viewer = SessionFilter {
            viewer_session: Some("v1".into()),
            ..SessionFilter::default()
        };
        assert!(viewer.matches(&info()));
    }

    #[test]
    fn events_round_trip_as_tagged_json() {
        let event = SessionEvent::CaseOpened {
            stream_id: Uuid::from_u128(1),
            user: "u".into(),
            case: "c2".into(),
            previous_case: "c1".into(),
            prefetched: true,
        };
        let text = serde_json::to_string(&event).unwrap();
        assert!(text.contains(r#""type":"case_opened""#), "{text}");
        assert_eq!(serde_json::from_str::<SessionEvent>(&text).unwrap(), event);
        let bad = r#"{"type":"case_opened","stream_id":"00000000-0000-0000-0000-000000000001","user":"u","case":"c","previous_case":"c","extra":1}"#;
        assert!(serde_json::from_str::<SessionEvent>(bad).is_err());
    }

    #[test]
    fn refusals_that_another_worker_may_take() {
        assert!(RefusalCode::Busy.try_elsewhere());
        assert!(RefusalCode::Draining.try_elsewhere());
        assert!(!RefusalCode::Ticket.try_elsewhere());
        assert!(!RefusalCode::BadOffer.try_elsewhere());
        assert_eq!(EndReason::WorkerLost.as_str(), "worker_lost");
        assert_eq!(
            serde_json::to_string(&EndReason::ConnectTimeout).unwrap(),
            r#""connect_timeout""#
        );
    }
}
