//! Synchronous `std::io` adapters over an [`ObjectStore`](crate::ObjectStore), for code running in
//! `tokio::task::spawn_blocking` (the zip and age crates only speak `Read + Seek` and `Write`).
//!
//! - [`RangeReader`]: `Read + Seek` over an object, fetching aligned blocks with ranged reads and
//!   keeping a small LRU cache of them, so many small reads do not become many small requests.
//! - [`UploadWriter`]: `Write` into an [`Upload`](crate::Upload), handing chunks to a task on the
//!   runtime through a bounded channel so memory stays bounded and writing overlaps uploading.
//!
//! Both drive async work with the [`tokio::runtime::Handle`] they are given and therefore must not
//! be used from inside an async task (tokio panics on `block_on` there); use them from
//! `spawn_blocking` or a plain thread.

mod range_reader;
mod upload_writer;

pub use range_reader::{
    CACHE_BLOCKS, DEFAULT_BLOCK_SIZE, FetchStats, MAX_FETCH_BLOCKS, RangeReader,
};
pub use upload_writer::{DEFAULT_CHUNK_SIZE, UploadWriter};
