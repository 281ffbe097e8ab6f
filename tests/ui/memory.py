"""Runs in memory, in the contract's shapes, for tests and the benchmark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fanout.ui.source import ITEM_STATES, MemorySource, empty_counts

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def stamp(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def item(run_id: str, index: int, status: str, params: dict[str, Any],
         attempts: int = 1, concurrency: int = 10) -> dict[str, Any]:
    start = 5.0 * (index // concurrency)
    tried = []
    for n in range(1, attempts + 1):
        last = n == attempts
        ended = status not in ("RUNNING", "PENDING", "WAITING") or not last
        tried.append({
            "attempt": n, "task_arn": f"arn:aws:ecs:us-east-1:123456789012:task/c/{index}x{n}",
            "capacity": "FARGATE", "exit_code": (0 if status == "SUCCEEDED" else 1)
            if ended else None, "stop_code": "EssentialContainerExited" if ended else None,
            "reason": None if status == "SUCCEEDED" and last else
            ("exit code 1" if ended else None),
            "created_at": stamp(start), "started_at": stamp(start + 1),
            "stopped_at": stamp(start + 4) if ended else None,
            "duration_seconds": 3.0 if ended else None,
            "log_stream": f"fanout/job/{index}x{n}", "cost_usd": None,
            "status": ("RETRY" if not last else status) if ended else "RUNNING",
        })
        start += 5
    failed = status in ("FAILED", "TIMED_OUT", "ABORTED")
    ended = status not in ("RUNNING", "PENDING", "WAITING")
    # What it wrote (a key made of a param's value: keys are any text, and are escaped).
    wrote = [{"key": f"result-{params['note']}.json" if "note" in params else "result.json",
              "size": 12}, {"key": "plot.png", "size": 2048}]
    return {
        "run_id": run_id, "index": index, "params": params, "command": ["-y", str(index)],
        "environment": {"N": str(index)}, "status": status,
        "attempt_count": attempts if status != "PENDING" else 0,
        "exit_code": 0 if status == "SUCCEEDED" else (1 if failed else None),
        "reason": "exit code 1" if failed else None,
        "log_tail": ["boom"] if failed else [], "waiting": None,
        "started_at": tried[0]["started_at"] if tried else None,
        "finished_at": tried[-1]["stopped_at"] if tried else None,
        "duration_seconds": 3.0, "attempts": tried if status != "PENDING" else [],
        "output": f"s3://manifests/runs/{run_id}/outputs/{index}/" if ended else None,
        "outputs": wrote if ended else None, "outputs_count": 3 if ended else None,
        "outputs_bytes": 2072 if ended else None, "outputs_partial": False,
    }


def run(run_id: str, items: list[dict[str, Any]], status: str = "SUCCEEDED",
        job: str = "analyzer", started: float = 0.0) -> dict[str, Any]:
    counts = empty_counts()
    for i in items:
        counts[i["status"]] += 1
    return {
        "run_id": run_id, "job": job, "status": status, "trigger": "cli",
        "started_at": stamp(started), "finished_at": None if status == "RUNNING"
        else stamp(started + 60), "duration_seconds": 60.0, "total": len(items),
        "counts": counts, "parent_run_id": None, "reason": None,
        "cost": {"compute_usd": 0.01, "control_plane_usd": 0.001, "total_usd": 0.011,
                 "prices_as_of": "2026-11-01"},
        "console_url": None, "spec": {"job": job, "params": {"n": {"range": {
            "start": 0, "stop": len(items)}}}},
    }


def source_with(n_items: int = 30, run_id: str = "analyzer-1", status: str = "SUCCEEDED",
                params: dict[str, Any] | None = None) -> MemorySource:
    """One run of ``n_items`` items cycling through the finished states."""
    states = [s for s in ITEM_STATES if s in ("SUCCEEDED", "FAILED", "TIMED_OUT")] \
        if status != "RUNNING" else ["SUCCEEDED", "RUNNING", "PENDING"]
    items = [item(run_id, i, states[i % len(states)], {"n": i, **(params or {})})
             for i in range(n_items)]
    source = MemorySource()
    source.add_run(run(run_id, items, status=status), items)
    for i in items:
        for a in i["attempts"]:
            source.logs[(run_id, i["index"], a["attempt"])] = [f"item {i['index']} line 1",
                                                                "boom"]
    return source
