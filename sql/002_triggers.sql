-- Wake-ups and in-flight changes.

-- The channel the NOTIFY trigger uses; `embedworker migrate` redefines this function with the
-- configured channel every time it runs.
CREATE OR REPLACE FUNCTION embedworker_channel() RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT 'embedding_queue'::text $$;

-- One NOTIFY per statement that leaves at least one row due.
CREATE OR REPLACE FUNCTION embedworker_notify_due() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM embedworker_new_rows
               WHERE status = 'queued' AND scheduled_at <= now()) THEN
        PERFORM pg_notify(embedworker_channel(), '');
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS embedworker_notify_insert ON embedding_queue;
CREATE TRIGGER embedworker_notify_insert
    AFTER INSERT ON embedding_queue
    REFERENCING NEW TABLE AS embedworker_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION embedworker_notify_due();

DROP TRIGGER IF EXISTS embedworker_notify_update ON embedding_queue;
CREATE TRIGGER embedworker_notify_update
    AFTER UPDATE ON embedding_queue
    REFERENCING NEW TABLE AS embedworker_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION embedworker_notify_due();

-- When an item's text changes, whatever batch holds it loses its lease, so that batch's result
-- for the old text is never written; an UPDATE that does not set a status itself re-queues the
-- item for the new text.
CREATE OR REPLACE FUNCTION embedworker_content_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.lease_token := NULL;
    NEW.lease_expires_at := NULL;
    NEW.reclaim_count := 0;
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

DROP TRIGGER IF EXISTS embedworker_content_changed ON embedding_queue;
CREATE TRIGGER embedworker_content_changed
    BEFORE UPDATE OF content_text, content_hash ON embedding_queue
    FOR EACH ROW
    WHEN (OLD.content_hash IS DISTINCT FROM NEW.content_hash
          OR OLD.content_text IS DISTINCT FROM NEW.content_text)
    EXECUTE FUNCTION embedworker_content_changed();
