//! A creator's meter changes, as the API and the dashboard make them: audited, through the
//! tenant actor; a delete then tidies the meter's Stripe objects away (`billing::tidy`).

use std::sync::Arc;

use crate::audit::model::Who;
use crate::error::ApiError;
use crate::meters::model::{Meter, NewMeter};
use crate::state::AppState;
use crate::tenants::registry::Creator;

pub async fn create(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    body: NewMeter,
) -> Result<Arc<Meter>, ApiError> {
    let now = state.usage.now();
    let meter = body.parse(now)?;
    let record = who.change(&creator.tenant.id, now, "meter", "create", &*meter.key);
    creator.actor.create_meter(meter, record).await
}

pub async fn delete(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    key: &str,
) -> Result<(), ApiError> {
    let record = who.change(
        &creator.tenant.id,
        state.usage.now(),
        "meter",
        "delete",
        key,
    );
    creator.actor.delete_meter(Arc::from(key), record).await?;
    if let Some(billing) = &state.billing {
        billing.tidy_up(&creator.tenant.id).await;
    }
    Ok(())
}
