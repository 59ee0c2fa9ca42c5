//! Reconciliation: an actor that, on a timer, compares what Staryer reported to Stripe
//! with what Stripe counted, so that usage lost or doubled on the way (a meter changed at
//! Stripe, events refused after being taken, a bug on either side) is seen instead of
//! billed wrongly in silence.
//!
//! For each creator, each Stripe customer and meter with reports Stripe accepted in a
//! window of time, the units of those reports are compared with the `aggregated_value` of
//! the meter's event summary for that customer and window (`GET /v1/billing/meters/{id}/
//! event_summaries`; the customer is required, the times must fall on minute boundaries).
//! A difference is a drift: a warning, `staryer_stripe_usage_drift_total`, and a billing
//! event `staryer.usage_drift` in the creator's billing events (amount: units reported
//! minus units Stripe counted), whose id is made of the creator, Stripe customer, meter and
//! window, so that checking a window again records nothing new.
//!
//! The windows are `stripe.reconcile_interval_secs` rounded up to whole hours, aligned on
//! multiples of that span since the epoch (the same windows after a restart), and a window
//! is checked once it ended at least an hour ago: Stripe aggregates meter events
//! asynchronously (its summaries are eventually consistent), and the reports stamped in
//! the window's last minutes must have gone out and been counted. A window with reports
//! still pending is passed over for that Stripe customer and meter: Stripe may or may not
//! have them yet. The actor wakes at the reporter's pace and works when the daemon's clock
//! reaches a new window; on start it checks the latest window again (a window missed while
//! the daemon was down is not checked). It never touches ingest.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use sha2::{Digest, Sha256};
use stripe_billing::billing_meter_event_summary::ListIdBillingMeterEventSummary;

use crate::billing::Billing;
use crate::error::ApiError;
use crate::store::billing::{BillingEventRow, ReportedTotalRow, StripeMeterRow};
use crate::telemetry::metric_names;
use crate::usage::period::rfc3339;

/// The billing event type of a drift.
pub const USAGE_DRIFT: &str = "staryer.usage_drift";
/// How long after a window's end it is checked: Stripe's time to count its events.
const SETTLE_SECS: i64 = 3_600;
const HOUR_SECS: i64 = 3_600;

/// One page of meter event summaries; without a grouping window, one summary for the whole
/// window.
#[derive(miniserde::Deserialize)]
struct Summaries {
    data: Vec<Summary>,
}

#[derive(miniserde::Deserialize)]
struct Summary {
    aggregated_value: f64,
}

/// A window's length: the interval rounded up to whole hours.
fn span_secs(interval_secs: u64) -> i64 {
    let hours = i64::try_from(interval_secs.div_ceil(HOUR_SECS as u64)).unwrap_or(i64::MAX);
    hours.clamp(1, i64::MAX / HOUR_SECS) * HOUR_SECS
}

/// The window `[start, end)` due at `now`: the latest one aligned on `span` that ended at
/// least `SETTLE_SECS` ago.
fn window(now: i64, span: i64) -> (i64, i64) {
    let end = (now - SETTLE_SECS).div_euclid(span) * span;
    (end - span, end)
}

/// `staryer_drift_<meter>_<window start>_<16 hex of creator, Stripe customer, meter,
/// window>`: the same drift always has the same id, different ones never share one.
fn drift_id(creator_id: &str, total: &ReportedTotalRow, start: i64, end: i64) -> String {
    let mut hash = Sha256::new();
    for part in [
        creator_id,
        &total.stripe_customer_id,
        &total.meter_key,
        &start.to_string(),
        &end.to_string(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hex::encode(&hash.finalize()[..8]);
    format!("staryer_drift_{}_{start}_{digest}", total.meter_key)
}

pub struct Reconciler {
    billing: Billing,
    poll: Duration,
    span: i64,
    /// The end of the last window checked in full.
    checked_until: Option<i64>,
}

impl Reconciler {
    pub fn start(billing: Billing) -> Addr<Reconciler> {
        Reconciler {
            poll: Duration::from_millis(billing.config.report_interval_ms),
            span: span_secs(billing.config.reconcile_interval_secs),
            billing,
            checked_until: None,
        }
        .start()
    }
}

impl Actor for Reconciler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(Tick);
    }
}

/// A look at the clock, and the check of a window when a new one is due; the next look is
/// scheduled when this one ends.
#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

impl Handler<Tick> for Reconciler {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Tick, _: &mut Self::Context) -> Self::Result {
        let (start, end) = window(self.billing.clock.now(), self.span);
        let due = self.checked_until.is_none_or(|until| end > until);
        let billing = self.billing.clone();
        AtomicResponse::new(Box::pin(
            async move { due && billing.reconcile(start, end).await }
                .into_actor(self)
                .map(move |checked, actor, ctx| {
                    if checked {
                        actor.checked_until = Some(end);
                    }
                    ctx.notify_later(Tick, actor.poll);
                }),
        ))
    }
}

/// Stops the reconciler after the check in progress (the daemon is stopping).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for Reconciler {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Billing {
    /// Checks the window `[start, end)` for every connected creator; `false` when the
    /// store failed (the window is checked again at the next look).
    async fn reconcile(&self, start: i64, end: i64) -> bool {
        let connected = match self.store.connected_creators().await {
            Ok(connected) => connected,
            Err(err) => {
                tracing::warn!(error = %err, "listing connected creators for reconciliation failed");
                return false;
            }
        };
        let mut checked = true;
        for (creator_id, _) in connected {
            if let Err(err) = self.reconcile_creator(&creator_id, start, end).await {
                tracing::warn!(creator_id = %creator_id, error = %err,
                    "reconciling usage with Stripe failed; the next look retries");
                checked = false;
            }
        }
        checked
    }

    async fn reconcile_creator(
        &self,
        creator_id: &str,
        start: i64,
        end: i64,
    ) -> Result<(), ApiError> {
        let meters: HashMap<String, StripeMeterRow> = self
            .store
            .load_stripe_meters(creator_id)
            .await?
            .into_iter()
            .map(|row| (row.meter_key.clone(), row))
            .collect();
        for total in self.store.reported_totals(creator_id, start, end).await? {
            let Some(meter) = meters
                .get(&total.meter_key)
                .filter(|meter| meter.account_id == total.account_id)
            else {
                continue;
            };
            if total.pending > 0 {
                tracing::debug!(creator_id = %creator_id, meter = %total.meter_key,
                    "reports still pending in the window; not reconciled");
                continue;
            }
            let ask = ListIdBillingMeterEventSummary::new(
                meter.stripe_meter_id.as_str(),
                total.stripe_customer_id.as_str(),
                end,
                start,
            );
            // A customer Stripe cannot answer for is no reason to skip the others.
            let summaries: Summaries =
                match self.client.send(&ask, Some(&total.account_id), None).await {
                    Ok(summaries) => summaries,
                    Err(err) => {
                        tracing::warn!(creator_id = %creator_id, meter = %total.meter_key,
                            error = %err, "reading Stripe's meter event summary failed");
                        continue;
                    }
                };
            let counted: f64 = summaries.data.iter().map(|s| s.aggregated_value).sum();
            let drift = total.sent - counted.round() as i64;
            if drift != 0 {
                self.record_drift(creator_id, &total, meter, (start, end), drift)
                    .await?;
            }
        }
        Ok(())
    }

    /// The drift as a billing event, logged and counted the first time it is recorded.
    async fn record_drift(
        &self,
        creator_id: &str,
        total: &ReportedTotalRow,
        meter: &StripeMeterRow,
        (start, end): (i64, i64),
        drift: i64,
    ) -> Result<(), ApiError> {
        let event = BillingEventRow {
            event_id: drift_id(creator_id, total, start, end),
            creator_id: Some(creator_id.to_string()),
            r#type: USAGE_DRIFT.to_string(),
            customer_id: Some(total.customer_id.clone()),
            stripe_customer_id: Some(total.stripe_customer_id.clone()),
            object_id: Some(meter.stripe_meter_id.clone()),
            amount: Some(drift),
            currency: None,
            status: None,
            stripe_created: end,
            received_at: self.clock.now(),
        };
        if self.store.record_billing_event(&event, &[]).await? {
            metrics::counter!(metric_names::STRIPE_USAGE_DRIFT).increment(1);
            tracing::warn!(creator_id = %creator_id, customer = %total.customer_id,
                meter = %total.meter_key, reported = total.sent, stripe_counted = total.sent - drift,
                window_start = %rfc3339(start), window_end = %rfc3339(end),
                "Stripe counted other usage than was reported");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_whole_hours() {
        assert_eq!(span_secs(1), 3_600);
        assert_eq!(span_secs(3_600), 3_600);
        assert_eq!(span_secs(3_601), 7_200);
        assert_eq!(span_secs(86_400), 86_400);
        assert_eq!(span_secs(u64::MAX) % 3_600, 0);
    }

    #[test]
    fn the_window_due_ended_at_least_an_hour_ago() {
        // 2026-03-15T12:30:00Z
        let now = 1_773_577_800;
        let (start, end) = window(now, 3_600);
        assert_eq!((start, end), (now - 1_800 - 7_200, now - 1_800 - 3_600));
        assert!(end <= now - SETTLE_SECS && start % 60 == 0);
        // Aligned on the span: a day's window is a UTC day.
        let (start, end) = window(now, 86_400);
        assert_eq!((start % 86_400, end - start), (0, 86_400));
        assert!(end <= now - SETTLE_SECS);
    }
}
