-- Trust: named keys with their use and revocation, and the audit log. Times are Unix
-- seconds (UTC).

-- Keys get an id (what the API and the audit log name them by), a name, the time they
-- were last used (written from memory about once a minute), and a revocation or expiry
-- time (a rolled publishable key lives until its overlap ends). Revoked keys stay, so
-- that the audit log's actors keep their names and a key is never made twice.
ALTER TABLE api_keys ADD COLUMN id TEXT;
ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
UPDATE api_keys SET id = 'key_' || lower(hex(randomblob(10))),
    name = CASE kind WHEN 'secret' THEN 'default' ELSE 'publishable' END;
CREATE UNIQUE INDEX api_keys_id ON api_keys (id);
CREATE INDEX api_keys_by_creator ON api_keys (creator_id);

-- The audit log: one record per change, in the transaction of the change. Each record's
-- hash covers its content and the hash of the record before it, so a record altered,
-- removed or slipped in breaks the chain at that point (`staryer audit verify`). Records
-- about a customer name it by a hash of its id (`cus_…`), never by the id, so erasing a
-- customer leaves the chain whole. `creator_id` is empty for the platform's own changes.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    creator_id TEXT NOT NULL,
    at INTEGER NOT NULL,
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

-- The chain's end (the last record's seq and hash: taking it serializes appends), and
-- where retention cut its beginning: records up to `pruned_through` were removed, and
-- `pruned_hash` (the last removed record's hash) anchors the ones left.
CREATE TABLE audit_chain (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    pruned_through INTEGER NOT NULL,
    pruned_hash TEXT NOT NULL
);
INSERT INTO audit_chain VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000',
    0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only: no record changes, and only retention removes records, oldest first, after
-- moving the anchor past them.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > (SELECT pruned_through FROM audit_chain WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only; retention removes only what it has cut off');
END;
CREATE TRIGGER audit_chain_forward BEFORE UPDATE ON audit_chain
WHEN NEW.last_seq < OLD.last_seq OR NEW.pruned_through < OLD.pruned_through
    OR NEW.pruned_through > NEW.last_seq
BEGIN
    SELECT RAISE(ABORT, 'the audit chain only moves forward');
END;

-- Privacy: what an erase leaves so that nothing brings the customer back. A Stripe
-- Customer kept at Stripe (or deleted: its last events still come) is remembered, so that
-- Stripe's webhooks about it are kept as history only and never make the customer again.
CREATE TABLE erased_stripe_customers (
    creator_id TEXT NOT NULL REFERENCES creators (id),
    stripe_customer_id TEXT NOT NULL,
    erased_at INTEGER NOT NULL,
    PRIMARY KEY (creator_id, stripe_customer_id)
);

-- Retention: usage removed from the hourly buckets, summed per customer and meter, so that
-- all-time totals (what is reported to Stripe: `billable_totals`) stay whole.
CREATE TABLE usage_pruned (
    creator_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    meter_key TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (creator_id, customer_id, meter_key)
);

-- A report cursor's epoch goes into its meter events' identifiers: a customer erased and
-- made again with the same id starts a new epoch, so its identifiers never meet the kept
-- reports of the one before. Cursors made before this have none (identifiers unchanged).
ALTER TABLE stripe_report_cursors ADD COLUMN epoch TEXT NOT NULL DEFAULT '';

-- A custom domain names one creator (embed requests are told apart by their Host).
CREATE UNIQUE INDEX creators_by_domain ON creators (custom_domain);

-- Retention removes Stripe's billing events by age, a batch at a time.
CREATE INDEX billing_events_by_age ON billing_events (received_at);
