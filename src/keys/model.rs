//! The keys API's shapes. A key's secret is in `CreatedKey` only, the one time it is made.

use serde::{Deserialize, Serialize};

use crate::meters::model::{name_schema, slug_schema};
use crate::schema::{integer, or_null};
use crate::store::KeyRow;
use crate::usage::period::rfc3339;

/// Live secret keys a creator may hold at once.
pub const MAX_SECRET_KEYS: usize = 20;
/// The longest overlap of a rolled publishable key: 30 days.
pub const MAX_OVERLAP_SECS: i64 = 30 * 24 * 3600;
/// The overlap of a roll that names none: a day.
pub const DEFAULT_OVERLAP_SECS: i64 = 24 * 3600;

/// A key as listed (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// `key_…`: names the key in `DELETE /v1/keys/{id}` and in the audit log.
    pub id: String,
    pub name: String,
    /// `secret` or `publishable`.
    pub kind: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub created_at: String,
    /// To the minute or so; none if never used.
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// A rolled publishable key answers until then.
    pub expires_at: Option<String>,
}

impl KeyView {
    pub fn of(row: &KeyRow) -> KeyView {
        KeyView {
            id: row.id.clone(),
            name: row.name.clone(),
            kind: row.kind.clone(),
            prefix: row.prefix.clone(),
            created_at: rfc3339(row.created_at),
            last_used_at: row.last_used_at.map(rfc3339),
            revoked_at: row.revoked_at.map(rfc3339),
            expires_at: row.expires_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

/// A key just made, with its secret: shown this once, stored hashed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub view: KeyView,
    pub key: String,
}

/// `POST /v1/keys`, `POST /v1/admin/creators/{slug}/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// What the key is for ("production", "CI"); up to 200 characters.
    #[schema(schema_with = name_schema)]
    pub name: String,
}

/// `POST /v1/keys/publishable/roll`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollRequest {
    /// Seconds the current publishable key keeps answering, so pages that embed it can
    /// be updated: 0 to 2,592,000 (30 days); default 86,400.
    #[serde(default, deserialize_with = "crate::schema::optional_whole_number")]
    #[schema(schema_with = overlap_schema)]
    pub overlap_seconds: Option<u32>,
}

fn overlap_schema() -> utoipa::openapi::schema::Schema {
    or_null(integer(
        0,
        MAX_OVERLAP_SECS,
        "Seconds the current publishable key keeps answering (default 86,400)",
    ))
}

/// `/v1/keys/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// The key's id (`key_…`).
    #[param(schema_with = key_id_schema)]
    pub id: String,
}

fn key_id_schema() -> utoipa::openapi::schema::Object {
    crate::schema::text(5, 64, "^key_[A-Za-z0-9]+$", "A key's id")
}

/// `/v1/admin/creators/{slug}/keys`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CreatorPath {
    /// The creator's slug.
    #[param(schema_with = slug_schema)]
    pub slug: String,
}
