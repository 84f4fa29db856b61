ALTER TABLE organization_memberships DROP CONSTRAINT organization_memberships_live_pair;
-- Soft-deleted memberships would break the pair's uniqueness: they go first.
DELETE FROM organization_memberships WHERE deleted_at IS NOT NULL;
ALTER TABLE organization_memberships ADD CONSTRAINT organization_memberships_user_org_key
    UNIQUE (user_id, organization_id) DEFERRABLE INITIALLY DEFERRED;
DROP INDEX organization_memberships_user_org_idx;
ALTER TABLE organization_memberships DROP COLUMN deleted_at;
ALTER TABLE organizations DROP COLUMN deleted_at;
