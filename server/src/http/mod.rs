//! The HTTP API and the embedded viewer.
//!
//! [`app`] builds the whole router: the route table lives here, handlers live in modules that
//! mirror the URL tree. Layers (outermost first): request id, sensitive-header redaction, tracing,
//! panic catching, security headers, body limit, timeout, metrics.

mod assets;
mod cases;
pub mod error;
mod health;
mod layers;

use std::time::Duration;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub use error::AppError;

/// Largest request body accepted anywhere (bundle upload has its own route later).
const BODY_LIMIT: usize = 1024 * 1024;
/// Time limit for one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the router with all routes and layers.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/studies", get(cases::list_studies))
        .route("/cases", get(cases::list_cases))
        .fallback(error::api_not_found);
    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/api", api)
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .fallback(assets::not_found_page)
        .with_state(state);
    layers::apply(router, BODY_LIMIT, REQUEST_TIMEOUT)
}
