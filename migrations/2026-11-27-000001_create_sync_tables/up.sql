-- Deleted users. WorkOS deletions are permanent: no event, older or newer, brings a
-- tombstoned id back.
CREATE TABLE user_tombstones (
    user_id     TEXT PRIMARY KEY,
    deleted_at  TIMESTAMPTZ NOT NULL,               -- the deletion event's created_at
    event_id    TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Event ids already applied (dedupe across webhook retries, the Events API and DLQ
-- replays). Prunable after WorkOS's retry window (3 days) has passed.
CREATE TABLE processed_events (
    event_id     TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
    user_id      TEXT,
    outcome      TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_processed_at_idx ON processed_events (processed_at);

-- Cursors of the reconciler (Events API) and the backfill (users list).
CREATE TABLE sync_cursors (
    name        TEXT PRIMARY KEY,
    cursor      TEXT,
    last_run_at TIMESTAMPTZ,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
