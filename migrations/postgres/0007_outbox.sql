-- Notices, outgoing webhooks, analytics and AI: the durable outbox they share, and what
-- each integration keeps per creator. Times are Unix seconds (UTC).

-- Something that happened and may be told to the creator's world: written in the same
-- transaction as its cause. `cause` names the cause (a threshold crossing is one per
-- customer, meter, period and kind), so a cause retried, replayed or re-detected after a
-- restart makes no second event. `data` is the event's JSON. `dispatched_at` is set once
-- its messages are made.
CREATE TABLE outbox_events (
    id TEXT PRIMARY KEY,
    creator_id TEXT NOT NULL REFERENCES creators (id),
    cause TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    dispatched_at BIGINT,
    UNIQUE (creator_id, cause)
);
CREATE INDEX outbox_events_undispatched ON outbox_events (occurred_at) WHERE dispatched_at IS NULL;
CREATE INDEX outbox_events_dispatched ON outbox_events (dispatched_at) WHERE dispatched_at IS NOT NULL;

-- One thing to send to one integration's target (an email address, a webhook endpoint,
-- a PostHog project), rendered when the event was dispatched. status: pending, delivered
-- or parked (given up; listed and retryable by hand). `retry_from` starts the
-- give-up clock (made, or retried by hand).
CREATE TABLE outbox_messages (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES outbox_events (id),
    creator_id TEXT NOT NULL,
    integration TEXT NOT NULL,
    target TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    retry_from BIGINT NOT NULL,
    last_attempt_at BIGINT,
    last_status BIGINT,
    last_error TEXT,
    delivered_at BIGINT,
    UNIQUE (event_id, integration, target)
);
CREATE INDEX outbox_messages_due ON outbox_messages (integration, next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_messages_by_target ON outbox_messages (creator_id, integration, target, created_at);
CREATE INDEX outbox_messages_done ON outbox_messages (last_attempt_at) WHERE status <> 'pending';

-- Which notices a creator sends, where, and in what words: templates is a JSON object of
-- kind → {enabled, subject, text, html}; a kind absent uses the built-in template.
CREATE TABLE notice_settings (
    creator_id TEXT PRIMARY KEY REFERENCES creators (id),
    notice_email TEXT,
    templates TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A creator's webhook endpoints. events: JSON array of event types. The signing secret
-- is sealed (never stored in clear). failing_since: the first failure since the last
-- success; an endpoint failing too long is disabled (enabled = 0, disabled_reason).
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    creator_id TEXT NOT NULL REFERENCES creators (id),
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT NOT NULL,
    secret_sealed TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    disabled_reason TEXT,
    failing_since BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_creator ON webhook_endpoints (creator_id, created_at);

-- A creator's own PostHog project: host and sealed project key.
CREATE TABLE posthog_settings (
    creator_id TEXT PRIMARY KEY REFERENCES creators (id),
    host TEXT NOT NULL,
    api_key_sealed TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The hourly usage summaries read one hour of every customer's buckets.
CREATE INDEX usage_buckets_by_hour ON usage_buckets (bucket_start);

-- Where a background job that makes events has got to (the hourly usage summaries: the
-- last hour summarized).
CREATE TABLE outbox_cursors (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

-- AI suggestions asked per creator and UTC day, with the tokens they cost.
CREATE TABLE ai_usage (
    creator_id TEXT NOT NULL REFERENCES creators (id),
    day BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    PRIMARY KEY (creator_id, day)
);
