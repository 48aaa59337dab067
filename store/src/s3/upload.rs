//! [`S3Upload`]: a streaming upload into S3, multipart once it outgrows one part.
//!
//! Every request that carries bytes carries their SHA-256 (`x-amz-checksum-sha256`): the single
//! `PutObject` of a small object, and each `UploadPart` of a multipart upload, which is created
//! with the SHA-256 algorithm and completed with the list of its parts' checksums. The server so
//! checks every byte it stores against what readroom sent, and a bucket with S3 Object Lock,
//! which refuses uploads without a checksum, accepts them.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};

use super::classify::{Target, classify, service_status};
use super::sha256_base64;
use crate::{ObjectMeta, StoreError, Upload};

/// S3 allows at most this many parts per upload.
const MAX_PARTS: usize = 10_000;

/// A multipart upload that has been created on the server.
struct Multipart {
    upload_id: String,
    /// The parts uploaded so far, in order.
    parts: Vec<CompletedPart>,
}

/// An upload into S3.
///
/// Bytes are buffered until a whole part is available; the multipart upload is only created when
/// the first part is sent, so an object smaller than one part costs a single `PutObject`.
pub(crate) struct S3Upload {
    client: Client,
    bucket: String,
    key: String,
    part_size: usize,
    endpoint: String,
    /// Bytes not yet sent; always shorter than `part_size` between calls.
    buffer: BytesMut,
    /// The server-side multipart upload, once created; `None` again after completion or abort,
    /// which is how `Drop` knows whether something is left to clean up.
    multipart: Option<Multipart>,
    /// Bytes accepted so far.
    size: u64,
}

impl S3Upload {
    pub(crate) fn new(
        client: Client,
        bucket: String,
        key: String,
        part_size: usize,
        endpoint: String,
    ) -> Self {
        S3Upload {
            client,
            bucket,
            key,
            part_size,
            endpoint,
            buffer: BytesMut::new(),
            multipart: None,
            size: 0,
        }
    }

    fn target(&self, operation: &'static str) -> Target<'_> {
        Target {
            operation,
            endpoint: &self.endpoint,
            bucket: &self.bucket,
            key: Some(&self.key),
        }
    }

    /// Creates the multipart upload on the server unless that was done already.
    async fn ensure_multipart(&mut self) -> Result<(), StoreError> {
        if self.multipart.is_some() {
            return Ok(());
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|error| classify(error, &self.target("CreateMultipartUpload")))?;
        let Some(upload_id) = created.upload_id() else {
            return Err(StoreError::Backend {
                detail: format!(
                    "CreateMultipartUpload for s3://{}/{} returned no upload id",
                    self.bucket, self.key
                ),
            });
        };
        self.multipart = Some(Multipart {
            upload_id: upload_id.to_owned(),
            parts: Vec::new(),
        });
        Ok(())
    }

    /// Sends `body` as the next part.
    async fn upload_part(&mut self, body: Bytes) -> Result<(), StoreError> {
        self.ensure_multipart().await?;
        let (upload_id, part_count) = match &self.multipart {
            Some(multipart) => (multipart.upload_id.clone(), multipart.parts.len()),
            None => {
                return Err(StoreError::Backend {
                    detail: "multipart upload vanished".to_owned(),
                });
            }
        };
        if part_count >= MAX_PARTS {
            return Err(StoreError::Config {
                detail: format!(
                    "s3://{}/{} needs more than {MAX_PARTS} parts of {} bytes; raise the part size",
                    self.bucket, self.key, self.part_size
                ),
            });
        }
        let part_number = (part_count + 1) as i32;
        let length = body.len() as i64;
        let checksum = checksum_of(body.clone()).await?;
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .part_number(part_number)
            .content_length(length)
            .checksum_sha256(&checksum)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|error| classify(error, &self.target("UploadPart")))?;
        let completed = CompletedPart::builder()
            .part_number(part_number)
            .set_e_tag(uploaded.e_tag().map(str::to_owned))
            .checksum_sha256(checksum)
            .build();
        if let Some(multipart) = &mut self.multipart {
            multipart.parts.push(completed);
        }
        Ok(())
    }

    /// Sends whatever is buffered and completes the upload.
    async fn complete(&mut self) -> Result<ObjectMeta, StoreError> {
        if self.multipart.is_none() {
            let body = std::mem::take(&mut self.buffer).freeze();
            let checksum = checksum_of(body.clone()).await?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_length(body.len() as i64)
                .checksum_sha256(checksum)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|error| classify(error, &self.target("PutObject")))?;
            return Ok(ObjectMeta {
                key: self.key.clone(),
                size: self.size,
            });
        }
        if !self.buffer.is_empty() {
            let last_part = std::mem::take(&mut self.buffer).freeze();
            self.upload_part(last_part).await?;
        }
        let Some(multipart) = &self.multipart else {
            return Err(StoreError::Backend {
                detail: "multipart upload vanished".to_owned(),
            });
        };
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(multipart.parts.clone()))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&multipart.upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|error| classify(error, &self.target("CompleteMultipartUpload")))?;
        self.multipart = None;
        Ok(ObjectMeta {
            key: self.key.clone(),
            size: self.size,
        })
    }

    /// Aborts the server-side multipart upload, if any.
    async fn abort_multipart(&mut self) -> Result<(), StoreError> {
        let Some(multipart) = self.multipart.take() else {
            return Ok(());
        };
        abort_multipart(&self.client, &self.bucket, &self.key, &multipart.upload_id)
            .await
            .map_err(|error| classify(error, &self.target("AbortMultipartUpload")))
    }
}

/// The `x-amz-checksum-sha256` of a part, hashed off the async threads (a part is megabytes).
async fn checksum_of(body: Bytes) -> Result<String, StoreError> {
    tokio::task::spawn_blocking(move || sha256_base64(&body))
        .await
        .map_err(|error| StoreError::Backend {
            detail: format!("hashing an upload part failed: {error}"),
        })
}

/// Sends AbortMultipartUpload; an upload the server no longer knows counts as aborted.
async fn abort_multipart(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<
    (),
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadError,
    >,
> {
    let response = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    match response {
        Ok(_) => Ok(()),
        Err(error) if matches!(service_status(&error), Some((404, _))) => Ok(()),
        Err(error) => Err(error),
    }
}

#[async_trait::async_trait]
impl Upload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.size += chunk.len() as u64;
        if self.buffer.is_empty() && chunk.len() == self.part_size {
            return self.upload_part(chunk).await;
        }
        if self.buffer.capacity() < self.part_size {
            self.buffer.reserve(self.part_size - self.buffer.len());
        }
        self.buffer.extend_from_slice(&chunk);
        while self.buffer.len() >= self.part_size {
            let part = self.buffer.split_to(self.part_size).freeze();
            self.upload_part(part).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<ObjectMeta, StoreError> {
        match self.complete().await {
            Ok(meta) => Ok(meta),
            Err(error) => {
                // Leave nothing behind; the completion error is the one worth reporting.
                if let Err(abort_error) = self.abort_multipart().await {
                    tracing::warn!(key = %self.key, error = %abort_error, "aborting a failed multipart upload failed");
                }
                Err(error)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.buffer.clear();
        self.abort_multipart().await
    }
}

impl Drop for S3Upload {
    /// An upload dropped without `finish` or `abort` would leave its parts on the server (and
    /// billed); abort it on the runtime, best effort.
    fn drop(&mut self) {
        let Some(multipart) = self.multipart.take() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(key = %self.key, upload_id = %multipart.upload_id, "multipart upload dropped outside a runtime; it was not aborted");
            return;
        };
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let key = self.key.clone();
        handle.spawn(async move {
            if let Err(error) = abort_multipart(&client, &bucket, &key, &multipart.upload_id).await {
                tracing::warn!(%key, error = %super::classify::error_chain(&error), "aborting a dropped multipart upload failed");
            }
        });
    }
}
