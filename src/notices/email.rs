//! Notices by email through Resend (`POST /emails`), as an outbox channel. Each notice
//! event becomes one message per recipient (the customer, when its email is known and the
//! kind concerns it; the creator's notice address), rendered from the creator's templates
//! when the event is dispatched.
//!
//! Sent with reqwest rather than the `resend-rs` crate: the outbox needs each answer's
//! status and `Retry-After` to schedule the next try, and sets the `Idempotency-Key`
//! itself (the message id, so an email re-sent after a crash is not a second email);
//! the crate's client retries and rate-limits on its own and folds answers into its error
//! type.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::config::ResendConfig;
use crate::notices::model::{
    effective, escape_html, render, tells_customer, values_of, Template, KINDS,
};
use crate::notices::service::stored;
use crate::outbound::{outcome, Pace, Sent};
use crate::outbox::model::{new_id, Integration, DASHBOARD_LINK};
use crate::outbox::{one_by_one, Batching, Channel};
use crate::schema::printable;
use crate::store::outbox::{MessageRow, NewMessage, OutboxEventRow};
use crate::store::{Store, StoreError};
use crate::tenants::registry::Registry;

/// One creator's notice settings in force, for a batch of its events.
struct Settings {
    notice_email: Option<String>,
    templates: BTreeMap<String, Template>,
    /// Customer id → email, for the customers the batch concerns.
    customer_emails: HashMap<String, String>,
    /// The creator's slug (`{{creator}}`).
    creator: String,
}

pub struct EmailChannel {
    store: Store,
    registry: Arc<Registry>,
    http: reqwest::Client,
    endpoint: String,
    api_key: String,
    from: String,
    pace: Pace,
}

impl EmailChannel {
    /// `None` (and a line in the log) without an API key.
    pub fn from_config(
        config: &ResendConfig,
        store: Store,
        registry: Arc<Registry>,
    ) -> Option<EmailChannel> {
        if config.api_key.is_empty() {
            tracing::info!("notices by email are off: resend.api_key is not set");
            return None;
        }
        Some(EmailChannel {
            store,
            registry,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client builds"),
            endpoint: format!("{}/emails", config.base_url.trim_end_matches('/')),
            api_key: config.api_key.clone(),
            from: config.from.clone(),
            pace: Pace::per_second(config.requests_per_second),
        })
    }

    /// The emails of one event, given its creator's settings and customers' addresses.
    fn messages(&self, event: &OutboxEventRow, settings: &Settings) -> Vec<NewMessage> {
        let kind = event.event_type.as_str();
        let Some(template) = settings.templates.get(kind).filter(|t| t.enabled) else {
            return Vec::new();
        };
        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        let mut recipients = Vec::new();
        if tells_customer(kind) {
            if let Some(email) = data["customer_id"]
                .as_str()
                .and_then(|customer| settings.customer_emails.get(customer))
            {
                recipients.push(email.clone());
            }
        }
        recipients.extend(settings.notice_email.clone());
        recipients.dedup();
        let values = values_of(&data, &settings.creator);
        let subject = render(&template.subject, &values, printable);
        let text = render(&template.text, &values, printable);
        let html = render(&template.html, &values, escape_html);
        recipients
            .into_iter()
            .map(|to| NewMessage {
                id: new_id("msg"),
                integration: Integration::Email.as_str(),
                body: json!({
                    "from": self.from,
                    "to": [to],
                    "subject": subject,
                    "text": text,
                    "html": html,
                })
                .to_string(),
                target: to,
            })
            .collect()
    }

    /// A dashboard invite or password link, to its one person, in the platform's words
    /// (a creator's templates do not apply: the email is the platform's, not theirs).
    fn link_message(&self, event: &OutboxEventRow) -> Vec<NewMessage> {
        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        let (Some(to), Some(url)) = (data["email"].as_str(), data["url"].as_str()) else {
            return Vec::new();
        };
        let hours = data["valid_hours"].as_i64().unwrap_or(1);
        let (subject, opening) = if data["purpose"] == "invite" {
            (
                "You are invited to a Staryer dashboard",
                "You are invited to a creator's dashboard on Staryer. Set your password here:",
            )
        } else {
            (
                "Set a new Staryer dashboard password",
                "Someone asked to set a new password for your Staryer dashboard account. If it \
                 was you, set it here:",
            )
        };
        let closing = format!("The link works once, for {hours} hours.");
        let text = format!("{opening}\n\n{url}\n\n{closing}\n");
        let html = format!(
            "<p>{}</p><p><a href=\"{url}\">{url}</a></p><p>{closing}</p>",
            escape_html(opening),
            url = escape_html(url),
        );
        vec![NewMessage {
            id: new_id("msg"),
            integration: Integration::Email.as_str(),
            body: json!({"from": self.from, "to": [to], "subject": subject, "text": text, "html": html})
                .to_string(),
            target: to.to_string(),
        }]
    }

    /// What one creator's notices of a batch need, read once: its templates and notice
    /// address, and the emails of the customers they concern.
    async fn settings(
        &self,
        creator_id: &str,
        events: &[&OutboxEventRow],
    ) -> Result<Settings, StoreError> {
        let (notice_email, templates) = stored(&self.store, creator_id).await?;
        let customers: Vec<String> = events
            .iter()
            .filter_map(|event| {
                let data: Value = serde_json::from_str(&event.data).ok()?;
                data["customer_id"].as_str().map(String::from)
            })
            .collect();
        Ok(Settings {
            notice_email,
            templates: effective(&templates),
            customer_emails: self.store.customer_emails(creator_id, &customers).await?,
            creator: self
                .registry
                .creator(creator_id)
                .map_or_else(String::new, |c| c.tenant.slug.to_string()),
        })
    }

    async fn send(&self, message: &MessageRow) -> Sent {
        self.pace.turn().await;
        let request = self
            .http
            .post(&self.endpoint)
            .bearer_auth(&self.api_key)
            .header("Idempotency-Key", &message.id)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(message.body.clone());
        outcome(request.send().await).await
    }
}

impl Channel for EmailChannel {
    fn integration(&self) -> Integration {
        Integration::Email
    }

    fn messages_for<'a>(
        &'a self,
        events: &'a [OutboxEventRow],
    ) -> BoxFuture<'a, Result<Vec<Vec<NewMessage>>, StoreError>> {
        Box::pin(async move {
            let is_notice = |event: &&OutboxEventRow| {
                KINDS.iter().any(|(kind, _, _)| *kind == event.event_type)
            };
            let mut by_creator: HashMap<&str, Vec<&OutboxEventRow>> = HashMap::new();
            for event in events.iter().filter(is_notice) {
                by_creator.entry(&event.creator_id).or_default().push(event);
            }
            let mut settings = HashMap::new();
            for (creator_id, theirs) in &by_creator {
                settings.insert(*creator_id, self.settings(creator_id, theirs).await?);
            }
            Ok(events
                .iter()
                .map(|event| match settings.get(event.creator_id.as_str()) {
                    _ if event.event_type == DASHBOARD_LINK => self.link_message(event),
                    Some(theirs) if is_notice(&event) => self.messages(event, theirs),
                    _ => Vec::new(),
                })
                .collect())
        })
    }

    fn deliver<'a>(&'a self, messages: &'a [MessageRow]) -> BoxFuture<'a, Vec<Sent>> {
        Box::pin(one_by_one(messages, |message| self.send(message)))
    }

    /// Each email is its own request (its own idempotency key); a pass hands over a few at
    /// once so that their records go in one transaction.
    fn batching(&self) -> Batching {
        Batching {
            size: 10,
            linger_secs: 0,
        }
    }
}
