//! Runs the HTTP server until Ctrl-C or SIGTERM, then shuts down gracefully.

use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::AppState;

/// Something to print once the server listens (the demo's sign-in lines).
pub type Banner = Box<dyn FnOnce(&str) + Send>;

/// Opens the database and store, binds, prints where to connect, and serves.
pub async fn run(config: Config, banner: Option<Banner>) -> anyhow::Result<()> {
    let db = crate::cli::open_db(&config).await?;
    let store = crate::store::open(&config).await?;
    let metrics = PrometheusBuilder::new().install_recorder().ok();
    if let Some(handle) = metrics.clone() {
        // The exporter's histograms grow until upkeep runs (its documented requirement).
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bound = listener.local_addr()?;
    let url = config.public_url(bound);
    tracing::info!(%bound, store = %store.describe(), database = %db.redacted_url(), "readroom listening");
    let state = AppState {
        db: db.clone(),
        store,
        config: Arc::new(config),
        metrics,
    };
    match banner {
        Some(banner) => banner(&url),
        None => println!("readroom is running at {url}"),
    }
    let app = crate::http::app(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    db.close().await;
    tracing::info!("readroom stopped");
    Ok(())
}

async fn shutdown_signal() {
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
