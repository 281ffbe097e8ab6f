"""Checking a pipeline spec: its form, its graph, and each step's run spec.

Every problem names the step and the field (``steps.report.needs[0]: ...``); all of them
are said at once (:class:`PipelineError`, exit 2 in the CLI), before anything starts.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from fanout.config import FanoutConfig
from fanout.errors import FanoutInputError, Problem, SpecError, problems_from
from fanout.pipelines.model import (
    NAME,
    NAME_RULE,
    PIPELINE_WIDE,
    SET_BY_FANOUT,
    STEP_KEYS,
    WHEN_VALUES,
    Pipeline,
    Step,
)
from fanout.pipelines.plan import find_cycle
from fanout.spec.model import RunOverrides

TOP_KEYS = ("pipeline", "steps", "timeout_seconds", *PIPELINE_WIDE)
#: A pipeline lives at most as long as a run may (14 days).
MAX_TIMEOUT_SECONDS = 14 * 86_400
#: Where a step's items come from when they are an earlier step's (checked as an
#: ``items_from`` object: its items' keys are known when they are read).
STEP_ITEMS_PLACEHOLDER = "s3://fanout-pipeline-check/items.jsonl"


class PipelineError(FanoutInputError):
    """A pipeline spec that must be refused before any of its steps starts."""

    what = "pipeline spec"


def parse_pipeline(raw: Any, config: FanoutConfig, *, check_plans: bool = True) -> Pipeline:
    """Validate a pipeline document against the deployment; raises :class:`PipelineError`
    naming every bad step and field. ``check_plans`` also plans each step whose items are
    known (the item cap, the rendered overrides' size), as ``fanout local`` does for a run.
    """
    if not isinstance(raw, dict):
        kind = type(raw).__name__ if raw is not None else "null"
        raise PipelineError([Problem("pipeline", f"must be a JSON object, not {kind}")])
    problems = [Problem(str(key), "unknown key; a pipeline takes "
                                  f"{', '.join(TOP_KEYS)} (check its spelling)")
                for key in raw if key not in TOP_KEYS]
    name = raw.get("pipeline")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        problems.append(Problem("pipeline", f"{_shown(name)} is not a pipeline name: "
                                            f"give {NAME_RULE}"))
    timeout = raw.get("timeout_seconds")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)
                                or not 1 <= timeout <= MAX_TIMEOUT_SECONDS):
        problems.append(Problem("timeout_seconds", f"must be a whole number of seconds from 1 "
                                                   f"to {MAX_TIMEOUT_SECONDS}, not "
                                                   f"{_shown(timeout)}"))
    shared = {k: raw[k] for k in PIPELINE_WIDE if k in raw}
    try:
        RunOverrides.model_validate(shared)
    except ValidationError as exc:
        problems += problems_from(exc)
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, dict) or not steps_raw:
        problems.append(Problem("steps", "must be an object naming at least one step: "
                                         '{"STEP": {run spec, "needs": [...]}, ...}'))
        raise PipelineError(problems)
    steps: dict[str, Step] = {}
    for step_name, body in steps_raw.items():
        step, found = _step(step_name, body, steps_raw)
        problems += found
        if step is not None:
            steps[step_name] = step
    if not problems:
        cycle = find_cycle({n: s.needs for n, s in steps.items()})
        if cycle:
            problems.append(Problem(f"steps.{cycle[0]}.needs", "the steps wait for each other "
                                    f"in a cycle ({' -> '.join(cycle)}); remove one of these "
                                    "needs"))
    if not problems:
        for step in steps.values():
            problems += _run_spec_problems(step, shared, config, check_plans)
    if problems:
        raise PipelineError(problems)
    return Pipeline(name=str(name), steps=steps, timeout_seconds=timeout, shared=shared)


def _step(name: Any, body: Any, steps: dict[str, Any]) -> tuple[Step | None, list[Problem]]:
    where = f"steps.{name}"
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return None, [Problem(where, f"{_shown(name)} is not a step name: give {NAME_RULE}")]
    if not isinstance(body, dict):
        return None, [Problem(where, "must be an object: a run spec with \"needs\"")]
    problems: list[Problem] = []
    needs_raw = body.get("needs", [])
    needs: list[str] = []
    if not isinstance(needs_raw, list) or not all(isinstance(n, str) for n in needs_raw):
        problems.append(Problem(f"{where}.needs", "must be a list of step names"))
    else:
        for i, need in enumerate(needs_raw):
            if need == name:
                problems.append(Problem(f"{where}.needs[{i}]", "a step cannot need itself"))
            elif need not in steps:
                problems.append(Problem(f"{where}.needs[{i}]", f"unknown step {need!r} (steps: "
                                                               f"{', '.join(steps)})"))
            elif need in needs:
                problems.append(Problem(f"{where}.needs[{i}]", f"{need!r} is named twice"))
            else:
                needs.append(need)
    when = body.get("when", "on_success")
    if when not in WHEN_VALUES:
        problems.append(Problem(f"{where}.when", f"must be one of {', '.join(WHEN_VALUES)}, "
                                                 f"not {_shown(when)}"))
    for key in SET_BY_FANOUT:
        if key in body:
            fix = "give it once, at the pipeline's top level" if key in PIPELINE_WIDE \
                else "fanout sets it"
            problems.append(Problem(f"{where}.{key}", f"a step cannot set it; {fix}"))
    spec = {k: v for k, v in body.items() if k not in STEP_KEYS}
    source = body.get("items_from")
    from_step = None
    if isinstance(source, dict):
        from_step = source.get("step")
        if set(source) != {"step"} or not isinstance(from_step, str):
            problems.append(Problem(f"{where}.items_from", 'an earlier step\'s items are '
                                    '{"step": NAME}; an S3 object is "s3://bucket/key"'))
        elif from_step not in steps:
            problems.append(Problem(f"{where}.items_from.step",
                                    f"unknown step {from_step!r} (steps: {', '.join(steps)})"))
        elif from_step not in needs:
            problems.append(Problem(f"{where}.items_from.step",
                                    f"{from_step!r} must be in needs too (add it)"))
        spec["items_from"] = STEP_ITEMS_PLACEHOLDER
        if "items_format" in spec:
            problems.append(Problem(f"{where}.items_format", "goes with an S3 items_from, "
                                                             "not a step's"))
    if problems:
        return None, problems
    return Step(name=name, spec={k: v for k, v in body.items() if k not in STEP_KEYS},
                needs=tuple(needs), when=when, items_from_step=from_step), []


def _run_spec_problems(step: Step, shared: dict[str, Any], config: FanoutConfig,
                       check_plan: bool) -> list[Problem]:
    """The step's run spec checked as a run's (and planned when its items are known)."""
    from fanout.spec.plan import plan_run
    from fanout.spec.validate import parse_spec

    document = {**step.spec, **shared}
    if step.items_from_step is not None:
        document["items_from"] = STEP_ITEMS_PLACEHOLDER
    try:
        spec = parse_spec(document, config)
        if check_plan and spec.items_from is None:
            plan_run(spec, config, run_id=f"pipeline-run.{step.name}")
    except SpecError as exc:
        return [Problem(f"steps.{step.name}.{p.field}" if p.field != "spec"
                        else f"steps.{step.name}", p.message) for p in exc.problems]
    return []


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else "null" if value is None \
        else type(value).__name__ if isinstance(value, dict | list) else str(value)


def check_pipelines(config: FanoutConfig) -> None:
    """Every pipeline of the config (``pipelines``) checked as ``fanout start`` checks one;
    raises :class:`ConfigError` naming ``fanout.pipelines.NAME.<field>``. Called where
    the app is built and where the CLI loads the config."""
    from fanout.config import CONTEXT_KEY
    from fanout.errors import ConfigError

    problems: list[Problem] = []
    for name, document in config.pipelines.items():
        where = f"{CONTEXT_KEY}.pipelines.{name}"
        if document.get("pipeline", name) != name:
            problems.append(Problem(f"{where}.pipeline", f"is {document.get('pipeline')!r}; "
                                    f"a configured pipeline is named by its key ({name!r})"))
            continue
        try:
            parse_pipeline({**document, "pipeline": name}, config, check_plans=False)
        except PipelineError as exc:
            problems += [Problem(f"{where}.{p.field}", p.message) for p in exc.problems]
    if problems:
        raise ConfigError(problems)
