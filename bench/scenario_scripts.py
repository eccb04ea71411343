"""The scenarios of bench/run.py that run another bench script in a process of its own:
trigger (bench/trigger_cost.py) and search (bench/search.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

import harness
from harness import log

# -- trigger cost (another engineer's script) ------------------------------------------------


def scenario_trigger(args: argparse.Namespace) -> dict[str, Any] | None:
    script = harness.BENCH / "trigger_cost.py"
    if not script.exists():
        log("trigger: bench/trigger_cost.py does not exist (yet): skipped")
        return None
    help_text = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                               text=True, timeout=60, cwd=harness.REPO).stdout
    argv = [sys.executable, str(script)]
    if args.quick and "--quick" in help_text:
        argv.append("--quick")
    elif args.quick and "--repeat" in help_text:
        argv += ["--repeat", "1"]
    log(f"trigger: {' '.join(argv[1:])}")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800,
                              cwd=harness.REPO)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 1800 s"}
    parsed: Any = None
    for candidate in (done.stdout, *reversed(done.stdout.strip().splitlines())):
        try:
            parsed = json.loads(candidate)
            break
        except ValueError:
            continue
    return {"argv": argv[1:], "exit_code": done.returncode, "json": parsed,
            "stdout": done.stdout[-6000:], "stderr": done.stderr[-2000:]}


# -- search: bench/search.py, a module of its own ---------------------------------------------


def scenario_search(args: argparse.Namespace) -> dict[str, Any]:
    """bench/search.py in a process of its own (it starts its own PostgreSQL)."""
    out = args.out / "search.json"
    argv = [sys.executable, str(harness.BENCH / "search.py"), "--out", str(out)]
    if args.quick:
        argv += ["--rows", "20000", "--queries", "50", "--exact-queries", "10"]
    log(f"search: {' '.join(argv[1:])}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, cwd=harness.REPO)
    table = [line for line in done.stdout.splitlines() if not line.startswith("[")]
    return {"argv": argv[1:], "exit_code": done.returncode, "table": "\n".join(table),
            "stderr": done.stderr[-2000:]}
