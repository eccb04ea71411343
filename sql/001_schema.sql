-- Tables compatible with Studify's embedding_queue and embeddings.
-- Every column is added with ADD COLUMN IF NOT EXISTS, so on a database that already has the
-- tables only what is missing is added; nothing is dropped or rewritten. The NOT NULLs below
-- therefore apply to tables created here; Studify's own nullable columns stay as they are.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS embedding_queue (id bigserial PRIMARY KEY);

ALTER TABLE embedding_queue
    ADD COLUMN IF NOT EXISTS public_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN IF NOT EXISTS content_type text NOT NULL,
    ADD COLUMN IF NOT EXISTS content_id bigint NOT NULL,
    ADD COLUMN IF NOT EXISTS content_text text NOT NULL,
    ADD COLUMN IF NOT EXISTS content_hash text NOT NULL,
    ADD COLUMN IF NOT EXISTS priority integer NOT NULL DEFAULT 5,
    ADD COLUMN IF NOT EXISTS scheduled_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS processing_started_at timestamptz,
    ADD COLUMN IF NOT EXISTS retry_count integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS max_retries integer NOT NULL DEFAULT 3,
    ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'queued',
    ADD COLUMN IF NOT EXISTS error_message text,
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now(),
    -- embedworker's own bookkeeping: the lease of the batch that holds the row, and how often
    -- a lease on it expired (kept apart from retry_count).
    ADD COLUMN IF NOT EXISTS lease_token uuid,
    ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS reclaim_count integer NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS embeddings (id bigserial PRIMARY KEY);

ALTER TABLE embeddings
    ADD COLUMN IF NOT EXISTS public_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN IF NOT EXISTS content_type text NOT NULL,
    ADD COLUMN IF NOT EXISTS content_id bigint NOT NULL,
    ADD COLUMN IF NOT EXISTS content_hash text NOT NULL,
    ADD COLUMN IF NOT EXISTS content_text text NOT NULL,
    ADD COLUMN IF NOT EXISTS embedding vector(384),
    ADD COLUMN IF NOT EXISTS embedding_e5_small vector(384),
    ADD COLUMN IF NOT EXISTS embedding_bge_m3 vector(1024),
    ADD COLUMN IF NOT EXISTS has_e5_embedding boolean DEFAULT false,
    ADD COLUMN IF NOT EXISTS has_bge_embedding boolean DEFAULT false,
    ADD COLUMN IF NOT EXISTS embedding_model text DEFAULT 'intfloat/e5-small',
    ADD COLUMN IF NOT EXISTS language text DEFAULT 'en',
    ADD COLUMN IF NOT EXISTS token_count integer,
    ADD COLUMN IF NOT EXISTS status text DEFAULT 'pending',
    ADD COLUMN IF NOT EXISTS error_message text,
    ADD COLUMN IF NOT EXISTS retry_count integer DEFAULT 0,
    ADD COLUMN IF NOT EXISTS is_deleted boolean DEFAULT false,
    ADD COLUMN IF NOT EXISTS created_at timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS updated_at timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS deleted_at timestamptz,
    ADD COLUMN IF NOT EXISTS chunk_type text,
    ADD COLUMN IF NOT EXISTS hierarchy_level integer,
    ADD COLUMN IF NOT EXISTS parent_chunk_id bigint,
    ADD COLUMN IF NOT EXISTS section_title text,
    ADD COLUMN IF NOT EXISTS semantic_density double precision,
    ADD COLUMN IF NOT EXISTS key_terms text[],
    ADD COLUMN IF NOT EXISTS sentence_count integer,
    ADD COLUMN IF NOT EXISTS word_count integer,
    ADD COLUMN IF NOT EXISTS has_code_block boolean,
    ADD COLUMN IF NOT EXISTS has_table boolean,
    ADD COLUMN IF NOT EXISTS has_list boolean,
    ADD COLUMN IF NOT EXISTS chunk_language text,
    ADD COLUMN IF NOT EXISTS importance_score double precision;

-- ON CONFLICT (content_type, content_id) needs a unique index on exactly these columns; Studify's
-- schema has one under its own name, so one is created only where none exists.
DO $$
DECLARE
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['embedding_queue', 'embeddings'] LOOP
        IF NOT EXISTS (
            SELECT 1
            FROM pg_index i
            WHERE i.indrelid = tbl::regclass
              AND i.indisunique
              AND i.indpred IS NULL
              AND (SELECT array_agg(a.attname::text ORDER BY k.ord)
                   FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
                  = ARRAY['content_type', 'content_id']
        ) THEN
            EXECUTE format('CREATE UNIQUE INDEX %I ON %I (content_type, content_id)',
                           tbl || '_content_type_content_id_key', tbl);
        END IF;
    END LOOP;
END
$$;

-- Serves the claim: the due rows in claim order, and nothing else.
CREATE INDEX IF NOT EXISTS embedding_queue_claim_idx
    ON embedding_queue (priority, scheduled_at, id) WHERE status = 'queued';

-- Serves lease recovery: rows held by a batch, by when their lease runs out.
CREATE INDEX IF NOT EXISTS embedding_queue_lease_idx
    ON embedding_queue (lease_expires_at) WHERE status = 'processing';
