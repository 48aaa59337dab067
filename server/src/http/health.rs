//! `/healthz` (the process is up), `/readyz` (database and store reachable), `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::state::AppState;

/// Liveness: answers while the process serves requests.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and the object store is reachable.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = match state.db.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness: database");
            "unavailable".to_owned()
        }
    };
    let store = match state.store.check().await {
        Ok(()) => "ok".to_owned(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness: object store");
            "unavailable".to_owned()
        }
    };
    let ready = database == "ok" && store == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": { "database": database, "store": store },
    });
    (status, Json(body)).into_response()
}

/// Prometheus text exposition, for a scraper holding `metrics_token` (`Authorization: Bearer
/// <token>`; 401 without it). Without a configured token the route answers 404: per-route
/// request counts are not for the public.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let expected = state.config.metrics_token.as_bytes();
    if expected.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .as_bytes();
    if !bool::from(given.ct_eq(expected)) {
        return (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
        )
            .into_response();
    }
    let body = state
        .metrics
        .as_ref()
        .map(|handle| handle.render())
        .unwrap_or_default();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}
