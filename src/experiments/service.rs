//! The creator's side of experiments (make, start, stop, results) and conversions, from
//! the creator's own endpoint or from a completed Stripe Checkout that a widget started.
//! Conversions are committed by the group commit before they are answered, and taken back
//! from the tallies if the commit fails.

use std::sync::Arc;

use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;

use crate::audit::model::Who;
use crate::embeds::service::embed_not_found;
use crate::error::ApiError;
use crate::experiments::live::{Lifecycle, LiveExperiment, Seen};
use crate::experiments::model::{
    customer_identity, identity_field, visitor_identity, ConversionReceipt, ExperimentView, Goal,
    NewConversion, NewExperiment, Results, Status,
};
use crate::outbox::model::{announcement, EXPERIMENT_CONVERTED};
use crate::state::AppState;
use crate::store::embeds::ExperimentRow;
use crate::store::FlushJob;
use crate::tenants::registry::Creator;
use crate::usage::period::rfc3339;

/// Metadata a widget's Checkout Session carries (and its completion brings back).
pub mod tags {
    pub const EMBED: &str = "staryer_embed";
    pub const VERSION: &str = "staryer_embed_version";
    pub const EXPERIMENT: &str = "staryer_experiment";
    pub const VARIANT: &str = "staryer_variant";
    /// The visitor as counted by the experiment (`v:…` or `c:…`).
    pub const VISITOR: &str = "staryer_visitor";
}

pub fn experiment_not_found(key: &str) -> ApiError {
    ApiError::not_found("experiment_not_found", format!("no experiment `{key}`"))
}

fn find(state: &AppState, creator: &Creator, key: &str) -> Result<Arc<LiveExperiment>, ApiError> {
    state
        .embeds
        .of(&creator.tenant.id)
        .experiment(key)
        .ok_or_else(|| experiment_not_found(key))
}

pub async fn create(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    body: NewExperiment,
) -> Result<ExperimentView, ApiError> {
    let catalog = state.embeds.of(&creator.tenant.id);
    let _turn = catalog.turn.lock().await;
    let embed = catalog
        .embed(&body.embed)
        .ok_or_else(|| embed_not_found(&body.embed))?;
    let plan = body.parse(&embed)?;
    if catalog.experiment(&plan.key).is_some() {
        return Err(ApiError::conflict(
            "already_exists",
            format!("experiment `{}` already exists", plan.key),
        ));
    }
    let now = state.usage.now();
    let row = ExperimentRow {
        key: plan.key.to_string(),
        embed_key: plan.embed.to_string(),
        variants: serde_json::to_string(&plan.variants).expect("variants serialize"),
        goal: plan.goal.as_str().to_string(),
        status: Status::Draft.as_str().into(),
        created_at: now,
        started_at: None,
        stopped_at: None,
    };
    let experiment = LiveExperiment::new(
        creator.tenant.id.clone(),
        plan.key,
        plan.embed,
        plan.variants,
        plan.goal,
        now,
        Lifecycle {
            status: Status::Draft,
            started_at: None,
            stopped_at: None,
        },
    );
    let view = experiment.view();
    let record = who
        .change(&creator.tenant.id, now, "experiment", "create", &row.key)
        .after(&view);
    state
        .store
        .insert_experiment(&creator.tenant.id, &row, &record)
        .await?;
    catalog.put_experiment(experiment);
    Ok(view)
}

/// Starts a draft; at most one experiment runs per embed.
pub async fn start(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    key: &str,
) -> Result<ExperimentView, ApiError> {
    let catalog = state.embeds.of(&creator.tenant.id);
    let _turn = catalog.turn.lock().await;
    let experiment = find(state, creator, key)?;
    let lifecycle = experiment.lifecycle();
    if lifecycle.status != Status::Draft {
        return Err(ApiError::conflict(
            "already_started",
            format!(
                "experiment `{key}` is {}; a stopped experiment stays stopped (make a new one)",
                lifecycle.status.as_str()
            ),
        ));
    }
    if let Some(other) = catalog.running_experiment(&experiment.embed) {
        return Err(ApiError::conflict(
            "experiment_running",
            format!(
                "experiment `{}` already runs on embed `{}`; stop it first",
                other.key, experiment.embed
            ),
        ));
    }
    let now = state.usage.now();
    let running = Lifecycle {
        status: Status::Running,
        started_at: Some(now),
        stopped_at: None,
    };
    set_lifecycle(state, creator, who, "start", &experiment, running).await?;
    Ok(experiment.view())
}

pub async fn stop(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    key: &str,
) -> Result<ExperimentView, ApiError> {
    let catalog = state.embeds.of(&creator.tenant.id);
    let _turn = catalog.turn.lock().await;
    let experiment = find(state, creator, key)?;
    let lifecycle = experiment.lifecycle();
    if lifecycle.status != Status::Running {
        return Err(ApiError::conflict(
            "not_running",
            format!("experiment `{key}` is {}", lifecycle.status.as_str()),
        ));
    }
    let stopped = Lifecycle {
        status: Status::Stopped,
        stopped_at: Some(state.usage.now()),
        ..lifecycle
    };
    set_lifecycle(state, creator, who, "stop", &experiment, stopped).await?;
    Ok(experiment.view())
}

/// Writes the experiment's new lifecycle with its record (`verb`: `start`, `stop`), then
/// applies it.
async fn set_lifecycle(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    verb: &str,
    experiment: &LiveExperiment,
    lifecycle: Lifecycle,
) -> Result<(), ApiError> {
    let before = experiment.view();
    let after = ExperimentView {
        status: lifecycle.status,
        started_at: lifecycle.started_at.map(rfc3339),
        stopped_at: lifecycle.stopped_at.map(rfc3339),
        ..experiment.view()
    };
    let now = state.usage.now();
    let record = who
        .change(
            &creator.tenant.id,
            now,
            "experiment",
            verb,
            &*experiment.key,
        )
        .before(&before)
        .after(&after);
    state
        .store
        .set_experiment_status(
            &creator.tenant.id,
            &experiment.key,
            lifecycle.status.as_str(),
            lifecycle.started_at,
            lifecycle.stopped_at,
            &record,
        )
        .await?;
    experiment.set_lifecycle(lifecycle);
    Ok(())
}

pub fn list(state: &AppState, creator: &Creator) -> Vec<ExperimentView> {
    state
        .embeds
        .of(&creator.tenant.id)
        .experiments
        .load()
        .values()
        .map(|experiment| experiment.view())
        .collect()
}

pub fn get(state: &AppState, creator: &Creator, key: &str) -> Result<ExperimentView, ApiError> {
    Ok(find(state, creator, key)?.view())
}

pub fn results(state: &AppState, creator: &Creator, key: &str) -> Result<Results, ApiError> {
    Ok(find(state, creator, key)?.results())
}

/// A conversion the creator reports, for an experiment with a custom goal.
pub async fn convert(
    state: &AppState,
    creator: &Creator,
    key: &str,
    body: NewConversion,
) -> Result<ConversionReceipt, ApiError> {
    let experiment = find(state, creator, key)?;
    if experiment.goal == Goal::CheckoutCompleted {
        return Err(ApiError::conflict(
            "wrong_goal",
            format!(
                "experiment `{key}` counts completed checkouts itself; report conversions only \
                 for a custom goal"
            ),
        ));
    }
    let (identity, revenue, conversion_id) = body.parse()?;
    let seen = experiment.seen(&identity).ok_or_else(|| {
        ApiError::not_found(
            "visitor_not_found",
            format!("experiment `{key}` never showed a variant to this visitor"),
        )
    })?;
    let source: Arc<str> = match conversion_id {
        Some(id) => Arc::from(format!("id:{id}")),
        None => Arc::from(format!(
            "rand:{}",
            Alphanumeric.sample_string(&mut rand::rng(), 20)
        )),
    };
    let counted = count(state, &experiment, &seen, source, revenue).await?;
    Ok(ConversionReceipt {
        counted,
        variant: experiment.variants[seen.variant].key.clone(),
    })
}

/// Counts one conversion durably; `false` when its source was counted before.
async fn count(
    state: &AppState,
    experiment: &LiveExperiment,
    seen: &Seen,
    source: Arc<str>,
    revenue: i64,
) -> Result<bool, ApiError> {
    let conversion = experiment.convert(seen, source, revenue, state.usage.now());
    let Some(write) = conversion.write.clone() else {
        return Ok(false);
    };
    let mut announcements = Vec::new();
    if state.integrations.analytics.wants(&write.creator_id) {
        let (field, id) = identity_field(&write.visitor);
        let mut data = serde_json::json!({
            "experiment": &*write.experiment_key,
            "variant": &*write.variant,
            "revenue": write.revenue,
        });
        data[field] = id.into();
        let cause = format!(
            "{EXPERIMENT_CONVERTED}:{}:{}",
            write.experiment_key, write.source
        );
        announcements.push(announcement(
            &write.creator_id,
            cause,
            EXPERIMENT_CONVERTED,
            data,
            write.converted_at,
        ));
    }
    let job = FlushJob {
        conversions: vec![write],
        announcements,
        ..FlushJob::default()
    };
    if let Err(err) = state.usage.commit(job).await {
        experiment.unconvert(&conversion);
        return Err(err);
    }
    Ok(true)
}

/// Counts the conversion a completed and paid Checkout Session brings, when a widget in
/// an experiment with the checkout goal started it: its metadata names the experiment and
/// the visitor, `amount_total` is the revenue, and the session id makes a redelivery (or
/// the later `async_payment_succeeded`) count nothing more. Answers whether it counted.
pub async fn checkout_completed(
    state: &AppState,
    creator: &Creator,
    session: &Value,
) -> Result<bool, ApiError> {
    // Completed is not paid (an asynchronous payment method): such a checkout converts
    // when `async_payment_succeeded` says it is paid, with the same session id.
    let paid = matches!(
        session["payment_status"].as_str(),
        Some("paid" | "no_payment_required")
    );
    if !paid {
        return Ok(false);
    }
    let tag = |name: &str| session["metadata"][name].as_str();
    let (Some(key), Some(visitor), Some(session_id)) = (
        tag(tags::EXPERIMENT),
        tag(tags::VISITOR),
        session["id"].as_str(),
    ) else {
        return Ok(false);
    };
    let Some(experiment) = state.embeds.of(&creator.tenant.id).experiment(key) else {
        return Ok(false);
    };
    if experiment.goal != Goal::CheckoutCompleted {
        return Ok(false);
    }
    let Some(seen) = experiment.seen(visitor) else {
        tracing::warn!(creator = %creator.tenant.slug, experiment = %key,
            "a checkout names a visitor the experiment never showed; not counted");
        return Ok(false);
    };
    let revenue = session["amount_total"].as_i64().unwrap_or(0).max(0);
    count(state, &experiment, &seen, Arc::from(session_id), revenue).await
}

/// The identity a widget request is counted under: the customer of its token, else its
/// visitor id.
pub fn identities(
    customer_id: Option<&str>,
    visitor_id: Option<&str>,
) -> (Option<Arc<str>>, Option<Arc<str>>) {
    let visitor = visitor_id.map(visitor_identity);
    match customer_id.map(customer_identity) {
        Some(customer) => (Some(customer), visitor),
        None => (visitor, None),
    }
}
