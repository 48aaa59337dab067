//! The tamper-evident audit chain (pure): canonical event bytes, hash chaining, verification
//! and signed checkpoints, plus anomaly flags computed over stored events.
//!
//! The audit log is an append-only table. Every row carries the hash of the row before it, so
//! editing, deleting, inserting or reordering rows breaks the chain at a precise sequence
//! number. Truncating the tail (or rewriting the whole history consistently) cannot be seen
//! from the rows alone; that is what signed [`Checkpoint`]s, kept outside the database, are for.
//!
//! Nothing here reads a clock: the caller gives every event its time (`at`).
//!
//! # Event hash (format version 1)
//!
//! The `hash` of a row is the lowercase hex of `SHA-256(P)`, where `P` is the concatenation of:
//!
//! | part        | bytes                                                                  |
//! |-------------|------------------------------------------------------------------------|
//! | context     | 18 bytes: the ASCII `readroom audit v1` and one `0x00` byte            |
//! | `prev_hash` | 32 bytes: the row's `prev_hash` hex decoded (64 lowercase hex digits)  |
//! | `seq`       | 8 bytes: `seq` as a big-endian two's-complement 64-bit integer         |
//! | `at`        | `str(at)`                                                              |
//! | `actor`     | `opt(actor)`                                                           |
//! | `action`    | `str(action)`                                                          |
//! | `target`    | `opt(target)`                                                          |
//! | `outcome`   | `str(outcome)`, one of `success`, `denied`, `failure`                  |
//! | `client`    | `opt(client)`                                                          |
//! | `details`   | `str(details)`, the stored canonical JSON text                         |
//!
//! with `str(s)` = the UTF-8 byte length of `s` as a big-endian `u32`, then the bytes of `s`;
//! `opt(None)` = the single byte `0x00`; `opt(Some(s))` = the byte `0x01`, then `str(s)`.
//! The first row has `seq` 1 and `prev_hash` [`GENESIS`] (64 zeros); row `n + 1` has the
//! `hash` of row `n` as its `prev_hash`.
//!
//! `details` is always a JSON object written by [`canonical_json`]: object keys sorted by their
//! UTF-8 bytes at every depth, no whitespace, numbers as serde_json prints them (integers in
//! decimal, floats in shortest round-trip form), strings with only `"`, `\` and control
//! characters escaped (`\b \t \n \f \r`, other controls as `\u00xx` with lowercase hex).
//!
//! # Checkpoint signature (format version 1)
//!
//! A [`Checkpoint`] is an Ed25519 signature (RFC 8032, pure Ed25519, verified strictly) over the concatenation of:
//! the 29 bytes of ASCII `readroom audit checkpoint v1` and one `0x00`; `seq` as a
//! big-endian `i64`; the 32 bytes of `hash` hex decoded; `str(at)`; `str(key_id)`.
//! The signature is stored base64url without padding. `key_id` is the first 16 hex digits of
//! the SHA-256 of the 32-byte public key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event: 64 zero hex digits.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Largest canonical `details` text [`seal`] accepts, in bytes.
pub const MAX_DETAILS_BYTES: usize = 16 * 1024;
/// Largest `actor`, `target` or `client` [`seal`] accepts, in bytes.
pub const MAX_FIELD_BYTES: usize = 1024;
/// Hashed bytes start with this label (event format version 1).
const EVENT_CONTEXT: &[u8] = b"readroom audit v1\0";
/// Signed checkpoint bytes start with this label (checkpoint format version 1).
const CHECKPOINT_CONTEXT: &[u8] = b"readroom audit checkpoint v1\0";

/// Why an event could not be sealed or hashed, or a checkpoint not signed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A hash is not 64 lowercase hex digits.
    #[error("{field} is not 64 lowercase hex digits")]
    MalformedHash {
        /// Which hash.
        field: &'static str,
    },
    /// The chain head cannot be followed (negative or largest sequence number).
    #[error("no event can follow sequence number {0}")]
    SequenceExhausted(i64),
    /// `at` is not in the fixed timestamp form.
    #[error("the time is not an RFC 3339 UTC timestamp of the form YYYY-MM-DDTHH:MM:SS[.ffffff]Z")]
    InvalidTime,
    /// `details` is not a JSON object.
    #[error("details must be a JSON object, not {0}")]
    DetailsNotObject(&'static str),
    /// `details` is too large once canonical.
    #[error("details are {size} bytes of canonical JSON, more than the {max} allowed")]
    DetailsTooLarge {
        /// Canonical size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A text field is too long.
    #[error("{field} is {size} bytes, more than the {max} allowed")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The checkpoint names another signing key than the trusted one.
    #[error("the checkpoint names key {found:?}, not the trusted key {expected:?}")]
    WrongKey {
        /// The trusted key's id.
        expected: String,
        /// The key id the checkpoint names (at most 32 characters of it).
        found: String,
    },
    /// The checkpoint signature is not 64 bytes of base64url.
    #[error("the checkpoint signature is not 64 bytes of base64url")]
    MalformedSignature,
    /// The checkpoint signature does not verify with the trusted key.
    #[error("the checkpoint signature does not verify")]
    BadSignature,
    /// The public key is not an Ed25519 public key (or not 32 bytes of hex).
    #[error("not an Ed25519 public key")]
    MalformedKey,
}

/// A code that is not in a closed catalogue ([`Action`] or [`Outcome`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} code {code:?}")]
pub struct UnknownCode {
    /// Which catalogue (`"action"` or `"outcome"`).
    pub what: &'static str,
    /// The code given (at most 64 characters of it).
    pub code: String,
}

impl UnknownCode {
    fn new(what: &'static str, code: &str) -> UnknownCode {
        UnknownCode {
            what,
            code: code.chars().take(64).collect(),
        }
    }
}

/// How an audited request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The action was carried out.
    Success,
    /// Policy refused the action.
    Denied,
    /// The action was attempted and failed (bad input, error).
    Failure,
}

impl Outcome {
    /// The wire and column string: `success`, `denied` or `failure`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = UnknownCode;

    fn from_str(code: &str) -> Result<Outcome, UnknownCode> {
        match code {
            "success" => Ok(Outcome::Success),
            "denied" => Ok(Outcome::Denied),
            "failure" => Ok(Outcome::Failure),
            _ => Err(UnknownCode::new("outcome", code)),
        }
    }
}

macro_rules! actions {
    ($( $(#[doc = $doc:literal])* $variant:ident = $code:literal, )*) => {
        /// The closed catalogue of audited actions. Each code is stable: it is stored in the
        /// `action` column and hashed into the chain, so a code is never renamed or reused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Action {
            /// Every action, in catalogue order.
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            /// The stable dotted code.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $code,)*
                }
            }
        }

        impl FromStr for Action {
            type Err = UnknownCode;

            fn from_str(code: &str) -> Result<Action, UnknownCode> {
                match code {
                    $($code => Ok(Action::$variant),)*
                    _ => Err(UnknownCode::new("action", code)),
                }
            }
        }
    };
}

actions! {
    /// A user signed in.
    AuthLogin = "auth.login",
    /// A sign-in attempt failed (wrong password or code, unknown or disabled user).
    AuthLoginFailed = "auth.login_failed",
    /// Refused sign-ins from one address (or, past the per-window budget, from many), counted
    /// in one event per window instead of recorded one by one.
    AuthRefusalsCounted = "auth.refusals_counted",
    /// A user signed out.
    AuthLogout = "auth.logout",
    /// A one-time sign-in link was issued for a user (by an admin, the CLI or the demo).
    AuthLinkIssued = "auth.link_issued",
    /// A user changed their password.
    AuthPasswordChanged = "auth.password_changed",
    /// A user enabled TOTP second-factor sign-in.
    AuthTotpEnabled = "auth.totp_enabled",
    /// A user turned TOTP second-factor sign-in off.
    AuthTotpDisabled = "auth.totp_disabled",
    /// An admin unlocked an account locked by failed sign-ins.
    AuthUnlocked = "auth.unlocked",
    /// A case was opened for viewing.
    CaseOpened = "case.opened",
    /// An attempt to open a case outside the user's assignment was refused.
    CaseDenied = "case.denied",
    /// An image stream to a viewer started.
    StreamStarted = "stream.started",
    /// An image stream ended.
    StreamEnded = "stream.ended",
    /// Lossless (full-quality) pixels were shown.
    StreamLosslessShown = "stream.lossless_shown",
    /// A running stream switched to another case (reported by the worker once the case
    /// was open; before December 2026 recorded when the ticket was issued).
    StreamSwitchedCase = "stream.switched_case",
    /// A worker sent a lossless frame (its hash, bytes and the exact render state), whatever
    /// the browser said about it.
    StreamLosslessSent = "stream.lossless_sent",
    /// A worker withheld lossless frames of a case from a session past its lossless budget
    /// (`reason`: `rate` or `case_budget`); the stream went on lossy. Flagged as
    /// `bulk_extraction`.
    StreamLosslessWithheld = "stream.lossless_withheld",
    /// Images of a prior visit were shown beside a case (layout `prior`). Recorded against the
    /// prior visit's case, so "who saw case X" includes those who saw it as a prior visit;
    /// `via_case`, `stream_id` and the prior `views` in details.
    StreamPriorViewed = "stream.prior_viewed",
    /// An open stream was ended because the access that admitted it ended (why in details).
    StreamRevoked = "stream.revoked",
    /// A ticket was issued to move an open viewer session to a case, or to get that case
    /// ready beside it (`purpose`: `open_case` or `prefetch`).
    StreamTicketIssued = "stream.ticket_issued",
    /// A worker process registered with the pool (its first heartbeat seen by this database).
    WorkerRegistered = "worker.registered",
    /// A worker stopped sending heartbeats; its open streams were closed in the record.
    WorkerLost = "worker.lost",
    /// A grade draft was saved.
    GradeDraftSaved = "grade.draft_saved",
    /// A grade was submitted.
    GradeSubmitted = "grade.submitted",
    /// A submitted grade was amended.
    GradeAmended = "grade.amended",
    /// An adjudication of disagreeing grades was submitted.
    AdjudicationSubmitted = "adjudication.submitted",
    /// A case was assigned to a grader.
    AssignmentCreated = "assignment.created",
    /// An assignment was removed.
    AssignmentRemoved = "assignment.removed",
    /// An assignment was moved to another grader.
    AssignmentReassigned = "assignment.reassigned",
    /// A batch of assignments was created.
    BatchCreated = "batch.created",
    /// A study was created.
    StudyCreated = "study.created",
    /// A study's grading form was changed.
    StudyFormChanged = "study.form_changed",
    /// An exam bundle passed the ingest gate.
    IngestAccepted = "ingest.accepted",
    /// An exam bundle was refused by the ingest gate.
    IngestRefused = "ingest.refused",
    /// A data export was downloaded.
    ExportDownloaded = "export.downloaded",
    /// The audit log was exported.
    AuditExported = "audit.exported",
    /// A user account was created.
    UserCreated = "user.created",
    /// A user account was disabled.
    UserDisabled = "user.disabled",
    /// A user account was enabled again.
    UserEnabled = "user.enabled",
    /// A role was granted to a user.
    RoleGranted = "role.granted",
    /// A role was revoked from a user.
    RoleRevoked = "role.revoked",
    /// A key (signing or encryption) was created.
    KeyCreated = "key.created",
    /// Any other request refused by route policy.
    AccessDenied = "access.denied",
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Action, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

/// What the application asks to append: an event without its sequence number and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    /// When it happened: RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`.
    pub at: String,
    /// Who did it (a user id), or `None` for the system or an anonymous client.
    pub actor: Option<String>,
    /// What was done.
    pub action: Action,
    /// What it was done to, e.g. `case:<uuid>`, `user:<uuid>`, `study:DEMO`.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The client's IP address.
    pub client: Option<String>,
    /// Further facts; must be a JSON object.
    pub details: Value,
}

impl EventDraft {
    /// A draft with no actor, target or client and empty details.
    pub fn new(at: impl Into<String>, action: Action, outcome: Outcome) -> EventDraft {
        EventDraft {
            at: at.into(),
            actor: None,
            action,
            target: None,
            outcome,
            client: None,
            details: Value::Object(serde_json::Map::new()),
        }
    }

    /// Sets the actor.
    pub fn actor(mut self, actor: impl Into<String>) -> EventDraft {
        self.actor = Some(actor.into());
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: impl Into<String>) -> EventDraft {
        self.target = Some(target.into());
        self
    }

    /// Sets the client address.
    pub fn client(mut self, client: impl Into<String>) -> EventDraft {
        self.client = Some(client.into());
        self
    }

    /// Sets the details (a JSON object).
    pub fn details(mut self, details: Value) -> EventDraft {
        self.details = details;
        self
    }
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the chain, 1-based and consecutive.
    pub seq: i64,
    /// When it happened (RFC 3339 UTC).
    pub at: String,
    /// Who did it, if anyone.
    pub actor: Option<String>,
    /// The action code (see [`Action`]); not checked against the catalogue when verifying.
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The client's IP address.
    pub client: Option<String>,
    /// Canonical JSON text of the details object.
    pub details: String,
    /// Hash of the previous row ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// Hash of this row (see the module documentation).
    pub hash: String,
}

impl AuditRecord {
    /// The chain head this row makes: its seq and hash.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// The last event of a chain: what the next event links to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    /// Sequence number of the last event (0 for an empty chain).
    pub seq: i64,
    /// Hash of the last event ([`GENESIS`] for an empty chain).
    pub hash: String,
}

impl ChainHead {
    /// The head of an empty chain: seq 0, hash [`GENESIS`].
    pub fn genesis() -> ChainHead {
        ChainHead {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// Deterministic JSON text of `value`: object keys sorted by their UTF-8 bytes at every
/// depth, no whitespace, serde_json's number formatting, minimal string escaping.
/// Iterative, so deep nesting cannot overflow the stack.
pub fn canonical_json(value: &Value) -> String {
    enum Task<'a> {
        Value(&'a Value),
        Key(&'a str),
        Text(&'static str),
    }
    let mut out = String::new();
    let mut stack = vec![Task::Value(value)];
    while let Some(task) = stack.pop() {
        match task {
            Task::Text(text) => out.push_str(text),
            Task::Key(key) => push_json_string(&mut out, key),
            Task::Value(Value::Null) => out.push_str("null"),
            Task::Value(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
            Task::Value(Value::Number(n)) => out.push_str(&n.to_string()),
            Task::Value(Value::String(s)) => push_json_string(&mut out, s),
            Task::Value(Value::Array(items)) => {
                out.push('[');
                stack.push(Task::Text("]"));
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push(Task::Value(item));
                    if i > 0 {
                        stack.push(Task::Text(","));
                    }
                }
            }
            Task::Value(Value::Object(map)) => {
                out.push('{');
                stack.push(Task::Text("}"));
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                for (i, (key, item)) in entries.into_iter().enumerate().rev() {
                    stack.push(Task::Value(item));
                    stack.push(Task::Text(":"));
                    stack.push(Task::Key(key));
                    if i > 0 {
                        stack.push(Task::Text(","));
                    }
                }
            }
        }
    }
    out
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                let code = u32::from(c);
                out.push_str("\\u00");
                out.push(hex_digit(code >> 4));
                out.push(hex_digit(code & 0xf));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn hex_digit(n: u32) -> char {
    char::from_digit(n, 16).unwrap_or('0')
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The canonical text of event details, refusing anything but a JSON object of at most
/// [`MAX_DETAILS_BYTES`] canonical bytes.
pub fn canonical_details(details: &Value) -> Result<String, ChainError> {
    if !details.is_object() {
        return Err(ChainError::DetailsNotObject(json_kind(details)));
    }
    let text = canonical_json(details);
    if text.len() > MAX_DETAILS_BYTES {
        return Err(ChainError::DetailsTooLarge {
            size: text.len(),
            max: MAX_DETAILS_BYTES,
        });
    }
    Ok(text)
}

/// Whether stored details text is exactly the canonical JSON of an object.
pub fn is_canonical_details(text: &str) -> bool {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => value.is_object() && canonical_json(&value) == text,
        Err(_) => false,
    }
}

fn decode_hash(hex_text: &str, field: &'static str) -> Result<[u8; 32], ChainError> {
    let lowercase_hex = |b: u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    if hex_text.len() != 64 || !hex_text.bytes().all(lowercase_hex) {
        return Err(ChainError::MalformedHash { field });
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut bytes).map_err(|_| ChainError::MalformedHash { field })?;
    Ok(bytes)
}

fn put_str(bytes: &mut Vec<u8>, field: &'static str, s: &str) -> Result<(), ChainError> {
    let len = u32::try_from(s.len()).map_err(|_| ChainError::FieldTooLong {
        field,
        size: s.len(),
        max: u32::MAX as usize,
    })?;
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_opt(bytes: &mut Vec<u8>, field: &'static str, s: Option<&str>) -> Result<(), ChainError> {
    match s {
        None => {
            bytes.push(0);
            Ok(())
        }
        Some(s) => {
            bytes.push(1);
            put_str(bytes, field, s)
        }
    }
}

/// The exact bytes hashed for `record` (its `hash` field is not part of them); see the
/// module documentation for the layout.
pub fn event_preimage(record: &AuditRecord) -> Result<Vec<u8>, ChainError> {
    let prev = decode_hash(&record.prev_hash, "prev_hash")?;
    let mut bytes = Vec::with_capacity(128 + record.details.len());
    bytes.extend_from_slice(EVENT_CONTEXT);
    bytes.extend_from_slice(&prev);
    bytes.extend_from_slice(&record.seq.to_be_bytes());
    put_str(&mut bytes, "at", &record.at)?;
    put_opt(&mut bytes, "actor", record.actor.as_deref())?;
    put_str(&mut bytes, "action", &record.action)?;
    put_opt(&mut bytes, "target", record.target.as_deref())?;
    put_str(&mut bytes, "outcome", record.outcome.as_str())?;
    put_opt(&mut bytes, "client", record.client.as_deref())?;
    put_str(&mut bytes, "details", &record.details)?;
    Ok(bytes)
}

/// The hash `record` should carry (lowercase hex), computed from every field but `hash`.
pub fn event_hash(record: &AuditRecord) -> Result<String, ChainError> {
    Ok(hex::encode(Sha256::digest(event_preimage(record)?)))
}

fn check_field(field: &'static str, value: Option<&str>) -> Result<(), ChainError> {
    match value {
        Some(s) if s.len() > MAX_FIELD_BYTES => Err(ChainError::FieldTooLong {
            field,
            size: s.len(),
            max: MAX_FIELD_BYTES,
        }),
        _ => Ok(()),
    }
}

fn next_seq(seq: i64) -> Option<i64> {
    if seq < 0 { None } else { seq.checked_add(1) }
}

/// Seals `draft` into the row that follows `prev`: seq `prev.seq + 1`, `prev_hash` `prev.hash`,
/// canonical details and its hash. Refuses a malformed head or time, non-object or oversized
/// details, and over-long fields.
pub fn seal(prev: &ChainHead, draft: EventDraft) -> Result<AuditRecord, ChainError> {
    decode_hash(&prev.hash, "prev_hash")?;
    let seq = next_seq(prev.seq).ok_or(ChainError::SequenceExhausted(prev.seq))?;
    if parse_timestamp(&draft.at).is_none() {
        return Err(ChainError::InvalidTime);
    }
    check_field("actor", draft.actor.as_deref())?;
    check_field("target", draft.target.as_deref())?;
    check_field("client", draft.client.as_deref())?;
    let details = canonical_details(&draft.details)?;
    let mut record = AuditRecord {
        seq,
        at: draft.at,
        actor: draft.actor,
        action: draft.action.as_str().to_owned(),
        target: draft.target,
        outcome: draft.outcome,
        client: draft.client,
        details,
        prev_hash: prev.hash.clone(),
        hash: String::new(),
    };
    record.hash = event_hash(&record)?;
    Ok(record)
}

/// Where and how a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("broken link at event {seq}: {kind}")]
pub struct Break {
    /// The sequence number the break is reported at.
    pub seq: i64,
    /// What is wrong.
    pub kind: BreakKind,
}

/// What is wrong at a [`Break`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakKind {
    /// The row's seq is not the previous seq + 1 (reported at the row's own seq).
    #[error(
        "expected event {expected} here, found event {found} (a row was deleted or rows were reordered)"
    )]
    SequenceGap {
        /// The seq that should have come.
        expected: i64,
        /// The seq that came.
        found: i64,
    },
    /// The row's `prev_hash` is not the previous row's hash.
    #[error(
        "its prev_hash is not the hash of the event before it (a row was replaced, inserted or reordered)"
    )]
    PrevMismatch,
    /// The row's stored hash is not the hash of its contents.
    #[error("the stored hash does not match its contents (the row was edited)")]
    HashMismatch,
    /// The row's details are not canonical JSON of an object.
    #[error("its details are not canonical JSON (the row was written outside the application)")]
    NotCanonical,
    /// A checkpoint for this seq names another hash than the chain has.
    #[error(
        "the chain's hash differs from the signed checkpoint (the history up to here was rewritten)"
    )]
    CheckpointMismatch,
    /// A checkpoint lies beyond the last row (reported at last_seq + 1).
    #[error(
        "the chain ends at event {last_seq} but a checkpoint covers event {checkpoint_seq} (the tail was deleted)"
    )]
    Truncated {
        /// The checkpoint's seq.
        checkpoint_seq: i64,
        /// The last seq verified.
        last_seq: i64,
    },
    /// A checkpoint given for this seq does not verify with the trusted key.
    #[error("the checkpoint for this event does not verify: {0}")]
    BadCheckpointSignature(ChainError),
    /// The row cannot be hashed at all (e.g. its prev_hash is not hex).
    #[error("the row cannot be hashed: {0}")]
    Unreadable(ChainError),
}

/// The outcome of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Rows verified intact (before the first break).
    pub count: u64,
    /// The last intact head.
    pub head: ChainHead,
    /// The first break found, if any.
    pub first_break: Option<Break>,
    /// Checkpoints that matched the chain.
    pub checkpoints_checked: usize,
    /// The matched checkpoint with the highest seq.
    pub last_checkpoint: Option<Checkpoint>,
}

impl Report {
    /// Whether no break was found.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Streaming chain verification: feed rows in seq order with [`Verifier::push`], then call
/// [`Verifier::finish`]. Keeps only the head and the pending checkpoints, never the rows.
///
/// Once a break is found, every later push returns that same first break and changes nothing.
#[derive(Debug, Clone)]
pub struct Verifier {
    head: ChainHead,
    count: u64,
    first_break: Option<Break>,
    checkpoints: Vec<Checkpoint>,
    next_checkpoint: usize,
    key: Option<CheckpointVerifier>,
    checkpoints_checked: usize,
    last_checkpoint: Option<Checkpoint>,
}

impl Default for Verifier {
    fn default() -> Verifier {
        Verifier::new()
    }
}

impl Verifier {
    /// Verifies from the start of the chain (genesis).
    pub fn new() -> Verifier {
        Verifier::from_checkpoint(&ChainHead::genesis())
    }

    /// Verifies the rows after a trusted head (the first row pushed must have seq `head.seq + 1`).
    pub fn from_checkpoint(head: &ChainHead) -> Verifier {
        Verifier {
            head: head.clone(),
            count: 0,
            first_break: None,
            checkpoints: Vec::new(),
            next_checkpoint: 0,
            key: None,
            checkpoints_checked: 0,
            last_checkpoint: None,
        }
    }

    /// Checkpoints to check as their seq passes (call before the first push). With `key`, each
    /// must also verify ([`BreakKind::BadCheckpointSignature`] otherwise); without, only its
    /// seq and hash are compared. Checkpoints before the starting head are ignored; one at the
    /// starting head is compared with it.
    pub fn with_checkpoints(
        mut self,
        checkpoints: &[Checkpoint],
        key: Option<&CheckpointVerifier>,
    ) -> Verifier {
        let mut sorted = checkpoints.to_vec();
        sorted.sort_by_key(|checkpoint| checkpoint.seq);
        self.checkpoints = sorted;
        self.next_checkpoint = 0;
        self.key = key.cloned();
        if self.first_break.is_none()
            && let Err(found) = self.settle_checkpoints()
        {
            self.first_break = Some(found);
        }
        self
    }

    /// Checks the next row: seq, prev_hash, hash, canonical details, then any checkpoint at
    /// its seq.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), Break> {
        if let Some(found) = &self.first_break {
            return Err(found.clone());
        }
        let result = self.check_record(record).and_then(|()| {
            self.head = record.head();
            self.count += 1;
            self.settle_checkpoints()
        });
        if let Err(found) = &result {
            self.first_break = Some(found.clone());
        }
        result
    }

    /// The last intact head.
    pub fn head(&self) -> ChainHead {
        self.head.clone()
    }

    /// Rows verified intact so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The first break found so far.
    pub fn first_break(&self) -> Option<&Break> {
        self.first_break.as_ref()
    }

    /// Ends verification: any checkpoint beyond the last row means the tail was truncated.
    pub fn finish(mut self) -> Report {
        if self.first_break.is_none()
            && let Some(checkpoint) = self.checkpoints.get(self.next_checkpoint)
        {
            self.first_break = Some(self.past_the_end(checkpoint));
        }
        Report {
            count: self.count,
            head: self.head,
            first_break: self.first_break,
            checkpoints_checked: self.checkpoints_checked,
            last_checkpoint: self.last_checkpoint,
        }
    }

    fn check_record(&self, record: &AuditRecord) -> Result<(), Break> {
        let at = |kind| Break {
            seq: record.seq,
            kind,
        };
        let expected = self.head.seq.checked_add(1);
        if expected != Some(record.seq) {
            return Err(at(BreakKind::SequenceGap {
                expected: expected.unwrap_or(i64::MAX),
                found: record.seq,
            }));
        }
        if record.prev_hash != self.head.hash {
            return Err(at(BreakKind::PrevMismatch));
        }
        match event_hash(record) {
            Err(error) => return Err(at(BreakKind::Unreadable(error))),
            Ok(hash) if hash != record.hash => return Err(at(BreakKind::HashMismatch)),
            Ok(_) => {}
        }
        if !is_canonical_details(&record.details) {
            return Err(at(BreakKind::NotCanonical));
        }
        Ok(())
    }

    /// Checks every pending checkpoint at or below the head's seq.
    fn settle_checkpoints(&mut self) -> Result<(), Break> {
        while let Some(checkpoint) = self.checkpoints.get(self.next_checkpoint) {
            if checkpoint.seq > self.head.seq {
                break;
            }
            self.next_checkpoint += 1;
            if checkpoint.seq < self.head.seq {
                // Before the verified range: no hash to compare it with.
                continue;
            }
            let checkpoint = checkpoint.clone();
            let at = |kind| Break {
                seq: checkpoint.seq,
                kind,
            };
            if let Some(key) = &self.key {
                key.verify(&checkpoint)
                    .map_err(|error| at(BreakKind::BadCheckpointSignature(error)))?;
            }
            if checkpoint.hash != self.head.hash {
                return Err(at(BreakKind::CheckpointMismatch));
            }
            self.checkpoints_checked += 1;
            self.last_checkpoint = Some(checkpoint);
        }
        Ok(())
    }

    fn past_the_end(&self, checkpoint: &Checkpoint) -> Break {
        if let Some(key) = &self.key
            && let Err(error) = key.verify(checkpoint)
        {
            return Break {
                seq: checkpoint.seq,
                kind: BreakKind::BadCheckpointSignature(error),
            };
        }
        Break {
            seq: self.head.seq.saturating_add(1),
            kind: BreakKind::Truncated {
                checkpoint_seq: checkpoint.seq,
                last_seq: self.head.seq,
            },
        }
    }
}

/// Verifies `records` (in seq order, from genesis) against `checkpoints` in one call.
pub fn verify_records(
    records: &[AuditRecord],
    checkpoints: &[Checkpoint],
    key: Option<&CheckpointVerifier>,
) -> Report {
    let mut verifier = Verifier::new().with_checkpoints(checkpoints, key);
    for record in records {
        if verifier.push(record).is_err() {
            break;
        }
    }
    verifier.finish()
}

/// A signed statement "the chain's event `seq` has hash `hash`", stored outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The event's sequence number.
    pub seq: i64,
    /// The event's hash (lowercase hex).
    pub hash: String,
    /// When the checkpoint was signed (RFC 3339 UTC).
    pub at: String,
    /// Id of the signing key (first 16 hex digits of SHA-256 of the public key).
    pub key_id: String,
    /// Ed25519 signature, base64url without padding.
    pub signature: String,
}

impl Checkpoint {
    /// The chain head this checkpoint vouches for (a start for [`Verifier::from_checkpoint`]).
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

fn checkpoint_message(seq: i64, hash: &str, at: &str, key_id: &str) -> Result<Vec<u8>, ChainError> {
    let hash = decode_hash(hash, "hash")?;
    let mut bytes = Vec::with_capacity(128);
    bytes.extend_from_slice(CHECKPOINT_CONTEXT);
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(&hash);
    put_str(&mut bytes, "at", at)?;
    put_str(&mut bytes, "key_id", key_id)?;
    Ok(bytes)
}

fn key_id_of(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

/// Signs checkpoints (server side).
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: String,
}

impl CheckpointSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> CheckpointSigner {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id_of(&key.verifying_key());
        CheckpointSigner { key, key_id }
    }

    /// The key id checkpoints name.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The public key as lowercase hex.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key())
    }

    /// The verifier for this signer's checkpoints.
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier {
            key: self.key.verifying_key(),
            key_id: self.key_id.clone(),
        }
    }

    /// Signs `head` at time `at`. Refuses a malformed head hash or time.
    pub fn sign(&self, head: &ChainHead, at: &str) -> Result<Checkpoint, ChainError> {
        if parse_timestamp(at).is_none() {
            return Err(ChainError::InvalidTime);
        }
        let message = checkpoint_message(head.seq, &head.hash, at, &self.key_id)?;
        let signature = self.key.sign(&message);
        Ok(Checkpoint {
            seq: head.seq,
            hash: head.hash.clone(),
            at: at.to_owned(),
            key_id: self.key_id.clone(),
            signature: URL_SAFE_NO_PAD.encode(signature.to_bytes()),
        })
    }
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointSigner({})", self.key_id)
    }
}

/// Verifies checkpoints with a trusted public key.
#[derive(Debug, Clone)]
pub struct CheckpointVerifier {
    key: VerifyingKey,
    key_id: String,
}

impl CheckpointVerifier {
    /// A verifier from a 32-byte Ed25519 public key.
    pub fn from_public_key(bytes: &[u8; 32]) -> Result<CheckpointVerifier, ChainError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| ChainError::MalformedKey)?;
        let key_id = key_id_of(&key);
        Ok(CheckpointVerifier { key, key_id })
    }

    /// A verifier from a public key given as 64 hex digits.
    pub fn from_public_key_hex(text: &str) -> Result<CheckpointVerifier, ChainError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| ChainError::MalformedKey)?;
        CheckpointVerifier::from_public_key(&bytes)
    }

    /// The trusted key's id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks that `checkpoint` names this key and that its signature covers all its fields.
    pub fn verify(&self, checkpoint: &Checkpoint) -> Result<(), ChainError> {
        if checkpoint.key_id != self.key_id {
            return Err(ChainError::WrongKey {
                expected: self.key_id.clone(),
                found: checkpoint.key_id.chars().take(32).collect(),
            });
        }
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(&checkpoint.signature)
            .map_err(|_| ChainError::MalformedSignature)?
            .try_into()
            .map_err(|_| ChainError::MalformedSignature)?;
        let message = checkpoint_message(
            checkpoint.seq,
            &checkpoint.hash,
            &checkpoint.at,
            &checkpoint.key_id,
        )?;
        self.key
            .verify_strict(&message, &Signature::from_bytes(&signature))
            .map_err(|_| ChainError::BadSignature)
    }
}

/// Parses the fixed timestamp form `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` (RFC 3339, UTC) into unix
/// microseconds (digits past the sixth are truncated). `None` for anything else, including
/// impossible dates and leap seconds.
pub fn parse_timestamp(at: &str) -> Option<i64> {
    let bytes = at.as_bytes();
    let main = bytes.get(..19)?;
    let rest = bytes.get(19..)?;
    let (fraction, zone) = rest.split_at(rest.len().checked_sub(1)?);
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if zone != b"Z" || !separators.iter().all(|&(i, c)| main.get(i) == Some(&c)) {
        return None;
    }
    let field = |from: usize, to: usize| main.get(from..to).and_then(digits);
    let (year, month, day) = (field(0, 4)?, field(5, 7)?, field(8, 10)?);
    let (hour, minute, second) = (field(11, 13)?, field(14, 16)?, field(17, 19)?);
    let valid_date = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    if !valid_date || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000_000 + fraction_micros(fraction)?)
}

fn digits(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 9 {
        return None;
    }
    text.iter().try_fold(0i64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
    })
}

fn fraction_micros(fraction: &[u8]) -> Option<i64> {
    match fraction.split_first() {
        None => Some(0),
        Some((b'.', text)) => {
            digits(text)?;
            Some((0..6).fold(0i64, |acc, i| {
                acc * 10 + text.get(i).map_or(0, |&d| i64::from(d - b'0'))
            }))
        }
        Some(_) => None,
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Thresholds for [`anomalies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnomalyRules {
    /// How many `case.opened` by one actor within the window are flagged (default 20).
    pub rapid_opens: usize,
    /// The window, in seconds (default 300): first and last open at most this far apart.
    pub rapid_window_secs: i64,
    /// Counted sign-in refusals (`auth.refusals_counted`) of one address that make a storm
    /// (default 50).
    pub storm_refusals: u64,
    /// Counted-refusal events of one address at most this far apart (seconds) belong to the same
    /// storm (default 600).
    pub storm_gap_secs: i64,
}

impl Default for AnomalyRules {
    fn default() -> AnomalyRules {
        AnomalyRules {
            rapid_opens: 20,
            rapid_window_secs: 300,
            storm_refusals: 50,
            storm_gap_secs: 600,
        }
    }
}

/// Something in the audit log worth an auditor's look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// Many cases opened by one actor in a short time (one flag per burst; overlapping windows
    /// merge).
    RapidCaseOpens {
        /// The actor.
        actor: String,
        /// Opens in the burst.
        count: usize,
        /// Lowest seq in the burst.
        from_seq: i64,
        /// Highest seq in the burst.
        to_seq: i64,
    },
    /// An attempt to open a case outside the actor's assignment (`case.denied`).
    OutsideAssignment {
        /// The actor.
        actor: Option<String>,
        /// The event.
        seq: i64,
        /// The case.
        target: Option<String>,
    },
    /// A successful sign-in from an address the actor had not signed in from before (in the
    /// records given); an actor's first sign-in is not flagged.
    NewAddressSignIn {
        /// The actor.
        actor: String,
        /// The event.
        seq: i64,
        /// The new address.
        client: String,
    },
    /// A grade or adjudication submitted with values for an eye, or fundus/OCT exams of a graded
    /// eye, that the streaming worker never showed the actor on that case: the event's
    /// `viewing` details (graded eyes, exams, views of sessions ended before it) plus the views
    /// of the actor's sessions on the case that were open when it was submitted (their
    /// `stream.ended` comes later).
    GradedWithoutViewing {
        /// The actor.
        actor: Option<String>,
        /// The `grade.submitted` / `adjudication.submitted` event.
        seq: i64,
        /// The case.
        target: Option<String>,
        /// Graded eyes of which nothing was shown.
        unviewed_eyes: Vec<String>,
        /// Fundus/OCT exams of graded eyes never shown.
        unviewed_exams: Vec<String>,
    },
    /// A session asked for more full-resolution lossless pixels than a grader looks at: the
    /// worker withheld lossless frames past the session's budget (`stream.lossless_withheld`).
    BulkExtraction {
        /// The actor.
        actor: Option<String>,
        /// The `stream.lossless_withheld` event.
        seq: i64,
        /// The case.
        target: Option<String>,
        /// Which bound was reached: `rate` or `case_budget`.
        reason: String,
    },
    /// A storm of refused sign-ins from one address (`client`; `None` for the tally of many
    /// addresses): its `auth.refusals_counted` events, one per window, merged into one flag.
    RefusalStorm {
        /// The address (IPv6: the /64 network), or none for many addresses.
        client: Option<String>,
        /// Refusals counted in the storm.
        count: u64,
        /// Lowest seq in the storm.
        from_seq: i64,
        /// Highest seq in the storm.
        to_seq: i64,
    },
}

impl Anomaly {
    /// The event the anomaly starts at.
    pub fn seq(&self) -> i64 {
        match self {
            Anomaly::RapidCaseOpens { from_seq, .. } | Anomaly::RefusalStorm { from_seq, .. } => {
                *from_seq
            }
            Anomaly::OutsideAssignment { seq, .. }
            | Anomaly::NewAddressSignIn { seq, .. }
            | Anomaly::GradedWithoutViewing { seq, .. }
            | Anomaly::BulkExtraction { seq, .. } => *seq,
        }
    }
}

/// Anomalies in `records` (given in seq order), ordered by the seq they start at.
/// Rows whose time does not parse are left out of the rapid-opens rule.
pub fn anomalies(records: &[AuditRecord], rules: &AnomalyRules) -> Vec<Anomaly> {
    let mut found = rapid_case_opens(records, rules);
    found.extend(outside_assignment(records));
    found.extend(new_address_sign_ins(records));
    found.extend(graded_without_viewing(records));
    found.extend(refusal_storms(records, rules));
    found.extend(bulk_extractions(records));
    found.sort_by_key(Anomaly::seq);
    found
}

fn rapid_case_opens(records: &[AuditRecord], rules: &AnomalyRules) -> Vec<Anomaly> {
    let mut opens: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for record in records {
        if record.action != Action::CaseOpened.as_str() {
            continue;
        }
        if let (Some(actor), Some(micros)) = (&record.actor, parse_timestamp(&record.at)) {
            opens.entry(actor).or_default().push((micros, record.seq));
        }
    }
    let window = rules.rapid_window_secs.saturating_mul(1_000_000);
    let mut found = Vec::new();
    for (actor, mut times) in opens {
        times.sort_unstable();
        for (from, to) in bursts(&times, rules.rapid_opens.max(1), window) {
            let burst = times.get(from..=to).unwrap_or_default();
            let seqs = burst.iter().map(|&(_, seq)| seq);
            found.push(Anomaly::RapidCaseOpens {
                actor: actor.to_owned(),
                count: burst.len(),
                from_seq: seqs.clone().min().unwrap_or_default(),
                to_seq: seqs.max().unwrap_or_default(),
            });
        }
    }
    found
}

/// Index ranges of `times` (sorted) where at least `threshold` fall within `window`;
/// overlapping ranges are merged.
fn bursts(times: &[(i64, i64)], threshold: usize, window: i64) -> Vec<(usize, usize)> {
    let mut found: Vec<(usize, usize)> = Vec::new();
    let mut from = 0;
    for (to, &(end_time, _)) in times.iter().enumerate() {
        while from < to
            && times
                .get(from)
                .is_some_and(|&(t, _)| end_time.saturating_sub(t) > window)
        {
            from += 1;
        }
        if to + 1 - from < threshold {
            continue;
        }
        match found.last_mut() {
            Some(last) if from <= last.1 => last.1 = to,
            _ => found.push((from, to)),
        }
    }
    found
}

fn outside_assignment(records: &[AuditRecord]) -> impl Iterator<Item = Anomaly> + '_ {
    records
        .iter()
        .filter(|record| record.action == Action::CaseDenied.as_str())
        .map(|record| Anomaly::OutsideAssignment {
            actor: record.actor.clone(),
            seq: record.seq,
            target: record.target.clone(),
        })
}

fn graded_without_viewing(records: &[AuditRecord]) -> Vec<Anomaly> {
    use crate::grading::Eye;
    use crate::grading::coverage::{ExamRef, coverage, viewed_exams};
    use serde_json::Value as Json;
    let strings = |value: &Json| -> Vec<String> {
        value
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    /// An ended stream session: its `stream.ended` seq, start time (µs) and views.
    struct Ended {
        seq: i64,
        started: Option<i64>,
        views: Vec<String>,
    }
    // Sessions by actor and case.
    let mut sessions: BTreeMap<(&str, &str), Vec<Ended>> = BTreeMap::new();
    for record in records {
        if record.action != Action::StreamEnded.as_str() {
            continue;
        }
        let (Some(actor), Some(target)) = (&record.actor, &record.target) else {
            continue;
        };
        let Ok(details) = serde_json::from_str::<Json>(&record.details) else {
            continue;
        };
        let duration_us = details["duration_ms"]
            .as_i64()
            .unwrap_or(0)
            .saturating_mul(1000);
        let started = parse_timestamp(&record.at).map(|end| end.saturating_sub(duration_us));
        sessions.entry((actor, target)).or_default().push(Ended {
            seq: record.seq,
            started,
            views: strings(&details["views"]),
        });
    }
    let mut found = Vec::new();
    for record in records {
        if record.action != Action::GradeSubmitted.as_str()
            && record.action != Action::AdjudicationSubmitted.as_str()
        {
            continue;
        }
        let Ok(details) = serde_json::from_str::<Json>(&record.details) else {
            continue;
        };
        let Some(viewing) = details.get("viewing") else {
            continue;
        };
        let exams: Vec<ExamRef> =
            serde_json::from_value(viewing["exams"].clone()).unwrap_or_default();
        let graded: BTreeSet<Eye> = strings(&viewing["graded_eyes"])
            .iter()
            .filter_map(|eye| Eye::from_code(eye))
            .collect();
        let mut viewed: BTreeSet<String> = strings(&viewing["viewed"]).into_iter().collect();
        let submitted = parse_timestamp(&record.at);
        if let (Some(actor), Some(target)) = (&record.actor, &record.target) {
            for ended in sessions
                .get(&(actor.as_str(), target.as_str()))
                .into_iter()
                .flatten()
            {
                // Sessions that ended after the submission and had begun before it.
                let open_then = match (ended.started, submitted) {
                    (Some(started), Some(submitted)) => started <= submitted,
                    _ => true,
                };
                if ended.seq > record.seq && open_then {
                    viewed.extend(viewed_exams(ended.views.as_slice(), &exams));
                }
            }
        }
        let missing = coverage(&graded, &exams, &viewed);
        if !missing.is_complete() {
            found.push(Anomaly::GradedWithoutViewing {
                actor: record.actor.clone(),
                seq: record.seq,
                target: record.target.clone(),
                unviewed_eyes: missing
                    .unviewed_eyes
                    .iter()
                    .map(|eye| eye.as_str().to_owned())
                    .collect(),
                unviewed_exams: missing.unviewed_exams,
            });
        }
    }
    found
}

/// The actions [`anomalies`] looks at; a scan may load only these.
pub const ANOMALY_ACTIONS: &[Action] = &[
    Action::CaseOpened,
    Action::CaseDenied,
    Action::AuthLogin,
    Action::AuthRefusalsCounted,
    Action::StreamEnded,
    Action::GradeSubmitted,
    Action::AdjudicationSubmitted,
    Action::StreamLosslessWithheld,
];

/// Each `stream.lossless_withheld` event is a flag: a budget a human grader does not reach.
fn bulk_extractions(records: &[AuditRecord]) -> Vec<Anomaly> {
    records
        .iter()
        .filter(|record| record.action == Action::StreamLosslessWithheld.as_str())
        .map(|record| Anomaly::BulkExtraction {
            actor: record.actor.clone(),
            seq: record.seq,
            target: record.target.clone(),
            reason: serde_json::from_str::<serde_json::Value>(&record.details)
                .ok()
                .and_then(|details| details.get("reason")?.as_str().map(str::to_owned))
                .unwrap_or_default(),
        })
        .collect()
}

fn refusal_storms(records: &[AuditRecord], rules: &AnomalyRules) -> Vec<Anomaly> {
    // Per client: the open storm (last time, count, first and last seq).
    let mut open: BTreeMap<Option<&str>, (i64, u64, i64, i64)> = BTreeMap::new();
    let mut storms = Vec::new();
    let gap = rules.storm_gap_secs.saturating_mul(1_000_000);
    let mut close = |client: Option<&str>, (_, count, from, to): (i64, u64, i64, i64)| {
        if count >= rules.storm_refusals.max(1) {
            storms.push(Anomaly::RefusalStorm {
                client: client.map(str::to_owned),
                count,
                from_seq: from,
                to_seq: to,
            });
        }
    };
    for record in records {
        if record.action != Action::AuthRefusalsCounted.as_str() {
            continue;
        }
        let Some(micros) = parse_timestamp(&record.at) else {
            continue;
        };
        let count = serde_json::from_str::<serde_json::Value>(&record.details)
            .ok()
            .and_then(|details| details.get("count").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        let client = record.client.as_deref();
        match open.get_mut(&client) {
            Some(storm) if micros.saturating_sub(storm.0) <= gap => {
                storm.0 = micros;
                storm.1 = storm.1.saturating_add(count);
                storm.3 = record.seq;
            }
            _ => {
                if let Some(previous) = open.insert(client, (micros, count, record.seq, record.seq))
                {
                    close(client, previous);
                }
            }
        }
    }
    for (client, storm) in open {
        close(client, storm);
    }
    storms
}

fn new_address_sign_ins(records: &[AuditRecord]) -> Vec<Anomaly> {
    let mut known: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut found = Vec::new();
    for record in records {
        if record.action != Action::AuthLogin.as_str() || record.outcome != Outcome::Success {
            continue;
        }
        let (Some(actor), Some(client)) = (&record.actor, &record.client) else {
            continue;
        };
        let addresses = known.entry(actor).or_default();
        let first_sign_in = addresses.is_empty();
        if addresses.insert(client) && !first_sign_in {
            found.push(Anomaly::NewAddressSignIn {
                actor: actor.clone(),
                seq: record.seq,
                client: client.clone(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `2026-12-02T10:00:00Z` plus `secs` seconds, with varying microseconds.
    fn at(secs: u32) -> String {
        format!(
            "2026-12-02T{:02}:{:02}:{:02}.{:06}Z",
            10 + secs / 3600,
            secs / 60 % 60,
            secs % 60,
            secs * 37 % 1_000_000
        )
    }

    fn draft(i: usize) -> EventDraft {
        let outcomes = [Outcome::Success, Outcome::Denied, Outcome::Failure];
        let mut draft = EventDraft::new(
            at(i as u32),
            Action::ALL[i % Action::ALL.len()],
            outcomes[i % 3],
        )
        .target(format!("case:{i}"))
        .details(json!({"n": i, "z": {"b": true, "a": [1, 2.5, "x\n"]}}));
        if !i.is_multiple_of(11) {
            draft = draft.actor(format!("user-{}", i % 7));
        }
        if !i.is_multiple_of(13) {
            draft = draft.client(format!("10.0.0.{}", i % 5));
        }
        draft
    }

    fn chain(n: usize) -> Vec<AuditRecord> {
        let mut head = ChainHead::genesis();
        let mut records = Vec::with_capacity(n);
        for i in 0..n {
            let record = seal(&head, draft(i)).unwrap();
            head = record.head();
            records.push(record);
        }
        records
    }

    fn first_break(records: &[AuditRecord]) -> Option<Break> {
        verify_records(records, &[], None).first_break
    }

    #[test]
    fn a_sealed_chain_of_a_thousand_events_verifies() {
        let records = chain(1000);
        assert_eq!(records[0].prev_hash, GENESIS);
        assert_eq!(records[999].seq, 1000);
        let mut verifier = Verifier::new();
        for record in &records {
            assert_eq!(verifier.push(record), Ok(()));
        }
        assert_eq!(verifier.count(), 1000);
        assert_eq!(verifier.head(), records[999].head());
        let report = verifier.finish();
        assert!(report.is_intact());
        assert_eq!(report.count, 1000);
    }

    #[test]
    fn editing_any_field_of_a_middle_row_breaks_at_that_row() {
        let records = chain(1000);
        type Edit = (&'static str, fn(&mut AuditRecord));
        let edits: Vec<Edit> = vec![
            ("at", |r| r.at = "2026-12-02T11:00:00.000000Z".into()),
            ("actor", |r| r.actor = Some("intruder".into())),
            ("actor none", |r| r.actor = None),
            ("actor empty", |r| r.actor = Some(String::new())),
            ("action", |r| {
                r.action = if r.action == "audit.exported" {
                    "key.created".into()
                } else {
                    "audit.exported".into()
                }
            }),
            ("target", |r| r.target = Some("case:other".into())),
            ("target none", |r| r.target = None),
            ("outcome", |r| r.outcome = Outcome::Success),
            ("client", |r| r.client = Some("198.51.100.1".into())),
            ("client none", |r| r.client = None),
            ("details", |r| r.details = r#"{"n":1}"#.into()),
            ("hash", |r| r.hash = GENESIS.into()),
        ];
        for (name, edit) in edits {
            let mut edited = records.clone();
            edit(&mut edited[499]);
            assert_ne!(edited[499], records[499], "{name} did not change the row");
            assert_eq!(
                first_break(&edited),
                Some(Break {
                    seq: 500,
                    kind: BreakKind::HashMismatch
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn editing_the_links_of_a_row_breaks_at_that_row() {
        let mut records = chain(10);
        records[4].prev_hash = records[2].hash.clone();
        let found = first_break(&records).unwrap();
        assert_eq!((found.seq, found.kind), (5, BreakKind::PrevMismatch));
        let mut records = chain(10);
        records[4].seq = 50;
        let found = first_break(&records).unwrap();
        assert_eq!(
            (found.seq, found.kind),
            (
                50,
                BreakKind::SequenceGap {
                    expected: 5,
                    found: 50
                }
            )
        );
    }

    #[test]
    fn deleting_a_middle_row_is_a_gap_at_the_next_seq() {
        let mut records = chain(1000);
        records.remove(499);
        let report = verify_records(&records, &[], None);
        assert_eq!(
            report.first_break,
            Some(Break {
                seq: 501,
                kind: BreakKind::SequenceGap {
                    expected: 500,
                    found: 501
                }
            })
        );
        assert_eq!(report.count, 499);
        assert_eq!(report.head, records[498].head());
    }

    #[test]
    fn swapping_two_rows_is_detected_at_the_first_swapped_position() {
        // Rows swapped in place (keeping their own seq numbers).
        let mut records = chain(1000);
        records.swap(499, 500);
        let found = first_break(&records).unwrap();
        assert_eq!(found.seq, 501);
        assert_eq!(
            found.kind,
            BreakKind::SequenceGap {
                expected: 500,
                found: 501
            }
        );
        // Contents swapped under the seq numbers.
        let mut records = chain(1000);
        records.swap(499, 500);
        records[499].seq = 500;
        records[500].seq = 501;
        let found = first_break(&records).unwrap();
        assert_eq!((found.seq, found.kind), (500, BreakKind::PrevMismatch));
    }

    #[test]
    fn details_written_outside_the_application_are_not_canonical() {
        let mut records = chain(3);
        records[1].details = r#"{"b":1, "a":2}"#.into();
        records[1].hash = event_hash(&records[1]).unwrap();
        records[2].prev_hash = records[1].hash.clone();
        records[2].hash = event_hash(&records[2]).unwrap();
        let found = first_break(&records).unwrap();
        assert_eq!((found.seq, found.kind), (2, BreakKind::NotCanonical));
        for bad in ["[1]", "1", "not json", ""] {
            assert!(!is_canonical_details(bad), "{bad}");
        }
        assert!(is_canonical_details("{}"));
    }

    #[test]
    fn after_a_break_every_push_returns_the_first_break() {
        let mut records = chain(20);
        records[5].at = at(9999);
        let mut verifier = Verifier::new();
        let results: Vec<_> = records.iter().map(|r| verifier.push(r)).collect();
        let expected = Break {
            seq: 6,
            kind: BreakKind::HashMismatch,
        };
        assert!(results[..5].iter().all(Result::is_ok));
        assert!(results[5..].iter().all(|r| r == &Err(expected.clone())));
        assert_eq!(verifier.count(), 5);
        assert_eq!(verifier.head(), records[4].head());
        assert_eq!(verifier.first_break(), Some(&expected));
    }

    #[test]
    fn a_break_names_its_sequence_number() {
        let found = Break {
            seq: 42,
            kind: BreakKind::HashMismatch,
        };
        assert_eq!(
            found.to_string(),
            "broken link at event 42: the stored hash does not match its contents (the row was edited)"
        );
        let gap = Break {
            seq: 7,
            kind: BreakKind::Truncated {
                checkpoint_seq: 9,
                last_seq: 6,
            },
        };
        assert!(
            gap.to_string()
                .starts_with("broken link at event 7: the chain ends at event 6")
        );
    }

    #[test]
    fn a_checkpoint_past_the_end_reveals_a_truncated_tail() {
        let records = chain(1000);
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let checkpoint = signer.sign(&records[999].head(), &at(2000)).unwrap();
        let key = signer.verifier();
        let report = verify_records(
            &records[..900],
            std::slice::from_ref(&checkpoint),
            Some(&key),
        );
        assert_eq!(
            report.first_break,
            Some(Break {
                seq: 901,
                kind: BreakKind::Truncated {
                    checkpoint_seq: 1000,
                    last_seq: 900
                }
            })
        );
        assert_eq!(report.count, 900);
        let whole = verify_records(&records, std::slice::from_ref(&checkpoint), Some(&key));
        assert!(whole.is_intact());
        assert_eq!(whole.checkpoints_checked, 1);
        assert_eq!(whole.last_checkpoint, Some(checkpoint));
    }

    #[test]
    fn checkpoints_are_checked_as_their_seq_passes() {
        let records = chain(100);
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let key = signer.verifier();
        let c10 = signer.sign(&records[9].head(), &at(500)).unwrap();
        let c50 = signer.sign(&records[49].head(), &at(600)).unwrap();
        let report = verify_records(&records, &[c50.clone(), c10], Some(&key));
        assert!(report.is_intact());
        assert_eq!(report.checkpoints_checked, 2);
        assert_eq!(report.last_checkpoint, Some(c50));

        // A consistently rewritten history still contradicts an earlier signed checkpoint.
        let mut head = ChainHead::genesis();
        let rewritten: Vec<AuditRecord> = (0..100)
            .map(|i| {
                let mut d = draft(i);
                if i == 30 {
                    d.actor = Some("someone-else".into());
                }
                let record = seal(&head, d).unwrap();
                head = record.head();
                record
            })
            .collect();
        let c40 = signer.sign(&records[39].head(), &at(700)).unwrap();
        let report = verify_records(&rewritten, &[c40], Some(&key));
        assert_eq!(
            report.first_break,
            Some(Break {
                seq: 40,
                kind: BreakKind::CheckpointMismatch
            })
        );
        assert_eq!(report.count, 40);
    }

    #[test]
    fn forged_checkpoints_fail() {
        let records = chain(10);
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let key = signer.verifier();
        let good = signer.sign(&records[9].head(), &at(100)).unwrap();
        assert_eq!(key.verify(&good), Ok(()));

        let mut hash = good.clone();
        hash.hash = records[8].hash.clone();
        assert_eq!(key.verify(&hash), Err(ChainError::BadSignature));
        let mut seq = good.clone();
        seq.seq = 9;
        assert_eq!(key.verify(&seq), Err(ChainError::BadSignature));
        let mut time = good.clone();
        time.at = at(101);
        assert_eq!(key.verify(&time), Err(ChainError::BadSignature));

        let other = CheckpointSigner::from_seed(&[4; 32]);
        let foreign = other.sign(&records[9].head(), &at(100)).unwrap();
        assert!(matches!(
            key.verify(&foreign),
            Err(ChainError::WrongKey { .. })
        ));
        let mut impostor = foreign.clone();
        impostor.key_id = key.key_id().to_owned();
        assert_eq!(key.verify(&impostor), Err(ChainError::BadSignature));

        let mut garbled = good.clone();
        garbled.signature = "!!".into();
        assert_eq!(key.verify(&garbled), Err(ChainError::MalformedSignature));
        let mut short = good.clone();
        short.signature = "AAAA".into();
        assert_eq!(key.verify(&short), Err(ChainError::MalformedSignature));
        let mut bad_hex = good.clone();
        bad_hex.hash = good.hash.to_uppercase();
        assert!(matches!(
            key.verify(&bad_hex),
            Err(ChainError::MalformedHash { .. })
        ));

        // The verifier refuses a forged checkpoint at its seq, or past the end.
        let report = verify_records(&records, &[seq], Some(&key));
        assert_eq!(
            report.first_break,
            Some(Break {
                seq: 9,
                kind: BreakKind::BadCheckpointSignature(ChainError::BadSignature)
            })
        );
        let mut beyond = good.clone();
        beyond.seq = 11;
        let report = verify_records(&records, &[beyond], Some(&key));
        assert_eq!(
            report.first_break.map(|b| (b.seq, b.kind)),
            Some((
                11,
                BreakKind::BadCheckpointSignature(ChainError::BadSignature)
            ))
        );
    }

    #[test]
    fn signer_and_verifier_agree_on_key_id_and_public_key() {
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let from_hex = CheckpointVerifier::from_public_key_hex(&signer.public_key_hex()).unwrap();
        assert_eq!(from_hex.key_id(), signer.key_id());
        assert_eq!(signer.key_id().len(), 16);
        let expected = hex::encode(&Sha256::digest(signer.public_key())[..8]);
        assert_eq!(signer.key_id(), expected);
        assert_eq!(
            CheckpointVerifier::from_public_key_hex("zz").unwrap_err(),
            ChainError::MalformedKey
        );
        let head = ChainHead::genesis();
        assert_eq!(
            signer.sign(&head, "yesterday"),
            Err(ChainError::InvalidTime)
        );
        let bad_head = ChainHead {
            seq: 1,
            hash: "abc".into(),
        };
        assert!(matches!(
            signer.sign(&bad_head, &at(0)),
            Err(ChainError::MalformedHash { .. })
        ));
    }

    #[test]
    fn checkpoints_round_trip_as_strict_json() {
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let checkpoint = signer.sign(&ChainHead::genesis(), &at(0)).unwrap();
        let text = serde_json::to_string(&checkpoint).unwrap();
        let back: Checkpoint = serde_json::from_str(&text).unwrap();
        assert_eq!(back, checkpoint);
        assert_eq!(signer.verifier().verify(&back), Ok(()));
        let mut value: Value = serde_json::from_str(&text).unwrap();
        value["extra"] = json!(1);
        assert!(serde_json::from_value::<Checkpoint>(value).is_err());
    }

    #[test]
    fn verifying_from_a_checkpoint_head_skips_earlier_rows() {
        let records = chain(1000);
        let signer = CheckpointSigner::from_seed(&[3; 32]);
        let start = signer.sign(&records[499].head(), &at(3000)).unwrap();
        let end = signer.sign(&records[999].head(), &at(3001)).unwrap();
        let mut verifier = Verifier::from_checkpoint(&start.head())
            .with_checkpoints(&[start.clone(), end], Some(&signer.verifier()));
        for record in &records[500..] {
            verifier.push(record).unwrap();
        }
        let report = verifier.finish();
        assert!(report.is_intact());
        assert_eq!(report.count, 500);
        assert_eq!(report.checkpoints_checked, 2);
        assert_eq!(report.head, records[999].head());

        let wrong = ChainHead {
            seq: 500,
            hash: records[498].hash.clone(),
        };
        let mut verifier = Verifier::from_checkpoint(&wrong);
        let found = verifier.push(&records[500]).unwrap_err();
        assert_eq!((found.seq, found.kind), (501, BreakKind::PrevMismatch));

        let mut verifier = Verifier::from_checkpoint(&start.head());
        let found = verifier.push(&records[0]).unwrap_err();
        assert_eq!(
            found.kind,
            BreakKind::SequenceGap {
                expected: 501,
                found: 1
            }
        );
    }

    #[test]
    fn canonical_json_sorts_nested_keys_and_is_stable() {
        let value = json!({
            "b": {"z": 1, "a": [{"y": null, "x": false}]},
            "a": "é\u{1}\"\\",
            "B": 2.5,
            "aa": -3,
        });
        let text = canonical_json(&value);
        assert_eq!(
            text,
            r#"{"B":2.5,"a":"é\u0001\"\\","aa":-3,"b":{"a":[{"x":false,"y":null}],"z":1}}"#
        );
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reparsed, value);
        assert_eq!(canonical_json(&reparsed), text);
        assert!(is_canonical_details(&text));
    }

    #[test]
    fn canonical_strings_and_numbers_match_serde_json() {
        let mut text: String = (0u32..0x80).filter_map(char::from_u32).collect();
        text.push_str("é€😀\u{2028}");
        let value = Value::String(text);
        assert_eq!(
            canonical_json(&value),
            serde_json::to_string(&value).unwrap()
        );
        for number in [
            json!(0),
            json!(-1),
            json!(u64::MAX),
            json!(1e300),
            json!(0.1),
        ] {
            assert_eq!(
                canonical_json(&number),
                serde_json::to_string(&number).unwrap()
            );
        }
    }

    #[test]
    fn deeply_nested_json_does_not_overflow() {
        let mut value = json!({});
        for _ in 0..10_000 {
            value = Value::Array(vec![value]);
        }
        let text = canonical_json(&value);
        assert_eq!(text.len(), 2 + 2 * 10_000);
        std::mem::forget(value); // serde_json's own drop is recursive
    }

    #[test]
    fn seal_refuses_bad_details_times_heads_and_fields() {
        let head = ChainHead::genesis();
        let base = || EventDraft::new(at(0), Action::AuditExported, Outcome::Success);
        for (details, kind) in [
            (json!([1]), "an array"),
            (json!("x"), "a string"),
            (json!(null), "null"),
            (json!(3), "a number"),
        ] {
            assert_eq!(
                seal(&head, base().details(details)),
                Err(ChainError::DetailsNotObject(kind))
            );
        }
        let filler = |n: usize| json!({"x": "a".repeat(n)});
        // {"x":"…"} is 8 bytes of syntax around the string.
        assert!(seal(&head, base().details(filler(MAX_DETAILS_BYTES - 8))).is_ok());
        assert_eq!(
            seal(&head, base().details(filler(MAX_DETAILS_BYTES - 7))),
            Err(ChainError::DetailsTooLarge {
                size: MAX_DETAILS_BYTES + 1,
                max: MAX_DETAILS_BYTES
            })
        );
        let mut late = base();
        late.at = "2026-12-02 10:00:00Z".into();
        assert_eq!(seal(&head, late), Err(ChainError::InvalidTime));
        assert!(matches!(
            seal(&head, base().client("x".repeat(MAX_FIELD_BYTES + 1))),
            Err(ChainError::FieldTooLong {
                field: "client",
                ..
            })
        ));
        let negative = ChainHead {
            seq: -1,
            hash: GENESIS.into(),
        };
        assert_eq!(
            seal(&negative, base()),
            Err(ChainError::SequenceExhausted(-1))
        );
        let full = ChainHead {
            seq: i64::MAX,
            hash: GENESIS.into(),
        };
        assert_eq!(
            seal(&full, base()),
            Err(ChainError::SequenceExhausted(i64::MAX))
        );
        let bad_hash = ChainHead {
            seq: 0,
            hash: GENESIS.replace('0', "O"),
        };
        assert!(matches!(
            seal(&bad_hash, base()),
            Err(ChainError::MalformedHash { .. })
        ));
    }

    #[test]
    fn none_and_empty_are_hashed_differently() {
        let head = ChainHead::genesis();
        let base = || EventDraft::new(at(0), Action::AuditExported, Outcome::Success);
        let none = seal(&head, base()).unwrap();
        let empty = seal(&head, base().actor("")).unwrap();
        assert_ne!(none.hash, empty.hash);
        // Moving bytes between neighbouring fields changes the hash too.
        let a = seal(&head, base().actor("ab").target("c")).unwrap();
        let b = seal(&head, base().actor("a").target("bc")).unwrap();
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn the_hash_of_a_known_record_is_fixed() {
        let record = seal(
            &ChainHead::genesis(),
            EventDraft::new(
                "2026-12-02T10:11:12.123456Z",
                Action::CaseOpened,
                Outcome::Success,
            )
            .actor("0b7c3a52-6c1e-4f7e-9d43-5b2f1c8e9a10")
            .target("case:5f0d2c1e-8a3b-4c6d-9e7f-102132435465")
            .details(json!({"viewer": "v1", "reason": "assigned"})),
        )
        .unwrap();
        assert_eq!(record.details, r#"{"reason":"assigned","viewer":"v1"}"#);
        // Computed once from this implementation, then recomputed independently by a short
        // Python script (hashlib.sha256, struct.pack('>I'/'>q')) written from the layout in
        // the module documentation alone; both vectors matched.
        assert_eq!(
            record.hash,
            "7721a54302c602300ac68d40b90e84152ca3b74514d61575fe3be3bbdb56d1c8"
        );
        let second = seal(
            &record.head(),
            EventDraft::new("2026-12-02T10:11:13Z", Action::AuthLogout, Outcome::Denied)
                .client("203.0.113.7"),
        )
        .unwrap();
        assert_eq!(
            second.hash,
            "577fc0929dac8c77e0d1c82866fa0d7ebf816e97e7c95b6e635d441b9023d608"
        );
    }

    #[test]
    fn every_action_code_round_trips() {
        assert_eq!(Action::ALL.len(), 43);
        let codes: BTreeSet<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(codes.len(), Action::ALL.len());
        for &action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(json, format!("\"{}\"", action.as_str()));
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), action);
        }
        assert_eq!("case.denied".parse(), Ok(Action::CaseDenied));
        assert!("case.deleted".parse::<Action>().is_err());
        assert!("".parse::<Action>().is_err());
        for outcome in [Outcome::Success, Outcome::Denied, Outcome::Failure] {
            assert_eq!(outcome.as_str().parse(), Ok(outcome));
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                json!(outcome.as_str())
            );
        }
        assert!("Success".parse::<Outcome>().is_err());
    }

    #[test]
    fn timestamps_parse_to_unix_microseconds() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2000-03-01T00:00:00.5Z"),
            Some(951_868_800_500_000)
        );
        assert_eq!(
            parse_timestamp("2026-12-02T10:11:12.123456789Z"),
            Some(1_796_206_272_123_456)
        );
        assert_eq!(parse_timestamp("1969-12-31T23:59:59Z"), Some(-1_000_000));
        assert!(parse_timestamp("2024-02-29T00:00:00Z").is_some());
        for bad in [
            "",
            "Z",
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-02T24:00:00Z",
            "2026-12-02T10:11:60Z",
            "2026-12-02T10:11:12",
            "2026-12-02T10:11:12+00:00",
            "2026-12-02t10:11:12z",
            "2026-12-02T10:11:12.Z",
            "2026-12-02T10:11:12.1234567890Z",
            "2026-12-02T10:11:1a.1Z",
            "+026-12-02T10:11:12Z",
            "2026-12-02T10:11:12.12é",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    fn login(seq: usize, actor: &str, client: &str, outcome: Outcome) -> EventDraft {
        EventDraft::new(at(seq as u32), Action::AuthLogin, outcome)
            .actor(actor)
            .client(client)
    }

    fn seal_all(drafts: Vec<EventDraft>) -> Vec<AuditRecord> {
        let mut head = ChainHead::genesis();
        drafts
            .into_iter()
            .map(|d| {
                let record = seal(&head, d).unwrap();
                head = record.head();
                record
            })
            .collect()
    }

    fn opens(count: u32, every_secs: u32) -> Vec<AuditRecord> {
        let drafts = (0..count)
            .map(|i| {
                EventDraft::new(at(i * every_secs), Action::CaseOpened, Outcome::Success)
                    .actor("grader")
                    .target(format!("case:{i}"))
            })
            .collect();
        seal_all(drafts)
    }

    #[test]
    fn twenty_case_opens_in_four_minutes_are_flagged() {
        let rules = AnomalyRules::default();
        assert_eq!(
            anomalies(&opens(20, 12), &rules),
            vec![Anomaly::RapidCaseOpens {
                actor: "grader".into(),
                count: 20,
                from_seq: 1,
                to_seq: 20
            }]
        );
        assert_eq!(anomalies(&opens(19, 12), &rules), vec![]);
        assert_eq!(anomalies(&opens(20, 30), &rules), vec![]);
        // A longer burst is one flag, not one per window.
        let flags = anomalies(&opens(40, 12), &rules);
        assert_eq!(flags.len(), 1);
        assert!(matches!(
            flags[0],
            Anomaly::RapidCaseOpens { count: 40, .. }
        ));
    }

    #[test]
    fn unparsable_times_are_skipped_and_odd_rules_do_not_panic() {
        let mut records = opens(20, 1);
        records[0].at = "garbage".into();
        assert_eq!(anomalies(&records, &AnomalyRules::default()), vec![]);
        let odd = AnomalyRules {
            rapid_opens: 0,
            rapid_window_secs: -5,
            storm_refusals: 0,
            storm_gap_secs: -1,
        };
        assert_eq!(anomalies(&records, &odd).len(), 19);
    }

    /// Issue 16: DR, DME for both eyes submitted after fundus OD alone is flagged, naming what
    /// was never shown; views of a session still open at submission (its `stream.ended` comes
    /// later) count, a session begun after the submission does not.
    #[test]
    fn grades_made_without_viewing_are_flagged() {
        let exams = json!([
            { "id": "fundus-od", "kind": "fundus", "eye": "OD" },
            { "id": "fundus-os", "kind": "fundus", "eye": "OS" },
            { "id": "oct-od", "kind": "oct", "eye": "OD" },
            { "id": "oct-os", "kind": "oct", "eye": "OS" },
        ]);
        let graded = |secs: u32, actor: &str, viewed: Value| {
            EventDraft::new(at(secs), Action::GradeSubmitted, Outcome::Success)
                .actor(actor)
                .target("case:c1")
                .details(json!({ "viewing": {
                    "exams": exams, "graded_eyes": ["OD", "OS"], "viewed": viewed } }))
        };
        let ended = |secs: u32, actor: &str, duration_ms: u64, views: Value| {
            EventDraft::new(at(secs), Action::StreamEnded, Outcome::Success)
                .actor(actor)
                .target("case:c1")
                .details(json!({ "duration_ms": duration_ms, "views": views }))
        };
        let records = seal_all(vec![
            // ann: 4 s on fundus OD, session closed, then grades both eyes.
            ended(10, "ann", 4_200, json!(["single:fundus-od"])),
            graded(20, "ann", json!(["fundus-od"])),
            // bob: grades while his session is open; it ends afterwards having shown everything.
            graded(30, "bob", json!([])),
            ended(
                40,
                "bob",
                60_000,
                json!(["both_eyes:fundus-od", "both_eyes:oct-od"]),
            ),
            // ann again on the case after her grade: does not excuse the first grade.
            ended(
                100,
                "ann",
                10_000,
                json!(["both_eyes:fundus-od", "both_eyes:oct-od"]),
            ),
        ]);
        let found = anomalies(&records, &AnomalyRules::default());
        assert_eq!(
            found,
            vec![Anomaly::GradedWithoutViewing {
                actor: Some("ann".into()),
                seq: 2,
                target: Some("case:c1".into()),
                unviewed_eyes: vec!["OS".into()],
                unviewed_exams: vec!["oct-od".into(), "fundus-os".into(), "oct-os".into()],
            }]
        );
        let text = serde_json::to_value(&found[0]).unwrap();
        assert_eq!(text["kind"], "graded_without_viewing");
    }

    #[test]
    fn denied_cases_and_new_sign_in_addresses_are_flagged() {
        let records = seal_all(vec![
            login(0, "ann", "10.0.0.1", Outcome::Success),
            login(1, "ann", "10.0.0.1", Outcome::Success),
            login(2, "bob", "10.0.0.9", Outcome::Success),
            login(3, "ann", "10.0.0.2", Outcome::Failure),
            EventDraft::new(at(4), Action::CaseDenied, Outcome::Denied)
                .actor("ann")
                .target("case:x"),
            login(5, "ann", "10.0.0.2", Outcome::Success),
            login(6, "ann", "10.0.0.2", Outcome::Success),
            login(7, "ann", "10.0.0.1", Outcome::Success),
        ]);
        let found = anomalies(&records, &AnomalyRules::default());
        assert_eq!(
            found,
            vec![
                Anomaly::OutsideAssignment {
                    actor: Some("ann".into()),
                    seq: 5,
                    target: Some("case:x".into())
                },
                Anomaly::NewAddressSignIn {
                    actor: "ann".into(),
                    seq: 6,
                    client: "10.0.0.2".into()
                },
            ]
        );
        assert_eq!(
            serde_json::to_value(&found[1]).unwrap(),
            json!({"kind": "new_address_sign_in", "actor": "ann", "seq": 6, "client": "10.0.0.2"})
        );
    }

    fn counted(secs: u32, client: Option<&str>, count: u64) -> EventDraft {
        let draft = EventDraft::new(at(secs), Action::AuthRefusalsCounted, Outcome::Failure)
            .details(json!({ "count": count, "window_secs": 60 }));
        match client {
            Some(client) => draft.client(client),
            None => draft,
        }
    }

    #[test]
    fn a_storm_of_counted_refusals_is_one_flag_per_address() {
        let records = seal_all(vec![
            counted(0, Some("10.0.0.1"), 30),
            counted(60, Some("10.0.0.1"), 30),
            counted(60, None, 70),
            counted(120, Some("10.0.0.1"), 30),
            counted(120, Some("10.0.0.2"), 10),
            // An hour later: a new storm from the same address.
            counted(3720, Some("10.0.0.1"), 60),
        ]);
        let found = anomalies(&records, &AnomalyRules::default());
        assert_eq!(
            found,
            vec![
                Anomaly::RefusalStorm {
                    client: Some("10.0.0.1".into()),
                    count: 90,
                    from_seq: 1,
                    to_seq: 4
                },
                Anomaly::RefusalStorm {
                    client: None,
                    count: 70,
                    from_seq: 3,
                    to_seq: 3
                },
                Anomaly::RefusalStorm {
                    client: Some("10.0.0.1".into()),
                    count: 60,
                    from_seq: 6,
                    to_seq: 6
                },
            ]
        );
        assert_eq!(
            serde_json::to_value(&found[1]).unwrap(),
            json!({"kind": "refusal_storm", "client": null, "count": 70, "from_seq": 3, "to_seq": 3})
        );
    }

    #[test]
    fn every_withheld_lossless_budget_is_a_bulk_extraction_flag() {
        let sent = EventDraft::new(at(0), Action::StreamLosslessSent, Outcome::Success)
            .actor("ann")
            .target("case:x");
        let withheld = |secs, reason: &str| {
            EventDraft::new(at(secs), Action::StreamLosslessWithheld, Outcome::Denied)
                .actor("ann")
                .target("case:x")
                .details(json!({ "reason": reason, "spent_px": 96_000_000 }))
        };
        let records = seal_all(vec![sent, withheld(5, "rate"), withheld(9, "case_budget")]);
        let found = anomalies(&records, &AnomalyRules::default());
        assert_eq!(
            found,
            vec![
                Anomaly::BulkExtraction {
                    actor: Some("ann".into()),
                    seq: 2,
                    target: Some("case:x".into()),
                    reason: "rate".into()
                },
                Anomaly::BulkExtraction {
                    actor: Some("ann".into()),
                    seq: 3,
                    target: Some("case:x".into()),
                    reason: "case_budget".into()
                },
            ]
        );
        assert!(ANOMALY_ACTIONS.contains(&Action::StreamLosslessWithheld));
    }

    #[test]
    fn random_rows_never_panic_the_verifier() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let records = chain(50);
        for _ in 0..300 {
            let mut edited = records.clone();
            let row = rng.gen_range(0..edited.len());
            let text: String = (0..rng.gen_range(0..80))
                .map(|_| char::from(rng.gen_range(b' '..=b'~')))
                .collect();
            match rng.gen_range(0..5) {
                0 => edited[row].prev_hash = text,
                1 => edited[row].details = text,
                2 => edited[row].at = text,
                3 => edited[row].hash = text,
                _ => edited[row].seq = rng.r#gen(),
            }
            let report = verify_records(&edited, &[], None);
            if edited[row] != records[row] {
                assert!(report.first_break.is_some());
            }
            let _ = anomalies(&edited, &AnomalyRules::default());
        }
    }
}
