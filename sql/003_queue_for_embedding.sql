-- queue_for_embedding(type, id, text, priority): the text-taking variant. Studify's own
-- queue_for_embedding(type, id, priority) has a different signature and is left alone.
CREATE OR REPLACE FUNCTION queue_for_embedding(
    p_content_type text,
    p_content_id bigint,
    p_content_text text,
    p_priority integer DEFAULT 5
) RETURNS boolean
    LANGUAGE plpgsql AS $$
DECLARE
    v_text text := btrim(regexp_replace(coalesce(p_content_text, ''), '\s+', ' ', 'g'));
    v_hash text;
BEGIN
    IF v_text = '' THEN
        RETURN false;
    END IF;
    v_hash := encode(sha256(convert_to(v_text, 'UTF8')), 'hex');
    IF EXISTS (SELECT 1 FROM embeddings e
               WHERE e.content_type = p_content_type
                 AND e.content_id = p_content_id
                 AND e.content_hash = v_hash
                 AND e.status = 'completed') THEN
        RETURN false;
    END IF;
    INSERT INTO embedding_queue AS q
        (content_type, content_id, content_text, content_hash, priority, status,
         scheduled_at, retry_count, error_message)
    VALUES (p_content_type, p_content_id, v_text, v_hash, p_priority, 'queued', now(), 0, NULL)
    ON CONFLICT (content_type, content_id) DO UPDATE
        SET content_text = EXCLUDED.content_text,
            content_hash = EXCLUDED.content_hash,
            priority = EXCLUDED.priority,
            status = 'queued',
            scheduled_at = now(),
            retry_count = 0,
            error_message = NULL,
            processing_started_at = NULL,
            lease_token = NULL,
            lease_expires_at = NULL,
            reclaim_count = 0,
            updated_at = now()
        -- the same text already in flight is left to the batch that holds it
        WHERE NOT (q.status = 'processing' AND q.content_hash = EXCLUDED.content_hash);
    RETURN true;
END
$$;
