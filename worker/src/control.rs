//! The worker's control API (`readroom-worker/1`, see `readroom_domain::workers`): what a
//! server may ask of a `readroom worker` process over HTTP. Every route but `/healthz` needs a
//! request signed with the server key this worker trusts (the public half of the ticket key);
//! anything else answers 401 before the body is read as JSON.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use readroom_domain::control_auth::{self, Direction};
use readroom_domain::workers::{
    EndSessions, Heartbeat, MAX_BODY_BYTES, OpenSession, RefusalCode, SessionsEnded, WorkerRefusal,
};
use serde::Serialize;

use crate::node::Status;
use crate::stream::Streamer;

/// What the control routes share.
#[derive(Clone)]
pub struct ControlState {
    /// The sessions.
    pub streamer: Streamer,
    /// The server key requests must be signed with.
    pub server_key: [u8; 32],
    /// This worker's registration (for `GET /v1/status`).
    pub status: Arc<Status>,
}

/// The router: `POST /v1/sessions`, `POST /v1/sessions/end`, `GET /v1/status`, `GET /healthz`.
pub fn router(state: ControlState) -> Router {
    Router::new()
        .route("/v1/sessions", post(open_session))
        .route("/v1/sessions/end", post(end_sessions))
        .route("/v1/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(request_span))
        .with_state(state)
}

/// Runs a request in a span with the server's request id (`x-request-id`, sent by the server
/// replica whose API request caused it), so one grader's request can be followed from the
/// server's log into this worker's (`session started` names the stream id from there on).
async fn request_span(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or("-")
        .to_owned();
    let span =
        tracing::info_span!("control", path = request.uri().path().to_owned(), request_id = %id);
    next.run(request).instrument(span).await
}

/// A refused request: its status and body (small, so `Result`s stay cheap).
type Refused = (StatusCode, axum::Json<WorkerRefusal>);

fn refusal(status: StatusCode, code: RefusalCode, message: impl Into<String>) -> Refused {
    (
        status,
        axum::Json(WorkerRefusal {
            code,
            message: message.into(),
        }),
    )
}

/// Checks the signature, then parses the body.
fn signed<T: serde::de::DeserializeOwned>(
    state: &ControlState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Refused> {
    check(state, method, uri, headers, body)?;
    serde_json::from_slice(body).map_err(|err| {
        refusal(
            StatusCode::BAD_REQUEST,
            RefusalCode::Internal,
            format!("the request body is not valid JSON for this route: {err}"),
        )
    })
}

/// Checks that the request is signed by the trusted server key.
fn check(
    state: &ControlState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refused> {
    let header = headers
        .get(control_auth::HEADER)
        .and_then(|v| v.to_str().ok());
    control_auth::verify(
        header,
        Direction::ServerToWorker,
        method.as_str(),
        uri.path(),
        body,
        crate::stream::now_unix(),
        |key| *key == state.server_key,
    )
    .map_err(|err| {
        tracing::warn!(error = %err, path = uri.path(), "control request refused");
        refusal(
            StatusCode::UNAUTHORIZED,
            RefusalCode::Ticket,
            err.to_string(),
        )
    })?;
    Ok(())
}

fn json<T: Serialize>(value: &T) -> Response {
    axum::Json(value).into_response()
}

async fn open_session(
    State(state): State<ControlState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: OpenSession = match signed(&state, &method, &uri, &headers, &body) {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    match state.streamer.open(request).await {
        Ok(opened) => json(&opened),
        Err(err) => {
            let refusal = err.refusal();
            let status = match refusal.code {
                RefusalCode::Ticket => StatusCode::FORBIDDEN,
                RefusalCode::BadOffer | RefusalCode::BadViewport => StatusCode::BAD_REQUEST,
                RefusalCode::Busy | RefusalCode::Draining => StatusCode::SERVICE_UNAVAILABLE,
                RefusalCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, axum::Json(refusal)).into_response()
        }
    }
}

async fn end_sessions(
    State(state): State<ControlState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: EndSessions = match signed(&state, &method, &uri, &headers, &body) {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    let ended = state.streamer.end(&request.filter, request.reason);
    if ended > 0 {
        tracing::info!(
            ended,
            reason = request.reason.as_str(),
            "sessions ended on request"
        );
    }
    json(&SessionsEnded { ended })
}

async fn status(
    State(state): State<ControlState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = check(&state, &method, &uri, &headers, b"") {
        return refused.into_response();
    }
    let heartbeat: Heartbeat = state.status.heartbeat(&state.streamer);
    json(&heartbeat)
}
