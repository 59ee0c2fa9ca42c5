//! The daemon's notion of "now", behind a trait so that tests can move time across period
//! boundaries without sleeping. Times are Unix seconds (UTC) throughout the daemon. Also
//! the one way background work repeats (`every`): on a real timer, until the daemon stops.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch, UTC.
    fn now(&self) -> i64;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn starting_at(unix_seconds: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(unix_seconds)))
    }

    pub fn set(&self, unix_seconds: i64) {
        self.0.store(unix_seconds, Ordering::SeqCst);
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// Told `true` when the daemon stops: background loops end.
pub type Stopping = tokio::sync::watch::Receiver<bool>;

/// Runs `work` now and then every `interval` (real time), until `stopping` turns true;
/// the handle ends once the round under way when told has finished.
pub fn every<F, Fut>(
    interval: std::time::Duration,
    mut stopping: Stopping,
    mut work: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = ticker.tick() => work().await,
                changed = stopping.changed() => {
                    // Told to stop, or the daemon that could tell is gone.
                    if changed.is_err() || *stopping.borrow() {
                        return;
                    }
                }
            }
        }
    })
}
