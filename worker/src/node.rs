//! A worker process (`readroom worker`): the streamer behind the control API, registered with
//! the servers by heartbeats, reporting session events to them, draining on shutdown.
//!
//! The process holds the age identities and nothing of the API: no database, no user table.
//! It talks to servers only through `readroom_domain::workers` over signed HTTP
//! ([`crate::control`] for what servers ask, [`Reporter`] for what it tells them).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use readroom_domain::control_auth::{self, ControlSigner, Direction};
use readroom_domain::stream_config::StreamConfig;
use readroom_domain::ticket::TicketVerifier;
use readroom_domain::workers::{
    EventBatch, Heartbeat, HeartbeatReply, MAX_EVENTS_PER_BATCH, PROTOCOL, SessionEvent,
};
use readroom_store::ObjectStore;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::control::{self, ControlState};
use crate::keys::WorkerIdentity;
use crate::stream::Streamer;

/// Events kept for the servers while none answers; past this the oldest are dropped (and
/// logged), so a long outage cannot exhaust memory.
const MAX_PENDING_EVENTS: usize = 100_000;

/// How a worker process runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This worker's id (its name in the pool; stable across restarts).
    pub id: String,
    /// Where the control API listens.
    pub listen: SocketAddr,
    /// Where servers reach the control API; empty: `http://<listen>`.
    pub advertise_url: String,
    /// Server base URLs to register with (any replica, or the load balancer).
    pub servers: Vec<String>,
    /// The servers' public key (the ticket key): control requests and tickets must verify
    /// with it.
    pub server_key: [u8; 32],
    /// This worker's own signing seed (its credential with the servers).
    pub control_seed: [u8; 32],
    /// Time between heartbeats.
    pub heartbeat: Duration,
    /// How long a drain waits for sessions to finish before ending them.
    pub drain_timeout: Duration,
    /// Streaming settings.
    pub stream: StreamConfig,
}

/// What a heartbeat says about this worker besides its sessions.
#[derive(Debug)]
pub struct Status {
    id: String,
    control_url: String,
    media_address: String,
}

impl Status {
    /// This worker's registration now.
    pub fn heartbeat(&self, streamer: &Streamer) -> Heartbeat {
        let sessions = streamer.sessions();
        Heartbeat {
            protocol: PROTOCOL.to_owned(),
            worker_id: self.id.clone(),
            control_url: self.control_url.clone(),
            media_address: self.media_address.clone(),
            capacity: u32::try_from(streamer.config().max_sessions).unwrap_or(u32::MAX),
            active_sessions: u32::try_from(sessions.len()).unwrap_or(u32::MAX),
            cpu_load: cpu_load(),
            draining: streamer.is_draining(),
            sessions,
        }
    }
}

/// One-minute load average per core (0 when unknown).
fn cpu_load() -> f32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f32;
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f32>().ok())
        .map_or(0.0, |load| load / cores)
}

/// Signed requests to the servers, tried in turn until one answers.
#[derive(Clone)]
pub struct Reporter {
    http: reqwest::Client,
    servers: Arc<Vec<String>>,
    signer: Arc<ControlSigner>,
    next: Arc<AtomicUsize>,
}

impl Reporter {
    /// A reporter signing with `seed`.
    pub fn new(servers: Vec<String>, seed: &[u8; 32]) -> Reporter {
        Reporter {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .connect_timeout(Duration::from_secs(1))
                .build()
                .unwrap_or_default(),
            servers: Arc::new(
                servers
                    .into_iter()
                    .map(|s| s.trim_end_matches('/').to_owned())
                    .collect(),
            ),
            signer: Arc::new(ControlSigner::from_seed(seed, Direction::WorkerToServer)),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The public key the servers must trust (`workers.trusted_keys`).
    pub fn public_key_hex(&self) -> String {
        self.signer.public_key_hex()
    }

    /// POSTs `body` to `path` on the first server that answers 2xx.
    pub async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, String> {
        let bytes = serde_json::to_vec(body).map_err(|err| err.to_string())?;
        let mut last = String::from("no server is configured");
        let count = self.servers.len();
        let start = self.next.load(Ordering::Relaxed);
        for offset in 0..count {
            let index = (start + offset) % count;
            let base = &self.servers[index];
            let header = self
                .signer
                .sign("POST", path, &bytes, crate::stream::now_unix());
            let sent = self
                .http
                .post(format!("{base}{path}"))
                .header(control_auth::HEADER, header)
                .header("content-type", "application/json")
                .body(bytes.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    self.next.store(index, Ordering::Relaxed);
                    let body = response.bytes().await.map_err(|err| err.to_string())?;
                    let body: &[u8] = if body.is_empty() { b"null" } else { &body };
                    return serde_json::from_slice(body).map_err(|err| err.to_string());
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    last = format!(
                        "{base}: {status} {}",
                        text.chars().take(200).collect::<String>()
                    );
                }
                Err(err) => last = format!("{base}: {err}"),
            }
        }
        Err(last)
    }
}

/// The streamer of a worker: identities loaded from `identity_path`, the process hardened
/// (no core dumps, not dumpable) before anything is decrypted. `allow_unhardened` lets a
/// worker start where hardening is impossible (it is logged as an error).
pub fn streamer(
    stream: StreamConfig,
    identity_path: &Path,
    store: Arc<dyn ObjectStore>,
    server_key: TicketVerifier,
    allow_unhardened: bool,
) -> anyhow::Result<(Streamer, mpsc::UnboundedReceiver<SessionEvent>)> {
    if let Err(err) = crate::harden_process() {
        if allow_unhardened {
            tracing::error!(error = %err, "process hardening failed; going on because it was explicitly allowed");
        } else {
            anyhow::bail!(
                "{err}; a worker holds decrypted images and does not start unhardened (set worker.allow_unhardened = true to override)"
            );
        }
    }
    // The watermark key is read now, so a missing or bad key file stops the start.
    crate::watermark::worker_key(&stream.watermark_key_file)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let identity: WorkerIdentity = crate::keys::load(identity_path).map_err(|err| {
        anyhow::anyhow!(
            "cannot load the worker identity {}: {err}",
            identity_path.display()
        )
    })?;
    Ok(Streamer::new(stream, vec![identity], store, server_key))
}

/// Runs a worker process until `shutdown` resolves, then drains: no new sessions, running
/// ones get `drain_timeout` to finish, the rest are ended, and their reports are delivered.
pub async fn run(
    config: NodeConfig,
    streamer: Streamer,
    events: mpsc::UnboundedReceiver<SessionEvent>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let control_url = if config.advertise_url.is_empty() {
        format!("http://{local}")
    } else {
        config.advertise_url.trim_end_matches('/').to_owned()
    };
    let media_address = config
        .stream
        .public_ips
        .first()
        .cloned()
        .unwrap_or_else(|| config.stream.udp_ip.to_string());
    let status = Arc::new(Status {
        id: config.id.clone(),
        control_url,
        media_address,
    });
    let reporter = Reporter::new(config.servers.clone(), &config.control_seed);
    tracing::info!(
        worker = %config.id,
        control = %local,
        public_key = %reporter.public_key_hex(),
        "worker started"
    );
    let app = control::router(ControlState {
        streamer: streamer.clone(),
        server_key: config.server_key,
        status: Arc::clone(&status),
    });
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = http_stopped.await;
            })
            .await
    });
    let (flushed_tx, flushed) = tokio::sync::oneshot::channel();
    tokio::spawn(forward_events(
        reporter.clone(),
        config.id.clone(),
        events,
        flushed_tx,
    ));
    let beats = tokio::spawn(heartbeats(
        reporter.clone(),
        streamer.clone(),
        Arc::clone(&status),
        config.heartbeat,
    ));

    shutdown.await;
    tracing::info!(worker = %config.id, sessions = streamer.active_sessions(), "draining");
    streamer.drain();
    send_heartbeat(&reporter, &status, &streamer).await;
    let deadline = tokio::time::Instant::now() + config.drain_timeout;
    while streamer.active_sessions() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    streamer.shutdown();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while streamer.active_sessions() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    beats.abort();
    send_heartbeat(&reporter, &status, &streamer).await;
    let _ = stop_http.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
    // The last reports go out before the process ends (bounded: the servers may be gone).
    drop(streamer);
    let _ = tokio::time::timeout(Duration::from_secs(5), flushed).await;
    tracing::info!(worker = %config.id, "worker stopped");
    Ok(())
}

async fn send_heartbeat(reporter: &Reporter, status: &Status, streamer: &Streamer) -> bool {
    let beat = status.heartbeat(streamer);
    match reporter
        .post::<_, HeartbeatReply>("/internal/worker/v1/heartbeat", &beat)
        .await
    {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(error = %err, "heartbeat not accepted by any server");
            false
        }
    }
}

async fn heartbeats(reporter: Reporter, streamer: Streamer, status: Arc<Status>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut registered = false;
    loop {
        tick.tick().await;
        let ok = send_heartbeat(&reporter, &status, &streamer).await;
        if ok && !registered {
            tracing::info!("registered with the servers");
        }
        registered = ok;
    }
}

/// Sends session events in batches, oldest first, retrying while no server answers. Resolves
/// `flushed` once the streamer is gone and everything was delivered (or could not be).
async fn forward_events(
    reporter: Reporter,
    worker_id: String,
    mut events: mpsc::UnboundedReceiver<SessionEvent>,
    flushed: tokio::sync::oneshot::Sender<()>,
) {
    let mut pending: VecDeque<SessionEvent> = VecDeque::new();
    let mut open = true;
    let mut backoff = Duration::from_millis(100);
    while open || !pending.is_empty() {
        if pending.is_empty() {
            match events.recv().await {
                Some(event) => pending.push_back(event),
                None => open = false,
            }
        }
        while open {
            match events.try_recv() {
                Ok(event) => pending.push_back(event),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        while pending.len() > MAX_PENDING_EVENTS {
            pending.pop_front();
            tracing::error!("no server took session events for too long; the oldest was dropped");
        }
        if pending.is_empty() {
            continue;
        }
        let take = pending.len().min(MAX_EVENTS_PER_BATCH);
        let batch = EventBatch {
            worker_id: worker_id.clone(),
            events: pending.iter().take(take).cloned().collect(),
        };
        match reporter
            .post::<_, serde_json::Value>("/internal/worker/v1/events", &batch)
            .await
        {
            Ok(_) => {
                pending.drain(..take);
                backoff = Duration::from_millis(100);
            }
            Err(err) => {
                tracing::warn!(error = %err, pending = pending.len(), "session events not delivered; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                if !open && backoff >= Duration::from_secs(2) {
                    // Shutting down and no server answers: give up after the last try.
                    break;
                }
            }
        }
    }
    let _ = flushed.send(());
}
