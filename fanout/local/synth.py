"""Synthesize the CDK app once per source and config, and read its template back.

The cache key is a hash of everything the template depends on (the config's ``fanout``
context, ``app.py``, ``infra/``, ``fanout/``, ``lambdas/``), so an edit re-synthesizes
and a repeated run does not. Runs in parallel share one synthesis (a file lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fanout.config import CONTEXT_KEY

SOURCES = ("app.py", "cdk.json", "infra", "fanout", "lambdas")


class SynthError(Exception):
    """The CDK app did not synthesize."""


def project_root() -> Path:
    """Where ``app.py`` lives: the directory above the ``fanout`` package."""
    return Path(__file__).resolve().parent.parent.parent


def _source_hash(root: Path, context: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(context, sort_keys=True).encode())
    for name in SOURCES:
        path = root / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts and not _local_only(file):
                digest.update(str(file.relative_to(root)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _local_only(file: Path) -> bool:
    # The local mode, the CLI and the test fakes are not in the template (nor in the code
    # asset): editing them needs no synthesis.
    parts = file.parts
    return any(parts[i:i + 2] in (("fanout", "local"), ("fanout", "cli"), ("fanout", "testing"))
               for i in range(len(parts) - 1))


def synthesize(config_path: str | Path, stack_name: str, *, cache: Path | None = None,
               timeout_seconds: float = 300) -> dict[str, Any]:
    """The stack's template for the config at ``config_path`` (synthesized when not cached)."""
    root = project_root()
    document = json.loads(Path(config_path).read_text())
    context = document.get("context", {})
    cache = cache or root / ".fanout" / "synth"
    out_dir = cache / _source_hash(root, context)
    template = out_dir / f"{stack_name}.template.json"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{out_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            _run_app(root, out_dir, context, Path(config_path), timeout_seconds)
        if not template.exists():
            raise SynthError(f"the CDK app wrote no {template.name} into {out_dir}")
    loaded: dict[str, Any] = json.loads(template.read_text())
    return loaded


def _run_app(root: Path, out_dir: Path, context: dict[str, Any], config_path: Path,
             timeout_seconds: float) -> None:
    if CONTEXT_KEY not in context:
        raise SynthError(f"{config_path} has no context.{CONTEXT_KEY}")
    staging = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    env = {
        **os.environ,
        "CDK_OUTDIR": str(staging),
        "CDK_CONTEXT_JSON": json.dumps(context),
        "FANOUT_CONFIG": str(config_path.resolve()),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    started = time.monotonic()
    python = root / ".venv" / "bin" / "python"
    result = subprocess.run(
        [str(python if python.exists() else sys.executable), "app.py"], cwd=root, env=env,
        capture_output=True, text=True, timeout=timeout_seconds, check=False,
    )
    if result.returncode != 0:
        raise SynthError(
            f"synthesis failed after {time.monotonic() - started:.0f}s:\n"
            + (result.stderr or result.stdout)[-4000:]
        )
    staging.rename(out_dir)
