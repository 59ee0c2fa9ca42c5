//! AI customization: a creator describes what it wants of a widget, and a model answers
//! with a config for the embed's kind (structured output against the kind's JSON Schema),
//! fitted to the creator's branding and tiers. The answer is checked like any config and
//! saved as a new version, unpublished: nothing goes live without a publish.

pub mod model;
pub mod openai;
pub mod routes;
pub mod suggestions;
