//! Group commit. Every ingest request hands its bucket deltas and idempotency keys to the
//! one flusher and waits; the flusher takes everything that queued up while the previous
//! write ran, merges deltas that land in the same hourly bucket, appends them as one log
//! record (one row, whatever the number of events) and answers every waiting request at
//! once. Throughput grows with load while each answer still means "committed".
//!
//! A folder task moves the log into the hourly buckets in the background: many commits'
//! deltas to the same bucket become one upsert, so the database does work per bucket
//! touched rather than per event.
//!
//! The queue is bounded: a full queue is back-pressure (the caller answers 503), never a
//! silent drop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::store::outbox::Announcement;
use crate::store::{Store, StoreHealth};
use crate::telemetry::metric_names;

/// One usage delta for one hourly bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketWrite {
    pub creator_id: Arc<str>,
    pub customer_id: Arc<str>,
    pub meter_key: Arc<str>,
    /// The meter's incarnation (`Meter::serial`): a fold drops a delta whose meter was
    /// deleted meanwhile, even when a meter with the same key was made since. Records
    /// written before meters had serials read 0, as those meters do.
    #[serde(default)]
    pub meter_serial: i64,
    pub period_start: i64,
    pub bucket_start: i64,
    /// Millionths: added for sum/count meters, maxed for max meters.
    pub value: i64,
    pub is_max: bool,
}

/// An idempotency key and the first answer it stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyWrite {
    pub creator_id: Arc<str>,
    pub key: Arc<str>,
    /// The first answer as JSON.
    pub result: Arc<str>,
    pub created_at: i64,
}

/// A visitor's first sight of an experiment's variant (see `experiment_exposures`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExposureWrite {
    pub creator_id: Arc<str>,
    pub experiment_key: Arc<str>,
    pub visitor: Arc<str>,
    pub variant: Arc<str>,
    pub counted_as: Arc<str>,
    pub exposed_at: i64,
}

/// One conversion of an experiment, from one source (see `experiment_conversions`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversionWrite {
    pub creator_id: Arc<str>,
    pub experiment_key: Arc<str>,
    pub source: Arc<str>,
    pub visitor: Arc<str>,
    pub variant: Arc<str>,
    pub revenue: i64,
    pub converted_at: i64,
}

/// Widget activity (clicks, checkouts started) added to one day's count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivityWrite {
    pub creator_id: Arc<str>,
    pub embed_key: Arc<str>,
    pub version: i64,
    /// Empty outside an experiment.
    pub experiment_key: Arc<str>,
    pub variant: Arc<str>,
    pub kind: Arc<str>,
    pub day: i64,
    pub count: i64,
}

/// What one request needs committed together; also the body of one log record. Embed
/// traffic rides the same commits as usage (records written before embeds existed read
/// as having none).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FlushJob {
    pub buckets: Vec<BucketWrite>,
    pub keys: Vec<KeyWrite>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposures: Vec<ExposureWrite>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversions: Vec<ConversionWrite>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activity: Vec<ActivityWrite>,
    /// Outbox events caused by what this job counts (thresholds passed, widget analytics):
    /// written beside the log record, in the same transaction, not inside it.
    #[serde(skip)]
    pub announcements: Vec<Announcement>,
}

impl FlushJob {
    /// Rows this job writes.
    pub fn writes(&self) -> usize {
        self.buckets.len()
            + self.keys.len()
            + self.exposures.len()
            + self.conversions.len()
            + self.activity.len()
            + self.announcements.len()
    }
}

type Outcome = Result<(), Arc<str>>;

enum Message {
    Job(FlushJob, oneshot::Sender<Outcome>),
    /// Commit everything queued, then answer (graceful shutdown).
    Drain(oneshot::Sender<()>),
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the commit queue is full")]
    QueueFull,
    #[error("the store failed: {0}")]
    Store(Arc<str>),
}

/// The cloneable face of the flusher task.
#[derive(Clone)]
pub struct FlushHandle {
    tx: mpsc::Sender<Message>,
}

impl FlushHandle {
    pub fn spawn(
        store: Store,
        health: StoreHealth,
        queue_capacity: usize,
        max_batch_writes: usize,
        fold_interval: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::channel(queue_capacity);
        tokio::spawn(fold_continually(store.clone(), fold_interval));
        tokio::spawn(run(store, health, rx, max_batch_writes));
        FlushHandle { tx }
    }

    /// Queues the job and waits until it is committed (or failed).
    pub async fn commit(&self, job: FlushJob) -> Result<(), SubmitError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .try_send(Message::Job(job, done))
            .map_err(|_| SubmitError::QueueFull)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(cause)) => Err(SubmitError::Store(cause)),
            Err(_) => Err(SubmitError::Store("flusher stopped".into())),
        }
    }

    /// Commits everything queued so far; used at shutdown.
    pub async fn drain(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Drain(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(
    store: Store,
    health: StoreHealth,
    mut rx: mpsc::Receiver<Message>,
    max_batch_writes: usize,
) {
    let mut waiting: Vec<oneshot::Sender<Outcome>> = Vec::new();
    let mut merged = MergedWrites::default();
    while let Some(first) = rx.recv().await {
        let mut drained = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Job(job, done) => {
                    merged.add(job);
                    waiting.push(done);
                }
                Message::Drain(done) => drained.push(done),
            }
            if merged.writes < max_batch_writes {
                next = rx.try_recv().ok();
            }
        }
        if !waiting.is_empty() {
            let outcome = commit(&store, &health, &mut merged).await;
            for done in waiting.drain(..) {
                let _ = done.send(outcome.clone());
            }
        }
        for done in drained {
            let _ = done.send(());
        }
    }
}

async fn commit(store: &Store, health: &StoreHealth, merged: &mut MergedWrites) -> Outcome {
    let record = merged.take();
    let started = Instant::now();
    metrics::histogram!(metric_names::FLUSH_BATCH_SIZE)
        .record((record.buckets.len() + record.keys.len()) as f64);
    let result = store.append_log(&record).await;
    metrics::histogram!(metric_names::FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
    result.map_err(|err| {
        metrics::counter!(metric_names::STORE_ERRORS).increment(1);
        let cause = err.to_string();
        health.mark_down(&cause);
        Arc::from(cause)
    })
}

type BucketKey = (Arc<str>, Arc<str>, Arc<str>, i64, i64, i64);
type ActivityKey = (Arc<str>, Arc<str>, i64, Arc<str>, Arc<str>, Arc<str>, i64);

/// Deltas of many requests (or log records), merged per bucket and per activity day (a
/// multi-row upsert may touch a row once).
#[derive(Default)]
pub(crate) struct MergedWrites {
    buckets: HashMap<BucketKey, (i64, bool), crate::hashing::FastHash>,
    keys: Vec<KeyWrite>,
    exposures: Vec<ExposureWrite>,
    conversions: Vec<ConversionWrite>,
    activity: HashMap<ActivityKey, i64, crate::hashing::FastHash>,
    announcements: Vec<Announcement>,
    /// Writes taken so far, before merging (bounds one transaction).
    writes: usize,
}

impl MergedWrites {
    pub(crate) fn add(&mut self, job: FlushJob) {
        self.writes += job.writes();
        for write in job.activity {
            let key = (
                write.creator_id,
                write.embed_key,
                write.version,
                write.experiment_key,
                write.variant,
                write.kind,
                write.day,
            );
            *self.activity.entry(key).or_default() += write.count;
        }
        self.exposures.extend(job.exposures);
        self.conversions.extend(job.conversions);
        self.announcements.extend(job.announcements);
        for write in job.buckets {
            let key = (
                write.creator_id,
                write.customer_id,
                write.meter_key,
                write.meter_serial,
                write.period_start,
                write.bucket_start,
            );
            let slot = self.buckets.entry(key).or_insert((0, write.is_max));
            slot.0 = if write.is_max {
                slot.0.max(write.value)
            } else {
                slot.0 + write.value
            };
        }
        self.keys.extend(job.keys);
    }

    pub(crate) fn take(&mut self) -> FlushJob {
        let buckets = self
            .buckets
            .drain()
            .map(
                |(
                    (creator_id, customer_id, meter_key, meter_serial, period_start, bucket_start),
                    (value, is_max),
                )| {
                    BucketWrite {
                        creator_id,
                        customer_id,
                        meter_key,
                        meter_serial,
                        period_start,
                        bucket_start,
                        value,
                        is_max,
                    }
                },
            )
            .collect();
        let activity = self
            .activity
            .drain()
            .map(
                |((creator_id, embed_key, version, experiment_key, variant, kind, day), count)| {
                    ActivityWrite {
                        creator_id,
                        embed_key,
                        version,
                        experiment_key,
                        variant,
                        kind,
                        day,
                        count,
                    }
                },
            )
            .collect();
        self.writes = 0;
        FlushJob {
            buckets,
            keys: std::mem::take(&mut self.keys),
            exposures: std::mem::take(&mut self.exposures),
            conversions: std::mem::take(&mut self.conversions),
            activity,
            announcements: std::mem::take(&mut self.announcements),
        }
    }
}

static FOLD_FAILURES: crate::telemetry::LogLimiter = crate::telemetry::LogLimiter::every(60);

/// Folds the log into the buckets every `interval`, for as long as the process runs. A
/// failure is retried at the next tick: the log keeps everything until it is folded.
async fn fold_continually(store: Store, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        // Fold until the log is empty, a bounded transaction at a time.
        loop {
            let started = Instant::now();
            match store.fold_log().await {
                Ok(0) => break,
                Ok(_) => metrics::histogram!(metric_names::FOLD_SECONDS)
                    .record(started.elapsed().as_secs_f64()),
                Err(err) => {
                    // Fails every tick while the store is down: one line per minute.
                    if let Some(held_back) = FOLD_FAILURES.allow() {
                        tracing::warn!(error = %err, held_back, "folding the usage log failed; will retry");
                    }
                    break;
                }
            }
        }
    }
}
