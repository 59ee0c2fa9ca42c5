-- Reconciliation reads, per creator, the reports stamped in a window of time: without this
-- index it would read every report the creator ever made, once an hour.
CREATE INDEX stripe_reports_by_event_time ON stripe_reports (creator_id, event_at);
