"""Reruns: a run over the failed (or all) items of an earlier run, linked to it.

A rerun spec (``{"rerun_of": RUN, "select": "failed" | "all"}``) has no item source of its
own. :func:`resolve_rerun` turns it into an ordinary run spec whose ``items`` are the
parent's selected items' params and whose settings are the parent's (the rerun's
overrides win), with ``parent_run`` set. The params are read from the parent's item
records (written at each item's first launch); only items that never launched are looked
up in the parent's items manifest. So a rerun works for as long as the parent's records
exist (their TTL), not only while the manifest does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fanout.errors import Problem, SpecError
from fanout.records.model import ItemRecord
from fanout.records.store import RecordsStore

#: Settings a rerun may override; everything else is the parent's.
OVERRIDES = ("max_concurrency", "timeout_seconds", "tolerated_failure_percent", "capacity",
             "items_per_task", "per_task_concurrency")


#: What a run's settings record of its job's definition, besides its templates.
DEFINITION = ("image_tag", "cpu", "memory", "architecture")


def changed_definition(settings: Mapping[str, Any], job: Any) -> list[str]:
    """``name: old -> new`` for each part of the job's definition that differs from what
    the run recorded (a part it did not record is not compared)."""
    return [f"{name}: {json.dumps(settings[name])} -> {json.dumps(getattr(job, name))}"
            for name in DEFINITION
            if settings.get(name) is not None and settings[name] != getattr(job, name)]


def resolve_rerun(raw: Any, *, store: RecordsStore, s3: Any, bucket: str,
                  jobs: Mapping[str, Any] | None = None) -> Any:
    """A rerun spec as the run spec it stands for; any other spec unchanged.

    ``jobs`` (the deployment's) are held to what the parent recorded: a job whose image tag
    or size changed since is refused unless the rerun asks for ``current_config``."""
    if not (isinstance(raw, dict) and "rerun_of" in raw):
        return raw
    from fanout.spec.validate import parse_rerun  # pydantic models: only when a rerun is asked for

    rerun = parse_rerun(raw)
    parent = store.get_run(rerun.rerun_of)
    where = "rerun_of"
    if parent is None:
        raise SpecError([Problem(where, f"no run {rerun.rerun_of!r} (unknown, or its records "
                                        "have expired)")])
    if parent.status == "RUNNING":
        raise SpecError([Problem(where, f"run {parent.run_id} is still running")])
    if parent.status == "REJECTED" or not parent.settings:
        raise SpecError([Problem(where, f"run {parent.run_id} was rejected: it has no items")])

    job = (jobs or {}).get(parent.job)
    changed = changed_definition(parent.settings, job) if job is not None else []
    if changed and not rerun.current_config:
        raise SpecError([Problem(where, (
            f"job {parent.job} changed since run {parent.run_id} ran ({'; '.join(changed)}): "
            "the rerun would run another program; rerun with --current-config "
            '("current_config": true) to run the job as deployed now'))])
    records: dict[int, ItemRecord] = {i.index: i for i in store.items(parent.run_id)}
    statuses = {i: r.status for i, r in records.items()}
    chosen = choose(rerun.select, parent.run_id, parent.total, statuses)
    missing = [i for i in chosen if i not in records or not records[i].params]
    from_manifest = _manifest_params(s3, bucket, parent.run_id, missing) if missing else {}
    lost = [i for i in missing if i not in from_manifest]
    if lost:
        shown = ", ".join(map(str, lost[:10])) + (" ..." if len(lost) > 10 else "")
        raise SpecError([Problem(where, f"the params of items {shown} of run {parent.run_id} "
                                        "are in neither its records nor its manifest")])

    items = [records[i].params if i in records and records[i].params else from_manifest[i]
             for i in chosen]
    return spec_of(parent.run_id, parent.settings, items, rerun.model_dump(
        exclude_none=True, mode="json"))


def choose(select: Any, run_id: str, total: int, statuses: Mapping[int, str]) -> list[int]:
    """The indexes a rerun's ``select`` picks of a run of ``total`` items (item statuses
    by index; an index without one never ran). Nothing to pick, or an index the run does
    not have: :class:`SpecError`."""
    where = "rerun_of"
    if isinstance(select, list):
        unknown = sorted({i for i in select if not 0 <= i < total})
        if unknown:
            shown = ", ".join(map(str, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
            raise SpecError([Problem("select", f"run {run_id} has no item {shown} (it has "
                                               f"items 0 to {total - 1})")])
        return sorted(set(select))
    chosen = [i for i in range(total)
              if select == "all" or statuses.get(i, "PENDING") != "SUCCEEDED"]
    if not chosen:
        raise SpecError([Problem(where, f"run {run_id} has no failed items to rerun")])
    return chosen


def spec_of(parent_run: str, settings: dict[str, Any], items: list[Any],
            given: dict[str, Any]) -> dict[str, Any]:
    """The run spec of a rerun: the parent's settings, the rerun's overrides (``given``,
    the rerun spec's fields) on top, ``items`` as its items, linked to ``parent_run``."""
    spec: dict[str, Any] = {
        "job": settings["job"],
        "items": items,
        "command": settings["command"],
        "environment": settings["environment"],
        "retry": settings["retry"],
        **{name: settings[name] for name in OVERRIDES if name in settings},
        "trigger": given.get("trigger", "console"),
        "parent_run": parent_run,
    }
    spec.update({k: given[k] for k in OVERRIDES if k in given})
    if "retry" in given:
        spec["retry"] = {**settings["retry"], **given["retry"]}
    for name in ("logical_time", "schedule", "timezone", "pipeline_run"):
        if name in given:
            spec[name] = given[name]
    return spec


def _manifest_params(s3: Any, bucket: str, run_id: str, indexes: list[int]) -> dict[int, Any]:
    """The params of ``indexes`` from the parent's manifest (streamed); {} once it expired."""
    from fanout.aws.s3 import manifest_items

    wanted = set(indexes)
    found: dict[int, Any] = {}
    for line in manifest_items(s3, bucket, run_id):
        index = int(line["index"])
        if index in wanted:
            found[index] = line["params"]
            if len(found) == len(wanted):
                break
    return found
