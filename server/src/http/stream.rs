//! Signaling: the browser's SDP offer goes to a worker with a ticket the server signs; the
//! answer comes back. Media then flows browser ↔ worker directly.

use axum::Json;
use axum::extract::State;
use readroom_domain::stream_config::IceServer;
use readroom_domain::view::Viewport;
use readroom_domain::workers::{OpenSession, RefusalCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppError;
use super::cases::view_ticket;
use super::extract::{ApiJson, ApiPath};
use crate::audit::case_target;
use crate::auth::SignedIn;
use crate::state::AppState;
use crate::workers::{PoolError, Requester};
use readroom_domain::audit::{Action, Outcome};
use serde_json::json;

/// Longest SDP offer accepted (a browser's offer is a few KiB).
const MAX_SDP: usize = 64 * 1024;

/// An SDP description as the browser's `RTCSessionDescription` serializes it.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionDescription {
    /// `offer` or `answer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The SDP text.
    pub sdp: String,
}

/// The viewport in device pixels.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewportBody {
    /// Width in device pixels (even).
    pub width: u32,
    /// Height in device pixels (even).
    pub height: u32,
    /// Device pixel ratio.
    pub dpr: f32,
}

/// `POST /api/cases/{id}/stream` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamRequest {
    /// The browser's offer (non-trickle: with its candidates).
    pub offer: SessionDescription,
    /// The drawing surface.
    pub viewport: ViewportBody,
    /// Reuse a viewer session (reconnects); a new one if absent.
    #[serde(default)]
    pub viewer_session: Option<Uuid>,
}

/// The worker's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamAnswer {
    /// SDP answer.
    pub answer: SessionDescription,
    /// The viewer session (for next-case tickets and reconnects).
    pub viewer_session: String,
    /// This stream session (one peer connection).
    pub session_id: String,
}

/// ICE servers for the browser.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamConfigView {
    /// STUN/TURN servers (`urls`, `username`, `credential`).
    #[schema(value_type = Vec<Object>)]
    pub ice_servers: Vec<IceServer>,
}

/// The ICE servers the browser should use.
#[utoipa::path(get, path = "/api/stream/config", tag = "cases",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    responses((status = 200, body = StreamConfigView)))]
pub async fn stream_config(State(state): State<AppState>) -> Json<StreamConfigView> {
    Json(StreamConfigView {
        ice_servers: state.config.stream.ice_servers.clone(),
    })
}

/// Starts streaming a case: the browser's offer and viewport in, the worker's answer out.
/// Only users who may view the case's images (assigned graders and adjudicators) get one.
#[utoipa::path(post, path = "/api/cases/{id}/stream", tag = "cases",
    extensions(("x-readroom-policy" = json!("case"))),
    params(("id" = Uuid, Path, description = "Case id")),
    request_body = StreamRequest,
    responses((status = 200, body = StreamAnswer),
        (status = 400, description = "Malformed offer or viewport"),
        (status = 404, description = "No such case, or not yours to view"),
        (status = 429, description = "Too many open streams for this user"),
        (status = 503, description = "No worker available")))]
pub async fn start_stream(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<StreamRequest>,
) -> Result<Json<StreamAnswer>, AppError> {
    if body.offer.kind != "offer" {
        return Err(AppError::BadRequest("offer.type must be \"offer\"".into()));
    }
    if body.offer.sdp.len() > MAX_SDP {
        return Err(AppError::BadRequest(format!(
            "offer.sdp is longer than {MAX_SDP} bytes"
        )));
    }
    let viewport = Viewport {
        width: body.viewport.width,
        height: body.viewport.height,
        dpr: body.viewport.dpr,
    };
    viewport
        .validate()
        .map_err(|err| AppError::BadRequest(format!("viewport: {err}")))?;
    let session = body.viewer_session.unwrap_or_else(Uuid::new_v4);
    let (ticket, _) = view_ticket(&state, &signed_in, id, session).await?;
    // The shape only (the worker checks codecs and the data channel): garbage is refused here,
    // whether or not a worker is available, and never sent to one.
    if !looks_like_sdp(&body.offer.sdp) {
        return Err(AppError::BadRequest(
            "offer.sdp is not an SDP offer (it must start with v=0 and have media sections)".into(),
        ));
    }
    let who = Requester {
        user: signed_in.user.id,
        case: id,
        auth_session: signed_in.session.id,
        viewer_session: session.to_string(),
    };
    let request = OpenSession {
        ticket,
        offer_sdp: body.offer.sdp,
        viewport,
    };
    let (answer, worker) = state
        .workers
        .open(&who, request)
        .await
        .map_err(|err| match err {
            PoolError::Refused(refusal) => match refusal.code {
                RefusalCode::BadOffer | RefusalCode::BadViewport => {
                    AppError::BadRequest(refusal.message)
                }
                RefusalCode::Busy | RefusalCode::Draining => AppError::Unavailable(refusal.message),
                RefusalCode::Ticket | RefusalCode::Internal => AppError::Internal(refusal.message),
            },
            PoolError::UserLimit(_) => AppError::TooManyRequests {
                code: "too_many_streams",
                message: err.to_string(),
                retry_after: None,
            },
            PoolError::NoWorker(message) => {
                tracing::warn!(error = %message, "no worker took a stream");
                AppError::Unavailable("no streaming worker is available; try again shortly".into())
            }
            PoolError::Db(err) => err.into(),
        })?;
    tracing::info!(user_id = %signed_in.user.id, stream = %answer.stream_id, "stream started");
    let draft = signed_in.event(
        Action::StreamStarted,
        Outcome::Success,
        Some(case_target(id)),
        json!({
            "stream_id": answer.stream_id,
            "viewer_session": session,
            "worker": worker,
            "viewport": { "width": viewport.width, "height": viewport.height, "dpr": viewport.dpr },
        }),
    );
    state.audit.record(draft).await?;
    Ok(Json(StreamAnswer {
        answer: SessionDescription {
            kind: "answer".into(),
            sdp: answer.answer_sdp,
        },
        viewer_session: session.to_string(),
        session_id: answer.stream_id.to_string(),
    }))
}

/// Whether `sdp` has the shape of a session description: `v=0` first, then `m=` sections.
fn looks_like_sdp(sdp: &str) -> bool {
    sdp.starts_with("v=0") && sdp.lines().any(|line| line.starts_with("m="))
}
