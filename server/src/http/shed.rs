//! Load shedding: past `max_in_flight` requests being answered at once, a new request is refused
//! at once with `503 Service Unavailable`, `Retry-After: 1` and the JSON error `overloaded`,
//! instead of queueing behind the database pool until every request times out (the registry in
//! our seeds fell over at 28,000 concurrent users that way). Nothing is queued, so the server
//! recovers by itself as soon as the load falls; a load balancer or the viewer retries later.
//!
//! Health, readiness and metrics (`/healthz`, `/readyz`, `/metrics`) and the workers' heartbeats
//! and reports (`/internal/worker/…`) are never shed: an overloaded replica must stay visible to
//! its operators and keep its worker pool, and a readiness probe that failed under load would
//! move the whole load onto the other replicas.

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::AppError;

/// The in-flight budget shared by every request of one server.
#[derive(Clone)]
pub struct Shedder {
    permits: Arc<Semaphore>,
}

impl Shedder {
    /// A budget of `max_in_flight` requests at once (0: no limit).
    pub fn new(max_in_flight: usize) -> Shedder {
        let permits = if max_in_flight == 0 {
            Semaphore::MAX_PERMITS
        } else {
            max_in_flight.min(Semaphore::MAX_PERMITS)
        };
        Shedder {
            permits: Arc::new(Semaphore::new(permits)),
        }
    }
}

/// Whether a request to `path` is answered whatever the load.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics") || path.starts_with("/internal/worker/")
}

/// The middleware: answers the request within the budget, or refuses it with 503.
pub async fn shed(shedder: Shedder, request: Request, next: Next) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(_permit) = shedder.permits.try_acquire_owned() else {
        metrics::counter!("readroom_http_shed_total").increment(1);
        return AppError::Overloaded.into_response();
    };
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_and_workers_are_never_shed() {
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/internal/worker/v1/heartbeat",
        ] {
            assert!(exempt(path), "{path}");
        }
        for path in [
            "/",
            "/api/worklist",
            "/api/me",
            "/assets/app.js",
            "/healthz/x",
            "/internal",
        ] {
            assert!(!exempt(path), "{path}");
        }
    }

    #[test]
    fn zero_means_no_limit() {
        assert_eq!(
            Shedder::new(0).permits.available_permits(),
            Semaphore::MAX_PERMITS
        );
        assert_eq!(Shedder::new(3).permits.available_permits(), 3);
    }
}
