-- Embeds, pricing experiments and customer sessions. Times are Unix seconds (UTC).

-- The origins (scheme://host[:port]) the creator's widgets may be called from, as a JSON
-- array; empty: any origin.
ALTER TABLE creators ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';

-- A widget of one kind (pricing_table, usage_meter, upgrade_prompt) and the version of it
-- that is published.
CREATE TABLE embeds (
    creator_id TEXT NOT NULL REFERENCES creators (id),
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    published_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (creator_id, key)
);

-- Immutable configurations of an embed (JSON), numbered from 1.
CREATE TABLE embed_versions (
    creator_id TEXT NOT NULL,
    embed_key TEXT NOT NULL,
    version BIGINT NOT NULL,
    config TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (creator_id, embed_key, version),
    FOREIGN KEY (creator_id, embed_key) REFERENCES embeds (creator_id, key)
);

-- A/B tests over versions of one embed. variants: JSON [{key, version, weight}], fixed
-- once made; status draft → running → stopped.
CREATE TABLE experiments (
    creator_id TEXT NOT NULL REFERENCES creators (id),
    key TEXT NOT NULL,
    embed_key TEXT NOT NULL,
    variants TEXT NOT NULL,
    goal TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    stopped_at BIGINT,
    PRIMARY KEY (creator_id, key)
);

-- Who saw which variant: one row per visitor ('v:<visitor id>') or customer
-- ('c:<customer id>') and experiment. counted_as names the visitor counted for it: itself,
-- or, for a customer who was first seen anonymously (or the reverse), that first one, so
-- that signing in neither changes the variant nor counts a second visitor. Written by the
-- group commit's fold.
CREATE TABLE experiment_exposures (
    creator_id TEXT NOT NULL,
    experiment_key TEXT NOT NULL,
    visitor TEXT NOT NULL,
    variant TEXT NOT NULL,
    counted_as TEXT NOT NULL,
    exposed_at BIGINT NOT NULL,
    PRIMARY KEY (creator_id, experiment_key, visitor)
);

-- Conversions, one per source (a Checkout Session id, or the conversion id the creator
-- gave), each for a counted visitor; revenue in the price's minor units.
CREATE TABLE experiment_conversions (
    creator_id TEXT NOT NULL,
    experiment_key TEXT NOT NULL,
    source TEXT NOT NULL,
    visitor TEXT NOT NULL,
    variant TEXT NOT NULL,
    revenue BIGINT NOT NULL,
    converted_at BIGINT NOT NULL,
    PRIMARY KEY (creator_id, experiment_key, source)
);

-- Clicks and checkouts started in widgets, per embed version (and variant) and UTC day.
CREATE TABLE embed_activity (
    creator_id TEXT NOT NULL,
    embed_key TEXT NOT NULL,
    version BIGINT NOT NULL,
    experiment_key TEXT NOT NULL,
    variant TEXT NOT NULL,
    kind TEXT NOT NULL,
    day BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (creator_id, embed_key, version, experiment_key, variant, kind, day)
);

-- Customer sessions: signed tokens (JWT) that let a browser act as one customer. The
-- token itself is never stored; its id (the JWT's jti) is, to revoke it.
CREATE TABLE customer_sessions (
    id TEXT PRIMARY KEY,
    creator_id TEXT NOT NULL REFERENCES creators (id),
    customer_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX customer_sessions_by_expiry ON customer_sessions (expires_at);

-- The keys customer sessions are signed with (HMAC-SHA256), made by the daemon. The
-- newest signs; older ones still verify the tokens they signed until those expire.
CREATE TABLE session_signing_keys (
    kid TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
