-- The raw object: WorkOS's object as it was received (an event's data, a list item, a
-- get answer), minus its secrets (core::secrets), on every synced table sync creates, so
-- that a field WorkOS adds tomorrow is in the database without a release. Rows written
-- before this migration hold '{}' until their next event or backfill.
-- A constant default makes each ADD COLUMN a catalog change only (Postgres 11+): no
-- table rewrite, the ACCESS EXCLUSIVE lock is held for milliseconds.
-- users.raw is not here: the users table may be the application's (migrate --adopt), so
-- `migrate` adds it like any users column the layout declares, to an adopted table
-- only when database.users_raw asks.
ALTER TABLE organizations ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE organization_domains ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE organization_memberships ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE roles ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE permissions ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE directories ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE directory_users ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE directory_groups ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE directory_group_memberships ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE invitations ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE connections ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE groups ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE group_memberships ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE api_keys ADD COLUMN raw JSONB NOT NULL DEFAULT '{}'::jsonb;
