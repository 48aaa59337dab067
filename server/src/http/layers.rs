//! Cross-cutting layers: request ids, redaction, tracing, security headers, `no-store` on API
//! answers, limits, metrics.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;

use super::error::InternalCause;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Content Security Policy of every response: no inline script, no framing, no third parties.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// `Strict-Transport-Security` when the public URL is https: one year, subdomains included.
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Wraps `router` in the standard layers; `https` adds HSTS.
pub fn apply(router: Router, body_limit: usize, timeout: Duration, https: bool) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let security = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ));
    let hsts = https.then(|| {
        SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        )
    });
    let router = match hsts {
        Some(layer) => router.layer(layer),
        None => router,
    };
    router.layer(middleware::from_fn(record_metrics)).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(middleware::from_fn(scope_request_id))
            .layer(middleware::from_fn(no_store_api))
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
            ]))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    // Log the matched route, not the raw path, so ids in URLs stay out of logs.
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_else(|| "unmatched".to_owned());
                    tracing::info_span!("http", method = %request.method(), route, request_id = id)
                }),
            )
            .layer(middleware::from_fn(log_internal_errors))
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(CatchPanicLayer::new())
            .layer(security)
            .layer(RequestBodyLimitLayer::new(body_limit))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                timeout,
            )),
    )
}

tokio::task_local! {
    /// The id of the request being answered (`x-request-id`), for calls it makes to workers.
    pub static REQUEST_ID: String;
}

/// Makes the request id readable as [`REQUEST_ID`] while the request is answered.
async fn scope_request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    REQUEST_ID.scope(id, next.run(request)).await
}

/// Logs the cause of an internal error ([`InternalCause`], put on the response by
/// `AppError::into_response`) inside the request's span, so the line carries the request id,
/// and takes it off the response.
async fn log_internal_errors(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Some(InternalCause(cause)) = response.extensions_mut().remove::<InternalCause>() {
        tracing::error!(error = %cause, "internal error");
    }
    response
}

/// `Cache-Control: no-store` on every `/api/` answer (errors and redirects included): API
/// answers are personal (case data, grades, audit rows, CSRF tokens) and must not stay in a
/// browser or proxy cache.
async fn no_store_api(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    if api {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Counts requests and their latency per route and status.
async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("readroom_http_requests_total", &labels).increment(1);
    metrics::histogram!("readroom_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
