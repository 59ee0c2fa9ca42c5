//! Usage: events in, decisions out. `model` parses events at the edge, `decide` holds the
//! decision table and the atomic counter, `period` the reset periods, `quantity` exact
//! decimals, `service` the decide-count-commit flow, `series` usage over time from the stored hours, `routes` the HTTP handlers.

pub mod decide;
pub mod model;
pub mod period;
pub mod quantity;
pub mod routes;
pub mod series;
pub mod service;
