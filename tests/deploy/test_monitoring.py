"""deploy/prometheus and deploy/grafana: every alert has promtool unit tests that make it fire
and stay quiet; the dashboard is well-formed; promtool checks and runs them (marked
'promtool': skipped without it, `make deploy-test` installs it). That every metric they name
is exported by a running daemon is tests/integration/test_monitoring_metrics.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import (
    DASHBOARD,
    RULE_TESTS,
    RULES,
    dashboard,
    load_yaml_documents,
    rule_groups,
)
from tests.deploy.promql import Matcher, Selector, selectors
from tests.tools import require_tool

REQUIRED_ALERTS = {
    "EmbedworkerDown", "EmbedworkerBacklogGrowing", "EmbedworkerOldestDueItemTooOld",
    "EmbedworkerModelDown", "EmbedworkerItemFailureRate", "EmbedworkerLeaseReclaims",
}
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__interval_ms", "__range_s"}
GRID_COLUMNS = 24


def alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in rule_groups() for rule in group["rules"]
            if "alert" in rule}


def dashboard_queries() -> list[str]:
    """Every PromQL query of the dashboard: panel targets and template variable queries."""
    board = dashboard()
    queries = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


# -- the rules -------------------------------------------------------------------------------


def test_the_alerts_the_issue_asks_for_exist_with_severity_and_text() -> None:
    found = alerts()
    assert set(found) >= REQUIRED_ALERTS
    for name, rule in found.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name


def test_every_alert_has_unit_tests_that_make_it_fire_and_stay_quiet() -> None:
    (suite,) = load_yaml_documents(RULE_TESTS)
    assert suite["rule_files"] == [RULES.name]
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in suite["tests"]:
        for case in test["alert_rule_test"]:
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    assert firing == set(alerts())
    assert quiet == set(alerts())


# -- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] == "embedworker"
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "job"} <= variables
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids, panel["title"]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= variables | GRAFANA_BUILTINS, (panel["title"], used)


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    titles = " | ".join(panel["title"].lower() for panel in dashboard()["panels"])
    for subject in ("backlog", "throughput", "batch duration", "model request time",
                    "errors", "model up", "coverage"):
        assert subject in titles


# -- reading PromQL --------------------------------------------------------------------------


@pytest.mark.parametrize(("expr", "expected"), [
    ('max without (instance, pod) (embedworker_model_up) == 0',
     [Selector("embedworker_model_up", ())]),
    ('absent(up{job="embedworker"} == 1)',
     [Selector("up", (Matcher("job", "=", "embedworker"),))]),
    ('histogram_quantile(0.95, sum by (model, le) (rate(x_bucket{job=~"$job"}[$__rate_interval])))',
     [Selector("x_bucket", (Matcher("job", "=~", "$job"),))]),
    ('sum(rate(a_total[5m] offset 1h)) / on (model) group_left b{state!="x", k="v"} > 1e3 and c',
     [Selector("a_total", ()),
      Selector("b", (Matcher("state", "!=", "x"), Matcher("k", "=", "v"))),
      Selector("c", ())]),
    ("label_values(embedworker_items_completed_total, job)",
     [Selector("embedworker_items_completed_total", ()), Selector("job", ())]),
])
def test_selectors_are_read_from_promql(expr: str, expected: list[Selector]) -> None:
    assert selectors(expr) == expected


# -- promtool --------------------------------------------------------------------------------


@pytest.mark.promtool
def test_promtool_checks_the_rules() -> None:
    promtool = require_tool("promtool")
    result = _run([promtool, "check", "rules", str(RULES)])
    assert f"SUCCESS: {sum(len(g['rules']) for g in rule_groups())} rules found" in result


@pytest.mark.promtool
def test_promtool_runs_the_rule_unit_tests() -> None:
    promtool = require_tool("promtool")
    assert "SUCCESS" in _run([promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent)


@pytest.mark.promtool
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each panel query, with the dashboard's variables filled in, as a recording rule."""
    promtool = require_tool("promtool")
    rules = [
        {"record": f"dashboard:query{index}",
         "expr": expr.replace("$job", "embedworker").replace("$__rate_interval", "5m")}
        for index, expr in enumerate(dashboard_queries()) if not expr.startswith("label_values")
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": DASHBOARD.stem, "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in _run([promtool, "check", "rules", str(path)])


def _run(command: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
