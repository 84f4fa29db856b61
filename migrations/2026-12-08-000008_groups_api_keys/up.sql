-- AuthKit groups, their memberships, and API keys: mirrored from webhooks and the Events
-- API only (WorkOS serves no list of them that backfill or verify could walk). No foreign
-- keys (events arrive in any order); deletes cascade by the declared parents in the apply
-- step (a group's to its memberships, an organization membership's to its group
-- memberships, an organization's to its groups and keys). Nothing secret is stored: an
-- API key's full value never is (only its obfuscated_value).

CREATE TABLE groups (
    id                 TEXT PRIMARY KEY,            -- WorkOS group id (group_…)
    organization_id    TEXT,
    name               TEXT,
    description        TEXT,
    workos_created_at  TIMESTAMPTZ NOT NULL,
    workos_updated_at  TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX groups_organization_id_idx ON groups (organization_id);

-- A (group, organization membership) pair: key = group id ':' membership id. Its
-- workos_updated_at is the time WorkOS said so (the member_added event's); a removal is
-- a tombstone at its event's time.
CREATE TABLE group_memberships (
    key                         TEXT PRIMARY KEY,
    group_id                    TEXT NOT NULL,
    organization_membership_id  TEXT NOT NULL,
    workos_created_at           TIMESTAMPTZ NOT NULL,
    workos_updated_at           TIMESTAMPTZ NOT NULL,
    created_at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX group_memberships_group_idx ON group_memberships (group_id);
CREATE INDEX group_memberships_membership_idx ON group_memberships (organization_membership_id);

CREATE TABLE api_keys (
    id                 TEXT PRIMARY KEY,            -- WorkOS API key id (api_key_…)
    owner_type         TEXT,                        -- organization, user
    owner_id           TEXT,
    organization_id    TEXT,                        -- the owner, or the user owner's organization
    name               TEXT,
    obfuscated_value   TEXT,                        -- sk_…1234; never the key itself
    permissions        TEXT[] NOT NULL DEFAULT '{}',
    last_used_at       TIMESTAMPTZ,
    expires_at         TIMESTAMPTZ,                 -- NULL: never
    workos_created_at  TIMESTAMPTZ NOT NULL,
    workos_updated_at  TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_organization_id_idx ON api_keys (organization_id);
