//! Making, listing, revoking and rolling keys. Each change is written with its audit
//! record, then applied to the registry, so a revoked key is refused from the next
//! request on (the store first: a key the store did not revoke must keep answering).

use std::time::Duration;

use crate::audit::model::Who;
use crate::error::ApiError;
use crate::keys::material::{self as keys, KeyKind};
use crate::keys::model::{
    CreatedKey, KeyList, KeyView, NewKey, RollRequest, DEFAULT_OVERLAP_SECS, MAX_SECRET_KEYS,
};
use crate::meters::model::parse_name;
use crate::state::AppState;
use crate::store::{KeyRow, Store, StoreError};
use crate::tenants::registry::{Creator, LiveKey, Registry};

/// A fresh key of `kind` for `creator_id`: its secret and its row.
pub fn make(creator_id: &str, kind: KeyKind, name: &str, now: i64) -> (String, KeyRow) {
    let secret = keys::generate(kind);
    let row = KeyRow {
        id: keys::generate_id(),
        key_hash: keys::hash_hex(&secret),
        creator_id: creator_id.to_string(),
        kind: kind.as_str().into(),
        name: name.to_string(),
        prefix: keys::display_prefix(&secret),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
        expires_at: None,
    };
    (secret, row)
}

/// Lets a key answer from now on.
pub fn go_live(registry: &Registry, secret: &str, row: &KeyRow, kind: KeyKind) {
    registry.add_key(LiveKey {
        creator_id: &row.creator_id,
        hash: keys::hash(secret),
        id: &row.id,
        kind,
        expires_at: row.expires_at,
    });
}

pub async fn list(state: &AppState, creator: &Creator) -> Result<KeyList, ApiError> {
    let rows = state.store.creator_keys(&creator.tenant.id).await?;
    Ok(KeyList {
        keys: rows.iter().map(KeyView::of).collect(),
    })
}

/// A new secret key for `creator`: by the creator itself, or by the platform owner for a
/// creator that lost its keys.
pub async fn create(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    body: NewKey,
) -> Result<CreatedKey, ApiError> {
    let name = parse_name("name", &body.name)?;
    let creator_id = &creator.tenant.id;
    let live_secrets = state
        .store
        .creator_keys(creator_id)
        .await?
        .iter()
        .filter(|key| key.kind == "secret" && key.revoked_at.is_none())
        .count();
    if live_secrets >= MAX_SECRET_KEYS {
        return Err(ApiError::conflict(
            "too_many_keys",
            format!("a creator holds at most {MAX_SECRET_KEYS} secret keys; revoke one first"),
        ));
    }
    let now = state.usage.now();
    let (secret, row) = make(creator_id, KeyKind::Secret, &name, now);
    let view = KeyView::of(&row);
    let record = who
        .change(creator_id, now, "key", "create", &row.id)
        .after(&view);
    state
        .store
        .add_keys(std::slice::from_ref(&row), &[record])
        .await?;
    go_live(&state.registry, &secret, &row, KeyKind::Secret);
    tracing::info!(creator = %creator.tenant.slug, key = %row.id, "secret key made");
    Ok(CreatedKey { view, key: secret })
}

/// Revokes one of the creator's keys: refused from the next request on.
pub async fn revoke(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    key_id: &str,
) -> Result<KeyView, ApiError> {
    let creator_id = &creator.tenant.id;
    let now = state.usage.now();
    let revoked = state
        .store
        .revoke_key(creator_id, key_id, now, |row| {
            let mut before = KeyView::of(row);
            before.revoked_at = None;
            who.change(creator_id, now, "key", "revoke", key_id)
                .before(&before)
                .after(&KeyView::of(row))
        })
        .await
        .map_err(|err| match err {
            StoreError::Conflict(_) => ApiError::conflict(
                "last_secret_key",
                "this is the creator's last secret key; make another before revoking it",
            ),
            other => other.into(),
        })?
        .ok_or_else(|| ApiError::not_found("key_not_found", "no live key with this id"))?;
    state.registry.remove_key(creator_id, key_id);
    tracing::info!(creator = %creator.tenant.slug, key = %key_id, "key revoked");
    Ok(KeyView::of(&revoked))
}

/// A new publishable key; the one before answers for `overlap_seconds` more, so that
/// pages embedding it can be updated.
pub async fn roll_publishable(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    body: RollRequest,
) -> Result<CreatedKey, ApiError> {
    let overlap = body.overlap_seconds.map_or(DEFAULT_OVERLAP_SECS, i64::from);
    if !(0..=crate::keys::model::MAX_OVERLAP_SECS).contains(&overlap) {
        return Err(ApiError::invalid(
            "invalid_value",
            "overlap_seconds must be 0 to 2,592,000 (30 days)",
        ));
    }
    let creator_id = &creator.tenant.id;
    let now = state.usage.now();
    let (secret, row) = make(creator_id, KeyKind::Publishable, "publishable", now);
    let view = KeyView::of(&row);
    let record = who
        .change(creator_id, now, "key", "roll", &row.id)
        .after(&view);
    let old_until = now + overlap;
    state
        .store
        .roll_publishable_key(&row, old_until, &[record])
        .await?;
    state.registry.expire_publishable(creator_id, old_until);
    go_live(&state.registry, &secret, &row, KeyKind::Publishable);
    Ok(CreatedKey { view, key: secret })
}

/// Writes when keys were last used, every `interval` (`ingest.maintenance_interval_secs`),
/// until the daemon stops.
pub fn spawn_use_writer(
    registry: std::sync::Arc<Registry>,
    store: Store,
    interval: Duration,
    stopping: crate::clock::Stopping,
) -> tokio::task::JoinHandle<()> {
    crate::clock::every(interval, stopping, move || {
        let uses = registry.take_key_uses();
        let store = store.clone();
        async move {
            if uses.is_empty() {
                return;
            }
            if let Err(err) = store.note_key_uses(&uses).await {
                tracing::debug!(error = %err, "writing when keys were last used failed");
            }
        }
    })
}
