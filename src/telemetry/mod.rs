//! Logs, spans and metrics. Logs go to stdout as text (colours only on a terminal) or as
//! one JSON object a line (`log.format`), filtered by `RUST_LOG` or else `log.filter`;
//! metrics go to a Prometheus recorder installed once per process and rendered at
//! `/metrics`, every one with its HELP text.

pub mod metric_names;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::{LogConfig, LogFormat};

/// Installs the tracing subscriber (once; later calls are no-ops). `RUST_LOG`, when set,
/// wins over `log.filter`.
pub fn init_tracing(config: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match config.format {
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
        LogFormat::Text => builder
            .fmt_fields(escaped_fields())
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
    };
}

/// Text-log fields with every control character escaped: a value that came from a client
/// (a path, a field name in an error) cannot forge a log line with a newline or drive a
/// terminal with an escape sequence. JSON logs are escaped by JSON itself.
fn escaped_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let raw = format!("{value:?}");
        let text = escape_controls(&raw);
        if field.name() == "message" {
            write!(writer, "{text}")
        } else {
            write!(writer, "{field}={text}")
        }
    })
    .delimited(" ")
}

/// `text` with each control character written as its escape (`\n`, `\u{1b}`).
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        if ch.is_control() {
            escaped.extend(ch.escape_default());
        } else {
            escaped.push(ch);
        }
    }
    std::borrow::Cow::Owned(escaped)
}

/// Lets one line through per `every_secs`, and says how many were held back meanwhile: for
/// causes that repeat on every request while they last (a store that refuses writes).
pub struct LogLimiter {
    every_secs: i64,
    last: AtomicI64,
    held_back: AtomicU64,
}

impl LogLimiter {
    pub const fn every(every_secs: i64) -> Self {
        LogLimiter {
            every_secs,
            last: AtomicI64::new(i64::MIN),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one let through)` when a line may be written.
    pub fn allow(&self) -> Option<u64> {
        let now = chrono::Utc::now().timestamp();
        let last = self.last.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= self.every_secs
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.held_back.swap(0, Ordering::Relaxed))
        } else {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
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
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(metric_names::HTTP_REQUEST_SECONDS.into()),
                        &latency_buckets,
                    )
                })
                .expect("bucket lists are non-empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            for &(name, kind, help) in metric_names::ALL {
                match kind {
                    metric_names::Kind::Counter => metrics::describe_counter!(name, help),
                    metric_names::Kind::Gauge => metrics::describe_gauge!(name, help),
                    metric_names::Kind::Histogram => metrics::describe_histogram!(name, help),
                }
            }
            handle
        })
        .clone()
}
