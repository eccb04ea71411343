"""The status page in a real browser: headless Chromium loads it from a running daemon, its
script fetches overview.json and draws, and the test reads the numbers from the rendered DOM.

Skipped where chromium is not installed; `make browser-test` installs it and runs this."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest

from embedworker.config import Settings
from embedworker.standin import StandinServer
from tests.browser import Element, dump_dom, parse_dom
from tests.helpers import insert_items, running_daemon, statuses, wait_until

pytestmark = pytest.mark.browser

SECRET_TEXT = "TOPSECRET text of a private post"
SECRET_KEY = "sk-TOPSECRET-api-key"
HTML_LOOKING_REASON = "<b>HTTP 422</b>: input rejected <img src=x>"


def number(page: Element, element_id: str) -> int:
    return int(page.by_id(element_id).text.strip())


def model_row(page: Element, name: str) -> Element:
    rows = page.find_all(lambda e: e.tag == "tr" and e.attrs.get("data-model") == name)
    assert len(rows) == 1
    return rows[0]


def cell(row: Element, css_class: str) -> str:
    (found,) = row.by_class(css_class)
    return found.text.strip()


async def test_the_status_page_shows_the_queue_models_throughput_and_failures(
    db: asyncpg.Connection,
    make_settings: Callable[..., Settings],
    bge_server: StandinServer,
) -> None:
    settings = make_settings(
        http_listen="127.0.0.1:0", models={"e5_small": {"api_key": SECRET_KEY}}
    )
    async with running_daemon(settings) as daemon:
        await insert_items(db, [f"{SECRET_TEXT} {n}" for n in range(3)])
        await wait_until(lambda: _has(db, "completed", 3), timeout=20)

        bge_server.down()
        await insert_items(db, [f"{SECRET_TEXT} later {n}" for n in range(4)], first_id=10)
        await wait_until(lambda: _parked(db, 4), timeout=30)
        await db.execute(
            """
            INSERT INTO embedding_queue (content_type, content_id, content_text, content_hash,
                                         status, retry_count, error_message)
            SELECT 'comment', n, $1, md5($1 || n), 'failed', 3, $2 FROM generate_series(1, 2) n
            """,
            SECRET_TEXT, HTML_LOOKING_REASON,
        )
        assert daemon.http is not None
        html = await dump_dom(f"http://127.0.0.1:{daemon.http.port}/")

    assert SECRET_TEXT.split()[0] not in html
    assert SECRET_KEY not in html
    page = parse_dom(html)
    assert page.find_all(lambda e: e.tag == "body")[0].attrs.get("data-rendered"), html[-3000:]
    assert page.by_id("overall").text == "ready"

    assert number(page, "queue-total") == 9
    assert number(page, "queue-completed") == 3
    assert number(page, "queue-queued") == 4
    assert number(page, "queue-waiting") == 4
    assert number(page, "queue-due") == 0
    assert number(page, "queue-processing") == 0
    assert number(page, "queue-failed") == 2
    assert page.by_id("queue-oldest-due").text == "none due"

    e5, bge = model_row(page, "e5_small"), model_row(page, "bge_m3")
    assert cell(e5, "state") == "up"
    assert (cell(e5, "current"), cell(e5, "missing"), cell(e5, "waiting")) == ("7", "0", "0")
    assert cell(e5, "coverage") == "100.0 %"
    assert cell(bge, "state") == "down"
    (problem,) = page.find_all(lambda e: e.attrs.get("data-problem-of") == "bge_m3")
    assert cell(problem, "reason") == "cannot reach model server: ConnectError"
    assert not page.find_all(lambda e: e.attrs.get("data-problem-of") == "e5_small")
    assert (cell(bge, "current"), cell(bge, "missing"), cell(bge, "waiting")) == ("3", "4", "4")
    assert cell(bge, "coverage") == "42.9 %"
    assert cell(bge, "version") == "1"

    assert number(page, "throughput-completed") == 3
    assert number(page, "throughput-failed") == 0
    bars = page.by_id("throughput-chart").by_class("bar-completed")
    assert len(bars) == 60
    assert sum(int(bar.attrs["data-count"]) for bar in bars) == 3

    (failure,) = page.by_id("failures").find_all(lambda e: e.tag == "tr" and e.by_class("reason"))
    assert (cell(failure, "reason"), cell(failure, "count")) == (HTML_LOOKING_REASON, "2")
    # The reason is text on the page, never markup.
    assert not page.find_all(lambda e: e.tag in ("b", "img"))
    recent = page.by_id("recent-errors").find_all(lambda e: e.tag == "tr" and "data-id" in e.attrs)
    reasons = sorted((cell(row, "status"), cell(row, "reason")) for row in recent)
    assert reasons[:2] == [("failed", HTML_LOOKING_REASON)] * 2
    assert [status for status, _ in reasons[2:]] == ["queued"] * 4
    assert all(reason.startswith("bge_m3: unavailable") for _, reason in reasons[2:])


async def _has(db: asyncpg.Connection, status: str, expected: int) -> bool:
    return (await statuses(db)).get(status, 0) == expected


async def _parked(db: asyncpg.Connection, expected: int) -> bool:
    parked = await db.fetchval(
        "SELECT count(*) FROM embedding_queue"
        " WHERE status = 'queued' AND waiting_for = ARRAY['bge_m3']"
    )
    return bool(parked == expected)
