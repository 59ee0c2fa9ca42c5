//! The session API's shapes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Shortest and longest session, in seconds (the longest bounds how long a rotated-out
/// signing key must still verify).
pub const MIN_TTL_SECS: i64 = 60;
pub const MAX_TTL_SECS: i64 = 86_400;
pub const DEFAULT_TTL_SECS: i64 = 3_600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Widgets on the creator's site: the customer's usage, buying for it.
    Embed,
    /// The customer portal.
    Portal,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Embed => "embed",
            Scope::Portal => "portal",
        }
    }
}

/// `POST /v1/customers/{customer_id}/sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    pub scope: Scope,
    /// Lifetime in seconds, 60 to 86,400; default 3,600.
    #[serde(default, deserialize_with = "crate::schema::optional_whole_number")]
    #[schema(minimum = 60, maximum = 86_400)]
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSession {
    /// The session's id (`cs_…`): `DELETE /v1/sessions/{id}` revokes it.
    pub id: String,
    /// The signed token (a JWT). Hand it to the browser: widgets take it as
    /// `data-staryer-customer-token`.
    pub token: String,
    pub customer_id: String,
    pub scope: Scope,
    /// RFC 3339.
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub customer_id: String,
    pub scope: String,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    /// The id (`kid`) of the key that signs new sessions from now on.
    pub kid: String,
}
