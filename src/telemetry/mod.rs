//! Logs, spans and metrics. Tracing goes to stdout (filter with `RUST_LOG`); metrics go to
//! a Prometheus recorder installed once per process and rendered at `/metrics`.

pub mod metric_names;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the tracing subscriber (once; later calls are no-ops).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency_buckets = [
                0.000_001, 0.000_002, 0.000_005, 0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_5,
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
            ];
            let size_buckets = [
                1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 20000.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(metric_names::DECISION_SECONDS.into()),
                    &latency_buckets,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(metric_names::FLUSH_SECONDS.into()),
                        &latency_buckets,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(metric_names::FLUSH_BATCH_SIZE.into()),
                        &size_buckets,
                    )
                })
                .expect("bucket lists are non-empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}
