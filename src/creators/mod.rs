//! Creators (tenants) as the platform owner sees them: creation with keys shown once,
//! listing, per-key rate limits and platform figures.
pub mod model;
pub mod routes;
pub mod service;
