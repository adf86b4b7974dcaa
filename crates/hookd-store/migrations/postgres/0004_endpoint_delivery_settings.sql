-- Per-endpoint delivery settings. `ordering = 'fifo'`: one delivery at a time, oldest
-- pending first. `rate_limit_per_second`: at most that many attempt starts per second,
-- over all instances.
ALTER TABLE endpoints ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'fifo'));
ALTER TABLE endpoints ADD COLUMN rate_limit_per_second BIGINT
    CHECK (rate_limit_per_second BETWEEN 1 AND 10000);
-- A rate-limited endpoint's limit state: a GCRA theoretical arrival time in unix
-- microseconds, written by the claim that admits attempts. A table of its own, locked
-- only by claims: an endpoint row is share-locked by every publish to it, and a claim
-- must neither wait for publishers nor skip the endpoint while they run.
CREATE TABLE endpoint_pacing (
    endpoint_id TEXT   PRIMARY KEY REFERENCES endpoints (endpoint_id),
    tat_us      BIGINT NOT NULL DEFAULT 0
);
-- A FIFO endpoint's head is its pending delivery with the lowest `seq`: order the
-- pending-by-endpoint index by it (it replaces the one on `endpoint_id` alone, so
-- publishing maintains no extra index).
DROP INDEX deliveries_by_endpoint;
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, seq) WHERE state = 'pending';
