-- Retention prunes the oldest rows first, by age.
CREATE INDEX deliveries_by_age ON deliveries (created_at);
CREATE INDEX events_by_age ON events (created_at);
