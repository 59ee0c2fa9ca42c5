//! Making, revoking and checking customer sessions. A session is stored (to revoke it and
//! to list it) but its token is not: the token carries its own claims, and checking one
//! takes no database round trip, only the key ring and the set of revoked sessions that
//! have not expired yet (kept in memory, loaded at start).

use std::sync::Arc;

use dashmap::DashMap;

use crate::audit::model::{customer_ref, Who};
use crate::clock::SharedClock;
use crate::error::ApiError;
use crate::sealing::Sealer;
use crate::sessions::model::{
    CreatedSession, NewSession, Scope, SessionView, DEFAULT_TTL_SECS, MAX_TTL_SECS, MIN_TTL_SECS,
};
use crate::sessions::tokens::{self, KeyRing, RingError};
use crate::store::embeds::SessionRow;
use crate::store::Store;
use crate::usage::period::rfc3339;

/// A customer a valid token speaks for.
#[derive(Debug, Clone)]
pub struct CustomerSession {
    pub id: String,
    pub customer_id: Arc<str>,
    /// When the token expires (Unix seconds).
    pub expires_at: i64,
}

pub struct Sessions {
    store: Store,
    clock: SharedClock,
    keys: KeyRing,
    /// Seals the keys a rotation makes.
    sealer: Sealer,
    /// Revoked sessions still unexpired: id → expiry.
    revoked: DashMap<String, i64>,
}

pub fn invalid_token() -> ApiError {
    ApiError::unauthorized(
        "invalid_customer_token",
        "the customer token is not valid here (expired, revoked, or made for another \
         creator, customer or scope)",
    )
}

impl Sessions {
    /// Loads the signing keys (opened with `sealer`, which also seals the keys rotations
    /// make) and the revoked sessions not yet expired.
    pub async fn load(
        store: Store,
        clock: SharedClock,
        sealer: Sealer,
    ) -> Result<Sessions, RingError> {
        let now = clock.now();
        let keys = KeyRing::load(&store, &sealer, now).await?;
        let revoked = store
            .load_revoked_sessions(now)
            .await?
            .into_iter()
            .map(|row| (row.id, row.expires_at))
            .collect();
        Ok(Sessions {
            store,
            clock,
            keys,
            sealer,
            revoked,
        })
    }

    pub async fn create(
        &self,
        creator_id: &str,
        customer_id: &str,
        who: &Who,
        body: NewSession,
    ) -> Result<CreatedSession, ApiError> {
        let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL_SECS);
        if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&ttl) {
            return Err(ApiError::invalid(
                "invalid_ttl",
                format!("ttl_seconds must be {MIN_TTL_SECS}–{MAX_TTL_SECS}"),
            ));
        }
        let now = self.clock.now();
        let claims = tokens::claims(creator_id, customer_id, body.scope.as_str(), now, ttl);
        let row = SessionRow {
            id: claims.jti.clone(),
            customer_id: customer_id.into(),
            scope: claims.scope.clone(),
            created_at: now,
            expires_at: claims.exp,
            revoked_at: None,
        };
        let record = who
            .change(creator_id, now, "session", "create", &row.id)
            .after(&record_state(creator_id, &row));
        self.store.insert_session(creator_id, &row, &record).await?;
        Ok(CreatedSession {
            token: self.keys.sign(&claims),
            id: claims.jti,
            customer_id: customer_id.into(),
            scope: body.scope,
            expires_at: rfc3339(claims.exp),
        })
    }

    /// Revokes the creator's session: its token is refused from now on.
    pub async fn revoke(
        &self,
        creator_id: &str,
        who: &Who,
        id: &str,
    ) -> Result<SessionView, ApiError> {
        let now = self.clock.now();
        let row = self
            .store
            .revoke_session(creator_id, id, now, |revoked| {
                let before = SessionRow {
                    revoked_at: None,
                    ..revoked.clone()
                };
                who.change(creator_id, now, "session", "revoke", id)
                    .before(&record_state(creator_id, &before))
                    .after(&record_state(creator_id, revoked))
            })
            .await?
            .ok_or_else(|| {
                ApiError::not_found("session_not_found", format!("no session `{id}`"))
            })?;
        self.note_revoked([(row.id.clone(), row.expires_at)]);
        Ok(SessionView {
            id: row.id,
            customer_id: row.customer_id,
            scope: row.scope,
            created_at: rfc3339(row.created_at),
            expires_at: rfc3339(row.expires_at),
            revoked_at: row.revoked_at.map(rfc3339),
        })
    }

    /// Refuses the tokens of sessions revoked in the store (`(id, expiry)`).
    pub fn note_revoked(&self, sessions: impl IntoIterator<Item = (String, i64)>) {
        let now = self.clock.now();
        // Revocations matter only until the tokens expire.
        self.revoked.retain(|_, expires_at| *expires_at > now);
        for (id, expires_at) in sessions {
            self.revoked.insert(id, expires_at);
        }
    }

    /// Whether the session was revoked (and has not expired yet).
    pub fn is_revoked(&self, id: &str) -> bool {
        self.revoked.contains_key(id)
    }

    /// The customer a token speaks for, if the token is this daemon's, for this creator
    /// and scope, unexpired and not revoked.
    pub fn check(
        &self,
        token: &str,
        creator_id: &str,
        scope: Scope,
    ) -> Result<CustomerSession, ApiError> {
        let now = self.clock.now();
        let claims = self
            .keys
            .verify(token, creator_id, now)
            .map_err(|_| invalid_token())?;
        if claims.scope != scope.as_str() || self.revoked.contains_key(&claims.jti) {
            return Err(invalid_token());
        }
        Ok(CustomerSession {
            id: claims.jti,
            customer_id: Arc::from(claims.sub),
            expires_at: claims.exp,
        })
    }

    /// A new signing key for new sessions; the old ones verify until their tokens expire.
    /// Revocations of expired sessions are forgotten at the same time.
    pub async fn rotate_key(&self, who: &Who) -> Result<String, ApiError> {
        let now = self.clock.now();
        self.revoked.retain(|_, expires_at| *expires_at > now);
        Ok(self
            .keys
            .rotate(&self.store, &self.sealer, now, MAX_TTL_SECS, Some(who))
            .await?)
    }
}

/// A session as its records show it: the customer by its reference (never its id), the
/// scope and times; never the token.
fn record_state(creator_id: &str, row: &SessionRow) -> serde_json::Value {
    serde_json::json!({
        "customer": customer_ref(creator_id, &row.customer_id),
        "scope": row.scope,
        "expires_at": rfc3339(row.expires_at),
        "revoked_at": row.revoked_at.map(rfc3339),
    })
}
