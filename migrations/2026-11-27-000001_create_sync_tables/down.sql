DROP TABLE sync_cursors;
DROP TABLE processed_events;
DROP TABLE user_tombstones;
