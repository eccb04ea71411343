"""Where a model's vectors live in ``embeddings``, which version made each, and whether one is
current: the SQL expressions that the queue, the coverage report and `reembed` share.

A model's vector in a row counts as *stored* when its flag is true and its column is not NULL
(the flag says the vector belongs to the row's ``content_hash``). ``embedding_versions`` records
the version that made it; a vector from before versions were recorded counts as
``DEFAULT_VERSION``. A stored vector is *current* when that version is the model's configured one.
"""

from __future__ import annotations

from dataclasses import dataclass

from embedworker.config import DEFAULT_VERSION


@dataclass(frozen=True)
class ModelColumns:
    """One configured model as the database sees it: its columns and its current version."""

    name: str
    column: str
    flag_column: str
    dimension: int
    version: str = DEFAULT_VERSION


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A SQL string literal (standard_conforming_strings, on since PostgreSQL 9.1)."""
    return "'" + value.replace("'", "''") + "'"


def stored(model: ModelColumns, row: str = "e") -> str:
    """True when ``row`` holds a vector of ``model`` for its content_hash (NULL-safe)."""
    return (
        f"coalesce({row}.{quote_ident(model.flag_column)}"
        f" AND {row}.{quote_ident(model.column)} IS NOT NULL, false)"
    )


def stored_version(model: ModelColumns, row: str = "e") -> str:
    """The version that made ``row``'s vector of ``model``."""
    return (
        f"coalesce({row}.embedding_versions ->> {quote_literal(model.name)},"
        f" {quote_literal(DEFAULT_VERSION)})"
    )


def current(model: ModelColumns, row: str = "e") -> str:
    """True when ``row`` holds a vector of ``model`` made by its configured version."""
    version = quote_literal(model.version)
    return f"({stored(model, row)} AND {stored_version(model, row)} = {version})"
