//! Customer sessions: signed, expiring tokens that let a browser act as one customer of
//! one creator (see its usage in a widget, buy for it, open its portal) without the
//! creator's secret key. `tokens` signs and verifies them; `service` makes, revokes and
//! checks sessions; `routes` are the creator's and the platform owner's endpoints.

pub mod model;
pub mod routes;
pub mod service;
pub mod tokens;
