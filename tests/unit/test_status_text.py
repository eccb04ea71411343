"""The plain-text status report."""

from __future__ import annotations

from datetime import UTC, datetime

from embedworker.db.stats import QueueStatus, RecentItem
from embedworker.status_text import format_duration, render_status

AS_OF = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def status(**overrides: object) -> QueueStatus:
    values: dict[str, object] = {
        "as_of": AS_OF,
        "total": 1234,
        "by_status": {"queued": 120, "processing": 4, "completed": 1100, "failed": 10},
        "by_priority": {1: 34, 5: 1200},
        "by_content_type": {"post": 1000, "comment": 234},
        "due": 100,
        "scheduled_later": 15,
        "stranded": 5,
        "oldest_due_age_s": 192.4,
        "failed_by_error": (("e5_small: HTTP 422:\n  input\ttoo long " + "x" * 100, 7),
                            (None, 3)),
        "recent": (
            RecentItem(id=77, content_type="post", content_id=42, status="failed", priority=5,
                       retry_count=3, error_message="boom", created_at=AS_OF,
                       updated_at=AS_OF),
            RecentItem(id=8, content_type="comment", content_id=123456, status="completed",
                       priority=1, retry_count=0, error_message=None, created_at=None,
                       updated_at=None),
        ),
    }
    values.update(overrides)
    return QueueStatus(**values)  # type: ignore[arg-type]


def test_report_shows_every_figure() -> None:
    text = render_status(status())
    lines = text.splitlines()

    assert lines[0] == "embedding_queue at 2026-03-01 12:00:00Z: 1234 items"
    assert any(line.split()[:2] == ["queued", "120"] for line in lines)
    assert "oldest waiting 3 min 12 s" in text
    due = next(line for line in lines if "due now" in line)
    assert due.split()[2] == "100"
    assert any("stranded" in line and "5" in line.split() for line in lines)
    assert any(line.split() == ["comment", "234"] for line in lines)
    assert "input too long" in text  # whitespace of the message collapsed to one line
    assert "(no message)" in text
    assert max(len(line) for line in lines) < 140
    assert "\x1b" not in text


def test_columns_are_aligned() -> None:
    lines = render_status(status()).splitlines()

    def block(title: str) -> list[str]:
        start = next(n for n, line in enumerate(lines) if line.startswith(title))
        end = lines.index("", start) if "" in lines[start:] else len(lines)
        return lines[start:end]

    counts = block("status ")
    end = counts[0].index("items") + len("items")
    for line in counts[1:]:  # right-aligned under the header
        assert line[end - 1].isdigit()
        assert len(line) == end or line[end] == " "

    recent = block("id ")
    start = recent[0].index("updated")
    assert [line[start:].split()[0][:4] for line in recent[1:]] == ["2026", "-"]


def test_empty_queue_report() -> None:
    text = render_status(
        status(total=0, by_status=dict.fromkeys(["queued", "processing", "completed", "failed"], 0),
               by_priority={}, by_content_type={}, due=0, scheduled_later=0, stranded=0,
               oldest_due_age_s=None, failed_by_error=(), recent=())
    )
    assert "0 items" in text
    assert "oldest" not in text
    assert "priority" not in text


def test_format_duration() -> None:
    assert format_duration(0.4) == "0 s"
    assert format_duration(59) == "59 s"
    assert format_duration(65) == "1 min 05 s"
    assert format_duration(2 * 3600 + 3 * 60) == "2 h 03 min"
    assert format_duration(3 * 86400 + 4 * 3600) == "3 d 04 h"


def test_report_shows_parked_items_and_each_models_coverage() -> None:
    from embedworker.db.coverage import ModelCoverage
    from embedworker.db.indexes import AnnIndex, ColumnIndexes

    text = render_status(status(
        waiting_for_model=12, waiting_by_model={"bge_m3": 12},
        models={"e5_small": ModelCoverage("2", current=900, outdated=200, missing=0),
                "bge_m3": ModelCoverage("1", current=1100, outdated=0, missing=0)},
        indexes={"e5_small": ColumnIndexes(AnnIndex("e5_idx", "hnsw", True, False)),
                 "bge_m3": ColumnIndexes()},
    ))
    lines = text.splitlines()

    waiting = next(line for line in lines if "waiting for a model" in line)
    assert waiting.split()[4:] == ["12", "bge_m3", "12"]
    e5 = next(line for line in lines if line.startswith("e5_small"))
    assert e5.split() == ["e5_small", "2", "900", "200", "0", "hnsw", "e5_idx",
                          "embedworker", "reembed", "e5_small"]
    bge = next(line for line in lines if line.startswith("bge_m3"))
    assert bge.split() == ["bge_m3", "1", "1100", "0", "0", "none"]
