DROP VIEW user_tombstones;
CREATE TABLE user_tombstones (
    user_id     TEXT PRIMARY KEY,
    deleted_at  TIMESTAMPTZ NOT NULL,
    event_id    TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO user_tombstones (user_id, deleted_at, event_id, recorded_at)
    SELECT id, deleted_at, event_id, recorded_at FROM tombstones WHERE entity = 'users';
DROP TABLE tombstones;
DROP TABLE permissions;
DROP TABLE roles;
DROP TABLE organization_memberships;
DROP TABLE organization_domains;
DROP TABLE organizations;
