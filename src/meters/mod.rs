//! Meters: what a creator counts.
pub mod model;
pub mod routes;
pub mod service;
