-- Customer portal sessions (hookd_core::portal): minted by the operator as a one-time
-- link, redeemed once for a credential. Only hashes of the two tokens are kept.
CREATE TABLE portal_sessions (
    session_id      TEXT    PRIMARY KEY,
    account_id      TEXT    NOT NULL REFERENCES accounts (account_id),
    read_only       BOOLEAN NOT NULL,
    link_hash       TEXT    NOT NULL,
    credential_hash TEXT,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    redeemed_at     BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_at);
