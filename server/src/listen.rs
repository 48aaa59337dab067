//! The HTTP listener: how many connections one server holds at once, and what happens past that.
//!
//! Every connection is a file descriptor, and so are the database's connections, the store's
//! files and the embedded worker's sockets. A server that accepted connections until the
//! process ran out of descriptors would fail everything else at that moment (`accept` itself
//! fails with `EMFILE`, and axum then stops accepting for a second at a time). So the server
//! raises its soft open-file limit to the hard one at start ([`raise_open_file_limit`]), keeps
//! a reserve of descriptors for everything else, and holds at most
//! [`Config::max_connections`](crate::config::Config::max_connections) connections: past it a
//! new connection is answered `503 Service Unavailable` with `Retry-After: 1` and closed at
//! once (counted in `readroom_http_connections_refused_total`), so a client or load balancer
//! retries elsewhere or later and the server recovers by itself when connections close.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors kept for everything but client connections when the connection limit is derived
/// from the open-file limit: the database pool, store files, the embedded worker's sockets,
/// the load balancer's health checks. At least this many, and at least a tenth of the limit.
const RESERVED_DESCRIPTORS: u64 = 512;

/// What a connection past the limit is told before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\
content-type: application/json\r\ncontent-length: 77\r\nconnection: close\r\n\r\n\
{\"error\":{\"code\":\"overloaded\",\"message\":\"too many connections; retry later\"}}";

/// How long a refused connection is given to take its refusal.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(1);

/// Raises this process's soft limit on open files to its hard limit (as servers do: the soft
/// limit is often 1,024 while the hard one is far higher) and returns the limit now in force,
/// or `None` where it cannot be read.
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes into the `rlimit` we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `setrlimit` reads the `rlimit` we pass by reference and has no other effect
        // than on this process's limit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Some(limit.rlim_cur)
}

/// The connection limit for `configured` (0: derived from `open_files`, the open-file limit,
/// less a reserve; no limit when that is unknown or unlimited).
pub fn connection_limit(configured: usize, open_files: Option<u64>) -> usize {
    if configured > 0 {
        return configured.min(Semaphore::MAX_PERMITS);
    }
    match open_files {
        Some(files) if files < libc::RLIM_INFINITY => {
            let reserve = RESERVED_DESCRIPTORS.max(files / 10);
            usize::try_from(files.saturating_sub(reserve))
                .unwrap_or(usize::MAX)
                .clamp(1, Semaphore::MAX_PERMITS)
        }
        _ => Semaphore::MAX_PERMITS,
    }
}

/// A TCP listener that holds at most a fixed number of connections at once (see the module).
pub struct CappedListener {
    listener: TcpListener,
    places: Arc<Semaphore>,
    last_error_logged: Option<Instant>,
}

impl CappedListener {
    /// Holds at most `limit` connections accepted from `listener` at once.
    pub fn new(listener: TcpListener, limit: usize) -> CappedListener {
        CappedListener {
            listener,
            places: Arc::new(Semaphore::new(limit.clamp(1, Semaphore::MAX_PERMITS))),
            last_error_logged: None,
        }
    }

    /// Logs `message` at most once a second (a storm of refusals must not flood the log).
    fn log_at_most_every_second(&mut self, message: impl FnOnce()) {
        let now = Instant::now();
        if self
            .last_error_logged
            .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1))
        {
            self.last_error_logged = Some(now);
            message();
        }
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = HeldConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (HeldConnection, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => match Arc::clone(&self.places).try_acquire_owned() {
                    Ok(place) => {
                        // Answers are written whole; no need to wait for the client's ACK.
                        let _ = stream.set_nodelay(true);
                        metrics::gauge!("readroom_http_connections").increment(1.0);
                        return (
                            HeldConnection {
                                stream,
                                _place: place,
                            },
                            peer,
                        );
                    }
                    Err(_) => {
                        metrics::counter!("readroom_http_connections_refused_total").increment(1);
                        self.log_at_most_every_second(|| {
                            tracing::warn!(
                                "connection limit reached: new connections are refused with 503"
                            )
                        });
                        tokio::spawn(refuse(stream));
                    }
                },
                Err(err) if is_connection_error(&err) => {}
                Err(err) => {
                    // Out of descriptors despite the reserve (EMFILE, ENFILE) or out of memory:
                    // wait a little for connections to close rather than spin.
                    self.log_at_most_every_second(
                        || tracing::error!(error = %err, "accepting a connection failed"),
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Tells a connection past the limit to come back later, and closes it. What the client sent
/// meanwhile (its request) is read and dropped before the close, within the deadline: closing
/// a socket with unread data resets the connection, and the client would see the reset instead
/// of the refusal.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(REFUSAL_DEADLINE, async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// An accepted connection, holding its place among those the server holds until it is closed.
pub struct HeldConnection {
    stream: TcpStream,
    _place: OwnedSemaphorePermit,
}

impl Drop for HeldConnection {
    fn drop(&mut self) {
        metrics::gauge!("readroom_http_connections").decrement(1.0);
    }
}

impl AsyncRead for HeldConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for HeldConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_well_formed_http_answer() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "overloaded");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains("\r\nretry-after: 1"));
    }

    #[test]
    fn the_limit_leaves_descriptors_for_everything_else() {
        assert_eq!(connection_limit(0, Some(20_000)), 18_000);
        assert_eq!(connection_limit(0, Some(1_024)), 512);
        assert_eq!(connection_limit(0, Some(100)), 1);
        assert_eq!(connection_limit(0, None), Semaphore::MAX_PERMITS);
        assert_eq!(
            connection_limit(0, Some(libc::RLIM_INFINITY)),
            Semaphore::MAX_PERMITS
        );
        assert_eq!(connection_limit(300, Some(20_000)), 300);
    }
}
