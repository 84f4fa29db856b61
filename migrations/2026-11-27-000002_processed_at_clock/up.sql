-- now() is the transaction's start time; the processed-event record is the last write
-- of a batch, so clock_timestamp() is within a statement of the commit. Latency
-- figures (event received → applied) and pruning both read this column.
ALTER TABLE processed_events ALTER COLUMN processed_at SET DEFAULT clock_timestamp();
