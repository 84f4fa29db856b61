-- Back to one table: the rows of every partition, the primary key on event_id.
CREATE TABLE processed_events_one (
    event_id     TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
    user_id      TEXT,
    outcome      TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO processed_events_one SELECT * FROM processed_events ON CONFLICT DO NOTHING;
DROP TABLE processed_events;
ALTER TABLE processed_events_one RENAME TO processed_events;
ALTER INDEX processed_events_one_pkey RENAME TO processed_events_pkey;
CREATE INDEX processed_events_processed_at_brin ON processed_events USING brin (processed_at);
