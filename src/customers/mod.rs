//! Customers: a creator's end users, their tier, usage and entitlements.
pub mod listing;
pub mod model;
pub mod routes;
pub mod service;
