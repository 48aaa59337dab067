//! The embedded default's in-process worker, behind the same [`WorkerLink`] as a worker
//! process. This module is the only place the server and `readroom-worker` meet (the
//! `embedded-worker` feature); the server never sees an identity type: the worker crate loads
//! the identity itself ([`readroom_worker::node::streamer`]).

use std::sync::Arc;

use async_trait::async_trait;
use readroom_domain::workers::{EndSessions, OpenSession, SessionEvent, SessionOpened};
use readroom_worker::stream::Streamer;
use tokio::sync::mpsc;

use super::{EMBEDDED_ID, LinkError, WorkerLink};
use crate::config::Config;

/// The in-process worker.
pub struct EmbeddedLink {
    streamer: Streamer,
}

impl EmbeddedLink {
    /// Starts the in-process worker when this process holds a worker identity; `None` (with a
    /// warning) when it does not. Its session events arrive on the returned receiver.
    pub fn start(
        config: &Config,
        store: Arc<dyn readroom_store::ObjectStore>,
        verifier: readroom_domain::ticket::TicketVerifier,
    ) -> anyhow::Result<Option<(EmbeddedLink, mpsc::UnboundedReceiver<SessionEvent>)>> {
        let path = config.worker_identity_path();
        if !path.exists() {
            tracing::warn!(path = %path.display(), "no worker identity: streaming is off in this process");
            return Ok(None);
        }
        let mut stream = config.stream.clone();
        stream.watermark_key_file = crate::worker_cmd::worker_watermark_key(config);
        let (streamer, events) = readroom_worker::node::streamer(
            stream,
            &path,
            store,
            verifier,
            config.worker.allow_unhardened,
        )?;
        Ok(Some((EmbeddedLink { streamer }, events)))
    }

    /// Ends every session and waits (at most 2 s) until they have reported.
    pub async fn shutdown(&self) {
        self.streamer.shutdown();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while self.streamer.active_sessions() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Sessions running now.
    pub fn active_sessions(&self) -> usize {
        self.streamer.active_sessions()
    }

    /// Render/encode timing so far (benchmarks).
    pub fn metrics(&self) -> (u64, f64, f64) {
        self.streamer.metrics().snapshot()
    }
}

#[async_trait]
impl WorkerLink for EmbeddedLink {
    fn id(&self) -> &str {
        EMBEDDED_ID
    }

    async fn open(&self, request: &OpenSession) -> Result<SessionOpened, LinkError> {
        self.streamer
            .open(request.clone())
            .await
            .map_err(|err| LinkError::Refused(err.refusal()))
    }

    async fn end(&self, request: &EndSessions) -> Result<usize, LinkError> {
        Ok(self.streamer.end(&request.filter, request.reason))
    }
}
