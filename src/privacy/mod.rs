//! A customer's data on request (GDPR): everything Staryer holds about it in one document
//! (`export`), and its erasure from every table, from memory and from what a start
//! replays (`erase`). `retention`: the background job that removes rows older than their
//! settings.

pub mod model;
pub mod retention;
pub mod routes;
pub mod service;
