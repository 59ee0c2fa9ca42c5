//! Outgoing webhooks (Standard Webhooks): a creator's endpoints, each told the event types
//! it subscribes to, signed with its own secret, through the outbox.

pub mod channel;
pub mod model;
pub mod routes;
pub mod service;
pub mod signing;
pub mod targets;
