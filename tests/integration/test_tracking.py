"""Tracked tables (sql/005_track.sql, embedworker.tracking): triggers that keep the queue in
step with inserts, updates and deletes, and the backfill."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import asyncpg
import pytest

from embedworker.tracking import BackfillProgress, TrackedTable, backfill, track, tracked, untrack

POSTS = """
CREATE TABLE posts (
    id bigint PRIMARY KEY,
    title text,
    body text,
    is_deleted boolean NOT NULL DEFAULT false,
    views integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def queue(conn: asyncpg.Connection, content_type: str = "post") -> dict[int, dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM embedding_queue WHERE content_type = $1 ORDER BY content_id", content_type
    )
    return {row["content_id"]: dict(row) for row in rows}


async def texts(conn: asyncpg.Connection, content_type: str = "post") -> dict[int, str]:
    return {cid: row["content_text"] for cid, row in (await queue(conn, content_type)).items()}


async def add_embedding(
    conn: asyncpg.Connection, content_id: int, text: str, content_type: str = "post"
) -> None:
    """A completed embeddings row, as the worker would have left it."""
    await conn.execute(
        "INSERT INTO embeddings (content_type, content_id, content_hash, content_text, status,"
        " has_e5_embedding, has_bge_embedding) VALUES ($1, $2, $3, $4, 'completed', true, true)",
        content_type,
        content_id,
        sha256_hex(text),
        text,
    )


async def embedding_state(
    conn: asyncpg.Connection, content_id: int, content_type: str = "post"
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT is_deleted, deleted_at, status FROM embeddings"
        " WHERE content_type = $1 AND content_id = $2",
        content_type,
        content_id,
    )


async def track_posts(conn: asyncpg.Connection, **options: Any) -> None:
    await conn.execute(POSTS)
    await track(conn, "public.posts", "post", ["title", "body"], **options)


# -- inserts and updates ----------------------------------------------------------------------


async def test_insert_queues_the_composed_text(db: asyncpg.Connection) -> None:
    await track_posts(db, priority=3)

    await db.execute(
        "INSERT INTO posts (id, title, body) VALUES"
        " (1, '  Hello\n\t world ', 'and  more'), (2, NULL, 'only body'), (3, NULL, NULL),"
        " (4, '   ', '')"
    )

    rows = await queue(db)
    assert set(rows) == {1, 2}
    assert rows[1]["content_text"] == "Hello world and more"
    assert rows[1]["content_hash"] == sha256_hex("Hello world and more")
    assert rows[1]["priority"] == 3
    assert rows[1]["status"] == "queued"
    assert rows[2]["content_text"] == "only body"


async def test_update_of_a_tracked_column_requeues_the_new_text(db: asyncpg.Connection) -> None:
    await track_posts(db)
    await db.execute("INSERT INTO posts (id, title, body) VALUES (1, 'first', 'text')")
    await db.execute(
        "UPDATE embedding_queue SET status = 'completed', retry_count = 2,"
        " scheduled_at = now() - interval '1 day'"
    )

    await db.execute("UPDATE posts SET body = 'second version' WHERE id = 1")

    row = (await queue(db))[1]
    assert row["content_text"] == "first second version"
    assert row["content_hash"] == sha256_hex("first second version")
    assert row["status"] == "queued"
    assert row["retry_count"] == 0
    assert await db.fetchval("SELECT count(*) FROM embedding_queue") == 1


async def test_update_that_leaves_the_text_alone_touches_nothing(db: asyncpg.Connection) -> None:
    await track_posts(db)
    await db.execute("INSERT INTO posts (id, title, body) VALUES (1, 'a title', 'a body')")
    await db.execute(
        "UPDATE embedding_queue SET status = 'completed', updated_at = now() - interval '1 day',"
        " scheduled_at = now() - interval '1 day'"
    )
    before = await queue(db)

    await db.execute("UPDATE posts SET views = views + 1, updated_at = now()")
    await db.execute("UPDATE posts SET title = title, body = body")
    await db.execute("UPDATE posts SET title = ' a   title  '")  # the same after normalising

    assert await queue(db) == before


async def test_a_row_whose_id_changes_moves_its_item(db: asyncpg.Connection) -> None:
    await track_posts(db)
    await db.execute("INSERT INTO posts (id, title) VALUES (1, 'moving')")

    await db.execute("UPDATE posts SET id = 2 WHERE id = 1")

    assert await texts(db) == {2: "moving"}


# -- soft deletes, emptied texts and deletes --------------------------------------------------


async def test_soft_delete_removes_the_item_and_marks_the_embedding(
    db: asyncpg.Connection,
) -> None:
    await track_posts(db, where="NOT is_deleted")
    await db.execute("INSERT INTO posts (id, title) VALUES (1, 'kept'), (2, 'going')")
    await add_embedding(db, 2, "going")

    await db.execute("UPDATE posts SET is_deleted = true WHERE id = 2")

    assert await texts(db) == {1: "kept"}
    state = await embedding_state(db, 2)
    assert state is not None
    assert state["is_deleted"] is True
    assert state["deleted_at"] is not None

    # restored with the same text: the embedding is current again, nothing to queue
    await db.execute("UPDATE posts SET is_deleted = false WHERE id = 2")
    state = await embedding_state(db, 2)
    assert state is not None
    assert (state["is_deleted"], state["deleted_at"], state["status"]) == (False, None, "completed")
    assert await texts(db) == {1: "kept"}

    # deleted, edited, restored: queued, and the stale vector is no longer 'completed'
    await db.execute("UPDATE posts SET is_deleted = true WHERE id = 2")
    await db.execute("UPDATE posts SET title = 'came back' WHERE id = 2")
    assert await texts(db) == {1: "kept"}
    await db.execute("UPDATE posts SET is_deleted = false WHERE id = 2")
    assert await texts(db) == {1: "kept", 2: "came back"}
    state = await embedding_state(db, 2)
    assert state is not None
    assert (state["is_deleted"], state["status"]) == (False, "outdated")


async def test_a_row_inserted_soft_deleted_is_not_queued(db: asyncpg.Connection) -> None:
    await track_posts(db, where="NOT is_deleted AND views >= 0")

    await db.execute(
        "INSERT INTO posts (id, title, is_deleted, views) VALUES"
        " (1, 'hidden', true, 0), (2, 'shown', false, 0), (3, 'negative', false, -1)"
    )

    assert await texts(db) == {2: "shown"}


async def test_text_that_becomes_empty_counts_as_removed(db: asyncpg.Connection) -> None:
    await track_posts(db)
    await db.execute("INSERT INTO posts (id, title, body) VALUES (1, 'words', NULL)")
    await add_embedding(db, 1, "words")

    await db.execute("UPDATE posts SET title = '  ' WHERE id = 1")

    assert await texts(db) == {}
    state = await embedding_state(db, 1)
    assert state is not None
    assert state["is_deleted"] is True


@pytest.mark.parametrize("on_delete", ["mark", "delete"])
async def test_delete_removes_the_item_and_the_embedding(
    db: asyncpg.Connection, on_delete: str
) -> None:
    await track_posts(db, on_delete=on_delete)
    await db.execute("INSERT INTO posts (id, title) VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    await add_embedding(db, 1, "one")
    await add_embedding(db, 2, "two")
    await db.execute("UPDATE embedding_queue SET status = 'completed' WHERE content_id = 1")

    await db.execute("DELETE FROM posts WHERE id IN (1, 2)")

    assert await texts(db) == {3: "three"}
    for content_id in (1, 2):
        state = await embedding_state(db, content_id)
        if on_delete == "delete":
            assert state is None
        else:
            assert state is not None
            assert state["is_deleted"] is True
            assert state["deleted_at"] is not None


async def test_truncate_removes_every_item(db: asyncpg.Connection) -> None:
    await track_posts(db)
    await db.execute("INSERT INTO posts (id, title) VALUES (1, 'one'), (2, 'two')")
    await add_embedding(db, 1, "one")
    await db.execute("SELECT queue_for_embedding('other', 1, 'not tracked')")

    await db.execute("TRUNCATE posts")

    assert await texts(db) == {}
    assert await texts(db, "other") == {1: "not tracked"}
    state = await embedding_state(db, 1)
    assert state is not None
    assert state["is_deleted"] is True


async def test_an_up_to_date_embedding_is_not_queued_again(db: asyncpg.Connection) -> None:
    await track_posts(db)
    await add_embedding(db, 1, "already embedded")

    await db.execute("INSERT INTO posts (id, title) VALUES (1, 'already embedded')")

    assert await texts(db) == {}


async def test_every_path_composes_the_same_text(db: asyncpg.Connection) -> None:
    """A bulk INSERT (set-based), a small INSERT (row by row), an UPDATE and a backfill render
    every type alike."""
    await db.execute("SET TimeZone = 'UTC'")
    await db.execute(
        "CREATE TABLE things (id bigint, t text, v varchar(20), c char(6), i integer,"
        " n numeric, f double precision, b boolean, ts timestamptz, d date, j jsonb, js json,"
        " a text[], u uuid, e interval)"
    )
    columns = ["t", "v", "c", "i", "n", "f", "b", "ts", "d", "j", "js", "a", "u", "e"]
    await track(db, "things", "thing", columns)
    values = (
        "' text\t\n', 'varchar', 'ch', 42, 1.50, 0.1, true, '2024-05-06 07:08:09+02',"
        " '2024-05-06', '{\"b\": [1, \"x\"], \"a\": null}', '{\"k\" :  1}',"
        " ARRAY['p', NULL, 'q \"r\"'], 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 2 hours'"
    )

    await db.execute(f"INSERT INTO things SELECT n, {values} FROM generate_series(1, 40) AS n")
    await db.execute(f"INSERT INTO things VALUES (41, {values})")
    await db.execute("UPDATE things SET id = 42 WHERE id = 1")  # the row path: 1 goes, 42 comes
    queued = await texts(db, "thing")
    bulk, small, updated = queued[2], queued[41], queued[42]
    await db.execute("DELETE FROM embedding_queue")
    await backfill(db, "thing", chunk_size=100)
    backfilled = (await texts(db, "thing"))[2]

    assert bulk == small == updated == backfilled
    assert bulk.startswith("text varchar ch 42 1.50 0.1 true 2024-05-06T05:08:09+00:00")


async def test_tracking_queues_exactly_what_queue_for_embedding_does(
    db: asyncpg.Connection,
) -> None:
    """embedworker_track_add is the set-based twin of queue_for_embedding: same rows."""
    cases = [
        # (content_id, text, state before: queue status and hash text, completed embedding)
        (1, "fresh  item", None, None),
        (2, "new text", ("queued", "old text"), None),
        (3, "same text", ("processing", "same text"), None),
        (4, "newer text", ("processing", "older text"), None),
        (5, "embedded", None, "embedded"),
        (6, "changed", None, "before"),
        (7, "   ", None, None),
        (8, "after failure", ("failed", "after failure"), None),
        (9, "done before", ("completed", "done before"), "done before"),
    ]
    for content_type in ("fn", "set"):
        for content_id, _text, queued, embedded in cases:
            if queued is not None:
                status, old = queued
                await db.execute(
                    "INSERT INTO embedding_queue (content_type, content_id, content_text,"
                    " content_hash, status, retry_count, error_message, lease_token,"
                    " scheduled_at)"
                    " VALUES ($1, $2, $3, encode(sha256(convert_to($3, 'UTF8')), 'hex'), $4,"
                    " 2, 'boom', CASE WHEN $4 = 'processing' THEN gen_random_uuid() END,"
                    " '2000-01-01')",
                    content_type, content_id, old, status,
                )
            if embedded is not None:
                await add_embedding(db, content_id, embedded, content_type)
    for content_id, text, _queued, _embedded in cases:
        await db.execute(
            "SELECT queue_for_embedding('fn', $1, $2, 3)", content_id, text
        )
    await db.execute(
        "SELECT embedworker_track_add('set', 3, $1::bigint[],"
        " ARRAY(SELECT embedworker_normalize(t) FROM unnest($2::text[]) AS t))",
        [case[0] for case in cases],
        [case[1] for case in cases],
    )

    compared = (
        "content_id, content_text, content_hash, priority, status, retry_count, error_message,"
        " lease_token IS NULL AS no_lease, scheduled_at > '2000-01-01' AS rescheduled"
    )
    by_fn = await db.fetch(
        f"SELECT {compared} FROM embedding_queue WHERE content_type = 'fn' ORDER BY content_id"
    )
    by_set = await db.fetch(
        f"SELECT {compared} FROM embedding_queue WHERE content_type = 'set' ORDER BY content_id"
    )
    assert [dict(r) for r in by_set] == [dict(r) for r in by_fn]
    assert [r["content_id"] for r in by_fn] == [1, 2, 3, 4, 6, 8, 9]


# -- volume -----------------------------------------------------------------------------------


async def test_bulk_insert_of_10k_rows_in_one_statement(db: asyncpg.Connection) -> None:
    await track_posts(db)

    await db.execute(
        "INSERT INTO posts (id, title, body)"
        " SELECT n, 'title ' || n, 'body of post ' || n FROM generate_series(1, 10000) AS n"
    )

    assert await db.fetchval("SELECT count(*) FROM embedding_queue") == 10000
    assert await db.fetchval(
        "SELECT count(*) FROM embedding_queue"
        " WHERE content_type = 'post' AND status = 'queued'"
        " AND content_text = 'title ' || content_id || ' body of post ' || content_id"
    ) == 10000


# -- hostile and odd input --------------------------------------------------------------------


async def test_hostile_table_and_column_names(db: asyncpg.Connection) -> None:
    table = "Robert'); DROP TABLE students;--"
    text_column = 'text col "quoted"'
    id_column = "id); DROP TABLE students; --"
    flag = "gone'; DROP TABLE students; --"
    content_type = "x'); DROP TABLE embedding_queue; --"
    await db.execute("CREATE TABLE students (name text)")
    await db.execute(
        f"CREATE TABLE {quote_ident(table)} ({quote_ident(id_column)} bigint PRIMARY KEY,"
        f" {quote_ident(text_column)} text, t text, {quote_ident(flag)} boolean DEFAULT false)"
    )

    await track(
        db, quote_ident(table), content_type, [text_column, "t"], id_column=id_column,
        where=f"NOT {quote_ident(flag)}",
    )
    await db.execute(
        f"INSERT INTO {quote_ident(table)} VALUES (1, 'Little Bobby', NULL), (2, 'Tables', 't')"
    )
    assert await texts(db, content_type) == {1: "Little Bobby", 2: "Tables t"}
    await db.execute(
        f"INSERT INTO {quote_ident(table)} SELECT n, 'many', 'rows' FROM generate_series(3, 99) n"
    )
    await db.execute(
        f"UPDATE {quote_ident(table)} SET {quote_ident(text_column)} = 'Robert'"
        f" WHERE {quote_ident(id_column)} = 1"
    )
    await db.execute(
        f"UPDATE {quote_ident(table)} SET {quote_ident(flag)} = true"
        f" WHERE {quote_ident(id_column)} = 2"
    )

    assert (await texts(db, content_type))[1] == "Robert"
    assert len(await texts(db, content_type)) == 98
    assert await backfill(db, content_type, chunk_size=10) == 98
    await db.execute(f"DELETE FROM {quote_ident(table)}")
    assert await texts(db, content_type) == {}
    assert await db.fetchval("SELECT to_regclass('students') IS NOT NULL")
    [listed] = await tracked(db)
    assert listed.table == quote_ident(table)
    assert listed.text_columns == (text_column, "t")
    assert listed.id_column == id_column
    assert await untrack(db, content_type)


@pytest.mark.parametrize(
    "where",
    [
        "true) FROM pg_class; DROP TABLE students; --",
        "true; DROP TABLE students",
        "true)::boolean FROM posts AS t LIMIT 0; DROP TABLE students; SELECT (true",
        "(SELECT true)",
        "posts IS NOT NULL",
        "views",
    ],
)
async def test_a_where_clause_that_is_not_a_row_expression_is_refused(
    db: asyncpg.Connection, where: str
) -> None:
    await db.execute("CREATE TABLE students (name text)")
    await db.execute(POSTS)

    with pytest.raises(asyncpg.PostgresError):
        await track(db, "posts", "post", ["title"], where=where)

    assert await db.fetchval("SELECT to_regclass('students') IS NOT NULL")
    assert await tracked(db) == []
    assert not await db.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'posts'::regclass"
    )


async def test_odd_ids_and_values_never_fail_the_write(db: asyncpg.Connection) -> None:
    await db.execute(
        "CREATE TABLE notes (ref text, title text, tags text[], meta jsonb, weight integer)"
    )
    await track(db, "notes", "note", ["title", "tags", "meta"], id_column="ref",
                where="100 / weight > 0")
    long_text = "word " * 200_000
    unicode_text = "Ünïcödé 😀 עברית e\u0301 \u200b \U0001f3f3\ufe0f\u200d\U0001f308"

    await db.execute(
        "INSERT INTO notes VALUES"
        " ('abc', 'not an integer id', NULL, NULL, 1),"
        " ('99999999999999999999', 'too big for bigint', NULL, NULL, 1),"
        " (NULL, 'no id at all', NULL, NULL, 1),"
        " ('1', NULL, NULL, NULL, 1),"
        " ('2', $1, NULL, NULL, 1),"
        " ('3', $2, ARRAY['x', NULL], '{\"k\": [1, null]}', 1),"
        " ('4', 'weight zero makes the where clause fail', NULL, NULL, 0),"
        " ('-5', 'negative ids are ids', NULL, NULL, 1)",
        long_text,
        unicode_text,
    )
    await db.execute("UPDATE notes SET title = 'still no id' WHERE ref = 'abc'")
    await db.execute("UPDATE notes SET title = 'fails again' WHERE ref = '4'")
    await db.execute("UPDATE notes SET weight = 0, title = 'now failing' WHERE ref = '3'")
    await db.execute("UPDATE notes SET ref = 'xyz' WHERE ref = '-5'")

    assert await db.fetchval("SELECT count(*) FROM notes") == 8
    queued = await texts(db, "note")
    assert set(queued) == {2, 3}
    assert queued[2] == long_text.strip()
    assert queued[3] == f'{unicode_text} ["x", null] {{"k": [1, null]}}'

    await db.execute("DELETE FROM notes")
    assert await texts(db, "note") == {}


async def test_a_writer_without_queue_privileges_still_writes(db: asyncpg.Connection) -> None:
    await track_posts(db, where="NOT is_deleted")
    await db.execute("INSERT INTO posts (id, title) VALUES (1, 'by the owner')")
    role = "embedworker_test_" + uuid.uuid4().hex[:12]
    await db.execute(f"CREATE ROLE {role}")
    try:
        await db.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON posts TO {role}")
        await db.execute(f"SET ROLE {role}")
        await db.execute("INSERT INTO posts (id, title) VALUES (2, 'by the app')")
        await db.execute(
            "INSERT INTO posts (id, title) SELECT n, 'bulk' FROM generate_series(3, 50) AS n"
        )
        await db.execute("UPDATE posts SET title = 'edited' WHERE id = 1")
        await db.execute("UPDATE posts SET is_deleted = true WHERE id = 2")
        await db.execute("DELETE FROM posts WHERE id = 3")
        await db.execute("RESET ROLE")

        assert await db.fetchval("SELECT count(*) FROM posts") == 49
        assert await texts(db) == {1: "by the owner"}
    finally:
        await db.execute("RESET ROLE")
        await db.execute(f"DROP OWNED BY {role}")
        await db.execute(f"DROP ROLE {role}")


async def test_track_with_a_missing_column_names_it(db: asyncpg.Connection) -> None:
    await db.execute(POSTS)

    with pytest.raises(asyncpg.UndefinedColumnError, match='column "bodyy" of table posts'):
        await track(db, "posts", "post", ["title", "bodyy"])
    with pytest.raises(asyncpg.UndefinedColumnError, match='column "post_id" of table posts'):
        await track(db, "posts", "post", ["title"], id_column="post_id")
    with pytest.raises(asyncpg.UndefinedTableError, match="postz"):
        await track(db, "public.postz", "post", ["title"])
    with pytest.raises(asyncpg.DatatypeMismatchError, match="updated_at"):
        await track(db, "posts", "post", ["title"], id_column="updated_at")
    with pytest.raises(asyncpg.InvalidParameterValueError, match="priority"):
        await track(db, "posts", "post", ["title"], priority=11)

    assert await tracked(db) == []


async def test_one_content_type_tracks_one_table(db: asyncpg.Connection) -> None:
    await track_posts(db)
    await db.execute("CREATE TABLE articles (id bigint, title text)")

    with pytest.raises(asyncpg.DuplicateObjectError, match="already tracks table posts"):
        await track(db, "articles", "post", ["title"])

    # the same table again: the configuration is replaced
    await track(db, "posts", "post", ["body"], priority=2)
    [listed] = await tracked(db)
    assert (listed.table, listed.text_columns, listed.priority) == ("posts", ("body",), 2)
    await db.execute("INSERT INTO posts (id, title, body) VALUES (1, 'ignored', 'the body')")
    assert await texts(db) == {1: "the body"}


# -- untrack, tracked -------------------------------------------------------------------------


async def test_untrack_removes_the_triggers(db: asyncpg.Connection) -> None:
    await track_posts(db)
    await db.execute("INSERT INTO posts (id, title) VALUES (1, 'before')")

    assert await untrack(db, "post") is True

    await db.execute("INSERT INTO posts (id, title) VALUES (2, 'after')")
    await db.execute("UPDATE posts SET title = 'changed'")
    await db.execute("DELETE FROM posts")
    assert await texts(db) == {1: "before"}
    assert not await db.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'posts'::regclass"
    )
    assert await tracked(db) == []
    assert await untrack(db, "post") is False


async def test_tracked_lists_the_configuration(db: asyncpg.Connection) -> None:
    await db.execute("CREATE SCHEMA lms")
    await db.execute("CREATE TABLE lms.courses (course_id integer, name text, summary text,"
                     " archived boolean)")
    await track_posts(db)
    await track(db, "lms.courses", "course", ["name", "summary"], id_column="course_id",
                priority=2, where="archived IS NOT TRUE", on_delete="delete")

    listed = await tracked(db)

    assert [t.content_type for t in listed] == ["course", "post"]
    course = listed[0]
    assert course == TrackedTable(
        content_type="course",
        table="lms.courses",
        text_columns=("name", "summary"),
        id_column="course_id",
        priority=2,
        where="(archived IS NOT TRUE)",
        on_delete="delete",
        created_at=course.created_at,
        installed=True,
    )
    assert listed[1].where is None
    assert listed[1].on_delete == "mark"

    await db.execute("DROP TABLE lms.courses")
    assert [t.installed for t in await tracked(db)] == [False, True]
    assert await untrack(db, "course") is True


# -- backfill ---------------------------------------------------------------------------------


async def test_backfill_queues_existing_rows_in_chunks(db: asyncpg.Connection) -> None:
    await db.execute(POSTS)
    await db.execute(
        "INSERT INTO posts (id, title, is_deleted)"
        " SELECT n * 3, CASE WHEN n = 20 THEN '' ELSE 'post ' || n END, n % 5 = 0"
        " FROM generate_series(1, 50) AS n"
    )
    await track(db, "posts", "post", ["title", "body"], where="NOT is_deleted")
    assert await texts(db) == {}
    progress: list[BackfillProgress] = []

    queued = await backfill(db, "post", chunk_size=7, on_progress=progress.append)

    live = {n * 3: f"post {n}" for n in range(1, 51) if n % 5 != 0}
    assert queued == len(live) == 40
    assert await texts(db) == live
    assert [p.scanned for p in progress] == [7, 14, 21, 28, 35, 42, 49, 50]
    assert progress[-1].queued == 40
    assert progress[0].last_id == "21"


async def test_backfill_of_an_untracked_type_fails(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.UndefinedObjectError, match="not tracked"):
        await backfill(db, "nothing")
    with pytest.raises(ValueError, match="chunk_size"):
        await backfill(db, "nothing", chunk_size=0)


async def test_track_can_backfill_in_sql(db: asyncpg.Connection) -> None:
    await db.execute(POSTS)
    await db.execute("INSERT INTO posts (id, title) VALUES (1, 'one'), (2, 'two')")

    assert await db.fetchval(
        "SELECT embedworker_track('posts', 'post', ARRAY['title'], backfill => true)"
    ) == 2
    assert await texts(db) == {1: "one", 2: "two"}


# -- Studify ----------------------------------------------------------------------------------


async def test_studify_queue_function_and_triggers_keep_working(db: asyncpg.Connection) -> None:
    await db.execute(
        """
        CREATE FUNCTION queue_for_embedding(p_content_type text, p_content_id bigint,
                                            p_priority integer DEFAULT 5) RETURNS boolean
        LANGUAGE sql AS $$ SELECT queue_for_embedding(p_content_type, p_content_id,
                                                      'studify ' || p_content_id, p_priority) $$
        """
    )
    await db.execute("CREATE TABLE studify_posts (id bigint, title text)")
    await db.execute(
        """
        CREATE FUNCTION studify_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM queue_for_embedding('studify', NEW.id, 2); RETURN NEW; END $$;
        CREATE TRIGGER studify AFTER INSERT ON studify_posts
            FOR EACH ROW EXECUTE FUNCTION studify_trigger();
        """
    )
    await track_posts(db)

    await db.execute("INSERT INTO studify_posts VALUES (7, 'x')")
    await db.execute("INSERT INTO posts (id, title) VALUES (7, 'tracked')")

    assert await texts(db, "studify") == {7: "studify 7"}
    assert await texts(db) == {7: "tracked"}
