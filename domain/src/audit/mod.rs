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
//!
//! # Modules
//!
//! - `action`: the closed catalogues [`Action`] and [`Outcome`].
//! - `canonical`: the canonical JSON text of details ([`canonical_json`]).
//! - `chain`: drafts, records and heads, the event hash, and [`seal`].
//! - `encoding`: the `str`/`opt` byte encoding shared by events and checkpoints.
//! - `error`: [`ChainError`].
//! - `verify`: streaming verification ([`Verifier`], [`verify_records`]).
//! - `checkpoint`: signed checkpoints ([`CheckpointSigner`], [`CheckpointVerifier`]).
//! - `timestamp`: [`parse_timestamp`].
//! - `anomaly`: anomaly flags ([`anomalies`]).

mod action;
mod anomaly;
mod canonical;
mod chain;
mod checkpoint;
mod encoding;
mod error;
#[cfg(test)]
mod test_support;
mod timestamp;
mod verify;

pub use action::{Action, Outcome, UnknownCode};
pub use anomaly::{ANOMALY_ACTIONS, Anomaly, AnomalyRules, anomalies};
pub use canonical::{canonical_details, canonical_json, is_canonical_details};
pub use chain::{
    AuditRecord, ChainHead, EventDraft, GENESIS, MAX_DETAILS_BYTES, MAX_FIELD_BYTES, event_hash,
    event_preimage, seal,
};
pub use checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
pub use error::ChainError;
pub use timestamp::parse_timestamp;
pub use verify::{Break, BreakKind, Report, Verifier, verify_records};
