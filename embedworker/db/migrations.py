"""Applies sql/NNN_*.sql in order, each once and in its own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

# Serialises concurrent `migrate` runs from several workers.
_MIGRATE_LOCK_KEY = 0x656D6277  # "embw"

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS embedworker_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def sql_dir() -> Path:
    """The migrations folder: inside the installed package, or the repository's sql/."""
    packaged = Path(__file__).resolve().parent.parent / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "sql"


def load_migrations(folder: Path | None = None) -> list[Migration]:
    folder = folder or sql_dir()
    return [
        Migration(version=path.stem, sql=path.read_text(encoding="utf-8"))
        for path in sorted(folder.glob("[0-9][0-9][0-9]_*.sql"))
    ]


async def applied_versions(conn: asyncpg.Connection) -> set[str]:
    exists = await conn.fetchval("SELECT to_regclass('embedworker_migrations') IS NOT NULL")
    if not exists:
        return set()
    rows = await conn.fetch("SELECT version FROM embedworker_migrations")
    return {row["version"] for row in rows}


async def pending(conn: asyncpg.Connection) -> list[str]:
    """Versions not yet applied to this database."""
    done = await applied_versions(conn)
    return [m.version for m in load_migrations() if m.version not in done]


async def migrate(conn: asyncpg.Connection, channel: str) -> list[str]:
    """Apply what is missing, then point the NOTIFY trigger at ``channel``. Returns versions."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATE_LOCK_KEY)
    try:
        await conn.execute(_CREATE_LEDGER)
        done = await applied_versions(conn)
        for migration in load_migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO embedworker_migrations (version) VALUES ($1)", migration.version
                )
            applied.append(migration.version)
        await set_channel(conn, channel)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATE_LOCK_KEY)
    return applied


async def set_channel(conn: asyncpg.Connection, channel: str) -> None:
    current = await conn.fetchval("SELECT embedworker_channel()")
    if current == channel:
        return
    literal = await conn.fetchval("SELECT quote_literal($1::text)", channel)
    await conn.execute(
        "CREATE OR REPLACE FUNCTION embedworker_channel() RETURNS text "
        f"LANGUAGE sql STABLE AS $$ SELECT {literal}::text $$"
    )
