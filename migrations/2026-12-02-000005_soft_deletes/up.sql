-- Soft deletes (sync.organization_delete / sync.membership_delete = "soft"): the row of an
-- organization or membership WorkOS deleted may stay, with deleted_at set, so that an
-- application's foreign keys to it keep working. (The users table's deleted_at is added
-- by `migrate` itself under the name the users layout gives it: an adopted table may
-- call it deletedAt.)
ALTER TABLE organizations ADD COLUMN deleted_at TIMESTAMPTZ;
ALTER TABLE organization_memberships ADD COLUMN deleted_at TIMESTAMPTZ;

-- One live membership per user and organization: a soft-deleted membership no longer
-- holds its pair, so a re-created one can be stored beside it. A unique constraint
-- cannot be partial, an exclusion constraint can, and it stays deferred to commit (the
-- apply statement removes the old holder and inserts the new one in parts whose order
-- Postgres does not promise). Its index is partial, so the lookups by user (the pair
-- load, a user's delete) get a plain index of their own.
CREATE INDEX organization_memberships_user_org_idx
    ON organization_memberships (user_id, organization_id);
ALTER TABLE organization_memberships DROP CONSTRAINT organization_memberships_user_org_key;
ALTER TABLE organization_memberships ADD CONSTRAINT organization_memberships_live_pair
    EXCLUDE USING btree (user_id WITH =, organization_id WITH =) WHERE (deleted_at IS NULL)
    DEFERRABLE INITIALLY DEFERRED;
