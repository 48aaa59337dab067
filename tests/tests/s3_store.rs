//! The S3 backend against a real `s3s-fs` server on loopback (see `readroom_tests::s3s`).

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use readroom_store::blocking::{RangeReader, UploadWriter};
use readroom_store::s3::{MIN_PART_SIZE, S3Config, S3Store};
use readroom_store::{ObjectMeta, ObjectStore, StoreError};
use readroom_tests::s3s::{REGION, S3sServer};
use readroom_tests::tls::TlsFront;

const MIB: usize = 1024 * 1024;
const BLOCK: u64 = 64 * 1024;
const BUCKET: &str = "readroom-test";

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

fn config_for(server: &S3sServer) -> S3Config {
    S3Config {
        endpoint: Some(server.endpoint.clone()),
        region: REGION.to_owned(),
        bucket: BUCKET.to_owned(),
        access_key_id: Some(server.access_key.clone()),
        secret_access_key: Some(server.secret_key.clone()),
        force_path_style: true,
        part_size: MIN_PART_SIZE,
        ca_pem: None,
    }
}

/// A fresh server with the test bucket created, and a store on it.
async fn server_and_store() -> (S3sServer, S3Store) {
    let server = S3sServer::start().expect("start s3s-fs");
    let store = S3Store::connect(config_for(&server))
        .await
        .expect("connect");
    store
        .create_bucket_if_missing()
        .await
        .expect("create bucket");
    (server, store)
}

/// Waits until s3s-fs has no multipart bookkeeping files left (aborts on drop run on a task).
async fn wait_for_no_pending_uploads(server: &S3sServer) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pending = server.pending_upload_files().unwrap();
        if pending.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "multipart uploads left behind: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An `https://` endpoint whose certificate a private CA signed (a hospital's own PKI): the
/// client (rustls on ring) stores and reads back through TLS when the configuration names that
/// CA, refuses the endpoint without it, and a CA "certificate" that is not one is a
/// configuration error before any connection (the SDK's TLS client would panic on it).
#[tokio::test]
async fn an_https_endpoint_of_a_private_ca_is_trusted_only_with_that_ca() {
    let server = S3sServer::start().expect("start s3s-fs");
    let backend = server
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("s3s-fs listens on an address");
    let front = TlsFront::start(backend).await.expect("TLS front");
    let config = S3Config {
        endpoint: Some(front.endpoint.clone()),
        ca_pem: Some(front.ca_pem.clone().into_bytes()),
        ..config_for(&server)
    };
    let store = S3Store::connect(config.clone()).await.expect("connect");
    store
        .create_bucket_if_missing()
        .await
        .expect("create the bucket over https");
    let data = Bytes::from(pseudo_random_bytes(3 * MIB + 17, 7));
    store.put("tls/object", data.clone()).await.expect("put");
    assert_eq!(
        store
            .get_range("tls/object", 1000..2000)
            .await
            .expect("ranged read"),
        data.slice(1000..2000)
    );

    let untrusted = S3Store::connect(S3Config {
        ca_pem: None,
        ..config.clone()
    })
    .await
    .expect("connect");
    let refused = untrusted
        .check()
        .await
        .expect_err("an unknown CA is refused");
    assert!(
        refused.to_string().contains(&front.endpoint)
            && refused.to_string().contains("invalid peer certificate"),
        "names the endpoint and the certificate: {refused}"
    );

    let not_a_certificate =
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    for pem in [&b"no PEM here"[..], &not_a_certificate[..]] {
        let error = S3Store::connect(S3Config {
            ca_pem: Some(pem.to_vec()),
            ..config.clone()
        })
        .await
        .expect_err("refused before connecting");
        assert!(
            matches!(&error, StoreError::Config { detail } if detail.starts_with("the S3 CA certificates: ")),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn bucket_creation_is_idempotent_and_check_reports_a_missing_bucket() {
    let server = S3sServer::start().unwrap();
    let store = S3Store::connect(config_for(&server)).await.unwrap();
    let error = store.check().await.unwrap_err();
    assert!(
        matches!(&error, StoreError::BucketNotFound { bucket, .. } if bucket == BUCKET),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("bucket \"{BUCKET}\" does not exist at {}", server.endpoint)
    );

    store.create_bucket_if_missing().await.unwrap();
    store.create_bucket_if_missing().await.unwrap();
    store.check().await.unwrap();
    assert!(store.list("").await.unwrap().is_empty());
    assert_eq!(
        store.describe(),
        format!("s3://{BUCKET} at {}", server.endpoint)
    );
}

#[tokio::test]
async fn multipart_upload_round_trips_with_byte_exact_ranges() {
    let (server, store) = server_and_store().await;
    let data = pseudo_random_bytes(12 * MIB, 7);
    let key = "bundles/EYE-2026/S000123-V1.age";

    let mut upload = store.begin_upload(key).await.unwrap();
    for chunk in data.chunks(MIB) {
        upload.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    // Two 5 MiB parts are on the server, the last 2 MiB are still buffered, and nothing is visible.
    let pending = server.pending_upload_files().unwrap();
    assert_eq!(
        pending
            .iter()
            .filter(|name| name.contains(".part-"))
            .count(),
        2,
        "{pending:?}"
    );
    assert!(matches!(
        store.head(key).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.list("").await.unwrap().is_empty());

    let meta = upload.finish().await.unwrap();
    assert_eq!(
        meta,
        ObjectMeta {
            key: key.to_owned(),
            size: data.len() as u64
        }
    );
    assert!(server.pending_upload_files().unwrap().is_empty());
    assert_eq!(store.head(key).await.unwrap(), meta);
    assert_eq!(store.list("bundles/").await.unwrap(), vec![meta.clone()]);

    let part = 5 * MIB as u64;
    let size = data.len() as u64;
    let ranges = [
        0..100,
        part - 10..part + 10,
        2 * part - 1..2 * part + 1,
        size - 100..size,
        0..size,
        3..3,
    ];
    for range in ranges {
        let bytes = store.get_range(key, range.clone()).await.unwrap();
        assert!(
            bytes[..] == data[range.start as usize..range.end as usize],
            "range {range:?} differs"
        );
    }
    assert!(store.get(key).await.unwrap() == data[..]);

    let past_end = store.get_range(key, size - 10..size + 1).await.unwrap_err();
    assert!(
        matches!(&past_end, StoreError::RangeNotSatisfiable { range, size: reported, .. } if *range == (size - 10..size + 1) && *reported == size),
        "{past_end:?}"
    );
    let beyond = store.get_range(key, size + 5..size + 10).await.unwrap_err();
    assert!(
        matches!(beyond, StoreError::RangeNotSatisfiable { size: reported, .. } if reported == size),
        "{beyond:?}"
    );
}

#[tokio::test]
async fn small_objects_use_a_single_put() {
    let (server, store) = server_and_store().await;
    let mut upload = store.begin_upload("small/one").await.unwrap();
    upload.write(Bytes::from_static(b"hello ")).await.unwrap();
    upload
        .write(Bytes::from(vec![b'x'; MIN_PART_SIZE - 7]))
        .await
        .unwrap();
    // Just under one part: nothing has been sent yet, not even CreateMultipartUpload.
    assert!(server.pending_upload_files().unwrap().is_empty());
    assert_eq!(
        upload.finish().await.unwrap().size,
        MIN_PART_SIZE as u64 - 1
    );
    assert_eq!(
        &store.get_range("small/one", 0..7).await.unwrap()[..],
        b"hello x"
    );

    let empty = store.begin_upload("small/empty").await.unwrap();
    assert_eq!(empty.finish().await.unwrap().size, 0);
    assert_eq!(store.head("small/empty").await.unwrap().size, 0);

    let meta = store
        .put("small/two", Bytes::from_static(b"checkpoint"))
        .await
        .unwrap();
    assert_eq!(
        meta,
        ObjectMeta {
            key: "small/two".to_owned(),
            size: 10
        }
    );
    assert_eq!(
        store.get("small/two").await.unwrap(),
        Bytes::from_static(b"checkpoint")
    );
    let keys: Vec<String> = store
        .list("small/")
        .await
        .unwrap()
        .into_iter()
        .map(|meta| meta.key)
        .collect();
    assert_eq!(keys, ["small/empty", "small/one", "small/two"]);

    store.delete("small/two").await.unwrap();
    store.delete("small/two").await.unwrap();
    assert_eq!(store.list("small/t").await.unwrap(), vec![]);
}

#[tokio::test]
async fn abort_and_drop_leave_nothing_behind() {
    let (server, store) = server_and_store().await;
    let mut upload = store.begin_upload("aborted").await.unwrap();
    upload
        .write(Bytes::from(pseudo_random_bytes(6 * MIB, 1)))
        .await
        .unwrap();
    assert!(
        !server.pending_upload_files().unwrap().is_empty(),
        "the first part should be on the server"
    );
    upload.abort().await.unwrap();
    assert!(server.pending_upload_files().unwrap().is_empty());

    let mut dropped = store.begin_upload("dropped").await.unwrap();
    dropped
        .write(Bytes::from(pseudo_random_bytes(6 * MIB, 2)))
        .await
        .unwrap();
    drop(dropped);
    wait_for_no_pending_uploads(&server).await;

    assert!(store.list("").await.unwrap().is_empty());
    assert!(matches!(
        store.head("aborted").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn missing_objects_and_bad_keys_are_specific_errors() {
    let (_server, store) = server_and_store().await;
    for result in [
        store.head("no/such").await.map(|_| ()),
        store.get("no/such").await.map(|_| ()),
        store.get_range("no/such", 0..10).await.map(|_| ()),
        store.get_range("no/such", 0..0).await.map(|_| ()),
    ] {
        assert!(
            matches!(&result, Err(StoreError::NotFound { key }) if key == "no/such"),
            "{result:?}"
        );
    }
    let message = store.head("no/such").await.unwrap_err().to_string();
    assert_eq!(message, "object \"no/such\" not found");
    store.delete("no/such").await.unwrap();
    for key in ["../x", "/abs", "a//b"] {
        assert!(
            matches!(store.get(key).await, Err(StoreError::InvalidKey { .. })),
            "{key}"
        );
        assert!(
            matches!(
                store.begin_upload(key).await,
                Err(StoreError::InvalidKey { .. })
            ),
            "{key}"
        );
    }
}

#[tokio::test]
async fn wrong_credentials_are_access_denied_and_never_echo_the_secret() {
    let (server, _store) = server_and_store().await;
    let wrong_secret = "wrong-secret-0f3a9c";
    let wrong_key = "WRONGKEY0f3a9c";
    let configs = [
        S3Config {
            secret_access_key: Some(wrong_secret.to_owned()),
            ..config_for(&server)
        },
        S3Config {
            access_key_id: Some(wrong_key.to_owned()),
            ..config_for(&server)
        },
    ];
    for config in configs {
        let printed_config = format!("{config:?}");
        assert!(
            !printed_config.contains(&server.secret_key) && !printed_config.contains(wrong_secret)
        );
        let store = S3Store::connect(config).await.unwrap();
        let results = [
            store.check().await,
            store.put("k", Bytes::from_static(b"x")).await.map(|_| ()),
            store.head("k").await.map(|_| ()),
            store.get_range("k", 0..1).await.map(|_| ()),
        ];
        for result in results {
            let error = result.unwrap_err();
            assert!(
                matches!(error, StoreError::AccessDenied { .. }),
                "{error:?}"
            );
            let message = format!("{error} {error:?}");
            assert!(!message.contains(wrong_secret), "{message}");
            assert!(!message.contains(&server.secret_key), "{message}");
            assert!(
                message.starts_with("object store denied access"),
                "{message}"
            );
        }
    }
}

#[tokio::test]
async fn unreachable_endpoint_fails_fast() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = S3Config {
        endpoint: Some(endpoint.clone()),
        bucket: BUCKET.to_owned(),
        access_key_id: Some("key".to_owned()),
        secret_access_key: Some("secret-never-shown".to_owned()),
        force_path_style: true,
        ..S3Config::default()
    };
    let store = S3Store::connect(config).await.unwrap();
    let started = Instant::now();
    let error = store.check().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(
        matches!(&error, StoreError::Unreachable { endpoint: reported, .. } if *reported == endpoint),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("object store at {endpoint} is unreachable: ")),
        "{message}"
    );
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );
    assert!(!message.contains("secret-never-shown"));
    assert!(matches!(
        store.get("k").await,
        Err(StoreError::Unreachable { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reader_over_s3_fetches_whole_blocks() {
    let (_server, store) = server_and_store().await;
    let data = pseudo_random_bytes(MIB, 11);
    store
        .put("reader", Bytes::from(data.clone()))
        .await
        .unwrap();
    let size = store.head("reader").await.unwrap().size;
    let store: Arc<dyn ObjectStore> = Arc::new(store);
    let handle = tokio::runtime::Handle::current();
    let stats = tokio::task::spawn_blocking(move || {
        let mut reader = RangeReader::new(store, "reader", size, handle, 64 * 1024);
        let mut buffer = [0u8; 100];
        reader.seek(SeekFrom::Start(70_000)).unwrap();
        reader.read_exact(&mut buffer).unwrap();
        assert_eq!(&buffer[..], &data[70_000..70_100]);
        assert_eq!((reader.requests(), reader.bytes_fetched()), (1, BLOCK));

        reader.seek(SeekFrom::Current(-1_000)).unwrap();
        reader.read_exact(&mut buffer).unwrap();
        assert_eq!(&buffer[..], &data[69_100..69_200]);
        assert_eq!(reader.requests(), 1);

        reader.seek(SeekFrom::End(-10)).unwrap();
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(&tail[..], &data[data.len() - 10..]);
        assert_eq!((reader.requests(), reader.bytes_fetched()), (2, 2 * BLOCK));

        reader.seek(SeekFrom::Start(70_100)).unwrap();
        reader.read_exact(&mut buffer).unwrap();
        assert_eq!(&buffer[..], &data[70_100..70_200]);
        reader.stats()
    })
    .await
    .unwrap();
    assert_eq!((stats.requests(), stats.bytes_fetched()), (2, 2 * BLOCK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_writer_streams_20_mib_through_std_io_write() {
    let (server, store) = server_and_store().await;
    let data = pseudo_random_bytes(20 * MIB, 5);
    let upload = store.begin_upload("written/big.age").await.unwrap();
    let handle = tokio::runtime::Handle::current();
    let to_write = data.clone();
    let meta = tokio::task::spawn_blocking(move || {
        let mut writer = UploadWriter::new(upload, handle, MIB);
        for piece in to_write.chunks(64 * 1024 + 3) {
            writer.write_all(piece).unwrap();
        }
        writer.finish()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert!(server.pending_upload_files().unwrap().is_empty());
    assert!(store.get("written/big.age").await.unwrap() == data[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_writer_reports_a_failed_upload_on_the_next_write() {
    let (server, _store) = server_and_store().await;
    let config = S3Config {
        secret_access_key: Some("not-the-secret".to_owned()),
        ..config_for(&server)
    };
    let store = S3Store::connect(config).await.unwrap();
    let upload = store.begin_upload("denied").await.unwrap();
    let handle = tokio::runtime::Handle::current();
    let (write_error, finish_error) = tokio::task::spawn_blocking(move || {
        let mut writer = UploadWriter::new(upload, handle, MIB);
        let piece = vec![0u8; 256 * 1024];
        // The first full part makes the upload contact the server and fail; later writes see it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let write_error = loop {
            if let Err(error) = writer.write_all(&piece) {
                break error;
            }
            assert!(Instant::now() < deadline, "writes kept succeeding");
        };
        (write_error, writer.finish().unwrap_err())
    })
    .await
    .unwrap();
    assert!(
        write_error
            .to_string()
            .starts_with("object store denied access"),
        "{write_error}"
    );
    assert!(
        matches!(finish_error, StoreError::AccessDenied { .. }),
        "{finish_error:?}"
    );
}

/// A TCP forwarder to `upstream` that keeps a copy of every byte clients send through it.
async fn recording_proxy(upstream: String) -> (String, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let record = record.clone();
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    while let Ok(n) = client_read.read(&mut buffer).await {
                        if n == 0 || server_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                        record.lock().unwrap().extend_from_slice(&buffer[..n]);
                    }
                    let _ = server_write.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                };
                tokio::join!(up, down);
            });
        }
    });
    (url, seen)
}

/// A server and a store that reaches it through [`recording_proxy`], and what was sent.
async fn recorded_store() -> (
    S3sServer,
    S3Store,
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
) {
    let (server, _) = server_and_store().await;
    let (proxy, sent) = recording_proxy(server.endpoint.clone()).await;
    let store = S3Store::connect(S3Config {
        endpoint: Some(proxy),
        ..config_for(&server)
    })
    .await
    .unwrap();
    (server, store, sent)
}

/// Issue 19: an S3 Object Lock bucket (where the audit checkpoints go) refuses a `PutObject`
/// without a checksum. `put` sends `x-amz-checksum-sha256` of the data, and the server checks
/// such a checksum against the bytes (a wrong one is refused). s3s-fs has no Object Lock, so
/// the lock's own refusal of a checksum-less PUT is not exercised here.
#[tokio::test]
async fn single_puts_carry_a_checksum_the_server_checks() {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use base64::Engine as _;
    use sha2::Digest as _;

    let (server, store, sent) = recorded_store().await;
    let data = Bytes::from_static(b"{\"seq\": 42, \"head\": \"ab12\"}");
    store
        .put("checkpoints/42.json", data.clone())
        .await
        .unwrap();

    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .region(Region::new(REGION))
            .endpoint_url(&server.endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                &server.access_key,
                &server.secret_key,
                None,
                None,
                "test",
            ))
            .build(),
    );
    let expected = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&data));
    // What went over the wire: the SHA-256 of the data, as a header or a trailer (s3s-fs does
    // not return stored checksums, so this is where it can be seen).
    let wire = String::from_utf8_lossy(&sent.lock().unwrap()).to_ascii_lowercase();
    assert!(wire.contains("x-amz-checksum-sha256"), "{wire}");
    assert!(wire.contains(&expected.to_ascii_lowercase()), "{wire}");
    assert_eq!(store.get("checkpoints/42.json").await.unwrap(), data);
    // The server checks what it is given: a checksum of other bytes is refused.
    let wrong = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(b"other"));
    let refused = client
        .put_object()
        .bucket(BUCKET)
        .key("checkpoints/43.json")
        .checksum_sha256(wrong)
        .body(data.into())
        .send()
        .await;
    // Refused by the server (a service error), not by the client before it sent anything.
    assert!(
        matches!(refused, Err(aws_sdk_s3::error::SdkError::ServiceError(_))),
        "a wrong checksum was not refused by the server: {refused:?}"
    );
}

/// Issue 19: every byte readroom uploads carries its checksum, not only the audit checkpoints.
/// A multipart upload declares SHA-256 when it is created, each part carries the SHA-256 of its
/// bytes, and the completion lists them (the composite checksum an Object Lock bucket and AWS's
/// own integrity check need); an upload smaller than one part is a single `PutObject` with its
/// checksum. s3s-fs does not check part checksums or return them, so the wire is where they are
/// seen; the server's check of a wrong checksum is in the test above.
#[tokio::test]
async fn every_uploaded_part_carries_the_checksum_of_its_bytes() {
    use base64::Engine as _;
    use sha2::Digest as _;

    let (_server, store, sent) = recorded_store().await;
    let sha256 = |bytes: &[u8]| {
        base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(bytes))
            .to_ascii_lowercase()
    };

    // 12 MiB in 1 MiB writes: parts of 5, 5 and 2 MiB.
    let data = pseudo_random_bytes(12 * MIB, 11);
    let mut upload = store.begin_upload("bundles/large.age").await.unwrap();
    for chunk in data.chunks(MIB) {
        upload.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    upload.finish().await.unwrap();
    let wire =
        String::from_utf8_lossy(&std::mem::take(&mut *sent.lock().unwrap())).to_ascii_lowercase();
    assert!(
        wire.contains("x-amz-checksum-algorithm: sha256"),
        "CreateMultipartUpload declares no algorithm"
    );
    let parts: Vec<&[u8]> = data.chunks(5 * MIB).collect();
    assert_eq!(parts.len(), 3);
    for (index, part) in parts.iter().enumerate() {
        let checksum = sha256(part);
        assert!(
            wire.contains(&format!("x-amz-checksum-sha256: {checksum}")),
            "part {} was sent without the checksum of its bytes",
            index + 1
        );
        assert!(
            wire.contains(&format!("<checksumsha256>{checksum}</checksumsha256>")),
            "the completion does not list part {}'s checksum",
            index + 1
        );
    }
    assert!(store.get("bundles/large.age").await.unwrap() == data[..]);

    // Smaller than one part: one PutObject, with its checksum.
    let small = pseudo_random_bytes(MIB, 12);
    sent.lock().unwrap().clear();
    let mut upload = store.begin_upload("bundles/small.age").await.unwrap();
    upload.write(Bytes::copy_from_slice(&small)).await.unwrap();
    upload.finish().await.unwrap();
    let wire = String::from_utf8_lossy(&sent.lock().unwrap()).to_ascii_lowercase();
    assert!(
        wire.starts_with("put /"),
        "{}",
        &wire[..wire.len().min(200)]
    );
    assert!(
        wire.contains(&format!("x-amz-checksum-sha256: {}", sha256(&small))),
        "the single PutObject was sent without its checksum"
    );
    assert_eq!(store.get("bundles/small.age").await.unwrap(), small);
}
