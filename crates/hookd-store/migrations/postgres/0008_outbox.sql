-- The transactional outbox (docs/outbox.md). A producer whose data lives in this
-- database inserts a row into hookd_outbox inside its own transaction; hookd publishes
-- it only once that transaction commits, exactly once, and deletes it. These tables
-- are written by producers with plain SQL, so their times are timestamps with a
-- default rather than hookd's unix milliseconds.

CREATE TABLE hookd_outbox (
    id              BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      TEXT        NOT NULL,
    event_type      TEXT        NOT NULL,
    event_data      JSONB       NOT NULL,
    entity_id       TEXT,
    -- A row whose key (per account) was published before is not published again.
    idempotency_key TEXT,
    callback_url    TEXT,
    callback_id     TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Rows that failed validation, with the reason, kept until an operator deletes them.
CREATE TABLE hookd_outbox_rejected (
    id              BIGINT      PRIMARY KEY,
    account_id      TEXT        NOT NULL,
    event_type      TEXT        NOT NULL,
    event_data      JSONB       NOT NULL,
    entity_id       TEXT,
    idempotency_key TEXT,
    callback_url    TEXT,
    callback_id     TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    reason          TEXT        NOT NULL,
    rejected_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The idempotency keys of published rows, kept as long as the event history.
CREATE TABLE hookd_outbox_keys (
    account_id      TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    event_id        TEXT   NOT NULL,
    published_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, idempotency_key)
);
CREATE INDEX hookd_outbox_keys_by_time ON hookd_outbox_keys (published_at);

-- Whether a consumer is waiting for a notification. The trigger notifies only then:
-- a NOTIFY makes PostgreSQL serialize every notifying transaction's commit (a lock
-- held through its WAL flush), which measured 10,900 -> 3,900 single-row producer
-- commits/s on the benchmark machine. Consumers that are busy draining need no
-- wake-up, so while they are, producers commit without it (docs/outbox.md).
CREATE TABLE hookd_outbox_listening (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    waiting  BOOLEAN NOT NULL
);
INSERT INTO hookd_outbox_listening (waiting) VALUES (true);

-- SECURITY DEFINER: a producer needs INSERT on hookd_outbox and nothing else. The
-- search path is fixed to the one hookd migrated in, so a producer's cannot redirect it.
CREATE FUNCTION hookd_outbox_notify() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF (SELECT waiting FROM hookd_outbox_listening) THEN
        PERFORM pg_notify('hookd_outbox', '');
    END IF;
    RETURN NULL;
END
$$;
-- Once per inserting statement: a producer's bulk insert is at most one wake-up, and
-- PostgreSQL folds repeats in one transaction into one notification at commit (none
-- at rollback).
CREATE TRIGGER hookd_outbox_notify AFTER INSERT ON hookd_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION hookd_outbox_notify();
