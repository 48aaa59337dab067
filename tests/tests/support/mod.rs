//! A real readroom server for HTTP tests: the production router and middleware on a loopback
//! port, over a fresh SQLite file or a fresh PostgreSQL database, with helpers to seed users,
//! studies and cases and to sign in like a browser or a script would.
#![allow(dead_code)]

use std::time::Duration;

use readroom_server::config::{Config, Overrides};
use readroom_server::db::{
    AssignmentRole, Backend, Case, Db, NewBundle, NewCase, Recipients, Role, StudyCode, User,
};
use readroom_server::serve::Server;
use readroom_server::state::AppState;
use readroom_tests::pg::PgDatabase;
use reqwest::header::{COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use serde_json::{Value, json};
use uuid::Uuid;

/// A free loopback port for the server, known before it starts (the provider must know the
/// redirect URI first). Taken below the kernel's ephemeral range (32768–60999), so the
/// connections of concurrent tests, which get ephemeral ports, cannot take it in between.
pub fn free_port() -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (0..1000u32)
        .map(|i| 20_000 + ((seed.wrapping_add(i.wrapping_mul(7919))) % 12_000) as u16)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free loopback port below the ephemeral range")
}

/// A running server and its database.
pub struct TestApp {
    /// Base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The server's state (database, auth).
    pub state: AppState,
    /// The worker identity [`TestApp::study`]'s studies are encrypted to (the sealed tickets
    /// the server hands out open with it; see [`TestApp::ticket_gate`]).
    pub worker_identity: age::x25519::Identity,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

impl TestApp {
    /// Starts a server on `backend` with default configuration.
    pub async fn start(backend: Backend) -> TestApp {
        TestApp::start_with(backend, |_| {}).await
    }

    /// Starts a server on `backend` after `configure` edits the configuration.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::start_inner(backend, configure, false).await
    }

    /// Starts a server with the demo data (worker identity, study `DEMO`, 9 encrypted cases,
    /// no users): the in-process worker can stream them.
    pub async fn start_demo(backend: Backend) -> TestApp {
        TestApp::start_inner(backend, |_| {}, true).await
    }

    /// [`TestApp::start_demo`] after `configure` edits the configuration (a worker pool, S3).
    pub async fn start_demo_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::start_inner(backend, configure, true).await
    }

    async fn start_inner(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
        demo: bool,
    ) -> TestApp {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config::load(
            None,
            Overrides {
                data_dir: Some(dir.path().join("data")),
                listen: Some("127.0.0.1:0".parse().unwrap()),
            },
        )
        .expect("default configuration");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let database = PgDatabase::create()
                    .await
                    .expect("fresh PostgreSQL database");
                config.database_url = database.url.clone();
                // PostgreSQL needs the server secrets key configured (replicas share it).
                config.auth.secrets_key_file = dir.path().join("data/keys/server-secrets.key");
                Some(database)
            }
        };
        configure(&mut config);
        if demo {
            readroom_server::demo::prepare(&config)
                .await
                .expect("demo data");
        }
        let server = Server::bind(config, false).await.expect("server binds");
        let url = server.url.clone();
        let state = server.state.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        TestApp {
            url,
            state,
            worker_identity: age::x25519::Identity::generate(),
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
            _pg: pg,
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// Creates a study.
    pub async fn study(&self, code: &str) -> Uuid {
        let code = StudyCode::new(code).unwrap();
        self.db()
            .create_study(&code, "Test study", &self.recipients())
            .await
            .expect("create study")
            .id
    }

    /// The recipients of [`TestApp::study`]'s studies: [`TestApp::worker_identity`]'s.
    pub fn recipients(&self) -> Recipients {
        Recipients::new([self.worker_identity.to_public().to_string()]).unwrap()
    }

    /// A worker's ticket gate for this server: its ticket key, and the identity studies made
    /// by [`TestApp::study`] are sealed to.
    pub fn ticket_gate(&self) -> readroom_worker::admission::TicketGate {
        readroom_worker::admission::TicketGate::new(self.state.auth.tickets.verifier())
            .with_identities(std::sync::Arc::from(vec![
                readroom_worker::keys::WorkerIdentity::from(self.worker_identity.clone()),
            ]))
    }

    /// The signed `rt1` ticket inside a sealed one the server handed out (as a worker opens
    /// it), for tests that look at the claims.
    pub fn open_ticket(&self, sealed: &str) -> String {
        let identity = readroom_worker::keys::WorkerIdentity::from(self.worker_identity.clone());
        readroom_worker::admission::open_sealed(sealed, std::slice::from_ref(&identity))
            .expect("the ticket opens with the study's worker identity")
    }

    /// Registers a case (metadata only; no ciphertext is needed to test access rules).
    pub async fn case(&self, study_id: Uuid, subject: &str) -> Case {
        let (_, case) = self
            .db()
            .register_ingest(
                &NewBundle {
                    study_id,
                    subject: subject.to_owned(),
                    visit: "V1".to_owned(),
                    format: "readroom-bundle/1".to_owned(),
                    object_key: format!("bundles/{study_id}/{subject}.age"),
                    ciphertext_sha256: "ab".repeat(32),
                    ciphertext_size: 1000,
                    plaintext_size: 900,
                    file_count: 2,
                    exam_count: 1,
                    recipients_fingerprint: "cd".repeat(32),
                    summary: json!({ "exams": [{ "id": "fundus-od", "kind": "fundus", "eye": "OD" }] }),
                    ingested_by: None,
                },
                &NewCase {
                    prior_bundle_id: None,
                    ground_truth: None,
                },
            )
            .await
            .expect("register case");
        case
    }

    /// The demo study (`start_demo*` seeds it).
    pub async fn demo_study(&self) -> readroom_server::db::Study {
        self.db()
            .study_by_code(&StudyCode::new("DEMO").unwrap())
            .await
            .expect("the demo study")
    }

    /// Creates a user holding `roles` (study id `None` = global).
    pub async fn user(&self, username: &str, roles: &[(Role, Option<Uuid>)]) -> User {
        readroom_server::accounts::ensure_user(
            self.db(),
            &self.state.audit,
            "test",
            username,
            username,
            roles,
        )
        .await
        .expect("create user")
    }

    /// Assigns a case.
    pub async fn assign(&self, case: &Case, user: &User, role: AssignmentRole) {
        self.db()
            .assign(case.id, user.id, role, None)
            .await
            .expect("assign");
    }

    /// Sets a user's password directly (as if they had set it on the account page).
    pub async fn set_password(&self, user: &User, password: &str) {
        let hash = readroom_server::auth::password::hash(password.to_owned())
            .await
            .unwrap();
        self.db().set_password_hash(user.id, &hash).await.unwrap();
    }

    /// A fresh one-time sign-in URL for a user.
    pub async fn link(&self, user: &User) -> String {
        readroom_server::auth::flows::issue_link(
            self.db(),
            &self.state.auth,
            user.id,
            None,
            readroom_server::auth::now_unix(),
        )
        .await
        .expect("issue link")
        .0
    }

    /// A client that acts like a same-origin browser page (no cookie jar: [`Browser`] keeps
    /// the cookie so tests can look at it and replay it).
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// Signs a user in through a one-time link, like the sign-in page does.
    pub async fn sign_in(&self, user: &User) -> Browser {
        let link = self.link(user).await;
        let token = link
            .split("#token=")
            .nth(1)
            .expect("token in fragment")
            .to_owned();
        let mut browser = Browser::new(self);
        let response = browser
            .post("/api/auth/link", json!({ "token": token }))
            .await;
        assert_eq!(response.status, 200, "link sign-in: {}", response.body);
        browser
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A response: status, headers and JSON body (or `Value::Null`).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// JSON body, or the text as a JSON string when not JSON.
    pub body: Value,
}

impl Reply {
    /// The `error.code` of a JSON error.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// A browser-like session: keeps the session cookie and CSRF token, sends same-origin headers.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    /// The session cookie (`name=value`), once signed in.
    pub cookie: Option<String>,
    /// The CSRF token, once signed in.
    pub csrf: Option<String>,
    /// Send `Origin` / `Sec-Fetch-Site` as a same-origin page would.
    pub same_origin: bool,
}

impl Browser {
    /// A signed-out browser on `app`.
    pub fn new(app: &TestApp) -> Browser {
        Browser::at(&app.url)
    }

    /// A signed-out browser on the server (or load balancer) at `base`.
    pub fn at(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            cookie: None,
            csrf: None,
            same_origin: true,
        }
    }

    /// Sends a request; picks up `Set-Cookie` and a `csrf_token` in the answer.
    pub async fn send(&mut self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if self.same_origin {
            request = request
                .header("origin", &self.base)
                .header("sec-fetch-site", "same-origin");
        }
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        if let Some(csrf) = &self.csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all(SET_COOKIE) {
            let text = set.to_str().unwrap();
            let pair = text.split(';').next().unwrap().to_owned();
            if text.contains("Max-Age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(pair);
            }
        }
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if let Some(token) = body["csrf_token"].as_str() {
            self.csrf = Some(token.to_owned());
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `GET`.
    pub async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    /// `POST` with a JSON body.
    pub async fn post(&mut self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body)).await
    }
}

/// The browser's ICE username fragment and password in [`chromium_like_offer`].
pub const OFFER_ICE: (&str, &str) = ("abcd", "abcdefghijklmnopqrstuvwx");

/// An SDP offer shaped like Chromium's (H.264 receive-only video and the `control` data
/// channel, bundled, ICE credentials [`OFFER_ICE`]) with `candidates` (`a=candidate:` lines) in
/// its first m-section.
pub fn chromium_like_offer(candidates: &str) -> String {
    let fingerprint = (0..32)
        .map(|i| format!("{i:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let (ufrag, pwd) = OFFER_ICE;
    let ice = format!(
        "c=IN IP4 0.0.0.0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n\
         a=fingerprint:sha-256 {fingerprint}\r\na=setup:actpass\r\n"
    );
    format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF 102\r\n{ice}a=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n\
         a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack pli\r\n\
         a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
         {candidates}\
         m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n{ice}a=mid:1\r\n\
         a=sctp-port:5000\r\na=max-message-size:262144\r\n"
    )
}

/// Runs the same async scenario on SQLite and PostgreSQL as two tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(readroom_server::db::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(readroom_server::db::Backend::Postgres).await;
                }
            )+
        }
    };
}
