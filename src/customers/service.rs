//! Putting a customer on a tier, as the API, the dashboard and the portal do: with billing
//! on, through its subscription (`Billing::put_customer`); otherwise straight through the
//! tenant actor.

use crate::billing::subscriptions::AssignedCustomer;
use crate::customers::model::CustomerUpdate;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::audit::AuditEntry;
use crate::tenants::registry::Creator;

pub async fn put(
    state: &AppState,
    creator: &Creator,
    update: CustomerUpdate,
    record: AuditEntry,
) -> Result<AssignedCustomer, ApiError> {
    match &state.billing {
        Some(billing) => billing.put_customer(creator, update, record).await,
        None => Ok(AssignedCustomer {
            customer: creator.actor.upsert_customer(update, record).await?,
            plan_change: None,
        }),
    }
}
