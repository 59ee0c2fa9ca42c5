//! The audit log: who changed what, when, from where. Every change through any surface
//! writes its record in the change's own transaction (the store's methods take the
//! records beside the rows), chained by hash so that `staryer audit verify` finds the
//! first record altered, removed or slipped in. `model` says who acts (`Who`, taken from
//! the request) and builds records; `service` lists and verifies; `routes` serves
//! `GET /v1/audit_logs` (the creator's) and `GET /v1/admin/audit_logs` (the platform's).

pub mod model;
pub mod routes;
pub mod service;
