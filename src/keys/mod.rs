//! A creator's API keys: several named secret keys with when each was last used, made,
//! listed and revoked by the creator (`/v1/keys`); the publishable key rolled with an
//! overlap; a secret key minted by the platform owner for a creator that lost its own.
//! `material` makes, hashes and compares keys; the registry (`tenants::registry`) holds
//! the live ones, so a revoked key is refused from the next request on.

pub mod material;
pub mod model;
pub mod routes;
pub mod service;
