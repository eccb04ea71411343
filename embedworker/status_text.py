"""`embedworker status`: the queue statistics as a compact plain-text report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from embedworker.db.stats import QueueStatus

ERROR_WIDTH = 70
RIGHT, LEFT = ">", "<"


def render_status(status: QueueStatus) -> str:
    """The report: counts, what is due, priorities, content types, errors, recent items."""
    sections = [
        f"embedding_queue at {_time(status.as_of)}: {status.total} items",
        _table(
            ("status", "items", ""),
            _status_rows(status),
            (LEFT, RIGHT, LEFT),
        ),
    ]
    if status.models:
        sections.append(
            _table(
                ("model", "version", "current", "outdated", "missing", "index", ""),
                [
                    (name, coverage.version, str(coverage.current), str(coverage.outdated),
                     str(coverage.missing), _index(status, name),
                     "" if coverage.complete else f"embedworker reembed {name}")
                    for name, coverage in status.models.items()
                ],
                (LEFT, LEFT, RIGHT, RIGHT, RIGHT, LEFT, LEFT),
            )
        )
    if status.by_priority:
        sections.append(
            _table(
                ("priority", "items"),
                [("-" if p is None else str(p), str(n)) for p, n in status.by_priority.items()],
                (RIGHT, RIGHT),
            )
        )
    if status.by_content_type:
        sections.append(
            _table(
                ("content type", "items"),
                [(name, str(n)) for name, n in status.by_content_type.items()],
                (LEFT, RIGHT),
            )
        )
    if status.failed_by_error:
        sections.append(
            _table(
                ("failed", "error"),
                [(str(n), _one_line(message)) for message, n in status.failed_by_error],
                (RIGHT, LEFT),
            )
        )
    if status.recent:
        sections.append(
            _table(
                ("id", "type", "content id", "status", "retries", "updated", "error"),
                [
                    (
                        str(item.id),
                        item.content_type,
                        str(item.content_id),
                        item.status,
                        str(item.retry_count),
                        _time(item.updated_at),
                        _one_line(item.error_message) if item.error_message else "",
                    )
                    for item in status.recent
                ],
                (RIGHT, LEFT, RIGHT, LEFT, RIGHT, LEFT, LEFT),
            )
        )
    return "\n\n".join(sections) + "\n"


def _index(status: QueueStatus, model: str) -> str:
    indexes = status.indexes.get(model)
    return "-" if indexes is None else indexes.describe()


def _status_rows(status: QueueStatus) -> list[tuple[str, str, str]]:
    """One row per status; the queued row is followed by its breakdown."""
    rows: list[tuple[str, str, str]] = []
    for name, count in status.by_status.items():
        rows.append((name, str(count), ""))
        if name != "queued":
            continue
        waiting = status.oldest_due_age_s
        rows += [
            ("  due now", str(status.due),
             "" if waiting is None else f"oldest waiting {format_duration(waiting)}"),
            ("  scheduled later", str(status.scheduled_later), ""),
            ("  stranded", str(status.stranded), "never claimable" if status.stranded else ""),
            ("  waiting for a model", str(status.waiting_for_model),
             ", ".join(f"{model} {n}" for model, n in status.waiting_by_model.items())),
        ]
    return rows


def format_duration(seconds: float) -> str:
    """``3 s``, ``4 min 05 s``, ``2 h 03 min``, ``3 d 04 h``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def _time(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _one_line(message: str | None, width: int = ERROR_WIDTH) -> str:
    if message is None:
        return "(no message)"
    text = " ".join(message.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(
            f"{cell:{side}{width}}" for cell, side, width in zip(row, align, widths, strict=True)
        ).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)
