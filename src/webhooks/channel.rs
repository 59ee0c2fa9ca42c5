//! Outgoing webhooks as an outbox channel: each event of a type an endpoint subscribes to
//! becomes one message per enabled endpoint; each try POSTs the payload signed per
//! Standard Webhooks, the message id as `webhook-id` (the same on every retry, so a
//! receiver can drop a repeat) and the try's time as `webhook-timestamp`.
//!
//! Every answer but a 2xx is a failure worth retrying, as Standard Webhooks senders do. An
//! endpoint that has failed for `webhooks.disable_after_hours` with no success between is
//! disabled, and its creator told by a `webhook_endpoint.disabled` notice; what it was
//! still owed is parked, to be retried once it works again.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::clock::SharedClock;
use crate::config::WebhooksConfig;
use crate::outbound::{outcome, Sent};
use crate::outbox::model::{announcement, new_id, Integration, ENDPOINT_DISABLED};
use crate::outbox::{one_by_one, Channel};
use crate::sealing::Sealer;
use crate::store::outbox::{EndpointRow, MessageRow, NewMessage, OutboxEventRow};
use crate::store::{Store, StoreError};
use crate::usage::period::rfc3339;
use crate::webhooks::service::secret_owner;
use crate::webhooks::{signing, targets};

pub struct WebhookChannel {
    store: Store,
    clock: SharedClock,
    sealer: Sealer,
    http: reqwest::Client,
    allow_private: bool,
    disable_after_secs: i64,
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
        }
    }

    async fn messages(&self, event: &OutboxEventRow) -> Result<Vec<NewMessage>, StoreError> {
        let endpoints = self.store.endpoints(&event.creator_id).await?;
        let payload = json!({
            "id": event.id,
            "type": event.event_type,
            "timestamp": rfc3339(event.occurred_at),
            "data": serde_json::from_str::<Value>(&event.data).unwrap_or(Value::Null),
        })
        .to_string();
        Ok(endpoints
            .into_iter()
            .filter(|endpoint| endpoint.enabled != 0 && subscribes(endpoint, &event.event_type))
            .map(|endpoint| NewMessage {
                id: new_id("msg"),
                integration: Integration::Webhook.as_str(),
                target: endpoint.id,
                body: payload.clone(),
            })
            .collect())
    }

    async fn send(&self, message: &MessageRow) -> Sent {
        let endpoint = match self
            .store
            .endpoint(&message.creator_id, &message.target)
            .await
        {
            Ok(Some(endpoint)) if endpoint.enabled != 0 => endpoint,
            Ok(_) => return refused("the endpoint is disabled or deleted"),
            Err(err) => return failed(format!("reading the endpoint: {err}")),
        };
        if let Err(err) = targets::check(&endpoint.url, self.allow_private).await {
            return refused(err.message);
        }
        let owner = secret_owner(&endpoint.creator_id, &endpoint.id);
        let secret = match self.sealer.open(&owner, &endpoint.secret_sealed) {
            Ok(secret) => secret,
            Err(err) => return refused(err.to_string()),
        };
        let timestamp = self.clock.now();
        let signature = signing::sign(&secret, &message.id, timestamp, &message.body);
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
        let sent = match outcome(answer).await {
            // A receiver's 4xx is as likely to be passing as a 5xx: retried.
            Sent::Refused { status, error } => Sent::Failed {
                status,
                error,
                retry_after: None,
            },
            sent => sent,
        };
        self.note(&endpoint, matches!(sent, Sent::Delivered { .. }))
            .await;
        sent
    }

    /// Keeps the endpoint's failure streak; disables it once the streak is too long.
    async fn note(&self, endpoint: &EndpointRow, succeeded: bool) {
        let now = self.clock.now();
        let failing_since = match self
            .store
            .note_endpoint_result(&endpoint.creator_id, &endpoint.id, succeeded, now)
            .await
        {
            Ok(failing_since) => failing_since,
            Err(err) => {
                tracing::debug!(error = %err, "noting a webhook delivery's result failed");
                return;
            }
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
        match self
            .store
            .disable_endpoint(&endpoint.creator_id, &endpoint.id, &reason, &notice, now)
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
        event: &'a OutboxEventRow,
    ) -> BoxFuture<'a, Result<Vec<NewMessage>, StoreError>> {
        Box::pin(async move {
            if crate::outbox::model::WEBHOOK_EVENT_TYPES.contains(&event.event_type.as_str()) {
                self.messages(event).await
            } else {
                Ok(Vec::new())
            }
        })
    }

    fn deliver<'a>(&'a self, messages: &'a [MessageRow]) -> BoxFuture<'a, Vec<Sent>> {
        Box::pin(one_by_one(messages, |message| self.send(message)))
    }
}
