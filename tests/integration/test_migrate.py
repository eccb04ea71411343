"""`migrate` and the SQL it installs: schema, Studify compatibility, queue_for_embedding and
the triggers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from embedworker.db import migrations

CHANNEL = "embedding_queue"
VERSIONS = [m.version for m in migrations.load_migrations()]

PLAIN_INSERT = """
INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash, priority, status)
VALUES ('test', 1, 'This is a test embedding', md5('test'), 5, 'queued')
"""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- schema inspection -------------------------------------------------------------------------


async def column_types(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    """column -> format_type (e.g. 'vector(384)'), for columns listed by information_schema."""
    rows = await conn.fetch(
        """
        SELECT c.column_name, format_type(a.atttypid, a.atttypmod) AS type
        FROM information_schema.columns c
        JOIN pg_attribute a ON a.attrelid = to_regclass(c.table_name) AND a.attname = c.column_name
        WHERE c.table_schema = 'public' AND c.table_name = $1
        """,
        table,
    )
    return {row["column_name"]: row["type"] for row in rows}


async def column_definitions(conn: asyncpg.Connection, table: str) -> dict[str, tuple[Any, ...]]:
    rows = await conn.fetch(
        """
        SELECT column_name, data_type, udt_name, is_nullable, column_default
        FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = $1
        """,
        table,
    )
    return {row["column_name"]: tuple(row.values()) for row in rows}


async def unique_indexes_on_content_key(conn: asyncpg.Connection, table: str) -> list[str]:
    """Names of the non-partial unique indexes on exactly (content_type, content_id)."""
    rows = await conn.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name
        FROM pg_index i
        WHERE i.indrelid = to_regclass($1)
          AND i.indisunique
          AND i.indpred IS NULL
          AND (SELECT array_agg(a.attname::text ORDER BY k.ord)
               FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
              = ARRAY['content_type', 'content_id']
        """,
        table,
    )
    return [row["name"] for row in rows]


async def index_names(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", table)
    return {row["indexname"] for row in rows}


async def constraint_defs(conn: asyncpg.Connection, table: str) -> set[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint"
        " WHERE conrelid = to_regclass($1)",
        table,
    )
    return {(row["conname"], row["def"]) for row in rows}


async def trigger_names(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal",
        table,
    )
    return {row["tgname"] for row in rows}


async def ledger(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT version FROM embedworker_migrations ORDER BY version")
    return [row["version"] for row in rows]


async def snapshot(conn: asyncpg.Connection, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` as JSON (vectors as their text form), in id order."""
    rows = await conn.fetch(f"SELECT to_jsonb(t)::text AS j FROM {table} t ORDER BY id")
    return [json.loads(row["j"]) for row in rows]


# -- the fresh schema --------------------------------------------------------------------------


async def test_migrate_creates_the_schema_on_an_empty_database(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        applied = await migrations.migrate(conn, CHANNEL)
        assert applied == VERSIONS
        assert VERSIONS[:3] == ["001_schema", "002_triggers", "003_queue_for_embedding"]

        assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")

        queue = await column_types(conn, "embedding_queue")
        for column, type_ in {
            "id": "bigint",
            "public_id": "uuid",
            "content_type": "text",
            "content_id": "bigint",
            "content_text": "text",
            "content_hash": "text",
            "priority": "integer",
            "scheduled_at": "timestamp with time zone",
            "processing_started_at": "timestamp with time zone",
            "retry_count": "integer",
            "max_retries": "integer",
            "status": "text",
            "error_message": "text",
            "created_at": "timestamp with time zone",
            "updated_at": "timestamp with time zone",
            "lease_token": "uuid",
            "lease_expires_at": "timestamp with time zone",
            "reclaim_count": "integer",
        }.items():
            assert queue.get(column) == type_, column

        embeddings = await column_types(conn, "embeddings")
        for column, type_ in {
            "id": "bigint",
            "content_type": "text",
            "content_id": "bigint",
            "content_hash": "text",
            "content_text": "text",
            "embedding": "vector(384)",
            "embedding_e5_small": "vector(384)",
            "embedding_bge_m3": "vector(1024)",
            "has_e5_embedding": "boolean",
            "has_bge_embedding": "boolean",
            "embedding_model": "text",
            "language": "text",
            "token_count": "integer",
            "status": "text",
            "is_deleted": "boolean",
            "deleted_at": "timestamp with time zone",
            "key_terms": "text[]",
            "importance_score": "double precision",
        }.items():
            assert embeddings.get(column) == type_, column

        for table in ("embedding_queue", "embeddings"):
            assert len(await unique_indexes_on_content_key(conn, table)) == 1, table
        assert "embedding_queue_claim_idx" in await index_names(conn, "embedding_queue")
        assert await conn.fetchval(
            "SELECT to_regprocedure('queue_for_embedding(text,bigint,text,integer)') IS NOT NULL"
        )
        assert {
            "embedworker_notify_insert",
            "embedworker_notify_update",
            "embedworker_content_changed",
        } <= await trigger_names(conn, "embedding_queue")
        assert await ledger(conn) == sorted(VERSIONS)

        assert await migrations.migrate(conn, CHANNEL) == []
        assert await ledger(conn) == sorted(VERSIONS)
    finally:
        await conn.close()


async def queue_reloptions(conn: asyncpg.Connection) -> dict[str, str]:
    options = await conn.fetchval(
        "SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = 'embedding_queue'::regclass"
    )
    return dict(option.split("=", 1) for option in options)


async def test_migrate_makes_autovacuum_keep_up_with_the_queue(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrations.migrate(conn, CHANNEL)
        options = await queue_reloptions(conn)
    finally:
        await conn.close()
    assert options["autovacuum_vacuum_scale_factor"] == "0.01"
    assert options["autovacuum_vacuum_threshold"] == "1000"
    assert options["autovacuum_analyze_scale_factor"] == "0.02"


async def test_migrate_keeps_an_operators_own_autovacuum_setting(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        await conn.execute(STUDIFY_SCHEMA)
        await conn.execute(
            "ALTER TABLE embedding_queue SET (autovacuum_vacuum_scale_factor = 0.05)"
        )
        await migrations.migrate(conn, CHANNEL)
        options = await queue_reloptions(conn)
    finally:
        await conn.close()
    assert options["autovacuum_vacuum_scale_factor"] == "0.05"
    assert options["autovacuum_vacuum_threshold"] == "1000"


async def test_concurrent_migrates_both_succeed(empty_database_url: str) -> None:
    first = await asyncpg.connect(empty_database_url)
    second = await asyncpg.connect(empty_database_url)
    try:
        a, b = await asyncio.wait_for(
            asyncio.gather(
                migrations.migrate(first, CHANNEL), migrations.migrate(second, CHANNEL)
            ),
            timeout=30,
        )
        assert sorted(a + b) == sorted(VERSIONS)
        rows = await first.fetch(
            "SELECT version, count(*) AS n FROM embedworker_migrations GROUP BY version"
        )
        assert {row["version"]: row["n"] for row in rows} == dict.fromkeys(VERSIONS, 1)
    finally:
        await first.close()
        await second.close()


# -- a database that already has Studify's tables ----------------------------------------------

STUDIFY_SCHEMA = r"""
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE courses (
    id bigint PRIMARY KEY,
    title text NOT NULL,
    description text
);

CREATE TABLE embedding_queue (
    id bigserial PRIMARY KEY,
    public_id uuid DEFAULT gen_random_uuid(),
    content_type text NOT NULL,
    content_id bigint NOT NULL,
    content_text text NOT NULL,
    content_hash text NOT NULL,
    priority int DEFAULT 5,
    scheduled_at timestamptz DEFAULT now(),
    processing_started_at timestamptz,
    retry_count int DEFAULT 0,
    max_retries int DEFAULT 3,
    status text DEFAULT 'queued' NOT NULL,
    error_message text,
    created_at timestamptz DEFAULT now() NOT NULL,
    updated_at timestamptz DEFAULT now() NOT NULL,
    UNIQUE (content_type, content_id),
    CONSTRAINT embedding_queue_priority_check CHECK (priority BETWEEN 1 AND 10),
    CONSTRAINT embedding_queue_status_check
        CHECK (status IN ('queued', 'processing', 'completed', 'failed'))
);
CREATE INDEX idx_embedding_queue_status_priority
    ON embedding_queue (status, priority, scheduled_at);

CREATE TABLE embeddings (
    id bigserial PRIMARY KEY,
    public_id uuid DEFAULT gen_random_uuid(),
    content_type text NOT NULL,
    content_id bigint NOT NULL,
    content_hash text NOT NULL,
    content_text text NOT NULL,
    embedding vector(384),
    embedding_model text DEFAULT 'intfloat/e5-small',
    language text DEFAULT 'en',
    token_count int,
    status text DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'outdated')),
    error_message text,
    retry_count int DEFAULT 0,
    is_deleted boolean DEFAULT false,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    deleted_at timestamptz,
    word_count int,
    sentence_count int,
    UNIQUE (content_type, content_id)
);

-- Studify's own queue_for_embedding(type, id, priority), reduced to one content type.
CREATE FUNCTION queue_for_embedding(
    p_content_type text, p_content_id bigint, p_priority integer DEFAULT 5
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_text text;
    v_hash text;
BEGIN
    IF p_content_type = 'course' THEN
        SELECT btrim(regexp_replace(coalesce(c.title, '') || ' ' || coalesce(c.description, ''),
                                    '\s+', ' ', 'g'))
        INTO v_text FROM courses c WHERE c.id = p_content_id;
    END IF;
    IF v_text IS NULL OR v_text = '' THEN
        RETURN false;
    END IF;
    v_hash := encode(sha256(convert_to(v_text, 'UTF8')), 'hex');
    IF EXISTS (SELECT 1 FROM embeddings
               WHERE content_type = p_content_type AND content_id = p_content_id
                 AND content_hash = v_hash AND status = 'completed') THEN
        RETURN false;
    END IF;
    UPDATE embeddings SET status = 'outdated', updated_at = now()
    WHERE content_type = p_content_type AND content_id = p_content_id;
    INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash, priority)
    VALUES (p_content_type, p_content_id, v_text, v_hash, p_priority)
    ON CONFLICT (content_type, content_id) DO UPDATE
        SET content_text = EXCLUDED.content_text,
            content_hash = EXCLUDED.content_hash,
            priority = EXCLUDED.priority,
            status = 'queued',
            retry_count = 0,
            error_message = NULL,
            updated_at = now();
    RETURN true;
END
$$;

INSERT INTO courses (id, title, description) VALUES
    (1, 'Intro  to
 Biology', 'Cells   and tissues'),
    (2, 'Organic chemistry', NULL),
    (3, 'Algebra', 'Groups');
"""

STUDIFY_ROWS = """
SELECT queue_for_embedding('course'::text, 2::bigint, 3);
INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash, priority,
                             scheduled_at, status, retry_count, error_message)
VALUES ('post', 10, 'a queued post', md5('a queued post'), 5,
        '2025-01-01 00:00:00+00', 'queued', 0, NULL),
       ('post', 11, 'a failed post', md5('a failed post'), 7,
        '2025-01-02 00:00:00+00', 'failed', 3, 'HTTP 503');
INSERT INTO embeddings (content_type, content_id, content_hash, content_text, embedding,
                        embedding_model, status, created_at, updated_at)
VALUES ('course', 3, 'f00d', 'Algebra Groups', array_fill(0.25::real, ARRAY[384])::vector,
        'intfloat/e5-small', 'completed', '2025-02-01 00:00:00+00', '2025-02-01 00:00:00+00');
"""


async def test_migrate_on_a_studify_shaped_database(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        await conn.execute(STUDIFY_SCHEMA)
        await conn.execute(STUDIFY_ROWS)
        tables = ("embedding_queue", "embeddings")
        rows_before = {t: await snapshot(conn, t) for t in tables}
        columns_before = {t: await column_definitions(conn, t) for t in tables}
        indexes_before = {t: await index_names(conn, t) for t in tables}
        constraints_before = {t: await constraint_defs(conn, t) for t in tables}
        assert len(rows_before["embedding_queue"]) == 3
        assert len(rows_before["embeddings"]) == 1

        assert await migrations.migrate(conn, CHANNEL) == VERSIONS
        assert await migrations.migrate(conn, CHANNEL) == []
        assert await ledger(conn) == sorted(VERSIONS)

        for table in tables:
            # Studify's rows and values are untouched; only new columns appear next to them.
            rows_after = await snapshot(conn, table)
            assert len(rows_after) == len(rows_before[table])
            for before, after in zip(rows_before[table], rows_after, strict=True):
                assert {k: after[k] for k in before} == before
            # Studify's columns keep their definitions (types, nullability, defaults).
            columns_after = await column_definitions(conn, table)
            for name, definition in columns_before[table].items():
                assert columns_after[name] == definition, (table, name)
            assert indexes_before[table] <= await index_names(conn, table)
            assert constraints_before[table] <= await constraint_defs(conn, table)
            # Studify's UNIQUE (content_type, content_id) serves ON CONFLICT; no second one.
            assert len(await unique_indexes_on_content_key(conn, table)) == 1, table

        embeddings = await column_types(conn, "embeddings")
        assert embeddings["embedding_e5_small"] == "vector(384)"
        assert embeddings["embedding_bge_m3"] == "vector(1024)"
        assert embeddings["has_e5_embedding"] == "boolean"
        assert embeddings["has_bge_embedding"] == "boolean"
        assert embeddings["embedding"] == "vector(384)"
        queue = await column_types(conn, "embedding_queue")
        assert queue["lease_token"] == "uuid"
        assert queue["lease_expires_at"] == "timestamp with time zone"
        assert queue["reclaim_count"] == "integer"
        legacy = await conn.fetchrow(
            "SELECT has_e5_embedding, has_bge_embedding, embedding_e5_small IS NULL AS no_e5,"
            " embedding::text AS legacy FROM embeddings WHERE content_id = 3"
        )
        assert legacy["has_e5_embedding"] is False
        assert legacy["has_bge_embedding"] is False
        assert legacy["no_e5"] is True
        assert legacy["legacy"] == "[" + ",".join(["0.25"] * 384) + "]"
        assert await conn.fetch(
            "SELECT reclaim_count, lease_token FROM embedding_queue WHERE reclaim_count <> 0"
            " OR lease_token IS NOT NULL"
        ) == []

        # Studify's own 3-argument function still works, and now wakes the workers too: on a
        # new item (INSERT) and on a changed one (ON CONFLICT DO UPDATE).
        box = Inbox()
        listener = await asyncpg.connect(empty_database_url)
        try:
            await listener.add_listener(CHANNEL, box.on_notify)
            assert await conn.fetchval(
                "SELECT queue_for_embedding('course'::text, 1::bigint, 5)"
            )
            assert len(await box.until_marker(conn, CHANNEL)) == 1
            await conn.execute("UPDATE courses SET title = 'Organic chemistry II' WHERE id = 2")
            assert await conn.fetchval(
                "SELECT queue_for_embedding('course'::text, 2::bigint, 4)"
            )
            assert len(await box.until_marker(conn, CHANNEL)) == 1
        finally:
            await listener.close()
        assert await conn.fetchval(
            "SELECT content_text FROM embedding_queue WHERE content_type = 'course'"
            " AND content_id = 2"
        ) == "Organic chemistry II"
        course = await conn.fetchrow(
            "SELECT content_text, content_hash, priority, status FROM embedding_queue"
            " WHERE content_type = 'course' AND content_id = 1"
        )
        expected = "Intro to Biology Cells and tissues"
        assert dict(course) == {
            "content_text": expected,
            "content_hash": sha256_hex(expected),
            "priority": 5,
            "status": "queued",
        }
        # ... and so does the new 4-argument one.
        assert await conn.fetchval(
            "SELECT queue_for_embedding('post'::text, 2::bigint, '  hello   world '::text, 3)"
        )
        post = await conn.fetchrow(
            "SELECT content_text, content_hash, priority, status FROM embedding_queue"
            " WHERE content_type = 'post' AND content_id = 2"
        )
        assert dict(post) == {
            "content_text": "hello world",
            "content_hash": sha256_hex("hello world"),
            "priority": 3,
            "status": "queued",
        }
    finally:
        await conn.close()


# -- queue_for_embedding -----------------------------------------------------------------------


async def queue_for_embedding(
    db: asyncpg.Connection, content_type: str, content_id: int, text: str | None, priority: int = 5
) -> bool:
    result: bool = await db.fetchval(
        "SELECT queue_for_embedding($1::text, $2::bigint, $3::text, $4::integer)",
        content_type,
        content_id,
        text,
        priority,
    )
    return result


async def test_queue_for_embedding_cleans_whitespace(db: asyncpg.Connection) -> None:
    assert await queue_for_embedding(db, "post", 1, "\t Photosynthesis\n\n turns   light \r\n ")
    row = await db.fetchrow(
        "SELECT content_text, content_hash, priority, status, retry_count FROM embedding_queue"
    )
    assert dict(row) == {
        "content_text": "Photosynthesis turns light",
        "content_hash": sha256_hex("Photosynthesis turns light"),
        "priority": 5,
        "status": "queued",
        "retry_count": 0,
    }


@pytest.mark.parametrize("text", ["", "   ", " \t\n\r ", None])
async def test_queue_for_embedding_skips_empty_text(
    db: asyncpg.Connection, text: str | None
) -> None:
    assert await queue_for_embedding(db, "post", 1, text) is False
    assert await db.fetchval("SELECT count(*) FROM embedding_queue") == 0


async def test_queue_for_embedding_skips_text_already_embedded(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO embeddings (content_type, content_id, content_hash, content_text, status)"
        " VALUES ('post', 1, $1, 'hello world', 'completed')",
        sha256_hex("hello world"),
    )
    assert await queue_for_embedding(db, "post", 1, " hello  world") is False
    assert await db.fetchval("SELECT count(*) FROM embedding_queue") == 0
    # A different text for the same item is queued.
    assert await queue_for_embedding(db, "post", 1, "hello there") is True
    assert await db.fetchval("SELECT content_text FROM embedding_queue") == "hello there"


@pytest.mark.parametrize("new_text", ["same text", "new text"])
async def test_queue_for_embedding_requeues_a_failed_item(
    db: asyncpg.Connection, new_text: str
) -> None:
    await db.execute(
        """
        INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash,
                                     priority, status, retry_count, error_message, scheduled_at)
        VALUES ('post', 1, 'same text', $1, 5, 'failed', 3, 'HTTP 503', now() - interval '1 day')
        """,
        sha256_hex("same text"),
    )
    assert await queue_for_embedding(db, "post", 1, new_text, 2) is True
    row = await db.fetchrow(
        "SELECT status, retry_count, error_message, content_text, content_hash, priority,"
        " abs(extract(epoch FROM scheduled_at - clock_timestamp())) AS age_s"
        " FROM embedding_queue WHERE content_type = 'post' AND content_id = 1"
    )
    assert row["status"] == "queued"
    assert row["retry_count"] == 0
    assert row["error_message"] is None
    assert row["content_text"] == new_text
    assert row["content_hash"] == sha256_hex(new_text)
    assert row["priority"] == 2
    assert row["age_s"] < 5
    assert await db.fetchval("SELECT count(*) FROM embedding_queue") == 1


# -- the NOTIFY trigger ------------------------------------------------------------------------


class Inbox:
    """Notifications received by a listening connection, in arrival order."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self._changed = asyncio.Event()
        self._after_marker: dict[str, int] = {}

    def on_notify(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        self.received.append((channel, payload))
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[list[tuple[str, str]]], bool], timeout: float = 5.0
    ) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.received):
                self._changed.clear()
                await self._changed.wait()

    async def until_marker(self, sender: asyncpg.Connection, channel: str) -> list[str]:
        """Send a marker NOTIFY on ``channel`` and return the payloads that arrived on that
        channel before it (and after this channel's previous marker). Notifications are
        delivered in commit order, so anything committed before the marker has arrived by the
        time the marker does."""
        marker = "marker-" + uuid.uuid4().hex
        await sender.execute("SELECT pg_notify($1, $2)", channel, marker)
        await self.wait_for(lambda received: (channel, marker) in received)
        position = self.received.index((channel, marker))
        start = self._after_marker.get(channel, 0)
        self._after_marker[channel] = position + 1
        return [p for c, p in self.received[start:position] if c == channel]


@pytest.fixture
async def inbox(database_url: str) -> AsyncIterator[Inbox]:
    """A second connection LISTENing on the default channel and on 'other_channel'."""
    box = Inbox()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.add_listener(CHANNEL, box.on_notify)
        await conn.add_listener("other_channel", box.on_notify)
        yield box
    finally:
        await conn.close()


async def test_insert_notifies(db: asyncpg.Connection, inbox: Inbox) -> None:
    await db.execute(PLAIN_INSERT)
    await inbox.wait_for(lambda received: any(c == CHANNEL for c, _ in received))
    assert inbox.received[0][0] == CHANNEL


async def test_one_statement_of_many_rows_notifies_once(
    db: asyncpg.Connection, inbox: Inbox
) -> None:
    await db.execute(
        """
        INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash,
                                     priority, status)
        SELECT 'post', n, 'text ' || n, md5('text ' || n), 5, 'queued'
        FROM generate_series(1, 100) AS n
        """
    )
    await inbox.wait_for(lambda received: len(received) >= 1)
    assert len(await inbox.until_marker(db, CHANNEL)) == 1


async def test_insert_scheduled_in_the_future_does_not_notify(
    db: asyncpg.Connection, inbox: Inbox
) -> None:
    await db.execute(
        """
        INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash,
                                     priority, status, scheduled_at)
        VALUES ('test', 1, 'later', md5('later'), 5, 'queued', now() + interval '1 hour')
        """
    )
    assert await inbox.until_marker(db, CHANNEL) == []


async def test_migrate_with_another_channel_moves_the_trigger(
    db: asyncpg.Connection, inbox: Inbox
) -> None:
    assert await migrations.migrate(db, "other_channel") == []
    await db.execute(PLAIN_INSERT)
    await inbox.wait_for(lambda received: any(c == "other_channel" for c, _ in received))
    assert await inbox.until_marker(db, CHANNEL) == []
    assert len(await inbox.until_marker(db, "other_channel")) == 1


# -- the content-change trigger ----------------------------------------------------------------


async def test_text_change_revokes_the_lease_of_a_processing_row(db: asyncpg.Connection) -> None:
    await db.execute(PLAIN_INSERT)
    await db.execute(
        "UPDATE embedding_queue SET status = 'processing', lease_token = gen_random_uuid(),"
        " lease_expires_at = now() + interval '30 seconds', processing_started_at = now()"
    )
    await db.execute(
        "UPDATE embedding_queue SET content_text = 'An edited text', content_hash = md5('edited')"
    )
    row = await db.fetchrow(
        "SELECT status, lease_token, lease_expires_at, content_text FROM embedding_queue"
    )
    assert dict(row) == {
        "status": "queued",
        "lease_token": None,
        "lease_expires_at": None,
        "content_text": "An edited text",
    }
