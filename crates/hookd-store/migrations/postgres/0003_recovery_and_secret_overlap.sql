-- Recovering failed deliveries reads one endpoint's failed deliveries by when they
-- ended (`updated_at`).
CREATE INDEX deliveries_failed_by_endpoint ON deliveries (endpoint_id, updated_at) WHERE state = 'failed';
-- Rotation with overlap: the secret being replaced keeps signing (beside the new one)
-- until `previous_secret_until`. Sealed like `secret`.
ALTER TABLE endpoints ADD COLUMN previous_secret TEXT;
ALTER TABLE endpoints ADD COLUMN previous_secret_until BIGINT;
