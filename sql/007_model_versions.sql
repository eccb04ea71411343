-- Models that change and fail one at a time.
--
-- embeddings.embedding_versions records, per model name, the version of the model that made the
-- vector in that model's column: {"e5_small": "1", "bge_m3": "2024-06"}. A model without an
-- entry made its vector before versions were recorded, which counts as version '1' (the default
-- of a model's `version` setting). Adding the column with a constant default rewrites nothing.
ALTER TABLE embeddings
    ADD COLUMN IF NOT EXISTS embedding_versions jsonb NOT NULL DEFAULT '{}'::jsonb;

-- embedding_queue.waiting_for: the models a 'queued' item still needs while they are
-- unavailable (every other model's vector is stored). Such a row is parked: no claim takes it
-- until a worker sees one of those models answer again and sets waiting_for back to NULL.
ALTER TABLE embedding_queue
    ADD COLUMN IF NOT EXISTS waiting_for text[];

-- The claim reads only rows that are not parked; a day of parked rows costs it nothing.
DROP INDEX IF EXISTS embedding_queue_claim_idx;
CREATE INDEX embedding_queue_claim_idx
    ON embedding_queue (priority, scheduled_at, id)
    WHERE status = 'queued' AND waiting_for IS NULL;

-- Serves the release of parked rows when a model answers again.
CREATE INDEX IF NOT EXISTS embedding_queue_waiting_idx
    ON embedding_queue (id) WHERE status = 'queued' AND waiting_for IS NOT NULL;

-- A parked row is not due: its NOTIFY comes when it is released.
CREATE OR REPLACE FUNCTION embedworker_notify_due() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM embedworker_new_rows
               WHERE status = 'queued' AND scheduled_at <= now() AND waiting_for IS NULL) THEN
        PERFORM pg_notify(embedworker_channel(), '');
    END IF;
    RETURN NULL;
END
$$;

-- A new text needs every model again, so it waits for none.
CREATE OR REPLACE FUNCTION embedworker_content_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.lease_token := NULL;
    NEW.lease_expires_at := NULL;
    NEW.reclaim_count := 0;
    NEW.waiting_for := NULL;
    IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
        NEW.status := 'queued';
        NEW.retry_count := 0;
        NEW.error_message := NULL;
        NEW.processing_started_at := NULL;
        NEW.scheduled_at := now();
    END IF;
    RETURN NEW;
END
$$;
