-- The application's users, one row per live WorkOS user. Sync writes only the
-- WorkOS-derived columns; bio and details belong to the application, and usertag is set
-- once at creation and never changed by sync.
CREATE TABLE users (
    id                 TEXT PRIMARY KEY,            -- WorkOS user id
    email              TEXT NOT NULL,
    name               TEXT,                        -- first + last name, trimmed
    usertag            TEXT NOT NULL UNIQUE,        -- from the email's local part, once
    avatar_url         TEXT,                        -- WorkOS profile_picture_url
    bio                TEXT,                        -- app-owned
    details            JSONB,                       -- app-owned
    first_name         TEXT,
    last_name          TEXT,
    email_verified     BOOLEAN NOT NULL DEFAULT FALSE,
    external_id        TEXT,
    metadata           JSONB NOT NULL DEFAULT '{}'::jsonb,
    locale             TEXT,
    last_sign_in_at    TIMESTAMPTZ,
    workos_created_at  TIMESTAMPTZ NOT NULL,
    workos_updated_at  TIMESTAMPTZ NOT NULL,        -- the version guard: newest wins
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

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
