//! Tenants: each creator's live state and the actors that own it. `state` is what the hot
//! path reads; `actor` holds the per-tenant and per-meter actors that change it;
//! `registry` finds a tenant by key; `loader` rebuilds everything from the store at start.

pub mod actor;
pub mod config;
pub mod loader;
pub mod registry;
pub mod state;
