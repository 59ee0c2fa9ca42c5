//! Watches running experiments for a sample ratio mismatch (visitors split off their
//! weights, `srm_alert`): the first time an experiment shows one, an
//! `experiment.srm_detected` event goes to the outbox (once per experiment: its cause is
//! the experiment, so a restart does not tell it again).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::clock::{every, SharedClock, Stopping};
use crate::embeds::catalog::EmbedRegistry;
use crate::outbox::model::{announcement, SRM_DETECTED};
use crate::store::Store;

/// Looks every `interval`, until the daemon stops.
pub fn spawn(
    store: Store,
    clock: SharedClock,
    embeds: Arc<EmbedRegistry>,
    interval: Duration,
    stopping: Stopping,
) -> tokio::task::JoinHandle<()> {
    // Experiments already told, so a lasting mismatch is not written every pass.
    let told = Arc::new(Mutex::new(HashSet::new()));
    every(interval, stopping, move || {
        let (store, clock, embeds, told) =
            (store.clone(), clock.clone(), embeds.clone(), told.clone());
        async move { watch(&store, clock.now(), &embeds, &told).await }
    })
}

type Told = Mutex<HashSet<(Arc<str>, Arc<str>)>>;

/// Tells each running experiment's first mismatch.
async fn watch(store: &Store, now: i64, embeds: &EmbedRegistry, told: &Told) {
    for experiment in embeds.running_experiments() {
        let id = (experiment.creator_id.clone(), experiment.key.clone());
        if told.lock().expect("not poisoned").contains(&id) {
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
            now,
        );
        match store.announce(&[event]).await {
            Ok(()) => {
                told.lock().expect("not poisoned").insert(id);
            }
            Err(err) => tracing::debug!(error = %err, "telling an SRM failed; will retry"),
        }
    }
}
