//! Dashboard users: the people of a creator's team who sign in to `/dashboard` with an
//! email and a password (`owner`, `admin`, `viewer`), their invites and password resets.
//! `passwords` hashes with argon2id off the HTTP workers; `service` holds sign-in (rate
//! limited per account and per address) and the team's changes; `routes` the platform
//! owner's JSON API that makes a creator's first owner.

pub mod model;
pub mod passwords;
pub mod routes;
pub mod service;
