DROP TABLE api_keys;
DROP TABLE group_memberships;
DROP TABLE groups;
