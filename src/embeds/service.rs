//! The creator's side of embeds: making them, adding versions, publishing one, the
//! snippet to paste, and the origins the widgets may be called from. Each change is
//! written to the store, then swapped into the creator's catalog, one at a time.

use std::sync::Arc;

use crate::audit::model::Who;
use crate::embeds::model::{
    CreatedVersion, Embed, EmbedConfig, EmbedView, NewEmbed, NewVersion, Publish, Snippet, Version,
};
use crate::embeds::origins;
use crate::error::ApiError;
use crate::keys::material::{self as keys, KeyKind};
use crate::meters::model::parse_slug;
use crate::state::AppState;
use crate::store::embeds::{EmbedRow, EmbedVersionRow};
use crate::tenants::registry::Creator;

/// Most versions one embed keeps (each is immutable; a creator iterating on a design makes
/// many, but not thousands).
const MAX_VERSIONS: usize = 1_000;

pub fn embed_not_found(key: &str) -> ApiError {
    ApiError::not_found("embed_not_found", format!("no embed `{key}`"))
}

fn version_not_found(key: &str, version: i64) -> ApiError {
    ApiError::not_found(
        "version_not_found",
        format!("embed `{key}` has no version {version}"),
    )
}

fn version_row(embed: &str, version: &Version) -> EmbedVersionRow {
    EmbedVersionRow {
        embed_key: embed.to_string(),
        version: version.number,
        config: version.config.to_json().to_string(),
        created_at: version.created_at,
    }
}

pub async fn create(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    body: NewEmbed,
) -> Result<EmbedView, ApiError> {
    let key = parse_slug("key", &body.key)?;
    let config = EmbedConfig::parse(body.kind, body.config, &creator.tenant.config())?;
    let now = state.usage.now();
    let catalog = state.embeds.of(&creator.tenant.id);
    let _turn = catalog.turn.lock().await;
    if catalog.embed(&key).is_some() {
        return Err(ApiError::conflict(
            "already_exists",
            format!("embed `{key}` already exists"),
        ));
    }
    let first = Arc::new(Version {
        number: 1,
        config,
        created_at: now,
    });
    let row = EmbedRow {
        key: key.to_string(),
        kind: body.kind.as_str().into(),
        published_version: 1,
        created_at: now,
        updated_at: now,
    };
    let embed = Embed {
        key: key.clone(),
        kind: body.kind,
        versions: vec![first.clone()],
        published: 1,
        created_at: now,
        updated_at: now,
    };
    let view = EmbedView::of(&embed, true);
    let record = who
        .change(&creator.tenant.id, now, "embed", "create", &*key)
        .after(&view);
    state
        .store
        .insert_embed(
            &creator.tenant.id,
            &row,
            &version_row(&key, &first),
            &record,
        )
        .await?;
    catalog.put_embed(embed);
    Ok(view)
}

pub async fn add_version(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    key: &str,
    body: NewVersion,
) -> Result<CreatedVersion, ApiError> {
    let catalog = state.embeds.of(&creator.tenant.id);
    let _turn = catalog.turn.lock().await;
    let embed = catalog.embed(key).ok_or_else(|| embed_not_found(key))?;
    let config = EmbedConfig::parse(embed.kind, body.config, &creator.tenant.config())?;
    if embed.versions.len() >= MAX_VERSIONS {
        return Err(ApiError::conflict(
            "too_many_versions",
            format!("an embed keeps at most {MAX_VERSIONS} versions; make a new embed"),
        ));
    }
    let now = state.usage.now();
    let version = Arc::new(Version {
        number: embed.versions.len() as i64 + 1,
        config,
        created_at: now,
    });
    // The version as `GET /v1/embeds/{key}` shows it (versions never change).
    let record = who
        .change(&creator.tenant.id, now, "embed", "create_version", key)
        .after(&serde_json::json!({
            "embed": key,
            "version": version.number,
            "config": version.config.to_json(),
            "created_at": crate::usage::period::rfc3339(now),
        }));
    state
        .store
        .insert_embed_version(&creator.tenant.id, &version_row(key, &version), &record)
        .await?;
    let mut versions = embed.versions.clone();
    versions.push(version.clone());
    catalog.put_embed(Embed {
        key: embed.key.clone(),
        kind: embed.kind,
        versions,
        published: embed.published,
        created_at: embed.created_at,
        updated_at: now,
    });
    Ok(CreatedVersion {
        embed: key.to_string(),
        version: version.number,
    })
}

pub async fn publish(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    key: &str,
    body: Publish,
) -> Result<EmbedView, ApiError> {
    let catalog = state.embeds.of(&creator.tenant.id);
    let _turn = catalog.turn.lock().await;
    let embed = catalog.embed(key).ok_or_else(|| embed_not_found(key))?;
    if embed.version(body.version).is_none() {
        return Err(version_not_found(key, body.version));
    }
    let now = state.usage.now();
    let published = Embed {
        key: embed.key.clone(),
        kind: embed.kind,
        versions: embed.versions.clone(),
        published: body.version,
        created_at: embed.created_at,
        updated_at: now,
    };
    // Without the versions: they do not change, only which one is published.
    let record = who
        .change(&creator.tenant.id, now, "embed", "publish", key)
        .before(&EmbedView::of(&embed, false))
        .after(&EmbedView::of(&published, false));
    state
        .store
        .publish_embed_version(&creator.tenant.id, key, body.version, now, &record)
        .await?;
    let view = EmbedView::of(&published, true);
    catalog.put_embed(published);
    Ok(view)
}

pub fn list(state: &AppState, creator: &Creator) -> Vec<EmbedView> {
    state
        .embeds
        .of(&creator.tenant.id)
        .embeds
        .load()
        .values()
        .map(|embed| EmbedView::of(embed, false))
        .collect()
}

pub async fn get(state: &AppState, creator: &Creator, key: &str) -> Result<EmbedView, ApiError> {
    let embed = state
        .embeds
        .of(&creator.tenant.id)
        .embed(key)
        .ok_or_else(|| embed_not_found(key))?;
    let mut view = EmbedView::of(&embed, true);
    let activity = state.store.embed_activity(&creator.tenant.id, key).await?;
    for version in view.versions.iter_mut().flatten() {
        for row in activity.iter().filter(|row| row.version == version.version) {
            match row.kind.as_str() {
                "click" => version.clicks = row.total,
                "checkout_started" => version.checkouts_started = row.total,
                _ => {}
            }
        }
    }
    Ok(view)
}

/// The two tags to paste: a container naming the embed and the publishable key, and the
/// script (versioned by its content, so it can be cached for good). The daemon keeps only
/// the key's hash: given the key, it checks it is the creator's and writes it in;
/// otherwise a placeholder stands in its place.
pub fn snippet(
    state: &AppState,
    creator: &Creator,
    key: &str,
    base: &str,
    publishable_key: Option<&str>,
) -> Result<Snippet, ApiError> {
    state
        .embeds
        .of(&creator.tenant.id)
        .embed(key)
        .ok_or_else(|| embed_not_found(key))?;
    let shown_key = match publishable_key {
        None => "pk_YOUR_PUBLISHABLE_KEY",
        Some(given) => {
            let hash = keys::hash(given);
            let mine = state.registry.key(&hash).is_some_and(|entry| {
                entry.kind == KeyKind::Publishable
                    && entry.creator.tenant.id == creator.tenant.id
                    && entry.answers_at(state.usage.now())
            });
            if !mine {
                return Err(ApiError::invalid(
                    "invalid_publishable_key",
                    "publishable_key is not this creator's publishable key",
                ));
            }
            given
        }
    };
    let version = crate::embeds::script::Script::get().version();
    // The base comes from the configuration or the request's Host: written as an
    // attribute, it is escaped like any text.
    let base: String = base
        .chars()
        .map(|c| match c {
            '"' => "&quot;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            c => c.to_string(),
        })
        .collect();
    Ok(Snippet {
        html: format!(
            "<div data-staryer-embed=\"{key}\" data-staryer-key=\"{shown_key}\"></div>\n\
             <script src=\"{base}/embed.js?v={version}\" async></script>"
        ),
    })
}

/// Replaces the origins the creator's widgets may be called from (a change to the
/// creator's profile, recorded as one).
pub async fn set_allowed_origins(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    origins: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    let origins = origins::parse_all(origins)?;
    let creator_id = &creator.tenant.id;
    let catalog = state.embeds.of(creator_id);
    let _turn = catalog.turn.lock().await;
    let json = serde_json::to_string(&origins).expect("strings serialize");
    let before = Vec::clone(&catalog.allowed_origins.load());
    let record = who
        .change(
            creator_id,
            state.usage.now(),
            "profile",
            "update",
            &**creator_id,
        )
        .before(&serde_json::json!({"allowed_origins": before}))
        .after(&serde_json::json!({"allowed_origins": origins}));
    state
        .store
        .set_allowed_origins(creator_id, &json, &record)
        .await?;
    catalog.allowed_origins.store(Arc::new(origins.clone()));
    Ok(origins)
}
