-- Claims visit destinations rather than due rows (see CLAIM): one seek per destination
-- to find the next, one to read its oldest due deliveries.
CREATE INDEX deliveries_by_target_due ON deliveries (target, next_attempt_at, seq) WHERE state = 'pending';
