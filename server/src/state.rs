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
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Renders `/metrics`; `None` when no recorder is installed (tests).
    pub metrics: Option<PrometheusHandle>,
    /// Sessions, identity providers, ticket signing.
    pub auth: Arc<AuthState>,
    /// The in-process streaming worker (embedded mode); `None` when this process holds no
    /// worker identity, and then `POST /api/cases/{id}/stream` answers 503.
    pub streamer: Option<readroom_worker::stream::Streamer>,
}
