//! Ingest: bundle → gate → pack → age encrypt → object store → database.
//!
//! The pipeline is one pass of streaming after the gate: each file is read from the bundle in
//! 256 KiB pieces, written into the normalized zip, encrypted by age's STREAM writer, hashed and
//! handed to the store in 8 MiB chunks through a bounded channel. Memory use does not depend on the
//! bundle's size, and no plaintext is ever written anywhere: the only bytes that leave this
//! process are ciphertext.
//!
//! The gate runs first and reads every file, so a refused bundle stores nothing. If the upload or
//! the database insert fails, the partial object is aborted or deleted.

use crate::audit::{Audit, case_target, event_by, study_target};
use readroom_domain::audit::{Action, Outcome};
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use readroom_bundle::gate::{self, CheckedBundle, GateOptions, Rejection};
use readroom_bundle::{BundleSource, PackWriter, SourceLimits};
use readroom_domain::deid::DeidPolicy;
use readroom_store::blocking::UploadWriter;
use readroom_store::{ObjectStore, StoreError, Upload};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::{Db, DbError, NewBundle, NewCase, Recipients, StudyCode};

/// Chunk size handed to the object store.
const UPLOAD_CHUNK: usize = 8 * 1024 * 1024;

/// Why an ingest failed. Nothing was stored in any of these cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The study code is not valid or no such study exists.
    #[error("unknown study {code:?}; create it first with `readroom study create {code}`")]
    UnknownStudy {
        /// The code given.
        code: String,
    },
    /// The study has no recipients to encrypt to.
    #[error(
        "study {code:?} has no age recipients to encrypt to; set `recipients` in the configuration or on the study"
    )]
    NoRecipients {
        /// The study.
        code: String,
    },
    /// A recipient of the study does not parse.
    #[error("study {code:?}: recipient {recipient:?} is not an age X25519 public key")]
    BadRecipient {
        /// The study.
        code: String,
        /// The recipient.
        recipient: String,
    },
    /// The bundle cannot be opened (not a directory or zip, unsafe or oversized entries).
    #[error("{0}")]
    Source(#[from] readroom_bundle::BundleError),
    /// The gate refused the bundle: every problem is listed.
    #[error("{0}")]
    Rejected(Rejection),
    /// The same subject and visit is already stored in this study.
    #[error("study {code:?} already holds a bundle for subject {subject:?} visit {visit:?}")]
    Duplicate {
        /// The study.
        code: String,
        /// Subject pseudonym.
        subject: String,
        /// Visit pseudonym.
        visit: String,
    },
    /// The audit log did not record the ingest (the bundle may be stored; run again to see).
    #[error("audit log: {0}")]
    Audit(String),
    /// The object store failed.
    #[error("object store: {0}")]
    Store(#[from] StoreError),
    /// The database failed.
    #[error("database: {0}")]
    Db(DbError),
    /// Packing or encrypting failed.
    #[error("packing or encrypting the bundle failed: {0}")]
    Pack(String),
}

/// What an ingest did.
#[derive(Debug, Clone)]
pub struct IngestReport {
    /// The new case's id.
    pub case_id: Uuid,
    /// The new case's label (`C-0001`).
    pub case_label: String,
    /// The stored bundle's id.
    pub bundle_id: Uuid,
    /// Object key of the ciphertext.
    pub object_key: String,
    /// Files in the bundle, manifest included.
    pub files: usize,
    /// Exams in the manifest.
    pub exams: usize,
    /// Bytes of the source files.
    pub source_bytes: u64,
    /// Bytes of the plaintext zip.
    pub plaintext_bytes: u64,
    /// Bytes of ciphertext stored.
    pub ciphertext_bytes: u64,
    /// SHA-256 of the ciphertext, hex.
    pub ciphertext_sha256: String,
    /// Wall time of the whole ingest.
    pub elapsed: Duration,
    /// What the gate found suspicious but let through (one eye's image given for both eyes):
    /// printed by `readroom ingest` and kept in the `ingest.accepted` event.
    pub warnings: Vec<String>,
}

impl IngestReport {
    /// Source megabytes per second.
    pub fn throughput_mb_s(&self) -> f64 {
        self.source_bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Options of one ingest.
#[derive(Clone, Default)]
pub struct IngestOptions {
    /// De-identification options.
    pub policy: DeidPolicy,
    /// Limits on the bundle's entries.
    pub source_limits: SourceLimits,
    /// Who ingests (recorded), `None` for the system (CLI, demo).
    pub actor: Option<Uuid>,
    /// Demo ground truth to keep with the case (never shown to graders).
    pub ground_truth: Option<serde_json::Value>,
    /// Called with the number of source bytes packed so far.
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

/// Ingests the bundle at `path` (directory or zip) into study `code`, and audits the outcome
/// (`ingest.accepted` with the new case, or `ingest.refused` with the number of problems: never
/// their text, which names files).
pub async fn ingest(
    db: &Db,
    audit: &Audit,
    store: Arc<dyn ObjectStore>,
    path: &Path,
    code: &str,
    options: IngestOptions,
) -> Result<IngestReport, IngestError> {
    let actor = options.actor;
    let result = ingest_unaudited(db, store, path, code, options).await;
    let draft = match &result {
        Ok(report) => {
            metrics::counter!("readroom_ingest_bytes_total", "kind" => "source")
                .increment(report.source_bytes);
            metrics::counter!("readroom_ingest_bytes_total", "kind" => "ciphertext")
                .increment(report.ciphertext_bytes);
            metrics::counter!("readroom_ingest_accepted_total").increment(1);
            event_by(
                Action::IngestAccepted,
                Outcome::Success,
                actor,
                Some(case_target(report.case_id)),
                None,
                json!({
                    "study": code,
                    "case_label": report.case_label,
                    "bundle_id": report.bundle_id,
                    "files": report.files,
                    "exams": report.exams,
                    "ciphertext_bytes": report.ciphertext_bytes,
                    "ciphertext_sha256": report.ciphertext_sha256,
                    "warnings": report.warnings,
                }),
            )
        }
        Err(err) => {
            let (outcome, reason, problems) = match err {
                IngestError::Rejected(rejection) => (
                    Outcome::Denied,
                    "rejected",
                    rejection.problems.len() + rejection.findings.len(),
                ),
                IngestError::Source(_) => (Outcome::Denied, "unreadable", 1),
                IngestError::Duplicate { .. } => (Outcome::Denied, "duplicate", 1),
                IngestError::UnknownStudy { .. } => (Outcome::Denied, "unknown_study", 1),
                _ => (Outcome::Failure, "error", 0),
            };
            metrics::counter!("readroom_ingest_refusals_total", "reason" => reason).increment(1);
            event_by(
                Action::IngestRefused,
                outcome,
                actor,
                Some(study_target(code)),
                None,
                json!({ "reason": reason, "problems": problems }),
            )
        }
    };
    audit
        .record(draft)
        .await
        .map_err(|err| IngestError::Audit(err.to_string()))?;
    result
}

async fn ingest_unaudited(
    db: &Db,
    store: Arc<dyn ObjectStore>,
    path: &Path,
    code: &str,
    options: IngestOptions,
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let unknown = || IngestError::UnknownStudy {
        code: code.to_owned(),
    };
    let study_code = StudyCode::new(code).map_err(|_| unknown())?;
    let study = match db.study_by_code(&study_code).await {
        Ok(study) => study,
        Err(DbError::NotFound) => return Err(unknown()),
        Err(err) => return Err(IngestError::Db(err)),
    };
    let recipients = parse_recipients(code, &study.recipients)?;

    // The gate, then packing, run on a blocking thread: zip, image headers and age are sync.
    let path = path.to_owned();
    let gate_options = GateOptions {
        study: code.to_owned(),
        policy: options.policy,
        limits: Default::default(),
    };
    let source_limits = options.source_limits.clone();
    let (source, checked) = tokio::task::spawn_blocking(move || {
        let mut source = BundleSource::open(&path, &source_limits)?;
        let checked = gate::check(&mut source, &gate_options).map_err(IngestError::Rejected)?;
        Ok::<_, IngestError>((source, checked))
    })
    .await
    .map_err(|err| IngestError::Pack(err.to_string()))??;

    let bundle_id = Uuid::new_v4();
    let object_key = format!("bundles/{code}/{bundle_id}.age");
    let digest = Arc::new(std::sync::Mutex::new(Sha256::new()));
    // Hash on the upload task's side of the channel, so SHA-256 runs on the other core while
    // this thread encrypts the next chunk.
    let upload: Box<dyn Upload> = Box::new(HashingUpload {
        inner: store.begin_upload(&object_key).await?,
        digest: digest.clone(),
    });
    let handle = tokio::runtime::Handle::current();
    let progress = options.progress.clone();
    let checked_for_pack = checked.clone();
    let mut packed = tokio::task::spawn_blocking(move || {
        let writer = UploadWriter::new(upload, handle, UPLOAD_CHUNK);
        pack_and_encrypt(source, &checked_for_pack, &recipients, writer, progress)
    })
    .await
    .map_err(|err| IngestError::Pack(err.to_string()))??;
    packed.sha256 = match digest.lock() {
        Ok(hasher) => hex::encode(hasher.clone().finalize()),
        Err(_) => {
            return Err(IngestError::Pack(
                "the ciphertext digest was poisoned".into(),
            ));
        }
    };

    let manifest = &checked.manifest;
    let summary = serde_json::to_value(checked.summary()).unwrap_or_default();
    let new_bundle = NewBundle {
        study_id: study.id,
        subject: manifest.subject.clone(),
        visit: manifest.visit.clone(),
        format: manifest.format.clone(),
        object_key: object_key.clone(),
        ciphertext_sha256: packed.sha256.clone(),
        ciphertext_size: packed.ciphertext_bytes,
        plaintext_size: packed.plaintext_bytes,
        file_count: checked.files.len() as u32 + 1,
        exam_count: manifest.exams.len() as u32,
        recipients_fingerprint: study.recipients.fingerprint(),
        summary,
        ingested_by: options.actor,
    };
    let visits = db
        .visits_of_subject(study.id, &manifest.subject)
        .await
        .map_err(IngestError::Db)?;
    let new_case = NewCase {
        prior_bundle_id: prior_visit(&manifest.visit, &visits),
        ground_truth: options.ground_truth,
    };
    let registered = db.register_ingest(&new_bundle, &new_case).await;
    let (bundle, case) = match registered {
        Ok(pair) => pair,
        Err(err) => {
            // Compensate: the ciphertext must not outlive a failed registration.
            if let Err(delete_err) = store.delete(&object_key).await {
                tracing::error!(key = %object_key, error = %delete_err, "could not delete the object of a failed ingest");
            }
            return Err(match err {
                DbError::Conflict { .. } => IngestError::Duplicate {
                    code: code.to_owned(),
                    subject: manifest.subject.clone(),
                    visit: manifest.visit.clone(),
                },
                other => IngestError::Db(other),
            });
        }
    };
    Ok(IngestReport {
        case_id: case.id,
        case_label: case.label,
        bundle_id: bundle.id,
        object_key,
        files: checked.files.len() + 1,
        exams: manifest.exams.len(),
        source_bytes: checked.total_bytes,
        plaintext_bytes: packed.plaintext_bytes,
        ciphertext_bytes: packed.ciphertext_bytes,
        ciphertext_sha256: packed.sha256,
        elapsed: started.elapsed(),
        warnings: checked.warnings.clone(),
    })
}

fn parse_recipients(
    code: &str,
    recipients: &Recipients,
) -> Result<Vec<age::x25519::Recipient>, IngestError> {
    if recipients.as_slice().is_empty() {
        return Err(IngestError::NoRecipients {
            code: code.to_owned(),
        });
    }
    recipients
        .as_slice()
        .iter()
        .map(|text| {
            text.parse::<age::x25519::Recipient>()
                .map_err(|_| IngestError::BadRecipient {
                    code: code.to_owned(),
                    recipient: text.clone(),
                })
        })
        .collect()
}

/// What [`pack_and_encrypt`] wrote.
struct Packed {
    plaintext_bytes: u64,
    ciphertext_bytes: u64,
    sha256: String,
}

/// Writes the normalized zip of `checked` through age into `upload`, aborting the upload on error.
fn pack_and_encrypt(
    mut source: BundleSource,
    checked: &CheckedBundle,
    recipients: &[age::x25519::Recipient],
    upload: UploadWriter,
    progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
) -> Result<Packed, IngestError> {
    let mut hashed = CountingWriter::new(upload);
    let result = (|| {
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|err| IngestError::Pack(err.to_string()))?;
        let encrypted = encryptor
            .wrap_output(&mut hashed)
            .map_err(|err| IngestError::Pack(err.to_string()))?;
        let mut pack = PackWriter::new(CountingWriter::new(encrypted));
        let mut done = 0u64;
        for path in checked.pack_order() {
            let written = if path == readroom_domain::manifest::MANIFEST_FILE {
                let manifest = checked.manifest_bytes.as_slice();
                pack.add_sized(&path, manifest.len() as u64, &mut &*manifest)?
            } else {
                let size = source.entry(&path).map_or(0, |entry| entry.size);
                let mut reader = source.open_entry(&path)?;
                let mut reader = ProgressReader::new(&mut reader, done, progress.as_deref());
                pack.add_sized(&path, size, &mut reader)?
            };
            done += written;
            if let Some(progress) = &progress {
                progress(done);
            }
        }
        let counting = pack.finish()?;
        let plaintext_bytes = counting.count;
        counting
            .inner
            .finish()
            .map_err(|err| IngestError::Pack(err.to_string()))?;
        Ok(plaintext_bytes)
    })();
    let (upload, ciphertext_bytes) = (hashed.inner, hashed.count);
    match result {
        Ok(plaintext_bytes) => {
            upload.finish()?;
            Ok(Packed {
                plaintext_bytes,
                ciphertext_bytes,
                // Filled in by the caller from the upload-side digest.
                sha256: String::new(),
            })
        }
        Err(err) => {
            if let Err(abort_err) = upload.abort() {
                tracing::error!(error = %abort_err, "could not abort the upload of a failed ingest");
            }
            Err(err)
        }
    }
}

/// An [`Upload`] that hashes every chunk before passing it on. It runs on the upload task, so
/// hashing overlaps with encryption on the packing thread.
struct HashingUpload {
    inner: Box<dyn Upload>,
    digest: Arc<std::sync::Mutex<Sha256>>,
}

#[async_trait::async_trait]
impl Upload for HashingUpload {
    async fn write(&mut self, chunk: bytes::Bytes) -> Result<(), StoreError> {
        if let Ok(mut hasher) = self.digest.lock() {
            hasher.update(&chunk);
        }
        self.inner.write(chunk).await
    }

    async fn finish(self: Box<Self>) -> Result<readroom_store::ObjectMeta, StoreError> {
        self.inner.finish().await
    }

    async fn abort(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.abort().await
    }
}

/// Counts what passes through to the inner writer.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W> CountingWriter<W> {
    fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reports progress every few MiB while a file is being packed.
struct ProgressReader<'a, R> {
    inner: R,
    base: u64,
    read: u64,
    reported: u64,
    progress: Option<&'a (dyn Fn(u64) + Send + Sync)>,
}

impl<'a, R> ProgressReader<'a, R> {
    fn new(inner: R, base: u64, progress: Option<&'a (dyn Fn(u64) + Send + Sync)>) -> Self {
        ProgressReader {
            inner,
            base,
            read: 0,
            reported: 0,
            progress,
        }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if let Some(progress) = self.progress
            && self.read - self.reported >= 4 * 1024 * 1024
        {
            self.reported = self.read;
            progress(self.base + self.read);
        }
        Ok(n)
    }
}

/// The bundle of the latest visit before `visit` among a subject's `visits` (id, visit), for
/// the current-vs-prior layout. Visits order naturally: shorter first, then by text, so `V2`
/// comes before `V10`.
pub fn prior_visit(visit: &str, visits: &[(uuid::Uuid, String)]) -> Option<uuid::Uuid> {
    let key = |v: &str| (v.len(), v.to_owned());
    visits
        .iter()
        .filter(|(_, other)| key(other) < key(visit))
        .max_by_key(|(_, other)| key(other))
        .map(|(id, _)| *id)
}

#[cfg(test)]
mod prior_tests {
    use super::prior_visit;
    use uuid::Uuid;

    #[test]
    fn the_latest_earlier_visit_is_the_prior() {
        let v1 = Uuid::from_u128(1);
        let v2 = Uuid::from_u128(2);
        let v10 = Uuid::from_u128(10);
        let visits = vec![
            (v10, "V10".to_owned()),
            (v1, "V1".to_owned()),
            (v2, "V2".to_owned()),
        ];
        assert_eq!(prior_visit("V3", &visits), Some(v2));
        assert_eq!(prior_visit("V11", &visits), Some(v10));
        assert_eq!(prior_visit("V1", &visits), None);
        assert_eq!(prior_visit("V2", &[]), None);
    }
}
