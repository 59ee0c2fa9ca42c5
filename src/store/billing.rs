//! The billing tables: the Stripe objects made for each creator's catalog, the report
//! cursors and the reports themselves (the outbox of meter events), and the webhook
//! events received, and the tidy-ups of deleted meters and tiers (their Stripe objects
//! still to deactivate or archive). Same SQL on both databases, like the rest of the store.

use sqlx::Row;

use super::audit::AuditEntry;
use super::{
    multi_row_insert, unavailable, CustomerRow, Store, StoreError, CUSTOMER_COLUMNS,
    ROWS_PER_STATEMENT,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StripeMeterRow {
    pub meter_key: String,
    pub account_id: String,
    pub stripe_meter_id: String,
    pub event_name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StripeTierRow {
    pub tier_key: String,
    pub account_id: String,
    pub product_id: String,
    pub price_id: String,
    /// JSON object: meter key -> metered price id.
    pub overage_prices: String,
    pub definition_hash: String,
    /// Syncs that made objects for this tier so far.
    pub syncs: i64,
    pub synced_at: i64,
}

/// A Stripe object of a deleted meter or tier still to put away: `kind` is `meter`
/// (deactivate), `product` or `price` (archive).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TidyUpRow {
    pub kind: String,
    pub object_id: String,
    pub account_id: String,
    /// Failed attempts so far.
    pub attempts: i64,
}

/// A customer's all-time durable usage of one meter, from the hourly buckets (millionths).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BillableTotalRow {
    pub customer_id: String,
    pub stripe_customer_id: String,
    pub tier_key: Option<String>,
    pub meter_key: String,
    pub total: i64,
    /// The part of `total` in hours before the customer could be billed for the meter:
    /// before the hour of the later of its last change (tier, Stripe id) and the Stripe
    /// meter's creation.
    pub before_billable: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportCursorRow {
    pub customer_id: String,
    pub meter_key: String,
    pub accounted_units: i64,
    pub next_seq: i64,
    /// Goes into the identifiers of its reports (see migration 0008); empty for cursors
    /// made before it.
    pub epoch: String,
}

/// The subscription that decides a customer's tier, as the webhooks last saw it, and the
/// customer's standing with its payments (see migration 0003).
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub stripe_subscription_id: Option<String>,
    pub subscription_event_at: Option<i64>,
    /// The tier the subscription pays for.
    pub subscribed_tier: Option<String>,
    /// A downgrade scheduled for the period's end.
    pub pending_tier: Option<String>,
    /// `None` in good standing, `past_due` or `grace_ended`.
    pub billing_status: Option<String>,
    /// The invoice whose failed payment started the grace period.
    pub failed_invoice_id: Option<String>,
    pub grace_ends_at: Option<i64>,
}

const SUBSCRIPTION_COLUMNS: &str = "stripe_subscription_id, subscription_event_at, \
     subscribed_tier, pending_tier, billing_status, failed_invoice_id, grace_ends_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReportRow {
    pub identifier: String,
    pub creator_id: String,
    pub account_id: String,
    pub customer_id: String,
    pub meter_key: String,
    pub event_name: String,
    pub stripe_customer_id: String,
    /// Whole units.
    pub value: i64,
    pub event_at: i64,
    pub created_at: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BillingEventRow {
    pub event_id: String,
    pub creator_id: Option<String>,
    pub r#type: String,
    pub customer_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub object_id: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub status: Option<String>,
    pub stripe_created: i64,
    pub received_at: i64,
}

/// What was reported to Stripe for one Stripe customer and meter in a window of time.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReportedTotalRow {
    pub stripe_customer_id: String,
    pub meter_key: String,
    pub account_id: String,
    /// One of the creator's customers billed through this Stripe customer (the latest
    /// by id, when several share it).
    pub customer_id: String,
    /// Whole units of the reports Stripe accepted.
    pub sent: i64,
    /// Reports of the window still on their way (pending).
    pub pending: i64,
}

const REPORT_COLUMNS: &str = "identifier, creator_id, account_id, customer_id, meter_key, \
     event_name, stripe_customer_id, value, event_at, created_at, state, attempts, \
     next_attempt_at, sent_at, last_error";

const STRIPE_TIER_COLUMNS: &str = "tier_key, account_id, product_id, price_id, \
     overage_prices, definition_hash, syncs, synced_at";

impl Store {
    // --- connected accounts -----------------------------------------------------------------

    /// Records the creator's account; `Conflict` when another creator has it.
    /// Records the creator's connected account, with the change's record.
    pub async fn set_stripe_account(
        &self,
        creator_id: &str,
        account_id: &str,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query("UPDATE creators SET stripe_account_id = $1 WHERE id = $2")
            .bind(account_id)
            .bind(creator_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "a creator with this Stripe account"))?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    pub async fn stripe_account(&self, creator_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT stripe_account_id FROM creators WHERE id = $1")
            .bind(creator_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        match row {
            Some(row) => row.try_get(0).map_err(unavailable),
            None => Ok(None),
        }
    }

    /// The creator whose connected account this is.
    pub async fn creator_by_stripe_account(
        &self,
        account_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT id FROM creators WHERE stripe_account_id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| row.try_get(0).map_err(unavailable))
            .transpose()
    }

    /// Every creator with a connected account: (creator id, account id).
    pub async fn connected_creators(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, stripe_account_id FROM creators WHERE stripe_account_id IS NOT NULL \
             ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    // --- catalog ----------------------------------------------------------------------------

    pub async fn stripe_meter(
        &self,
        creator_id: &str,
        meter_key: &str,
    ) -> Result<Option<StripeMeterRow>, StoreError> {
        sqlx::query_as::<_, StripeMeterRow>(
            "SELECT meter_key, account_id, stripe_meter_id, event_name, created_at FROM stripe_meters \
             WHERE creator_id = $1 AND meter_key = $2",
        )
        .bind(creator_id)
        .bind(meter_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn load_stripe_meters(
        &self,
        creator_id: &str,
    ) -> Result<Vec<StripeMeterRow>, StoreError> {
        sqlx::query_as::<_, StripeMeterRow>(
            "SELECT meter_key, account_id, stripe_meter_id, event_name, created_at FROM stripe_meters \
             WHERE creator_id = $1",
        )
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn save_stripe_meter(
        &self,
        creator_id: &str,
        meter: &StripeMeterRow,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO stripe_meters (creator_id, meter_key, account_id, stripe_meter_id, \
             event_name, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (creator_id, meter_key) DO UPDATE SET account_id = excluded.account_id, \
             stripe_meter_id = excluded.stripe_meter_id, event_name = excluded.event_name, \
             created_at = excluded.created_at",
        )
        .bind(creator_id)
        .bind(&meter.meter_key)
        .bind(&meter.account_id)
        .bind(&meter.stripe_meter_id)
        .bind(&meter.event_name)
        .bind(meter.created_at)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    pub async fn stripe_tier(
        &self,
        creator_id: &str,
        tier_key: &str,
    ) -> Result<Option<StripeTierRow>, StoreError> {
        sqlx::query_as::<_, StripeTierRow>(&format!(
            "SELECT {STRIPE_TIER_COLUMNS} FROM stripe_tiers WHERE creator_id = $1 AND tier_key = $2"
        ))
        .bind(creator_id)
        .bind(tier_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn load_stripe_tiers(
        &self,
        creator_id: &str,
    ) -> Result<Vec<StripeTierRow>, StoreError> {
        sqlx::query_as::<_, StripeTierRow>(&format!(
            "SELECT {STRIPE_TIER_COLUMNS} FROM stripe_tiers WHERE creator_id = $1"
        ))
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Records a tier's Stripe objects after a sync. A tier deleted while it was being
    /// synced gets its row and, in the same transaction, its tidy-up (what the sync made
    /// or updated at Stripe is put away, as the delete would have).
    pub async fn save_stripe_tier(
        &self,
        creator_id: &str,
        tier: &StripeTierRow,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(&format!(
            "INSERT INTO stripe_tiers (creator_id, {STRIPE_TIER_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (creator_id, tier_key) DO UPDATE SET account_id = excluded.account_id, \
             product_id = excluded.product_id, price_id = excluded.price_id, \
             overage_prices = excluded.overage_prices, \
             definition_hash = excluded.definition_hash, syncs = excluded.syncs, \
             synced_at = excluded.synced_at"
        ))
        .bind(creator_id)
        .bind(&tier.tier_key)
        .bind(&tier.account_id)
        .bind(&tier.product_id)
        .bind(&tier.price_id)
        .bind(&tier.overage_prices)
        .bind(&tier.definition_hash)
        .bind(tier.syncs)
        .bind(tier.synced_at)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        let live: Option<(i64,)> =
            sqlx::query_as("SELECT position FROM tiers WHERE creator_id = $1 AND key = $2")
                .bind(creator_id)
                .bind(&tier.tier_key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
        if live.is_none() {
            retire_stripe_tier(&mut tx, creator_id, &tier.tier_key, tier.synced_at)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    // --- customers, as billing finds them ---------------------------------------------------

    pub async fn customer(
        &self,
        creator_id: &str,
        customer_id: &str,
    ) -> Result<Option<CustomerRow>, StoreError> {
        sqlx::query_as::<_, CustomerRow>(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE creator_id = $1 AND id = $2"
        ))
        .bind(creator_id)
        .bind(customer_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Records the customer's Stripe Customer, and nothing else of it but the time of the
    /// change (usage is billed from the hour of its last change: `billable_totals`).
    pub async fn set_stripe_customer_id(
        &self,
        creator_id: &str,
        customer_id: &str,
        stripe_customer_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE customers SET stripe_customer_id = $1, updated_at = $2 \
             WHERE creator_id = $3 AND id = $4",
        )
        .bind(stripe_customer_id)
        .bind(now)
        .bind(creator_id)
        .bind(customer_id)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    pub async fn customer_by_stripe_id(
        &self,
        creator_id: &str,
        stripe_customer_id: &str,
    ) -> Result<Option<CustomerRow>, StoreError> {
        sqlx::query_as::<_, CustomerRow>(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers \
             WHERE creator_id = $1 AND stripe_customer_id = $2 ORDER BY updated_at DESC LIMIT 1"
        ))
        .bind(creator_id)
        .bind(stripe_customer_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn subscription(
        &self,
        creator_id: &str,
        customer_id: &str,
    ) -> Result<SubscriptionRow, StoreError> {
        let row = sqlx::query_as::<_, SubscriptionRow>(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM customers WHERE creator_id = $1 AND id = $2"
        ))
        .bind(creator_id)
        .bind(customer_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(row.unwrap_or_default())
    }

    pub async fn set_subscription(
        &self,
        creator_id: &str,
        customer_id: &str,
        subscription: &SubscriptionRow,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE customers SET stripe_subscription_id = $1, subscription_event_at = $2, \
             subscribed_tier = $3, pending_tier = $4, billing_status = $5, \
             failed_invoice_id = $6, grace_ends_at = $7 WHERE creator_id = $8 AND id = $9",
        )
        .bind(&subscription.stripe_subscription_id)
        .bind(subscription.subscription_event_at)
        .bind(&subscription.subscribed_tier)
        .bind(&subscription.pending_tier)
        .bind(&subscription.billing_status)
        .bind(&subscription.failed_invoice_id)
        .bind(subscription.grace_ends_at)
        .bind(creator_id)
        .bind(customer_id)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// Customers of every creator whose grace period after a failed payment is over by
    /// `now`: (creator id, customer id). A sweep over all creators (the dunning pass), not
    /// a tenant's read.
    pub async fn all_overdue_graces(&self, now: i64) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT creator_id, id FROM customers \
             WHERE billing_status = 'past_due' AND grace_ends_at <= $1 ORDER BY grace_ends_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    /// Every customer of every creator not in good standing: (creator id, customer id,
    /// billing status). Read once at start, to fill the memory usage answers read.
    pub async fn all_billing_standings(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT creator_id, id, billing_status FROM customers \
             WHERE billing_status IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    // --- settings ---------------------------------------------------------------------------

    /// The creator's billing settings as stored (JSON), if it ever set them.
    pub async fn billing_settings(&self, creator_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT billing_settings FROM creators WHERE id = $1")
            .bind(creator_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        match row {
            Some(row) => row.try_get(0).map_err(unavailable),
            None => Ok(None),
        }
    }

    /// Replaces the creator's billing settings, with the change's record.
    pub async fn set_billing_settings(
        &self,
        creator_id: &str,
        settings: &str,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query("UPDATE creators SET billing_settings = $1 WHERE id = $2")
            .bind(settings)
            .bind(creator_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    // --- reports ----------------------------------------------------------------------------

    /// For every customer with a Stripe customer id and every meter with a Stripe meter:
    /// the customer's all-time durable usage, and the part of it from before it could be
    /// billed (see `BillableTotalRow::before_billable`).
    pub async fn billable_totals(
        &self,
        creator_id: &str,
    ) -> Result<Vec<BillableTotalRow>, StoreError> {
        let since = format!("{}(c.updated_at, m.created_at)", self.max_fn());
        sqlx::query_as::<_, BillableTotalRow>(&format!(
            "SELECT c.id AS customer_id, c.stripe_customer_id, c.tier_key, b.meter_key, \
             CAST(SUM(b.value) + COALESCE(MAX(p.value), 0) AS BIGINT) AS total, \
             CAST(SUM(CASE WHEN b.bucket_start < {since} - ({since} % 3600) \
             THEN b.value ELSE 0 END) + COALESCE(MAX(p.value), 0) AS BIGINT) AS before_billable \
             FROM customers c \
             JOIN stripe_meters m ON m.creator_id = c.creator_id \
             JOIN usage_buckets b ON b.creator_id = c.creator_id AND b.customer_id = c.id \
             AND b.meter_key = m.meter_key \
             LEFT JOIN usage_pruned p ON p.creator_id = c.creator_id AND p.customer_id = c.id \
             AND p.meter_key = m.meter_key \
             WHERE c.creator_id = $1 AND c.stripe_customer_id IS NOT NULL \
             GROUP BY c.id, c.stripe_customer_id, c.tier_key, b.meter_key"
        ))
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn load_report_cursors(
        &self,
        creator_id: &str,
    ) -> Result<Vec<ReportCursorRow>, StoreError> {
        sqlx::query_as::<_, ReportCursorRow>(
            "SELECT customer_id, meter_key, accounted_units, next_seq, epoch \
             FROM stripe_report_cursors WHERE creator_id = $1",
        )
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Writes new reports and their cursors in one transaction: a report exists exactly
    /// when its cursor counts it.
    pub async fn insert_reports(
        &self,
        creator_id: &str,
        reports: &[ReportRow],
        cursors: &[ReportCursorRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let head = format!("INSERT INTO stripe_reports ({REPORT_COLUMNS}) VALUES ");
        for chunk in reports.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_row_insert(self.dialect, &head, 15, chunk.len(), "");
            let mut insert = sqlx::query(&sql);
            for report in chunk {
                insert = insert
                    .bind(&report.identifier)
                    .bind(&report.creator_id)
                    .bind(&report.account_id)
                    .bind(&report.customer_id)
                    .bind(&report.meter_key)
                    .bind(&report.event_name)
                    .bind(&report.stripe_customer_id)
                    .bind(report.value)
                    .bind(report.event_at)
                    .bind(report.created_at)
                    .bind(&report.state)
                    .bind(report.attempts)
                    .bind(report.next_attempt_at)
                    .bind(report.sent_at)
                    .bind(&report.last_error);
            }
            insert
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "a report with this identifier"))?;
        }
        for chunk in cursors.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_row_insert(
                self.dialect,
                "INSERT INTO stripe_report_cursors (creator_id, customer_id, meter_key, \
                 accounted_units, next_seq, epoch) VALUES ",
                6,
                chunk.len(),
                "ON CONFLICT (creator_id, customer_id, meter_key) DO UPDATE SET \
                 accounted_units = excluded.accounted_units, next_seq = excluded.next_seq",
            );
            let mut upsert = sqlx::query(&sql);
            for cursor in chunk {
                upsert = upsert
                    .bind(creator_id)
                    .bind(&cursor.customer_id)
                    .bind(&cursor.meter_key)
                    .bind(cursor.accounted_units)
                    .bind(cursor.next_seq)
                    .bind(&cursor.epoch);
            }
            upsert.execute(&mut *tx).await.map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    /// Pending reports whose next attempt is due, oldest first.
    pub async fn due_reports(&self, now: i64, limit: i64) -> Result<Vec<ReportRow>, StoreError> {
        sqlx::query_as::<_, ReportRow>(&format!(
            "SELECT {REPORT_COLUMNS} FROM stripe_reports \
             WHERE state = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, created_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn mark_reports_sent(
        &self,
        identifiers: &[&str],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let head = format!(
            "UPDATE stripe_reports SET state = 'sent', sent_at = {now}, \
             attempts = attempts + 1, last_error = NULL WHERE identifier IN ("
        );
        for chunk in identifiers.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_row_insert(self.dialect, &head, 1, chunk.len(), ")");
            let mut update = sqlx::query(&sql);
            for identifier in chunk {
                update = update.bind(*identifier);
            }
            update.execute(&mut *tx).await.map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    /// A report Stripe took, then found wrong (a meter error report names it): failed,
    /// with Stripe's reason; answers whether the creator had it.
    pub async fn mark_report_rejected(
        &self,
        creator_id: &str,
        identifier: &str,
        error: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE stripe_reports SET state = 'failed', last_error = $1 \
             WHERE creator_id = $2 AND identifier = $3",
        )
        .bind(error)
        .bind(creator_id)
        .bind(identifier)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a failed attempt: `next_attempt_at` for a retry, or `None` to give up.
    pub async fn mark_report_attempt_failed(
        &self,
        identifier: &str,
        next_attempt_at: Option<i64>,
        error: &str,
    ) -> Result<(), StoreError> {
        let (state, next) = match next_attempt_at {
            Some(at) => ("pending", at),
            None => ("failed", 0),
        };
        sqlx::query(
            "UPDATE stripe_reports SET state = $1, attempts = attempts + 1, \
             next_attempt_at = $2, last_error = $3 WHERE identifier = $4",
        )
        .bind(state)
        .bind(next)
        .bind(error)
        .bind(identifier)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// Puts a failed report back in the queue (after the cause was fixed at Stripe);
    /// `false` when the creator has no failed report by that identifier.
    pub async fn requeue_report(
        &self,
        creator_id: &str,
        identifier: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE stripe_reports SET state = 'pending', next_attempt_at = $1 \
             WHERE creator_id = $2 AND identifier = $3 AND state = 'failed'",
        )
        .bind(now)
        .bind(creator_id)
        .bind(identifier)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(result.rows_affected() == 1)
    }

    /// When the oldest report Stripe has not accepted yet was written.
    pub async fn oldest_pending_report(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MIN(created_at) FROM stripe_reports WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        row.try_get::<Option<i64>, _>(0).map_err(unavailable)
    }

    pub async fn list_reports(
        &self,
        creator_id: &str,
        limit: i64,
    ) -> Result<Vec<ReportRow>, StoreError> {
        sqlx::query_as::<_, ReportRow>(&format!(
            "SELECT {REPORT_COLUMNS} FROM stripe_reports WHERE creator_id = $1 \
             ORDER BY created_at DESC, identifier DESC LIMIT $2"
        ))
        .bind(creator_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    // --- webhook events ---------------------------------------------------------------------

    /// Records a webhook event; `false` when its id was recorded before (a redelivery).
    /// Records a billing event once (`false`: it was recorded before), with the outbox
    /// events it causes in the same transaction.
    pub async fn record_billing_event(
        &self,
        event: &BillingEventRow,
        announcements: &[super::outbox::Announcement],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let result = sqlx::query(
            "INSERT INTO billing_events (event_id, creator_id, type, customer_id, \
             stripe_customer_id, object_id, amount, currency, status, stripe_created, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&event.event_id)
        .bind(&event.creator_id)
        .bind(&event.r#type)
        .bind(&event.customer_id)
        .bind(&event.stripe_customer_id)
        .bind(&event.object_id)
        .bind(event.amount)
        .bind(&event.currency)
        .bind(&event.status)
        .bind(event.stripe_created)
        .bind(event.received_at)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        let recorded = result.rows_affected() == 1;
        if recorded {
            Self::insert_announcements(self.dialect, &mut tx, announcements)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(recorded)
    }

    pub async fn billing_event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM billing_events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(row.is_some())
    }

    /// The creator's newest billing events; with `customer_id`, that customer's only.
    pub async fn list_billing_events(
        &self,
        creator_id: &str,
        customer_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<BillingEventRow>, StoreError> {
        let (only, limit_at) = match customer_id {
            Some(_) => (" AND customer_id = $2", "$3"),
            None => ("", "$2"),
        };
        let sql = format!(
            "SELECT event_id, creator_id, type, customer_id, stripe_customer_id, object_id, \
             amount, currency, status, stripe_created, received_at FROM billing_events \
             WHERE creator_id = $1{only} ORDER BY received_at DESC, event_id DESC LIMIT {limit_at}"
        );
        let mut query = sqlx::query_as::<_, BillingEventRow>(&sql).bind(creator_id);
        if let Some(customer_id) = customer_id {
            query = query.bind(customer_id);
        }
        query
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    // --- reconciliation ---------------------------------------------------------------------

    /// For each Stripe customer and meter with reports Stripe accepted that are stamped in
    /// `[start, end)`: their units, and how many reports of the window are still pending.
    /// Ordered by Stripe customer, then meter.
    pub async fn reported_totals(
        &self,
        creator_id: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<ReportedTotalRow>, StoreError> {
        sqlx::query_as::<_, ReportedTotalRow>(
            "SELECT stripe_customer_id, meter_key, account_id, MAX(customer_id) AS customer_id, \
             CAST(SUM(CASE WHEN state = 'sent' THEN value ELSE 0 END) AS BIGINT) AS sent, \
             CAST(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS BIGINT) AS pending \
             FROM stripe_reports WHERE creator_id = $1 AND event_at >= $2 AND event_at < $3 \
             GROUP BY stripe_customer_id, meter_key, account_id \
             HAVING SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END) > 0 \
             ORDER BY stripe_customer_id, meter_key",
        )
        .bind(creator_id)
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    // --- tidy-ups ---------------------------------------------------------------------------

    /// Every creator with something to tidy (the reporter's pass).
    pub async fn creators_with_tidy_ups(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT DISTINCT creator_id FROM stripe_tidy_ups")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    pub async fn tidy_ups(&self, creator_id: &str) -> Result<Vec<TidyUpRow>, StoreError> {
        sqlx::query_as::<_, TidyUpRow>(
            "SELECT kind, object_id, account_id, attempts FROM stripe_tidy_ups \
             WHERE creator_id = $1 ORDER BY created_at, kind, object_id",
        )
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Stripe took it (or it has nothing left to put away).
    pub async fn tidy_up_done(
        &self,
        creator_id: &str,
        kind: &str,
        object_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM stripe_tidy_ups WHERE creator_id = $1 AND kind = $2 AND object_id = $3",
        )
        .bind(creator_id)
        .bind(kind)
        .bind(object_id)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    pub async fn tidy_up_failed(
        &self,
        creator_id: &str,
        kind: &str,
        object_id: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE stripe_tidy_ups SET attempts = attempts + 1, last_error = $1 \
             WHERE creator_id = $2 AND kind = $3 AND object_id = $4",
        )
        .bind(error)
        .bind(creator_id)
        .bind(kind)
        .bind(object_id)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }
}

/// Adds a tidy-up (in the transaction of a delete); one already there stays as it is.
async fn add_tidy_up(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    creator_id: &str,
    kind: &str,
    object_id: &str,
    account_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO stripe_tidy_ups (creator_id, kind, object_id, account_id, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (creator_id, kind, object_id) DO NOTHING",
    )
    .bind(creator_id)
    .bind(kind)
    .bind(object_id)
    .bind(account_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A deleted meter's Stripe meter: its row goes (a meter made again with the key starts
/// anew) and its deactivation becomes a tidy-up.
pub(super) async fn retire_stripe_meter(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    creator_id: &str,
    meter_key: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let row: Option<(String, String)> = sqlx::query_as(
        "DELETE FROM stripe_meters WHERE creator_id = $1 AND meter_key = $2 \
         RETURNING stripe_meter_id, account_id",
    )
    .bind(creator_id)
    .bind(meter_key)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some((meter_id, account_id)) = row {
        add_tidy_up(tx, creator_id, "meter", &meter_id, &account_id, now).await?;
    }
    Ok(())
}

/// A deleted tier's Stripe objects: its row goes, and archiving its Product and each of
/// its Prices become tidy-ups.
pub(super) async fn retire_stripe_tier(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    creator_id: &str,
    tier_key: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        "DELETE FROM stripe_tiers WHERE creator_id = $1 AND tier_key = $2 \
         RETURNING account_id, product_id, price_id, overage_prices",
    )
    .bind(creator_id)
    .bind(tier_key)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((account_id, product_id, price_id, overage)) = row else {
        return Ok(());
    };
    let overage: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&overage).unwrap_or_default();
    let prices = std::iter::once(price_id)
        .chain(overage.into_values())
        .filter(|id| !id.is_empty());
    for price in prices {
        add_tidy_up(tx, creator_id, "price", &price, &account_id, now).await?;
    }
    add_tidy_up(tx, creator_id, "product", &product_id, &account_id, now).await
}
