-- Deliveries: one row per (event, destination), the queue the dispatcher claims from,
-- and one row per attempt.

ALTER TABLE events ADD COLUMN callback_url TEXT;
ALTER TABLE events ADD COLUMN callback_id TEXT;

-- Endpoint health: when the current run of failures began (NULL after a success).
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;

CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id     TEXT    NOT NULL UNIQUE,
    event_id        TEXT    NOT NULL REFERENCES events (event_id),
    account_id      TEXT    NOT NULL,
    -- NULL for a per-request callback, which goes to `callback_url` unsigned.
    endpoint_id     TEXT    REFERENCES endpoints (endpoint_id),
    callback_url    TEXT,
    -- Who shares the per-destination in-flight cap: the endpoint id or the callback URL.
    target          TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- While pending: when it is due. A claim moves it to the lease's end, so a crashed
    -- worker's delivery becomes due again by itself. NULL once final.
    next_attempt_at INTEGER,
    -- While an attempt is in flight: when its claim lapses.
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CHECK ((endpoint_id IS NULL) <> (callback_url IS NULL))
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_in_flight ON deliveries (target) WHERE state = 'pending' AND lease_until IS NOT NULL;
CREATE INDEX deliveries_by_event ON deliveries (event_id);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id) WHERE state = 'pending';

CREATE TABLE delivery_attempts (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id   TEXT    NOT NULL REFERENCES deliveries (delivery_id),
    attempted_at  INTEGER NOT NULL,
    status_code   INTEGER,
    duration_ms   INTEGER NOT NULL,
    error         TEXT,
    -- The first 1 KiB of the response body.
    response_body TEXT
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, seq);
