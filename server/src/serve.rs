//! Runs the HTTP server until Ctrl-C or SIGTERM, then shuts down gracefully.

use std::sync::Arc;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::AppState;

/// Something to run once the server listens, given the state and public URL: prints where to
/// sign in (the demo's one line per seeded user, or the first admin's link).
pub type Banner = Box<
    dyn FnOnce(
            AppState,
            String,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>
        + Send,
>;

/// How often expired sessions are purged.
const SESSION_SWEEP: std::time::Duration = std::time::Duration::from_secs(300);

/// A bound, ready server: database, store and auth state set up, listening, not yet serving.
pub struct Server {
    /// The public URL (derived from the bound address unless configured).
    pub url: String,
    /// The shared state handlers see.
    pub state: AppState,
    listener: crate::listen::CappedListener,
}

impl Server {
    /// Opens the database and store, binds the listener and builds the state.
    /// `install_metrics` installs the process-wide Prometheus recorder (once per process).
    pub async fn bind(config: Config, install_metrics: bool) -> anyhow::Result<Server> {
        let db = crate::cli::open_db(&config).await?;
        let store = crate::store::open(&config).await?;
        let checkpoints = crate::store::checkpoints(&config, &store).await?;
        let metrics = if install_metrics {
            crate::observability::install_recorder()
        } else {
            None
        };
        if metrics.is_some() {
            crate::observability::spawn_pool_sampler(db.clone());
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let bound = listener.local_addr()?;
        let url = config.public_url(bound);
        let open_files = crate::listen::raise_open_file_limit();
        let max_connections = crate::listen::connection_limit(config.max_connections, open_files);
        let listener = crate::listen::CappedListener::new(listener, max_connections);
        tracing::info!(%bound, store = %store.describe(), database = %db.redacted_url(), max_connections, open_files, "readroom listening");
        crate::http::stream::check_turn_secret(&config.stream).await?;
        let new_ticket_key = !config.ticket_key_path().exists();
        let new_audit_key = !config.audit_key_path().exists();
        let auth = Arc::new(crate::auth::AuthState::new(&config, &url)?);
        if let Some(key_path) = config.secrets_key_path() {
            crate::auth::sealing::at_start(&db, &auth.secrets, &key_path).await?;
        }
        let audit = crate::audit::Audit::start(db.clone());
        let audit_signer = Arc::new(crate::audit::load_or_create_key(&config.audit_key_path())?);
        if new_ticket_key {
            let public_key = hex::encode(auth.tickets.verifier().public_key());
            record_new_key(&audit, "ticket", &public_key).await?;
        }
        if new_audit_key {
            record_new_key(&audit, "audit", &audit_signer.public_key_hex()).await?;
        }
        let (workers, embedded) = start_workers(&config, &store, &auth, &db, &audit).await?;
        #[cfg(not(feature = "embedded-worker"))]
        let () = embedded;
        let state = AppState {
            db,
            store,
            checkpoints,
            config: Arc::new(config),
            metrics,
            auth,
            workers,
            #[cfg(feature = "embedded-worker")]
            embedded,
            audit,
            audit_signer,
            audit_verified: Arc::default(),
        };
        Ok(Server {
            url,
            state,
            listener,
        })
    }

    /// Serves until `shutdown` resolves, then closes the database.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        spawn_session_sweeper(self.state.clone());
        spawn_checkpointer(self.state.clone());
        if self.state.workers.is_configured() {
            crate::workers::revalidate::spawn(self.state.workers.clone(), self.state.audit.clone());
        }
        let db = self.state.db.clone();
        let checkpoints = Arc::clone(&self.state.checkpoints);
        let signer = Arc::clone(&self.state.audit_signer);
        #[cfg(feature = "embedded-worker")]
        let embedded = self.state.embedded.clone();
        let app = crate::http::app(self.state);
        axum::serve(
            // `tap_io` only to have the peer's address as `ConnectInfo<SocketAddr>`.
            self.listener.tap_io(|_| {}),
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("server error")?;
        #[cfg(feature = "embedded-worker")]
        if let Some(embedded) = embedded {
            // End the viewers' sessions so their reports are recorded before the database closes.
            embedded.shutdown().await;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // Sign the head at shutdown, so the last events are covered by a checkpoint.
        if let Err(err) = crate::audit::checkpoint(&db, &checkpoints, &signer).await {
            tracing::warn!(error = %err, "could not write the shutdown audit checkpoint");
        }
        db.close().await;
        Ok(())
    }
}

/// Audits a signing key this process created (`key.created`, with its public half).
async fn record_new_key(
    audit: &crate::audit::Audit,
    key: &str,
    public_key: &str,
) -> anyhow::Result<()> {
    let draft = crate::audit::event_by(
        readroom_domain::audit::Action::KeyCreated,
        readroom_domain::audit::Outcome::Success,
        None,
        None,
        None,
        serde_json::json!({ "key": key, "public_key": public_key }),
    );
    audit.record(draft).await?;
    Ok(())
}

/// Opens the database and store, binds, prints where to connect, and serves until Ctrl-C or
/// SIGTERM.
pub async fn run(config: Config, banner: Option<Banner>) -> anyhow::Result<()> {
    let server = Server::bind(config, true).await?;
    match banner {
        Some(banner) => banner(server.state.clone(), server.url.clone()).await?,
        None => first_run_banner(&server.state, &server.url).await?,
    }
    server.serve(shutdown_signal()).await?;
    tracing::info!("readroom stopped");
    Ok(())
}

/// `serve`'s banner: where to connect and, while no admin exists, a one-time link that signs in
/// the first admin (created here; there are no default passwords).
async fn first_run_banner(state: &AppState, url: &str) -> anyhow::Result<()> {
    println!("readroom is running at {url}");
    if let Some(link) = crate::accounts::bootstrap_admin(state).await? {
        println!("no administrator exists yet; sign in once with this link and set a password:");
        println!("admin admin {link}");
    }
    Ok(())
}

fn spawn_session_sweeper(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SESSION_SWEEP);
        loop {
            tick.tick().await;
            let now = crate::auth::now_unix();
            match state
                .db
                .delete_expired_sessions(now, now - state.auth.idle_seconds)
                .await
            {
                Ok(0) => {}
                Ok(count) => tracing::debug!(count, "expired sessions removed"),
                Err(err) => tracing::warn!(error = %err, "cannot remove expired sessions"),
            }
            // Sign-in counters a day old: throttle windows, and phantom names no longer locked.
            if let Err(err) = state.db.purge_signin_counters(now - 86_400).await {
                tracing::warn!(error = %err, "cannot purge sign-in counters");
            }
        }
    });
}

/// Signs the audit chain head every `audit.checkpoint_secs` while events are added.
fn spawn_checkpointer(state: AppState) {
    let secs = state.config.audit.checkpoint_secs;
    if secs == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(secs));
        tick.tick().await;
        // The head verified last: each pass reads only the events added since.
        let mut verified = None;
        loop {
            tick.tick().await;
            // A broken chain is never signed: the checkpoint would vouch for the tampering.
            let checked = crate::audit::verify_recent(
                &state.db,
                &state.checkpoints,
                &state.audit_signer,
                verified.clone(),
            )
            .await;
            match checked {
                Ok(report) if report.first_break.is_some() => {
                    tracing::error!(
                        first_break = ?report.first_break.as_ref().map(|b| b.seq),
                        "the audit chain is broken; no checkpoint is written (run `readroom audit verify`)"
                    );
                    continue;
                }
                Ok(report) => verified = Some(report.head),
                Err(err) => {
                    tracing::warn!(error = %err, "could not verify the audit chain");
                    continue;
                }
            }
            if let Err(err) =
                crate::audit::checkpoint(&state.db, &state.checkpoints, &state.audit_signer).await
            {
                tracing::warn!(error = %err, "could not write an audit checkpoint");
            }
        }
    });
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// What [`start_workers`] gives besides the pool: the in-process worker, if one runs.
#[cfg(feature = "embedded-worker")]
type Embedded = Option<Arc<crate::workers::embedded::EmbeddedLink>>;
/// Without the `embedded-worker` feature there is none.
#[cfg(not(feature = "embedded-worker"))]
type Embedded = ();

/// The workers this server places sessions on: the configured pool of worker processes
/// (`workers.trusted_keys`), else the in-process worker when this process holds a worker
/// identity and was built with it (embedded mode), else none.
async fn start_workers(
    config: &crate::config::Config,
    store: &Arc<dyn readroom_store::ObjectStore>,
    auth: &crate::auth::AuthState,
    db: &crate::db::Db,
    audit: &crate::audit::Audit,
) -> anyhow::Result<(crate::workers::Pool, Embedded)> {
    use crate::workers::Pool;
    let settings = config.workers.clone();
    if settings.is_pool() {
        let seed = crate::auth::keys::load_or_create_seed(&config.ticket_key_path(), "ticket key")?;
        let client = crate::workers::remote::Client::new(&seed);
        tracing::info!(
            trusted = settings.trusted_keys.len(),
            "placing streams on worker processes"
        );
        #[cfg(feature = "embedded-worker")]
        return Ok((Pool::remote(db.clone(), settings, client), None));
        #[cfg(not(feature = "embedded-worker"))]
        return Ok((Pool::remote(db.clone(), settings, client), ()));
    }
    #[cfg(feature = "embedded-worker")]
    {
        let started = crate::workers::embedded::EmbeddedLink::start(
            config,
            Arc::clone(store),
            auth.tickets.verifier(),
        )?;
        if let Some((link, mut events)) = started {
            crate::workers::revalidate::close_embedded_leftovers(db, audit).await?;
            let (event_db, event_audit) = (db.clone(), audit.clone());
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    let worker = crate::workers::EMBEDDED_ID;
                    if let Err(err) =
                        crate::workers::events::handle(&event_db, &event_audit, worker, &event)
                            .await
                    {
                        tracing::warn!(error = %err, "could not record a stream session event");
                    }
                }
            });
            let link = Arc::new(link);
            let shared: Arc<dyn crate::workers::WorkerLink> = link.clone();
            return Ok((Pool::embedded(db.clone(), settings, shared), Some(link)));
        }
        Ok((Pool::none(db.clone(), settings), None))
    }
    #[cfg(not(feature = "embedded-worker"))]
    {
        let _ = (store, auth, audit);
        tracing::warn!(
            "this build has no in-process worker and no worker pool is configured: streaming is off"
        );
        Ok((Pool::none(db.clone(), settings), ()))
    }
}
