//! The outbox tables (`outbox_events`, `outbox_messages`) and what the integrations keep
//! per creator (notice settings, webhook endpoints, a creator's PostHog project, AI
//! usage). An event is written in the same transaction as its cause, keyed by the cause,
//! so one cause makes one event however often it is retried; its messages are made once,
//! when it is dispatched, and each moves pending → delivered, or parked.
//!
//! The outbox's own loops (dispatch, delivery, pruning, the hourly summaries) work across
//! creators, as the group commit's fold does: those methods take no creator id, and act on
//! rows already made for a creator. Everything a creator asks through the API takes its
//! id first.

use sqlx::Row;

use super::audit::AuditEntry;
use super::{
    multi_row_insert, placeholders, unavailable, Dialect, Store, StoreError, Tx, ROWS_PER_STATEMENT,
};

/// An event to write with its cause (see `outbox_events`).
#[derive(Debug, Clone)]
pub struct Announcement {
    pub id: String,
    pub creator_id: String,
    pub cause: String,
    pub event_type: String,
    /// JSON.
    pub data: String,
    pub occurred_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxEventRow {
    pub id: String,
    pub creator_id: String,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub data: String,
    pub occurred_at: i64,
}

/// A message to make when an event is dispatched.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub integration: &'static str,
    pub target: String,
    pub body: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub event_id: String,
    pub creator_id: String,
    pub integration: String,
    pub target: String,
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub retry_from: i64,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

const MESSAGE_COLUMNS: &str = "id, event_id, creator_id, integration, target, body, status, \
    attempts, next_attempt_at, created_at, retry_from, last_attempt_at, last_status, \
    last_error, delivered_at";

/// What became of one try to send a message.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// `pending` (tried again at `next_attempt_at`), `delivered` or `parked`.
    pub status: &'static str,
    pub at: i64,
    pub next_attempt_at: i64,
    pub http_status: Option<i64>,
    pub error: Option<String>,
}

/// Which messages a listing shows.
#[derive(Debug, Default)]
pub struct MessageFilter<'a> {
    pub integration: Option<&'a str>,
    pub target: Option<&'a str>,
    pub status: Option<&'a str>,
    /// Only messages made before this one (cursor: `created_at`, then `id`).
    pub before: Option<(i64, &'a str)>,
    pub limit: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoticeSettingsRow {
    pub notice_email: Option<String>,
    /// JSON object kind → template.
    pub templates: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: String,
    pub creator_id: String,
    pub url: String,
    /// JSON array of event types.
    pub events: String,
    pub description: String,
    pub secret_sealed: String,
    pub enabled: i64,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a creator changes of an endpoint; `None` leaves it.
#[derive(Debug, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    /// JSON array of event types.
    pub events: Option<String>,
    pub description: Option<String>,
    /// `true` also forgets the endpoint's failures.
    pub enabled: Option<bool>,
}

/// Where a sealed secret is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretColumn {
    WebhookSecret,
    PosthogKey,
    /// A customer-session signing key's secret (`session_signing_keys.secret`); rows of
    /// earlier versions hold it in clear.
    SessionKey,
}

/// One sealed secret, with its row.
#[derive(Debug)]
pub struct SealedSecret {
    pub column: SecretColumn,
    /// Empty for a session signing key (the platform's, not a creator's).
    pub creator_id: String,
    /// The endpoint's id, the creator's (PostHog settings are one per creator), or the
    /// signing key's `kid`.
    pub row_id: String,
    pub sealed: String,
}

const ENDPOINT_COLUMNS: &str = "id, creator_id, url, events, description, secret_sealed, \
    enabled, disabled_reason, failing_since, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PosthogRow {
    pub creator_id: String,
    pub host: String,
    pub api_key_sealed: String,
}

/// One customer's usage of one meter in one hour, from the buckets.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HourTotalRow {
    pub creator_id: String,
    pub customer_id: String,
    pub meter_key: String,
    pub value: i64,
}

impl Store {
    // --- events ---------------------------------------------------------------------------

    /// Writes events inside the caller's transaction; one already written for the same
    /// cause is kept, not doubled.
    pub(crate) async fn insert_announcements(
        dialect: Dialect,
        tx: &mut Tx,
        announcements: &[Announcement],
    ) -> Result<(), sqlx::Error> {
        for chunk in announcements.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_row_insert(
                dialect,
                "INSERT INTO outbox_events (id, creator_id, cause, type, data, occurred_at) VALUES ",
                6,
                chunk.len(),
                "ON CONFLICT (creator_id, cause) DO NOTHING",
            );
            let mut query = sqlx::query(&sql);
            for a in chunk {
                query = query
                    .bind(&a.id)
                    .bind(&a.creator_id)
                    .bind(&a.cause)
                    .bind(&a.event_type)
                    .bind(&a.data)
                    .bind(a.occurred_at);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Writes events whose cause is already durable, or is nothing but the event itself
    /// (a detection, a summary).
    pub async fn announce(&self, announcements: &[Announcement]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        Self::insert_announcements(self.dialect, &mut tx, announcements)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    /// Events not yet dispatched, oldest first.
    pub async fn undispatched_events(&self, limit: i64) -> Result<Vec<OutboxEventRow>, StoreError> {
        sqlx::query_as(
            "SELECT id, creator_id, type, data, occurred_at FROM outbox_events \
             WHERE dispatched_at IS NULL ORDER BY occurred_at, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Makes the events' messages and marks the events dispatched, in one transaction.
    pub async fn dispatch_events(
        &self,
        dispatched: &[(OutboxEventRow, Vec<NewMessage>)],
        now: i64,
    ) -> Result<(), StoreError> {
        let rows: Vec<(&OutboxEventRow, &NewMessage)> = dispatched
            .iter()
            .flat_map(|(event, messages)| messages.iter().map(move |m| (event, m)))
            .collect();
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_row_insert(
                self.dialect,
                "INSERT INTO outbox_messages (id, event_id, creator_id, integration, target, body, \
                 status, next_attempt_at, created_at, retry_from) VALUES ",
                10,
                chunk.len(),
                "ON CONFLICT (event_id, integration, target) DO NOTHING",
            );
            let mut query = sqlx::query(&sql);
            for (event, message) in chunk {
                query = query
                    .bind(&message.id)
                    .bind(&event.id)
                    .bind(&event.creator_id)
                    .bind(message.integration)
                    .bind(&message.target)
                    .bind(&message.body)
                    .bind("pending")
                    .bind(now)
                    .bind(now)
                    .bind(now);
            }
            query.execute(&mut *tx).await.map_err(unavailable)?;
        }
        for chunk in dispatched.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "UPDATE outbox_events SET dispatched_at = {} WHERE id IN ({})",
                placeholders(self.dialect, 1, 1),
                placeholders(self.dialect, 2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(now);
            for (event, _) in chunk {
                query = query.bind(&event.id);
            }
            query.execute(&mut *tx).await.map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    // --- messages -------------------------------------------------------------------------

    /// Pending messages of one integration due by `now`, the most overdue first.
    pub async fn due_messages(
        &self,
        integration: &str,
        now: i64,
        limit: i64,
    ) -> Result<Vec<MessageRow>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE status = 'pending' \
             AND integration = $1 AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $3"
        ))
        .bind(integration)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Records tries of messages, all in one transaction.
    pub async fn record_attempts(
        &self,
        attempts: &[(String, AttemptRecord)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for (message_id, attempt) in attempts {
            sqlx::query(
                "UPDATE outbox_messages SET status = $1, attempts = attempts + 1, \
                 last_attempt_at = $2, next_attempt_at = $3, last_status = $4, last_error = $5, \
                 delivered_at = CASE WHEN $1 = 'delivered' THEN $2 ELSE delivered_at END \
                 WHERE id = $6",
            )
            .bind(attempt.status)
            .bind(attempt.at)
            .bind(attempt.next_attempt_at)
            .bind(attempt.http_status)
            .bind(attempt.error.as_deref())
            .bind(message_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    /// Pending messages of each integration: how many, and when the oldest was made.
    pub async fn pending_by_integration(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT integration, COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox_messages \
             WHERE status = 'pending' GROUP BY integration",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| {
                (
                    row.get::<String, _>("integration"),
                    row.get::<i64, _>("n"),
                    row.get::<i64, _>("oldest"),
                )
            })
            .collect())
    }

    /// A creator's messages, newest first; `None` for every creator (the platform owner).
    pub async fn list_messages(
        &self,
        creator_id: Option<&str>,
        filter: &MessageFilter<'_>,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let mut conditions = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if creator_id.is_some() {
            conditions.push(format!("creator_id = {}", next()));
        }
        if filter.integration.is_some() {
            conditions.push(format!("integration = {}", next()));
        }
        if filter.target.is_some() {
            conditions.push(format!("target = {}", next()));
        }
        if filter.status.is_some() {
            conditions.push(format!("status = {}", next()));
        }
        if filter.before.is_some() {
            let (at, at_again, id) = (next(), next(), next());
            conditions.push(format!(
                "(created_at < {at} OR (created_at = {at_again} AND id < {id}))"
            ));
        }
        let limit = next();
        let filter_sql = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbox_messages {filter_sql} \
             ORDER BY created_at DESC, id DESC LIMIT {limit}"
        );
        let mut query = sqlx::query_as(&sql);
        for value in [creator_id, filter.integration, filter.target, filter.status]
            .into_iter()
            .flatten()
        {
            query = query.bind(value);
        }
        if let Some((at, id)) = filter.before {
            query = query.bind(at).bind(at).bind(id);
        }
        query
            .bind(filter.limit)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    pub async fn message(
        &self,
        creator_id: &str,
        id: &str,
    ) -> Result<Option<MessageRow>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE creator_id = $1 AND id = $2"
        ))
        .bind(creator_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Sends a message again from now (a parked one, or a delivered one asked again);
    /// `None` for any creator's (the platform owner). Answers the message, if found; the
    /// retry's record, made from the message before and after, is written with it.
    pub async fn retry_message(
        &self,
        creator_id: Option<&str>,
        id: &str,
        now: i64,
        audit: impl FnOnce(&MessageRow, &MessageRow) -> AuditEntry,
    ) -> Result<Option<MessageRow>, StoreError> {
        // The admin's retry (no creator) spans creators.
        let mut tx = match creator_id {
            Some(creator_id) => self.begin_tenant(creator_id).await?,
            None => self.begin_write().await?,
        };
        let select = format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbox_messages WHERE id = $1 \
             AND ($2 = '' OR creator_id = $2)"
        );
        let before: Option<MessageRow> = sqlx::query_as(&select)
            .bind(id)
            .bind(creator_id.unwrap_or(""))
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        let Some(before) = before else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE outbox_messages SET status = 'pending', next_attempt_at = $1, retry_from = $1 \
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        let after: MessageRow = sqlx::query_as(&select)
            .bind(id)
            .bind("")
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, &[audit(&before, &after)]).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Some(after))
    }

    /// Deletes up to `limit` delivered or parked messages last tried before `before`, then
    /// up to `limit` events dispatched before it that have no message left; answers how
    /// many rows went. Small batches: no long lock.
    pub async fn prune_outbox(&self, before: i64, limit: i64) -> Result<u64, StoreError> {
        let messages = sqlx::query(
            "DELETE FROM outbox_messages WHERE id IN (SELECT id FROM outbox_messages \
             WHERE status <> 'pending' AND last_attempt_at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(limit)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        let events = sqlx::query(
            "DELETE FROM outbox_events WHERE id IN (SELECT e.id FROM outbox_events e \
             WHERE e.dispatched_at IS NOT NULL AND e.dispatched_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM outbox_messages m WHERE m.event_id = e.id) LIMIT $2)",
        )
        .bind(before)
        .bind(limit)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(messages.rows_affected() + events.rows_affected())
    }

    // --- notices --------------------------------------------------------------------------

    pub async fn notice_settings(
        &self,
        creator_id: &str,
    ) -> Result<Option<NoticeSettingsRow>, StoreError> {
        sqlx::query_as("SELECT notice_email, templates FROM notice_settings WHERE creator_id = $1")
            .bind(creator_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    pub async fn save_notice_settings(
        &self,
        creator_id: &str,
        row: &NoticeSettingsRow,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        sqlx::query(
            "INSERT INTO notice_settings (creator_id, notice_email, templates, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (creator_id) DO UPDATE SET \
             notice_email = excluded.notice_email, templates = excluded.templates, \
             updated_at = excluded.updated_at",
        )
        .bind(creator_id)
        .bind(row.notice_email.as_deref())
        .bind(&row.templates)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    // --- webhook endpoints ----------------------------------------------------------------

    pub async fn insert_endpoint(
        &self,
        row: &EndpointRow,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(&row.creator_id).await?;
        sqlx::query(&format!(
            "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&row.id)
        .bind(&row.creator_id)
        .bind(&row.url)
        .bind(&row.events)
        .bind(&row.description)
        .bind(&row.secret_sealed)
        .bind(row.enabled)
        .bind(row.disabled_reason.as_deref())
        .bind(row.failing_since)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    pub async fn endpoints(&self, creator_id: &str) -> Result<Vec<EndpointRow>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE creator_id = $1 \
             ORDER BY created_at, id"
        ))
        .bind(creator_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    pub async fn endpoint(
        &self,
        creator_id: &str,
        id: &str,
    ) -> Result<Option<EndpointRow>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE creator_id = $1 AND id = $2"
        ))
        .bind(creator_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Changes what `change` names of an endpoint, and only that (a delivery may disable
    /// it meanwhile); answers it as it is now. The change's record, made from the endpoint
    /// before and after, is written with it.
    pub async fn change_endpoint(
        &self,
        creator_id: &str,
        id: &str,
        change: &EndpointChange,
        now: i64,
        audit: impl FnOnce(&EndpointRow, &EndpointRow) -> AuditEntry,
    ) -> Result<Option<EndpointRow>, StoreError> {
        let select = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE creator_id = $1 AND id = $2"
        );
        let mut tx = self.begin_tenant(creator_id).await?;
        let before: Option<EndpointRow> = sqlx::query_as(&select)
            .bind(creator_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        let Some(before) = before else {
            return Ok(None);
        };
        // -1: `enabled` left as it is.
        let enabled = change.enabled.map_or(-1, i64::from);
        sqlx::query(
            "UPDATE webhook_endpoints SET url = COALESCE($1, url), \
             events = COALESCE($2, events), description = COALESCE($3, description), \
             enabled = CASE WHEN $4 = -1 THEN enabled ELSE $4 END, \
             disabled_reason = CASE WHEN $4 = 1 THEN NULL \
                 WHEN $4 = 0 THEN 'disabled by the creator' ELSE disabled_reason END, \
             failing_since = CASE WHEN $4 = 1 THEN NULL ELSE failing_since END, \
             updated_at = $5 WHERE creator_id = $6 AND id = $7",
        )
        .bind(change.url.as_deref())
        .bind(change.events.as_deref())
        .bind(change.description.as_deref())
        .bind(enabled)
        .bind(now)
        .bind(creator_id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        let after: EndpointRow = sqlx::query_as(&select)
            .bind(creator_id)
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        Self::append_audit(&mut tx, &[audit(&before, &after)]).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Some(after))
    }

    /// Deletes an endpoint; its pending messages are parked with it. The deletion's
    /// record, made from the endpoint as it was, is written with it. Answers whether the
    /// endpoint existed.
    pub async fn delete_endpoint(
        &self,
        creator_id: &str,
        id: &str,
        audit: impl FnOnce(&EndpointRow) -> AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        let deleted: Option<EndpointRow> = sqlx::query_as(&format!(
            "DELETE FROM webhook_endpoints WHERE creator_id = $1 AND id = $2 \
             RETURNING {ENDPOINT_COLUMNS}"
        ))
        .bind(creator_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some(deleted) = deleted else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE outbox_messages SET status = 'parked', last_error = 'the endpoint was deleted', \
             last_attempt_at = COALESCE(last_attempt_at, created_at) \
             WHERE creator_id = $1 AND integration = 'webhook' AND target = $2 AND status = 'pending'",
        )
        .bind(creator_id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        Self::append_audit(&mut tx, &[audit(&deleted)]).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    /// Notes a delivery's result on its endpoint: a success clears `failing_since`, a
    /// failure sets it if unset. Answers `failing_since` after.
    pub async fn note_endpoint_result(
        &self,
        creator_id: &str,
        id: &str,
        succeeded: bool,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let query = if succeeded {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = NULL \
                 WHERE creator_id = $1 AND id = $2",
            )
        } else {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) \
                 WHERE creator_id = $2 AND id = $3",
            )
            .bind(now)
        };
        query
            .bind(creator_id)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(self
            .endpoint(creator_id, id)
            .await?
            .and_then(|row| row.failing_since))
    }

    /// Disables an endpoint that failed too long, and writes the event that tells its
    /// creator and the change's record, in one transaction (once: an endpoint already
    /// disabled is left alone).
    pub async fn disable_endpoint(
        &self,
        creator_id: &str,
        id: &str,
        reason: &str,
        notice: &Announcement,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1, updated_at = $2 \
             WHERE creator_id = $3 AND id = $4 AND enabled = 1",
        )
        .bind(reason)
        .bind(now)
        .bind(creator_id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if done.rows_affected() > 0 {
            Self::insert_announcements(self.dialect, &mut tx, std::slice::from_ref(notice))
                .await
                .map_err(unavailable)?;
            Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(done.rows_affected() > 0)
    }

    // --- sealed secrets (both tables above and below, and the session signing keys) -----

    /// Every secret kept sealed: webhook endpoints' signing secrets, creators' PostHog keys,
    /// customer-session signing keys (those of earlier versions still in clear).
    pub async fn sealed_secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT 'webhook', creator_id, id, secret_sealed FROM webhook_endpoints \
             UNION ALL SELECT 'posthog', creator_id, creator_id, api_key_sealed \
             FROM posthog_settings \
             UNION ALL SELECT 'session_key', '', kid, secret FROM session_signing_keys",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|(kind, creator_id, row_id, sealed)| SealedSecret {
                column: match kind.as_str() {
                    "webhook" => SecretColumn::WebhookSecret,
                    "session_key" => SecretColumn::SessionKey,
                    _ => SecretColumn::PosthogKey,
                },
                creator_id,
                row_id,
                sealed,
            })
            .collect())
    }

    /// Replaces a sealed secret by the same secret sealed anew, unless it changed meanwhile.
    pub async fn reseal(&self, secret: &SealedSecret, resealed: &str) -> Result<(), StoreError> {
        let sql = match secret.column {
            SecretColumn::WebhookSecret => {
                "UPDATE webhook_endpoints SET secret_sealed = $1 WHERE id = $2 AND secret_sealed = $3"
            }
            SecretColumn::PosthogKey => {
                "UPDATE posthog_settings SET api_key_sealed = $1 WHERE creator_id = $2 \
                 AND api_key_sealed = $3"
            }
            SecretColumn::SessionKey => {
                "UPDATE session_signing_keys SET secret = $1 WHERE kid = $2 AND secret = $3"
            }
        };
        sqlx::query(sql)
            .bind(resealed)
            .bind(&secret.row_id)
            .bind(&secret.sealed)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    // --- PostHog --------------------------------------------------------------------------

    pub async fn posthog_settings(&self) -> Result<Vec<PosthogRow>, StoreError> {
        sqlx::query_as("SELECT creator_id, host, api_key_sealed FROM posthog_settings")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    pub async fn save_posthog_settings(
        &self,
        row: &PosthogRow,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_tenant(&row.creator_id).await?;
        sqlx::query(
            "INSERT INTO posthog_settings (creator_id, host, api_key_sealed, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (creator_id) DO UPDATE SET \
             host = excluded.host, api_key_sealed = excluded.api_key_sealed, \
             updated_at = excluded.updated_at",
        )
        .bind(&row.creator_id)
        .bind(&row.host)
        .bind(&row.api_key_sealed)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(unavailable)
    }

    /// Deletes the creator's PostHog settings, with the deletion's record (none when there
    /// were none). Answers whether there were.
    pub async fn delete_posthog_settings(
        &self,
        creator_id: &str,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_tenant(creator_id).await?;
        let done = sqlx::query("DELETE FROM posthog_settings WHERE creator_id = $1")
            .bind(creator_id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() > 0 {
            Self::append_audit(&mut tx, std::slice::from_ref(audit)).await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(done.rows_affected() > 0)
    }

    // --- hourly summaries -----------------------------------------------------------------

    pub async fn cursor(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT position FROM outbox_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(row.map(|row| row.get::<i64, _>("position")))
    }

    /// Every customer's usage of every meter in the hour starting at `hour`.
    pub async fn hour_totals(&self, hour: i64) -> Result<Vec<HourTotalRow>, StoreError> {
        sqlx::query_as(
            "SELECT creator_id, customer_id, meter_key, CAST(SUM(value) AS BIGINT) AS value FROM usage_buckets \
             WHERE bucket_start = $1 GROUP BY creator_id, customer_id, meter_key \
             ORDER BY creator_id, customer_id, meter_key",
        )
        .bind(hour)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Writes events and moves a cursor past them, in one transaction.
    pub async fn announce_and_advance(
        &self,
        announcements: &[Announcement],
        cursor: &str,
        position: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        Self::insert_announcements(self.dialect, &mut tx, announcements)
            .await
            .map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO outbox_cursors (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        )
        .bind(cursor)
        .bind(position)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    // --- AI -------------------------------------------------------------------------------

    /// Adds one suggestion's token usage to the creator's day.
    pub async fn add_ai_usage(
        &self,
        creator_id: &str,
        day: i64,
        prompt_tokens: i64,
        completion_tokens: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ai_usage (creator_id, day, requests, prompt_tokens, completion_tokens) \
             VALUES ($1, $2, 1, $3, $4) ON CONFLICT (creator_id, day) DO UPDATE SET \
             requests = ai_usage.requests + 1, \
             prompt_tokens = ai_usage.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = ai_usage.completion_tokens + excluded.completion_tokens",
        )
        .bind(creator_id)
        .bind(day)
        .bind(prompt_tokens)
        .bind(completion_tokens)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// A creator's AI usage: suggestions and tokens, all days summed.
    pub async fn ai_usage(&self, creator_id: &str) -> Result<(i64, i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests, \
             CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
             CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens \
             FROM ai_usage WHERE creator_id = $1",
        )
        .bind(creator_id)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok((
            row.get::<i64, _>("requests"),
            row.get::<i64, _>("prompt_tokens"),
            row.get::<i64, _>("completion_tokens"),
        ))
    }
}
