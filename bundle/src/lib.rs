//! Exam bundle I/O for readroom.
//!
//! A bundle (format `readroom-bundle/1`) is a directory or `.zip` with `manifest.json` at its
//! root plus image files.
//! This crate is the I/O half of ingest:
//!
//! - [`source`]: [`BundleSource`] opens a directory or zip, refuses unsafe or oversized entries
//!   before reading any data, and streams one entry at a time.
//! - [`inspect`]: [`inspect::inspect`] tells what a file really is from its bytes and reports its
//!   dimensions and every raw metadata item (EXIF, XMP, IPTC, PNG text, TIFF tags, JPEG comments,
//!   DICOM attributes) without decoding pixels.
//! - [`gate`]: [`gate::check`], the ingest gate: manifest validation plus the de-identification
//!   rules applied to every file; it lists every problem and never writes.
//! - [`pack`]: [`PackWriter`] streams the normalized, stored, deterministic bundle zip.
//! - [`dicom`]: the one DICOM structure walk (every declared length checked before anything is
//!   allocated), used by [`inspect`] here and by the worker before it decodes.
//!
//! The design decision: this crate extracts, it does not judge.
//! Whether a metadata value or a file name is identifying is decided by the de-identification
//! rules in `readroom-domain`, which are pure functions over what this crate returns.
#![deny(missing_docs)]

pub mod dicom;
pub mod error;
pub mod gate;
pub mod inspect;
pub mod pack;
pub mod source;
pub mod synth;

pub use error::BundleError;
pub use inspect::{
    DicomAttribute, DicomInfo, FileReport, ImageFormat, ImageLimits, InspectError, MetadataItem,
};
pub use pack::PackWriter;
pub use source::{BundleSource, EntryInfo, SourceKind, SourceLimits};
