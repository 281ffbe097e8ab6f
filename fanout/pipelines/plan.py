"""The order a pipeline's steps run in (pure: no I/O, no clock).

:func:`find_cycle` and :func:`waves` read the ``needs`` graph; :func:`decide` says, from
the steps' statuses so far, which steps start now and which are SKIPPED (with the
reason); :func:`pipeline_status` is the pipeline run's status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fanout.pipelines.model import STEP_ENDED, Pipeline


def find_cycle(needs: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle of the graph as the steps along it, first step repeated at the end
    (``[a, b, a]``: a needs b, b needs a), or None. Needs on unknown steps are ignored."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(step: str) -> list[str] | None:
        state[step] = 1
        path.append(step)
        for need in needs.get(step, ()):
            if need not in needs:
                continue
            if state.get(need) == 1:
                return [*path[path.index(need):], need]
            if need not in state:
                found = visit(need)
                if found:
                    return found
        path.pop()
        state[step] = 2
        return None

    for step in needs:
        if step not in state:
            found = visit(step)
            if found:
                return found
    return None


def waves(needs: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """The steps in dependency order, grouped: each wave holds the steps whose needs are
    all in earlier waves (steps of a wave have no order between them). Assumes no cycle."""
    placed: dict[str, int] = {}
    remaining = list(needs)
    out: list[list[str]] = []
    while remaining:
        wave = [s for s in remaining if all(n in placed for n in needs[s])]
        if not wave:
            raise ValueError("the steps' needs form a cycle")
        for step in wave:
            placed[step] = len(out)
        out.append(wave)
        remaining = [s for s in remaining if s not in placed]
    return out


@dataclass(frozen=True)
class Decision:
    """What to do now: steps to start, and steps to skip with the reason each."""

    start: list[str] = field(default_factory=list)
    skip: dict[str, str] = field(default_factory=dict)


def decide(pipeline: Pipeline, status: Mapping[str, str]) -> Decision:
    """Which PENDING steps start now (everything they need has ended, and SUCCEEDED
    unless ``when: always``) and which are SKIPPED (a need did not succeed).

    A skip makes its dependants skippable in turn: call again until nothing changes.
    """
    start: list[str] = []
    skip: dict[str, str] = {}
    for name, step in pipeline.steps.items():
        if status.get(name, "PENDING") != "PENDING":
            continue
        ended = [status.get(n, "PENDING") in STEP_ENDED for n in step.needs]
        if not all(ended):
            continue
        failed = [n for n in step.needs if status.get(n) != "SUCCEEDED"]
        if failed and step.when != "always":
            skip[name] = "needs " + ", ".join(f"{n} ({status.get(n)})" for n in failed) \
                + ", which did not succeed"
        else:
            start.append(name)
    return Decision(start, skip)


def skip_all_pending(status: Mapping[str, str], reason: str) -> dict[str, str]:
    """Every step not started yet, with ``reason`` (the pipeline timed out or stopped)."""
    return {name: reason for name, s in status.items() if s == "PENDING"}


def pipeline_status(status: Mapping[str, str]) -> str:
    """RUNNING while a step has not ended; SUCCEEDED when every step did; else FAILED."""
    if any(s not in STEP_ENDED for s in status.values()):
        return "RUNNING"
    return "SUCCEEDED" if all(s == "SUCCEEDED" for s in status.values()) else "FAILED"


#: How a rerun of a pipeline treats each step (:func:`rerun_plan`).
CARRY, RERUN_FAILED, FRESH = "carry", "rerun_failed", "fresh"


def rerun_plan(pipeline: Pipeline, status: Mapping[str, str], failed_only: bool,
               ran: Mapping[str, bool]) -> dict[str, str]:
    """What a rerun of a pipeline run does with each step, from the steps' statuses then
    (``ran``: whether the step has a run with items to rerun).

    ``--all`` (``failed_only`` False): every step runs again from its spec. ``--failed``:
    a step that SUCCEEDED is carried over (its runs count as they are) unless a step it
    needs runs again, since its inputs change; a step that ran and did not succeed
    reruns its failed items (:data:`RERUN_FAILED`); a step that never ran (SKIPPED, or
    REJECTED) runs from its spec.
    """
    if not failed_only:
        return dict.fromkeys(pipeline.steps, FRESH)
    plan: dict[str, str] = {}
    for wave in waves(pipeline.needs()):
        for name in wave:
            upstream_again = any(plan[n] != CARRY for n in pipeline.steps[name].needs)
            if status.get(name) == "SUCCEEDED":
                plan[name] = FRESH if upstream_again else CARRY
            elif ran.get(name) and not upstream_again:
                plan[name] = RERUN_FAILED
            else:
                plan[name] = FRESH
    return plan


def rerun_start(pipeline: Pipeline, old: Mapping[str, Mapping[str, Any]], failed_only: bool,
                parent: str) -> dict[str, dict[str, Any]]:
    """How a rerun of pipeline run ``parent`` begins, from its steps' records (``old``:
    step -> ``status``, ``runs``, ``total``, ``succeeded``): for each step carried over or
    rerun for its failed items, the fields its new record starts with (a step run from its
    spec starts as a new step, so it is absent). The local and the AWS rerun both use it."""
    plan = rerun_plan(pipeline, {n: str(s.get("status")) for n, s in old.items()}, failed_only,
                      {n: bool(s.get("runs")) and s.get("status") != "REJECTED"
                       for n, s in old.items()})
    start: dict[str, dict[str, Any]] = {}
    for name, how in plan.items():
        runs = list(old[name].get("runs") or [])
        if how == CARRY:
            start[name] = {"status": "SUCCEEDED", "runs": runs, "total": old[name].get("total"),
                           "succeeded": old[name].get("succeeded"),
                           "reason": f"carried over from {parent}"}
        elif how == RERUN_FAILED:
            start[name] = {"runs": runs, "rerun_of": runs[-1]}
    return start
