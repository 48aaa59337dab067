//! Worker processes over the control protocol: signed HTTP requests to `readroom worker`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use readroom_domain::control_auth::{self, ControlSigner, Direction};
use readroom_domain::workers::{
    EndSessions, OpenSession, RefusalCode, SessionOpened, SessionsEnded, WorkerRefusal,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{LinkError, WorkerLink};

/// What every link to a worker process shares: the HTTP client and the server's signer.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    signer: Arc<ControlSigner>,
}

impl Client {
    /// A client signing with the server's key (the ticket key's seed).
    pub fn new(seed: &[u8; 32]) -> Client {
        Client {
            http: reqwest::Client::builder()
                // Opening a session fetches the bundle's first chunks and gathers ICE: seconds
                // at worst. A worker that does not accept the connection at once is dead.
                .timeout(Duration::from_secs(15))
                .connect_timeout(Duration::from_millis(500))
                .build()
                .unwrap_or_default(),
            signer: Arc::new(ControlSigner::from_seed(seed, Direction::ServerToWorker)),
        }
    }

    /// The link to one worker.
    pub fn link(&self, id: &str, control_url: &str) -> Arc<dyn WorkerLink> {
        Arc::new(RemoteLink {
            client: self.clone(),
            id: id.to_owned(),
            base: control_url.trim_end_matches('/').to_owned(),
        })
    }
}

struct RemoteLink {
    client: Client,
    id: String,
    base: String,
}

impl RemoteLink {
    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, LinkError> {
        let bytes =
            serde_json::to_vec(body).map_err(|err| LinkError::Unreachable(err.to_string()))?;
        let header = self
            .client
            .signer
            .sign("POST", path, &bytes, crate::auth::now_unix());
        let response = self
            .client
            .http
            .post(format!("{}{path}", self.base))
            .header(control_auth::HEADER, header)
            .header("content-type", "application/json")
            .header(
                "x-request-id",
                crate::http::layers::REQUEST_ID
                    .try_with(Clone::clone)
                    .unwrap_or_else(|_| "-".to_owned()),
            )
            .body(bytes)
            .send()
            .await
            .map_err(|err| LinkError::Unreachable(err.to_string()))?;
        let status = response.status();
        let text = response
            .bytes()
            .await
            .map_err(|err| LinkError::Unreachable(err.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&text).map_err(|err| {
                LinkError::Unreachable(format!("the worker's answer is not valid: {err}"))
            });
        }
        match serde_json::from_slice::<WorkerRefusal>(&text) {
            Ok(refusal) => Err(LinkError::Refused(refusal)),
            Err(_) if status.as_u16() == 401 => Err(LinkError::Refused(WorkerRefusal {
                code: RefusalCode::Internal,
                message: "the worker does not trust this server's key".into(),
            })),
            Err(_) => Err(LinkError::Unreachable(format!(
                "the worker answered {status}"
            ))),
        }
    }
}

#[async_trait]
impl WorkerLink for RemoteLink {
    fn id(&self) -> &str {
        &self.id
    }

    async fn open(&self, request: &OpenSession) -> Result<SessionOpened, LinkError> {
        self.post("/v1/sessions", request).await
    }

    async fn end(&self, request: &EndSessions) -> Result<usize, LinkError> {
        let ended: SessionsEnded = self.post("/v1/sessions/end", request).await?;
        Ok(ended.ended)
    }
}
