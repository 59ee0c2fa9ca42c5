//! Removing rows past their retention, a small batch per statement, so that no delete
//! holds a long lock or a long transaction (`privacy::retention` runs the batches).

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
}

impl Expiring {
    pub const ALL: [Expiring; 3] = [
        Expiring::UsageHours,
        Expiring::BillingEvents,
        Expiring::Sessions,
    ];

    /// The table, as metrics and logs name it.
    pub fn table(self) -> &'static str {
        match self {
            Expiring::UsageHours => "usage_buckets",
            Expiring::BillingEvents => "billing_events",
            Expiring::Sessions => "customer_sessions",
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
        }
    }

    /// The rows older than `$1`.
    fn condition(self) -> &'static str {
        match self {
            Expiring::UsageHours => "bucket_start < $1 AND period_start <> 0",
            Expiring::BillingEvents => "received_at < $1",
            Expiring::Sessions => "expires_at < $1",
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
        let select = format!(
            "SELECT {} FROM {table} WHERE {} LIMIT $2",
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
                let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(&select)
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
                for (creator, customer, meter, period, hour) in &rows {
                    delete = delete
                        .bind(creator)
                        .bind(customer)
                        .bind(meter)
                        .bind(period)
                        .bind(hour);
                }
                delete.execute(&self.pool).await
            }
            Expiring::BillingEvents | Expiring::Sessions => {
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
                delete.execute(&self.pool).await
            }
        };
        Ok(done.map_err(unavailable)?.rows_affected())
    }

    /// Cuts at most `batch` audit records older than `before` off the chain's beginning:
    /// the anchor moves past them (to the last one's hash) and they go, in one
    /// transaction. Only a run of records from the beginning is cut, so the chain left
    /// still verifies from its anchor. Answers how many went.
    pub async fn prune_audit(&self, before: i64, batch: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // Taking the chain's row first serializes with appends (PostgreSQL) and retention
        // runs of another daemon.
        let (pruned_through,): (i64,) = sqlx::query_as(
            "UPDATE audit_chain SET pruned_through = pruned_through WHERE id = 1 \
             RETURNING pruned_through",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        let oldest: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT seq, at, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(pruned_through)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some((through, _, hash)) = oldest.iter().take_while(|(_, at, _)| *at < before).last()
        else {
            return Ok(0);
        };
        sqlx::query("UPDATE audit_chain SET pruned_through = $1, pruned_hash = $2 WHERE id = 1")
            .bind(through)
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let done = sqlx::query("DELETE FROM audit_log WHERE seq > $1 AND seq <= $2")
            .bind(pruned_through)
            .bind(through)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done.rows_affected())
    }
}
