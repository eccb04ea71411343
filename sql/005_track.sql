-- Tracking: triggers that keep embedding_queue in step with any table.
--
--   SELECT embedworker_track('public.courses', 'course', ARRAY['title', 'description'],
--                            where_clause => 'NOT is_deleted');
--
-- A tracked row's text is its text columns (text as it is, other types in their JSON form),
-- NULLs left out, joined with ' ', whitespace collapsed and trimmed as queue_for_embedding does.
-- A row is "live" when that text is not empty and where_clause is true for it. A row that
-- becomes live, or whose text changes while live, is queued; a row that stops being live
-- (deleted, soft-deleted, emptied, truncated) loses its queue item, and its embeddings row is
-- marked deleted (is_deleted, deleted_at) or removed (on_delete). An UPDATE that changes none of
-- the watched columns (the id, text and where_clause columns) does not even call a function.
--
-- INSERT, DELETE and TRUNCATE are handled once per statement (transition tables), UPDATE once
-- per row. No trigger ever makes the user's write fail: an error inside one becomes a WARNING
-- and the write goes on without queuing (`embedworker backfill` catches up).
--
-- The functions run with the privileges of whoever writes to the tracked table (SECURITY
-- INVOKER, like the rest of embedworker's SQL): that role needs SELECT on embedworker_tracked
-- and SELECT/INSERT/UPDATE/DELETE on embedding_queue and on embeddings; without them its writes
-- still succeed, unqueued, with a WARNING saying why.
--
-- Studify's own queue_for_embedding(type, id, priority) and its triggers are left alone.

CREATE TABLE IF NOT EXISTS embedworker_tracked (
    content_type text PRIMARY KEY CHECK (content_type <> ''),
    source regclass NOT NULL,
    id_column text NOT NULL,
    text_columns text[] NOT NULL CHECK (cardinality(text_columns) > 0),
    priority integer NOT NULL CHECK (priority BETWEEN 1 AND 10),
    -- the user's where_clause as PostgreSQL prints it back: canonical, one expression
    where_clause text,
    on_delete text NOT NULL CHECK (on_delete IN ('mark', 'delete')),
    -- an UPDATE matters only when one of these changes
    watch_columns text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- queue_for_embedding's normalisation, btrim(regexp_replace(text, '\s+', ' ', 'g')), skipped
-- where it would change nothing (no whitespace at either end, in a run, or other than ' '),
-- which makes it several times faster on ordinary text.
CREATE OR REPLACE FUNCTION embedworker_normalize(p_text text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN coalesce(p_text, '') ~ '^\s|\s$|\s\s|(?! )\s'
                THEN btrim(regexp_replace(p_text, '\s+', ' ', 'g'))
                ELSE coalesce(p_text, '') END
$$;

-- A content_id from the text of an id value, or NULL when it is not a bigint.
CREATE OR REPLACE FUNCTION embedworker_to_bigint(p_text text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_text ~ '^-?[0-9]{1,18}$' THEN p_text::bigint
        WHEN p_text ~ '^-?[0-9]{19}$'
             AND p_text::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
            THEN p_text::bigint
    END
$$;

-- A row's text from to_jsonb(row): what embedworker_track_select makes of the same row.
CREATE OR REPLACE FUNCTION embedworker_compose(p_row jsonb, p_columns text[]) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_column text;
    v_value text;
    v_text text;
BEGIN
    FOREACH v_column IN ARRAY p_columns LOOP
        v_value := p_row ->> v_column;
        IF v_value IS NOT NULL THEN
            v_text := CASE WHEN v_text IS NULL THEN v_value ELSE v_text || ' ' || v_value END;
        END IF;
    END LOOP;
    RETURN embedworker_normalize(v_text);
END
$$;

CREATE OR REPLACE FUNCTION embedworker_track_trigger_name(p_content_type text, p_event text)
    RETURNS name
    LANGUAGE sql IMMUTABLE AS $$
    SELECT ('embedworker_track_' || p_event || '_' || left(md5(p_content_type), 16))::name
$$;

-- The SELECT that reads tracked rows from p_from (a relation name or a parenthesised subquery,
-- aliased t): id (bigint, NULL when the id is not one), raw_id (the id as text), txt (the
-- normalised text) and live. Every identifier is quoted; where_clause is the canonical
-- expression that embedworker_track stored.
CREATE OR REPLACE FUNCTION embedworker_track_select(p_cfg embedworker_tracked, p_from text)
    RETURNS text
    LANGUAGE sql STABLE AS $$
    -- OFFSET 0 keeps the planner from copying the regexp into every use of txt.
    SELECT format(
        'SELECT embedworker_to_bigint(r.raw_id) AS id, r.raw_id, r.txt,'
        ' (r.txt <> '''' AND r.matches) AS live'
        ' FROM (SELECT to_jsonb(t.%I) #>> ''{}'' AS raw_id,'
        ' embedworker_normalize(concat_ws('' '', %s)) AS txt, %s AS matches'
        ' FROM %s AS t OFFSET 0) AS r OFFSET 0',
        p_cfg.id_column,
        (SELECT string_agg(format('to_jsonb(t.%I) #>> ''{}''', c), ', ' ORDER BY o)
         FROM unnest(p_cfg.text_columns) WITH ORDINALITY AS u(c, o)),
        CASE WHEN p_cfg.where_clause IS NULL THEN 'true'
             ELSE format('((%s) IS TRUE)', p_cfg.where_clause) END,
        p_from)
$$;

-- Queues live rows (ids and normalised texts in step) in one INSERT ... SELECT, the set-based
-- twin of queue_for_embedding: the same sha256 hash, nothing queued for an empty text or where
-- a 'completed' embedding has the same hash, the same upsert (tests/integration/
-- test_tracking.py holds the two to the same rows). Of repeated ids the last wins. With
-- p_restore, an embeddings row that was marked deleted comes back, as 'outdated' when its text
-- differs so that its stale vector is not served. Returns how many queue rows were inserted or
-- re-queued.
CREATE OR REPLACE FUNCTION embedworker_track_add(
    p_content_type text, p_priority integer, p_ids bigint[], p_texts text[],
    p_restore boolean DEFAULT true
) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    v_queued integer;
BEGIN
    IF coalesce(cardinality(p_ids), 0) = 0 THEN
        RETURN 0;
    END IF;
    IF p_restore AND EXISTS (SELECT 1 FROM embeddings
                             WHERE content_type = p_content_type
                               AND content_id = ANY (p_ids) AND is_deleted) THEN
        UPDATE embeddings e
        SET is_deleted = false,
            deleted_at = NULL,
            status = CASE WHEN e.content_hash = encode(sha256(convert_to(x.txt, 'UTF8')), 'hex')
                          THEN e.status ELSE 'outdated' END,
            updated_at = now()
        FROM (SELECT DISTINCT ON (u.id) u.id, u.txt
              FROM unnest(p_ids, p_texts) WITH ORDINALITY AS u(id, txt, n)
              ORDER BY u.id, u.n DESC) AS x
        WHERE e.content_type = p_content_type AND e.content_id = x.id AND e.is_deleted
          AND x.txt <> '';
    END IF;

    WITH items AS (
        SELECT x.id, x.txt, encode(sha256(convert_to(x.txt, 'UTF8')), 'hex') AS hash
        FROM (SELECT DISTINCT ON (u.id) u.id, u.txt
              FROM unnest(p_ids, p_texts) WITH ORDINALITY AS u(id, txt, n)
              WHERE u.id IS NOT NULL
              ORDER BY u.id, u.n DESC) AS x
        WHERE x.txt <> ''
    ), upserted AS (
        INSERT INTO embedding_queue AS q
            (content_type, content_id, content_text, content_hash, priority, status,
             scheduled_at, retry_count, error_message)
        SELECT p_content_type, i.id, i.txt, i.hash, p_priority, 'queued', now(), 0, NULL
        FROM items i
        WHERE NOT EXISTS (SELECT 1 FROM embeddings e
                          WHERE e.content_type = p_content_type
                            AND e.content_id = i.id
                            AND e.content_hash = i.hash
                            AND e.status = 'completed')
        ORDER BY i.id
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
            WHERE NOT (q.status = 'processing' AND q.content_hash = EXCLUDED.content_hash)
        RETURNING 1
    )
    SELECT count(*) INTO v_queued FROM upserted;
    RETURN v_queued;
END
$$;

-- Rows that are no longer live: their queue items go (a batch holding one then writes nothing
-- for it), and their embeddings are marked deleted, or deleted with on_delete 'delete'.
CREATE OR REPLACE FUNCTION embedworker_track_remove(
    p_content_type text, p_on_delete text, p_ids bigint[]
) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(cardinality(p_ids), 0) = 0 THEN
        RETURN;
    END IF;
    DELETE FROM embedding_queue
    WHERE content_type = p_content_type AND content_id = ANY (p_ids);
    IF p_on_delete = 'delete' THEN
        DELETE FROM embeddings
        WHERE content_type = p_content_type AND content_id = ANY (p_ids);
    ELSE
        UPDATE embeddings
        SET is_deleted = true, deleted_at = now(), updated_at = now()
        WHERE content_type = p_content_type AND content_id = ANY (p_ids)
          AND is_deleted IS NOT TRUE;
    END IF;
END
$$;

-- Warns about a trigger whose registry row is gone. (Triggers look their row up by content_type
-- alone: a row-level trigger cloned onto a partition runs with the partition as TG_RELID.)
CREATE OR REPLACE FUNCTION embedworker_track_orphan(p_content_type text, p_relid oid)
    RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'embedworker: table % has a trigger for content_type %, which is not tracked;'
                  ' drop the trigger or run embedworker_track again',
        p_relid::regclass, quote_literal(p_content_type);
END
$$;

CREATE OR REPLACE FUNCTION embedworker_track_warn_ids(
    p_cfg embedworker_tracked, p_skipped bigint, p_example text
) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF p_skipped > 0 THEN
        RAISE WARNING 'embedworker: % row(s) of % not queued for %: their % is not a bigint'
                      ' (e.g. %)',
            p_skipped, p_cfg.source, quote_literal(p_cfg.content_type),
            quote_ident(p_cfg.id_column), coalesce(quote_literal(p_example), 'NULL');
    END IF;
END
$$;

-- AFTER INSERT, once per statement. A few rows are read through to_jsonb (no planning of
-- dynamic SQL unless there is a where_clause); many in one set-based pass.
CREATE OR REPLACE FUNCTION embedworker_track_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    v_cfg embedworker_tracked;
    v_ids bigint[];
    v_texts text[];
    v_skipped bigint := 0;
    v_example text;
    v_rows refcursor;
    v_json jsonb;
    v_matches boolean;
    v_id bigint;
    v_text text;
    v_row record;
    v_state record;
BEGIN
    BEGIN
        SELECT * INTO v_cfg FROM embedworker_tracked
        WHERE content_type = TG_ARGV[0];
        IF NOT FOUND THEN
            PERFORM embedworker_track_orphan(TG_ARGV[0], TG_RELID);
            RETURN NULL;
        END IF;
        IF (SELECT count(*) FROM (SELECT FROM embedworker_new LIMIT 33) AS few) <= 32 THEN
            IF v_cfg.where_clause IS NULL THEN
                OPEN v_rows FOR SELECT to_jsonb(t.*), true FROM embedworker_new AS t;
            ELSE
                OPEN v_rows FOR EXECUTE format(
                    'SELECT to_jsonb(t.*), ((%s) IS TRUE) FROM embedworker_new AS t',
                    v_cfg.where_clause);
            END IF;
            LOOP
                FETCH v_rows INTO v_json, v_matches;
                EXIT WHEN NOT FOUND;
                v_id := embedworker_to_bigint(v_json ->> v_cfg.id_column);
                v_text := embedworker_compose(v_json, v_cfg.text_columns);
                IF v_id IS NULL THEN
                    v_skipped := v_skipped + 1;
                    v_example := coalesce(v_example, v_json ->> v_cfg.id_column);
                ELSIF v_matches AND v_text <> '' THEN
                    v_ids := v_ids || v_id;
                    v_texts := v_texts || v_text;
                END IF;
            END LOOP;
            CLOSE v_rows;
        ELSE
            EXECUTE format(
                'SELECT array_agg(s.id) FILTER (WHERE s.live AND s.id IS NOT NULL),'
                ' array_agg(s.txt) FILTER (WHERE s.live AND s.id IS NOT NULL),'
                ' count(*) FILTER (WHERE s.id IS NULL),'
                ' (array_agg(s.raw_id) FILTER (WHERE s.id IS NULL))[1]'
                ' FROM (%s) AS s',
                embedworker_track_select(v_cfg, 'embedworker_new'))
            INTO v_ids, v_texts, v_skipped, v_example;
        END IF;
        PERFORM embedworker_track_warn_ids(v_cfg, v_skipped, v_example);
        PERFORM embedworker_track_add(v_cfg.content_type, v_cfg.priority, v_ids, v_texts);
        RETURN NULL;
    EXCEPTION WHEN others THEN
        RAISE WARNING 'embedworker: queuing rows inserted into % for %: %',
            TG_RELID::regclass, quote_literal(TG_ARGV[0]), SQLERRM;
    END;
    IF v_cfg.content_type IS NULL THEN
        RETURN NULL;
    END IF;
    -- One row's where_clause may fail where the others' would not: each row on its own.
    BEGIN
        FOR v_row IN EXECUTE format('SELECT ROW(t.*)::%s AS rec FROM embedworker_new AS t',
                                    v_cfg.source) LOOP
            BEGIN
                EXECUTE embedworker_track_select(v_cfg, '(SELECT ($1).*)') INTO v_state
                    USING v_row.rec;
                PERFORM embedworker_track_warn_ids(v_cfg, (v_state.id IS NULL)::int,
                                                   v_state.raw_id);
                IF v_state.live AND v_state.id IS NOT NULL THEN
                    PERFORM embedworker_track_add(v_cfg.content_type, v_cfg.priority,
                                                  ARRAY[v_state.id], ARRAY[v_state.txt]);
                END IF;
            EXCEPTION WHEN others THEN
                RAISE WARNING 'embedworker: row of % with % = % not queued for %: %',
                    v_cfg.source, quote_ident(v_cfg.id_column),
                    coalesce(quote_literal(to_jsonb(v_row.rec) ->> v_cfg.id_column), 'NULL'),
                    quote_literal(v_cfg.content_type), SQLERRM;
            END;
        END LOOP;
    EXCEPTION WHEN others THEN
        RAISE WARNING 'embedworker: rows inserted into % not queued for %: %',
            TG_RELID::regclass, quote_literal(TG_ARGV[0]), SQLERRM;
    END;
    RETURN NULL;
END
$$;

-- AFTER UPDATE, per row, only when a watched column changed (the trigger's WHEN). Reads the
-- rows through to_jsonb, so only where_clause needs dynamic SQL.
CREATE OR REPLACE FUNCTION embedworker_track_update() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    v_cfg embedworker_tracked;
    v_old jsonb;
    v_new jsonb;
    v_old_id bigint;
    v_new_id bigint;
    v_old_text text;
    v_new_text text;
    v_old_match boolean := true;
    v_new_match boolean := true;
    v_old_live boolean;
    v_new_live boolean;
BEGIN
    SELECT * INTO v_cfg FROM embedworker_tracked
    WHERE content_type = TG_ARGV[0];
    IF NOT FOUND THEN
        PERFORM embedworker_track_orphan(TG_ARGV[0], TG_RELID);
        RETURN NULL;
    END IF;
    v_old := to_jsonb(OLD);
    v_new := to_jsonb(NEW);
    v_old_id := embedworker_to_bigint(v_old ->> v_cfg.id_column);
    v_new_id := embedworker_to_bigint(v_new ->> v_cfg.id_column);
    v_old_text := embedworker_compose(v_old, v_cfg.text_columns);
    v_new_text := embedworker_compose(v_new, v_cfg.text_columns);
    IF v_cfg.where_clause IS NOT NULL THEN
        EXECUTE format('SELECT (SELECT ((%1$s) IS TRUE) FROM (SELECT ($1).*) AS t),'
                       ' (SELECT ((%1$s) IS TRUE) FROM (SELECT ($2).*) AS t)',
                       v_cfg.where_clause)
            INTO v_old_match, v_new_match USING OLD, NEW;
    END IF;
    v_old_live := v_old_match AND v_old_text <> '';
    v_new_live := v_new_match AND v_new_text <> '';
    IF v_new_id IS NULL THEN
        PERFORM embedworker_track_warn_ids(v_cfg, 1, v_new ->> v_cfg.id_column);
    END IF;
    IF v_old_id IS DISTINCT FROM v_new_id AND v_old_id IS NOT NULL THEN
        PERFORM embedworker_track_remove(v_cfg.content_type, v_cfg.on_delete, ARRAY[v_old_id]);
    END IF;
    IF v_new_id IS NULL THEN
        NULL;
    ELSIF NOT v_new_live THEN
        PERFORM embedworker_track_remove(v_cfg.content_type, v_cfg.on_delete, ARRAY[v_new_id]);
    ELSIF v_old_id IS DISTINCT FROM v_new_id OR NOT v_old_live THEN
        PERFORM embedworker_track_add(v_cfg.content_type, v_cfg.priority,
                                      ARRAY[v_new_id], ARRAY[v_new_text]);
    ELSIF v_old_text IS DISTINCT FROM v_new_text THEN
        -- a row that stays live: its embedding was never marked deleted
        PERFORM embedworker_track_add(v_cfg.content_type, v_cfg.priority,
                                      ARRAY[v_new_id], ARRAY[v_new_text], false);
    END IF;
    RETURN NULL;
EXCEPTION WHEN others THEN
    RAISE WARNING 'embedworker: row of % with % = % not queued for %: %',
        TG_RELID::regclass, coalesce(quote_ident(v_cfg.id_column), 'id'),
        coalesce(quote_literal(v_new ->> v_cfg.id_column), 'NULL'),
        quote_literal(TG_ARGV[0]), SQLERRM;
    RETURN NULL;
END
$$;

-- AFTER DELETE, once per statement.
CREATE OR REPLACE FUNCTION embedworker_track_delete() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    v_cfg embedworker_tracked;
    v_ids bigint[];
BEGIN
    SELECT * INTO v_cfg FROM embedworker_tracked
    WHERE content_type = TG_ARGV[0];
    IF NOT FOUND THEN
        PERFORM embedworker_track_orphan(TG_ARGV[0], TG_RELID);
        RETURN NULL;
    END IF;
    EXECUTE format(
        'SELECT array_agg(DISTINCT s.id) FILTER (WHERE s.id IS NOT NULL)'
        ' FROM (SELECT embedworker_to_bigint(to_jsonb(t.%I) #>> ''{}'') AS id'
        '       FROM embedworker_old AS t) AS s',
        v_cfg.id_column)
    INTO v_ids;
    PERFORM embedworker_track_remove(v_cfg.content_type, v_cfg.on_delete, v_ids);
    RETURN NULL;
EXCEPTION WHEN others THEN
    RAISE WARNING 'embedworker: rows deleted from % not removed for %: %',
        TG_RELID::regclass, quote_literal(TG_ARGV[0]), SQLERRM;
    RETURN NULL;
END
$$;

-- AFTER TRUNCATE: every item of the content type goes.
CREATE OR REPLACE FUNCTION embedworker_track_truncate() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    v_cfg embedworker_tracked;
BEGIN
    SELECT * INTO v_cfg FROM embedworker_tracked
    WHERE content_type = TG_ARGV[0];
    IF NOT FOUND THEN
        PERFORM embedworker_track_orphan(TG_ARGV[0], TG_RELID);
        RETURN NULL;
    END IF;
    DELETE FROM embedding_queue WHERE content_type = v_cfg.content_type;
    IF v_cfg.on_delete = 'delete' THEN
        DELETE FROM embeddings WHERE content_type = v_cfg.content_type;
    ELSE
        UPDATE embeddings
        SET is_deleted = true, deleted_at = now(), updated_at = now()
        WHERE content_type = v_cfg.content_type AND is_deleted IS NOT TRUE;
    END IF;
    RETURN NULL;
EXCEPTION WHEN others THEN
    RAISE WARNING 'embedworker: truncation of % not applied to %: %',
        TG_RELID::regclass, quote_literal(TG_ARGV[0]), SQLERRM;
    RETURN NULL;
END
$$;

-- One chunk of a backfill: up to p_limit rows with an id above p_after (NULL: from the start),
-- in id order; the live ones are queued. Returns the last id read (as text), how many rows
-- were read (0: done) and how many were queued.
CREATE OR REPLACE FUNCTION embedworker_backfill_chunk(
    p_content_type text, p_after text, p_limit integer,
    OUT last_id text, OUT scanned integer, OUT queued integer
)
    LANGUAGE plpgsql AS $$
DECLARE
    v_cfg embedworker_tracked;
    v_type text;
    v_ids bigint[];
    v_texts text[];
    v_skipped bigint;
    v_example text;
BEGIN
    SELECT * INTO v_cfg FROM embedworker_tracked WHERE content_type = p_content_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'content_type % is not tracked', quote_literal(p_content_type)
            USING ERRCODE = 'undefined_object';
    END IF;
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'chunk size must be at least 1, not %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT format_type(a.atttypid, a.atttypmod) INTO v_type
    FROM pg_attribute a
    WHERE a.attrelid = v_cfg.source AND a.attname = v_cfg.id_column
      AND a.attnum > 0 AND NOT a.attisdropped;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', v_cfg.id_column, v_cfg.source
            USING ERRCODE = 'undefined_column';
    END IF;
    EXECUTE format(
        'SELECT (array_agg(c.k ORDER BY c.k DESC))[1]::text, count(*),'
        ' array_agg(s.id) FILTER (WHERE s.live AND s.id IS NOT NULL),'
        ' array_agg(s.txt) FILTER (WHERE s.live AND s.id IS NOT NULL),'
        ' count(*) FILTER (WHERE s.id IS NULL),'
        ' (array_agg(s.raw_id) FILTER (WHERE s.id IS NULL))[1]'
        ' FROM (SELECT t.%1$I AS k, ROW(t.*)::%2$s AS r FROM %2$s AS t'
        '       WHERE t.%1$I IS NOT NULL %3$s ORDER BY t.%1$I LIMIT $2) AS c,'
        ' LATERAL (%4$s) AS s',
        v_cfg.id_column, v_cfg.source,
        CASE WHEN p_after IS NULL THEN ''
             ELSE format('AND t.%I > CAST($1 AS %s)', v_cfg.id_column, v_type) END,
        embedworker_track_select(v_cfg, '(SELECT (c.r).*)'))
    INTO last_id, scanned, v_ids, v_texts, v_skipped, v_example
    USING p_after, p_limit;
    PERFORM embedworker_track_warn_ids(v_cfg, v_skipped, v_example);
    queued := embedworker_track_add(v_cfg.content_type, v_cfg.priority, v_ids, v_texts);
END
$$;

-- Drops the triggers of content_type and forgets it; false when it was not tracked. Queue
-- items and embeddings already made are kept.
CREATE OR REPLACE FUNCTION embedworker_untrack(content_type text) RETURNS boolean
    LANGUAGE plpgsql AS $$
DECLARE
    v_cfg embedworker_tracked;
    v_event text;
BEGIN
    SELECT * INTO v_cfg FROM embedworker_tracked AS r
    WHERE r.content_type = embedworker_untrack.content_type
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_class WHERE oid = v_cfg.source) THEN
        FOREACH v_event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
            EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s',
                           embedworker_track_trigger_name(v_cfg.content_type, v_event),
                           v_cfg.source);
        END LOOP;
    END IF;
    DELETE FROM embedworker_tracked AS r WHERE r.content_type = v_cfg.content_type;
    RETURN true;
END
$$;

-- The same, refusing when content_type tracks another table.
CREATE OR REPLACE FUNCTION embedworker_untrack(source regclass, content_type text)
    RETURNS boolean
    LANGUAGE plpgsql AS $$
DECLARE
    v_source regclass;
BEGIN
    SELECT r.source INTO v_source FROM embedworker_tracked AS r
    WHERE r.content_type = embedworker_untrack.content_type;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF v_source <> embedworker_untrack.source THEN
        RAISE EXCEPTION 'content_type % tracks table %, not %',
            quote_literal(embedworker_untrack.content_type), v_source, embedworker_untrack.source
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN embedworker_untrack(embedworker_untrack.content_type);
END
$$;

-- Installs the triggers (again, with the new configuration, for a content_type that already
-- tracks this table). where_clause is trusted configuration: a boolean expression over the
-- table's columns, named unqualified, under the rules of a CHECK constraint (no subquery, no
-- whole-row reference). It is parsed here, refused unless it is exactly one expression, and
-- stored as PostgreSQL prints it back. With backfill, the existing rows are queued in this same
-- transaction (fine for small tables; `embedworker backfill` works in chunks). Returns how many
-- rows the backfill queued.
CREATE OR REPLACE FUNCTION embedworker_track(
    source regclass,
    content_type text,
    text_columns text[],
    id_column text DEFAULT 'id',
    priority integer DEFAULT 5,
    where_clause text DEFAULT NULL,
    on_delete text DEFAULT 'mark',
    backfill boolean DEFAULT false
) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    v_source regclass := embedworker_track.source;
    v_type text := embedworker_track.content_type;
    v_id text := embedworker_track.id_column;
    v_columns text[] := embedworker_track.text_columns;
    v_where text := nullif(btrim(embedworker_track.where_clause), '');
    v_relkind "char";
    v_column text;
    v_id_category "char";
    v_watch text[];
    v_where_columns text[];
    v_whole_row boolean;
    v_probe regclass;
    v_old regclass;
    v_created timestamptz;
    v_row record;
    v_chunk record;
    v_after text;
    v_queued integer := 0;
BEGIN
    IF v_source IS NULL OR v_type IS NULL OR v_type = '' THEN
        RAISE EXCEPTION 'embedworker_track needs a table and a non-empty content_type'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c.relkind INTO v_relkind FROM pg_class c WHERE c.oid = v_source;
    IF v_relkind IS NULL OR v_relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', v_source USING ERRCODE = 'wrong_object_type';
    END IF;
    IF v_source IN (to_regclass('embedding_queue'), to_regclass('embeddings'),
                    to_regclass('embedworker_tracked')) THEN
        RAISE EXCEPTION 'embedworker''s own table % cannot be tracked', v_source
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(cardinality(v_columns), 0) = 0 OR array_position(v_columns, NULL) IS NOT NULL
    THEN
        RAISE EXCEPTION 'text_columns must name at least one column, and no NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF embedworker_track.priority IS NULL OR embedworker_track.priority NOT BETWEEN 1 AND 10
    THEN
        RAISE EXCEPTION 'priority must be between 1 (most urgent) and 10, not %',
            coalesce(embedworker_track.priority::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF embedworker_track.on_delete IS NULL
       OR embedworker_track.on_delete NOT IN ('mark', 'delete') THEN
        RAISE EXCEPTION 'on_delete must be ''mark'' or ''delete'', not %',
            coalesce(quote_literal(embedworker_track.on_delete), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOREACH v_column IN ARRAY coalesce(v_id, '') || v_columns LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a
                       WHERE a.attrelid = v_source AND a.attname = v_column
                         AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" of table % does not exist', v_column, v_source
                USING ERRCODE = 'undefined_column';
        END IF;
    END LOOP;
    SELECT coalesce(base.typcategory, ty.typcategory) INTO v_id_category
    FROM pg_attribute a
    JOIN pg_type ty ON ty.oid = a.atttypid
    LEFT JOIN pg_type base ON base.oid = ty.typbasetype AND ty.typtype = 'd'
    WHERE a.attrelid = v_source AND a.attname = v_id;
    IF v_id_category NOT IN ('N', 'S') THEN
        RAISE EXCEPTION 'id column "%" of table % is neither a number nor text: the queue''s'
                        ' content_id is a bigint', v_id, v_source
            USING ERRCODE = 'datatype_mismatch';
    END IF;

    v_watch := ARRAY(SELECT DISTINCT unnest(v_id || v_columns) ORDER BY 1);
    IF v_where IS NOT NULL THEN
        -- A cursor refuses a string of several statements before running any of them.
        FOR v_row IN EXECUTE format('SELECT (%s%s%s)::boolean FROM %s AS t LIMIT 0',
                                    chr(10), v_where, chr(10), v_source) LOOP
        END LOOP;
        -- As a CHECK constraint of an empty copy of the table, it is held to be one row-level
        -- boolean expression, printed back in canonical form, and its columns are listed.
        IF to_regclass('pg_temp.embedworker_where_probe') IS NOT NULL THEN
            DROP TABLE pg_temp.embedworker_where_probe;
        END IF;
        EXECUTE format('CREATE TEMP TABLE embedworker_where_probe (LIKE %s) ON COMMIT DROP',
                       v_source);
        v_probe := 'pg_temp.embedworker_where_probe'::regclass;
        EXECUTE format('ALTER TABLE pg_temp.embedworker_where_probe'
                       ' ADD CONSTRAINT embedworker_where CHECK ((%s%s%s))',
                       chr(10), v_where, chr(10));
        SELECT pg_get_expr(k.conbin, k.conrelid),
               ARRAY(SELECT a.attname::text FROM unnest(k.conkey) AS n(attnum)
                     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = n.attnum),
               0 = ANY (k.conkey)
        INTO v_where, v_where_columns, v_whole_row
        FROM pg_constraint k
        WHERE k.conrelid = v_probe AND k.conname = 'embedworker_where' AND k.contype = 'c';
        DROP TABLE pg_temp.embedworker_where_probe;
        IF v_where IS NULL OR v_whole_row THEN
            RAISE EXCEPTION 'where_clause must be an expression over the columns of %'
                            ' (not the whole row)', v_source
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_watch := ARRAY(SELECT DISTINCT unnest(v_watch || v_where_columns) ORDER BY 1);
    END IF;

    SELECT r.source, r.created_at INTO v_old, v_created FROM embedworker_tracked AS r
    WHERE r.content_type = v_type FOR UPDATE;
    IF FOUND THEN
        IF v_old <> v_source AND EXISTS (SELECT 1 FROM pg_class WHERE oid = v_old) THEN
            RAISE EXCEPTION 'content_type % already tracks table %; untrack it first',
                quote_literal(v_type), v_old USING ERRCODE = 'duplicate_object';
        END IF;
        PERFORM embedworker_untrack(v_type);
    END IF;
    INSERT INTO embedworker_tracked
        (content_type, source, id_column, text_columns, priority, where_clause, on_delete,
         watch_columns, created_at)
    VALUES (v_type, v_source, v_id, v_columns, embedworker_track.priority, v_where,
            embedworker_track.on_delete, v_watch, coalesce(v_created, now()));

    EXECUTE format(
        'CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS embedworker_new'
        ' FOR EACH STATEMENT EXECUTE FUNCTION embedworker_track_insert(%L)',
        embedworker_track_trigger_name(v_type, 'insert'), v_source, v_type);
    -- Compared as text in the "C" collation: every type has a text form, and a change that a
    -- nondeterministic collation would call no change still counts.
    EXECUTE format(
        'CREATE TRIGGER %I AFTER UPDATE ON %s FOR EACH ROW WHEN (%s)'
        ' EXECUTE FUNCTION embedworker_track_update(%L)',
        embedworker_track_trigger_name(v_type, 'update'), v_source,
        (SELECT string_agg(format('OLD.%1$I::text COLLATE "C"'
                                  ' IS DISTINCT FROM NEW.%1$I::text COLLATE "C"', c), ' OR ')
         FROM unnest(v_watch) AS c),
        v_type);
    EXECUTE format(
        'CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS embedworker_old'
        ' FOR EACH STATEMENT EXECUTE FUNCTION embedworker_track_delete(%L)',
        embedworker_track_trigger_name(v_type, 'delete'), v_source, v_type);
    EXECUTE format(
        'CREATE TRIGGER %I AFTER TRUNCATE ON %s'
        ' FOR EACH STATEMENT EXECUTE FUNCTION embedworker_track_truncate(%L)',
        embedworker_track_trigger_name(v_type, 'truncate'), v_source, v_type);

    IF embedworker_track.backfill THEN
        LOOP
            v_chunk := embedworker_backfill_chunk(v_type, v_after, 10000);
            EXIT WHEN v_chunk.scanned = 0;
            v_queued := v_queued + v_chunk.queued;
            v_after := v_chunk.last_id;
        END LOOP;
    END IF;
    RETURN v_queued;
END
$$;
