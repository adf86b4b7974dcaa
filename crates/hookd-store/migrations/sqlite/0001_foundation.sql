-- Foundation: settings, accounts and keys, endpoints, events, idempotency records.
-- Times are unix milliseconds. `seq` columns give lists a stable newest-first order:
-- AUTOINCREMENT never reuses a value, so rows inserted during a walk sort before it.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE accounts (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    key_id     TEXT    PRIMARY KEY,
    account_id TEXT    NOT NULL REFERENCES accounts (account_id),
    key_hash   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE endpoints (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id TEXT    NOT NULL UNIQUE,
    account_id  TEXT    NOT NULL REFERENCES accounts (account_id),
    url         TEXT    NOT NULL,
    -- Comma-separated catalog names (which never contain commas); NULL means all.
    events      TEXT,
    entity_id   TEXT,
    status      TEXT    NOT NULL CHECK (status IN ('enabled', 'disabled')),
    secret      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    -- Deleted endpoints stay for the delivery history but are invisible to customers.
    deleted_at  INTEGER
);
CREATE INDEX endpoints_by_account ON endpoints (account_id, seq) WHERE deleted_at IS NULL;

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT    NOT NULL UNIQUE,
    account_id TEXT    NOT NULL REFERENCES accounts (account_id),
    event_type TEXT    NOT NULL,
    entity_id  TEXT,
    -- Compact JSON of the event_data object, exactly as it will be delivered.
    event_data TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX events_by_account ON events (account_id, seq);
CREATE INDEX events_by_account_and_type ON events (account_id, event_type, seq);

CREATE TABLE idempotency_records (
    scope           TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    path            TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('in_progress', 'complete')),
    response_status INTEGER,
    response_body   BLOB,
    created_at      INTEGER NOT NULL,
    locked_at       INTEGER NOT NULL,
    PRIMARY KEY (scope, idempotency_key, method, path)
);
CREATE INDEX idempotency_records_by_age ON idempotency_records (created_at);
