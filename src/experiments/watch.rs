//! Watches running experiments for a sample ratio mismatch (visitors split off their
//! weights, `srm_alert`): the first time an experiment shows one, an
//! `experiment.srm_detected` event goes to the outbox (once per experiment: its cause is
//! the experiment, so a restart does not tell it again).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::clock::SharedClock;
use crate::embeds::catalog::EmbedRegistry;
use crate::outbox::model::announcement;
use crate::store::Store;

const SRM_DETECTED: &str = "experiment.srm_detected";

/// Looks every `interval`, for as long as the process runs.
pub fn spawn(store: Store, clock: SharedClock, embeds: Arc<EmbedRegistry>, interval: Duration) {
    tokio::spawn(async move {
        // Experiments already told, so a lasting mismatch is not written every pass.
        let mut told: HashSet<(Arc<str>, Arc<str>)> = HashSet::new();
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            for experiment in embeds.running_experiments() {
                let id = (experiment.creator_id.clone(), experiment.key.clone());
                if told.contains(&id) {
                    continue;
                }
                let results = experiment.results();
                if !results.srm_alert {
                    continue;
                }
                let visitors: Vec<_> = results
                    .variants
                    .iter()
                    .map(|v| json!({"variant": v.key, "visitors": v.visitors}))
                    .collect();
                let event = announcement(
                    &experiment.creator_id,
                    format!(
                        "{SRM_DETECTED}:{}:{}",
                        experiment.key, experiment.created_at
                    ),
                    SRM_DETECTED,
                    json!({
                        "experiment": &*experiment.key,
                        "embed": &*experiment.embed,
                        "srm_p_value": results.srm_p_value,
                        "variants": visitors,
                    }),
                    clock.now(),
                );
                match store.announce(&[event]).await {
                    Ok(()) => {
                        told.insert(id);
                    }
                    Err(err) => tracing::debug!(error = %err, "telling an SRM failed; will retry"),
                }
            }
        }
    });
}
