//! Load shedding: past `max_in_flight` requests being answered at once, a new request waits at
//! most [`ADMISSION_WAIT`] (1 s, first come first served) for a place, and is then refused with
//! `503 Service Unavailable`, `Retry-After: 1` and the JSON error `overloaded`, instead of
//! queueing behind the database pool until every request times out (the registry in our seeds
//! fell over at 28,000 concurrent users that way). The wait is bounded, so the server recovers
//! by itself as soon as the load falls; a load balancer or the viewer retries later. The wait
//! also paces clients that resend at once after a 503: refusing them as fast as they resend
//! took both cores and starved the admitted requests (BENCHMARKS.md "Surge").
//!
//! A request's body is received *before* it takes a place in that budget, within
//! [`BODY_DEADLINE`] and a budget of its own (as many bodies in transit as requests answered).
//! A client that sends its body slowly, or never (slowloris), therefore holds a connection and
//! a body place for at most the deadline, never a place of the requests being answered: reads
//! (the worklist, a case, the viewer's files) keep being served however many such clients
//! there are, and at worst new bodies are refused with 503 while the body budget is full.
//!
//! Health, readiness and metrics (`/healthz`, `/readyz`, `/metrics`) and the workers' heartbeats
//! and reports (`/internal/worker/…`) are never shed: an overloaded replica must stay visible to
//! its operators and keep its worker pool, and a readiness probe that failed under load would
//! move the whole load onto the other replicas.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::AppError;

/// How long a request body may take to arrive in full (bodies are at most 1 MiB: this is a
/// floor of ~100 KiB/s, far below any grader's link, and JSON bodies are a few KiB).
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// How long a request waits for a place among those being answered before it is refused: long
/// enough to absorb a burst, short enough that a refusal comes well before a browser gives up.
pub const ADMISSION_WAIT: Duration = Duration::from_secs(1);

/// The in-flight budgets shared by every request of one server.
#[derive(Clone)]
pub struct Shedder {
    /// Requests being answered (handler, database).
    permits: Arc<Semaphore>,
    /// Request bodies being received.
    bodies: Arc<Semaphore>,
    /// The largest body taken, in bytes.
    body_limit: usize,
}

impl Shedder {
    /// A budget of `max_in_flight` requests being answered and as many bodies (of at most
    /// `body_limit` bytes) being received at once (0: no limit).
    pub fn new(max_in_flight: usize, body_limit: usize) -> Shedder {
        let permits = if max_in_flight == 0 {
            Semaphore::MAX_PERMITS
        } else {
            max_in_flight.min(Semaphore::MAX_PERMITS)
        };
        Shedder {
            permits: Arc::new(Semaphore::new(permits)),
            bodies: Arc::new(Semaphore::new(permits)),
            body_limit,
        }
    }
}

/// Whether a request to `path` is answered whatever the load.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics") || path.starts_with("/internal/worker/")
}

/// The middleware, outermost of all: receives the body, then answers the request within the
/// budget, or refuses it with 503 (408 when the body does not arrive in time, 413 when it is
/// over the limit). Refusals therefore skip request ids, tracing and the request metrics; they
/// are counted in `readroom_http_shed_total`.
pub async fn shed(shedder: Shedder, request: Request, next: Next) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let request = match receive_body(&shedder, request).await {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    // A short bounded wait for a place, FIFO: a burst is absorbed, and a storm of clients that
    // ignore `Retry-After` is answered at the rate places free up (plus one refusal a second
    // each), instead of refused as fast as they resend while the admitted requests starve.
    let permit = tokio::time::timeout(ADMISSION_WAIT, shedder.permits.acquire()).await;
    let Ok(Ok(_permit)) = permit else {
        return overloaded("requests");
    };
    next.run(request).await
}

/// The request with its body received in full (a request without a body as it is).
async fn receive_body(shedder: &Shedder, request: Request) -> Result<Request, Response> {
    let size = request.body().size_hint();
    if size.exact() == Some(0) {
        return Ok(request);
    }
    if size.lower() > shedder.body_limit as u64 {
        return Err(body_refused("too_large", too_large_refusal(shedder)));
    }
    let Ok(_place) = shedder.bodies.try_acquire() else {
        return Err(overloaded("bodies"));
    };
    let (parts, body) = request.into_parts();
    let received = tokio::time::timeout(
        BODY_DEADLINE,
        axum::body::to_bytes(body, shedder.body_limit),
    )
    .await;
    match received {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Ok(Err(err)) if too_large(&err) => {
            Err(body_refused("too_large", too_large_refusal(shedder)))
        }
        Ok(Err(_)) => Err(body_refused(
            "unreadable",
            AppError::BadRequest("the request body could not be read".into()).into_response(),
        )),
        Err(_) => Err(body_refused(
            "timeout",
            AppError::RequestTimeout(format!(
                "the request body did not arrive within {} s",
                BODY_DEADLINE.as_secs()
            ))
            .into_response(),
        )),
    }
}

/// Counts a body refused for `reason` (`timeout`, `too_large`, `unreadable`).
fn body_refused(reason: &'static str, refusal: Response) -> Response {
    metrics::counter!("readroom_http_bodies_refused_total", "reason" => reason).increment(1);
    refusal
}

/// 413 `too_large`, naming the limit.
fn too_large_refusal(shedder: &Shedder) -> Response {
    AppError::TooLarge(format!(
        "the request body is over the {} KiB limit",
        shedder.body_limit / 1024
    ))
    .into_response()
}

/// Whether reading a body failed on the body limit (`Limited`'s error).
fn too_large(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// 503 `overloaded`, counted by which budget was full (`requests` or `bodies`).
fn overloaded(budget: &'static str) -> Response {
    metrics::counter!("readroom_http_shed_total", "budget" => budget).increment(1);
    AppError::Overloaded.into_response()
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
            Shedder::new(0, 1024).permits.available_permits(),
            Semaphore::MAX_PERMITS
        );
        assert_eq!(Shedder::new(3, 1024).permits.available_permits(), 3);
        assert_eq!(Shedder::new(3, 1024).bodies.available_permits(), 3);
    }
}
