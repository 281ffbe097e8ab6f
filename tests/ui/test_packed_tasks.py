"""The dashboard over a packed run (docs/decisions/0020): an item's attempt names the task it
shared and links its task-mates; a task's page lists its items; the run page shows the
packing. Over runs in memory, in the records' shapes (a packed local run's attempts carry
their task's ARN, as these do)."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import pytest

from fanout.ui import tasks
from fanout.ui.source import MemorySource
from tests.ui.conftest import serve
from tests.ui.memory import item, run
from tests.ui.test_server import request

ARN = "arn:aws:ecs:us-east-1:123456789012:task/FanoutUi-Jobs/{}"
XSS = "<img src=x onerror=alert(1)>"


def packed_source() -> MemorySource:
    """Six items, three to a task: task aaa ran 0-2, bbb ran 3-5; item 1 failed in aaa and
    was retried alone in ccc; item 4 failed for good (its reason is markup)."""
    items = [item("packed-1", i, "FAILED" if i == 4 else "SUCCEEDED", {"n": i},
                  attempts=2 if i == 1 else 1) for i in range(6)]
    for i in items:
        for a in i["attempts"]:
            key = "ccc" if a["attempt"] == 2 else ("aaa" if i["index"] < 3 else "bbb")
            a["task_arn"] = ARN.format(key)
            a["cost_usd"] = 0.0001
        if i["index"] == 4:
            i["attempts"][0]["reason"] = XSS
    packed = run("packed-1", items, job="prog")
    packed["spec"] = {"job": "prog", "items_per_task": 3, "per_task_concurrency": 1,
                      "items": [{"n": i} for i in range(6)]}
    one_each = [item("single-1", i, "SUCCEEDED", {"n": i}) for i in range(3)]
    source = MemorySource()
    source.add_run(packed, items)
    source.add_run(run("single-1", one_each), one_each)
    return source


@pytest.fixture(scope="module")
def served() -> Any:
    with serve(packed_source()) as s:
        yield s


def links(html: str, cls: str) -> list[str]:
    return re.findall(rf'<a class="{cls}" href="([^"]+)"', html)


def test_an_item_page_names_its_task_and_links_the_items_it_shared_it_with(served: Any) -> None:
    # Given item 1 of a packed run: first in task aaa with items 0 and 2, then alone in ccc
    # When its page is read
    status, _, html = request(served, "GET", "/runs/packed-1/items/1")

    # Then its first attempt says so and links the task and both task-mates
    assert status == 200
    first = html.split('data-attempt="1"')[1].split("</tr>")[0]
    assert "with 2 other items" in first
    assert links(first, "task") == ["/runs/packed-1/tasks/aaa"]
    assert links(first, "task-item") == ["/runs/packed-1/items/0", "/runs/packed-1/items/2"]
    # And the ARN is still shown as it was
    assert ARN.format("aaa") in first
    # And its retry, a task of its own, names no other item
    second = html.split('data-attempt="2"')[1].split("</tr>")[0]
    assert ARN.format("ccc") in second and "other item" not in second


def test_a_task_page_lists_its_items_with_their_states_codes_and_cost(served: Any) -> None:
    # Given task bbb of the packed run, which ran items 3, 4 (failed) and 5
    # When its page is read
    status, _, html = request(served, "GET", "/runs/packed-1/tasks/bbb")

    # Then it lists those items, each linking its page, with its state and exit code
    assert status == 200
    rows = re.findall(r'<tr data-index="(\d+)">(.*?)</tr>', html, re.S)
    assert [int(i) for i, _ in rows] == [3, 4, 5]
    cells = {int(i): re.findall(r"<td>(.*?)</td>", row, re.S) for i, row in rows}
    assert 'href="/runs/packed-1/items/4"' in cells[4][0]
    assert "s-FAILED" in cells[4][3] and cells[4][4] == "1" and cells[3][4] == "0"
    # And the task's ARN, its start and stop (first item's start, last one's stop) and cost
    assert ARN.format("bbb") in html
    assert re.search(r'id="task-cost">\$0\.000300<', html)
    # And the failed item's reason, markup, is shown escaped
    assert XSS not in html and unescape(XSS) in unescape(html)

    # When the same task is read as JSON
    _, _, text = request(served, "GET", "/api/runs/packed-1/tasks/bbb")
    task = json.loads(text)
    # Then it has the same items and the task's times and cost
    assert [m["index"] for m in task["items"]] == [3, 4, 5]
    assert task["task_arn"] == ARN.format("bbb") and task["cost_usd"] == pytest.approx(0.0003)
    assert task["started_at"] and task["stopped_at"] >= task["started_at"]


def test_a_task_the_run_did_not_run_is_not_found(served: Any) -> None:
    for path in ("/runs/packed-1/tasks/zzz", "/api/runs/packed-1/tasks/zzz",
                 "/runs/nope/tasks/aaa"):
        status, _, _ = request(served, "GET", path)
        assert status == 404, path


def test_the_run_page_shows_the_packing_only_of_a_packed_run(served: Any) -> None:
    # When a packed run's page and a run of one item per task are read
    _, _, packed = request(served, "GET", "/runs/packed-1")
    _, _, single = request(served, "GET", "/runs/single-1")

    # Then the packed one shows K, the per-task concurrency and the three tasks launched
    shown = re.search(r'id="packing">(.*?)</dd>', packed)
    assert shown and shown.group(1) == "3 items per task, 1 at once in a task; 3 tasks launched"
    # And the other shows no packing
    assert 'id="packing"' not in single


def test_the_item_json_names_each_attempts_task_mates(served: Any) -> None:
    # When item 1's JSON is read
    _, _, text = request(served, "GET", "/api/runs/packed-1/items/1")
    attempts = json.loads(text)["attempts"]

    # Then each attempt has its task's key and the other items (and attempts) it ran
    assert [(a["task_key"], a["task_items"]) for a in attempts] == [
        ("aaa", [{"index": 0, "attempt": 1}, {"index": 2, "attempt": 1}]), ("ccc", [])]
    # And an item of a run of one item per task lists no task-mates
    _, _, text = request(served, "GET", "/api/runs/single-1/items/0")
    assert [a["task_items"] for a in json.loads(text)["attempts"]] == [[]]


def test_a_runs_tasks_follow_its_items_as_they_change() -> None:
    # Given a source that reads a run's items in bulk, as the dashboard's Cached does (the
    # same list while the run is unchanged)
    class Bulk:
        def __init__(self) -> None:
            self.items = packed_source().items["packed-1"]

        def details(self, run_id: str) -> list[dict[str, Any]]:
            return self.items

    source = Bulk()
    first = tasks.of_run(source, "packed-1")  # type: ignore[arg-type]
    assert sorted(first) == ["aaa", "bbb", "ccc"]
    assert tasks.of_run(source, "packed-1") is first  # type: ignore[arg-type]

    # When the run changes (a new read: item 5 retried in task ddd)
    changed = [dict(i) for i in source.items]
    changed[5] = {**changed[5], "attempts": [*changed[5]["attempts"], {
        **changed[5]["attempts"][0], "attempt": 2, "task_arn": ARN.format("ddd")}]}
    source.items = changed

    # Then the tasks are read again: ddd ran item 5 alone
    again = tasks.of_run(source, "packed-1")  # type: ignore[arg-type]
    assert [(m["index"], m["attempt"]) for m in again["ddd"]] == [(5, 2)]
