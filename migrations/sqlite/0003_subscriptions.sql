-- Billing round two: the life of a customer's subscription beyond the tier it decides.
-- Times are Unix seconds (UTC).

-- billing_status: NULL while in good standing; 'past_due' once a payment failed (the
-- paid tier is kept until grace_ends_at); 'grace_ended' when the grace ran out (the
-- customer is on the default tier until a paid invoice brings subscribed_tier back).
-- subscribed_tier: the tier the subscription pays for, as the last event that decided it
-- said. pending_tier: a downgrade scheduled for the period's end (a subscription schedule's
-- next phase), until Stripe starts it or another change replaces it.
ALTER TABLE customers ADD COLUMN billing_status TEXT;
-- The invoice whose failed payment started the grace: only its payment ends it.
ALTER TABLE customers ADD COLUMN failed_invoice_id TEXT;
ALTER TABLE customers ADD COLUMN grace_ends_at INTEGER;
ALTER TABLE customers ADD COLUMN subscribed_tier TEXT;
ALTER TABLE customers ADD COLUMN pending_tier TEXT;

CREATE INDEX customers_in_grace ON customers (grace_ends_at) WHERE billing_status = 'past_due';

-- The creator's billing choices (JSON; absent fields take their defaults): proration,
-- when downgrades apply, promotion codes, automatic tax, the grace period.
ALTER TABLE creators ADD COLUMN billing_settings TEXT;
