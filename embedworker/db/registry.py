"""``embedworker_models``: the configured models, written where SQL can read them.

``embedworker_search()`` runs inside the database and must know each model's columns and
current version. The daemon (at start and on every reload) and the commands that search or
index write the configuration's models into this table: every configured model is upserted (a
disabled one with ``enabled = false``) and the rows of models no longer configured are
removed, in one transaction under an advisory lock, so copies starting together do not
interleave. A row that did not change is not rewritten.
"""

from __future__ import annotations

import asyncpg

from embedworker.config import Settings

# Serialises registrations from several daemons and commands (pg_advisory_xact_lock).
_REGISTRY_LOCK_KEY = 0x656D6272  # "embr"

_UPSERT_SQL = """
INSERT INTO embedworker_models AS m
    (name, column_name, flag_column, dimension, version, enabled, search_weight, ef_search)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::bool[],
                     $7::float8[], $8::int[])
ORDER BY 1
ON CONFLICT (name) DO UPDATE
    SET column_name = EXCLUDED.column_name,
        flag_column = EXCLUDED.flag_column,
        dimension = EXCLUDED.dimension,
        version = EXCLUDED.version,
        enabled = EXCLUDED.enabled,
        search_weight = EXCLUDED.search_weight,
        ef_search = EXCLUDED.ef_search,
        updated_at = now()
    WHERE (m.column_name, m.flag_column, m.dimension, m.version, m.enabled, m.search_weight,
           m.ef_search)
          IS DISTINCT FROM
          (EXCLUDED.column_name, EXCLUDED.flag_column, EXCLUDED.dimension, EXCLUDED.version,
           EXCLUDED.enabled, EXCLUDED.search_weight, EXCLUDED.ef_search)
"""

_REMOVE_SQL = "DELETE FROM embedworker_models WHERE name <> ALL ($1::text[])"


async def register_models(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, settings: Settings
) -> None:
    """Make ``embedworker_models`` say what ``settings`` configures."""
    models = sorted(settings.models.items())
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _REGISTRY_LOCK_KEY)
        await conn.execute(
            _UPSERT_SQL,
            [name for name, _ in models],
            [model.column for _, model in models],
            [model.flag_column for _, model in models],
            [model.dimension for _, model in models],
            [model.version for _, model in models],
            [model.enabled for _, model in models],
            [model.search_weight for _, model in models],
            [settings.search_ef_search for _ in models],
        )
        await conn.execute(_REMOVE_SQL, [name for name, _ in models])
