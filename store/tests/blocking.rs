//! The std::io adapters over a real local store, driven from `spawn_blocking`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use readroom_store::blocking::{RangeReader, UploadWriter};
use readroom_store::local::LocalStore;
use readroom_store::{ObjectStore, StoreError};

const BLOCK: u64 = 64 * 1024;

/// Deterministic pseudo-random bytes (splitmix64).
fn pseudo_random_bytes(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(length + 8);
    while bytes.len() < length {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^= mixed >> 31;
        bytes.extend_from_slice(&mixed.to_le_bytes());
    }
    bytes.truncate(length);
    bytes
}

async fn store_with(key: &str, data: &[u8]) -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    store.put(key, Bytes::copy_from_slice(data)).await.unwrap();
    (dir, Arc::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reader_caches_aligned_blocks() {
    let data = pseudo_random_bytes(1024 * 1024 + 123, 1);
    let (_dir, store) = store_with("obj", &data).await;
    let handle = tokio::runtime::Handle::current();
    let expected = data.clone();
    tokio::task::spawn_blocking(move || {
        let mut reader = RangeReader::new(store, "obj", expected.len() as u64, handle, 0);
        let stats = reader.stats();
        let mut buffer = [0u8; 100];

        reader.seek(SeekFrom::Start(1000)).unwrap();
        reader.read_exact(&mut buffer).unwrap();
        assert_eq!(&buffer[..], &expected[1000..1100]);
        assert_eq!((reader.requests(), reader.bytes_fetched()), (1, BLOCK));

        // Same block: served from the cache.
        reader.seek(SeekFrom::Current(500)).unwrap();
        reader.read_exact(&mut buffer).unwrap();
        assert_eq!(&buffer[..], &expected[1600..1700]);
        assert_eq!((reader.requests(), reader.bytes_fetched()), (1, BLOCK));

        // The short last block.
        let end = reader.seek(SeekFrom::End(-100)).unwrap();
        assert_eq!(end, expected.len() as u64 - 100);
        reader.read_exact(&mut buffer).unwrap();
        assert_eq!(&buffer[..], &expected[expected.len() - 100..]);
        assert_eq!(
            (reader.requests(), reader.bytes_fetched()),
            (2, BLOCK + 123)
        );
        assert_eq!(reader.read(&mut buffer).unwrap(), 0, "end of object");

        // A read straddling two blocks fetches both in one request.
        reader.seek(SeekFrom::Start(5 * BLOCK - 50)).unwrap();
        reader.read_exact(&mut buffer).unwrap();
        let start = (5 * BLOCK - 50) as usize;
        assert_eq!(&buffer[..], &expected[start..start + 100]);
        assert_eq!(
            (stats.requests(), stats.bytes_fetched()),
            (3, 3 * BLOCK + 123)
        );

        // Reading on sequentially in 4 KiB reads doubles the fetch each time it continues the
        // previous one: blocks 6-7, then 8-11, then 12-15 (16 is cached already).
        let mut rest = Vec::new();
        let mut piece = [0u8; 4096];
        loop {
            let count = reader.read(&mut piece).unwrap();
            if count == 0 {
                break;
            }
            rest.extend_from_slice(&piece[..count]);
        }
        assert_eq!(&rest[..], &expected[start + 100..]);
        assert_eq!(stats.requests(), 6);
        // Everything but blocks 1-3 was fetched, each block once.
        assert_eq!(stats.bytes_fetched(), expected.len() as u64 - 3 * BLOCK);

        assert!(
            reader
                .seek(SeekFrom::Current(-(expected.len() as i64) - 1))
                .is_err()
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reader_backward_scan_in_small_windows_costs_one_request() {
    // What zip does to find the end of central directory: 1 KiB windows backwards from the end.
    let data = pseudo_random_bytes(300 * 1024, 2);
    let (_dir, store) = store_with("bundle.zip", &data).await;
    let handle = tokio::runtime::Handle::current();
    let expected = data.clone();
    let stats = tokio::task::spawn_blocking(move || {
        let mut reader = RangeReader::new(store, "bundle.zip", expected.len() as u64, handle, 0);
        let mut window = [0u8; 1024];
        for step in 1..=40u64 {
            let position = expected.len() as u64 - step * 1024;
            reader.seek(SeekFrom::Start(position)).unwrap();
            reader.read_exact(&mut window).unwrap();
            assert_eq!(
                &window[..],
                &expected[position as usize..position as usize + 1024]
            );
        }
        reader.stats()
    })
    .await
    .unwrap();
    // 40 KiB back from the end stays inside the last 64 KiB block (300 KiB = 4 blocks + 44 KiB).
    assert_eq!(stats.requests(), 1);
    assert_eq!(stats.bytes_fetched(), 300 * 1024 - 4 * BLOCK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reader_reports_store_errors_as_io_errors() {
    let (_dir, store) = store_with("present", b"abc").await;
    let handle = tokio::runtime::Handle::current();
    let error = tokio::task::spawn_blocking(move || {
        // The caller claims a size the object does not have, as after a concurrent replacement.
        let mut reader = RangeReader::new(store, "present", 10, handle, 4);
        let mut buffer = [0u8; 10];
        reader.read_exact(&mut buffer).unwrap_err()
    })
    .await
    .unwrap();
    let inner = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<StoreError>());
    assert!(
        matches!(inner, Some(StoreError::RangeNotSatisfiable { size: 3, .. })),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_writer_round_trips_and_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(dir.path()).unwrap());
    let data = pseudo_random_bytes(3 * 1024 * 1024 + 17, 3);
    let upload = store.begin_upload("out/data.age").await.unwrap();
    let handle = tokio::runtime::Handle::current();
    let to_write = data.clone();
    let check_store = Arc::clone(&store);
    let meta = tokio::task::spawn_blocking(move || {
        let mut writer = UploadWriter::new(upload, handle.clone(), 256 * 1024);
        for piece in to_write.chunks(10_000) {
            writer.write_all(piece).unwrap();
        }
        writer.flush().unwrap();
        let visible_early = handle.block_on(check_store.head("out/data.age"));
        assert!(matches!(visible_early, Err(StoreError::NotFound { .. })));
        writer.finish()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(store.get("out/data.age").await.unwrap(), Bytes::from(data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_writer_abort_and_drop_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(dir.path()).unwrap());
    let aborted = store.begin_upload("aborted").await.unwrap();
    let dropped = store.begin_upload("dropped").await.unwrap();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut writer = UploadWriter::new(aborted, handle.clone(), 1024);
        writer.write_all(&[1; 5000]).unwrap();
        writer.abort().unwrap();
        let mut writer = UploadWriter::new(dropped, handle, 1024);
        writer.write_all(&[2; 5000]).unwrap();
        drop(writer);
    })
    .await
    .unwrap();
    // The dropped writer aborts on a spawned task; give it a moment.
    let tmp = dir.path().join(".tmp");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(&tmp).unwrap().next().is_some() {
        assert!(Instant::now() < deadline, "temporary files left behind");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.list("").await.unwrap().is_empty());
}
