-- The B2B model: organizations, their domains, memberships, roles and permissions, and one
-- tombstones table for every entity. No foreign key between synced tables: events arrive
-- in any order, and a membership may arrive before its user or its organization. Every
-- synced table has the same version columns as users: workos_updated_at is the guard
-- (newest wins), created_at / updated_at are this database's own.

CREATE TABLE organizations (
    id                   TEXT PRIMARY KEY,          -- WorkOS organization id
    name                 TEXT NOT NULL,
    external_id          TEXT,
    metadata             JSONB NOT NULL DEFAULT '{}'::jsonb,
    stripe_customer_id   TEXT,
    workos_created_at    TIMESTAMPTZ NOT NULL,
    workos_updated_at    TIMESTAMPTZ NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A domain's verification_token is a secret and is never stored (there is no column).
CREATE TABLE organization_domains (
    id                     TEXT PRIMARY KEY,        -- WorkOS organization domain id
    organization_id        TEXT NOT NULL,
    domain                 TEXT NOT NULL,
    state                  TEXT,
    verification_strategy  TEXT,
    workos_created_at      TIMESTAMPTZ NOT NULL,
    workos_updated_at      TIMESTAMPTZ NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX organization_domains_organization_id_idx ON organization_domains (organization_id);

CREATE TABLE organization_memberships (
    id                 TEXT PRIMARY KEY,            -- WorkOS membership id
    user_id            TEXT NOT NULL,
    organization_id    TEXT NOT NULL,
    status             TEXT NOT NULL,               -- active | inactive | pending
    role_slug          TEXT,
    role_slugs         TEXT[] NOT NULL DEFAULT '{}',
    custom_attributes  JSONB NOT NULL DEFAULT '{}'::jsonb,
    directory_managed  BOOLEAN NOT NULL DEFAULT FALSE,
    workos_created_at  TIMESTAMPTZ NOT NULL,
    workos_updated_at  TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- WorkOS holds one membership per user and organization; the apply step keeps that (a
-- re-created membership replaces the old one in the same statement). Deferred to commit
-- because that statement removes the old row and inserts the new one in parts whose
-- order Postgres does not promise. It also serves the lookups by user.
ALTER TABLE organization_memberships ADD CONSTRAINT organization_memberships_user_org_key
    UNIQUE (user_id, organization_id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX organization_memberships_organization_id_idx ON organization_memberships (organization_id);

-- Environment roles (organization_id NULL, key = slug) and organization roles (key =
-- organization_id:slug): the same slug in both never collides.
CREATE TABLE roles (
    key                TEXT PRIMARY KEY,
    id                 TEXT,                        -- WorkOS role id, when sent
    slug               TEXT NOT NULL,
    organization_id    TEXT,
    name               TEXT,
    description        TEXT,
    type               TEXT,
    permissions        TEXT[] NOT NULL DEFAULT '{}',
    workos_created_at  TIMESTAMPTZ NOT NULL,
    workos_updated_at  TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX roles_organization_id_idx ON roles (organization_id) WHERE organization_id IS NOT NULL;

CREATE TABLE permissions (
    key                TEXT PRIMARY KEY,            -- the slug (unique per environment)
    id                 TEXT,
    slug               TEXT NOT NULL,
    name               TEXT,
    description        TEXT,
    system             BOOLEAN NOT NULL DEFAULT FALSE,
    workos_created_at  TIMESTAMPTZ NOT NULL,
    workos_updated_at  TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Deleted keys of every entity (entity = the table's entity name). WorkOS deletions are
-- permanent: no event, older or newer, brings a tombstoned key back, and nothing that
-- refers to a tombstoned user or organization is created.
CREATE TABLE tombstones (
    -- The default serves only the compatibility view below (writes of the previous
    -- release); this release always names the entity.
    entity      TEXT NOT NULL DEFAULT 'users',
    id          TEXT NOT NULL,
    deleted_at  TIMESTAMPTZ NOT NULL,               -- the deletion event's created_at
    event_id    TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, id)
);
INSERT INTO tombstones (entity, id, deleted_at, event_id, recorded_at)
    SELECT 'users', user_id, deleted_at, event_id, recorded_at FROM user_tombstones;
DROP TABLE user_tombstones;

-- The previous release's workers read and write user_tombstones while a rollout
-- replaces them (migrations run first): the same rows, as an updatable view (inserts
-- through it take the entity's default, `users`; its ON CONFLICT DO NOTHING and deletes
-- work on a simple view). Drop it in a later release, once no such worker can run.
CREATE VIEW user_tombstones AS
    SELECT id AS user_id, deleted_at, event_id, recorded_at FROM tombstones WHERE entity = 'users';
