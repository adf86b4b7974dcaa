-- The portal's endpoint health reads one endpoint's attempts of the last day: each
-- attempt names its endpoint (NULL for a callback), so that is one index range rather
-- than a join over every delivery.
ALTER TABLE delivery_attempts ADD COLUMN endpoint_id TEXT;
UPDATE delivery_attempts SET endpoint_id =
    (SELECT endpoint_id FROM deliveries WHERE deliveries.delivery_id = delivery_attempts.delivery_id);
CREATE INDEX delivery_attempts_by_endpoint ON delivery_attempts (endpoint_id, attempted_at)
    WHERE endpoint_id IS NOT NULL;

-- The event log's time range: the lowest and highest seq of an account's events in a
-- window, so the newest-first walk starts at the window (seq is the rowid here).
CREATE INDEX events_by_account_and_time ON events (account_id, created_at);

-- The event log's status filter: an account's failed and cancelled deliveries, so
-- looking for a rare state reads only those (pending ones are found through the
-- queue's index of pending deliveries). Written only when a delivery ends that way.
CREATE INDEX deliveries_ended_badly_by_account ON deliveries (account_id, state, event_id)
    WHERE state IN ('failed', 'cancelled');
