//! PostHog's batch capture API (`POST <host>/batch/`) as an outbox channel. An analytics
//! event becomes one message, a capture event rendered when dispatched; delivery sends up
//! to `posthog.batch_size` of them a request, waiting up to `posthog.batch_linger_ms` for
//! a batch to fill. Each event's `uuid` is made from its message id, so an event sent
//! again after a crash is the same event to PostHog, not a second one.
//!
//! Sent with reqwest rather than the `posthog-rs` crate: its client sends as it is called
//! (the outbox must batch what is durable and record each request's status and
//! `Retry-After`), and does not let an event carry our `uuid`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::analytics::projects::{Projects, CREATOR_TARGET};
use crate::config::{PosthogConfig, WebhooksConfig};
use crate::outbox::model::{
    new_id, Integration, EMBED_CHECKOUT_STARTED, EMBED_CLICKED, EMBED_EXPOSED,
    EXPERIMENT_CONVERTED, USAGE_SUMMARY,
};
use crate::outbox::{judge, unreachable, Batching, Channel, Sent};
use crate::store::outbox::{MessageRow, NewMessage, OutboxEventRow};
use crate::store::StoreError;
use crate::tenants::registry::Registry;
use crate::usage::period::rfc3339;
use crate::webhooks::targets::PublicOnly;

/// The events PostHog hears of, by outbox event type, with their PostHog names.
const CAPTURED: &[(&str, &str)] = &[
    (EMBED_EXPOSED, "$feature_flag_called"),
    (EMBED_CLICKED, "embed clicked"),
    (EMBED_CHECKOUT_STARTED, "embed checkout started"),
    (EXPERIMENT_CONVERTED, "experiment converted"),
    ("customer.tier_changed", "tier changed"),
    ("usage.warning", "usage warning"),
    ("usage.limit_reached", "usage limit reached"),
    ("usage.overage_started", "usage overage started"),
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
}

impl PosthogChannel {
    pub fn new(
        config: &PosthogConfig,
        webhooks: &WebhooksConfig,
        projects: Arc<Projects>,
        registry: Arc<Registry>,
    ) -> Self {
        let client = || reqwest::Client::builder().timeout(Duration::from_secs(30));
        let mut creator_http = client().redirect(reqwest::redirect::Policy::none());
        if !webhooks.allow_private_targets {
            creator_http = creator_http.dns_resolver(Arc::new(PublicOnly));
        }
        PosthogChannel {
            projects,
            registry,
            platform_http: client().build().expect("an HTTP client builds"),
            creator_http: creator_http.build().expect("an HTTP client builds"),
            batching: Batching {
                size: config.batch_size,
                linger_secs: (config.batch_linger_ms / 1_000) as i64,
            },
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
        let url = format!("{}/batch/", project.host.trim_end_matches('/'));
        let body = json!({"api_key": project.api_key, "batch": events});
        let http = if target == CREATOR_TARGET {
            &self.creator_http
        } else {
            &self.platform_http
        };
        match http.post(url).json(&body).send().await {
            Ok(response) => {
                let (status, headers) = (response.status(), response.headers().clone());
                judge(status, &headers, &response.text().await.unwrap_or_default())
            }
            Err(err) => unreachable(&err),
        }
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
        event: &'a OutboxEventRow,
    ) -> BoxFuture<'a, Result<Vec<NewMessage>, StoreError>> {
        Box::pin(async move { Ok(self.message(event).into_iter().collect()) })
    }

    fn deliver<'a>(&'a self, messages: &'a [MessageRow]) -> BoxFuture<'a, Vec<Sent>> {
        Box::pin(async move {
            // One request per project: the platform's, or each creator's own.
            let mut groups: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
            for (at, message) in messages.iter().enumerate() {
                let creator = if message.target == CREATOR_TARGET {
                    message.creator_id.as_str()
                } else {
                    ""
                };
                groups
                    .entry((creator, message.target.as_str()))
                    .or_default()
                    .push(at);
            }
            let mut sent = vec![None; messages.len()];
            for ((_, target), members) in groups {
                let creator_id = &messages[members[0]].creator_id;
                let events = members
                    .iter()
                    .map(|&at| serde_json::from_str(&messages[at].body).unwrap_or(Value::Null))
                    .collect();
                let outcome = self.send(creator_id, target, events).await;
                for at in members {
                    sent[at] = Some(outcome.clone());
                }
            }
            sent.into_iter()
                .map(|s| s.expect("every message is in a group"))
                .collect()
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
