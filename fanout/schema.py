"""Names shared by the records table, the tasks, the stack that makes them and the local mode.

The layout of each record is :mod:`fanout.records.layout`'s; this module names keys and
indexes, and builds the one form of a task's container overrides, so the stack, the spec
checks and the launcher share them without the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at"

#: index name -> (partition key, sort key); every key attribute is a string. No index has
#: one constant partition key (docs/decisions/0008).
INDEXES: dict[str, tuple[str, str]] = {
    # Runs of one job by start time: ``JOB#<job>`` / ``<started_at>#<run_id>``.
    "by_job": ("gsi1pk", "gsi1sk"),
    # All runs by start time, one partition per start year: ``RUNS#<yyyy>`` /
    # ``<started_at>#<run_id>``.
    "by_time": ("gsi2pk", "gsi2sk"),
    # Sparse (the key is removed when the record closes): attempts still open, one
    # partition per run (``OPEN#<run_id>``), and the RUNNING runs spread over a few
    # partitions (``RUNS#<n>``), which is how Reconcile finds the runs with open attempts.
    "open_attempts": ("open", "started_at"),
}
#: What each index projects: the run listings read only keys (then the run), Reconcile
#: reads every field of an open attempt.
PROJECTIONS: dict[str, str] = {"by_job": "KEYS_ONLY", "by_time": "KEYS_ONLY",
                               "open_attempts": "ALL"}

#: Every task fanout starts has this ``startedBy``; the EventBridge rule matches it.
STARTED_BY = "fanout"
#: The environment fanout adds to every task (also how an event finds its attempt).
TASK_ENV_RUN_ID = "FANOUT_RUN_ID"
TASK_ENV_ITEM_INDEX = "FANOUT_ITEM_INDEX"
TASK_ENV_ATTEMPT = "FANOUT_ATTEMPT"
#: Where the item's task may write what it makes (fanout.outputs): an S3 prefix on AWS, an
#: absolute folder locally. Recorded with the item when it ends.
TASK_ENV_OUTPUT = "FANOUT_OUTPUT"
#: The awslogs stream prefix of every job's container: streams are
#: ``<prefix>/<container>/<task id>`` (the container is named after the job).
LOG_STREAM_PREFIX = "fanout"


def log_stream_name(container: str, task_id: str) -> str:
    """The CloudWatch log stream an attempt's container writes to."""
    return f"{LOG_STREAM_PREFIX}/{container}/{task_id}"


def container_overrides(
    container: str, command: Sequence[str], environment: Mapping[str, str], *,
    run_id: str, index: int | str, attempt: int | str, output: str | None = None,
) -> dict[str, Any]:
    """The ``overrides`` of RunTask for one attempt, and what the 8 KiB check measures:
    the item's command and environment plus the variables by which fanout finds the
    attempt from a task event (these win over an item variable of the same name) and,
    when given, the item's output location."""
    env = {**environment, TASK_ENV_RUN_ID: run_id, TASK_ENV_ITEM_INDEX: str(index),
           TASK_ENV_ATTEMPT: str(attempt), **({TASK_ENV_OUTPUT: output} if output else {})}
    return {"containerOverrides": [{
        "name": container,
        "command": list(command),
        "environment": [{"name": k, "value": v} for k, v in env.items()],
    }]}


#: Where the items manifest of a run is written in the manifest bucket.
MANIFEST_KEY = "runs/{run_id}/items.json"
#: Where the Distributed Map's ResultWriter writes the children's results of a run
#: (``<prefix>/<map run id>/manifest.json`` and ``SUCCEEDED_0.json``...).
RESULTS_PREFIX = "runs/{run_id}/results"
#: Where an item's outputs go in the manifest bucket (AWS) or under the run's records
#: folder (locally, ``<records>/<run_id>/outputs/<index>/``): ``FANOUT_OUTPUT``.
OUTPUTS_KEY = "runs/{run_id}/outputs/{index}/"
#: S3 bucket names are at most this long (the overrides check assumes the widest).
BUCKET_NAME_MAX = 63
