//! The worker tier as the API sees it: a [`Pool`] of workers that hold the age identities and
//! stream, reached through one interface ([`WorkerLink`]) whether the worker is a separate
//! `readroom worker` process ([`remote`]) or the in-process worker of the embedded default
//! ([`embedded`], the only module of the server that links `readroom-worker`).
//!
//! - [`Pool::open`]: per-user limit, placement on the least-loaded healthy worker (trying the
//!   next one when a worker cannot be reached or is full), and the `live_streams` record.
//! - [`Pool::end`]: ends the sessions a filter names on every worker.
//! - [`events`]: what workers report (case switches, lossless frames, end reports) becomes
//!   `stream_sessions` rows and audit events, written by the server.
//! - [`revalidate`]: every open stream is checked against the access that admitted it; one
//!   whose assignment, role, account or sign-in session ended is ended within a tick.

#[cfg(feature = "embedded-worker")]
pub mod embedded;
pub mod events;
pub mod remote;
pub mod revalidate;

use std::sync::Arc;

use async_trait::async_trait;
use readroom_domain::placement::{self, WorkerLoad};
use readroom_domain::workers::{
    EndReason, EndSessions, OpenSession, RefusalCode, SessionFilter, SessionOpened, WorkerRefusal,
};
use uuid::Uuid;

use crate::config::WorkersConfig;
use crate::db::Db;
use crate::db::workers::LiveStream;

/// The id the in-process worker has in `live_streams`.
pub const EMBEDDED_ID: &str = "embedded";

/// Why a worker did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The worker answered with a refusal.
    #[error("{}", .0.message)]
    Refused(WorkerRefusal),
    /// The worker could not be reached or answered nonsense.
    #[error("worker unreachable: {0}")]
    Unreachable(String),
}

/// One worker, in-process or remote.
#[async_trait]
pub trait WorkerLink: Send + Sync {
    /// The worker's id.
    fn id(&self) -> &str;
    /// Opens a session.
    async fn open(&self, request: &OpenSession) -> Result<SessionOpened, LinkError>;
    /// Ends the sessions a filter names; how many.
    async fn end(&self, request: &EndSessions) -> Result<usize, LinkError>;
}

/// Why a session could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The request itself is wrong (offer, viewport, ticket): no worker would take it.
    #[error("{}", .0.message)]
    Refused(WorkerRefusal),
    /// The user already has as many open streams as allowed.
    #[error("you already have {0} open image streams; close one (another tab or window) first")]
    UserLimit(u32),
    /// No worker could take it.
    #[error("no streaming worker is available: {0}")]
    NoWorker(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// Who asks for a session (for the per-user limit and revocation).
#[derive(Debug, Clone)]
pub struct Requester {
    /// The user.
    pub user: Uuid,
    /// The case.
    pub case: Uuid,
    /// The sign-in session.
    pub auth_session: Uuid,
    /// The viewer session.
    pub viewer_session: String,
}

enum Workers {
    /// No worker: streaming answers 503.
    None,
    /// The in-process worker.
    Embedded(Arc<dyn WorkerLink>),
    /// Worker processes registered in the database.
    Remote(remote::Client),
}

struct Inner {
    db: Db,
    config: WorkersConfig,
    workers: Workers,
}

/// The workers this server places sessions on (cheap to clone).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// Open streams one viewer session may hold: its current one and one it is replacing.
const MAX_STREAMS_PER_VIEWER: i64 = 2;

impl Pool {
    fn with(db: Db, config: WorkersConfig, workers: Workers) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                db,
                config,
                workers,
            }),
        }
    }

    /// A pool with no worker (streaming answers 503).
    pub fn none(db: Db, config: WorkersConfig) -> Pool {
        Pool::with(db, config, Workers::None)
    }

    /// A pool of one in-process worker.
    pub fn embedded(db: Db, config: WorkersConfig, link: Arc<dyn WorkerLink>) -> Pool {
        Pool::with(db, config, Workers::Embedded(link))
    }

    /// A pool of registered worker processes.
    pub fn remote(db: Db, config: WorkersConfig, client: remote::Client) -> Pool {
        Pool::with(db, config, Workers::Remote(client))
    }

    /// Whether any worker is configured.
    pub fn is_configured(&self) -> bool {
        !matches!(self.inner.workers, Workers::None)
    }

    /// The pool settings.
    pub fn config(&self) -> &WorkersConfig {
        &self.inner.config
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The links to try for a new session, best first.
    async fn candidates(&self) -> Result<Vec<Arc<dyn WorkerLink>>, PoolError> {
        match &self.inner.workers {
            Workers::None => Err(PoolError::NoWorker("this server has no worker".into())),
            Workers::Embedded(link) => Ok(vec![Arc::clone(link)]),
            Workers::Remote(client) => {
                let rows = self.inner.db.workers().await?;
                let loads: Vec<WorkerLoad> = rows
                    .iter()
                    .map(|row| WorkerLoad {
                        id: row.id.clone(),
                        capacity: u32::try_from(row.capacity).unwrap_or(0),
                        active_sessions: u32::try_from(row.active_sessions).unwrap_or(u32::MAX),
                        cpu_load: row.cpu_load as f32,
                        draining: row.draining,
                        last_seen_unix: row.last_seen_unix,
                    })
                    .collect();
                let stale = i64::try_from(self.inner.config.stale_after_secs).unwrap_or(i64::MAX);
                let order = placement::candidates(&loads, crate::auth::now_unix(), stale);
                Ok(order
                    .into_iter()
                    .filter_map(|load| rows.iter().find(|row| row.id == load.id))
                    .map(|row| client.link(&row.id, &row.control_url))
                    .collect())
            }
        }
    }

    /// Places a session: reserves a slot of the user's limit, then asks the least-loaded
    /// worker, and the next when one cannot be reached, is full or is draining.
    pub async fn open(
        &self,
        who: &Requester,
        request: OpenSession,
    ) -> Result<(SessionOpened, String), PoolError> {
        let db = &self.inner.db;
        let reservation = Uuid::new_v4();
        db.reserve_live_stream(&LiveStream {
            id: reservation,
            worker_id: String::new(),
            user_id: who.user,
            case_id: who.case,
            auth_session: who.auth_session,
            viewer_session: who.viewer_session.clone(),
            started_unix: crate::auth::now_unix(),
            revoked_unix: None,
        })
        .await?;
        // Counted after the insert, so simultaneous requests cannot all slip under the limit.
        // A viewer session counts once: a reconnect after its worker died must not be refused
        // because the lost stream is not closed in the record yet. It may hold two streams at
        // most (the lost one and the new one), so a client cannot use one viewer session id
        // to open streams without limit.
        let limit = self.inner.config.max_streams_per_user;
        let (viewers, of_this_viewer) = db
            .count_viewer_sessions(who.user, &who.viewer_session)
            .await?;
        if viewers > i64::from(limit) || of_this_viewer > MAX_STREAMS_PER_VIEWER {
            db.delete_live_stream(reservation).await?;
            return Err(PoolError::UserLimit(limit));
        }
        let result = self.place(&request).await;
        match result {
            Ok((opened, worker)) => {
                db.complete_live_stream(reservation, opened.stream_id, &worker)
                    .await?;
                Ok((opened, worker))
            }
            Err(err) => {
                db.delete_live_stream(reservation).await?;
                Err(err)
            }
        }
    }

    async fn place(&self, request: &OpenSession) -> Result<(SessionOpened, String), PoolError> {
        let links = self.candidates().await?;
        if links.is_empty() {
            return Err(PoolError::NoWorker(
                "every worker is full, draining or silent".into(),
            ));
        }
        let mut last = String::new();
        for link in links {
            match link.open(request).await {
                Ok(opened) => return Ok((opened, link.id().to_owned())),
                Err(LinkError::Refused(refusal)) if refusal.code.try_elsewhere() => {
                    last = format!("{}: {}", link.id(), refusal.message);
                }
                Err(LinkError::Refused(refusal)) if refusal.code == RefusalCode::Internal => {
                    tracing::warn!(worker = link.id(), error = %refusal.message, "worker failed to open a session");
                    last = format!("{}: {}", link.id(), refusal.message);
                }
                Err(LinkError::Refused(refusal)) => return Err(PoolError::Refused(refusal)),
                Err(LinkError::Unreachable(message)) => {
                    tracing::warn!(worker = link.id(), error = %message, "worker unreachable; trying the next");
                    if let Err(err) = self.inner.db.mark_worker_unreachable(link.id()).await {
                        tracing::warn!(error = %err, "cannot mark a worker unreachable");
                    }
                    last = format!("{}: {message}", link.id());
                }
            }
        }
        Err(PoolError::NoWorker(last))
    }

    /// Ends the sessions `filter` names on every worker; how many were told to end.
    pub async fn end(&self, filter: SessionFilter, reason: EndReason) -> usize {
        if filter.is_empty() {
            return 0;
        }
        let request = EndSessions { filter, reason };
        let links: Vec<Arc<dyn WorkerLink>> = match &self.inner.workers {
            Workers::None => Vec::new(),
            Workers::Embedded(link) => vec![Arc::clone(link)],
            // Only workers still sending heartbeats: a silent one cannot take the request, and
            // each attempt would cost a connect timeout on every revalidation pass.
            Workers::Remote(client) => match self.inner.db.workers().await {
                Ok(rows) => {
                    let now = crate::auth::now_unix();
                    let stale =
                        i64::try_from(self.inner.config.stale_after_secs).unwrap_or(i64::MAX);
                    rows.iter()
                        .filter(|row| now - row.last_seen_unix <= stale)
                        .map(|row| client.link(&row.id, &row.control_url))
                        .collect()
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot list workers to end sessions");
                    Vec::new()
                }
            },
        };
        let mut ended = 0;
        for link in links {
            match link.end(&request).await {
                Ok(n) => ended += n,
                Err(err) => {
                    tracing::debug!(worker = link.id(), error = %err, "end request not delivered")
                }
            }
        }
        ended
    }

    /// Ends stream `stream_id` on the worker serving it (`worker_id`, one of `rows`, the
    /// pool as the caller just read it): one request, no reload of the pool.
    pub async fn end_stream_on(
        &self,
        stream_id: uuid::Uuid,
        worker_id: &str,
        rows: &[crate::db::workers::WorkerRow],
        reason: EndReason,
    ) -> usize {
        let link = match &self.inner.workers {
            Workers::None => return 0,
            Workers::Embedded(link) => Arc::clone(link),
            Workers::Remote(client) => match rows.iter().find(|row| row.id == worker_id) {
                Some(row) => client.link(&row.id, &row.control_url),
                None => return 0,
            },
        };
        let request = EndSessions {
            filter: SessionFilter::stream(stream_id),
            reason,
        };
        match link.end(&request).await {
            Ok(n) => n,
            Err(err) => {
                tracing::debug!(worker = link.id(), error = %err, "end request not delivered");
                0
            }
        }
    }
}
