"""`embedworker demo` with a small sample and stand-in servers only (CI has no model)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_demo(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("EMBEDWORKER_") and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "embedworker", "demo", "--standin-only", "--sample", "40",
         "--data-dir", str(data_dir)],
        env=env, capture_output=True, text=True, timeout=240,
    )


def test_demo_runs_twice_and_leaves_nothing_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    for _ in range(2):  # the second run reuses the data folder
        result = run_demo(data_dir)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Done: 40 items completed, 0 failed, 80 vectors written" in result.stdout
        assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "PostgreSQL still runs"
    assert "STAND-IN" in result.stdout
    # the hybrid search through embedworker_search(): three hits with both models' parts
    hybrid = result.stdout.split("6. A hybrid search", 1)[1].splitlines()
    hits = [line for line in hybrid if "(e5_small " in line and ", bge_m3 " in line]
    assert len(hits) == 3, result.stdout
    scores = [float(line.split()[0]) for line in hits]
    assert scores == sorted(scores, reverse=True)
