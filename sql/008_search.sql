-- Search: the configured models as the database sees them, and embedworker_search().
--
-- embedworker_models is written from the configuration by `embedworker run` (at start and on
-- every reload), `migrate`, `index` and `search`: one row per configured model (a disabled one
-- with enabled = false); models no longer configured are removed. Nothing else needs to write
-- it. embedworker_search() reads it to know a model's columns and its current version.
CREATE TABLE IF NOT EXISTS embedworker_models (
    name text PRIMARY KEY,
    column_name text NOT NULL,
    flag_column text NOT NULL,
    dimension integer NOT NULL CHECK (dimension > 0),
    version text NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    search_weight double precision NOT NULL DEFAULT 1 CHECK (search_weight >= 0),
    ef_search integer NOT NULL DEFAULT 200 CHECK (ef_search BETWEEN 1 AND 1000),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE embedworker_search_hit AS (
    content_type text,
    content_id bigint,
    similarity double precision,
    content_text text
);

-- The nearest live rows to p_query by cosine similarity, best first, among the rows that hold
-- a current vector of p_model: its flag is true, its column is not NULL and the version that
-- made it (embedding_versions, missing = '1') is the model's configured one (the same rule as
-- embedworker/db/vectors.py). Rows marked deleted are left out; p_content_types, when given,
-- keeps only those types.
--
-- An HNSW index on the model's column is used when there is one: hnsw.ef_search is the model's
-- ef_search (at least p_k), and pgvector 0.8's iterative scans (relaxed order, re-sorted here)
-- keep reading the index until p_k rows pass the filters. Should the index still give fewer
-- than p_k rows (the filters match fewer than about one in hnsw.max_scan_tuples / p_k rows),
-- the search is repeated as an exact scan, so the answer is always complete. The settings are
-- restored before the function returns. Identifiers come from embedworker_models and are
-- quoted with format('%I'); values are passed as parameters: nothing can inject SQL.
CREATE OR REPLACE FUNCTION embedworker_search(
    p_model text,
    p_query vector,
    p_k integer DEFAULT 10,
    p_content_types text[] DEFAULT NULL
) RETURNS TABLE (
    content_type text,
    content_id bigint,
    similarity double precision,
    content_text text
)
    LANGUAGE plpgsql AS $fn$
DECLARE
    m embedworker_models;
    v_filters text;
    v_query text;
    v_hits embedworker_search_hit[];
    v_saved_ef text;
    v_saved_iterative text;
BEGIN
    SELECT * INTO m FROM embedworker_models WHERE name = p_model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'embedworker_search: no configured model named %', quote_nullable(p_model)
            USING ERRCODE = 'undefined_object',
                  DETAIL = 'configured models: ' || coalesce(
                      (SELECT string_agg(name, ', ' ORDER BY name) FROM embedworker_models
                       WHERE enabled), 'none'),
                  HINT = 'embedworker run, migrate, index and search register the models of '
                      'their configuration';
    END IF;
    IF NOT m.enabled THEN
        RAISE EXCEPTION 'embedworker_search: model % is disabled in the configuration', m.name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF p_query IS NULL THEN
        RAISE EXCEPTION 'embedworker_search: p_query is NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF vector_dims(p_query) <> m.dimension THEN
        RAISE EXCEPTION 'embedworker_search: p_query has % dimensions, model % has %',
            vector_dims(p_query), m.name, m.dimension USING ERRCODE = 'data_exception';
    END IF;
    IF p_k IS NULL OR p_k < 1 THEN
        RAISE EXCEPTION 'embedworker_search: p_k must be at least 1, not %', coalesce(p_k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Written so that the planner can estimate it: the flag and NULL tests from the columns'
    -- statistics, and the version test (missing = '1') as a coalesce of booleans, which it
    -- guesses at one half. As "coalesce(... ->> name, '1') = version" it would guess 1/200,
    -- think the rows with a current vector rare, and prefer any other plan to the index.
    v_filters := format(
        'e.is_deleted IS NOT TRUE AND e.%2$I AND e.%1$I IS NOT NULL'
        ' AND coalesce(e.embedding_versions ->> %3$L = %4$L, %5$s)',
        m.column_name, m.flag_column, m.name, m.version, (m.version = '1')::text);
    IF p_content_types IS NOT NULL THEN
        v_filters := v_filters || ' AND e.content_type = ANY ($3)';
    END IF;
    v_query := 'WITH hits AS MATERIALIZED ('
        '  SELECT e.content_type, e.content_id, e.%1$I <=> $1 AS distance, e.content_text'
        '  FROM embeddings e WHERE %2$s ORDER BY %3$s LIMIT $2)'
        ' SELECT array_agg(ROW(content_type, content_id, 1 - distance, content_text)'
        '                  ::embedworker_search_hit ORDER BY distance, content_type, content_id)'
        ' FROM hits';

    v_saved_ef := current_setting('hnsw.ef_search', true);
    v_saved_iterative := current_setting('hnsw.iterative_scan', true);
    IF v_saved_ef IS NOT NULL THEN  -- pgvector 0.5 or newer
        PERFORM set_config('hnsw.ef_search', greatest(m.ef_search, least(p_k, 1000))::text, true);
    END IF;
    IF v_saved_iterative IS NOT NULL THEN  -- pgvector 0.8 or newer
        PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
    END IF;
    -- In the index's order first; "+ 0" makes the same order one that no index serves.
    EXECUTE format(v_query, m.column_name, v_filters, format('e.%I <=> $1', m.column_name))
        INTO v_hits USING p_query, p_k, p_content_types;
    IF coalesce(cardinality(v_hits), 0) < p_k THEN
        EXECUTE format(v_query, m.column_name, v_filters,
                       format('(e.%I <=> $1) + 0', m.column_name))
            INTO v_hits USING p_query, p_k, p_content_types;
    END IF;
    IF v_saved_ef IS NOT NULL THEN
        PERFORM set_config('hnsw.ef_search', v_saved_ef, true);
    END IF;
    IF v_saved_iterative IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', v_saved_iterative, true);
    END IF;

    RETURN QUERY SELECT * FROM unnest(v_hits);
END
$fn$;
