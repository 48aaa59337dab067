//! `/internal/worker/v1/*`: what worker processes tell the servers (heartbeats, session
//! events). Not browser routes and not in the OpenAPI document: every request must be signed
//! by a worker key listed in `workers.trusted_keys` (`readroom_domain::control_auth`), or it is
//! answered 401 before its body is read as JSON. Operators keep `/internal/` off the public
//! listener's load balancer path (see `docs/workers.md`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use readroom_domain::audit::{Action, Outcome};
use readroom_domain::control_auth::{self, Direction};
use readroom_domain::workers::{
    EventBatch, Heartbeat, HeartbeatReply, MAX_EVENTS_PER_BATCH, PROTOCOL,
};
use serde_json::json;

use crate::audit::event_by;
use crate::db::workers::WorkerRow;
use crate::state::AppState;

/// A refused request: its status and JSON error (small, so `Result`s stay cheap).
type Refused = (StatusCode, Json<serde_json::Value>);

fn refused(status: StatusCode, code: &str, message: impl Into<String>) -> Refused {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message.into() } })),
    )
}

fn refuse(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    refused(status, code, message).into_response()
}

/// The signing worker's public key (hex), if the request is signed by a trusted worker key.
fn signed_by(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, Refused> {
    let trusted: Vec<[u8; 32]> = state
        .config
        .workers
        .trusted_keys
        .iter()
        .filter_map(|key| control_auth::parse_public_key(key).ok())
        .collect();
    let header = headers
        .get(control_auth::HEADER)
        .and_then(|v| v.to_str().ok());
    control_auth::verify(
        header,
        Direction::WorkerToServer,
        method.as_str(),
        uri.path(),
        body,
        crate::auth::now_unix(),
        |key| trusted.contains(key),
    )
    .map(hex::encode)
    .map_err(|err| {
        tracing::warn!(error = %err, "worker request refused");
        refused(StatusCode::UNAUTHORIZED, "unauthorized", err.to_string())
    })
}

/// `POST /internal/worker/v1/heartbeat`: registers or refreshes a worker.
pub async fn heartbeat(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match signed_by(&state, &method, &uri, &headers, &body) {
        Ok(key) => key,
        Err(refused) => return refused.into_response(),
    };
    let beat: Heartbeat = match serde_json::from_slice(&body) {
        Ok(beat) => beat,
        Err(err) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("heartbeat: {err}"),
            );
        }
    };
    if beat.protocol != PROTOCOL {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "this server speaks {PROTOCOL}, the worker {}",
                beat.protocol
            ),
        );
    }
    if beat.worker_id.is_empty()
        || beat.worker_id.len() > 128
        || !beat.control_url.starts_with("http")
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "worker_id and control_url are required",
        );
    }
    let now = crate::auth::now_unix();
    let known = match state.db.workers().await {
        Ok(rows) => rows.into_iter().find(|row| row.id == beat.worker_id),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the worker pool");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "database unavailable",
            );
        }
    };
    let stale = i64::try_from(state.config.workers.stale_after_secs).unwrap_or(i64::MAX);
    if let Some(row) = &known
        && row.public_key != key
        && now - row.last_seen_unix <= stale
    {
        // Another live worker holds this id: one trusted worker cannot take over another's.
        return refuse(
            StatusCode::CONFLICT,
            "conflict",
            format!("worker id {} is in use by another key", beat.worker_id),
        );
    }
    let row = WorkerRow {
        id: beat.worker_id.clone(),
        public_key: key.clone(),
        control_url: beat.control_url.clone(),
        media_address: beat.media_address.clone(),
        capacity: i64::from(beat.capacity),
        active_sessions: i64::from(beat.active_sessions),
        cpu_load: f64::from(beat.cpu_load),
        draining: beat.draining,
        registered_unix: now,
        last_seen_unix: now,
    };
    if let Err(err) = state.db.upsert_worker(&row).await {
        tracing::warn!(error = %err, "cannot record a heartbeat");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "database unavailable",
        );
    }
    metrics::counter!("readroom_worker_heartbeats_total").increment(1);
    let listed: Vec<uuid::Uuid> = beat.sessions.iter().map(|s| s.stream_id).collect();
    crate::workers::revalidate::reconcile(&state.db, &state.audit, &beat.worker_id, &listed, now)
        .await;
    let newly_seen = known.is_none_or(|row| now - row.last_seen_unix > stale);
    if newly_seen {
        tracing::info!(worker = %beat.worker_id, control = %beat.control_url, "worker registered");
        let draft = event_by(
            Action::WorkerRegistered,
            Outcome::Success,
            None,
            Some(format!("worker:{}", beat.worker_id)),
            None,
            json!({
                "control_url": beat.control_url,
                "media_address": beat.media_address,
                "capacity": beat.capacity,
                "public_key": key,
            }),
        );
        if let Err(err) = state.audit.record(draft).await {
            tracing::warn!(error = %err, "cannot audit a worker registration");
        }
    }
    Json(HeartbeatReply {
        interval_secs: state.config.worker.heartbeat_secs.max(1),
    })
    .into_response()
}

/// `POST /internal/worker/v1/events`: session events of a worker, recorded in order.
pub async fn events(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = signed_by(&state, &method, &uri, &headers, &body) {
        return refused.into_response();
    }
    let batch: EventBatch = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("events: {err}"),
            );
        }
    };
    if batch.events.len() > MAX_EVENTS_PER_BATCH {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("at most {MAX_EVENTS_PER_BATCH} events per batch"),
        );
    }
    match crate::workers::events::handle_all(
        &state.db,
        &state.audit,
        &batch.worker_id,
        &batch.events,
    )
    .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => {
            tracing::warn!(worker = %batch.worker_id, error = %err, "cannot record session events");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "events not recorded; send them again",
            )
        }
    }
}
