"""The status page at ``/`` and the data it shows, ``/overview.json``.

The page is one HTML document built from the package files page/status.html, status.css and
status.js (the style and the script are inlined, so it loads nothing else); its
Content-Security-Policy allows exactly that style and script, and fetches from this server
only. The script fetches ``overview.json`` and redraws itself.

``overview.json`` carries what ``/status`` knows (no content text: the queue statistics never
select it), each model's state from readiness with its coverage, and this copy's throughput.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from embedworker.ops.throughput import ThroughputWindow

PAGE_FILES = files("embedworker.ops") / "page"
HTML_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True)
class StatusPage:
    """The page's bytes and the headers it must be served with."""

    body: bytes
    headers: tuple[tuple[str, str], ...]


@functools.cache
def status_page() -> StatusPage:
    """The page, read from the package once."""
    template = (PAGE_FILES / "status.html").read_text(encoding="utf-8")
    style = (PAGE_FILES / "status.css").read_text(encoding="utf-8")
    script = (PAGE_FILES / "status.js").read_text(encoding="utf-8")
    html = template.replace("<!--STYLE-->", f"<style>{style}</style>").replace(
        "<!--SCRIPT-->", f"<script>{script}</script>"
    )
    policy = "; ".join([
        "default-src 'none'",
        f"style-src '{_sha256(style)}'",
        f"script-src '{_sha256(script)}'",
        "connect-src 'self'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])
    return StatusPage(
        body=html.encode("utf-8"),
        headers=(
            ("Content-Security-Policy", policy),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ),
    )


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def overview(
    *,
    queue: Mapping[str, Any] | None,
    queue_error: str | None,
    health: Mapping[str, Any],
    ready: Mapping[str, Any],
    throughput: ThroughputWindow,
) -> dict[str, Any]:
    """The JSON of ``/overview.json``.

    ``queue`` is ``/status``'s JSON (None when it could not be read, ``queue_error`` says why);
    ``health`` and ``ready`` are the ``/healthz`` and ``/readyz`` JSON. Each model's ``up``
    comes from readiness (None when readiness could not tell), its coverage and waiting
    count from the queue.
    """
    checks = ready.get("checks", {})
    states: Mapping[str, bool] = checks.get("models", {})
    problems: Mapping[str, str] = checks.get("model_problems", {})
    coverage: Mapping[str, Mapping[str, Any]] = queue["models"] if queue else {}
    waiting: Mapping[str, int] = queue["waitingByModel"] if queue else {}
    models = {}
    for name in sorted(set(states) | set(coverage)):
        counts = coverage.get(name, {})
        models[name] = {
            "up": states.get(name),
            "problem": problems.get(name),
            "version": counts.get("version"),
            "current": counts.get("current"),
            "outdated": counts.get("outdated"),
            "missing": counts.get("missing"),
            "waiting": waiting.get(name, 0) if queue else None,
        }
    return {
        "generatedAt": datetime.now(UTC).isoformat(),
        "health": {"ok": health["status"] == "ok", "reasons": list(health["reasons"])},
        "ready": {"ok": ready["status"] == "ok", "reasons": list(ready["reasons"])},
        "models": models,
        "queue": dict(queue) if queue else None,
        "queueError": queue_error,
        "throughput": throughput.as_json(),
    }
