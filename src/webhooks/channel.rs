//! Outgoing webhooks as an outbox channel: each event of a type an endpoint subscribes to
//! becomes one message per enabled endpoint; each try POSTs the payload signed per
//! Standard Webhooks, the message id as `webhook-id` (the same on every retry, so a
//! receiver can drop a repeat) and the try's time as `webhook-timestamp`.
//!
//! Every answer but a 2xx is a failure worth retrying, as Standard Webhooks senders do. An
//! endpoint that has failed for `webhooks.disable_after_hours` with no success between is
//! disabled, and its creator told by a `webhook_endpoint.disabled` notice; what it was
//! still owed is parked, to be retried once it works again.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::audit::model::Who;
use crate::clock::SharedClock;
use crate::config::WebhooksConfig;
use crate::outbound::{outcome, Pace, Sent};
use crate::outbox::model::{
    announcement, new_id, Integration, ENDPOINT_DISABLED, WEBHOOK_EVENT_TYPES,
};
use crate::outbox::{in_groups, Batching, Channel};
use crate::sealing::Sealer;
use crate::store::outbox::{EndpointRow, MessageRow, NewMessage, OutboxEventRow};
use crate::store::{Store, StoreError};
use crate::usage::period::rfc3339;
use crate::webhooks::model::EndpointView;
use crate::webhooks::service::secret_owner;
use crate::webhooks::{signing, targets};

/// Messages one delivery pass hands over at once (each still its own request).
const BATCH: usize = 20;

pub struct WebhookChannel {
    store: Store,
    clock: SharedClock,
    sealer: Sealer,
    http: reqwest::Client,
    allow_private: bool,
    disable_after_secs: i64,
    pace: Pace,
}

impl WebhookChannel {
    pub fn new(config: &WebhooksConfig, store: Store, clock: SharedClock, sealer: Sealer) -> Self {
        let timeout = Duration::from_millis(config.request_timeout_ms);
        WebhookChannel {
            store,
            clock,
            sealer,
            http: targets::client(timeout, config.allow_private_targets),
            allow_private: config.allow_private_targets,
            disable_after_secs: config.disable_after_hours as i64 * 3_600,
            pace: Pace::per_second(config.requests_per_second),
        }
    }

    fn messages(&self, event: &OutboxEventRow, endpoints: &[EndpointRow]) -> Vec<NewMessage> {
        let payload = json!({
            "id": event.id,
            "type": event.event_type,
            "timestamp": rfc3339(event.occurred_at),
            "data": serde_json::from_str::<Value>(&event.data).unwrap_or(Value::Null),
        })
        .to_string();
        endpoints
            .iter()
            .filter(|endpoint| endpoint.enabled != 0 && subscribes(endpoint, &event.event_type))
            .map(|endpoint| NewMessage {
                id: new_id("msg"),
                integration: Integration::Webhook.as_str(),
                target: endpoint.id.clone(),
                body: payload.clone(),
            })
            .collect()
    }

    /// Delivers one endpoint's messages, one request each, and notes how it went: the
    /// endpoint is read, checked and its secret opened once for them all.
    async fn send_to(
        &self,
        creator_id: &str,
        endpoint_id: &str,
        messages: &[&MessageRow],
    ) -> Vec<Sent> {
        let endpoint = match self.store.endpoint(creator_id, endpoint_id).await {
            Ok(Some(endpoint)) if endpoint.enabled != 0 => endpoint,
            Ok(_) => return vec![refused("the endpoint is disabled or deleted"); messages.len()],
            Err(err) => {
                return vec![failed(format!("reading the endpoint: {err}")); messages.len()]
            }
        };
        if let Err(err) = targets::check_without_lookup(&endpoint.url, self.allow_private) {
            return vec![refused(err.message); messages.len()];
        }
        let owner = secret_owner(&endpoint.creator_id, &endpoint.id);
        let secret = match self.sealer.open(&owner, &endpoint.secret_sealed) {
            Ok(secret) => secret,
            Err(err) => return vec![refused(err.to_string()); messages.len()],
        };
        let mut sent = Vec::with_capacity(messages.len());
        for message in messages {
            sent.push(self.post(&endpoint, &secret, message).await);
        }
        let succeeded = sent.iter().any(|s| matches!(s, Sent::Delivered { .. }));
        self.note(&endpoint, succeeded).await;
        sent
    }

    /// One signed delivery.
    async fn post(&self, endpoint: &EndpointRow, secret: &str, message: &MessageRow) -> Sent {
        self.pace.turn().await;
        let timestamp = self.clock.now();
        let signature = signing::sign(secret, &message.id, timestamp, &message.body);
        let answer = self
            .http
            .post(&endpoint.url)
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(message.body.clone())
            .send()
            .await;
        match outcome(answer).await {
            // A receiver's 4xx is as likely to be passing as a 5xx: retried.
            Sent::Refused { status, error } => Sent::Failed {
                status,
                error,
                retry_after: None,
            },
            sent => sent,
        }
    }

    /// Keeps the endpoint's failure streak (written only when it starts or ends);
    /// disables the endpoint once the streak is too long.
    async fn note(&self, endpoint: &EndpointRow, succeeded: bool) {
        let now = self.clock.now();
        let failing_since = match (succeeded, endpoint.failing_since) {
            (true, None) => return,
            (false, Some(since)) => Some(since),
            _ => match self
                .store
                .note_endpoint_result(&endpoint.creator_id, &endpoint.id, succeeded, now)
                .await
            {
                Ok(failing_since) => failing_since,
                Err(err) => {
                    tracing::debug!(error = %err, "noting a webhook delivery's result failed");
                    return;
                }
            },
        };
        let Some(since) = failing_since.filter(|since| now - since >= self.disable_after_secs)
        else {
            return;
        };
        let hours = self.disable_after_secs / 3_600;
        let reason = format!("every delivery failed for {hours} hours");
        let notice = announcement(
            &endpoint.creator_id,
            format!("{ENDPOINT_DISABLED}:{}:{since}", endpoint.id),
            ENDPOINT_DISABLED,
            json!({"endpoint_id": endpoint.id, "url": endpoint.url, "failing_since": rfc3339(since)}),
            now,
        );
        // The change as the creator's log shows it: the endpoint's view (no secret).
        let before = EndpointRow {
            failing_since: Some(since),
            ..endpoint.clone()
        };
        let after = EndpointRow {
            enabled: 0,
            disabled_reason: Some(reason.clone()),
            updated_at: now,
            ..before.clone()
        };
        let record = Who::system("webhooks")
            .change(
                &endpoint.creator_id,
                now,
                "webhook_endpoint",
                "disable",
                &endpoint.id,
            )
            .before(&EndpointView::of(&before))
            .after(&EndpointView::of(&after));
        match self
            .store
            .disable_endpoint(
                &endpoint.creator_id,
                &endpoint.id,
                &reason,
                &notice,
                now,
                &record,
            )
            .await
        {
            Ok(true) => {
                tracing::warn!(endpoint = %endpoint.id, "{reason}: webhook endpoint disabled")
            }
            Ok(false) => {}
            Err(err) => {
                tracing::debug!(error = %err, "disabling a failing webhook endpoint failed")
            }
        }
    }
}

fn subscribes(endpoint: &EndpointRow, event_type: &str) -> bool {
    serde_json::from_str::<Vec<String>>(&endpoint.events)
        .is_ok_and(|events| events.iter().any(|e| e == event_type))
}

fn refused(error: impl Into<String>) -> Sent {
    Sent::Refused {
        status: None,
        error: error.into(),
    }
}

fn failed(error: String) -> Sent {
    Sent::Failed {
        status: None,
        error,
        retry_after: None,
    }
}

impl Channel for WebhookChannel {
    fn integration(&self) -> Integration {
        Integration::Webhook
    }

    fn messages_for<'a>(
        &'a self,
        events: &'a [OutboxEventRow],
    ) -> BoxFuture<'a, Result<Vec<Vec<NewMessage>>, StoreError>> {
        Box::pin(async move {
            // Each creator's endpoints, read once for the batch.
            let mut endpoints: HashMap<&str, Vec<EndpointRow>> = HashMap::new();
            let mut all = Vec::with_capacity(events.len());
            for event in events {
                if !WEBHOOK_EVENT_TYPES.contains(&event.event_type.as_str()) {
                    all.push(Vec::new());
                    continue;
                }
                let creator = event.creator_id.as_str();
                if !endpoints.contains_key(creator) {
                    endpoints.insert(creator, self.store.endpoints(creator).await?);
                }
                all.push(self.messages(event, &endpoints[creator]));
            }
            Ok(all)
        })
    }

    fn deliver<'a>(&'a self, messages: &'a [MessageRow]) -> BoxFuture<'a, Vec<Sent>> {
        Box::pin(async move {
            // One endpoint at a time (a batch comes in order of when it is due).
            let endpoint = |m: &'a MessageRow| (m.creator_id.as_str(), m.target.as_str());
            in_groups(
                messages,
                endpoint,
                |(creator_id, endpoint_id), batch| async move {
                    self.send_to(creator_id, endpoint_id, &batch).await
                },
            )
            .await
        })
    }

    fn batching(&self) -> Batching {
        Batching {
            size: BATCH,
            linger_secs: 0,
        }
    }
}
