//! The overview's figures, each from where it is cheap: usage by day from the rollups
//! (30 rows a meter), the customers, the decision mix and the top customers from memory
//! (one pass for every meter), revenue and notices from grouped counts over the last 30
//! days. Nothing here reads every customer's rows.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::reads::RevenueRow;
use crate::tenants::registry::Creator;
use crate::usage::quantity::Quantity;
use crate::usage::series::{merge, Granularity, Point};

const DAYS: i64 = 30;
const TOP: usize = 5;

pub struct MeterFigures {
    pub key: Arc<str>,
    pub name: String,
    pub unit: String,
    pub days: Vec<Point>,
    pub top: Vec<(Arc<str>, Quantity)>,
}

pub struct Overview {
    pub customers: i64,
    /// Since the daemon started: allow, warn, block.
    pub decisions: [u64; 3],
    pub meters: Vec<MeterFigures>,
    pub revenue: Vec<RevenueRow>,
    /// `(integration, status, count)` over the last 30 days.
    pub messages: Vec<(String, String, i64)>,
}

pub async fn gather(state: &AppState, creator: &Creator) -> Result<Overview, ApiError> {
    let tenant = &creator.tenant;
    let now = state.usage.now();
    let to = now.div_euclid(86_400) * 86_400 + 86_400;
    let from = to - DAYS * 86_400;
    let config = tenant.config();
    let live: Vec<_> = config.live_meters().collect();
    let ids: Vec<_> = live.iter().map(|(id, _)| *id).collect();
    let mut tops = tenant.top_customers(&ids, TOP).into_iter();
    let mut meters = Vec::new();
    for (_, meter) in live {
        let hours = state
            .store
            .meter_hours(&tenant.id, &meter.key, (from, to))
            .await?;
        let is_max = meter.aggregation == crate::usage::decide::Aggregation::Max;
        meters.push(MeterFigures {
            key: meter.key.clone(),
            name: meter.name.clone(),
            unit: meter.unit.clone(),
            days: merge(Granularity::Day, is_max, from, to, &hours),
            top: tops.next().unwrap_or_default(),
        });
    }
    Ok(Overview {
        // Every customer the creator declared or counted is in memory.
        customers: tenant.customers.len() as i64,
        decisions: [0, 1, 2].map(|i| tenant.decisions[i].load(Ordering::Relaxed)),
        meters,
        revenue: state.store.revenue(&tenant.id, now - DAYS * 86_400).await?,
        messages: state
            .store
            .message_counts(&tenant.id, now - DAYS * 86_400)
            .await?,
    })
}
