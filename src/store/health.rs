//! Whether the daemon may admit writes. Two things can stop it: the store refusing writes
//! (down, locked, read-only: a failed group commit or a failed probe says so) and the loss
//! of the writer hold on the database (`writer_hold`). While either holds, ingest answers
//! 503 at once (nothing is counted) and `/readyz` answers 503 with the cause; a monitor
//! probes the store with a write it rolls back, also while the store looks up, so a
//! database that turned read-only is noticed without waiting for an event. Recovery needs
//! no operator.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::Store;
use crate::telemetry::metric_names;

/// The store refuses writes.
const STORE_DOWN: u8 = 1;
/// Another session may hold the database: the writer hold was lost.
const HOLD_LOST: u8 = 2;

#[derive(Clone, Default)]
pub struct StoreHealth(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// `STORE_DOWN | HOLD_LOST` bits; 0 is healthy. One atomic load on the hot path.
    refusals: AtomicU8,
    store_cause: Mutex<String>,
    hold_cause: Mutex<String>,
}

impl StoreHealth {
    pub fn up() -> Self {
        metrics::gauge!(metric_names::STORE_UP).set(1.0);
        StoreHealth::default()
    }

    /// Writes may be admitted.
    pub fn is_up(&self) -> bool {
        self.0.refusals.load(Ordering::Acquire) == 0
    }

    /// Why writes are refused, for `/readyz` and errors; `None` while they are not.
    pub fn refusal(&self) -> Option<String> {
        let refusals = self.0.refusals.load(Ordering::Acquire);
        let mut causes = Vec::new();
        if refusals & STORE_DOWN != 0 {
            causes.push(format!(
                "the database refuses writes ({})",
                self.0.store_cause.lock().expect("not poisoned")
            ));
        }
        if refusals & HOLD_LOST != 0 {
            causes.push(format!(
                "the writer hold on the database is lost ({})",
                self.0.hold_cause.lock().expect("not poisoned")
            ));
        }
        (!causes.is_empty()).then(|| causes.join("; "))
    }

    /// The store refused a write: `cause` is its own error, logged once per outage.
    pub fn mark_down(&self, cause: &str) {
        *self.0.store_cause.lock().expect("not poisoned") = cause.to_string();
        if self.0.refusals.fetch_or(STORE_DOWN, Ordering::AcqRel) & STORE_DOWN == 0 {
            tracing::error!(%cause, "the database refuses writes; ingest answers 503 until it takes them again");
            metrics::gauge!(metric_names::STORE_UP).set(0.0);
        }
    }

    fn mark_up(&self) {
        if self.0.refusals.fetch_and(!STORE_DOWN, Ordering::AcqRel) & STORE_DOWN != 0 {
            tracing::info!("the database takes writes again; ingest resumed");
            metrics::gauge!(metric_names::STORE_UP).set(1.0);
        }
    }

    /// The writer hold is gone (logged once per loss); nothing is admitted until it is back.
    pub fn hold_lost(&self, cause: &str) {
        *self.0.hold_cause.lock().expect("not poisoned") = cause.to_string();
        if self.0.refusals.fetch_or(HOLD_LOST, Ordering::AcqRel) & HOLD_LOST == 0 {
            tracing::error!(%cause, "lost the writer hold on the database; ingest answers 503 until it is taken again");
            metrics::gauge!(metric_names::STORE_UP).set(0.0);
        }
    }

    pub fn hold_regained(&self) {
        if self.0.refusals.fetch_and(!HOLD_LOST, Ordering::AcqRel) & HOLD_LOST != 0 {
            tracing::warn!(
                "took the writer hold on the database again; if another daemon wrote to it \
                 meanwhile, restart this one so its counters are read back"
            );
            if self.is_up() {
                metrics::gauge!(metric_names::STORE_UP).set(1.0);
            }
        }
    }

    /// Probes the store every `interval` with a write that is rolled back: marks it down
    /// on a refusal and up once it takes writes again. Runs until the process ends.
    pub fn spawn_monitor(&self, store: Store, interval: Duration) {
        let health = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match store.ping().await {
                    Ok(()) => health.mark_up(),
                    Err(err) => {
                        // Whichever notices an outage first, a write or this probe, the
                        // error count moves.
                        metrics::counter!(metric_names::STORE_ERRORS).increment(1);
                        health.mark_down(&err.to_string());
                    }
                }
            }
        });
    }
}
