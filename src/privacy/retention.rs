//! Retention: rows older than their settings (`[retention]`) are removed by a background
//! job, a batch of `batch_rows` per statement with a short pause between, so that ingest
//! and the API never wait long behind it. Its work is in metrics
//! (`staryer_retention_removed_rows_total{table}`, `staryer_retention_run_seconds`).
//! Idempotency keys have their own, shorter retention (`ingest.idempotency_retention_hours`,
//! pruned by each creator's actor), and the outbox its own (`outbox.retention_days`).

use std::time::{Duration, Instant};

use crate::clock::{SharedClock, Stopping};
use crate::config::RetentionConfig;
use crate::store::retention::Expiring;
use crate::store::{Store, StoreError};
use crate::telemetry::metric_names;

/// The pause between two batches.
const PAUSE: Duration = Duration::from_millis(20);
const DAY: i64 = 86_400;

/// When rows of each kind expire, in seconds of age.
#[derive(Debug, Clone)]
pub struct Retention {
    usage_secs: i64,
    billing_event_secs: i64,
    session_secs: i64,
    /// `None`: audit records are kept for good.
    audit_secs: Option<i64>,
    batch_rows: i64,
}

impl Retention {
    pub fn from_config(config: &RetentionConfig) -> Retention {
        let secs = |days: u64| days as i64 * DAY;
        Retention {
            usage_secs: secs(config.usage_days),
            billing_event_secs: secs(config.billing_event_days),
            session_secs: secs(config.session_days),
            audit_secs: (config.audit_days > 0).then(|| secs(config.audit_days)),
            batch_rows: config.batch_rows as i64,
        }
    }

    fn age_of(&self, kind: Expiring) -> i64 {
        match kind {
            Expiring::UsageHours => self.usage_secs,
            Expiring::BillingEvents => self.billing_event_secs,
            Expiring::Sessions | Expiring::BrowserSessions | Expiring::DashboardLinks => {
                self.session_secs
            }
        }
    }

    /// One run over every table, as of `now`.
    pub async fn run(&self, store: &Store, now: i64) -> Result<(), StoreError> {
        let started = Instant::now();
        for kind in Expiring::ALL {
            let before = now - self.age_of(kind);
            self.in_batches(kind.table(), || {
                store.remove_expired(kind, before, self.batch_rows)
            })
            .await?;
        }
        if let Some(age) = self.audit_secs {
            self.in_batches("audit_log", || {
                store.prune_audit(now - age, self.batch_rows)
            })
            .await?;
        }
        metrics::histogram!(metric_names::RETENTION_SECONDS)
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Runs `batch` until it removes less than a full batch.
    async fn in_batches<F, Fut>(&self, table: &'static str, mut batch: F) -> Result<(), StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<u64, StoreError>>,
    {
        let mut removed = 0;
        loop {
            let went = batch().await?;
            removed += went;
            metrics::counter!(metric_names::RETENTION_REMOVED, "table" => table).increment(went);
            if (went as i64) < self.batch_rows {
                break;
            }
            tokio::time::sleep(PAUSE).await;
        }
        if removed > 0 {
            tracing::info!(table, removed, "rows past their retention removed");
        }
        Ok(())
    }
}

/// Runs retention every `interval` until the daemon stops.
pub fn spawn(
    retention: Retention,
    store: Store,
    clock: SharedClock,
    interval: Duration,
    stopping: Stopping,
) -> tokio::task::JoinHandle<()> {
    crate::clock::every(interval, stopping, move || {
        let (retention, store, now) = (retention.clone(), store.clone(), clock.now());
        async move {
            if let Err(err) = retention.run(&store, now).await {
                tracing::warn!(error = %err, "retention stopped early; it runs again later");
            }
        }
    })
}
