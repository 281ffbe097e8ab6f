"""Checking a run spec: its form, and what it can still get wrong against the deployment.

Every check names every bad field (:class:`SpecError`). Checks that need the item count or
the rendered overrides (the item cap, the 8 KiB limit) are :mod:`fanout.spec.plan`'s.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from fanout.config import CONTEXT_KEY, FanoutConfig, JobConfig
from fanout.errors import ConfigError, Problem, SpecError, problems_from
from fanout.spec.axes import BUILTIN_PLACEHOLDERS, PARAM_NAME
from fanout.spec.model import RerunSpec, RunSettings, RunSpec, resolve
from fanout.spec.templates import placeholders


def parse_rerun(raw: Any) -> RerunSpec:
    """Validate the form of a rerun spec; raises :class:`SpecError` naming every bad field."""
    try:
        return RerunSpec.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from(exc)
        for p in problems:
            if p.field in ("params", "items", "items_from", "include", "exclude", "job"):
                problems[problems.index(p)] = Problem(
                    p.field, "a rerun takes its items and job from the run it repeats")
        raise SpecError(problems) from None


def parse_spec(raw: Any, config: FanoutConfig) -> RunSpec:
    """Validate the form of a run spec and what can be checked without expanding it.

    Raises :class:`SpecError` naming every bad field. Checks that need the item count or
    the rendered overrides (the item cap, the 8 KiB limit) are :mod:`fanout.spec.plan`'s.
    """
    if not isinstance(raw, dict):
        kind = type(raw).__name__ if raw is not None else "null"
        raise SpecError([Problem("spec", f"must be a JSON object, not {kind}")])
    nul = nul_problems(raw, "")
    if nul:
        raise SpecError(nul)
    try:
        spec = RunSpec.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from(exc)
        # An unknown job is worth saying even when other fields are wrong.
        job = raw.get("job")
        if isinstance(job, str) and job and job not in config.jobs:
            problems.insert(0, _unknown_job(job, config))
        raise SpecError(problems) from None
    problems = check_semantics(spec, config)
    if problems:
        raise SpecError(problems)
    return spec


#: What a NUL byte is told: the OS ends an argument or an environment value at one.
NUL_MESSAGE = ("holds a NUL byte (\\x00), which no command argument or environment value "
               "can carry; remove it")


def nul_problems(value: Any, where: str) -> list[Problem]:
    """Every string (key or value) under ``value`` that holds a NUL byte, by field."""
    if isinstance(value, str):
        return [Problem(where or "spec", NUL_MESSAGE)] if "\x00" in value else []
    found: list[Problem] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            path = (f"{where}.{key}" if where else str(key)).replace("\x00", "\\x00")
            if isinstance(key, str) and "\x00" in key:
                found.append(Problem(path, NUL_MESSAGE))
            found += nul_problems(inner, path)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found += nul_problems(inner, f"{where}[{i}]")
    return found[:10]


def _unknown_job(job: str, config: FanoutConfig) -> Problem:
    return Problem("job", f"unknown job {job!r} (jobs: {', '.join(sorted(config.jobs))})")


def check_semantics(spec: RunSpec, config: FanoutConfig) -> list[Problem]:
    """What a valid-looking spec can still get wrong, against the deployment."""
    if spec.job not in config.jobs:
        return [_unknown_job(spec.job, config)]
    job = config.jobs[spec.job]
    settings = resolve(spec, job)
    problems: list[Problem] = []
    if settings.max_concurrency > config.limits.max_concurrency:
        problems.append(Problem(
            "max_concurrency",
            f"{settings.max_concurrency} is over the deployment's limit "
            f"of {config.limits.max_concurrency}",
        ))
    problems += packing_problems(spec, settings, job)

    axes = set(spec.params or {})
    known = axes | set(BUILTIN_PLACEHOLDERS)
    for i, pattern in enumerate(spec.exclude):
        if spec.params is not None:
            for key in pattern:
                if key not in axes:
                    problems.append(Problem(f"exclude[{i}].{key}", "not a parameter of params"))
        if not pattern:
            problems.append(Problem(f"exclude[{i}]", "an empty pattern would exclude every item"))
    if spec.params is None:
        # Explicit items: their keys are known only at run time for items_from.
        if spec.items is not None:
            known = {k for item in spec.items for k in item} | set(BUILTIN_PLACEHOLDERS)
            for i, item in enumerate(spec.items):
                for key in item:
                    if not PARAM_NAME.fullmatch(key) or key in BUILTIN_PLACEHOLDERS:
                        problems.append(Problem(f"items[{i}].{key}", "not a usable parameter name"))
        elif spec.items_from is not None:
            known = set()  # checked when the items are read
        else:
            # Only include items: each is checked against the templates by the expansion.
            known = {k for item in spec.include for k in item} | set(BUILTIN_PLACEHOLDERS)
    for i, extra in enumerate(spec.include):
        if not extra:
            problems.append(Problem(f"include[{i}]", "an empty item"))
        for key in extra:
            if not PARAM_NAME.fullmatch(key) or key in BUILTIN_PLACEHOLDERS:
                problems.append(Problem(f"include[{i}].{key}", "not a usable parameter name"))
    if spec.command is None:  # the job's own templates (a spec's were checked as given)
        problems += nul_problems(settings.command, f"job {spec.job} command")
    if spec.environment is None:
        problems += nul_problems(settings.environment, f"job {spec.job} environment")
    if known:
        field = "command" if spec.command is not None else f"job {spec.job} command"
        problems += _template_problems(settings.command, known, field, indexed=True)
        field = "environment" if spec.environment is not None else f"job {spec.job} environment"
        for name, template in settings.environment.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                problems.append(Problem(f"{field}.{name}", "not a valid variable name"))
            problems += _template_problems([template], known, f"{field}.{name}", indexed=False)
    return problems


def packing_problems(spec: RunSpec, settings: RunSettings, job: JobConfig) -> list[Problem]:
    """What is wrong with a run's packing (docs/decisions/0020), one problem per field."""
    k, c = settings.items_per_task, settings.per_task_concurrency
    field = "items_per_task" if spec.items_per_task is not None else (
        f"job {spec.job} defaults.items_per_task")
    if k != 1 and not job.packable:
        return [Problem(field, f"job {spec.job} does not allow packing (its config sets "
                               "packable: false); use items_per_task 1")]
    if k != "auto" and c > k:
        where = ("per_task_concurrency" if spec.per_task_concurrency is not None
                 else f"job {spec.job} defaults.per_task_concurrency")
        return [Problem(where, f"{c} is more than items_per_task ({k}); a task cannot run "
                               "more items at once than it carries")]
    if k != 1 and not job.entrypoint:
        return [Problem(field, f"packing job {spec.job} needs its image's entrypoint; set "
                               f"{CONTEXT_KEY}.jobs.{spec.job}.entrypoint in the config")]
    return []


def _template_problems(
    templates: list[str], known: set[str], field: str, *, indexed: bool
) -> list[Problem]:
    problems = []
    for i, template in enumerate(templates):
        where = f"{field}[{i}]" if indexed else field
        try:
            names = placeholders(template)
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        for name in names:
            if name not in known:
                problems.append(Problem(
                    where,
                    f"unknown placeholder {{{name}}} (known: {', '.join(sorted(known))})",
                ))
    return problems


def check_schedule_specs(config: FanoutConfig) -> None:
    """Every schedule's spec parses against the deployment; raises :class:`ConfigError`.

    Called where the app is built and where the CLI loads the config.
    """
    problems: list[Problem] = []
    for i, schedule in enumerate(config.schedules):
        if schedule.spec is None:  # a pipeline's: fanout.pipelines.validate.check_pipelines
            continue
        try:
            parse_spec(schedule.spec, config)
        except ConfigError:
            raise
        except Exception as exc:  # SpecError carries its problems
            for p in getattr(exc, "problems", [Problem("", str(exc))]):
                problems.append(Problem(f"{CONTEXT_KEY}.schedules[{i}].spec.{p.field}", p.message))
    if problems:
        raise ConfigError(problems)
