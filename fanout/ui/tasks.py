"""The dashboard's packed tasks (docs/decisions/0020): which items shared a Fargate task.

With ``items_per_task`` K > 1 one task runs up to K items; every attempt it ran carries the
task's ARN, so the items that shared a task are the attempts with the same ``task_arn``. A
task is named in URLs by its key, the ARN's last part (the task id):
``/runs/{run_id}/tasks/{task_key}`` lists its items, ``/api/runs/{run_id}/tasks/{task_key}``
the same as JSON. The item JSON gives each attempt ``task_items``: the other items (index,
attempt) its task ran.
"""

from __future__ import annotations

import threading
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fanout.ui.source import DashboardSource, ItemDetail, RunView

#: run id -> (the list of its items' details the tasks were read from, the tasks): a
#: source that reads in bulk (Cached) gives the same list while the run is unchanged, so
#: an item page of a large run does not group every attempt again (0.4 s per 100,000).
_GROUPED: dict[str, tuple[list[ItemDetail], dict[str, list[dict[str, Any]]]]] = {}
_LOCK = threading.Lock()


def task_key(task_arn: str) -> str:
    """The task's id: the last part of its ARN (``arn:...:task/CLUSTER/ID`` gives ID)."""
    return task_arn.rstrip("/").rsplit("/", 1)[-1]


def packing(run: RunView, tasks: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """The run's packing as its page shows it (None: one item per task): K and per-task
    concurrency as the spec asked (``"auto"`` stays "auto"), the tasks launched so far and
    the most items one task ran."""
    spec = run.get("spec") or {}
    asked = spec.get("items_per_task", 1) if isinstance(spec, dict) else 1
    most = max((len(m) for m in tasks.values()), default=0)
    if asked in (1, None) and most < 2:
        return None
    return {"items_per_task": asked if asked not in (1, None) else "set by the job's config",
            "per_task_concurrency": spec.get("per_task_concurrency", 1)
            if isinstance(spec, dict) else 1,
            "tasks": len(tasks), "most_items_in_a_task": most}


def details(source: DashboardSource, run_id: str) -> list[ItemDetail]:
    """Every launched item of the run with its attempts: the source's bulk read where it has
    one (:class:`fanout.ui.cached.Cached`, which the pages' item reads already go through),
    else item by item."""
    bulk = getattr(source, "details", None)
    if callable(bulk):
        read: list[ItemDetail] = bulk(run_id)
        return read
    found = (source.get_item(run_id, int(i["index"])) for i in source.list_items(run_id)
             if i.get("attempt_count"))
    return [d for d in found if d is not None]


def tasks_of(items: list[ItemDetail]) -> dict[str, list[dict[str, Any]]]:
    """Each task's key -> the attempts it ran (with ``index`` and the item's ``item_status``),
    in index order."""
    tasks: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        for attempt in item.get("attempts") or []:
            if attempt.get("task_arn"):
                tasks.setdefault(task_key(attempt["task_arn"]), []).append(
                    {**attempt, "index": item["index"], "item_status": item["status"]})
    for members in tasks.values():
        members.sort(key=lambda m: (int(m["index"]), int(m["attempt"])))
    return tasks


def of_run(source: DashboardSource, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """The run's tasks (:func:`tasks_of` of its items)."""
    items = details(source, run_id)
    with _LOCK:
        grouped = _GROUPED.get(run_id)
    if grouped is not None and grouped[0] is items:
        return grouped[1]
    tasks = tasks_of(items)
    with _LOCK:
        if run_id not in _GROUPED and len(_GROUPED) >= 8:
            _GROUPED.pop(next(iter(_GROUPED)))
        _GROUPED[run_id] = (items, tasks)
    return tasks


def with_task_items(item: ItemDetail, tasks: dict[str, list[dict[str, Any]]]) -> ItemDetail:
    """The item with, on each attempt, ``task_key`` and ``task_items``: the other items
    (``index``, ``attempt``) its task ran ([] for a task of its own)."""
    attempts = []
    for a in item.get("attempts") or []:
        key = task_key(a["task_arn"]) if a.get("task_arn") else None
        mates = [{"index": m["index"], "attempt": m["attempt"]} for m in tasks.get(key or "", [])
                 if (m["index"], m["attempt"]) != (item["index"], a["attempt"])]
        attempts.append({**a, "task_key": key, "task_items": mates})
    return {**item, "attempts": attempts}


def task_view(run: RunView, key: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    """One task: its ARN, its items' attempts, when it ran (its first item's start to its
    last item's stop, as its cost is counted) and its cost (the sum of its items' shares;
    None if any is unknown)."""
    starts = [m["started_at"] for m in members if m.get("started_at")]
    stops = [m["stopped_at"] for m in members if m.get("stopped_at")]
    costs = [m.get("cost_usd") for m in members]
    return {
        "run_id": run["run_id"], "task_key": key, "task_arn": members[0]["task_arn"],
        "started_at": min(starts) if starts else None,
        "stopped_at": max(stops) if len(stops) == len(members) else None,
        "cost_usd": round(sum(c for c in costs if c is not None), 6)
        if costs and all(c is not None for c in costs) else None,
        "items": [{k: m.get(k) for k in (
            "index", "attempt", "status", "item_status", "exit_code", "reason", "started_at",
            "stopped_at", "duration_seconds", "cost_usd", "capacity")} for m in members],
    }


def found(d: Any, request: Request) -> tuple[RunView, dict[str, Any]]:
    """The run and task of a task route (``d``: the app's :class:`fanout.ui.app.Dashboard`);
    404 if the run ran no task of that key."""
    run = d.run_or_404(request.path_params["run_id"])
    key = request.path_params["task_key"]
    members = of_run(d.source, run["run_id"]).get(key)
    if not members:
        raise HTTPException(404, f"run {run['run_id']} ran no task {key}")
    return run, task_view(run, key, members)


def page(d: Any, request: Request) -> Response:
    run, task = found(d, request)
    response: Response = d.page("task.html", request, run=run, task=task,
                                live=task["stopped_at"] is None)
    return response


def api(d: Any, request: Request) -> Response:
    return JSONResponse(found(d, request)[1])
