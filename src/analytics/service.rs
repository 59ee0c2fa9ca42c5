//! A creator's own PostHog project: set (its key sealed at rest), shown (never the key),
//! removed (its analytics go to the platform's project again, if there is one).

use serde::{Deserialize, Serialize};

use crate::analytics::projects::{key_owner, Project};
use crate::audit::model::Who;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::outbox::PosthogRow;
use crate::tenants::registry::Creator;

/// `PUT /v1/integrations/posthog`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PosthogUpdate {
    /// The project API key (`phc_…`); kept sealed, never shown again.
    #[schema(schema_with = api_key_schema)]
    pub api_key: String,
    /// The project's host; the platform's `posthog.host` when absent.
    #[schema(schema_with = host_schema)]
    pub host: Option<String>,
}

/// Visible ASCII, as PostHog's keys are.
const API_KEY_PATTERN: &str = "^[!-~]+$";

fn api_key_schema() -> utoipa::openapi::schema::Object {
    crate::schema::text(1, 200, API_KEY_PATTERN, "The project API key (`phc_…`)")
}

fn host_schema() -> utoipa::openapi::schema::Schema {
    crate::schema::or_null(crate::schema::url_schema())
}

/// Where the creator's analytics go.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PosthogStatus {
    /// `creator` (its own project), `platform` (the platform's), or `off`.
    pub destination: String,
    /// The creator's own project's host, when it set one.
    pub host: Option<String>,
}

pub fn status(state: &AppState, creator: &Creator) -> PosthogStatus {
    let projects = &state.integrations.analytics;
    PosthogStatus {
        destination: projects
            .target_of(&creator.tenant.id)
            .unwrap_or("off")
            .to_string(),
        host: projects.creator_host(&creator.tenant.id),
    }
}

/// The creator's own project as its records show it: the host, and that a key is set
/// (never the key).
#[derive(Debug, Serialize)]
struct RecordState {
    host: String,
    api_key_set: bool,
}

fn record_state(host: Option<String>) -> Option<RecordState> {
    host.map(|host| RecordState {
        host,
        api_key_set: true,
    })
}

pub async fn put(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    update: PosthogUpdate,
) -> Result<PosthogStatus, ApiError> {
    let api_key = update.api_key.trim();
    if api_key.is_empty()
        || api_key.len() > 200
        || api_key.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ApiError::invalid(
            "invalid_api_key",
            "api_key is 1 to 200 characters, no spaces",
        ));
    }
    let host = update
        .host
        .unwrap_or_else(|| state.integrations.posthog_host.clone());
    let host = crate::webhooks::targets::check(&host, state.integrations.allow_private_targets)
        .await?
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let creator_id = &creator.tenant.id;
    let row = PosthogRow {
        creator_id: creator_id.to_string(),
        host: host.clone(),
        api_key_sealed: state.sealer.seal(&key_owner(creator_id), api_key),
    };
    let now = state.usage.now();
    let before = record_state(state.integrations.analytics.creator_host(creator_id));
    let mut record = who
        .change(creator_id, now, "posthog_settings", "put", &**creator_id)
        .after(&record_state(Some(host.clone())));
    if let Some(before) = &before {
        record = record.before(before);
    }
    state
        .store
        .save_posthog_settings(&row, now, &record)
        .await?;
    state.integrations.analytics.set(
        creator_id,
        Project {
            host,
            api_key: api_key.to_string(),
        },
    );
    Ok(status(state, creator))
}

/// Forgets the creator's own project; recorded only when there was one.
pub async fn delete(
    state: &AppState,
    creator: &Creator,
    who: &Who,
) -> Result<PosthogStatus, ApiError> {
    let creator_id = &creator.tenant.id;
    let before = record_state(state.integrations.analytics.creator_host(creator_id));
    let record = who
        .change(
            creator_id,
            state.usage.now(),
            "posthog_settings",
            "delete",
            &**creator_id,
        )
        .before(&before);
    state
        .store
        .delete_posthog_settings(creator_id, &record)
        .await?;
    state.integrations.analytics.remove(&creator.tenant.id);
    Ok(status(state, creator))
}
