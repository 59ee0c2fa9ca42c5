//! A customer's rows, to hand over (`export`) and to erase. Every table that names a
//! customer is here, so that the export and the erase cannot drift apart: a table added
//! with a customer's id belongs in both.
//!
//! The erase removes what is the person's (the customer row with its email, usage and
//! what retention kept of it, cursors, idempotency answers, outbox events about it) and
//! keeps what billing and the experiments' counts still need under the customer's
//! reference (`customer_ref`): usage reported to Stripe, Stripe's billing events, exposures
//! and conversions, and the customer's sessions, kept revoked so that no token of the
//! person works after a restart. Its Stripe customer id is remembered
//! (`erased_stripe_customers`), so Stripe's later events about it make nobody again.

use serde::Serialize;
use utoipa::ToSchema;

use super::audit::AuditEntry;
use super::{unavailable, Dialect, Store, StoreError, Tx};
use crate::usage::period::rfc3339;

fn time<S: serde::Serializer>(at: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(*at))
}

fn maybe_time<S: serde::Serializer>(at: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serializer.serialize_str(&rfc3339(*at)),
        None => serializer.serialize_none(),
    }
}

/// JSON kept as text, written as the JSON it is.
fn json_text<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    value.serialize(serializer)
}

/// The customer's row: its assignment, contact and billing state.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct CustomerRecord {
    pub tier_key: Option<String>,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub assigned_at: i64,
    pub email: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub billing_status: Option<String>,
    pub subscribed_tier: Option<String>,
    pub pending_tier: Option<String>,
    #[serde(serialize_with = "maybe_time")]
    #[schema(value_type = Option<String>)]
    pub grace_ends_at: Option<i64>,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub created_at: i64,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub updated_at: i64,
}

/// Usage of one meter in one hour, as stored.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct BucketRecord {
    pub meter_key: String,
    /// Start of the period the hour counts toward.
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub period_start: i64,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub bucket_start: i64,
    /// In millionths of the meter's unit (the stored fixed point).
    pub value: i64,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct SessionRecord {
    pub id: String,
    pub scope: String,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub created_at: i64,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub expires_at: i64,
    #[serde(serialize_with = "maybe_time")]
    #[schema(value_type = Option<String>)]
    pub revoked_at: Option<i64>,
}

/// A variant the customer was shown.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct ExposureRecord {
    pub experiment_key: String,
    pub variant: String,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub exposed_at: i64,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct ConversionRecord {
    pub experiment_key: String,
    pub variant: String,
    /// What converted: a Checkout Session id or the creator's conversion id.
    pub source: String,
    /// In the smallest unit of the currency.
    pub revenue: i64,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub converted_at: i64,
}

/// A Stripe event about the customer, as received.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct BillingEventRecord {
    pub event_id: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub object_id: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub status: Option<String>,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub received_at: i64,
}

/// Usage reported to Stripe as one meter event.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct ReportRecord {
    pub identifier: String,
    pub meter_key: String,
    /// Whole units, as Stripe counts them.
    pub value: i64,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub event_at: i64,
    /// `pending`, `sent` or `failed`.
    pub state: String,
}

/// An event about the customer told to the creator's world (webhooks, email, analytics).
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct NoticeRecord {
    pub id: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub event_type: String,
    /// The event's data.
    #[serde(serialize_with = "json_text")]
    #[schema(value_type = Object)]
    pub data: String,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub occurred_at: i64,
}

/// An event's answer kept under its idempotency key (repeated to a retry).
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct AnswerRecord {
    pub key: String,
    /// The answer as it was given.
    #[serde(serialize_with = "json_text")]
    #[schema(value_type = Object)]
    pub result: String,
    #[serde(serialize_with = "time")]
    #[schema(value_type = String)]
    pub created_at: i64,
}

/// Usage removed by retention, kept as one sum per meter.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct PrunedRecord {
    pub meter_key: String,
    /// In millionths of the meter's unit.
    pub value: i64,
}

/// Every row that names the customer.
#[derive(Debug, Default)]
pub struct CustomerRows {
    pub customer: Option<CustomerRecord>,
    pub usage: Vec<BucketRecord>,
    pub sessions: Vec<SessionRecord>,
    pub exposures: Vec<ExposureRecord>,
    pub conversions: Vec<ConversionRecord>,
    pub billing_events: Vec<BillingEventRecord>,
    pub reports: Vec<ReportRecord>,
    pub notices: Vec<NoticeRecord>,
    pub answers: Vec<AnswerRecord>,
    pub pruned: Vec<PrunedRecord>,
}

impl CustomerRows {
    pub fn is_empty(&self) -> bool {
        self.customer.is_none()
            && self.usage.is_empty()
            && self.sessions.is_empty()
            && self.exposures.is_empty()
            && self.conversions.is_empty()
            && self.billing_events.is_empty()
            && self.reports.is_empty()
            && self.notices.is_empty()
            && self.answers.is_empty()
            && self.pruned.is_empty()
    }
}

/// Who is erased, and how the rows that stay name it.
pub struct Erasure {
    pub creator_id: String,
    pub customer_id: String,
    /// `customer_ref`: what the rows that stay hold instead of the id.
    pub reference: String,
    /// How the customer's idempotency answers start (`{"customer_id":<id>,`).
    pub answer_prefix: String,
    /// The experiments' identity of the customer (`c:<id>`) and of its reference.
    pub identity: String,
    pub reference_identity: String,
    /// The customer's Stripe Customer, remembered so that Stripe's later events about it
    /// do not make the customer again (`is_erased_stripe_customer`).
    pub stripe_customer_id: Option<String>,
    /// The Stripe Customer was deleted: usage not yet reported to it is dropped.
    pub stripe_customer_deleted: bool,
    pub now: i64,
}

/// What an erase did, by table, and the sessions it revoked.
#[derive(Debug, Default)]
pub struct Erased {
    /// Rows removed.
    pub removed: Vec<(&'static str, u64)>,
    /// Rows kept, the customer's id replaced by its reference.
    pub kept: Vec<(&'static str, u64)>,
    /// (session id, expiry) of sessions revoked by the erase.
    pub revoked_sessions: Vec<(String, i64)>,
}

impl Store {
    /// The SQL that reads an outbox event's `customer_id`.
    fn data_customer(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "json_extract(data, '$.customer_id')",
            Dialect::Postgres => "(data::jsonb ->> 'customer_id')",
        }
    }

    /// Whether this Stripe Customer was an erased customer's.
    pub async fn is_erased_stripe_customer(
        &self,
        creator_id: &str,
        stripe_customer_id: &str,
    ) -> Result<bool, StoreError> {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT erased_at FROM erased_stripe_customers \
             WHERE creator_id = $1 AND stripe_customer_id = $2",
        )
        .bind(creator_id)
        .bind(stripe_customer_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(found.is_some())
    }

    /// Every row that names the customer (`identity`: its experiments' identity).
    pub async fn customer_rows(
        &self,
        creator_id: &str,
        customer_id: &str,
        identity: &str,
        answer_prefix: &str,
    ) -> Result<CustomerRows, StoreError> {
        // Read as the creator (row-level security on PostgreSQL), in one snapshot.
        let mut tx = self.begin_tenant(creator_id).await?;
        let customer = sqlx::query_as::<_, CustomerRecord>(
            "SELECT tier_key, assigned_at, email, stripe_customer_id, stripe_subscription_id, \
             billing_status, subscribed_tier, pending_tier, grace_ends_at, created_at, \
             updated_at FROM customers WHERE creator_id = $1 AND id = $2",
        )
        .bind(creator_id)
        .bind(customer_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let usage = sqlx::query_as::<_, BucketRecord>(
            "SELECT meter_key, period_start, bucket_start, value FROM usage_buckets \
             WHERE creator_id = $1 AND customer_id = $2 ORDER BY meter_key, bucket_start",
        )
        .bind(creator_id)
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let sessions = sqlx::query_as::<_, SessionRecord>(
            "SELECT id, scope, created_at, expires_at, revoked_at FROM customer_sessions \
             WHERE creator_id = $1 AND customer_id = $2 ORDER BY created_at, id",
        )
        .bind(creator_id)
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let exposures = sqlx::query_as::<_, ExposureRecord>(
            "SELECT experiment_key, variant, exposed_at FROM experiment_exposures \
             WHERE creator_id = $1 AND visitor = $2 ORDER BY exposed_at, experiment_key",
        )
        .bind(creator_id)
        .bind(identity)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let conversions = sqlx::query_as::<_, ConversionRecord>(
            "SELECT experiment_key, variant, source, revenue, converted_at \
             FROM experiment_conversions WHERE creator_id = $1 AND visitor = $2 \
             ORDER BY converted_at, source",
        )
        .bind(creator_id)
        .bind(identity)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let billing_events = sqlx::query_as::<_, BillingEventRecord>(
            "SELECT event_id, type, object_id, amount, currency, status, received_at \
             FROM billing_events WHERE creator_id = $1 AND customer_id = $2 \
             ORDER BY received_at, event_id",
        )
        .bind(creator_id)
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let reports = sqlx::query_as::<_, ReportRecord>(
            "SELECT identifier, meter_key, value, event_at, state FROM stripe_reports \
             WHERE creator_id = $1 AND customer_id = $2 ORDER BY event_at, identifier",
        )
        .bind(creator_id)
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let notices_sql = format!(
            "SELECT id, type, data, occurred_at FROM outbox_events \
             WHERE creator_id = $1 AND {} = $2 ORDER BY occurred_at, id",
            self.data_customer()
        );
        let notices = sqlx::query_as::<_, NoticeRecord>(&notices_sql)
            .bind(creator_id)
            .bind(customer_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
        let answers = sqlx::query_as::<_, AnswerRecord>(
            "SELECT key, result, created_at FROM idempotency_keys WHERE creator_id = $1 \
             AND substr(result, 1, length($2)) = $2 ORDER BY created_at, key",
        )
        .bind(creator_id)
        .bind(answer_prefix)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let pruned = sqlx::query_as::<_, PrunedRecord>(
            "SELECT meter_key, value FROM usage_pruned WHERE creator_id = $1 \
             AND customer_id = $2 ORDER BY meter_key",
        )
        .bind(creator_id)
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        Ok(CustomerRows {
            customer,
            usage,
            sessions,
            exposures,
            conversions,
            billing_events,
            reports,
            notices,
            answers,
            pruned,
        })
    }

    /// Erases the customer in one transaction with its audit record: see the module note
    /// for what goes and what stays under the reference. The commit log must be folded
    /// first (the caller's turn), so no acknowledged event of the customer waits there.
    pub async fn erase_customer(
        &self,
        erasure: &Erasure,
        audit: &AuditEntry,
    ) -> Result<Erased, StoreError> {
        let mut tx = self.begin_tenant(&erasure.creator_id).await?;
        let erased = self
            .erase_rows(&mut tx, erasure)
            .await
            .map_err(unavailable)?;
        let record = audit.clone().after(&serde_json::json!({
            "removed": by_table(&erased.removed),
            "kept": by_table(&erased.kept),
            "stripe_customer_deleted": erasure.stripe_customer_deleted,
        }));
        Self::append_audit(&mut tx, std::slice::from_ref(&record)).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(erased)
    }

    async fn erase_rows(&self, tx: &mut Tx, e: &Erasure) -> Result<Erased, sqlx::Error> {
        let mut erased = Erased::default();
        let removals: [(&'static str, String); 6] = [
            (
                "customers",
                "DELETE FROM customers WHERE creator_id = $1 AND id = $2".into(),
            ),
            (
                "usage_buckets",
                "DELETE FROM usage_buckets WHERE creator_id = $1 AND customer_id = $2".into(),
            ),
            (
                "usage_pruned",
                "DELETE FROM usage_pruned WHERE creator_id = $1 AND customer_id = $2".into(),
            ),
            (
                "stripe_report_cursors",
                "DELETE FROM stripe_report_cursors WHERE creator_id = $1 AND customer_id = $2"
                    .into(),
            ),
            (
                "outbox_messages",
                format!(
                    "DELETE FROM outbox_messages WHERE event_id IN (SELECT id FROM outbox_events \
                     WHERE creator_id = $1 AND {} = $2)",
                    self.data_customer()
                ),
            ),
            (
                "outbox_events",
                format!(
                    "DELETE FROM outbox_events WHERE creator_id = $1 AND {} = $2",
                    self.data_customer()
                ),
            ),
        ];
        for (table, sql) in &removals {
            let done = sqlx::query(sql)
                .bind(&e.creator_id)
                .bind(&e.customer_id)
                .execute(&mut **tx)
                .await?;
            erased.removed.push((table, done.rows_affected()));
        }
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE creator_id = $1 \
             AND substr(result, 1, length($2)) = $2",
        )
        .bind(&e.creator_id)
        .bind(&e.answer_prefix)
        .execute(&mut **tx)
        .await?;
        erased
            .removed
            .push(("idempotency_keys", done.rows_affected()));
        if e.stripe_customer_deleted {
            let done = sqlx::query(
                "DELETE FROM stripe_reports WHERE creator_id = $1 AND customer_id = $2 \
                 AND state = 'pending'",
            )
            .bind(&e.creator_id)
            .bind(&e.customer_id)
            .execute(&mut **tx)
            .await?;
            erased
                .removed
                .push(("stripe_reports", done.rows_affected()));
        }
        // An identity erased before (the same id, erased and made again) already has rows
        // under the reference: per experiment, the earlier exposure stands.
        let done = sqlx::query(
            "DELETE FROM experiment_exposures WHERE creator_id = $1 AND visitor = $2 \
             AND experiment_key IN (SELECT experiment_key FROM experiment_exposures \
             WHERE creator_id = $1 AND visitor = $3)",
        )
        .bind(&e.creator_id)
        .bind(&e.identity)
        .bind(&e.reference_identity)
        .execute(&mut **tx)
        .await?;
        erased
            .removed
            .push(("experiment_exposures", done.rows_affected()));
        if let Some(stripe_id) = &e.stripe_customer_id {
            sqlx::query(
                "INSERT INTO erased_stripe_customers (creator_id, stripe_customer_id, erased_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (creator_id, stripe_customer_id) DO NOTHING",
            )
            .bind(&e.creator_id)
            .bind(stripe_id)
            .bind(e.now)
            .execute(&mut **tx)
            .await?;
        }
        // What stays, under the reference.
        let rewrites: [(&'static str, &str, &String, &String); 5] = [
            (
                "stripe_reports",
                "UPDATE stripe_reports SET customer_id = $3 WHERE creator_id = $1 \
                 AND customer_id = $2",
                &e.customer_id,
                &e.reference,
            ),
            (
                "billing_events",
                "UPDATE billing_events SET customer_id = $3 WHERE creator_id = $1 \
                 AND customer_id = $2",
                &e.customer_id,
                &e.reference,
            ),
            (
                "experiment_exposures",
                "UPDATE experiment_exposures SET visitor = $3 WHERE creator_id = $1 \
                 AND visitor = $2",
                &e.identity,
                &e.reference_identity,
            ),
            (
                "experiment_exposure_aliases",
                "UPDATE experiment_exposures SET counted_as = $3 WHERE creator_id = $1 \
                 AND counted_as = $2",
                &e.identity,
                &e.reference_identity,
            ),
            (
                "experiment_conversions",
                "UPDATE experiment_conversions SET visitor = $3 WHERE creator_id = $1 \
                 AND visitor = $2",
                &e.identity,
                &e.reference_identity,
            ),
        ];
        for (table, sql, from, to) in rewrites {
            let done = sqlx::query(sql)
                .bind(&e.creator_id)
                .bind(from)
                .bind(to)
                .execute(&mut **tx)
                .await?;
            erased.kept.push((table, done.rows_affected()));
        }
        erased.revoked_sessions = sqlx::query_as(
            "UPDATE customer_sessions SET customer_id = $3, revoked_at = COALESCE(revoked_at, $4) \
             WHERE creator_id = $1 AND customer_id = $2 RETURNING id, expires_at",
        )
        .bind(&e.creator_id)
        .bind(&e.customer_id)
        .bind(&e.reference)
        .bind(e.now)
        .fetch_all(&mut **tx)
        .await?;
        erased
            .kept
            .push(("customer_sessions", erased.revoked_sessions.len() as u64));
        // Portal browsers of the customer: ended, and named by the reference.
        let portals = sqlx::query(
            "UPDATE browser_sessions SET subject = $3, revoked_at = COALESCE(revoked_at, $4) \
             WHERE creator_id = $1 AND surface = 'portal' AND subject = $2",
        )
        .bind(&e.creator_id)
        .bind(&e.customer_id)
        .bind(&e.reference)
        .bind(e.now)
        .execute(&mut **tx)
        .await?;
        erased
            .kept
            .push(("browser_sessions", portals.rows_affected()));
        Ok(erased)
    }
}

fn by_table(rows: &[(&'static str, u64)]) -> std::collections::BTreeMap<&'static str, u64> {
    rows.iter().copied().collect()
}
