-- The metering core. Times are Unix seconds (UTC); quantities are integer millionths.

CREATE TABLE creators (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    custom_domain TEXT,
    branding TEXT NOT NULL DEFAULT '{}',
    stripe_account_id TEXT,
    rate_limit_per_second INTEGER,
    rate_limit_burst INTEGER,
    created_at INTEGER NOT NULL
);

-- Keys are stored as SHA-256 hex of the full key; the prefix is kept to tell them apart.
CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY,
    creator_id TEXT NOT NULL REFERENCES creators (id),
    kind TEXT NOT NULL,
    prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE meters (
    creator_id TEXT NOT NULL REFERENCES creators (id),
    key TEXT NOT NULL,
    -- Position in the creator's meter list: meters are never renumbered.
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    aggregation TEXT NOT NULL,
    reset TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (creator_id, key)
);

CREATE TABLE tiers (
    creator_id TEXT NOT NULL REFERENCES creators (id),
    key TEXT NOT NULL,
    position INTEGER NOT NULL,
    -- The tier's definition as JSON (name, price, caps, features).
    definition TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (creator_id, key)
);

CREATE TABLE customers (
    creator_id TEXT NOT NULL REFERENCES creators (id),
    id TEXT NOT NULL,
    tier_key TEXT,
    -- Billing-cycle anchor: when the current tier was assigned.
    assigned_at INTEGER NOT NULL,
    email TEXT,
    stripe_customer_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (creator_id, id)
);

-- The group commit's log: one record per commit, holding the merged bucket deltas and the
-- idempotency keys of every request in it (JSON). Acknowledged events are durable once
-- their record is here; records are folded into usage_buckets and idempotency_keys in the
-- background and at start, then deleted.
CREATE TABLE usage_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL
);

-- Usage per hour: period totals are the sum (or max) of a period's buckets, and the same
-- rows serve hourly time series. The primary key (creator first) serves both the upserts
-- and the start-up load; no other index is kept up on this hot table.
CREATE TABLE usage_buckets (
    creator_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    meter_key TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    bucket_start INTEGER NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (creator_id, customer_id, meter_key, period_start, bucket_start)
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    creator_id TEXT NOT NULL,
    key TEXT NOT NULL,
    -- The first answer, repeated for every retry.
    result TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (creator_id, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (creator_id, created_at);
