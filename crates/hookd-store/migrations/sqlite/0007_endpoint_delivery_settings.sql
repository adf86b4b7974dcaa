-- Per-endpoint delivery settings. `ordering = 'fifo'`: one delivery at a time, oldest
-- pending first (the head is found on `deliveries_by_endpoint`, whose entries are in
-- rowid, that is `seq`, order). `rate_limit_per_second`: at most that many attempt
-- starts per second.
ALTER TABLE endpoints ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'fifo'));
ALTER TABLE endpoints ADD COLUMN rate_limit_per_second INTEGER
    CHECK (rate_limit_per_second BETWEEN 1 AND 10000);
-- A rate-limited endpoint's limit state: a GCRA theoretical arrival time in unix
-- microseconds, written by the claim that admits attempts (as on PostgreSQL).
CREATE TABLE endpoint_pacing (
    endpoint_id TEXT    PRIMARY KEY REFERENCES endpoints (endpoint_id),
    tat_us      INTEGER NOT NULL DEFAULT 0
);
