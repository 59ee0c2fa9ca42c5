//! A dashboard user's shapes: its role, its email, its password's rules.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// What a user may do. Checked on the server for every change, whatever a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Changes the creator's configuration, customers and billing.
    Admin,
    /// An admin who also manages the team and the API keys.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    pub fn can_change(self) -> bool {
        self >= Role::Admin
    }

    pub fn manages_team(self) -> bool {
        self == Role::Owner
    }
}

/// Shortest and longest password, in characters (NIST SP 800-63B: at least 8; we ask 10).
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 256;

pub fn check_password(password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "weak_password",
            format!("a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"),
        ))
    }
}

/// An email as users are found by: checked, trimmed and lowercased.
pub fn parse_email(text: &str) -> Result<String, ApiError> {
    let email = text.trim().to_lowercase();
    crate::customers::model::parse_email(&email)?;
    Ok(email)
}

/// `POST /v1/admin/creators/{slug}/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(schema_with = crate::customers::model::email_schema)]
    pub email: String,
    pub role: Role,
    /// Set it now; without one the answer carries an invite link to set it.
    #[schema(min_length = 10, max_length = 256)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// `du_…`.
    pub id: String,
    pub email: String,
    pub role: Role,
    /// Whether the user has set a password (an invite not yet accepted: no).
    pub active: bool,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    pub user: UserView,
    /// Where the user sets its password (good once, for 7 days); only without a password.
    pub invite_url: Option<String>,
}
