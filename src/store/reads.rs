//! What the dashboards read, in pages and aggregates, never whole tables: customers newest
//! first by a keyset cursor, usage by hour for one customer (its buckets) or for every
//! customer (the rollups the fold keeps), the creator's figures, and the platform's.

use super::{unavailable, Store, StoreError};

/// One row of a customers page.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerListRow {
    pub id: String,
    pub tier_key: Option<String>,
    pub email: Option<String>,
    pub created_at: i64,
}

/// Where a customers page starts: after the row with this `(created_at, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerCursor {
    pub created_at: i64,
    pub id: String,
}

/// Which customers a page holds.
#[derive(Debug, Default)]
pub struct CustomerFilter<'a> {
    pub tier: Option<&'a str>,
    /// Text the customer's id or email contains, its ASCII letters lowercase.
    pub text: Option<&'a str>,
    pub after: Option<CustomerCursor>,
}

/// One hour of usage.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct HourValue {
    pub bucket_start: i64,
    /// Millionths.
    pub value: i64,
}

/// A creator's billing money by currency, from its billing events.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevenueRow {
    pub currency: String,
    pub amount: i64,
    pub payments: i64,
}

/// Per creator, for the platform owner's view.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CreatorFigures {
    pub creator_id: String,
    pub customers: i64,
    /// Customers with a Stripe customer.
    pub paid: i64,
    pub failed_reports: i64,
    /// Outbox messages given up on.
    pub parked_messages: i64,
}

impl Store {
    /// Up to `limit` customers newest first, from `filter.after` on.
    pub async fn customers_page(
        &self,
        creator_id: &str,
        filter: &CustomerFilter<'_>,
        limit: usize,
    ) -> Result<Vec<CustomerListRow>, StoreError> {
        let mut sql = String::from(
            "SELECT id, tier_key, email, created_at FROM customers WHERE creator_id = $1",
        );
        let mut next = 2;
        let mut arg = |sql: &mut String, clause: &str| {
            // Each clause names its placeholders `$?`, numbered here in order.
            let mut text = clause.to_string();
            while let Some(at) = text.find("$?") {
                text.replace_range(at..at + 2, &format!("${next}"));
                next += 1;
            }
            sql.push_str(&text);
        };
        if filter.tier.is_some() {
            arg(&mut sql, " AND tier_key = $?");
        }
        if filter.text.is_some() {
            // ASCII letters in any case, on both databases: SQLite's LIKE already ignores
            // their case (and no other's); PostgreSQL's LOWER folds ASCII only under the
            // "C" collation.
            let clause = match self.dialect {
                super::Dialect::Sqlite => {
                    " AND (id LIKE $? ESCAPE '\\' OR COALESCE(email, '') LIKE $? ESCAPE '\\')"
                }
                super::Dialect::Postgres => {
                    " AND (LOWER(id COLLATE \"C\") LIKE $? ESCAPE '\\' \
                     OR LOWER(COALESCE(email, '') COLLATE \"C\") LIKE $? ESCAPE '\\')"
                }
            };
            arg(&mut sql, clause);
        }
        if filter.after.is_some() {
            arg(
                &mut sql,
                " AND (created_at < $? OR (created_at = $? AND id < $?))",
            );
        }
        arg(&mut sql, " ORDER BY created_at DESC, id DESC LIMIT $?");
        let mut query = sqlx::query_as::<_, CustomerListRow>(&sql).bind(creator_id);
        if let Some(tier) = filter.tier {
            query = query.bind(tier);
        }
        if let Some(text) = filter.text {
            let pattern = format!("%{}%", escape_like(text));
            query = query.bind(pattern.clone()).bind(pattern);
        }
        if let Some(after) = &filter.after {
            query = query
                .bind(after.created_at)
                .bind(after.created_at)
                .bind(after.id.clone());
        }
        query
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    /// One customer's usage of a meter by hour in `[from, to)`, its periods merged (`max`:
    /// the larger, else the sum).
    pub async fn customer_hours(
        &self,
        creator_id: &str,
        customer_id: &str,
        meter_key: &str,
        is_max: bool,
        (from, to): (i64, i64),
    ) -> Result<Vec<HourValue>, StoreError> {
        let merge = if is_max { "MAX" } else { "SUM" };
        sqlx::query_as::<_, HourValue>(&format!(
            "SELECT bucket_start, CAST({merge}(value) AS BIGINT) AS value FROM usage_buckets \
             WHERE creator_id = $1 AND customer_id = $2 AND meter_key = $3 \
             AND bucket_start >= $4 AND bucket_start < $5 \
             GROUP BY bucket_start ORDER BY bucket_start"
        ))
        .bind(creator_id)
        .bind(customer_id)
        .bind(meter_key)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// A meter's usage over every customer by hour in `[from, to)` (`usage_rollups`).
    pub async fn meter_hours(
        &self,
        creator_id: &str,
        meter_key: &str,
        (from, to): (i64, i64),
    ) -> Result<Vec<HourValue>, StoreError> {
        sqlx::query_as::<_, HourValue>(
            "SELECT bucket_start, value FROM usage_rollups \
             WHERE creator_id = $1 AND meter_key = $2 AND bucket_start >= $3 AND bucket_start < $4 \
             ORDER BY bucket_start",
        )
        .bind(creator_id)
        .bind(meter_key)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Money paid to the creator since `since`, by currency: the paid invoices among its
    /// billing events.
    pub async fn revenue(
        &self,
        creator_id: &str,
        since: i64,
    ) -> Result<Vec<RevenueRow>, StoreError> {
        sqlx::query_as::<_, RevenueRow>(
            "SELECT currency, CAST(SUM(amount) AS BIGINT) AS amount, COUNT(*) AS payments \
             FROM billing_events WHERE creator_id = $1 AND received_at >= $2 \
             AND type = 'invoice.paid' AND amount IS NOT NULL AND currency IS NOT NULL \
             GROUP BY currency ORDER BY currency",
        )
        .bind(creator_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Outbox messages of the creator since `since`, by channel and state.
    pub async fn message_counts(
        &self,
        creator_id: &str,
        since: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        sqlx::query_as(
            "SELECT integration, status, COUNT(*) FROM outbox_messages \
             WHERE creator_id = $1 AND created_at >= $2 GROUP BY integration, status \
             ORDER BY integration, status",
        )
        .bind(creator_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Every creator's customers, customers with a Stripe customer, failed reports and
    /// parked messages: counts by index, one row per creator.
    pub async fn creator_figures(&self) -> Result<Vec<CreatorFigures>, StoreError> {
        sqlx::query_as::<_, CreatorFigures>(
            "SELECT c.id AS creator_id, \
             (SELECT COUNT(*) FROM customers u WHERE u.creator_id = c.id) AS customers, \
             (SELECT COUNT(*) FROM customers u WHERE u.creator_id = c.id \
                AND u.stripe_customer_id IS NOT NULL) AS paid, \
             (SELECT COUNT(*) FROM stripe_reports r WHERE r.creator_id = c.id \
                AND r.state = 'failed') AS failed_reports, \
             (SELECT COUNT(*) FROM outbox_messages m WHERE m.creator_id = c.id \
                AND m.status = 'parked') AS parked_messages \
             FROM creators c",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }
}

impl Store {
    /// Paid invoices since `since`, by creator and currency.
    pub async fn revenue_by_creator(
        &self,
        since: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        sqlx::query_as(
            "SELECT creator_id, currency, CAST(SUM(amount) AS BIGINT) FROM billing_events \
             WHERE received_at >= $1 AND type = 'invoice.paid' AND creator_id IS NOT NULL \
             AND amount IS NOT NULL AND currency IS NOT NULL \
             GROUP BY creator_id, currency ORDER BY creator_id, currency",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Messages waiting to be delivered, by integration (the outboxes' backlogs).
    pub async fn outbox_backlog(&self) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as(
            "SELECT integration, COUNT(*) FROM outbox_messages WHERE status = 'pending' \
             GROUP BY integration ORDER BY integration",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }
}

/// `text` with LIKE's wildcards taken literally (escaped with `\`).
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_are_taken_literally() {
        assert_eq!(escape_like(r"a%b_c\d"), r"a\%b\_c\\d");
    }
}
