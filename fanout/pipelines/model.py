"""The pipeline spec: named steps, each a run spec, with the steps it needs.

A pipeline document (docs/pipelines.md)::

    {"pipeline": "portfolio", "timeout_seconds": 7200,
     "steps": {"a": {"job": "analyzer", "items": [{"year": 1999}]},
               "b": {"job": "analyzer", "params": {...}, "needs": ["a"]},
               "c": {"job": "analyzer", "items": [{"year": 2000}]}}}

:func:`fanout.pipelines.validate.parse_pipeline` turns it into a :class:`Pipeline`; the
order the steps run in is :mod:`fanout.pipelines.plan`'s. Each step runs as an ordinary
run whose spec carries ``pipeline_run`` (the pipeline run id and the step's name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

#: A step's or a pipeline's name: short, so that ``<pipeline run id>.<step>`` is a valid
#: run id (a Step Functions execution name has at most 80 characters).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,23}")
NAME_RULE = "1 to 24 letters, digits, '-' or '_', starting with a letter or digit"
#: A pipeline run id leaves room for ``.<step>`` in its steps' run ids.
MAX_PIPELINE_RUN_ID = 80 - 1 - 24

#: What a step says about its place in the pipeline, on top of its run spec.
STEP_KEYS = ("needs", "when")
#: When a step runs once what it needs has ended.
When = Literal["on_success", "always"]
WHEN_VALUES: tuple[When, ...] = ("on_success", "always")
#: Run spec fields the pipeline sets on each step's run (given once, at the top level).
PIPELINE_WIDE = ("trigger", "logical_time", "schedule", "timezone")
#: Run spec fields that a step may not set: the pipeline or ``fanout rerun`` sets them.
SET_BY_FANOUT = ("parent_run", "pipeline_run", *PIPELINE_WIDE)

#: The statuses of a step: its run's status, or PENDING (not started yet), or SKIPPED.
StepStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "ABORTED", "REJECTED",
                     "SKIPPED"]
STEP_ENDED = ("SUCCEEDED", "FAILED", "ABORTED", "REJECTED", "SKIPPED")
#: The statuses of a pipeline run.
PipelineStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]


@dataclass(frozen=True)
class Step:
    """One step: the run spec it starts (as given, without ``needs``/``when``), the steps
    it waits for, and when it runs once they have ended."""

    name: str
    spec: dict[str, Any]
    needs: tuple[str, ...] = ()
    when: When = "on_success"
    #: ``items_from: {"step": S}``: one item per succeeded item of step S.
    items_from_step: str | None = None


@dataclass(frozen=True)
class Pipeline:
    """A checked pipeline spec; ``steps`` keep the document's order."""

    name: str
    steps: dict[str, Step]
    timeout_seconds: int | None = None
    #: Run spec fields given to every step's run (:data:`PIPELINE_WIDE`).
    shared: dict[str, Any] = field(default_factory=dict)

    def needs(self) -> dict[str, tuple[str, ...]]:
        return {name: step.needs for name, step in self.steps.items()}


def is_pipeline_document(raw: Any) -> bool:
    """A document with ``steps`` (or a string ``pipeline``) is a pipeline, not a run spec."""
    return isinstance(raw, dict) and ("steps" in raw or isinstance(raw.get("pipeline"), str))
