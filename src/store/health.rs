//! Whether the store is taking writes. A failed group commit marks it down; while it is
//! down, ingest answers 503 at once (nothing is counted) and a monitor pings the store
//! until it answers, then marks it up again: recovery needs no operator.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;
use crate::telemetry::metric_names;

#[derive(Clone, Default)]
pub struct StoreHealth(Arc<AtomicBool>);

impl StoreHealth {
    pub fn up() -> Self {
        metrics::gauge!(metric_names::STORE_UP).set(1.0);
        StoreHealth(Arc::new(AtomicBool::new(true)))
    }

    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    pub fn mark_down(&self, reason: &str) {
        if self.0.swap(false, Ordering::AcqRel) {
            tracing::warn!(%reason, "store marked down; ingest answers 503 until it recovers");
            metrics::gauge!(metric_names::STORE_UP).set(0.0);
        }
    }

    fn mark_up(&self) {
        if !self.0.swap(true, Ordering::AcqRel) {
            tracing::info!("store reachable again; ingest resumed");
            metrics::gauge!(metric_names::STORE_UP).set(1.0);
        }
    }

    /// Pings the store every `interval` while it is down; runs until the process ends.
    pub fn spawn_monitor(&self, store: Store, interval: Duration) {
        let health = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                if health.is_up() {
                    continue;
                }
                match store.ping().await {
                    Ok(()) => health.mark_up(),
                    Err(err) => tracing::debug!(error = %err, "store still down"),
                }
            }
        });
    }
}
