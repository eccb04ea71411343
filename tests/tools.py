"""System tools that some tests need (chromium, promtool): skipped where a tool is missing,
except when $TESTS_REQUIRE_TOOLS names it; the make targets that install a tool set it,
so there a missing tool fails the run instead of skipping silently."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_ENV = "TESTS_REQUIRE_TOOLS"


def require_tool(name: str) -> str:
    """The tool's path; skip the test when it is not installed (fail when it is required)."""
    path = shutil.which(name)
    if path is not None:
        return path
    required = os.environ.get(REQUIRE_ENV, "").replace(",", " ").split()
    if name in required:
        pytest.fail(f"{name} is required ({REQUIRE_ENV}) but not installed")
    pytest.skip(f"{name} is not installed (its make target installs it)")
