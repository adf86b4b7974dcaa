-- Claims visit destinations rather than due rows (see SELECT_CLAIMABLE): one seek per
-- destination to find the next, one to find its oldest due delivery.
CREATE INDEX deliveries_by_target_due ON deliveries (target, next_attempt_at) WHERE state = 'pending';
