-- hookd's schema on PostgreSQL: the same tables and columns as the SQLite migrations
-- (one file, since PostgreSQL support starts here). Times are unix milliseconds;
-- integers are BIGINT so both databases decode to i64. `seq` gives lists a stable
-- newest-first order and is never reused.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE accounts (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT   NOT NULL UNIQUE,
    name       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    key_id     TEXT   PRIMARY KEY,
    account_id TEXT   NOT NULL REFERENCES accounts (account_id),
    key_hash   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE endpoints (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id   TEXT   NOT NULL UNIQUE,
    account_id    TEXT   NOT NULL REFERENCES accounts (account_id),
    url           TEXT   NOT NULL,
    -- Comma-separated catalog names (which never contain commas); NULL means all.
    events        TEXT,
    entity_id     TEXT,
    status        TEXT   NOT NULL CHECK (status IN ('enabled', 'disabled')),
    secret        TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    -- Deleted endpoints stay for the delivery history but are invisible to customers.
    deleted_at    BIGINT,
    -- When the current run of failures began (NULL after a success).
    failing_since BIGINT
);
CREATE INDEX endpoints_by_account ON endpoints (account_id, seq) WHERE deleted_at IS NULL;

CREATE TABLE events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     TEXT   NOT NULL UNIQUE,
    account_id   TEXT   NOT NULL REFERENCES accounts (account_id),
    event_type   TEXT   NOT NULL,
    entity_id    TEXT,
    -- Compact JSON of the event_data object, exactly as it will be delivered.
    event_data   TEXT   NOT NULL,
    callback_url TEXT,
    callback_id  TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX events_by_account ON events (account_id, seq);
CREATE INDEX events_by_account_and_type ON events (account_id, event_type, seq);

CREATE TABLE idempotency_records (
    scope           TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    method          TEXT   NOT NULL,
    path            TEXT   NOT NULL,
    request_hash    TEXT   NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('in_progress', 'complete')),
    response_status BIGINT,
    response_body   BYTEA,
    created_at      BIGINT NOT NULL,
    locked_at       BIGINT NOT NULL,
    PRIMARY KEY (scope, idempotency_key, method, path)
);
CREATE INDEX idempotency_records_by_age ON idempotency_records (created_at);

CREATE TABLE deliveries (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id     TEXT   NOT NULL UNIQUE,
    event_id        TEXT   NOT NULL REFERENCES events (event_id),
    account_id      TEXT   NOT NULL,
    -- NULL for a per-request callback, which goes to `callback_url` unsigned.
    endpoint_id     TEXT   REFERENCES endpoints (endpoint_id),
    callback_url    TEXT,
    -- Who shares the per-destination in-flight cap: the endpoint id or the callback URL.
    target          TEXT   NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- While pending: when it is due. A claim moves it to the lease's end, so a crashed
    -- worker's delivery becomes due again by itself. NULL once final.
    next_attempt_at BIGINT,
    -- While an attempt is in flight: when its claim lapses.
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CHECK ((endpoint_id IS NULL) <> (callback_url IS NULL))
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_in_flight ON deliveries (target) WHERE state = 'pending' AND lease_until IS NOT NULL;
CREATE INDEX deliveries_by_event ON deliveries (event_id);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id) WHERE state = 'pending';

CREATE TABLE delivery_attempts (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   TEXT   NOT NULL REFERENCES deliveries (delivery_id),
    attempted_at  BIGINT NOT NULL,
    status_code   BIGINT,
    duration_ms   BIGINT NOT NULL,
    error         TEXT,
    -- The first 1 KiB of the response body.
    response_body TEXT
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, seq);

CREATE TABLE videos (
    seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    video_id            TEXT   NOT NULL UNIQUE,
    account_id          TEXT   NOT NULL REFERENCES accounts (account_id),
    video_type          TEXT   NOT NULL,
    status              TEXT   NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    -- The whole create request, as given, for the renderer.
    request             TEXT   NOT NULL,
    title               TEXT,
    callback_url        TEXT,
    callback_id         TEXT,
    output_format       TEXT   NOT NULL,
    video_url           TEXT,
    thumbnail_url       TEXT,
    gif_url             TEXT,
    captioned_video_url TEXT,
    subtitle_url        TEXT,
    duration            DOUBLE PRECISION,
    folder_id           TEXT,
    output_language     TEXT,
    video_page_url      TEXT,
    failure_code        TEXT,
    failure_message     TEXT,
    created_at          BIGINT NOT NULL,
    completed_at        BIGINT,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX videos_by_status ON videos (status, seq);
CREATE INDEX deliveries_by_age ON deliveries (created_at);
CREATE INDEX events_by_age ON events (created_at);

-- The queue churns: analyze and vacuum it well before the defaults (10 % / 20 % of
-- the table) would, so plans and dead tuples keep up with bursts.
ALTER TABLE deliveries SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_scale_factor = 0.05);
