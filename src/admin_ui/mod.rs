//! `/admin`: the platform owner's view. Signed in with the admin token (checked like the
//! API checks it, rate limited like a dashboard sign-in), it shows every creator with its
//! volume, customers, revenue, Stripe standing and errors, the platform's figures, and
//! makes a creator with its first owner.

pub mod routes;
pub mod views;
