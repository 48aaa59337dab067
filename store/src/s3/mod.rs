//! [`S3Store`]: objects in an S3 bucket (AWS, MinIO, s3s, any S3-compatible server).
//!
//! Uploads are multipart: parts of [`S3Config::part_size`] bytes are sent as they fill, and an
//! object smaller than one part is sent with a single `PutObject` at `finish`.
//! Reads of a byte range are ranged `GetObject`s (`Range: bytes=a-b`).
//!
//! The client is built to fail fast when the store is down: a [`CONNECT_TIMEOUT`] on connecting
//! and at most [`MAX_ATTEMPTS`] attempts per request, instead of the SDK's minute of retries.
//! The SDK computes no request checksum of its own
//! (`RequestChecksumCalculation::WhenRequired`): readroom sends `x-amz-checksum-sha256` itself
//! on every request that carries bytes ([`ObjectStore::put`], and the single `PutObject` or
//! every `UploadPart` of an upload, whose multipart upload declares SHA-256 when it is created,
//! see `upload.rs`). The server checks the bytes it stores against it, and an S3 Object Lock
//! bucket, which refuses uploads without a checksum, accepts them.

mod classify;
mod config;
mod upload;

use std::ops::Range;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use bytes::Bytes;

pub use config::{DEFAULT_PART_SIZE, MIN_PART_SIZE, S3Config};

/// Base64 of the SHA-256 of `data`: the value of `x-amz-checksum-sha256`.
fn sha256_base64(data: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data))
}

use crate::range::check_range;
use crate::{ObjectMeta, ObjectStore, StoreError, Upload, validate_key};
use classify::{Target, classify, error_chain, service_status};
use upload::S3Upload;

/// The SDK's HTTPS client: rustls on ring, trusting the system's roots and `ca_pem` (checked
/// by [`S3Config`]'s validation).
fn https_client(ca_pem: Option<&[u8]>) -> Result<aws_sdk_s3::config::SharedHttpClient, StoreError> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let mut trust = TrustStore::default();
    if let Some(pem) = ca_pem {
        trust = trust.with_pem_certificate(pem.to_vec());
    }
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|err| StoreError::Config {
            detail: format!("the S3 client's TLS settings: {err}"),
        })?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https())
}

/// How long to wait for a TCP (and TLS) connection before calling the store unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one attempt of one request may take in total (a part upload on a slow link included).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Attempts per request, the first included.
pub const MAX_ATTEMPTS: u32 = 2;

/// An [`ObjectStore`] over one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    region: String,
    part_size: usize,
    /// The endpoint for messages, without credentials.
    endpoint: String,
}

impl S3Store {
    /// Builds a client for `config`.
    ///
    /// This checks the configuration but does not contact the server; use [`ObjectStore::check`]
    /// for that.
    /// Without static credentials the SDK's default chain is used (environment, profile, web
    /// identity, instance metadata).
    pub async fn connect(config: S3Config) -> Result<Self, StoreError> {
        config.validate()?;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client(config.ca_pem.as_deref())?)
            .region(Region::new(config.region.clone()))
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        if let (Some(access_key_id), Some(secret_access_key)) =
            (&config.access_key_id, &config.secret_access_key)
        {
            let credentials = Credentials::new(
                access_key_id,
                secret_access_key,
                None,
                None,
                "readroom-config",
            );
            loader = loader.credentials_provider(credentials);
        }
        let shared_config = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared_config)
            .force_path_style(config.force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(S3Store {
            client: Client::from_conf(builder.build()),
            endpoint: config.display_endpoint(),
            bucket: config.bucket,
            region: config.region,
            part_size: config.part_size,
        })
    }

    /// Creates the bucket unless it already exists (and is ours).
    pub async fn create_bucket_if_missing(&self) -> Result<(), StoreError> {
        let head = self.client.head_bucket().bucket(&self.bucket).send().await;
        match head {
            Ok(_) => return Ok(()),
            Err(error) => match service_status(&error) {
                Some((404, _)) => {}
                _ => return Err(classify(error, &self.target("HeadBucket", None))),
            },
        }
        let mut request = self.client.create_bucket().bucket(&self.bucket);
        // AWS wants the region spelled out everywhere but in us-east-1.
        if self.region != "us-east-1" {
            let location = BucketLocationConstraint::from(self.region.as_str());
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(location)
                    .build(),
            );
        }
        let created = request.send().await;
        match created {
            Ok(_) => Ok(()),
            Err(error) => match service_status(&error) {
                // Someone else created it in between.
                Some((_, Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists"))) => Ok(()),
                _ => Err(classify(error, &self.target("CreateBucket", None))),
            },
        }
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn target<'a>(&'a self, operation: &'static str, key: Option<&'a str>) -> Target<'a> {
        Target {
            operation,
            endpoint: &self.endpoint,
            bucket: &self.bucket,
            key,
        }
    }

    /// Reads a GetObject body to the end.
    async fn collect_body(&self, body: ByteStream, key: &str) -> Result<Bytes, StoreError> {
        match body.collect().await {
            Ok(aggregated) => Ok(aggregated.into_bytes()),
            Err(error) => Err(StoreError::Unreachable {
                endpoint: self.endpoint.clone(),
                detail: format!(
                    "reading s3://{}/{key} was interrupted: {}",
                    self.bucket,
                    error_chain(&error)
                ),
            }),
        }
    }

    /// A [`StoreError::RangeNotSatisfiable`] carrying the object's real size (or its lookup error).
    async fn range_error(&self, key: &str, range: Range<u64>) -> StoreError {
        match self.head(key).await {
            Ok(meta) => StoreError::RangeNotSatisfiable {
                key: key.to_owned(),
                range,
                size: meta.size,
            },
            Err(error) => error,
        }
    }
}

/// Parses the total size out of a `Content-Range: bytes a-b/size` header.
fn content_range_size(content_range: &str) -> Option<u64> {
    content_range
        .rsplit_once('/')
        .and_then(|(_, size)| size.trim().parse().ok())
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn begin_upload(&self, key: &str) -> Result<Box<dyn Upload>, StoreError> {
        validate_key(key)?;
        Ok(Box::new(S3Upload::new(
            self.client.clone(),
            self.bucket.clone(),
            key.to_owned(),
            self.part_size,
            self.endpoint.clone(),
        )))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        validate_key(key)?;
        // HTTP cannot express an empty or inverted range; answer those from the object's size.
        if range.start >= range.end {
            let meta = self.head(key).await?;
            check_range(key, &range, meta.size)?;
            return Ok(Bytes::new());
        }
        let requested = range.end - range.start;
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            Err(error) => {
                let is_invalid_range = matches!(
                    service_status(&error),
                    Some((416, _)) | Some((_, Some("InvalidRange")))
                );
                if is_invalid_range {
                    return Err(self.range_error(key, range).await);
                }
                return Err(classify(error, &self.target("GetObject", Some(key))));
            }
        };
        let total_size = output.content_range().and_then(content_range_size);
        let honored_range = output.content_range().is_some();
        let body = self.collect_body(output.body, key).await?;
        if !honored_range {
            // The server ignored `Range` and sent the whole object.
            let size = body.len() as u64;
            check_range(key, &range, size)?;
            return Ok(body.slice(range.start as usize..range.end as usize));
        }
        // S3 truncates a range that passes the end instead of refusing it.
        if body.len() as u64 != requested {
            let size = total_size.unwrap_or(range.start + body.len() as u64);
            return Err(StoreError::RangeNotSatisfiable {
                key: key.to_owned(),
                range,
                size,
            });
        }
        Ok(body)
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        validate_key(key)?;
        let response = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let output =
            response.map_err(|error| classify(error, &self.target("HeadObject", Some(key))))?;
        let size = output.content_length().unwrap_or(0).max(0) as u64;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size,
        })
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<ObjectMeta, StoreError> {
        validate_key(key)?;
        let size = data.len() as u64;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(size as i64)
            // Computed here: with `WhenRequired` the SDK names the algorithm but sends no value.
            .checksum_sha256(sha256_base64(&data))
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|error| classify(error, &self.target("PutObject", Some(key))))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size,
        })
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        validate_key(key)?;
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let output =
            response.map_err(|error| classify(error, &self.target("GetObject", Some(key))))?;
        self.collect_body(output.body, key).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        let response = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match response {
            Ok(_) => Ok(()),
            // Some servers answer 404 for a missing key; S3 itself answers 204.
            Err(error)
                if matches!(
                    service_status(&error),
                    Some((404, Some("NoSuchKey") | None))
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(classify(error, &self.target("DeleteObject", Some(key)))),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|error| classify(error, &self.target("ListObjectsV2", None)))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let size = object.size().unwrap_or(0).max(0) as u64;
                objects.push(ObjectMeta {
                    key: key.to_owned(),
                    size,
                });
            }
        }
        objects.sort_by(|left, right| left.key.cmp(&right.key));
        Ok(objects)
    }

    /// Lists at most one key of the bucket: proves the endpoint answers, the credentials are
    /// accepted and the bucket exists, without writing anything on every probe.
    async fn check(&self) -> Result<(), StoreError> {
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .max_keys(1)
            .send()
            .await
            .map_err(|error| classify(error, &self.target("ListObjectsV2", None)))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("s3://{} at {}", self.bucket, self.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_size_parses_the_total() {
        assert_eq!(content_range_size("bytes 0-99/1234"), Some(1234));
        assert_eq!(content_range_size("bytes */1234"), Some(1234));
        assert_eq!(content_range_size("bytes 0-99/*"), None);
    }
}
