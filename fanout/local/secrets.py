"""A job's secrets in the local mode: from the environment, or ``.fanout/secrets.json``.

On AWS, ECS hands a job's ``secrets`` to its container from Secrets Manager or SSM. Locally
no store is reached: each secret is the environment variable of its name when it is set,
else the value under its name in ``.fanout/secrets.json`` next to the config (a JSON
object, variable name -> value; keep it out of version control). A value is handed to the
task process only; nothing prints it, and a secret found nowhere stops the run before
anything starts, naming the variable, never a value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from fanout.config import FanoutConfig
from fanout.errors import Problem
from fanout.local.tasks import TaskDefinition

#: Where the local secrets are kept, from the config's folder.
SECRETS_FILE = Path(".fanout") / "secrets.json"


def local_secrets(job_name: str, config: FanoutConfig, environ: Mapping[str, str],
                  folder: Path) -> dict[str, str]:
    """The values of the job's secrets; raises LocalInputError for one found nowhere."""
    from fanout.local.checks import LocalInputError

    job = config.jobs[job_name]
    if not job.secrets:
        return {}
    path = folder / SECRETS_FILE
    stored: dict[str, object] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            # The error's position only: its text could quote a secret.
            where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
            raise LocalInputError([Problem(str(path), f"is not a JSON object of secrets"
                                                      f"{where}")]) from None
        if not isinstance(loaded, dict):
            raise LocalInputError([Problem(str(path), "must be a JSON object: variable name "
                                                      "-> secret value")])
        stored = loaded
    values: dict[str, str] = {}
    missing: list[Problem] = []
    for name in job.secrets:
        if name in environ:
            values[name] = environ[name]
        elif isinstance(stored.get(name), str):
            values[name] = str(stored[name])
        else:
            missing.append(Problem(
                f"jobs.{job_name}.secrets.{name}",
                f"has no local value: set {name} in the environment or in {path}"))
    if missing:
        raise LocalInputError(missing)
    return values


def with_secrets(definition: TaskDefinition, secrets: Mapping[str, str],
                 applies: bool = True) -> TaskDefinition:
    """The task definition whose tasks get ``secrets`` as ECS would hand them over."""
    if not applies or not secrets:
        return definition
    return replace(definition, environment={**definition.environment, **secrets})
