//! Usage goes to analytics as one event per customer, meter and hour, read from the
//! durable hourly buckets once the hour is over (and `SETTLE_SECS` more; what the group
//! commit's log still holds is folded first), never one event per usage event. A cursor kept
//! with the events it made (one transaction) says which hour is next, so a restart neither
//! skips nor repeats an hour; the first start begins with the hour then under way, and
//! hours that pass while no analytics go anywhere are skipped unread. Usage
//! counted later into an hour already summarized (an event with a past timestamp) is not
//! summarized again.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::analytics::projects::Projects;
use crate::clock::{every, SharedClock, Stopping};
use crate::outbox::model::{announcement, USAGE_SUMMARY};
use crate::store::{Store, StoreError};
use crate::usage::period::rfc3339;
use crate::usage::quantity::Quantity;
use tokio::task::JoinHandle;

const CURSOR: &str = "usage_summaries";
const HOUR: i64 = 3_600;
/// How long after an hour ends its buckets are taken as settled.
const SETTLE_SECS: i64 = 300;
/// Hours summarized per pass, at most (a daemon that was down catches up gradually).
const HOURS_PER_PASS: i64 = 24;
/// Fold passes before a summary, at most.
const MAX_FOLDS: usize = 100;

/// Summarizes closed hours every `interval`, until the daemon stops.
pub fn spawn(
    store: Store,
    clock: SharedClock,
    projects: Arc<Projects>,
    interval: Duration,
    stopping: Stopping,
) -> JoinHandle<()> {
    every(interval, stopping, move || {
        let (store, clock, projects) = (store.clone(), clock.clone(), projects.clone());
        async move {
            if let Err(err) = summarize(&store, clock.now(), &projects).await {
                tracing::debug!(error = %err, "summarizing usage for analytics failed; will retry");
            }
        }
    })
}

/// Folds the log into the buckets until it is empty, or for `MAX_FOLDS` passes (under
/// sustained ingest the log never empties, and the regular fold keeps up with it).
async fn fold_what_is_logged(store: &Store) -> Result<(), StoreError> {
    for _ in 0..MAX_FOLDS {
        if store.fold_log().await? == 0 {
            break;
        }
    }
    Ok(())
}

/// Summarizes every settled hour after the cursor (up to `HOURS_PER_PASS`).
pub async fn summarize(store: &Store, now: i64, projects: &Projects) -> Result<(), StoreError> {
    let last_settled = (now - SETTLE_SECS).div_euclid(HOUR) * HOUR - HOUR;
    let Some(done) = store.cursor(CURSOR).await? else {
        // First start: from the hour under way on.
        return store.announce_and_advance(&[], CURSOR, last_settled).await;
    };
    let mut hour = done + HOUR;
    if hour > last_settled {
        return Ok(());
    }
    if !projects.any() {
        // Nobody's analytics go anywhere: the hours pass unread.
        return store.announce_and_advance(&[], CURSOR, last_settled).await;
    }
    // What the group commit holds unfolded may belong to the hours about to be read.
    fold_what_is_logged(store).await?;
    while hour <= last_settled && hour <= done + HOURS_PER_PASS * HOUR {
        let announcements: Vec<_> = store
            .hour_totals(hour)
            .await?
            .into_iter()
            .filter(|row| projects.wants(&row.creator_id))
            .map(|row| {
                let data = json!({
                    "customer_id": row.customer_id,
                    "meter": row.meter_key,
                    "value": Quantity::from_micros(row.value),
                    "hour_start": rfc3339(hour),
                });
                let cause = format!(
                    "{USAGE_SUMMARY}:{}:{}:{hour}",
                    row.customer_id, row.meter_key
                );
                announcement(&row.creator_id, cause, USAGE_SUMMARY, data, hour + HOUR)
            })
            .collect();
        store
            .announce_and_advance(&announcements, CURSOR, hour)
            .await?;
        hour += HOUR;
    }
    Ok(())
}
