//! A creator's notice settings: read with the built-in templates filled in, replaced whole.

use std::collections::BTreeMap;

use crate::audit::model::Who;
use crate::error::ApiError;
use crate::notices::model::{effective, Notices, NoticesUpdate, TemplateUpdate, PLACEHOLDERS};
use crate::state::AppState;
use crate::store::outbox::NoticeSettingsRow;
use crate::store::{Store, StoreError};
use crate::tenants::registry::Creator;

/// The stored settings: the notice address and the creator's template updates.
pub async fn stored(
    store: &Store,
    creator_id: &str,
) -> Result<(Option<String>, BTreeMap<String, TemplateUpdate>), StoreError> {
    Ok(match store.notice_settings(creator_id).await? {
        // Written by `put` from checked input: unreadable only if edited by hand, and then
        // the built-in templates stand in.
        Some(row) => (
            row.notice_email,
            serde_json::from_str(&row.templates).unwrap_or_default(),
        ),
        None => (None, BTreeMap::new()),
    })
}

pub async fn get(state: &AppState, creator: &Creator) -> Result<Notices, ApiError> {
    let (notice_email, templates) = stored(&state.store, &creator.tenant.id).await?;
    Ok(Notices {
        email_enabled: state.integrations.email_enabled,
        notice_email,
        kinds: effective(&templates),
        placeholders: PLACEHOLDERS
            .iter()
            .map(|p| format!("{{{{{p}}}}}"))
            .collect(),
    })
}

/// The settings as a record shows them: the notice address (the creator's own) and the
/// creator's templates as it gave them (the built-in ones are not repeated).
fn record_state(
    notice_email: &Option<String>,
    templates: &impl serde::Serialize,
) -> serde_json::Value {
    serde_json::json!({"notice_email": notice_email, "kinds": templates})
}

pub async fn put(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    update: NoticesUpdate,
) -> Result<Notices, ApiError> {
    update.validate()?;
    let creator_id = &creator.tenant.id;
    let (email_before, templates_before) = stored(&state.store, creator_id).await?;
    let now = state.usage.now();
    let record = who
        .change(creator_id, now, "notice_settings", "update", &**creator_id)
        .before(&record_state(&email_before, &templates_before))
        .after(&record_state(&update.notice_email, &update.kinds));
    let row = NoticeSettingsRow {
        notice_email: update.notice_email,
        templates: serde_json::to_string(&update.kinds).expect("templates serialize"),
    };
    state
        .store
        .save_notice_settings(creator_id, &row, now, &record)
        .await?;
    get(state, creator).await
}
