//! readroom worker: the only crate that holds age identities and decrypts exam bundles.
//!
//! - [`keys`]: generate and load the worker's age X25519 identity (`readroom keygen`).
//! - [`reader`]: [`reader::EncryptedBundle`], random access to an encrypted bundle in the object
//!   store: it decrypts only the age STREAM chunks it needs and uses the zip central directory to
//!   find an entry, so reading the manifest and one B-scan of a 1 GB bundle reads a few hundred KiB.
//! - [`admission`]: [`admission::TicketGate`], the worker's own check of the server's streaming
//!   tickets (signature, expiry, single use, same user and viewer session when switching cases)
//!   and of every request against the case the session was admitted to.
//! - [`encode`]: H.264 encoding of rendered frames (openh264).
//! - [`source`], [`dicom`], [`render`]: decoded case images (JPEG/PNG/TIFF, DICOM OP and
//!   multi-frame OPT), byte-capped cache, and the renderer.
//! - [`harden_process`]: no core dumps and not dumpable, for a process holding plaintext.
//! - [`stream`]: [`stream::Streamer`], one WebRTC session per viewer: admission, ranged
//!   fetch and decryption, render on change, encode, lossless settle, session events; ends
//!   sessions on request (revocation) and drains.
//! - [`control`]: the control API a `readroom worker` process serves to the servers (signed
//!   requests: open a session, end sessions, status).
//! - [`verify`]: a recorded lossless frame rendered again from its bundle (grade evidence,
//!   `readroom grade verify`).
//! - [`node`]: the worker process: control API, heartbeats and session events to the servers,
//!   drain on shutdown; and [`node::streamer`], the one way to build a streamer (hardened,
//!   identity loaded), used by `readroom worker` and by the embedded default alike.
//!
//! **Invariant:** plaintext exists only in this process's memory. Nothing here writes decrypted
//! bytes to disk, temp files or logs; errors name entries and sizes, never content.
#![deny(missing_docs)]

pub mod admission;
pub mod control;
pub mod dicom;
pub mod encode;
mod harden;
pub mod image;
pub mod keys;
pub mod lossless;
pub mod node;
pub mod reader;
pub mod render;
pub mod source;
pub mod stream;
pub mod verify;
pub mod vp8;
pub mod watermark;

pub use harden::{HardenError, harden_process};
