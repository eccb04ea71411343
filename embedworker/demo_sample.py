"""The demo's built-in sample: short Studify-like texts written for `embedworker demo`.

Courses, their lessons, community posts and profiles over some 25 subjects, in English, Malay and
Simplified Chinese, so that each query in QUERIES has clearly relevant and clearly irrelevant texts.
Everything here is invented: no real people, no URLs, no personal data. Courses come first, in
subject order, so even a short prefix of SAMPLE (`--sample N`) spans most of the subjects.

The texts live in the package data file `embedworker/data/demo_sample.json` (an object with
"about", "sample": a list of {"kind", "text"}, and "queries": a list of strings); this module
loads it once, at import, into the tuples below.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any


def _load() -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    resource = files("embedworker") / "data" / "demo_sample.json"
    data: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    sample = tuple((str(item["kind"]), str(item["text"])) for item in data["sample"])
    queries = tuple(str(query) for query in data["queries"])
    return sample, queries


SAMPLE: tuple[tuple[str, str], ...]
QUERIES: tuple[str, ...]
SAMPLE, QUERIES = _load()
