-- Directory Sync: directories, their users and groups, and group memberships. No
-- foreign keys (events arrive in any order: a membership may come before its user or
-- its group); a directory's, user's or group's delete removes what refers to it by the
-- declared parent rule in the apply step, and its tombstone stops anything older.
-- Nothing secret is stored: no SCIM endpoint key, no credentials.

CREATE TABLE directories (
    id                 TEXT PRIMARY KEY,            -- WorkOS directory id
    organization_id    TEXT,
    name               TEXT,
    type               TEXT,                        -- the provider: okta scim v2.0, gsuite directory…
    state              TEXT,                        -- as sent: linked, active, deleting, invalid_credentials…
    domains            TEXT[] NOT NULL DEFAULT '{}',
    workos_created_at  TIMESTAMPTZ NOT NULL,
    workos_updated_at  TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE directory_users (
    id                 TEXT PRIMARY KEY,            -- WorkOS directory user id
    directory_id       TEXT NOT NULL,
    organization_id    TEXT,
    idp_id             TEXT,
    email              TEXT,                        -- nullable: IdPs send users without one
    first_name         TEXT,
    last_name          TEXT,
    name               TEXT,
    job_title          TEXT,
    username           TEXT,
    state              TEXT,                        -- as sent: active, inactive, suspended…
    role_slug          TEXT,
    role_slugs         TEXT[] NOT NULL DEFAULT '{}',
    raw_attributes     JSONB NOT NULL DEFAULT '{}'::jsonb,
    custom_attributes  JSONB NOT NULL DEFAULT '{}'::jsonb,
    workos_created_at  TIMESTAMPTZ NOT NULL,
    workos_updated_at  TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A directory's delete removes its users by this column.
CREATE INDEX directory_users_directory_id_idx ON directory_users (directory_id);

CREATE TABLE directory_groups (
    id                 TEXT PRIMARY KEY,            -- WorkOS directory group id
    directory_id       TEXT NOT NULL,
    organization_id    TEXT,
    idp_id             TEXT,
    name               TEXT,
    raw_attributes     JSONB NOT NULL DEFAULT '{}'::jsonb,
    workos_created_at  TIMESTAMPTZ NOT NULL,
    workos_updated_at  TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX directory_groups_directory_id_idx ON directory_groups (directory_id);

-- A (group, user) pair: key = group id ':' user id. No WorkOS id and no version of its
-- own: workos_updated_at is the time WorkOS said so (the user_added event's time, or the
-- listing's). A removal is a tombstone at its event's time.
CREATE TABLE directory_group_memberships (
    key                 TEXT PRIMARY KEY,
    directory_id        TEXT NOT NULL,
    directory_group_id  TEXT NOT NULL,
    directory_user_id   TEXT NOT NULL,
    workos_created_at   TIMESTAMPTZ NOT NULL,
    workos_updated_at   TIMESTAMPTZ NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Deletes of a user, a group or a directory remove memberships by these columns.
CREATE INDEX directory_group_memberships_user_idx ON directory_group_memberships (directory_user_id);
CREATE INDEX directory_group_memberships_group_idx ON directory_group_memberships (directory_group_id);
CREATE INDEX directory_group_memberships_directory_idx ON directory_group_memberships (directory_id);
