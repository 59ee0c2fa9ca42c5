//! PostHog's batch capture API (`POST <host>/batch/`) as an outbox channel. An analytics
//! event becomes one message, a capture event rendered when dispatched; delivery sends up
//! to `posthog.batch_size` of them a request, waiting up to `posthog.batch_linger_ms` for
//! a batch to fill. Each event's `uuid` is made from its message id, so an event sent
//! again after a crash is the same event to PostHog, not a second one.
//!
//! Sent with reqwest rather than the `posthog-rs` crate: its client sends as it is called
//! (the outbox must batch what is durable and record each request's status and
//! `Retry-After`), and does not let an event carry our `uuid`.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::analytics::projects::{Projects, CREATOR_TARGET};
use crate::config::{PosthogConfig, WebhooksConfig};
use crate::outbound::{outcome, Pace, Sent};
use crate::outbox::model::{
    new_id, Integration, EMBED_CHECKOUT_STARTED, EMBED_CLICKED, EMBED_EXPOSED,
    EXPERIMENT_CONVERTED, TIER_CHANGED, USAGE_LIMIT_REACHED, USAGE_OVERAGE_STARTED, USAGE_SUMMARY,
    USAGE_WARNING,
};
use crate::outbox::{in_groups, Batching, Channel};
use crate::store::outbox::{MessageRow, NewMessage, OutboxEventRow};
use crate::store::StoreError;
use crate::tenants::registry::Registry;
use crate::usage::period::rfc3339;
use crate::webhooks::targets;

/// Each batch request gives up after this long (then it is retried).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The events PostHog hears of, by outbox event type, with their PostHog names.
const CAPTURED: &[(&str, &str)] = &[
    (EMBED_EXPOSED, "$feature_flag_called"),
    (EMBED_CLICKED, "embed clicked"),
    (EMBED_CHECKOUT_STARTED, "embed checkout started"),
    (EXPERIMENT_CONVERTED, "experiment converted"),
    (TIER_CHANGED, "tier changed"),
    (USAGE_WARNING, "usage warning"),
    (USAGE_LIMIT_REACHED, "usage limit reached"),
    (USAGE_OVERAGE_STARTED, "usage overage started"),
    (USAGE_SUMMARY, "usage summary"),
];

pub struct PosthogChannel {
    projects: Arc<Projects>,
    registry: Arc<Registry>,
    /// To the platform's project, wherever the operator put it.
    platform_http: reqwest::Client,
    /// To a creator's own project: a host a creator names is held to the same rule as its
    /// webhook endpoints (no internal addresses unless the operator allows them).
    creator_http: reqwest::Client,
    batching: Batching,
    pace: Pace,
}

impl PosthogChannel {
    pub fn new(
        config: &PosthogConfig,
        webhooks: &WebhooksConfig,
        projects: Arc<Projects>,
        registry: Arc<Registry>,
    ) -> Self {
        PosthogChannel {
            projects,
            registry,
            platform_http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .expect("an HTTP client builds"),
            creator_http: targets::client(REQUEST_TIMEOUT, webhooks.allow_private_targets),
            batching: Batching {
                size: config.batch_size,
                // The outbox's clock counts seconds: a linger under one is one.
                linger_secs: config.batch_linger_ms.div_ceil(1_000) as i64,
            },
            pace: Pace::per_second(config.requests_per_second),
        }
    }

    fn message(&self, event: &OutboxEventRow) -> Option<NewMessage> {
        let name = CAPTURED
            .iter()
            .find(|(event_type, _)| *event_type == event.event_type)?
            .1;
        let target = self.projects.target_of(&event.creator_id)?;
        let data: Map<String, Value> = serde_json::from_str(&event.data).unwrap_or_default();
        let creator = self
            .registry
            .creator(&event.creator_id)
            .map_or_else(String::new, |c| c.tenant.slug.to_string());
        let distinct_id = ["customer_id", "visitor"]
            .iter()
            .find_map(|field| data.get(*field).and_then(Value::as_str))
            .map_or_else(|| format!("creator:{creator}"), str::to_string);
        let mut properties = data.clone();
        properties.insert("creator".into(), json!(creator));
        properties.insert("$lib".into(), json!("staryer"));
        if event.event_type == EMBED_EXPOSED {
            properties.insert(
                "$feature_flag".into(),
                data.get("experiment").cloned().unwrap_or_default(),
            );
            properties.insert(
                "$feature_flag_response".into(),
                data.get("variant").cloned().unwrap_or_default(),
            );
        }
        let id = new_id("msg");
        let body = json!({
            "event": name,
            "distinct_id": distinct_id,
            "properties": properties,
            "timestamp": rfc3339(event.occurred_at),
            "uuid": uuid_of(&id),
        });
        Some(NewMessage {
            id,
            integration: Integration::Posthog.as_str(),
            target: target.to_string(),
            body: body.to_string(),
        })
    }

    /// Sends one project's events in one request.
    async fn send(&self, creator_id: &str, target: &str, events: Vec<Value>) -> Sent {
        let Some(project) = self.projects.project(creator_id, target) else {
            return Sent::Refused {
                status: None,
                error: "the PostHog project was removed".into(),
            };
        };
        self.pace.turn().await;
        let url = format!("{}/batch/", project.host.trim_end_matches('/'));
        let body = json!({"api_key": project.api_key, "batch": events});
        let http = if target == CREATOR_TARGET {
            &self.creator_http
        } else {
            &self.platform_http
        };
        outcome(http.post(url).json(&body).send().await).await
    }

    /// Sends one project's messages in one request; a batch PostHog refuses is sent again
    /// one event a request, so that one bad event parks only itself.
    async fn send_batch(&self, creator_id: &str, target: &str, batch: &[&MessageRow]) -> Vec<Sent> {
        let event =
            |message: &MessageRow| serde_json::from_str(&message.body).unwrap_or(Value::Null);
        let together = self
            .send(creator_id, target, batch.iter().map(|m| event(m)).collect())
            .await;
        if batch.len() == 1 || !matches!(together, Sent::Refused { .. }) {
            return vec![together; batch.len()];
        }
        let mut one_by_one = Vec::with_capacity(batch.len());
        for message in batch {
            one_by_one.push(self.send(creator_id, target, vec![event(message)]).await);
        }
        one_by_one
    }
}

/// A UUID (version 4 layout) made from a message id: the same id, the same UUID.
fn uuid_of(id: &str) -> String {
    let mut bytes: [u8; 16] = Sha256::digest(id.as_bytes())[..16]
        .try_into()
        .expect("16 bytes");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl Channel for PosthogChannel {
    fn integration(&self) -> Integration {
        Integration::Posthog
    }

    fn messages_for<'a>(
        &'a self,
        events: &'a [OutboxEventRow],
    ) -> BoxFuture<'a, Result<Vec<Vec<NewMessage>>, StoreError>> {
        Box::pin(async move {
            Ok(events
                .iter()
                .map(|event| self.message(event).into_iter().collect())
                .collect())
        })
    }

    fn deliver<'a>(&'a self, messages: &'a [MessageRow]) -> BoxFuture<'a, Vec<Sent>> {
        Box::pin(async move {
            // One request per project: the platform's, or each creator's own.
            let project = |message: &'a MessageRow| {
                let creator = if message.target == CREATOR_TARGET {
                    message.creator_id.as_str()
                } else {
                    ""
                };
                (creator, message.target.as_str())
            };
            in_groups(messages, project, |(_, target), batch| async move {
                self.send_batch(&batch[0].creator_id, target, &batch).await
            })
            .await
        })
    }

    fn batching(&self) -> Batching {
        self.batching
    }
}

#[cfg(test)]
mod tests {
    use super::uuid_of;

    #[test]
    fn a_message_always_has_the_same_uuid() {
        let uuid = uuid_of("msg_abc");
        assert_eq!(uuid, uuid_of("msg_abc"));
        assert_ne!(uuid, uuid_of("msg_abd"));
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }
}
