-- Trust: named keys with their use and revocation, and the audit log. Times are Unix
-- seconds (UTC).

-- Keys get an id (what the API and the audit log name them by), a name, the time they
-- were last used (written from memory about once a minute), and a revocation or expiry
-- time (a rolled publishable key lives until its overlap ends). Revoked keys stay, so
-- that the audit log's actors keep their names and a key is never made twice.
ALTER TABLE api_keys ADD COLUMN id TEXT;
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
UPDATE api_keys SET id = 'key_' || substr(md5(random()::text || key_hash), 1, 20),
    name = CASE kind WHEN 'secret' THEN 'default' ELSE 'publishable' END;
ALTER TABLE api_keys ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX api_keys_id ON api_keys (id);
CREATE INDEX api_keys_by_creator ON api_keys (creator_id);

-- The audit log: one record per change, in the transaction of the change. Each record's
-- hash covers its content and the hash of the record before it, so a record altered,
-- removed or slipped in breaks the chain at that point (`staryer audit verify`). Records
-- about a customer name it by a hash of its id (`cus_…`), never by the id, so erasing a
-- customer leaves the chain whole. `creator_id` is empty for the platform's own changes.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    creator_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    before_state TEXT,
    after_state TEXT,
    client_addr TEXT,
    request_id TEXT,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_by_creator ON audit_log (creator_id, seq);
CREATE INDEX audit_log_by_object ON audit_log (creator_id, object_type, object_id, seq);

-- The chain's end (the last record's seq and hash: taking its row lock serializes
-- appends), and where retention cut its beginning: records up to `pruned_through` were
-- removed, and `pruned_hash` (the last removed record's hash) anchors the ones left.
CREATE TABLE audit_chain (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    pruned_through BIGINT NOT NULL,
    pruned_hash TEXT NOT NULL
);
INSERT INTO audit_chain VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000',
    0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only: no record changes, and only retention removes records, oldest first, after
-- moving the anchor past them. Triggers bind every role, the table's owner included.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'the audit log is append-only';
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'the audit log is append-only';
    END IF;
    IF OLD.seq > (SELECT pruned_through FROM audit_chain WHERE id = 1) THEN
        RAISE EXCEPTION 'the audit log is append-only; retention removes only what it has cut off';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE FUNCTION audit_chain_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.last_seq < OLD.last_seq OR NEW.pruned_through < OLD.pruned_through
        OR NEW.pruned_through > NEW.last_seq THEN
        RAISE EXCEPTION 'the audit chain only moves forward';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_chain_forward BEFORE UPDATE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_chain_forward();

-- A custom domain names one creator (embed requests are told apart by their Host).
CREATE UNIQUE INDEX creators_by_domain ON creators (custom_domain);

-- Retention removes Stripe's billing events by age, a batch at a time.
CREATE INDEX billing_events_by_age ON billing_events (received_at);

-- Privacy: what an erase leaves so that nothing brings the customer back. A Stripe
-- Customer kept at Stripe (or deleted: its last events still come) is remembered, so that
-- Stripe's webhooks about it are kept as history only and never make the customer again.
CREATE TABLE erased_stripe_customers (
    creator_id TEXT NOT NULL REFERENCES creators (id),
    stripe_customer_id TEXT NOT NULL,
    erased_at BIGINT NOT NULL,
    PRIMARY KEY (creator_id, stripe_customer_id)
);

-- Retention: usage removed from the hourly buckets, summed per customer and meter, so that
-- all-time totals (what is reported to Stripe: `billable_totals`) stay whole.
CREATE TABLE usage_pruned (
    creator_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    meter_key TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (creator_id, customer_id, meter_key)
);

-- A report cursor's epoch goes into its meter events' identifiers: a customer erased and
-- made again with the same id starts a new epoch, so its identifiers never meet the kept
-- reports of the one before. Cursors made before this have none (identifiers unchanged).
ALTER TABLE stripe_report_cursors ADD COLUMN epoch TEXT NOT NULL DEFAULT '';

-- Row-level security: every table with a creator's rows is bound (FORCE: the owner, which
-- the daemon connects as, too) by one policy. Work for one creator runs as the role
-- `staryer_tenant` with `staryer.creator_id` set for its transaction, and sees and writes
-- only that creator's rows, whatever its statements forget to filter. Work that spans
-- creators (group commit, fold, reporter, loader, retention) runs as the daemon's own role,
-- which the policy lets through. Superusers bypass row-level security altogether.
--
-- The role is made once per cluster (making it needs CREATEROLE; an operator can make it
-- beforehand: CREATE ROLE staryer_tenant NOLOGIN; GRANT staryer_tenant TO <daemon user>).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'staryer_tenant') THEN
        CREATE ROLE staryer_tenant NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- made meanwhile by a migration of another database
END
$$;
-- The daemon's role must be able to switch to it (PostgreSQL 16 asks for the SET option,
-- which a role made by a non-superuser is not given to its maker by default).
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 160000 THEN
        IF NOT pg_has_role(current_user, 'staryer_tenant', 'SET') THEN
            EXECUTE format('GRANT staryer_tenant TO %I WITH SET TRUE', current_user);
        END IF;
    ELSIF NOT pg_has_role(current_user, 'staryer_tenant', 'MEMBER') THEN
        EXECUTE format('GRANT staryer_tenant TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO staryer_tenant', current_schema());
END
$$;

DO $$
DECLARE
    tenant_table TEXT;
    owner_column TEXT;
BEGIN
    FOREACH tenant_table IN ARRAY ARRAY['creators', 'api_keys', 'meters', 'tiers', 'customers',
        'usage_buckets', 'idempotency_keys', 'stripe_meters', 'stripe_tiers',
        'stripe_report_cursors', 'stripe_reports', 'billing_events', 'stripe_tidy_ups',
        'embeds', 'embed_versions', 'experiments', 'experiment_exposures',
        'experiment_conversions', 'embed_activity', 'customer_sessions', 'outbox_events',
        'outbox_messages', 'notice_settings', 'webhook_endpoints', 'posthog_settings',
        'ai_usage', 'audit_log', 'erased_stripe_customers', 'usage_pruned']
    LOOP
        owner_column := CASE tenant_table WHEN 'creators' THEN 'id' ELSE 'creator_id' END;
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO staryer_tenant',
            tenant_table);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format(
            'CREATE POLICY tenant_rows ON %I USING (current_user <> ''staryer_tenant'' '
            'OR %I = current_setting(''staryer.creator_id'', true)) '
            'WITH CHECK (current_user <> ''staryer_tenant'' '
            'OR %I = current_setting(''staryer.creator_id'', true))',
            tenant_table, owner_column, owner_column);
    END LOOP;
END
$$;
-- The tenant role is granted the tables above only (a table added later is granted with
-- its policy), and of the audit chain what an append takes. The audit log takes appends
-- only: the tenant role is not even granted more.
GRANT SELECT, UPDATE ON audit_chain TO staryer_tenant;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM staryer_tenant;
