//! The people who sign in through a browser: dashboard users with their invite and reset
//! links, and the browser sessions of the three faces (dashboard, portal, admin). Links
//! and sessions are stored by the SHA-256 of their secret, never the secret itself.

use super::audit::AuditEntry;
use super::outbox::Announcement;
use super::{unavailable, Store, StoreError};

/// The columns of `UserRow`.
const USER_COLUMNS: &str = "id, creator_id, email, role, password_hash, created_at";
/// The columns of `BrowserSessionRow`.
const SESSION_COLUMNS: &str = "id_hash, surface, creator_id, subject, parent, created_at, \
     last_seen_at, expires_at, revoked_at";

/// What a change to a team did.
#[derive(Debug)]
pub enum TeamChange {
    Done(UserRow),
    /// No such user in the creator's team.
    Missing,
    /// Refused: it would leave the team without an owner.
    LastOwner,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub creator_id: String,
    pub email: String,
    pub role: String,
    /// argon2id PHC string; none until an invite is accepted.
    pub password_hash: Option<String>,
    pub created_at: i64,
}

/// An invite or a password reset.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkRow {
    pub token_hash: String,
    pub creator_id: String,
    pub user_id: String,
    pub purpose: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BrowserSessionRow {
    pub id_hash: String,
    pub surface: String,
    pub creator_id: Option<String>,
    pub subject: String,
    /// A portal session's customer session (`cs_…`).
    pub parent: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl Store {
    /// Adds a user, with its first link when it has no password yet (and the link's
    /// email, when one goes out).
    pub async fn insert_user(
        &self,
        user: &UserRow,
        link: Option<&LinkRow>,
        email: Option<&Announcement>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(&user.creator_id).await?;
        sqlx::query(&format!(
            "INSERT INTO dashboard_users ({USER_COLUMNS}, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&user.id)
        .bind(&user.creator_id)
        .bind(&user.email)
        .bind(&user.role)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "a dashboard user with this email"))?;
        if let Some(link) = link {
            insert_link(&mut tx, link).await?;
        }
        Self::insert_announcements(
            self.dialect,
            &mut tx,
            email.map(std::slice::from_ref).unwrap_or(&[]),
        )
        .await
        .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    /// The user signing in with `email` (lowercase), whichever creator's it is.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM dashboard_users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn user(&self, creator_id: &str, id: &str) -> Result<Option<UserRow>, StoreError> {
        sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM dashboard_users WHERE creator_id = $1 AND id = $2"
        ))
        .bind(creator_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn users(&self, creator_id: &str) -> Result<Vec<UserRow>, StoreError> {
        sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM dashboard_users WHERE creator_id = $1 ORDER BY created_at, id"
        ))
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Adds a link for an existing user (a reset, or a new invite), with its email when
    /// one goes out.
    pub async fn insert_link(
        &self,
        link: &LinkRow,
        email: Option<&Announcement>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(&link.creator_id).await?;
        insert_link(&mut tx, link).await?;
        Self::insert_announcements(
            self.dialect,
            &mut tx,
            email.map(std::slice::from_ref).unwrap_or(&[]),
        )
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    /// Whether a link is known, unused and unexpired.
    pub async fn link_is_usable(&self, token_hash: &str, now: i64) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT expires_at FROM dashboard_tokens \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(found.is_some())
    }

    /// Uses a link once: sets its user's password, marks it and every other link of the
    /// user used, and ends the user's browser sessions, in one transaction. `None` when the
    /// link is unknown, used or expired.
    pub async fn use_link(
        &self,
        token_hash: &str,
        now: i64,
        password_hash: &str,
        audit: impl FnOnce(&LinkRow) -> AuditEntry,
    ) -> Result<Option<UserRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        let link: Option<LinkRow> = sqlx::query_as(
            "UPDATE dashboard_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $3 \
             RETURNING token_hash, creator_id, user_id, purpose, created_at, expires_at",
        )
        .bind(now)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some(link) = link else {
            return Ok(None);
        };
        let user: Option<UserRow> = sqlx::query_as(&format!(
            "UPDATE dashboard_users SET password_hash = $1, updated_at = $2 \
             WHERE creator_id = $3 AND id = $4 RETURNING {USER_COLUMNS}"
        ))
        .bind(password_hash)
        .bind(now)
        .bind(&link.creator_id)
        .bind(&link.user_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        if user.is_some() {
            sqlx::query(
                "UPDATE dashboard_tokens SET used_at = $1 \
                 WHERE creator_id = $2 AND user_id = $3 AND used_at IS NULL",
            )
            .bind(now)
            .bind(&link.creator_id)
            .bind(&link.user_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            end_sessions_of(&mut tx, &link.creator_id, &link.user_id, now).await?;
            Self::append_audit(&mut tx, &[audit(&link)]).await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(user)
    }

    /// Changes a user's role; `Missing` when it is not the creator's. With
    /// `keep_an_owner`, refuses (`LastOwner`) to leave the team without an owner.
    pub async fn set_user_role(
        &self,
        creator_id: &str,
        id: &str,
        role: &str,
        keep_an_owner: bool,
        (now, audit): (i64, &AuditEntry),
    ) -> Result<TeamChange, StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        if keep_an_owner && self.is_last_owner(&mut tx, creator_id, id).await? {
            return Ok(TeamChange::LastOwner);
        }
        let user: Option<UserRow> = sqlx::query_as(&format!(
            "UPDATE dashboard_users SET role = $1, updated_at = $2 \
             WHERE creator_id = $3 AND id = $4 RETURNING {USER_COLUMNS}"
        ))
        .bind(role)
        .bind(now)
        .bind(creator_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some(user) = user else {
            return Ok(TeamChange::Missing);
        };
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(TeamChange::Done(user))
    }

    /// Removes a user with its links, and ends its sessions. Refuses (`LastOwner`) to
    /// leave the team without an owner.
    pub async fn delete_user(
        &self,
        creator_id: &str,
        id: &str,
        (now, audit): (i64, &AuditEntry),
    ) -> Result<TeamChange, StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        if self.is_last_owner(&mut tx, creator_id, id).await? {
            return Ok(TeamChange::LastOwner);
        }
        let user: Option<UserRow> = sqlx::query_as(&format!(
            "DELETE FROM dashboard_users WHERE creator_id = $1 AND id = $2 RETURNING {USER_COLUMNS}"
        ))
        .bind(creator_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some(user) = user else {
            return Ok(TeamChange::Missing);
        };
        sqlx::query("DELETE FROM dashboard_tokens WHERE creator_id = $1 AND user_id = $2")
            .bind(creator_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        end_sessions_of(&mut tx, creator_id, id, now).await?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(TeamChange::Done(user))
    }

    /// Whether `id` is the creator's only owner. The owners' rows stay locked until the
    /// transaction ends (PostgreSQL; SQLite's write transaction holds the whole database),
    /// so two owners demoting each other at once cannot both succeed.
    async fn is_last_owner(
        &self,
        tx: &mut super::Tx,
        creator_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let lock = match self.dialect {
            super::Dialect::Sqlite => "",
            super::Dialect::Postgres => " FOR UPDATE",
        };
        let owners: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT id FROM dashboard_users WHERE creator_id = $1 AND role = 'owner'{lock}"
        ))
        .bind(creator_id)
        .fetch_all(&mut **tx)
        .await
        .map_err(unavailable)?;
        Ok(owners == [id])
    }

    // --- browser sessions -----------------------------------------------------------------

    pub async fn insert_browser_session(&self, row: &BrowserSessionRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO browser_sessions ({SESSION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&row.id_hash)
        .bind(&row.surface)
        .bind(&row.creator_id)
        .bind(&row.subject)
        .bind(&row.parent)
        .bind(row.created_at)
        .bind(row.last_seen_at)
        .bind(row.expires_at)
        .bind(row.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(unavailable)
        .map(|_| ())
    }

    pub async fn browser_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<BrowserSessionRow>, StoreError> {
        sqlx::query_as::<_, BrowserSessionRow>(&format!(
            "SELECT {SESSION_COLUMNS} FROM browser_sessions WHERE id_hash = $1"
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Notes that a session was used at `now`.
    pub async fn touch_browser_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE browser_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(unavailable)
            .map(|_| ())
    }

    pub async fn revoke_browser_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE browser_sessions SET revoked_at = $1 WHERE id_hash = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id_hash)
        .execute(&self.pool)
        .await
        .map_err(unavailable)
        .map(|_| ())
    }

    /// Marks a portal link's session used; `false` when it was already (a link is good
    /// once).
    pub async fn use_customer_session(
        &self,
        creator_id: &str,
        session_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let used = sqlx::query(
            "UPDATE customer_sessions SET used_at = $1 \
             WHERE creator_id = $2 AND id = $3 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(creator_id)
        .bind(session_id)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?
        .rows_affected();
        Ok(used == 1)
    }
}

async fn insert_link(tx: &mut super::Tx, link: &LinkRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dashboard_tokens (token_hash, creator_id, user_id, purpose, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&link.token_hash)
    .bind(&link.creator_id)
    .bind(&link.user_id)
    .bind(&link.purpose)
    .bind(link.created_at)
    .bind(link.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)
    .map(|_| ())
}

/// Ends every dashboard session of a user (its password changed, or it was removed).
async fn end_sessions_of(
    tx: &mut super::Tx,
    creator_id: &str,
    user_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE browser_sessions SET revoked_at = $1 WHERE creator_id = $2 AND subject = $3 \
         AND surface = 'dashboard' AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(creator_id)
    .bind(user_id)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)
    .map(|_| ())
}
