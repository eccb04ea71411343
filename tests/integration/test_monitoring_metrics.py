"""Every metric the alert rules (deploy/prometheus) and the dashboard (deploy/grafana) name is
exported by a running daemon, with the labels and label values they match on. Read from the
/metrics of a daemon started in this test, as Prometheus would scrape it."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from embedworker.config import Settings
from tests.deploy.manifests import dashboard, rule_groups
from tests.deploy.promql import Selector, selectors
from tests.helpers import insert_items, running_daemon, statuses, wait_until

# Labels Prometheus adds to every scraped series (target labels), and its own series.
TARGET_LABELS = {"job", "instance", "pod", "namespace"}
PROMETHEUS_SERIES = {"up"}
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*([a-zA-Z_:][\w:]*)")


def named_selectors() -> dict[str, list[Selector]]:
    """Where each selector comes from: an alert or recording rule, a panel, a variable."""
    found: dict[str, list[Selector]] = {}
    for group in rule_groups():
        for rule in group["rules"]:
            found[f"rule {rule.get('alert') or rule.get('record')}"] = selectors(rule["expr"])
    board = dashboard()
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            found[f"panel {panel['title']!r} {target['refId']}"] = selectors(target["expr"])
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            label_values = _LABEL_VALUES.match(query)
            found[f"variable {variable['name']}"] = (
                [Selector(label_values.group(1), ())] if label_values else selectors(query)
            )
    return found


async def test_every_metric_in_the_rules_and_dashboard_is_exported(
    db: asyncpg.Connection, make_settings: Callable[..., Settings]
) -> None:
    async with running_daemon(make_settings(http_listen="127.0.0.1:0")) as daemon:
        await insert_items(db, ["one", "two", "three"])
        await wait_until(lambda: _completed(db, 3), timeout=20)
        assert daemon.http is not None
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            response = await client.get(f"http://127.0.0.1:{daemon.http.port}/metrics")
    assert response.status_code == 200

    labels: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels[sample.name]  # a sample without labels is exported too
            for label, value in sample.labels.items():
                labels[sample.name][label].add(value)

    problems = []
    checked = set()
    for where, found in named_selectors().items():
        for selector in found:
            if selector.metric in PROMETHEUS_SERIES:
                continue
            checked.add(selector.metric)
            if selector.metric not in labels:
                problems.append(f"{where}: {selector.metric} is not exported")
                continue
            for matcher in selector.matchers:
                if matcher.label in TARGET_LABELS:
                    continue
                exported = labels[selector.metric].get(matcher.label)
                if exported is None:
                    problems.append(f"{where}: {selector.metric} has no label {matcher.label}")
                elif matcher.op == "=" and matcher.value not in exported:
                    problems.append(f"{where}: {selector.metric}{{{matcher.label}="
                                    f"{matcher.value!r}}} never exported ({sorted(exported)})")
    assert problems == []
    # The check saw the metrics the rules and the dashboard are about.
    assert {"embedworker_queue_queued_items", "embedworker_model_up",
            "embedworker_items_completed_total", "embedworker_model_request_seconds_bucket",
            "embedworker_model_vectors", "embedworker_lease_reclaims_total"} <= checked


async def _completed(db: asyncpg.Connection, expected: int) -> bool:
    return (await statuses(db)).get("completed", 0) == expected
