-- Dashboards, the customer portal and the platform owner's view (issue 13).

-- Usage over every customer of a meter, by hour: summed (max meters: the largest
-- customer's hour). The charts read these, so a year of one meter is 8,760 rows however
-- many customers there are. The fold keeps them beside the buckets, in its transaction.
CREATE TABLE usage_rollups (
    creator_id TEXT NOT NULL,
    meter_key TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (creator_id, meter_key, bucket_start)
);
INSERT INTO usage_rollups (creator_id, meter_key, bucket_start, value)
SELECT b.creator_id, b.meter_key, b.bucket_start,
    CAST(CASE WHEN m.aggregation = 'max' THEN MAX(b.value) ELSE SUM(b.value) END AS BIGINT)
FROM usage_buckets b JOIN meters m ON m.creator_id = b.creator_id AND m.key = b.meter_key
GROUP BY b.creator_id, b.meter_key, b.bucket_start, m.aggregation;

-- The customer list pages newest first (`GET /v1/customers`).
CREATE INDEX customers_newest ON customers (creator_id, created_at, id);

-- Meters a creator keeps out of its customers' portal: a JSON array of meter keys.
ALTER TABLE creators ADD COLUMN portal_hidden_meters TEXT NOT NULL DEFAULT '[]';

-- A portal session's link is good once: exchanging it for a cookie marks it used.
ALTER TABLE customer_sessions ADD COLUMN used_at BIGINT;

-- People who sign in to a creator's dashboard. An email belongs to one creator's team;
-- the password is an argon2id PHC string, absent until an invite is accepted.
CREATE TABLE dashboard_users (
    id TEXT PRIMARY KEY,
    creator_id TEXT NOT NULL REFERENCES creators (id),
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX dashboard_users_by_email ON dashboard_users (email);
CREATE INDEX dashboard_users_by_creator ON dashboard_users (creator_id);

-- Invite and password-reset links: good once, until they expire; stored by their hash.
CREATE TABLE dashboard_tokens (
    token_hash TEXT PRIMARY KEY,
    creator_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- Signed-in browsers of the three faces (`dashboard`: a dashboard user; `portal`: a
-- customer; `admin`: the platform owner, with no creator), by the hash of their cookie.
-- Revoked by sign-out; expired when idle past `last_seen_at` or past `expires_at`. A
-- portal session names the customer session (`customer_sessions.id`) whose link made it:
-- revoking that one ends it too.
CREATE TABLE browser_sessions (
    id_hash TEXT PRIMARY KEY,
    surface TEXT NOT NULL,
    creator_id TEXT,
    subject TEXT NOT NULL,
    parent TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX browser_sessions_by_subject ON browser_sessions (creator_id, subject);
CREATE INDEX browser_sessions_by_expiry ON browser_sessions (expires_at);

-- The new tables with a creator's rows join row-level security (as in 0008).
DO $$
DECLARE
    tenant_table TEXT;
BEGIN
    FOREACH tenant_table IN ARRAY ARRAY['usage_rollups', 'dashboard_users', 'dashboard_tokens',
        'browser_sessions']
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO staryer_tenant',
            tenant_table);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format(
            'CREATE POLICY tenant_rows ON %I USING (current_user <> ''staryer_tenant'' '
            'OR creator_id = current_setting(''staryer.creator_id'', true)) '
            'WITH CHECK (current_user <> ''staryer_tenant'' '
            'OR creator_id = current_setting(''staryer.creator_id'', true))',
            tenant_table);
    END LOOP;
END
$$;
