-- Billing through Stripe Connect. Times are Unix seconds (UTC); report values are whole
-- units, as Stripe's meters take them.

-- One Stripe account belongs to one creator: webhooks find the creator by it.
CREATE UNIQUE INDEX creators_by_stripe_account ON creators (stripe_account_id);

-- The subscription that decides the customer's tier, and the time of the last Stripe
-- event applied to it: events about another subscription, or older ones, change nothing.
ALTER TABLE customers ADD COLUMN stripe_subscription_id TEXT;
ALTER TABLE customers ADD COLUMN subscription_event_at BIGINT;

-- The Billing Meter made on the creator's account for each of its meters that some tier
-- bills overage on, and when: usage from before then was never this meter's to bill.
CREATE TABLE stripe_meters (
    creator_id TEXT NOT NULL REFERENCES creators (id),
    meter_key TEXT NOT NULL,
    account_id TEXT NOT NULL,
    stripe_meter_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (creator_id, meter_key)
);

-- What each priced tier was last synced to: its Product, its recurring Price, its metered
-- overage Prices (JSON object: meter key -> price id), a hash of the definition they were
-- made from (an unchanged tier is not synced again), and how many syncs made objects
-- (part of every idempotency key: a tier changed back is made anew, not replayed).
CREATE TABLE stripe_tiers (
    creator_id TEXT NOT NULL REFERENCES creators (id),
    tier_key TEXT NOT NULL,
    account_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    price_id TEXT NOT NULL,
    overage_prices TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    syncs BIGINT NOT NULL,
    synced_at BIGINT NOT NULL,
    PRIMARY KEY (creator_id, tier_key)
);

-- How many whole units of a customer's all-time durable usage of a meter are accounted
-- for: reported, or passed over while its tier billed nothing. The rest (the fraction,
-- and whatever arrived since) is for the next pass. `next_seq` numbers the reports, so
-- identifiers never repeat.
CREATE TABLE stripe_report_cursors (
    creator_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    meter_key TEXT NOT NULL,
    accounted_units BIGINT NOT NULL,
    next_seq BIGINT NOT NULL,
    PRIMARY KEY (creator_id, customer_id, meter_key)
);

-- Meter events, written with their deterministic identifier before the first attempt and
-- resent with it until Stripe takes them. state: pending, sent or failed (Stripe refused
-- it for good; last_error says why).
CREATE TABLE stripe_reports (
    identifier TEXT PRIMARY KEY,
    creator_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    meter_key TEXT NOT NULL,
    event_name TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    value BIGINT NOT NULL,
    event_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
);

CREATE INDEX stripe_reports_due ON stripe_reports (next_attempt_at) WHERE state = 'pending';
CREATE INDEX stripe_reports_by_creator ON stripe_reports (creator_id, created_at);

-- Every verified Stripe webhook event, once: the primary key makes a redelivery a no-op.
-- Invoice events are the creator's billing history; the others record what changed.
CREATE TABLE billing_events (
    event_id TEXT PRIMARY KEY,
    creator_id TEXT,
    type TEXT NOT NULL,
    customer_id TEXT,
    stripe_customer_id TEXT,
    object_id TEXT,
    amount BIGINT,
    currency TEXT,
    status TEXT,
    stripe_created BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE INDEX billing_events_by_creator ON billing_events (creator_id, received_at);
