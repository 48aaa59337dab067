//! The `control` data channel protocol between the viewer and the worker (version 1).
//!
//! Text messages are JSON objects with `"v": 1` and a `"type"`; the full description with
//! examples is `docs/streaming.md`. Binary messages go only from the worker to the browser and
//! carry lossless-frame chunks ([`ChunkHeader`]). Parsing is strict: unknown types and unknown
//! fields are refused, sizes are capped before parsing, and every refusal maps to an
//! [`ErrorCode`] the worker sends back; a bad message never ends the session.

use serde::{Deserialize, Serialize};

use crate::view::{CaseShape, ViewChange, ViewState};

/// Protocol version carried in every text message.
pub const VERSION: u32 = 1;
/// Largest text message the worker accepts from the browser, in bytes.
pub const MAX_CLIENT_MESSAGE: usize = 8 * 1024;
/// Data channel label.
pub const CHANNEL_LABEL: &str = "control";
/// B-scans a second of a cine run when the `cine` message names no pace.
pub const CINE_FPS_DEFAULT: u32 = 30;
/// The pace a `cine` message may ask for, B-scans a second.
pub const CINE_FPS_RANGE: (u32, u32) = (5, 60);
/// Magic at the start of a binary lossless chunk.
pub const CHUNK_MAGIC: [u8; 4] = *b"RRLF";
/// Bytes of [`ChunkHeader`] on the wire.
pub const CHUNK_HEADER_LEN: usize = 16;

/// Browser → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Change the view.
    View {
        /// Protocol version.
        v: u32,
        /// Client sequence number, echoed in the acknowledgement.
        seq: u64,
        /// What changes.
        set: ViewChange,
    },
    /// A pointer gesture in device pixels of the viewport; the worker maps it through the
    /// layout it rendered.
    Pointer {
        /// Protocol version.
        v: u32,
        /// Client sequence number.
        seq: u64,
        /// What the gesture does.
        action: PointerAction,
        /// Where it started, device pixels.
        x: f32,
        /// Where it started, device pixels.
        y: f32,
        /// Movement since the last message of this drag, device pixels (0 for a click).
        #[serde(default)]
        dx: f32,
        /// Movement since the last message of this drag, device pixels.
        #[serde(default)]
        dy: f32,
    },
    /// Switch this viewer session to another case, with a ticket from
    /// `POST /api/cases/{id}/ticket` for the same viewer session.
    OpenCase {
        /// Protocol version.
        v: u32,
        /// Client sequence number.
        seq: u64,
        /// The signed ticket.
        ticket: String,
    },
    /// Get the next case ready while the grader works on this one: with a ticket for the same
    /// viewer session, the worker opens that case's bundle and renders its first view in the
    /// background, so that a later `open_case` for that case (with this ticket or a newer one)
    /// shows it at once. The ticket is checked but not used up; nothing is sent to the browser
    /// but `prefetched`. One case is kept ready per session; a new prefetch replaces it.
    PrefetchCase {
        /// Protocol version.
        v: u32,
        /// Client sequence number.
        seq: u64,
        /// The signed ticket.
        ticket: String,
    },
    /// Play the B-scans of the volume shown (a held arrow key): the worker steps `step` B-scans
    /// at a time at `fps` until told to stop (`step` 0), until the end of the volume, or until
    /// another view change, pointer gesture or case switch. Every B-scan on the way is rendered
    /// and sent (none is skipped to keep the pace; a slow render slows the run) and each frame
    /// is acknowledged with this message's `seq`. A stop is not answered.
    Cine {
        /// Protocol version.
        v: u32,
        /// Client sequence number, echoed in the acknowledgement of every frame of the run.
        seq: u64,
        /// -1 (towards the first B-scan), 1 (towards the last) or 0 (stop).
        step: i32,
        /// B-scans a second ([`CINE_FPS_RANGE`]; [`CINE_FPS_DEFAULT`] when absent).
        #[serde(default)]
        fps: Option<u32>,
    },
    /// Round-trip probe for the connection quality indicator.
    Ping {
        /// Protocol version.
        v: u32,
        /// Client sequence number.
        seq: u64,
    },
    /// The browser drew a lossless frame and checked its hash (for the audit trail).
    Verified {
        /// Protocol version.
        v: u32,
        /// Client sequence number.
        seq: u64,
        /// Frame number of the lossless frame.
        frame: u64,
        /// Whether the drawn pixels hashed to the announced SHA-256.
        ok: bool,
    },
}

/// What a pointer gesture does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointerAction {
    /// Click: on an en-face locator, jump to the nearest B-scan.
    Click,
    /// Drag: move the image.
    Pan,
    /// Drag: horizontal changes window width, vertical changes level.
    WindowLevel,
    /// Drag from (x, y) by (dx, dy): add a caliper between the two points.
    Measure,
    /// Click: place the ETDRS grid centre (fovea) here.
    PlaceGrid,
    /// Zoom in (dy < 0) or out (dy > 0) about (x, y), as from a wheel with Ctrl.
    Zoom,
}

impl ClientMessage {
    /// The client sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            ClientMessage::View { seq, .. }
            | ClientMessage::Pointer { seq, .. }
            | ClientMessage::OpenCase { seq, .. }
            | ClientMessage::PrefetchCase { seq, .. }
            | ClientMessage::Cine { seq, .. }
            | ClientMessage::Ping { seq, .. }
            | ClientMessage::Verified { seq, .. } => *seq,
        }
    }

    fn version(&self) -> u32 {
        match self {
            ClientMessage::View { v, .. }
            | ClientMessage::Pointer { v, .. }
            | ClientMessage::OpenCase { v, .. }
            | ClientMessage::PrefetchCase { v, .. }
            | ClientMessage::Cine { v, .. }
            | ClientMessage::Ping { v, .. }
            | ClientMessage::Verified { v, .. } => *v,
        }
    }

    /// Refuses values a well-formed message may still hold out of range.
    fn check_ranges(&self) -> Result<(), ProtocolError> {
        if let ClientMessage::Cine { step, fps, .. } = self {
            if !(-1..=1).contains(step) {
                return Err(ProtocolError::new(
                    ErrorCode::OutOfRange,
                    "cine `step` must be -1, 0 or 1",
                ));
            }
            let (low, high) = CINE_FPS_RANGE;
            if fps.is_some_and(|fps| !(low..=high).contains(&fps)) {
                return Err(ProtocolError::new(
                    ErrorCode::OutOfRange,
                    format!("cine `fps` must be between {low} and {high}"),
                ));
            }
        }
        Ok(())
    }

    /// Parses one text message, refusing oversized, malformed, unknown and wrong-version input.
    /// The error carries the `seq` when it could be read, so the reply can name the request.
    pub fn parse(text: &[u8]) -> Result<ClientMessage, ProtocolError> {
        if text.len() > MAX_CLIENT_MESSAGE {
            return Err(ProtocolError::new(
                ErrorCode::TooLarge,
                format!(
                    "message of {} bytes exceeds the {MAX_CLIENT_MESSAGE}-byte limit",
                    text.len()
                ),
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(text)
            .map_err(|err| ProtocolError::new(ErrorCode::BadJson, format!("not JSON: {err}")))?;
        let seq = value.get("seq").and_then(serde_json::Value::as_u64);
        let with_seq = |mut err: ProtocolError| {
            err.seq = seq;
            err
        };
        let Some(kind) = value
            .get("type")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
        else {
            return Err(with_seq(ProtocolError::new(
                ErrorCode::BadMessage,
                "missing string field `type`",
            )));
        };
        if !KNOWN_TYPES.contains(&kind.as_str()) {
            return Err(with_seq(ProtocolError::new(
                ErrorCode::UnknownType,
                format!(
                    "unknown message type `{}`",
                    kind.chars().take(40).collect::<String>()
                ),
            )));
        }
        match value.get("v").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(VERSION) => {}
            _ => {
                return Err(with_seq(ProtocolError::new(
                    ErrorCode::BadVersion,
                    format!("`v` must be {VERSION}"),
                )));
            }
        }
        let message: ClientMessage = serde_json::from_value(value).map_err(|err| {
            with_seq(ProtocolError::new(
                ErrorCode::BadMessage,
                format!("invalid `{kind}` message: {err}"),
            ))
        })?;
        debug_assert_eq!(message.version(), VERSION);
        message.check_ranges().map_err(with_seq)?;
        Ok(message)
    }
}

const KNOWN_TYPES: [&str; 7] = [
    "view",
    "pointer",
    "open_case",
    "prefetch_case",
    "cine",
    "ping",
    "verified",
];

/// Worker → browser (text messages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The session is admitted to a case and its first frame is on its way.
    Ready {
        /// Protocol version.
        v: u32,
        /// Viewer session id.
        session: String,
        /// Exams that can be shown. No case id: the browser knows which case it asked for, and
        /// a hidden repeat's case id must never reach it (see `crate::ticket`).
        shape: CaseShape,
        /// Initial state.
        state: ViewState,
        /// Frame number of the first frame.
        frame: u64,
    },
    /// A change was applied and rendered.
    Ack {
        /// Protocol version.
        v: u32,
        /// The client sequence number it answers.
        seq: u64,
        /// Frame number of the frame showing it (sent as video).
        frame: u64,
        /// The whole state after the change.
        state: ViewState,
        /// Caliper lengths in micrometres, in the order of `state.calipers` (null if unknown).
        measurements: Vec<Option<f64>>,
    },
    /// A lossless frame follows in `chunks` binary messages.
    Lossless {
        /// Protocol version.
        v: u32,
        /// Frame number (same as the video frame it replaces).
        frame: u64,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// SHA-256 (hex) of the frame's RGB8 pixels, row-major, no padding: what the browser
        /// must get back from the drawn canvas.
        sha256: String,
        /// The still-image format of the chunks, as a MIME type (`image/webp`: lossless WebP).
        format: String,
        /// Size of the image in bytes.
        bytes: u64,
        /// Number of binary chunks.
        chunks: u32,
    },
    /// The lossless frame of `frame` is not sent: the session's lossless budget is spent
    /// (a grading aid, not an export path). The video stream goes on.
    LosslessWithheld {
        /// Protocol version.
        v: u32,
        /// The frame that stays lossy.
        frame: u64,
        /// Which bound: `rate` (too many full-resolution pixels too fast) or `case_budget`
        /// (this case's total for the session).
        reason: WithholdReason,
        /// When the lossless frame will come if the view stays (rate only).
        retry_after_ms: Option<u64>,
    },
    /// The case of a `prefetch_case` is ready: an `open_case` for it shows it without
    /// fetching or decoding.
    Prefetched {
        /// Protocol version.
        v: u32,
        /// The `prefetch_case` message's sequence number (the browser knows which case it
        /// named; the worker does not echo the case id, which for a hidden repeat the grader
        /// must not learn).
        seq: u64,
    },
    /// Reply to a ping.
    Pong {
        /// Protocol version.
        v: u32,
        /// The ping's sequence number.
        seq: u64,
    },
    /// A request was refused; the session goes on.
    Error {
        /// Protocol version.
        v: u32,
        /// The request's sequence number, if it could be read.
        seq: Option<u64>,
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable reason.
        message: String,
    },
}

impl ServerMessage {
    /// JSON text of the message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            String::from(r#"{"v":1,"type":"error","seq":null,"code":"internal","message":"encoding failed"}"#)
        })
    }
}

/// Why a lossless frame was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithholdReason {
    /// Full-resolution pixels asked for faster than the session's rate.
    Rate,
    /// The case's total for the session is spent.
    CaseBudget,
}

impl WithholdReason {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            WithholdReason::Rate => "rate",
            WithholdReason::CaseBudget => "case_budget",
        }
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Over [`MAX_CLIENT_MESSAGE`].
    TooLarge,
    /// Not JSON.
    BadJson,
    /// JSON but not a valid message (missing or wrong fields).
    BadMessage,
    /// Unknown `type`.
    UnknownType,
    /// Wrong or missing `v`.
    BadVersion,
    /// A value outside its range (slice beyond the volume, zoom, viewport...).
    OutOfRange,
    /// Unknown exam, or a layout the case cannot show.
    NotAvailable,
    /// A ticket that does not admit this session to the case.
    Forbidden,
    /// Too many messages.
    RateLimited,
    /// The worker failed (the image could not be read or decoded).
    Internal,
}

/// A refused message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    /// Reason.
    pub code: ErrorCode,
    /// Explanation (never contains image data or identities).
    pub message: String,
    /// The request's sequence number, when known.
    pub seq: Option<u64>,
}

impl ProtocolError {
    /// An error without a sequence number.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            code,
            message: message.into(),
            seq: None,
        }
    }

    /// The error as the message sent back.
    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::Error {
            v: VERSION,
            seq: self.seq,
            code: self.code,
            message: self.message.clone(),
        }
    }
}

/// Header of a binary lossless chunk: `RRLF`, frame (u64 BE), chunk index (u32 BE), then a
/// slice of the image (in the announcement's `format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Frame number.
    pub frame: u64,
    /// Index of the chunk (0-based).
    pub index: u32,
}

impl ChunkHeader {
    /// The 16 header bytes.
    pub fn encode(&self) -> [u8; CHUNK_HEADER_LEN] {
        let mut out = [0u8; CHUNK_HEADER_LEN];
        out[..4].copy_from_slice(&CHUNK_MAGIC);
        out[4..12].copy_from_slice(&self.frame.to_be_bytes());
        out[12..16].copy_from_slice(&self.index.to_be_bytes());
        out
    }

    /// Reads a header from the start of a chunk.
    pub fn decode(bytes: &[u8]) -> Option<ChunkHeader> {
        if bytes.len() < CHUNK_HEADER_LEN || bytes[..4] != CHUNK_MAGIC {
            return None;
        }
        Some(ChunkHeader {
            frame: u64::from_be_bytes(bytes[4..12].try_into().ok()?),
            index: u32::from_be_bytes(bytes[12..16].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_change_parses() {
        let message = ClientMessage::parse(
            br#"{"v":1,"type":"view","seq":7,"set":{"slice_delta":1,"zoom":"fit","red_free":true}}"#,
        )
        .unwrap();
        let ClientMessage::View { seq, set, .. } = message else {
            panic!("not a view message")
        };
        assert_eq!(seq, 7);
        assert_eq!(set.slice_delta, Some(1));
        assert_eq!(set.zoom, Some(crate::view::Zoom::Fit));
        assert_eq!(set.red_free, Some(true));
    }

    #[test]
    fn numeric_zoom_parses() {
        let message =
            ClientMessage::parse(br#"{"v":1,"type":"view","seq":1,"set":{"zoom":2.5}}"#).unwrap();
        let ClientMessage::View { set, .. } = message else {
            panic!("not a view message")
        };
        assert_eq!(set.zoom, Some(crate::view::Zoom::Scale(2.5)));
    }

    #[test]
    fn refusals_name_the_problem_and_keep_the_seq() {
        let cases: [(&[u8], ErrorCode); 7] = [
            (b"{not json", ErrorCode::BadJson),
            (br#"{"v":1,"seq":3}"#, ErrorCode::BadMessage),
            (
                br#"{"v":1,"type":"launch","seq":3}"#,
                ErrorCode::UnknownType,
            ),
            (br#"{"v":2,"type":"ping","seq":3}"#, ErrorCode::BadVersion),
            (
                br#"{"v":1,"type":"view","seq":3,"set":{"bogus":1}}"#,
                ErrorCode::BadMessage,
            ),
            (
                br#"{"v":1,"type":"view","seq":3,"set":{"zoom":"huge"}}"#,
                ErrorCode::BadMessage,
            ),
            (
                br#"{"v":1,"type":"pointer","seq":3,"action":"explode","x":1,"y":1}"#,
                ErrorCode::BadMessage,
            ),
        ];
        for (input, code) in cases {
            let err = ClientMessage::parse(input).unwrap_err();
            assert_eq!(err.code, code, "{}", String::from_utf8_lossy(input));
            if code != ErrorCode::BadJson {
                assert_eq!(err.seq, Some(3));
            }
        }
    }

    #[test]
    fn cine_parses_with_its_default_pace_and_refuses_other_steps_and_paces() {
        let message = ClientMessage::parse(br#"{"v":1,"type":"cine","seq":4,"step":-1}"#).unwrap();
        assert_eq!(
            message,
            ClientMessage::Cine {
                v: 1,
                seq: 4,
                step: -1,
                fps: None
            }
        );
        let stop = ClientMessage::parse(br#"{"v":1,"type":"cine","seq":5,"step":0,"fps":60}"#);
        assert!(stop.is_ok());
        for bad in [
            &br#"{"v":1,"type":"cine","seq":6,"step":2}"#[..],
            br#"{"v":1,"type":"cine","seq":6,"step":1,"fps":4}"#,
            br#"{"v":1,"type":"cine","seq":6,"step":1,"fps":61}"#,
        ] {
            let err = ClientMessage::parse(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::OutOfRange, "{err}");
            assert_eq!(err.seq, Some(6));
            assert!(err.message.contains("cine"), "{err}");
        }
        let unknown =
            ClientMessage::parse(br#"{"v":1,"type":"cine","seq":7,"step":1,"loop":true}"#);
        assert_eq!(unknown.unwrap_err().code, ErrorCode::BadMessage);
    }

    #[test]
    fn oversized_is_refused_before_parsing() {
        let big = vec![b' '; MAX_CLIENT_MESSAGE + 1];
        assert_eq!(
            ClientMessage::parse(&big).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }

    #[test]
    fn chunk_header_round_trips() {
        let header = ChunkHeader {
            frame: 0x0102_0304_0506,
            index: 9,
        };
        assert_eq!(ChunkHeader::decode(&header.encode()), Some(header));
        assert_eq!(ChunkHeader::decode(b"XXXX0000000000000000"), None);
        assert_eq!(ChunkHeader::decode(b"RRLF"), None);
    }

    #[test]
    fn server_messages_are_tagged() {
        let json = ServerMessage::Pong { v: 1, seq: 4 }.to_json();
        assert_eq!(json, r#"{"type":"pong","v":1,"seq":4}"#);
    }
}
