"""Every setting is documented in the README's configuration tables."""

from __future__ import annotations

from pathlib import Path

from embedworker.config import ModelSettings, ScheduleSettings, Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def documented(key: str) -> bool:
    return f"| `{key}` |" in README


def test_every_top_level_setting_is_documented() -> None:
    missing = [name for name in Settings.model_fields
               if name not in ("models", "schedules") and not documented(name)]
    assert missing == []


def test_every_model_setting_is_documented() -> None:
    assert [name for name in ModelSettings.model_fields if not documented(name)] == []


def test_every_schedule_is_documented() -> None:
    assert [name for name in ScheduleSettings.model_fields
            if not documented(f"[schedules] {name}")] == []
