"""What a local run was made with, kept in its records folder so a rerun runs the same.

``<records_dir>/<run_id>/cdk.json`` is the config file as the run read it (byte for byte),
and ``made_with.json`` says where it came from and what the job was: ``config`` (the path
of the original file), ``folder`` (where the tasks ran: local_command paths are from it),
``job`` and ``definition`` (the job as the config defined it: image tag, size, command and
environment templates, ``local_command``), ``config_sha256``. A rerun reads them back
instead of the config of the current folder (docs/decisions/0014-faithful-reruns.md).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fanout.config import JobConfig

MADE_WITH = "made_with.json"
CONFIG_COPY = "cdk.json"


def record_made_with(folder: Path, config_path: Path, task_dir: Path, job: str,
                     definition: JobConfig) -> None:
    """Keep the config and the job's definition a run is made with in its folder."""
    data = config_path.read_bytes()
    original = str(config_path.resolve())
    earlier = made_with(config_path.parent)
    if earlier is not None and config_path.name == CONFIG_COPY:
        original = str(earlier.get("config") or original)  # a rerun's copy of a copy
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_COPY).write_bytes(data)
    record = {"config": original, "folder": str(task_dir.resolve()), "job": job,
              "definition": definition.model_dump(mode="json"),
              "config_sha256": hashlib.sha256(data).hexdigest()}
    aside = folder / f".{MADE_WITH}.tmp"
    aside.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    aside.replace(folder / MADE_WITH)


def made_with(folder: Path) -> dict[str, Any] | None:
    """What the run in ``folder`` was made with; None for a run made before it was kept."""
    path = folder / MADE_WITH
    if not path.is_file() or not (folder / CONFIG_COPY).is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def differences(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """``name: old -> new`` for every field of a job's definition that differs."""
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            lines += differences(old, new, f"{prefix}{key}.")
        else:
            lines.append(f"{prefix}{key}: {json.dumps(old)} -> {json.dumps(new)}")
    return lines
