//! Export and erase. An erase runs in this order: the Stripe Customer first (a failure
//! there leaves everything as it was, and a retry finds it gone and goes on), then, in the
//! tenant actor's turn (`tenants::actor::EraseCustomer`), the customer's events are held
//! off, those decided before are committed and folded, its rows go in one transaction with
//! its audit record, and memory forgets it (counters, billing standing, sessions,
//! experiment identities). Events of the customer sent after the answer count toward a
//! new customer of the same id.

use crate::audit::model::{customer_ref, Who};
use crate::error::ApiError;
use crate::experiments::model::customer_identity;
use crate::privacy::model::{CustomerExport, ErasureReceipt};
use crate::state::AppState;
use crate::store::privacy::{CustomerRows, Erased, Erasure};
use crate::tenants::registry::Creator;
use crate::usage::model::answer_prefix;
use crate::usage::period::rfc3339;

fn customer_not_found(customer_id: &str) -> ApiError {
    ApiError::not_found(
        "customer_not_found",
        format!("no customer `{customer_id}` is known"),
    )
}

/// Every row that names the customer; 404 when neither the store nor memory knows it.
async fn known_rows(
    state: &AppState,
    creator: &Creator,
    customer_id: &str,
) -> Result<CustomerRows, ApiError> {
    let tenant = &creator.tenant;
    let rows = state
        .store
        .customer_rows(
            &tenant.id,
            customer_id,
            &customer_identity(customer_id),
            &answer_prefix(customer_id),
        )
        .await?;
    if rows.is_empty() && !tenant.customers.contains_key(customer_id) {
        return Err(customer_not_found(customer_id));
    }
    Ok(rows)
}

pub async fn export(
    state: &AppState,
    creator: &Creator,
    customer_id: &str,
) -> Result<CustomerExport, ApiError> {
    // Acknowledged events still in the commit log join their hours first.
    state.store.fold_all().await?;
    let rows = known_rows(state, creator, customer_id).await?;
    let tenant = &creator.tenant;
    let reference = customer_ref(&tenant.id, customer_id);
    let audit_log =
        crate::audit::service::customer_records(&state.store, &tenant.id, &reference).await?;
    Ok(CustomerExport {
        customer_id: customer_id.to_string(),
        exported_at: rfc3339(state.usage.now()),
        customer: rows.customer,
        usage: state.usage.usage(tenant, customer_id).ok(),
        usage_hours: rows.usage,
        sessions: rows.sessions,
        experiment_exposures: rows.exposures,
        experiment_conversions: rows.conversions,
        billing_events: rows.billing_events,
        usage_reported_to_stripe: rows.reports,
        notices: rows.notices,
        idempotency_answers: rows.answers,
        usage_removed_by_retention: rows.pruned,
        audit_log,
    })
}

pub async fn erase(
    state: &AppState,
    creator: &Creator,
    who: Who,
    customer_id: &str,
    keep_stripe_customer: bool,
) -> Result<ErasureReceipt, ApiError> {
    let rows = known_rows(state, creator, customer_id).await?;
    let tenant = &creator.tenant;
    let stripe_customer_id = rows.customer.and_then(|c| c.stripe_customer_id);
    let stripe_customer_deleted = match (&state.billing, &stripe_customer_id) {
        (Some(billing), Some(stripe_id)) if !keep_stripe_customer => {
            billing
                .delete_stripe_customer(&tenant.id, stripe_id)
                .await?;
            true
        }
        _ => false,
    };
    let now = state.usage.now();
    let reference = customer_ref(&tenant.id, customer_id);
    let identity = customer_identity(customer_id);
    let reference_identity = customer_identity(&reference);
    let erasure = Erasure {
        creator_id: tenant.id.to_string(),
        customer_id: customer_id.to_string(),
        reference: reference.clone(),
        answer_prefix: answer_prefix(customer_id),
        identity: identity.to_string(),
        reference_identity: reference_identity.to_string(),
        stripe_customer_id,
        stripe_customer_deleted,
        now,
    };
    let record = who.customer_change(&tenant.id, now, "erase", customer_id);
    // What the rest of the daemon holds of the customer, forgotten in the erase's turn.
    let forget = {
        let (billing, sessions) = (state.billing.clone(), state.sessions.clone());
        let experiments = state.embeds.of(&tenant.id);
        let (creator_id, customer_id) = (tenant.id.clone(), customer_id.to_string());
        Box::new(move |erased: &Erased| {
            if let Some(billing) = &billing {
                billing.forget_customer(&creator_id, &customer_id);
            }
            sessions.note_revoked(erased.revoked_sessions.iter().cloned());
            for experiment in experiments.experiments.load().values() {
                experiment.rename_identity(&identity, &reference_identity);
            }
        })
    };
    let erased = creator
        .actor
        .erase_customer(erasure, record, forget)
        .await?;
    let by_table = |rows: Vec<(&'static str, u64)>| {
        rows.into_iter()
            .map(|(table, n)| (table.to_string(), n))
            .collect()
    };
    Ok(ErasureReceipt {
        reference,
        erased_at: rfc3339(now),
        removed: by_table(erased.removed),
        kept: by_table(erased.kept),
        stripe_customer_deleted,
    })
}
