//! A creator's tier changes, as the API and the dashboard make them: audited, through the
//! tenant actor. With billing on, a created or changed tier is synced to Stripe before the
//! answer, which shows the outcome; a deleted tier's Stripe objects are then archived
//! (`billing::tidy`).

use std::sync::Arc;

use serde::Serialize;

use crate::audit::model::Who;
use crate::billing::catalog::TierSyncView;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tenants::registry::Creator;
use crate::tiers::model::{NewTier, Tier, TierPatch, TierView};

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChangedTier {
    #[serde(flatten)]
    pub tier: TierView,
    /// After a create or change while billing is on: the tier's Stripe objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    stripe: Option<TierSyncView>,
}

/// The tier's view, after a sync to Stripe when billing is on.
async fn synced_view(state: &AppState, creator: &Creator, tier: &Tier) -> ChangedTier {
    let stripe = match &state.billing {
        Some(billing) => Some(billing.sync_view(&creator.tenant, tier).await),
        None => None,
    };
    ChangedTier {
        tier: TierView::from(tier),
        stripe,
    }
}

pub async fn create(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    body: NewTier,
) -> Result<ChangedTier, ApiError> {
    let record = who.change(
        &creator.tenant.id,
        state.usage.now(),
        "tier",
        "create",
        &body.key,
    );
    let tier = creator.actor.create_tier(body, record).await?;
    Ok(synced_view(state, creator, &tier).await)
}

pub async fn update(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    key: &str,
    patch: TierPatch,
) -> Result<ChangedTier, ApiError> {
    let record = who.change(&creator.tenant.id, state.usage.now(), "tier", "update", key);
    let tier = creator
        .actor
        .update_tier(Arc::from(key), patch, record)
        .await?;
    Ok(synced_view(state, creator, &tier).await)
}

pub async fn delete(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    key: &str,
) -> Result<(), ApiError> {
    let record = who.change(&creator.tenant.id, state.usage.now(), "tier", "delete", key);
    creator.actor.delete_tier(Arc::from(key), record).await?;
    if let Some(billing) = &state.billing {
        billing.tidy_up(&creator.tenant.id).await;
    }
    Ok(())
}
