-- Deleting meters and tiers. Times are Unix seconds (UTC).

-- A meter's or tier's incarnation: random, fixed when it is created (0 for those made
-- before deletes existed). A key deleted and made again is a new incarnation: usage
-- committed for the old one and folded later is dropped instead of landing on the new
-- one, and the Stripe requests made for the new one carry new idempotency keys.
ALTER TABLE meters ADD COLUMN serial INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tiers ADD COLUMN serial INTEGER NOT NULL DEFAULT 0;

-- Stripe objects of deleted meters and tiers still to put away on the connected account:
-- kind 'meter' (a Billing Meter to deactivate), 'product' or 'price' (to archive).
-- Written in the transaction that deletes the meter or tier; removed once Stripe took
-- the request. attempts and last_error say how the tries went.
CREATE TABLE stripe_tidy_ups (
    creator_id TEXT NOT NULL REFERENCES creators (id),
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (creator_id, kind, object_id)
);
