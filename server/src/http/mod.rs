//! The HTTP API and the embedded viewer.
//!
//! [`app`] builds the whole router. API routes are registered through utoipa-axum, so each
//! handler's `#[utoipa::path]` is both its route and its OpenAPI entry, including its access
//! policy (`x-readroom-policy`, see [`policy`]). Layers (outermost first): request id,
//! sensitive-header redaction, tracing, panic catching, security headers, body limit, timeout,
//! metrics; API routes also pass the policy middleware.

mod admin;
mod assets;
mod audit;
mod auth;
mod cases;
pub mod error;
mod extract;
mod format;
pub mod forwarded;
mod grading;
mod health;
pub(crate) mod layers;
mod me;
pub mod policy;
mod shed;
pub(crate) mod stream;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub use error::AppError;
pub use policy::{Policy, PolicyTable};
pub use shed::BODY_DEADLINE;

/// Largest request body accepted anywhere (bundle upload has its own route later).
const BODY_LIMIT: usize = 1024 * 1024;
/// Time limit for one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "readroom API",
        description = "Secure remote review and grading of ophthalmic exams. Every operation \
            carries `x-readroom-policy`: who may call it (public, signed-in, coordinator, case, \
            statistics, auditor, admin). State-changing requests need the session's `X-CSRF-Token`.",
    ),
    tags(
        (name = "auth", description = "Sign-in, sign-out, password, TOTP"),
        (name = "me", description = "The signed-in user"),
        (name = "studies", description = "Studies and assignments"),
        (name = "cases", description = "Cases and streaming tickets"),
        (name = "grading", description = "Grading forms, drafts, grades, adjudication, batches, statistics and exports"),
        (name = "admin", description = "Users and roles"),
        (name = "audit", description = "The tamper-evident audit log (auditors)"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of the API.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    extensions(("x-readroom-policy" = json!("public"))),
    responses((status = 200, description = "OpenAPI 3.1 document")))]
async fn openapi_json(
    Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json((*doc).clone())
}

/// The API routes and their OpenAPI document, before layers.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi_json))
        .routes(routes!(auth::providers))
        .routes(routes!(auth::login))
        .routes(routes!(auth::link))
        .routes(routes!(auth::oidc_start))
        .routes(routes!(auth::oidc_callback))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::logout_all))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::totp_setup))
        .routes(routes!(auth::totp_enable))
        .routes(routes!(auth::totp_disable))
        .routes(routes!(me::me))
        .routes(routes!(me::worklist))
        .routes(routes!(cases::list_studies))
        .routes(routes!(cases::study_cases))
        .routes(routes!(cases::create_assignment))
        .routes(routes!(cases::delete_assignment))
        .routes(routes!(cases::get_case))
        .routes(routes!(cases::mint_ticket))
        .routes(routes!(grading::case_form))
        .routes(routes!(grading::save_draft))
        .routes(routes!(grading::submit_grade))
        .routes(routes!(grading::amend_grade))
        .routes(routes!(grading::adjudication_queue))
        .routes(routes!(grading::get_study_form, grading::set_study_form))
        .routes(routes!(grading::list_batches, grading::create_batch))
        .routes(routes!(grading::reassign))
        .routes(routes!(grading::progress))
        .routes(routes!(grading::referrals))
        .routes(routes!(grading::agreement))
        .routes(routes!(grading::export))
        .routes(routes!(stream::start_stream))
        .routes(routes!(stream::stream_config))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(admin::update_user))
        .routes(routes!(admin::signin_link))
        .routes(routes!(admin::unlock))
        .routes(routes!(admin::grant))
        .routes(routes!(admin::revoke))
        .routes(routes!(audit::events))
        .routes(routes!(audit::export))
        .routes(routes!(audit::case_history))
        .routes(routes!(audit::cases_by_label))
        .routes(routes!(audit::user_activity))
        .routes(routes!(audit::anomaly_flags))
        .routes(routes!(audit::status))
        .routes(routes!(audit::actions))
        .split_for_parts()
}

/// The policy table of the API (what the middleware enforces).
pub fn policy_table() -> PolicyTable {
    PolicyTable::from_openapi(&api().1)
}

/// Builds the router with all routes and layers.
pub fn app(state: AppState) -> Router {
    let https = state.auth.cookie.secure;
    let (api, doc) = api();
    let table = Arc::new(PolicyTable::from_openapi(&doc));
    for (method, path) in &table.missing {
        tracing::error!(%method, path, "API route without x-readroom-policy: it will refuse every request");
    }
    let api = api
        .route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), table),
            policy::enforce,
        ))
        .layer(Extension(Arc::new(doc)));
    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/internal/worker/v1/heartbeat", post(workers::heartbeat))
        .route("/internal/worker/v1/events", post(workers::events))
        .merge(api)
        .route("/", get(assets::index))
        .route("/signin", get(assets::index))
        .route("/account", get(assets::index))
        .route("/admin/users", get(assets::index))
        .route("/audit", get(assets::index))
        .route("/cases/{id}", get(assets::index))
        .route("/studies/{code}", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .fallback(assets::not_found_page)
        .with_state(state.clone());
    let proxies = Arc::new(state.config.trusted_proxies.clone());
    let router = router.layer(axum::middleware::from_fn(move |request, next| {
        forwarded::apply(Arc::clone(&proxies), request, next)
    }));
    let router = layers::apply(router, BODY_LIMIT, REQUEST_TIMEOUT, https);
    // Shed before anything else is done for a request (request id, tracing, metrics, session,
    // database), so that a refusal costs next to nothing when a storm of requests comes in.
    let shedder = shed::Shedder::new(state.config.max_in_flight, BODY_LIMIT);
    router.layer(axum::middleware::from_fn(move |request, next| {
        shed::shed(shedder.clone(), request, next)
    }))
}
