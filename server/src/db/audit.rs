//! The audit log table (`audit_events`) and its head row (`audit_head`).
//!
//! Appends are serialized by the head row: a writer's first statement updates it, which takes the
//! row lock on PostgreSQL and SQLite's single write lock, so appends from any number of server
//! replicas and CLI processes form one chain without forks. The chain itself (hashing, sealing,
//! verification) is pure code in [`readroom_domain::audit`]; this module only stores and reads rows.

use readroom_domain::audit::{AuditRecord, ChainError, ChainHead, EventDraft, Outcome, seal};

use super::{Db, DbError, with_pool};

/// The head row's key.
const HEAD_ID: i32 = 1;

/// Locks the head row and reads it (the write lock comes first, before anything is read).
const LOCK_HEAD: &str = "UPDATE audit_head SET seq = seq WHERE id = $1 RETURNING seq, hash";
const SET_HEAD: &str = "UPDATE audit_head SET seq = $2, hash = $3 WHERE id = $1";
const READ_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = $1";

const INSERT: &str = "INSERT INTO audit_events \
     (seq, at, actor, action, target, outcome, client, details, prev_hash, hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// The columns of an [`AuditRow`], as a literal for `concat!`.
macro_rules! columns {
    () => {
        "seq, at, actor, action, target, outcome, client, details, prev_hash, hash"
    };
}

/// A stored row as the database returns it (the outcome as text, so a tampered row still reads).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    /// Sequence number (1-based, consecutive).
    pub seq: i64,
    /// RFC 3339 UTC time with microseconds.
    pub at: String,
    /// User id, or none for the system or an unidentified client.
    pub actor: Option<String>,
    /// Action code (`case.opened` …).
    pub action: String,
    /// What the action was about (`case:<id>` …).
    pub target: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// Client address.
    pub client: Option<String>,
    /// Canonical JSON object.
    pub details: String,
    /// Hash of the previous event.
    pub prev_hash: String,
    /// Hash of this event.
    pub hash: String,
}

impl AuditRow {
    /// The row as a chain record; an outcome that is not one of the three names the row.
    pub fn to_record(&self) -> Result<AuditRecord, String> {
        let outcome: Outcome = self
            .outcome
            .parse()
            .map_err(|_| format!("event {} has an unknown outcome", self.seq))?;
        Ok(AuditRecord {
            seq: self.seq,
            at: self.at.clone(),
            actor: self.actor.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            outcome,
            client: self.client.clone(),
            details: self.details.clone(),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        })
    }
}

/// Filters of an audit search; every present field must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Events by this user id.
    pub actor: Option<String>,
    /// Events about this target (`case:<id>`, `user:<id>` …).
    pub target: Option<String>,
    /// Events with this action code.
    pub action: Option<String>,
    /// Events with this outcome.
    pub outcome: Option<String>,
    /// At or after this time (RFC 3339 in the stored format).
    pub from: Option<String>,
    /// Before this time (RFC 3339 in the stored format).
    pub to: Option<String>,
    /// Only events with a smaller sequence number (paging backwards).
    pub before_seq: Option<i64>,
    /// Only events with a larger sequence number.
    pub after_seq: Option<i64>,
}

/// The search's WHERE clause; `$1`…`$8` are the filter's fields in declaration order.
macro_rules! search_where {
    () => {
        "WHERE ($1 IS NULL OR actor = $1) \
     AND ($2 IS NULL OR target = $2) \
     AND ($3 IS NULL OR action = $3) \
     AND ($4 IS NULL OR outcome = $4) \
     AND ($5 IS NULL OR at >= $5) \
     AND ($6 IS NULL OR at < $6) \
     AND ($7 IS NULL OR seq < $7) \
     AND ($8 IS NULL OR seq > $8)"
    };
}

const PAGE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
);
const SEARCH: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM audit_events ",
    search_where!(),
    " ORDER BY seq DESC LIMIT $9"
);
const COUNT: &str = concat!("SELECT COUNT(*) FROM audit_events ", search_where!());

impl Db {
    /// Seals and appends `drafts` in one transaction, after the current head. Returns, per draft,
    /// the stored record or why it could not be sealed (that draft is skipped, the others are
    /// stored). The whole batch fails together only on a database error.
    #[tracing::instrument(skip_all, fields(events = drafts.len()))]
    pub async fn append_audit(
        &self,
        drafts: Vec<EventDraft>,
    ) -> Result<Vec<Result<AuditRecord, ChainError>>, DbError> {
        let results = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let (seq, hash): (i64, String) = sqlx::query_as(LOCK_HEAD)
                .bind(HEAD_ID)
                .fetch_one(&mut *tx)
                .await?;
            let mut head = ChainHead { seq, hash };
            let mut results = Vec::with_capacity(drafts.len());
            for draft in drafts {
                let record = match seal(&head, draft) {
                    Ok(record) => record,
                    Err(err) => {
                        results.push(Err(err));
                        continue;
                    }
                };
                sqlx::query(INSERT)
                    .bind(record.seq)
                    .bind(&record.at)
                    .bind(&record.actor)
                    .bind(&record.action)
                    .bind(&record.target)
                    .bind(record.outcome.as_str())
                    .bind(&record.client)
                    .bind(&record.details)
                    .bind(&record.prev_hash)
                    .bind(&record.hash)
                    .execute(&mut *tx)
                    .await?;
                head = record.head();
                results.push(Ok(record));
            }
            sqlx::query(SET_HEAD)
                .bind(HEAD_ID)
                .bind(head.seq)
                .bind(&head.hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            results
        });
        Ok(results)
    }

    /// The head as recorded in `audit_head` (the last appended event).
    #[tracing::instrument(skip_all)]
    pub async fn audit_head(&self) -> Result<ChainHead, DbError> {
        let (seq, hash): (i64, String) = with_pool!(self, pool => {
            sqlx::query_as(READ_HEAD).bind(HEAD_ID).fetch_one(pool).await?
        });
        Ok(ChainHead { seq, hash })
    }

    /// Up to `limit` events with a sequence number above `after`, in order (for verification
    /// and export, page by page).
    #[tracing::instrument(skip_all)]
    pub async fn audit_page(&self, after: i64, limit: u32) -> Result<Vec<AuditRow>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, AuditRow>(PAGE)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// The newest events matching `filter`, newest first, at most `limit`.
    #[tracing::instrument(skip_all)]
    pub async fn search_audit(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditRow>, DbError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, AuditRow>(SEARCH)
                .bind(&filter.actor)
                .bind(&filter.target)
                .bind(&filter.action)
                .bind(&filter.outcome)
                .bind(&filter.from)
                .bind(&filter.to)
                .bind(filter.before_seq)
                .bind(filter.after_seq)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// How many events match `filter`.
    #[tracing::instrument(skip_all)]
    pub async fn count_audit(&self, filter: &AuditFilter) -> Result<i64, DbError> {
        let count: i64 = with_pool!(self, pool => {
            sqlx::query_scalar(COUNT)
                .bind(&filter.actor)
                .bind(&filter.target)
                .bind(&filter.action)
                .bind(&filter.outcome)
                .bind(&filter.from)
                .bind(&filter.to)
                .bind(filter.before_seq)
                .bind(filter.after_seq)
                .fetch_one(pool)
                .await?
        });
        Ok(count)
    }
}
