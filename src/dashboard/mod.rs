//! `/dashboard`: the creator's dashboard, for its team (`users`). Pages are rendered on the
//! server (`views`) by thin handlers (`routes`) that call the same services as the JSON
//! API; `member` finds the signed-in user behind the cookie and holds the rules every
//! change passes (CSRF token, a role that may change); `overview` gathers the first
//! page's figures from the rollups, memory and the billing events; `forms` turns the
//! tier form into the API's own request, so a page and the API refuse alike.

pub mod forms;
pub mod member;
pub mod overview;
pub mod routes;
pub mod views;
