-- The portal's endpoint health reads one endpoint's attempts of the last day: each
-- attempt names its endpoint (NULL for a callback), so that is one index range rather
-- than a join over every delivery.
ALTER TABLE delivery_attempts ADD COLUMN endpoint_id TEXT;
UPDATE delivery_attempts SET endpoint_id = deliveries.endpoint_id
    FROM deliveries WHERE deliveries.delivery_id = delivery_attempts.delivery_id;
CREATE INDEX delivery_attempts_by_endpoint ON delivery_attempts (endpoint_id, attempted_at)
    WHERE endpoint_id IS NOT NULL;
