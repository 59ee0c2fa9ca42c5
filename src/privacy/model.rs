//! The export document and the erasure receipt.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::model::AuditRecord;
use crate::customers::model::Usage;
use crate::store::privacy::{
    AnswerRecord, BillingEventRecord, BucketRecord, ConversionRecord, CustomerRecord,
    ExposureRecord, NoticeRecord, PrunedRecord, ReportRecord, SessionRecord,
};

/// Everything Staryer holds about one customer. Times are RFC 3339, UTC.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerExport {
    pub customer_id: String,
    pub exported_at: String,
    /// The customer's record (tier, email, Stripe ids, billing state); none for a customer
    /// known only from its events.
    pub customer: Option<CustomerRecord>,
    /// Usage in the current periods, as `GET /v1/customers/{id}/usage` answers it.
    pub usage: Option<Usage>,
    /// Every stored hour of usage, by meter.
    pub usage_hours: Vec<BucketRecord>,
    /// Sessions made for the customer's browser (their tokens are never stored).
    pub sessions: Vec<SessionRecord>,
    pub experiment_exposures: Vec<ExposureRecord>,
    pub experiment_conversions: Vec<ConversionRecord>,
    /// Stripe's events about the customer.
    pub billing_events: Vec<BillingEventRecord>,
    /// Usage reported to Stripe as meter events.
    pub usage_reported_to_stripe: Vec<ReportRecord>,
    /// Events about the customer told to the creator's webhooks, email and analytics.
    pub notices: Vec<NoticeRecord>,
    /// Answers kept under their idempotency keys, repeated to retries.
    pub idempotency_answers: Vec<AnswerRecord>,
    /// Usage removed from the hours by retention, one sum per meter.
    pub usage_removed_by_retention: Vec<PrunedRecord>,
    /// The audit log's records about the customer (named there by its reference).
    pub audit_log: Vec<AuditRecord>,
}

/// `?keep_stripe_customer=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EraseQuery {
    /// Keep the customer's Stripe Customer (with its invoices) at Stripe. By default, with
    /// billing on, it is deleted with the customer, which also cancels its subscriptions.
    #[serde(default)]
    pub keep_stripe_customer: bool,
}

/// What an erase did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureReceipt {
    /// The customer's reference (`cus_` and 24 hex digits): what the rows kept hold
    /// instead of its id, and how the audit log names it.
    pub reference: String,
    pub erased_at: String,
    /// Rows removed, by table.
    pub removed: BTreeMap<String, u64>,
    /// Rows kept for billing and the experiments' counts, the id replaced by the
    /// reference, by table.
    pub kept: BTreeMap<String, u64>,
    /// Whether the customer's Stripe Customer was deleted.
    pub stripe_customer_deleted: bool,
}
