"""structlog to stdout: readable lines on a terminal, JSON lines everywhere else.

Under journald each line starts with its syslog priority (``<3>`` error ... ``<7>`` debug), so
``journalctl -p err`` works. Libraries that log through the standard library (asyncpg, httpx)
go through the same renderer, so every line of output has one format.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
SYSLOG_PRIORITIES = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "warn": 4,
                     "info": 6, "debug": 7}


def stdout_is_journal() -> bool:
    """True when systemd connected stdout to the journal ($JOURNAL_STREAM is its dev:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = stream.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


class SyslogPrefixed:
    """Wraps a renderer so that each line starts with ``<priority>`` for journald."""

    def __init__(self, renderer: Callable[..., Any]):
        self._renderer = renderer

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        priority = SYSLOG_PRIORITIES.get(str(event.get("level", method)).lower(), 6)
        return f"<{priority}>{self._renderer(logger, method, event)}"


def configure_logging(
    level: str = "info", *, json: bool | None = None, journal: bool | None = None
) -> None:
    """Set up structlog and the standard library; ``json`` defaults to "stdout is no TTY",
    ``journal`` to "stdout is the journal"."""
    if json is None:
        json = not sys.stdout.isatty()
    if journal is None:
        journal = stdout_is_journal()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=not journal)
    )
    if journal:
        renderer = SyslogPrefixed(renderer)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    exceptions: list[Any] = [structlog.processors.format_exc_info] if json else []
    structlog.configure(
        processors=[*shared, *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *exceptions,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Library chatter below a warning is not the operator's business.
    root.setLevel(max(LEVELS[level], logging.WARNING))
