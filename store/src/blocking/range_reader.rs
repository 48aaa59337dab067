//! [`RangeReader`]: `Read + Seek` over a stored object, with an aligned block cache.

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::runtime::Handle;

use crate::ObjectStore;

/// The default block size: one age STREAM chunk of plaintext.
pub const DEFAULT_BLOCK_SIZE: usize = 64 * 1024;

/// How many blocks the cache keeps.
pub const CACHE_BLOCKS: usize = 16;

/// The most blocks fetched by one request (sequential read-ahead and large reads).
pub const MAX_FETCH_BLOCKS: usize = 8;

/// Counters of what a [`RangeReader`] fetched; shared, so they can be read after the reader was
/// moved into a decryptor or archive reader.
#[derive(Debug, Default)]
pub struct FetchStats {
    bytes_fetched: AtomicU64,
    requests: AtomicU64,
}

impl FetchStats {
    /// Bytes received from the store so far.
    pub fn bytes_fetched(&self) -> u64 {
        self.bytes_fetched.load(Ordering::Relaxed)
    }

    /// Ranged reads sent to the store so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn record(&self, bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_fetched.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// `Read + Seek` over one object of an [`ObjectStore`], for use in `spawn_blocking`.
///
/// Reads are served from a cache of [`CACHE_BLOCKS`] blocks aligned to `block_size`.
/// A miss fetches the missing block with one ranged read; when the reader is moving forward
/// through the object (the miss is at the block right after the previous fetch) the next fetch
/// covers twice as many blocks, up to [`MAX_FETCH_BLOCKS`], and a read larger than a block fetches
/// the blocks it needs in one request.
/// So a zip EOCD scan in 1 KiB steps costs one request, and a sequential read of a large entry
/// costs a logarithmic number of requests rather than one per block.
pub struct RangeReader {
    store: Arc<dyn ObjectStore>,
    key: String,
    size: u64,
    handle: Handle,
    block_size: u64,
    position: u64,
    /// Cached blocks by index, most recently used first.
    cache: VecDeque<(u64, Bytes)>,
    /// Blocks to fetch on the next miss if it continues the previous fetch.
    readahead_blocks: u64,
    /// The block index just after the last fetched run.
    next_sequential_block: Option<u64>,
    stats: Arc<FetchStats>,
}

impl RangeReader {
    /// Creates a reader over `key`, whose size (from [`ObjectStore::head`]) is `size`.
    ///
    /// `block_size` is the fetch and cache granularity; 0 means [`DEFAULT_BLOCK_SIZE`].
    pub fn new(
        store: Arc<dyn ObjectStore>,
        key: &str,
        size: u64,
        handle: Handle,
        block_size: usize,
    ) -> Self {
        let block_size = if block_size == 0 {
            DEFAULT_BLOCK_SIZE
        } else {
            block_size
        };
        RangeReader {
            store,
            key: key.to_owned(),
            size,
            handle,
            block_size: block_size as u64,
            position: 0,
            cache: VecDeque::with_capacity(CACHE_BLOCKS),
            readahead_blocks: 1,
            next_sequential_block: None,
            stats: Arc::new(FetchStats::default()),
        }
    }

    /// Bytes received from the store so far.
    pub fn bytes_fetched(&self) -> u64 {
        self.stats.bytes_fetched()
    }

    /// Ranged reads sent to the store so far.
    pub fn requests(&self) -> u64 {
        self.stats.requests()
    }

    /// The shared counters, still readable after the reader is moved elsewhere.
    pub fn stats(&self) -> Arc<FetchStats> {
        Arc::clone(&self.stats)
    }

    /// The object's size, as given to [`RangeReader::new`].
    pub fn size(&self) -> u64 {
        self.size
    }

    fn block_count(&self) -> u64 {
        self.size.div_ceil(self.block_size)
    }

    /// Returns the cached block `index`, marking it most recently used.
    fn cached_block(&mut self, index: u64) -> Option<Bytes> {
        let slot = self.cache.iter().position(|(cached, _)| *cached == index)?;
        let entry = self.cache.remove(slot)?;
        let block = entry.1.clone();
        self.cache.push_front(entry);
        Some(block)
    }

    fn is_cached(&self, index: u64) -> bool {
        self.cache.iter().any(|(cached, _)| *cached == index)
    }

    /// Returns block `index`, fetching it (and possibly following blocks) on a miss.
    /// `wanted_bytes` is how much the current read still wants, starting inside this block.
    fn block(&mut self, index: u64, wanted_bytes: u64) -> io::Result<Bytes> {
        if let Some(block) = self.cached_block(index) {
            return Ok(block);
        }
        let is_sequential = self.next_sequential_block == Some(index);
        self.readahead_blocks = if is_sequential {
            (self.readahead_blocks * 2).min(MAX_FETCH_BLOCKS as u64)
        } else {
            1
        };
        let needed_by_read = wanted_bytes.div_ceil(self.block_size).max(1);
        let mut count = self
            .readahead_blocks
            .max(needed_by_read)
            .min(MAX_FETCH_BLOCKS as u64);
        count = count.min(self.block_count() - index);
        // Do not fetch again what is already cached.
        if let Some(first_cached) = (1..count).find(|offset| self.is_cached(index + offset)) {
            count = first_cached;
        }
        let start = index * self.block_size;
        let end = ((index + count) * self.block_size).min(self.size);
        let fetched = self
            .handle
            .block_on(self.store.get_range(&self.key, start..end))
            .map_err(io::Error::other)?;
        self.stats.record(fetched.len() as u64);
        if fetched.len() as u64 != end - start {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "store returned {} bytes for range {start}..{end} of {:?}",
                    fetched.len(),
                    self.key
                ),
            ));
        }
        self.next_sequential_block = Some(index + count);
        // Insert the last block first so the requested one ends up most recently used.
        for offset in (0..count).rev() {
            let block_start = (offset * self.block_size) as usize;
            let block_end = (((offset + 1) * self.block_size) as usize).min(fetched.len());
            self.cache
                .push_front((index + offset, fetched.slice(block_start..block_end)));
        }
        self.cache.truncate(CACHE_BLOCKS);
        Ok(fetched.slice(0..(self.block_size as usize).min(fetched.len())))
    }
}

impl Read for RangeReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buffer.len() && self.position < self.size {
            let index = self.position / self.block_size;
            let offset_in_block = self.position - index * self.block_size;
            let wanted_bytes = (buffer.len() - filled) as u64 + offset_in_block;
            let block = self.block(index, wanted_bytes)?;
            let available = &block[offset_in_block as usize..];
            let count = available.len().min(buffer.len() - filled);
            buffer[filled..filled + count].copy_from_slice(&available[..count]);
            filled += count;
            self.position += count as u64;
        }
        Ok(filled)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        let (base, offset) = match target {
            SeekFrom::Start(position) => {
                self.position = position;
                return Ok(position);
            }
            SeekFrom::End(offset) => (self.size, offset),
            SeekFrom::Current(offset) => (self.position, offset),
        };
        let Some(position) = base.checked_add_signed(offset) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "seek to {base} {offset:+} is outside the object {:?}",
                    self.key
                ),
            ));
        };
        self.position = position;
        Ok(position)
    }
}

impl std::fmt::Debug for RangeReader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RangeReader")
            .field("store", &self.store.describe())
            .field("key", &self.key)
            .field("size", &self.size)
            .field("position", &self.position)
            .field("block_size", &self.block_size)
            .field("stats", &self.stats)
            .finish()
    }
}
