//! Notices by email: when a customer's usage passes a threshold, or its payment fails, an
//! email goes to the customer and to the creator's notice address, in the creator's words
//! (`PUT /v1/notices`), through Resend, by way of the outbox.

pub mod email;
pub mod model;
pub mod routes;
pub mod service;
