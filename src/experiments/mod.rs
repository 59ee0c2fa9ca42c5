//! Pricing experiments: A/B tests over versions of one embed. `model` holds the shapes and
//! rules, `assign` the sticky hash that picks a visitor's variant, `live` an experiment's
//! state in memory (who saw what, who converted), `stats` the results' figures, `service`
//! and `routes` the creator's API. Conversions also come from billing's webhooks.

pub mod assign;
pub mod live;
pub mod model;
pub mod routes;
pub mod service;
pub mod stats;
pub mod watch;
