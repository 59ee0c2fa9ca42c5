//! Creating creators and changing what the platform owner controls about them. A new
//! creator is written to the store with its key hashes, then joins the registry with its
//! own tenant actor.

use std::sync::Arc;

use rand::distr::{Alphanumeric, SampleString};

use crate::audit::model::Who;
use crate::creators::model::{
    CreatedCreator, CreatorPatch, CreatorProfile, CreatorView, NewCreator, PlatformStats,
    ProfilePatch,
};
use crate::error::ApiError;
use crate::keys;
use crate::keys::material::KeyKind;
use crate::keys::model::KeyView;
use crate::state::AppState;
use crate::store::{StoreError, DOMAIN_TAKEN};
use crate::tenants::actor::TenantHandle;
use crate::tenants::config::TenantConfig;
use crate::tenants::registry::{Creator, RateLimit};
use crate::tenants::state::Tenant;

fn domain_taken() -> ApiError {
    ApiError::conflict("domain_taken", "another creator has this custom_domain")
}

pub async fn create(
    state: &AppState,
    who: &Who,
    body: NewCreator,
) -> Result<CreatedCreator, ApiError> {
    let id = format!("cr_{}", Alphanumeric.sample_string(&mut rand::rng(), 20));
    let now = state.usage.now();
    let (row, rate_limit) = body.parse(id, now)?;
    if let Some(domain) = &row.custom_domain {
        if state.registry.by_domain(domain).is_some() {
            return Err(domain_taken());
        }
        // The platform's own host names no one creator.
        let platform = reqwest::Url::parse(&state.public_url).ok();
        if platform.as_ref().and_then(|url| url.host_str()) == Some(domain.as_str()) {
            return Err(ApiError::invalid(
                "invalid_domain",
                "custom_domain is the platform's own host (server.public_url)",
            ));
        }
    }
    let (secret_key, secret_row) = keys::service::make(&row.id, KeyKind::Secret, "default", now);
    let (publishable_key, publishable_row) =
        keys::service::make(&row.id, KeyKind::Publishable, "publishable", now);
    let view = CreatorView::from_row(&row, rate_limit);
    let mut records = vec![who
        .change("", now, "creator", "create", &row.id)
        .after(&view)];
    for key in [&secret_row, &publishable_row] {
        let record = who.change(&row.id, now, "key", "create", &key.id);
        records.push(record.after(&KeyView::of(key)));
    }
    state
        .store
        .insert_creator(
            &row,
            &[secret_row.clone(), publishable_row.clone()],
            &records,
        )
        .await
        .map_err(|err| match err {
            // Another create with the domain got there first.
            StoreError::Conflict(DOMAIN_TAKEN) => domain_taken(),
            err => err.into(),
        })?;
    let tenant = Arc::new(Tenant::new(
        Arc::from(row.id.as_str()),
        Arc::from(row.slug.as_str()),
        TenantConfig::default(),
    ));
    let creator = Creator {
        actor: TenantHandle::start(tenant.clone(), state.settings.clone()),
        tenant,
    };
    state
        .registry
        .add_creator(creator, rate_limit, row.custom_domain.as_deref());
    keys::service::go_live(&state.registry, &secret_key, &secret_row, KeyKind::Secret);
    keys::service::go_live(
        &state.registry,
        &publishable_key,
        &publishable_row,
        KeyKind::Publishable,
    );
    tracing::info!(creator = %row.slug, "creator created");
    Ok(CreatedCreator {
        creator: view,
        secret_key,
        publishable_key,
    })
}

pub async fn list(state: &AppState) -> Result<Vec<CreatorView>, ApiError> {
    let rows = state.store.load_creators().await?;
    Ok(rows
        .iter()
        .map(|row| CreatorView::from_row(row, state.registry.rate_limit(&row.id)))
        .collect())
}

pub async fn update(
    state: &AppState,
    who: &Who,
    slug: &str,
    patch: CreatorPatch,
) -> Result<CreatorView, ApiError> {
    let creator = state
        .registry
        .creator_by_slug(slug)
        .ok_or_else(|| ApiError::not_found("creator_not_found", format!("no creator `{slug}`")))?;
    let id = &creator.tenant.id;
    let rate_limit = patch.rate_limit.map(RateLimit::parse).transpose()?;
    let record = who
        .change("", state.usage.now(), "creator", "update", &**id)
        .before(&serde_json::json!({"rate_limit": state.registry.rate_limit(id)}))
        .after(&serde_json::json!({"rate_limit": rate_limit}));
    state
        .store
        .update_creator_rate_limit(
            id,
            rate_limit.map(|r| i64::from(r.per_second)),
            rate_limit.and_then(|r| r.burst).map(i64::from),
            &record,
        )
        .await?;
    state.registry.set_rate_limit(id, rate_limit);
    let row = state
        .store
        .load_creators()
        .await?
        .into_iter()
        .find(|row| *row.id == **id)
        .ok_or_else(|| ApiError::not_found("creator_not_found", format!("no creator `{slug}`")))?;
    Ok(CreatorView::from_row(&row, rate_limit))
}

pub async fn stats(state: &AppState) -> Result<PlatformStats, ApiError> {
    let counts = state.store.platform_counts().await?;
    Ok(PlatformStats {
        creators: counts.creators,
        customers: counts.customers,
        meters: counts.meters,
        tiers: counts.tiers,
        live_counters: state.registry.live_counters(),
        store_up: state.usage.health.is_up(),
    })
}

/// The creator as it sees itself.
pub async fn profile(state: &AppState, creator: &Creator) -> Result<CreatorProfile, ApiError> {
    let row = state
        .store
        .creator_row(&creator.tenant.id)
        .await?
        .ok_or_else(|| ApiError::not_found("creator_not_found", "the creator is gone"))?;
    Ok(CreatorProfile {
        id: row.id,
        slug: row.slug,
        name: row.name,
        custom_domain: row.custom_domain,
        branding: serde_json::from_str(&row.branding).unwrap_or_default(),
        allowed_origins: serde_json::from_str(&row.allowed_origins).unwrap_or_default(),
        portal_hidden_meters: serde_json::from_str(&row.portal_hidden_meters).unwrap_or_default(),
    })
}

/// What a creator changes about itself: the origins its widgets may be called from, the
/// meters its portal hides (each recorded as a `profile.update`).
pub async fn update_profile(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    patch: ProfilePatch,
) -> Result<CreatorProfile, ApiError> {
    if let Some(origins) = patch.allowed_origins {
        crate::embeds::service::set_allowed_origins(state, creator, who, origins).await?;
    }
    if let Some(keys) = patch.portal_hidden_meters {
        set_portal_hidden_meters(state, creator, who, keys).await?;
    }
    profile(state, creator).await
}

/// Sets the meters the creator's portal hides.
async fn set_portal_hidden_meters(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    keys: Vec<String>,
) -> Result<(), ApiError> {
    if keys.len() > 100 {
        return Err(ApiError::invalid(
            "invalid_value",
            "portal_hidden_meters holds at most 100 keys",
        ));
    }
    let mut keys = keys
        .iter()
        .map(|key| {
            crate::meters::model::parse_slug("portal_hidden_meters", key).map(|k| k.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    keys.sort();
    keys.dedup();
    let before = profile(state, creator).await?.portal_hidden_meters;
    let creator_id = &creator.tenant.id;
    let record = who
        .change(
            creator_id,
            state.usage.now(),
            "profile",
            "update",
            &**creator_id,
        )
        .before(&serde_json::json!({ "portal_hidden_meters": before }))
        .after(&serde_json::json!({ "portal_hidden_meters": keys }));
    let json = serde_json::to_string(&keys).expect("strings serialize");
    state
        .store
        .set_portal_hidden_meters(creator_id, &json, &record)
        .await?;
    Ok(())
}
