"""Pipeline runs on the records table (docs/decisions/0018-pipelines-on-aws.md).

One partition per pipeline run, ``PIPELINE#<id>``:

- ``PIPELINE``: name, spec (the document, JSON), status, reason, trigger, started and
  finished times, the parent pipeline run (a rerun), the deadline, the waiting task token
  and the ``changes`` counter (how many step endings were recorded: the race of a step
  ending between Decide and AwaitStep is settled on it);
- ``STEP#<name>``: status, run id, every run of the step, reason, times, the fan-in's
  cursor; steps ending at once write different items.

Listing pipeline runs by name and time reads the ``by_job`` index (``PIPELINE#<name>`` /
``<started_at>#<id>``), all of them the ``by_time`` index (``PIPELINES#<yyyy>``): one
index entry per pipeline run, never a constant key.

:class:`PipelineRecords` is also the reader the CLI (and the dashboard) use:
:meth:`PipelineRecords.get_pipeline_run`, :meth:`PipelineRecords.list_pipeline_runs`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from fanout.records.writes import deserialized, pages, serialized, write
from fanout.schema import INDEXES, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

PIPELINE_SK = "PIPELINE"
STEP_SK = "STEP#"
#: Years of pipeline runs the newest-first listing walks back.
HISTORY_YEARS = 11


def pipeline_pk(pipeline_run_id: str) -> str:
    return f"PIPELINE#{pipeline_run_id}"


def _plain(value: Any) -> Any:
    """DynamoDB's numbers as ints (every number fanout writes here is whole)."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


#: A step record's fields, as :meth:`PipelineRecords.get_pipeline_run` gives them.
STEP_FIELDS = ("status", "run_id", "runs", "reason", "started_at", "finished_at",
               "total", "succeeded", "rerun_of", "starting", "fanin")


class PipelineRecords:
    """The pipeline runs of one records table."""

    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from fanout.aws.clients import client

            self._client = client("dynamodb")
        return self._client

    def _key(self, pipeline_run_id: str, sk: str) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": pipeline_pk(pipeline_run_id)}, SORT_KEY: {"S": sk}}

    # -- writing ---------------------------------------------------------------------

    def create(self, record: dict[str, Any], steps: dict[str, dict[str, Any]],
               expires_at: int) -> bool:
        """Write a new pipeline run and its steps; False when it exists (a retried Decide:
        the steps were written before the pipeline record, so they exist too)."""
        run_id = record["pipeline_run_id"]
        for name, step in steps.items():
            attrs = {PARTITION_KEY: pipeline_pk(run_id), SORT_KEY: STEP_SK + name,
                     "step": name, TTL_ATTRIBUTE: expires_at,
                     **{k: v for k, v in step.items() if v is not None}}
            item = serialized(attrs)
            write(lambda item=item: self.client.put_item(  # type: ignore[misc]
                TableName=self.table, Item=item,
                ConditionExpression=f"attribute_not_exists({PARTITION_KEY})"),
                "a pipeline step record")
        sort = f"{record['started_at']}#{run_id}"
        (g1pk, g1sk), (g2pk, g2sk) = INDEXES["by_job"], INDEXES["by_time"]
        attrs = {PARTITION_KEY: pipeline_pk(run_id), SORT_KEY: PIPELINE_SK,
                 TTL_ATTRIBUTE: expires_at, "changes": 0,
                 g1pk: f"PIPELINE#{record['pipeline']}", g1sk: sort,
                 g2pk: f"PIPELINES#{record['started_at'][:4]}", g2sk: sort,
                 **{k: v for k, v in record.items() if v is not None},
                 "spec": json.dumps(record["spec"], separators=(",", ":"))}
        return write(lambda: self.client.put_item(
            TableName=self.table, Item=serialized(attrs),
            ConditionExpression=f"attribute_not_exists({PARTITION_KEY})"),
            "a pipeline record")

    def _update(self, pipeline_run_id: str, sk: str, sets: dict[str, Any], *,
                condition: str | None = None, values: dict[str, Any] | None = None,
                removes: tuple[str, ...] = (), returns: bool = False
                ) -> tuple[bool, dict[str, Any] | None]:
        names = {f"#f{i}": k for i, k in enumerate(sets)}
        vals = {f":v{i}": v for i, v in enumerate(sets.values())}
        parts = [f"#f{i} = :v{i}" for i in range(len(sets))]
        expression = ("SET " + ", ".join(parts)) if parts else ""
        if removes:
            names.update({f"#r{i}": k for i, k in enumerate(removes)})
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
        vals.update(values or {})
        kwargs: dict[str, Any] = {"TableName": self.table, "Key": self._key(pipeline_run_id, sk),
                                  "UpdateExpression": expression.strip(),
                                  "ExpressionAttributeNames": names,
                                  "ConditionExpression": f"attribute_exists({PARTITION_KEY})"
                                  + (f" AND ({condition})" if condition else "")}
        for word in ("status", "changes"):
            if f"#{word}" in (condition or ""):
                names[f"#{word}"] = word
        if vals:
            kwargs["ExpressionAttributeValues"] = serialized(vals)
        got: dict[str, Any] = {}

        def call() -> None:
            got.update(self.client.update_item(**kwargs,
                                               ReturnValues="ALL_NEW" if returns else "NONE"))

        applied = write(call, "a pipeline record update")
        new = _plain(deserialized(got["Attributes"])) if applied and "Attributes" in got else None
        return applied, new

    def update_step(self, pipeline_run_id: str, step: str, sets: dict[str, Any], *,
                    expect_status: str | None = None, expect_run: str | None = None,
                    removes: tuple[str, ...] = ()) -> bool:
        """Change a step's record; with ``expect_*`` only while it has that status (and run
        id): False when another writer changed it first."""
        conditions, values = [], {}
        if expect_status is not None:
            conditions.append("#status = :expect_status")
            values[":expect_status"] = expect_status
        if expect_run is not None:
            conditions.append("run_id = :expect_run")
            values[":expect_run"] = expect_run
        applied, _ = self._update(pipeline_run_id, STEP_SK + step, sets,
                                  condition=" AND ".join(conditions) or None, values=values,
                                  removes=removes)
        return applied

    def update_pipeline(self, pipeline_run_id: str, sets: dict[str, Any], *,
                        expect_status: str | None = None,
                        removes: tuple[str, ...] = ()) -> bool:
        values = {":expect_status": expect_status} if expect_status else {}
        applied, _ = self._update(pipeline_run_id, PIPELINE_SK, sets,
                                  condition="#status = :expect_status" if expect_status
                                  else None, values=values, removes=removes)
        return applied

    def count_change(self, pipeline_run_id: str) -> dict[str, Any] | None:
        """Add one to the pipeline's ``changes`` (a step ended); the record as it is then
        (its waiting token, if any), or None when there is no such pipeline run."""
        kwargs = {"TableName": self.table, "Key": self._key(pipeline_run_id, PIPELINE_SK),
                  "UpdateExpression": "ADD #changes :one",
                  "ExpressionAttributeNames": {"#changes": "changes"},
                  "ConditionExpression": f"attribute_exists({PARTITION_KEY})",
                  "ExpressionAttributeValues": {":one": {"N": "1"}},
                  "ReturnValues": "ALL_NEW"}
        got: dict[str, Any] = {}
        applied = write(lambda: got.update(self.client.update_item(**kwargs)), "a change count")
        return _plain(deserialized(got["Attributes"])) if applied else None

    def store_token(self, pipeline_run_id: str, token: str, changes: int) -> bool:
        """Keep AwaitStep's token, only while ``changes`` is what Decide read: False when a
        step ended since (the caller answers its own token at once)."""
        applied, _ = self._update(pipeline_run_id, PIPELINE_SK, {"wait_token": token},
                                  condition="#changes = :seen AND #status = :running",
                                  values={":seen": changes, ":running": "RUNNING"})
        return applied

    def take_token(self, pipeline_run_id: str, token: str) -> bool:
        """Remove the waiting token if it is still ``token``: True for the one caller that
        answers it."""
        applied, _ = self._update(pipeline_run_id, PIPELINE_SK, {}, removes=("wait_token",),
                                  condition="wait_token = :token", values={":token": token})
        return applied

    # -- reading ---------------------------------------------------------------------

    def partition(self, pipeline_run_id: str) -> Iterator[dict[str, Any]]:
        kwargs = {"TableName": self.table, "KeyConditionExpression": "#pk = :pk",
                  "ExpressionAttributeNames": {"#pk": PARTITION_KEY},
                  "ExpressionAttributeValues": {":pk": {"S": pipeline_pk(pipeline_run_id)}},
                  "ConsistentRead": True}
        yield from (_plain(deserialized(a)) for a in pages(self.client, kwargs))

    def get_pipeline_run(self, pipeline_run_id: str) -> dict[str, Any] | None:
        """The pipeline run with its steps (one Query; the pipeline record sorts before
        its steps, so the ``changes`` read is never newer than the steps read after it),
        or None when there is none."""
        found = list(self.partition(pipeline_run_id))
        record = next((a for a in found if a[SORT_KEY] == PIPELINE_SK), None)
        if record is None:
            return None
        # Never the task token: it is a credential to the pipeline's execution.
        skipped = {PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE, "wait_token",
                   *(k for pair in INDEXES.values() for k in pair)}
        out = {k: v for k, v in record.items() if k not in skipped}
        out["spec"] = json.loads(record["spec"])
        steps = {a["step"]: {k: a.get(k) for k in STEP_FIELDS}
                 for a in found if a[SORT_KEY].startswith(STEP_SK)}
        for step in steps.values():
            step["runs"] = list(step["runs"] or [])
        order = list(out["spec"].get("steps") or steps)
        out["steps"] = {n: steps[n] for n in order if n in steps}
        return out

    def list_pipeline_runs(self, pipeline: str | None = None, limit: int = 20,
                           year: int | None = None) -> list[dict[str, Any]]:
        """The newest pipeline runs (of ``pipeline``, or all), newest first."""
        import time

        index = "by_job" if pipeline else "by_time"
        pk, _ = INDEXES[index]
        keys = [f"PIPELINE#{pipeline}"] if pipeline else [
            f"PIPELINES#{y}" for y in range((year or time.gmtime().tm_year),
                                            (year or time.gmtime().tm_year) - HISTORY_YEARS, -1)]
        found: list[dict[str, Any]] = []
        for key in keys:
            kwargs = {"TableName": self.table, "IndexName": index,
                      "KeyConditionExpression": "#pk = :pk",
                      "ExpressionAttributeNames": {"#pk": pk},
                      "ExpressionAttributeValues": {":pk": {"S": key}},
                      "ScanIndexForward": False}
            for attrs in pages(self.client, kwargs):
                run_id = str(attrs[PARTITION_KEY]["S"]).removeprefix("PIPELINE#")
                run = self.get_pipeline_run(run_id)
                if run is not None:
                    found.append(run)
                if len(found) >= limit:
                    return found
        return found


def pipeline_view(record: dict[str, Any]) -> dict[str, Any]:
    """A pipeline run as users read it (``fanout status PIPELINE_RUN --json``, the
    dashboard): the fields of ``fanout local PIPELINE --json``'s summary, with the
    execution's ARN where the local summary has its records folder."""
    spec = record.get("spec") or {}
    spec_steps = spec.get("steps") or {}
    steps = {}
    for name, step in (record.get("steps") or {}).items():
        given = spec_steps.get(name) or {}
        steps[name] = {"status": step.get("status"), "run_id": step.get("run_id"),
                       "runs": list(step.get("runs") or []), "reason": step.get("reason"),
                       "started_at": step.get("started_at"),
                       "finished_at": step.get("finished_at"), "total": step.get("total"),
                       "succeeded": step.get("succeeded"),
                       "needs": list(given.get("needs") or []),
                       "when": given.get("when", "on_success")}
    return {"pipeline_run_id": record["pipeline_run_id"], "pipeline": record.get("pipeline"),
            "status": record.get("status"), "reason": record.get("reason"),
            "started_at": record.get("started_at"), "finished_at": record.get("finished_at"),
            "timeout_seconds": record.get("timeout_seconds"),
            "parent_pipeline_run": record.get("parent_pipeline_run"),
            "trigger": record.get("trigger"), "execution_arn": record.get("execution_arn"),
            "steps": steps}
