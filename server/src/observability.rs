//! Prometheus metrics of a readroom process: the recorder (latency histograms with buckets, so
//! that `histogram_quantile` works in alert rules), the worker process's own `/metrics`
//! listener, and gauges the server samples (database pool). The series and their meaning are
//! listed in `infra/observability/METRICS.md`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::db::Db;

/// Histogram buckets of every `*_seconds` series: 1 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often the database pool is sampled.
const POOL_SAMPLE: Duration = Duration::from_secs(5);

/// Installs the process-wide Prometheus recorder (`None` if one is installed already) and runs
/// the exporter's upkeep (its histograms grow until upkeep runs).
pub fn install_recorder() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .ok()?
        .install_recorder()
        .ok()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Some(handle)
}

/// Samples the database pool every few seconds: its size, idle connections, and how long
/// taking a connection waits (`readroom_db_pool_wait_seconds`: a probe, not every query).
pub fn spawn_pool_sampler(db: Db) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POOL_SAMPLE);
        loop {
            tick.tick().await;
            let (size, idle) = db.pool_counts();
            metrics::gauge!("readroom_db_pool_connections", "state" => "open").set(size as f64);
            metrics::gauge!("readroom_db_pool_connections", "state" => "idle").set(idle as f64);
            let started = Instant::now();
            if db.ping().await.is_ok() {
                metrics::histogram!("readroom_db_pool_wait_seconds")
                    .record(started.elapsed().as_secs_f64());
            } else {
                metrics::counter!("readroom_db_unavailable_total").increment(1);
            }
        }
    });
}

/// Serves `GET /metrics` (Prometheus text format) on `listen`: a worker process's metrics,
/// on a port of their own (the control port answers only signed server requests).
pub async fn serve_worker_metrics(
    listen: SocketAddr,
    handle: PrometheusHandle,
) -> anyhow::Result<()> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for metrics"))?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!(error = %err, "the metrics listener stopped");
        }
    });
    Ok(())
}
