//! Tiers: plans with caps and entitlements.
pub mod model;
pub mod routes;
pub mod service;
