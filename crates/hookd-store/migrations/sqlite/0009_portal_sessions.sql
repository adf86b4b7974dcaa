-- Customer portal sessions (hookd_core::portal): minted by the operator as a one-time
-- link, redeemed once for a credential. Only hashes of the two tokens are kept.
CREATE TABLE portal_sessions (
    session_id      TEXT    PRIMARY KEY,
    account_id      TEXT    NOT NULL REFERENCES accounts (account_id),
    read_only       INTEGER NOT NULL CHECK (read_only IN (0, 1)),
    link_hash       TEXT    NOT NULL,
    credential_hash TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    redeemed_at     INTEGER,
    revoked_at      INTEGER
);
CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_at);
