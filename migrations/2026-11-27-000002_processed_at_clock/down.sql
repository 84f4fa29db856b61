ALTER TABLE processed_events ALTER COLUMN processed_at SET DEFAULT now();
