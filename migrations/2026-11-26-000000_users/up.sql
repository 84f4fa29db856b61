-- The users table alone, so that adopting an application's existing users table is
-- recording this migration as applied (plus the columns it lacks, which `migrate` adds
-- under the names the users layout gives them), never an edit of migration text.
-- Columns WorkOS user fields gained since are added the same way (the users
-- declaration lists them), not by later migrations.
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
