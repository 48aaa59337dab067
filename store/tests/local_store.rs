//! The local directory backend against a real temporary directory.

use std::path::Path;

use bytes::Bytes;
use readroom_store::local::LocalStore;
use readroom_store::{ObjectMeta, ObjectStore, StoreError};

fn open_store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LocalStore::open(dir.path().join("store")).expect("open store");
    (dir, store)
}

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(
                    path.strip_prefix(dir)
                        .expect("prefix")
                        .display()
                        .to_string(),
                );
            }
        }
    }
    files.sort();
    files
}

fn meta(key: &str, size: u64) -> ObjectMeta {
    ObjectMeta {
        key: key.to_owned(),
        size,
    }
}

#[tokio::test]
async fn put_get_head_range_list_delete() {
    let (_dir, store) = open_store();
    let data = Bytes::from_static(b"0123456789abcdef");
    assert_eq!(
        store.put("bundles/a.age", data.clone()).await.unwrap(),
        meta("bundles/a.age", 16)
    );
    store
        .put("bundles/b.age", Bytes::from_static(b"b"))
        .await
        .unwrap();
    store.put("checkpoints/1", Bytes::new()).await.unwrap();

    assert_eq!(store.get("bundles/a.age").await.unwrap(), data);
    assert_eq!(
        store.head("bundles/a.age").await.unwrap(),
        meta("bundles/a.age", 16)
    );
    assert_eq!(
        store.get_range("bundles/a.age", 3..7).await.unwrap(),
        Bytes::from_static(b"3456")
    );
    assert_eq!(
        store.get_range("bundles/a.age", 16..16).await.unwrap(),
        Bytes::new()
    );
    assert_eq!(store.get_range("bundles/a.age", 0..16).await.unwrap(), data);

    assert_eq!(
        store.list("").await.unwrap(),
        vec![
            meta("bundles/a.age", 16),
            meta("bundles/b.age", 1),
            meta("checkpoints/1", 0)
        ]
    );
    assert_eq!(
        store.list("bundles/").await.unwrap(),
        vec![meta("bundles/a.age", 16), meta("bundles/b.age", 1)]
    );
    assert_eq!(
        store.list("bundles/a").await.unwrap(),
        vec![meta("bundles/a.age", 16)]
    );
    assert_eq!(store.list("bund").await.unwrap().len(), 2);
    assert!(store.list("nothing/").await.unwrap().is_empty());

    // Overwrite replaces.
    store
        .put("bundles/b.age", Bytes::from_static(b"bbb"))
        .await
        .unwrap();
    assert_eq!(
        store.get("bundles/b.age").await.unwrap(),
        Bytes::from_static(b"bbb")
    );

    store.delete("bundles/a.age").await.unwrap();
    store.delete("bundles/a.age").await.unwrap();
    assert!(
        matches!(store.get("bundles/a.age").await, Err(StoreError::NotFound { key }) if key == "bundles/a.age")
    );
    assert_eq!(
        store.list("bundles/").await.unwrap(),
        vec![meta("bundles/b.age", 3)]
    );
    store.check().await.unwrap();
}

#[tokio::test]
async fn missing_objects_and_out_of_range_reads_are_specific_errors() {
    let (_dir, store) = open_store();
    store
        .put("a/b", Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    assert!(matches!(store.head("nope").await, Err(StoreError::NotFound { key }) if key == "nope"));
    assert!(matches!(
        store.get_range("nope", 0..1).await,
        Err(StoreError::NotFound { .. })
    ));
    // A key that is only a directory (a prefix of other keys) is not an object.
    assert!(matches!(
        store.get("a").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.head("a/b/c").await,
        Err(StoreError::NotFound { .. })
    ));

    let error = store.get_range("a/b", 5..11).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::RangeNotSatisfiable { key, range, size: 10 } if key == "a/b" && *range == (5..11)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "byte range 5..11 of object \"a/b\" is outside the object, which has 10 bytes"
    );
    #[allow(clippy::reversed_empty_ranges)]
    let inverted = store.get_range("a/b", 6..5).await;
    assert!(matches!(
        inverted,
        Err(StoreError::RangeNotSatisfiable { .. })
    ));
    assert!(matches!(
        store.get_range("a/b", 11..11).await,
        Err(StoreError::RangeNotSatisfiable { .. })
    ));
}

#[tokio::test]
async fn upload_is_invisible_until_finish_and_atomic() {
    let (dir, store) = open_store();
    let mut upload = store.begin_upload("exams/x.age").await.unwrap();
    upload.write(Bytes::from_static(b"hello ")).await.unwrap();
    upload.write(Bytes::from_static(b"world")).await.unwrap();
    assert!(matches!(
        store.head("exams/x.age").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.list("").await.unwrap().is_empty());
    let in_progress = files_under(&dir.path().join("store"));
    assert_eq!(in_progress.len(), 1, "{in_progress:?}");
    assert!(in_progress[0].starts_with(".tmp/"), "{in_progress:?}");

    assert_eq!(upload.finish().await.unwrap(), meta("exams/x.age", 11));
    assert_eq!(
        store.get("exams/x.age").await.unwrap(),
        Bytes::from_static(b"hello world")
    );
    assert_eq!(files_under(&dir.path().join("store")), vec!["exams/x.age"]);
}

#[tokio::test]
async fn abort_and_drop_leave_nothing_behind() {
    let (dir, store) = open_store();
    store.put("keep", Bytes::from_static(b"old")).await.unwrap();

    let mut upload = store.begin_upload("keep").await.unwrap();
    upload.write(Bytes::from(vec![7; 100_000])).await.unwrap();
    upload.abort().await.unwrap();
    assert_eq!(store.get("keep").await.unwrap(), Bytes::from_static(b"old"));

    let mut dropped = store.begin_upload("dropped").await.unwrap();
    dropped.write(Bytes::from_static(b"partial")).await.unwrap();
    drop(dropped);

    assert_eq!(files_under(&dir.path().join("store")), vec!["keep"]);
    assert!(
        std::fs::read_dir(dir.path().join("store/.tmp"))
            .unwrap()
            .next()
            .is_none()
    );
    assert_eq!(store.list("").await.unwrap(), vec![meta("keep", 3)]);
}

#[tokio::test]
async fn invalid_keys_are_rejected_before_touching_the_disk() {
    let (dir, store) = open_store();
    let outside = dir.path().join("x");
    for key in [
        "../x",
        "/abs",
        "a//b",
        "",
        "a/./b",
        "a/..",
        "a b",
        "a\\b",
        ".tmp/evil",
        "dir/",
    ] {
        let results = [
            store.put(key, Bytes::from_static(b"x")).await.map(|_| ()),
            store.get(key).await.map(|_| ()),
            store.get_range(key, 0..1).await.map(|_| ()),
            store.head(key).await.map(|_| ()),
            store.delete(key).await,
            store.begin_upload(key).await.map(|_| ()),
        ];
        for result in results {
            match result {
                Err(StoreError::InvalidKey {
                    key: reported,
                    reason,
                }) => {
                    assert_eq!(reported, key);
                    assert!(!reason.is_empty());
                }
                other => panic!("key {key:?} was not rejected: {other:?}"),
            }
        }
    }
    assert!(!outside.exists(), "a traversal key wrote outside the store");
    let message = store.get("../x").await.unwrap_err().to_string();
    assert_eq!(
        message,
        "invalid object key \"../x\": the key has a `..` segment"
    );
}

#[tokio::test]
async fn describe_names_the_directory() {
    let (dir, store) = open_store();
    let canonical = dir.path().join("store").canonicalize().unwrap();
    assert_eq!(store.describe(), format!("local:{}", canonical.display()));
    assert_eq!(store.root(), canonical);
}

#[tokio::test]
async fn open_reports_an_unusable_root() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let error = LocalStore::open(&file).unwrap_err();
    assert!(
        matches!(&error, StoreError::Io { path, .. } if path == &file),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&file.display().to_string()),
        "{error}"
    );
}
