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
///
/// A body over the limit is still read, and thrown away, up to [`DRAIN_LIMIT`] before the 413
/// is sent: a server that answers and closes while the client is still writing resets the
/// connection, and the client sees a broken pipe instead of the refusal (as nginx's lingering
/// close avoids). A body declared larger than that is refused at once.
async fn receive_body(shedder: &Shedder, request: Request) -> Result<Request, Response> {
    let size = request.body().size_hint();
    if size.exact() == Some(0) {
        return Ok(request);
    }
    if size.lower() > DRAIN_LIMIT as u64 {
        return Err(body_refused("too_large", too_large_refusal(shedder)));
    }
    let Ok(_place) = shedder.bodies.try_acquire() else {
        return Err(overloaded("bodies"));
    };
    let (parts, body) = request.into_parts();
    let received = tokio::time::timeout(BODY_DEADLINE, collect(body, shedder.body_limit)).await;
    match received {
        Ok(Received::Whole(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Ok(Received::TooLarge) => Err(body_refused("too_large", too_large_refusal(shedder))),
        Ok(Received::Unreadable) => Err(body_refused(
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

/// How many bytes of a body over the limit are read and thrown away so that its client reads
/// the 413 rather than a reset connection.
const DRAIN_LIMIT: usize = 8 << 20;

/// What reading a body came to.
enum Received {
    /// The whole body, within the limit.
    Whole(axum::body::Bytes),
    /// Over the limit (read to its end, or to [`DRAIN_LIMIT`]).
    TooLarge,
    /// The connection failed while the body was being read.
    Unreadable,
}

/// Reads `body` to its end, keeping at most `limit` bytes.
async fn collect(mut body: Body, limit: usize) -> Received {
    use http_body_util::BodyExt;
    let mut kept = Vec::new();
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Received::Unreadable;
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        read = read.saturating_add(data.len());
        if read > DRAIN_LIMIT {
            return Received::TooLarge;
        }
        if read <= limit {
            kept.extend_from_slice(&data);
        }
    }
    if read > limit {
        Received::TooLarge
    } else {
        Received::Whole(kept.into())
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

    /// A body of `count` chunks of `size` bytes, counting how many were read.
    struct Chunks {
        count: usize,
        size: usize,
        read: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl HttpBody for Chunks {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            let read = self.read.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::task::Poll::Ready(
                (read < self.count)
                    .then(|| Ok(http_body::Frame::data(vec![b' '; self.size].into()))),
            )
        }
    }

    fn counted(count: usize, size: usize) -> (Body, Arc<std::sync::atomic::AtomicUsize>) {
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let body = Chunks {
            count,
            size,
            read: read.clone(),
        };
        (Body::new(body), read)
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_read_to_its_end_before_the_refusal() {
        let (body, read) = counted(32, 64 << 10);
        assert!(matches!(collect(body, 1 << 20).await, Received::TooLarge));
        // 32 chunks and the end.
        assert_eq!(read.load(std::sync::atomic::Ordering::SeqCst), 33);

        let (body, read) = counted(16, 64 << 10);
        let Received::Whole(bytes) = collect(body, 1 << 20).await else {
            panic!("a body of exactly the limit is taken");
        };
        assert_eq!(
            (bytes.len(), read.load(std::sync::atomic::Ordering::SeqCst)),
            (1 << 20, 17)
        );

        // Past the drain limit reading stops: a client cannot make the server read forever.
        let (body, read) = counted(1024, 64 << 10);
        assert!(matches!(collect(body, 1 << 20).await, Received::TooLarge));
        assert_eq!(
            read.load(std::sync::atomic::Ordering::SeqCst),
            DRAIN_LIMIT / (64 << 10) + 1
        );
    }
}
