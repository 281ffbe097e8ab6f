"""Names shared by the records table, the stack that makes it and the local mode.

The layout of each record is :mod:`fanout.records.dynamo`'s; this module only names keys and
indexes, so the stack can import it without the runtime.
"""

from __future__ import annotations

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at"

#: index name -> (partition key, sort key); every key attribute is a string.
INDEXES: dict[str, tuple[str, str]] = {
    # Runs of one job by start time: ``JOB#<job>`` / ``<started_at>#<run_id>``.
    "by_job": ("gsi1pk", "gsi1sk"),
    # All runs by start time: ``RUNS`` / ``<started_at>#<run_id>``.
    "by_time": ("gsi2pk", "gsi2sk"),
    # Attempts still running (sparse: the key is removed when the attempt settles).
    "open_attempts": ("open", "started_at"),
}

#: Every task fanout starts has this ``startedBy``; the EventBridge rule matches it.
STARTED_BY = "fanout"
#: The environment fanout adds to every task (also how an event finds its attempt).
TASK_ENV_RUN_ID = "FANOUT_RUN_ID"
TASK_ENV_ITEM_INDEX = "FANOUT_ITEM_INDEX"
TASK_ENV_ATTEMPT = "FANOUT_ATTEMPT"
#: The awslogs stream prefix of every job's container: streams are
#: ``<prefix>/<container>/<task id>`` (the container is named after the job).
LOG_STREAM_PREFIX = "fanout"


def log_stream_name(container: str, task_id: str) -> str:
    """The CloudWatch log stream an attempt's container writes to."""
    return f"{LOG_STREAM_PREFIX}/{container}/{task_id}"


#: Where the items manifest of a run is written in the manifest bucket.
MANIFEST_KEY = "runs/{run_id}/items.json"
