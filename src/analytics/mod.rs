//! Analytics to PostHog: widget exposures (as `$feature_flag_called`), clicks, checkouts,
//! conversions, tier changes, notices, and usage as hourly summaries per customer and
//! meter (never one PostHog event per usage event), through the outbox and PostHog's
//! batch capture API. Each creator's events go to its own project when it set one
//! (`PUT /v1/integrations/posthog`, the key sealed at rest), else to the platform's
//! (`posthog.api_key`), else nowhere.

pub mod posthog;
pub mod projects;
pub mod routes;
pub mod service;
pub mod summaries;
