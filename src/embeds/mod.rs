//! Embeds: the widgets a creator puts on its own site with two tags. `model` holds the
//! three kinds and their strictly checked configs; `catalog` every creator's embeds and
//! experiments in memory; `service` and `routes` the creator's API; `widget` and `public`
//! what browsers call (with `cors` and the allowed `origins`); `script` serves
//! `/embed.js` (hand-written in `assets/embed/`, built into the binary).

pub mod catalog;
pub mod cors;
pub mod model;
pub mod origins;
pub mod public;
pub mod routes;
pub mod script;
pub mod service;
pub mod widget;
