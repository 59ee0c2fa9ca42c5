//! Every creator's embeds and experiments in memory, apart from the tenants' metering
//! state: embed traffic reads here and never contends with ingest. Each creator's catalog
//! is changed one change at a time (`turn`), store first, then swapped in, like a tenant's
//! configuration; readers take a snapshot without locks.
//!
//! The public part of an embed's answer (its config, tiers and meters as the widget sees
//! them) is rendered once per version and kept until the creator's tiers or meters change
//! (the tenant's configuration snapshot is a new one then), so a widget's request costs a
//! map lookup and a copy.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use dashmap::DashMap;

use crate::embeds::model::{Embed, EmbedConfig, EmbedKind, Version};
use crate::experiments::live::{Lifecycle, LiveExperiment};
use crate::experiments::model::{Goal, Status, Variant};
use crate::hashing::FastHash;
use crate::store::Store;
use crate::tenants::config::TenantConfig;
use crate::tenants::loader::LoadError;

/// One creator's embeds, experiments and allowed origins.
#[derive(Default)]
pub struct CreatorEmbeds {
    pub embeds: ArcSwap<BTreeMap<Arc<str>, Arc<Embed>>>,
    pub experiments: ArcSwap<BTreeMap<Arc<str>, Arc<LiveExperiment>>>,
    /// `scheme://host[:port]` of the sites the widgets may be called from; empty: any.
    pub allowed_origins: ArcSwap<Vec<String>>,
    /// One change to this creator's embeds or experiments at a time.
    pub turn: tokio::sync::Mutex<()>,
    rendered: DashMap<(Arc<str>, i64), Rendered, FastHash>,
}

/// A version's public part, with the configuration snapshot it was rendered from.
struct Rendered {
    config: Arc<TenantConfig>,
    parts: Arc<PublicParts>,
}

/// What every visitor of one version gets alike, as JSON: the config, the tiers shown and
/// the creator's meters.
pub struct PublicParts {
    pub config: Box<serde_json::value::RawValue>,
    pub tiers: Box<serde_json::value::RawValue>,
    pub meters: Box<serde_json::value::RawValue>,
}

impl CreatorEmbeds {
    pub fn embed(&self, key: &str) -> Option<Arc<Embed>> {
        self.embeds.load().get(key).cloned()
    }

    pub fn experiment(&self, key: &str) -> Option<Arc<LiveExperiment>> {
        self.experiments.load().get(key).cloned()
    }

    /// The embed's running experiment, if any (at most one runs per embed).
    pub fn running_experiment(&self, embed: &str) -> Option<Arc<LiveExperiment>> {
        self.experiments
            .load()
            .values()
            .find(|e| &*e.embed == embed && e.lifecycle().status == Status::Running)
            .cloned()
    }

    /// Every running experiment of the creator.
    pub fn running_experiments(&self) -> Vec<Arc<LiveExperiment>> {
        self.experiments
            .load()
            .values()
            .filter(|e| e.lifecycle().status == Status::Running)
            .cloned()
            .collect()
    }

    /// Replaces one embed (callers hold `turn`).
    pub fn put_embed(&self, embed: Embed) {
        let mut embeds = (**self.embeds.load()).clone();
        embeds.insert(embed.key.clone(), Arc::new(embed));
        self.embeds.store(Arc::new(embeds));
    }

    /// Adds one experiment (callers hold `turn`).
    pub fn put_experiment(&self, experiment: LiveExperiment) {
        let mut experiments = (**self.experiments.load()).clone();
        experiments.insert(experiment.key.clone(), Arc::new(experiment));
        self.experiments.store(Arc::new(experiments));
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        let allowed = self.allowed_origins.load();
        allowed.is_empty() || allowed.iter().any(|o| o == origin)
    }

    /// The version's public part, rendered again only when `config` is a new snapshot.
    pub fn rendered(
        &self,
        embed: &Embed,
        version: &Version,
        config: &Arc<TenantConfig>,
        render: impl FnOnce() -> PublicParts,
    ) -> Arc<PublicParts> {
        let key = (embed.key.clone(), version.number);
        if let Some(done) = self.rendered.get(&key) {
            if Arc::ptr_eq(&done.config, config) {
                return done.parts.clone();
            }
        }
        let parts = Arc::new(render());
        self.rendered.insert(
            key,
            Rendered {
                config: config.clone(),
                parts: parts.clone(),
            },
        );
        parts
    }
}

/// Every creator's `CreatorEmbeds`.
#[derive(Default)]
pub struct EmbedRegistry {
    creators: DashMap<Arc<str>, Arc<CreatorEmbeds>>,
}

impl EmbedRegistry {
    /// Every creator's running experiments.
    pub fn running_experiments(&self) -> Vec<Arc<LiveExperiment>> {
        self.creators
            .iter()
            .flat_map(|creator| creator.running_experiments())
            .collect()
    }

    /// The creator's catalog (empty for a creator that has made nothing yet).
    pub fn of(&self, creator_id: &Arc<str>) -> Arc<CreatorEmbeds> {
        if let Some(found) = self.creators.get(creator_id) {
            return found.clone();
        }
        self.creators.entry(creator_id.clone()).or_default().clone()
    }

    /// Reads every creator's embeds, experiments, exposures and conversions back (start-up,
    /// after the usage log is folded, so every committed exposure is in its table).
    pub async fn load(&self, store: &Store) -> Result<(), LoadError> {
        for creator in store.load_creators().await? {
            let creator_id: Arc<str> = Arc::from(creator.id.as_str());
            let catalog = self.of(&creator_id);
            let origins: Vec<String> =
                serde_json::from_str(&creator.allowed_origins).map_err(|e| {
                    LoadError::Corrupt(format!("creator {creator_id}: allowed_origins: {e}"))
                })?;
            catalog.allowed_origins.store(Arc::new(origins));
            load_creator(store, &creator_id, &catalog).await?;
        }
        Ok(())
    }
}

async fn load_creator(
    store: &Store,
    creator_id: &Arc<str>,
    catalog: &CreatorEmbeds,
) -> Result<(), LoadError> {
    let corrupt = |what: String| LoadError::Corrupt(format!("creator {creator_id}: {what}"));
    let mut versions: BTreeMap<String, Vec<Arc<Version>>> = BTreeMap::new();
    let rows = store.load_embeds(creator_id).await?;
    let kinds: BTreeMap<&str, EmbedKind> = rows
        .iter()
        .map(|row| {
            EmbedKind::parse(&row.kind)
                .map(|kind| (row.key.as_str(), kind))
                .ok_or_else(|| corrupt(format!("embed {} kind {}", row.key, row.kind)))
        })
        .collect::<Result<_, _>>()?;
    for row in store.load_embed_versions(creator_id).await? {
        let kind = kinds
            .get(row.embed_key.as_str())
            .ok_or_else(|| corrupt(format!("version of unknown embed {}", row.embed_key)))?;
        let config = EmbedConfig::from_stored(*kind, &row.config)
            .map_err(|e| corrupt(format!("embed {} v{}: {e}", row.embed_key, row.version)))?;
        versions
            .entry(row.embed_key)
            .or_default()
            .push(Arc::new(Version {
                number: row.version,
                config,
                created_at: row.created_at,
            }));
    }
    let mut embeds = BTreeMap::new();
    for row in &rows {
        // Versions are numbered 1, 2, … and looked up by position; one is published.
        let numbered = versions.get(&row.key).is_some_and(|list| {
            list.iter()
                .enumerate()
                .all(|(at, v)| v.number == at as i64 + 1)
                && (1..=list.len() as i64).contains(&row.published_version)
        });
        if !numbered {
            return Err(corrupt(format!(
                "embed {}: versions or published version",
                row.key
            )));
        }
        let key: Arc<str> = Arc::from(row.key.as_str());
        embeds.insert(
            key.clone(),
            Arc::new(Embed {
                key,
                kind: kinds[row.key.as_str()],
                versions: versions.remove(&row.key).unwrap_or_default(),
                published: row.published_version,
                created_at: row.created_at,
                updated_at: row.updated_at,
            }),
        );
    }
    catalog.embeds.store(Arc::new(embeds));

    let mut experiments = BTreeMap::new();
    for row in store.load_experiments(creator_id).await? {
        let variants: Vec<Variant> = serde_json::from_str(&row.variants)
            .map_err(|e| corrupt(format!("experiment {} variants: {e}", row.key)))?;
        let status = Status::parse(&row.status)
            .ok_or_else(|| corrupt(format!("experiment {} status {}", row.key, row.status)))?;
        let experiment = LiveExperiment::new(
            creator_id.clone(),
            Arc::from(row.key.as_str()),
            Arc::from(row.embed_key.as_str()),
            variants,
            Goal::parse(Some(&row.goal))
                .map_err(|e| corrupt(format!("experiment {} goal: {}", row.key, e.message)))?,
            row.created_at,
            Lifecycle {
                status,
                started_at: row.started_at,
                stopped_at: row.stopped_at,
            },
        );
        experiments.insert(experiment.key.clone(), Arc::new(experiment));
    }
    for row in store.load_exposures(creator_id).await? {
        if let Some(experiment) = experiments.get(row.experiment_key.as_str()) {
            experiment.load_exposure(&row.visitor, &row.variant, &row.counted_as);
        }
    }
    for row in store.load_conversions(creator_id).await? {
        if let Some(experiment) = experiments.get(row.experiment_key.as_str()) {
            experiment.load_conversion(&row.source, &row.visitor, &row.variant, row.revenue);
        }
    }
    catalog.experiments.store(Arc::new(experiments));
    Ok(())
}
