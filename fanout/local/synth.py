"""Synthesize the CDK app once per source and config, and read its template back.

The cache key is a hash of everything the template depends on (the config's ``fanout``
context, ``app.py``, ``infra/``, ``fanout/``, ``lambdas/``), so an edit re-synthesizes
and a repeated run does not. Runs in parallel share one synthesis (a file lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fanout.config import CONTEXT_KEY

SOURCES = ("app.py", "cdk.json", "infra", "fanout", "lambdas")


class SynthError(Exception):
    """The CDK app did not synthesize."""


class SynthInterrupted(Exception):
    """The ``interrupted`` event was set while synthesizing (the app was stopped)."""


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
               timeout_seconds: float = 300,
               interrupted: threading.Event | None = None) -> dict[str, Any]:
    """The stack's template for the config at ``config_path`` (synthesized when not cached).

    When ``interrupted`` is set on the way, the app is stopped and :class:`SynthInterrupted`
    raised (nothing is left in the cache).
    """
    interrupted = interrupted or threading.Event()
    root = project_root()
    document = json.loads(Path(config_path).read_text())
    context = document.get("context", {})
    cache = cache or root / ".fanout" / "synth"
    out_dir = cache / _source_hash(root, context)
    template = out_dir / f"{stack_name}.template.json"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{out_dir.name}.lock", "w") as lock:
        while True:  # another fanout may be synthesizing the same: wait, but stay stoppable
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if interrupted.wait(0.1):
                    raise SynthInterrupted from None
        if not template.exists():
            _run_app(root, out_dir, context, Path(config_path), timeout_seconds, interrupted)
        if not template.exists():
            raise SynthError(f"the CDK app wrote no {template.name} into {out_dir}")
    loaded: dict[str, Any] = json.loads(template.read_text())
    return loaded


def _run_app(root: Path, out_dir: Path, context: dict[str, Any], config_path: Path,
             timeout_seconds: float, interrupted: threading.Event) -> None:
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
    # Its own session: a Ctrl-C at the terminal reaches fanout, which stops the app itself
    # (no traceback of the app's), rather than both at once.
    app = subprocess.Popen(
        [str(python if python.exists() else sys.executable), "app.py"], cwd=root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(app.communicate()), daemon=True)
    reader.start()
    deadline = started + timeout_seconds
    while reader.is_alive():
        if interrupted.is_set() or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(app.pid, signal.SIGKILL)
            reader.join()
            shutil.rmtree(staging, ignore_errors=True)
            if interrupted.is_set():
                raise SynthInterrupted
            raise SynthError(f"synthesis took more than {timeout_seconds:.0f}s")
        reader.join(0.1)
    stdout, stderr = output or ["", ""]
    if app.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise SynthError(
            f"synthesis failed after {time.monotonic() - started:.0f}s:\n"
            + (stderr or stdout)[-4000:]
        )
    staging.rename(out_dir)
