//! Signaling: the browser's SDP offer goes to a worker with a ticket the server signs; the
//! answer comes back. Media then flows browser ↔ worker directly.

use std::path::Path;

use axum::Json;
use axum::extract::State;
use base64::Engine;
use hmac::{Hmac, Mac};
use readroom_domain::stream_config::{IceServer, IceTransportPolicy, StreamConfig};
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
    /// Reuse a viewer session the server issued to this sign-in (reconnects); a new one if
    /// absent. An id the server did not issue to this sign-in is refused (403 `viewer_session`).
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
    /// STUN/TURN servers (`urls`, `username`, `credential`): the configured ones, then the
    /// TURN relay with credentials minted for this user (users who may stream only).
    #[schema(value_type = Vec<Object>)]
    pub ice_servers: Vec<IceServer>,
    /// The peer connection's `iceTransportPolicy`: `all`, or `relay` (relayed candidates only).
    #[schema(value_type = String)]
    pub ice_transport_policy: IceTransportPolicy,
    /// Seconds the minted TURN credentials stay valid (fetch again before); absent without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_expire_in_secs: Option<u64>,
}

/// The ICE servers the browser should use, with short-lived TURN credentials for users who may
/// stream (graders and adjudicators): username `<expiry unix time>:<user id>`, credential
/// base64(HMAC-SHA1(shared secret, username)), which the relay checks with the same secret.
#[utoipa::path(get, path = "/api/stream/config", tag = "cases",
    extensions(("x-readroom-policy" = json!("signed-in"))),
    responses((status = 200, body = StreamConfigView)))]
pub async fn stream_config(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<StreamConfigView>, AppError> {
    Ok(Json(stream_config_view(&state, &signed_in).await?))
}

/// The ICE settings for `signed_in`, as `GET /api/stream/config` answers (also put in a case
/// page's entry HTML).
pub async fn stream_config_view(
    state: &AppState,
    signed_in: &SignedIn,
) -> Result<StreamConfigView, AppError> {
    let stream = &state.config.stream;
    let mut ice_servers = stream.ice_servers.clone();
    let mut credentials_expire_in_secs = None;
    if stream.turn.enabled() && signed_in.principal.may_stream() {
        let secret = read_turn_secret(&stream.turn.shared_secret_file)
            .await
            .map_err(|err| AppError::Internal(format!("{err:#}")))?;
        let ttl = stream.turn.ttl().as_secs();
        let expires = crate::auth::now_unix().max(0) as u64 + ttl;
        let (username, credential) = turn_credential(secret.as_bytes(), expires, signed_in.user.id);
        ice_servers.push(IceServer {
            urls: stream.turn.urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
        credentials_expire_in_secs = Some(ttl);
    }
    Ok(StreamConfigView {
        ice_servers,
        ice_transport_policy: stream.ice_transport_policy,
        credentials_expire_in_secs,
    })
}

/// A TURN REST API credential (draft-uberti-behave-turn-rest, coturn's `use-auth-secret`):
/// `(username, credential)` for `user`, valid until `expires` (unix seconds).
pub fn turn_credential(secret: &[u8], expires: u64, user: Uuid) -> (String, String) {
    let username = format!("{expires}:{user}");
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// The TURN shared secret: the file's first line, without surrounding white space. Read at
/// each request, so a rotated file takes effect without a restart. Errors name the file, never
/// its content.
pub async fn read_turn_secret(path: &Path) -> anyhow::Result<String> {
    let text = tokio::fs::read_to_string(path).await.map_err(|err| {
        anyhow::anyhow!(
            "cannot read stream.turn.shared_secret_file {}: {err}",
            path.display()
        )
    })?;
    let secret = text.lines().next().unwrap_or_default().trim();
    if secret.len() < 16 {
        anyhow::bail!(
            "stream.turn.shared_secret_file {} must hold a secret of at least 16 characters on its first line",
            path.display()
        );
    }
    Ok(secret.to_owned())
}

/// Checks at start that the TURN shared secret can be read (when a relay is configured).
pub async fn check_turn_secret(stream: &StreamConfig) -> anyhow::Result<()> {
    if stream.turn.enabled() {
        read_turn_secret(&stream.turn.shared_secret_file).await?;
    }
    Ok(())
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
    let session = viewer_session(&state, &signed_in, id, body.viewer_session).await?;
    let issued = view_ticket(&state, &signed_in, id, session).await?;
    // The shape only (the worker checks codecs and the data channel): garbage is refused here,
    // whether or not a worker is available, and never sent to one.
    if !looks_like_sdp(&body.offer.sdp) {
        return Err(AppError::BadRequest(
            "offer.sdp is not an SDP offer (it must start with v=0 and have media sections)".into(),
        ));
    }
    let who = Requester {
        user: signed_in.user.id,
        case: issued.case_id,
        auth_session: signed_in.session.id,
        viewer_session: session.to_string(),
    };
    let request = OpenSession {
        ticket: issued.ticket,
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
        Some(case_target(issued.case_id)),
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

/// The viewer session of a stream or ticket request: a new one, issued to this sign-in, when
/// `requested` is `None`; else `requested` if the server issued it to this same user and sign-in
/// session. The invisible watermark carries this id, so a client must never choose it: another
/// grader's id (or a made-up one) is refused with 403 `viewer_session` and a `case.denied`
/// event naming the reason.
pub(super) async fn viewer_session(
    state: &AppState,
    signed_in: &SignedIn,
    case_id: Uuid,
    requested: Option<Uuid>,
) -> Result<Uuid, AppError> {
    let (user, auth_session) = (signed_in.user.id, signed_in.session.id);
    let Some(requested) = requested else {
        let now = crate::auth::now_unix();
        return Ok(state
            .db
            .issue_viewer_session(user, auth_session, now)
            .await?);
    };
    if state
        .db
        .viewer_session_is_theirs(requested, user, auth_session)
        .await?
    {
        return Ok(requested);
    }
    tracing::info!(user_id = %user, "viewer session refused: not issued to this sign-in");
    let draft = signed_in.event(
        Action::CaseDenied,
        Outcome::Denied,
        Some(case_target(case_id)),
        json!({ "reason": "viewer_session_not_issued", "viewer_session": requested }),
    );
    state.audit.record(draft).await?;
    Err(AppError::Forbidden {
        code: "viewer_session",
        message: "viewer_session was not issued to this sign-in; leave it out to get a new one"
            .into(),
    })
}

/// Whether `sdp` has the shape of a session description: `v=0` first, then `m=` sections.
fn looks_like_sdp(sdp: &str) -> bool {
    sdp.starts_with("v=0") && sdp.lines().any(|line| line.starts_with("m="))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked against a value computed independently:
    /// `printf '1700000000:00000000-0000-0000-0000-000000000001' |
    /// openssl dgst -sha1 -hmac 'north-hospital-turn-secret' -binary | base64`.
    #[test]
    fn turn_credentials_follow_the_rest_api_scheme() {
        let user = Uuid::from_u128(1);
        let (username, credential) =
            turn_credential(b"north-hospital-turn-secret", 1_700_000_000, user);
        assert_eq!(username, "1700000000:00000000-0000-0000-0000-000000000001");
        assert_eq!(credential, "MWGfNGI7YtxCwCKzHibDnyeGe3w=");
    }
}
