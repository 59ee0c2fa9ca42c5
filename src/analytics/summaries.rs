//! Usage goes to analytics as one event per customer, meter and hour, read from the
//! durable hourly buckets once the hour is over (and `SETTLE_SECS` more, for the group
//! commit's fold to land its last deltas), never one event per usage event. A cursor kept
//! with the events it made (one transaction) says which hour is next, so a restart neither
//! skips nor repeats an hour; the first start begins with the hour then under way. Usage
//! counted later into an hour already summarized (an event with a past timestamp) is not
//! summarized again.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::analytics::projects::Projects;
use crate::clock::SharedClock;
use crate::outbox::model::{announcement, USAGE_SUMMARY};
use crate::store::{Store, StoreError};
use crate::usage::period::rfc3339;
use crate::usage::quantity::Quantity;

const CURSOR: &str = "usage_summaries";
const HOUR: i64 = 3_600;
/// How long after an hour ends its buckets are taken as settled.
const SETTLE_SECS: i64 = 300;
/// Hours summarized per pass, at most (a daemon that was down catches up gradually).
const HOURS_PER_PASS: i64 = 24;

/// Summarizes closed hours every `interval`, for as long as the process runs.
pub fn spawn(store: Store, clock: SharedClock, projects: Arc<Projects>, interval: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            if let Err(err) = summarize(&store, clock.now(), &projects).await {
                tracing::debug!(error = %err, "summarizing usage for analytics failed; will retry");
            }
        }
    });
}

/// Summarizes every settled hour after the cursor (up to `HOURS_PER_PASS`).
pub async fn summarize(store: &Store, now: i64, projects: &Projects) -> Result<(), StoreError> {
    let last_settled = (now - SETTLE_SECS).div_euclid(HOUR) * HOUR - HOUR;
    let Some(done) = store.cursor(CURSOR).await? else {
        // First start: from the hour under way on.
        return store.announce_and_advance(&[], CURSOR, last_settled).await;
    };
    let mut hour = done + HOUR;
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
