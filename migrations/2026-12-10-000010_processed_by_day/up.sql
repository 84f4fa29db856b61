-- processed_events partitioned by day of processed_at, so that `prune` drops whole days
-- instead of deleting rows: at 20 million rows, deleting took 149 s and 3.2 GB of WAL
-- and returned no space (a VACUUM more for that), dropping day partitions 1.5 s and no
-- WAL (docs/performance.md, "processed_events at 20 million rows").
--
-- A partitioned table's unique keys must include the partition key, so event_id is no
-- longer unique across the table: the write path inserts an id only when no partition
-- holds it (each id looked up by itself), under the advisory locks every delivery of
-- that event takes (store::apply), which is what `ON CONFLICT DO NOTHING` did.
--
-- The parent has no index: each day's partition gets its own (made with it, by
-- store::processed), and the existing table keeps its own primary key. A parent index
-- would make Postgres build a new index on the existing table when it is attached (its
-- unique key does not match a plain index), minutes at hundreds of millions of rows
-- under the migration's lock.
--
-- The existing table, rows and indexes kept, becomes the partition of everything before
-- tomorrow (UTC); `prune` deletes its rows as before until tomorrow is older than the
-- cutoff, then drops it whole. Attaching reads it once to check the bound (a sequential
-- scan: seconds per ten million rows), no write.
ALTER TABLE processed_events RENAME TO processed_events_before;
ALTER INDEX processed_events_pkey RENAME TO processed_events_before_pkey;
ALTER INDEX processed_events_processed_at_brin RENAME TO processed_events_before_processed_at;
CREATE TABLE processed_events (
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    user_id      TEXT,
    outcome      TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
) PARTITION BY RANGE (processed_at);
DO $$
BEGIN
    EXECUTE format(
        'ALTER TABLE processed_events ATTACH PARTITION processed_events_before '
        'FOR VALUES FROM (MINVALUE) TO (%L)',
        (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC');
END
$$;
