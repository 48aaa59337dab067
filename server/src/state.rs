//! The shared, cheaply cloned state of the HTTP server.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use readroom_store::ObjectStore;

use crate::auth::AuthState;
use crate::config::Config;
use crate::db::Db;

/// Everything a handler may need. Clone is cheap (pool handles and `Arc`s).
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The object store (ciphertext only).
    pub store: Arc<dyn ObjectStore>,
    /// Where the signed audit checkpoints go (`store` unless `store.s3.checkpoint_bucket`).
    pub checkpoints: Arc<dyn ObjectStore>,
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Renders `/metrics`; `None` when no recorder is installed (tests).
    pub metrics: Option<PrometheusHandle>,
    /// Sessions, identity providers, ticket signing.
    pub auth: Arc<AuthState>,
    /// The workers sessions are placed on: worker processes (distributed mode), the
    /// in-process worker (embedded mode), or none (`POST /api/cases/{id}/stream` answers 503).
    pub workers: crate::workers::Pool,
    /// The in-process worker, when this process runs one (embedded mode).
    #[cfg(feature = "embedded-worker")]
    pub embedded: Option<Arc<crate::workers::embedded::EmbeddedLink>>,
    /// Records audit events (one writer task per process).
    pub audit: crate::audit::Audit,
    /// Signs audit checkpoints.
    pub audit_signer: Arc<readroom_domain::audit::CheckpointSigner>,
    /// How far the chain has been verified in this process (the auditor page's chain status).
    pub audit_verified: Arc<tokio::sync::Mutex<crate::audit::VerifiedChain>>,
}
