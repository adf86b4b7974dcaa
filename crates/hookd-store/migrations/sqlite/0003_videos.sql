-- Video jobs that customers create and renderers report on.

CREATE TABLE videos (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id            TEXT    NOT NULL UNIQUE,
    account_id          TEXT    NOT NULL REFERENCES accounts (account_id),
    video_type          TEXT    NOT NULL,
    status              TEXT    NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    -- The whole create request, as given, for the renderer.
    request             TEXT    NOT NULL,
    title               TEXT,
    callback_url        TEXT,
    callback_id         TEXT,
    output_format       TEXT    NOT NULL,
    video_url           TEXT,
    thumbnail_url       TEXT,
    gif_url             TEXT,
    captioned_video_url TEXT,
    subtitle_url        TEXT,
    duration            REAL,
    folder_id           TEXT,
    output_language     TEXT,
    video_page_url      TEXT,
    failure_code        TEXT,
    failure_message     TEXT,
    created_at          INTEGER NOT NULL,
    completed_at        INTEGER,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX videos_by_status ON videos (status, seq);
