-- Recovering failed deliveries reads one endpoint's failed deliveries by when they
-- ended (`updated_at`).
CREATE INDEX deliveries_failed_by_endpoint ON deliveries (endpoint_id, updated_at) WHERE state = 'failed';
-- Rotation with overlap: the secret being replaced keeps signing (beside the new one)
-- until `previous_secret_until`. Sealed like `secret`.
ALTER TABLE endpoints ADD COLUMN previous_secret TEXT;
ALTER TABLE endpoints ADD COLUMN previous_secret_until INTEGER;
-- The W3C traceparent of the publish that stored the event (when hookd exports traces),
-- so each delivery attempt, on any instance, joins the producer's trace.
ALTER TABLE events ADD COLUMN traceparent TEXT;
