DROP TABLE directory_group_memberships;
DROP TABLE directory_groups;
DROP TABLE directory_users;
DROP TABLE directories;
