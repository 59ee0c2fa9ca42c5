//! `/portal`: the customer portal, where a creator's customer sees its usage and plan,
//! changes plan, reads its invoices and cancels. A customer enters through the one-time
//! link of a `portal` session (`/portal/enter?token=…`), exchanged at once for a cookie
//! so the token does not stay in the URL or the history; the link is refused the second
//! time. Pages are branded with the creator's name and accent colour, and leave out the
//! meters the creator hides from customers. On a creator's custom domain the portal
//! serves that creator only.

pub mod customer;
pub mod routes;
pub mod views;
