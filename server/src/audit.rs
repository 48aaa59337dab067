//! Recording audit events: every code path that does something auditable calls
//! [`Audit::record`] once, and the event is in the chain (committed) before it returns.
//!
//! One writer task per process takes the queued events in batches and appends each batch in one
//! transaction ([`Db::append_audit`]), so concurrent requests share commits (group commit) while
//! the database's head-row lock keeps a single chain across processes. Recording fails closed:
//! if the event cannot be stored, the caller gets an error and does not carry on as if it were.
//!
//! Checkpoints ([`checkpoint`]) sign the chain head with the audit key and write it to the object
//! store, where an S3 bucket with Object Lock keeps it immutable.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use readroom_domain::audit::{
    Action, AuditRecord, Break, BreakKind, ChainError, ChainHead, Checkpoint, CheckpointSigner,
    CheckpointVerifier, EventDraft, Outcome, Report, Verifier,
};
use readroom_store::ObjectStore;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::db::Db;

/// Events queued before `record` waits for room.
const QUEUE: usize = 4096;
/// Most events appended in one transaction.
const BATCH: usize = 256;
/// Object-store prefix of the signed checkpoints.
pub const CHECKPOINT_PREFIX: &str = "audit/checkpoints/";

/// Why an event was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The event itself is malformed (a bug in the caller).
    #[error("audit event refused: {0}")]
    Invalid(#[from] ChainError),
    /// The database did not take it.
    #[error("the audit log is unavailable: {0}")]
    Unavailable(String),
}

struct Pending {
    draft: EventDraft,
    reply: oneshot::Sender<Result<AuditRecord, AuditError>>,
}

/// The process's audit recorder. Cheap to clone; all clones feed one writer task.
#[derive(Clone)]
pub struct Audit {
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Audit")
    }
}

impl Audit {
    /// Starts the writer task on the current runtime.
    pub fn start(db: Db) -> Audit {
        let (queue, incoming) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(db, incoming));
        Audit { queue }
    }

    /// Appends one event and waits until it is committed; returns the stored record.
    pub async fn record(&self, draft: EventDraft) -> Result<AuditRecord, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { draft, reply })
            .await
            .map_err(|_| AuditError::Unavailable("the audit writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| AuditError::Unavailable("the audit writer has stopped".into()))?
    }
}

async fn write_loop(db: Db, mut incoming: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    while incoming.recv_many(&mut batch, BATCH).await > 0 {
        let (drafts, replies): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|p| (p.draft, p.reply)).unzip();
        let started = std::time::Instant::now();
        let appended = db.append_audit(drafts).await;
        metrics::histogram!("readroom_audit_append_seconds")
            .record(started.elapsed().as_secs_f64());
        match appended {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result.map_err(AuditError::from));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "audit events could not be stored");
                metrics::counter!("readroom_audit_failures_total").increment(replies.len() as u64);
                for reply in replies {
                    let _ = reply.send(Err(AuditError::Unavailable(err.to_string())));
                }
            }
        }
    }
}

/// `time` in the audit log's format: RFC 3339 UTC with exactly six fractional digits, so times
/// compare as text.
pub fn timestamp(time: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    time.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000000Z".to_owned())
}

/// A new event at the current time.
pub fn event(action: Action, outcome: Outcome) -> EventDraft {
    EventDraft::new(timestamp(OffsetDateTime::now_utc()), action, outcome)
}

/// Shorthand for the common fields: who, about what, from where, with which details.
pub fn event_by(
    action: Action,
    outcome: Outcome,
    actor: Option<Uuid>,
    target: Option<String>,
    client: Option<IpAddr>,
    details: Value,
) -> EventDraft {
    let mut draft = event(action, outcome).details(details);
    if let Some(actor) = actor {
        draft = draft.actor(actor.to_string());
    }
    if let Some(target) = target {
        draft = draft.target(target);
    }
    if let Some(client) = client {
        draft = draft.client(client.to_string());
    }
    draft
}

impl crate::auth::SignedIn {
    /// An event by this user, from this request's address.
    pub fn event(
        &self,
        action: Action,
        outcome: Outcome,
        target: Option<String>,
        details: Value,
    ) -> EventDraft {
        event_by(
            action,
            outcome,
            Some(self.user.id),
            target,
            self.client,
            details,
        )
    }
}

/// The audit target naming a case.
pub fn case_target(case_id: Uuid) -> String {
    format!("case:{case_id}")
}

/// The audit target naming a user.
pub fn user_target(user_id: Uuid) -> String {
    format!("user:{user_id}")
}

/// The audit target naming a study.
pub fn study_target(code: &str) -> String {
    format!("study:{code}")
}

/// Loads the checkpoint signing key at `path`, creating it (0600) on first use.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<CheckpointSigner> {
    let seed = crate::auth::keys::load_or_create_seed(path, "audit key")?;
    Ok(CheckpointSigner::from_seed(&seed))
}

/// The object key of the checkpoint at `seq` (zero-padded, so keys sort by sequence).
pub fn checkpoint_key(seq: i64) -> String {
    format!("{CHECKPOINT_PREFIX}{seq:020}.json")
}

/// Signs the current chain head and writes it to the store, unless the last checkpoint already
/// covers it. Returns the checkpoint written (None when there was nothing new).
pub async fn checkpoint(
    db: &Db,
    store: &Arc<dyn ObjectStore>,
    signer: &CheckpointSigner,
) -> anyhow::Result<Option<Checkpoint>> {
    let head = db.audit_head().await?;
    if head.seq == 0 {
        return Ok(None);
    }
    let key = checkpoint_key(head.seq);
    if store.head(&key).await.is_ok() {
        return Ok(None);
    }
    let checkpoint = signer.sign(&head, &timestamp(OffsetDateTime::now_utc()))?;
    let body = serde_json::to_vec_pretty(&checkpoint)?;
    store.put(&key, body.into()).await?;
    tracing::info!(seq = head.seq, "audit checkpoint written");
    Ok(Some(checkpoint))
}

/// Checks the chain from `from` (the head this process verified last) or, the first time, from
/// the newest checkpoint this server's key verifies (genesis if there is none), to its head;
/// sets `readroom_audit_chain_ok` (1 intact, 0 broken). Cheap enough to run before every
/// checkpoint: it reads only the events since then, and at most the newest checkpoints.
pub async fn verify_recent(
    db: &Db,
    store: &Arc<dyn ObjectStore>,
    signer: &CheckpointSigner,
    from: Option<ChainHead>,
) -> anyhow::Result<Report> {
    let key = signer.verifier();
    let start = match from {
        Some(head) => Some(head),
        None => newest_verified_checkpoint(store, &key).await?,
    };
    let report = verify(db, start.as_ref(), &[], Some(&key)).await?;
    metrics::gauge!("readroom_audit_chain_ok").set(if report.first_break.is_none() {
        1.0
    } else {
        0.0
    });
    Ok(report)
}

/// The head of the newest checkpoint that parses and verifies with `key`, reading checkpoints
/// newest first and stopping at the first good one.
async fn newest_verified_checkpoint(
    store: &Arc<dyn ObjectStore>,
    key: &CheckpointVerifier,
) -> anyhow::Result<Option<ChainHead>> {
    let mut keys: Vec<String> = store
        .list(CHECKPOINT_PREFIX)
        .await?
        .into_iter()
        .map(|meta| meta.key)
        .collect();
    keys.sort();
    for name in keys.iter().rev() {
        let bytes = store.get(name).await?;
        if let Ok(checkpoint) = serde_json::from_slice::<Checkpoint>(&bytes)
            && key.verify(&checkpoint).is_ok()
        {
            return Ok(Some(checkpoint.head()));
        }
    }
    Ok(None)
}

/// Every checkpoint in the store, in sequence order, each parsed or with why it could not be.
pub async fn load_checkpoints(
    store: &Arc<dyn ObjectStore>,
) -> anyhow::Result<Vec<Result<Checkpoint, String>>> {
    let mut keys: Vec<String> = store
        .list(CHECKPOINT_PREFIX)
        .await?
        .into_iter()
        .map(|meta| meta.key)
        .collect();
    keys.sort();
    let mut checkpoints = Vec::with_capacity(keys.len());
    for key in keys {
        let bytes = store.get(&key).await?;
        checkpoints.push(
            serde_json::from_slice::<Checkpoint>(&bytes)
                .map_err(|err| format!("{key} is not a checkpoint: {err}")),
        );
    }
    Ok(checkpoints)
}

/// Rows read per page while verifying or exporting.
const PAGE: u32 = 5000;

/// The checkpoints that parsed, and a description of each one that did not.
pub fn split_checkpoints(
    loaded: Vec<Result<Checkpoint, String>>,
) -> (Vec<Checkpoint>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for item in loaded {
        match item {
            Ok(checkpoint) => good.push(checkpoint),
            Err(err) => bad.push(err),
        }
    }
    (good, bad)
}

/// Recomputes the chain from `start` (genesis when `None`) to its end, page by page, checking
/// every checkpoint (and its signature, with `key`) as its sequence number passes; stops at the
/// first broken link. A row whose outcome is not one of the three names counts as edited.
pub async fn verify(
    db: &Db,
    start: Option<&ChainHead>,
    checkpoints: &[Checkpoint],
    key: Option<&CheckpointVerifier>,
) -> anyhow::Result<Report> {
    let verifier = match start {
        Some(head) => Verifier::from_checkpoint(head),
        None => Verifier::new(),
    };
    let mut verifier = verifier.with_checkpoints(checkpoints, key);
    let mut after = start.map_or(0, |head| head.seq);
    'pages: while verifier.first_break().is_none() {
        let rows = db.audit_page(after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in &rows {
            let pushed = match row.to_record() {
                Ok(record) => verifier.push(&record),
                Err(_) => {
                    let mut report = verifier.finish();
                    report.first_break = Some(Break {
                        seq: row.seq,
                        kind: BreakKind::HashMismatch,
                    });
                    return Ok(report);
                }
            };
            if pushed.is_err() {
                break 'pages;
            }
        }
    }
    let mut report = verifier.finish();
    if report.first_break.is_none() {
        // The head row records the last append; a chain that ends before it lost its tail.
        let recorded = db.audit_head().await?;
        if recorded.seq > report.head.seq {
            report.first_break = Some(Break {
                seq: report.head.seq + 1,
                kind: BreakKind::Truncated {
                    checkpoint_seq: recorded.seq,
                    last_seq: report.head.seq,
                },
            });
        }
    }
    Ok(report)
}

/// What this process last learned about the chain (for the auditor page); the lock around it
/// keeps two looks from verifying at the same time.
#[derive(Debug, Clone, Default)]
pub struct VerifiedChain {
    /// The last report (None before the first verification).
    pub report: Option<Report>,
    /// When it was made.
    pub checked_at: Option<String>,
}

/// Verifies the whole chain from its first event, with every checkpoint, and keeps the report.
pub async fn refresh(
    db: &Db,
    store: &Arc<dyn ObjectStore>,
    key: &CheckpointVerifier,
    cached: &mut VerifiedChain,
) -> anyhow::Result<Report> {
    let (checkpoints, _unreadable) = split_checkpoints(load_checkpoints(store).await?);
    let report = verify(db, None, &checkpoints, Some(key)).await?;
    cached.report = Some(report.clone());
    cached.checked_at = Some(timestamp(OffsetDateTime::now_utc()));
    Ok(report)
}
