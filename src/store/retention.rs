//! Removing rows past their retention, a small batch per statement, so that no delete
//! holds a long lock or a long transaction (`privacy::retention` runs the batches).

use std::collections::HashMap;

use super::{placeholders, unavailable, Store, StoreError};

/// What retention removes, by table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiring {
    /// Hours of usage, by the hour's start. Hours of periods that never end (`reset:
    /// never`) stay: together they are the meter's total.
    UsageHours,
    /// Stripe's billing events, by when they were received.
    BillingEvents,
    /// Customer sessions, by when their tokens expired.
    Sessions,
    /// Browser sessions of the dashboard, portal and admin view, by their absolute end.
    BrowserSessions,
    /// Invite and password-reset links, by when they expired.
    DashboardLinks,
}

impl Expiring {
    pub const ALL: [Expiring; 5] = [
        Expiring::UsageHours,
        Expiring::BillingEvents,
        Expiring::Sessions,
        Expiring::BrowserSessions,
        Expiring::DashboardLinks,
    ];

    /// The table, as metrics and logs name it.
    pub fn table(self) -> &'static str {
        match self {
            Expiring::UsageHours => "usage_buckets",
            Expiring::BillingEvents => "billing_events",
            Expiring::Sessions => "customer_sessions",
            Expiring::BrowserSessions => "browser_sessions",
            Expiring::DashboardLinks => "dashboard_tokens",
        }
    }

    /// The primary key's columns.
    fn key_columns(self) -> &'static [&'static str] {
        match self {
            Expiring::UsageHours => &[
                "creator_id",
                "customer_id",
                "meter_key",
                "period_start",
                "bucket_start",
            ],
            Expiring::BillingEvents => &["event_id"],
            Expiring::Sessions => &["id"],
            Expiring::BrowserSessions => &["id_hash"],
            Expiring::DashboardLinks => &["token_hash"],
        }
    }

    /// The rows older than `$1`.
    fn condition(self) -> &'static str {
        match self {
            Expiring::UsageHours => "bucket_start < $1 AND period_start <> 0",
            Expiring::BillingEvents => "received_at < $1",
            Expiring::Sessions | Expiring::BrowserSessions | Expiring::DashboardLinks => {
                "expires_at < $1"
            }
        }
    }
}

impl Store {
    /// Removes at most `batch` rows of `kind` older than `before`; answers how many went.
    /// The rows are found by a read (which takes no write lock, on SQLite neither) and
    /// removed by their keys, so a write never waits on a scan.
    pub async fn remove_expired(
        &self,
        kind: Expiring,
        before: i64,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let table = kind.table();
        let keys = kind.key_columns();
        // Hours are read with their value: its sum stays when they go.
        let value = if kind == Expiring::UsageHours {
            ", value"
        } else {
            ""
        };
        let select = format!(
            "SELECT {}{value} FROM {table} WHERE {} LIMIT $2",
            keys.join(", "),
            kind.condition()
        );
        let query = |rows: usize| {
            let width = keys.len();
            let tuples: Vec<String> = (0..rows)
                .map(|row| format!("({})", placeholders(self.dialect, 1 + row * width, width)))
                .collect();
            format!(
                "DELETE FROM {table} WHERE ({}) IN ({})",
                keys.join(", "),
                tuples.join(", ")
            )
        };
        let done = match kind {
            Expiring::UsageHours => {
                let rows: Vec<(String, String, String, i64, i64, i64)> = sqlx::query_as(&select)
                    .bind(before)
                    .bind(batch)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
                if rows.is_empty() {
                    return Ok(0);
                }
                // The hours go, their sum stays: all-time totals (what is reported to
                // Stripe) do not shrink.
                let mut pruned: HashMap<(&str, &str, &str), i64> = HashMap::new();
                for (creator, customer, meter, _, _, value) in &rows {
                    *pruned.entry((creator, customer, meter)).or_default() += value;
                }
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                for ((creator, customer, meter), value) in pruned {
                    sqlx::query(
                        "INSERT INTO usage_pruned (creator_id, customer_id, meter_key, value) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (creator_id, customer_id, meter_key) \
                         DO UPDATE SET value = usage_pruned.value + excluded.value",
                    )
                    .bind(creator)
                    .bind(customer)
                    .bind(meter)
                    .bind(value)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                }
                let sql = query(rows.len());
                let mut delete = sqlx::query(&sql);
                for (creator, customer, meter, period, hour, _) in &rows {
                    delete = delete
                        .bind(creator)
                        .bind(customer)
                        .bind(meter)
                        .bind(period)
                        .bind(hour);
                }
                let done = delete.execute(&mut *tx).await.map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
                Ok(done)
            }
            Expiring::BillingEvents
            | Expiring::Sessions
            | Expiring::BrowserSessions
            | Expiring::DashboardLinks => {
                let rows: Vec<(String,)> = sqlx::query_as(&select)
                    .bind(before)
                    .bind(batch)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(unavailable)?;
                if rows.is_empty() {
                    return Ok(0);
                }
                let sql = query(rows.len());
                let mut delete = sqlx::query(&sql);
                for (id,) in &rows {
                    delete = delete.bind(id);
                }
                delete.execute(&self.pool).await.map_err(unavailable)
            }
        };
        Ok(done?.rows_affected())
    }
}
