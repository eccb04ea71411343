"""`run` claims before it loads what only the work after the claim needs (README, Performance)."""

from __future__ import annotations

import subprocess
import sys

# Loaded by the model clients, the metrics and the HTTP endpoint, after the first claim.
AFTER_THE_FIRST_CLAIM = ("numpy", "httpx", "tenacity", "aiohttp", "orjson", "simdjson",
                         "prometheus_client", "embedworker.ops.server", "embedworker.schedules",
                         "embedworker.indexing")


def test_what_run_imports_before_its_first_claim_leaves_out_the_clients() -> None:
    # A process of its own: this one has imported everything already.
    script = (
        "import sys\n"
        "import embedworker.cli, embedworker.service\n"
        f"print(','.join(m for m in {AFTER_THE_FIRST_CLAIM!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == ""
