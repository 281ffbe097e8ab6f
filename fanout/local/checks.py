"""What ``fanout local`` checks before anything starts: each a clear exit 2, nothing run.

The records folder and the run id (a folder of it), the job's ``local_command`` (or a
Docker engine for ``--docker``), and whether the machine can hold that many items in flight.
The spec and the config have their own checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from fanout.errors import FanoutInputError, Problem

if TYPE_CHECKING:
    from fanout.config import FanoutConfig


class DockerUnavailable(FanoutInputError):
    what = "--docker"


class LocalInputError(FanoutInputError):
    """An argument or a job that the local mode cannot use (found before anything starts)."""

    what = "input for fanout local"


def check_records_dir(records_dir: Path, run_id: str | None) -> None:
    """Refuse a records folder that cannot take the run, or a run id already used there."""
    problems: list[Problem] = []
    if records_dir.exists() and not records_dir.is_dir():
        problems.append(Problem("--records-dir", f"{records_dir} is a file, not a folder; "
                                                 "name a folder (it is made if missing)"))
    else:
        existing = records_dir
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            problems.append(Problem("--records-dir", f"{existing} is a file, so {records_dir} "
                                                     "cannot be made; name a folder"))
        elif not os.access(existing, os.W_OK | os.X_OK):
            problems.append(Problem("--records-dir", f"{existing} is not writable; name a "
                                                     "folder you can write to"))
        elif run_id is not None and (records_dir / run_id).exists() \
                and not _reserved_for_this_process(records_dir / run_id):
            problems.append(Problem("--run-id", f"a local run {run_id!r} already exists in "
                                                f"{records_dir}; choose another id, or remove "
                                                f"{records_dir / run_id}"))
    if problems:
        raise LocalInputError(problems)


def _reserved_for_this_process(folder: Path) -> bool:
    """Whether the run's folder holds only the RUNNING line that whoever started this process
    in the background wrote for it (``LocalRuns.start``: its pid is this process's)."""
    try:
        lines = (folder / "records.jsonl").read_text().splitlines()
        first = json.loads(lines[0]) if len(lines) == 1 else {}
    except (OSError, ValueError):
        return False
    return (isinstance(first, dict) and first.get("record") == "run"
            and first.get("status") == "RUNNING" and first.get("pid") == os.getpid())


def check_local_command(job: str, config: FanoutConfig, cwd: Path,
                        environ: Mapping[str, str]) -> None:
    """Refuse a job whose tasks could not start as local processes (before anything starts)."""
    job_config = config.jobs.get(job)
    if job_config is None:
        return  # the spec check names an unknown job
    field_name = f"jobs.{job}.local_command"
    command = list(job_config.local_command)
    if not command:
        raise LocalInputError([Problem(field_name, (
            f"job {job!r} has no local_command, so its tasks cannot run as local processes; "
            "add local_command (the program to run in place of the image, e.g. "
            '["python3", "main.py"]) to the job in the config, or run with --docker'))])
    program = command[0]
    if "/" in program:
        path = (cwd / program) if not Path(program).is_absolute() else Path(program)
        found = path.is_file() and os.access(path, os.X_OK)
        where = f"{path} is not an executable file"
    else:
        found = shutil.which(program, path=environ.get("PATH", os.defpath)) is not None
        where = f"{program!r} is not a program on PATH"
    if not found:
        raise LocalInputError([Problem(field_name, (
            f"job {job!r} cannot start locally: {where}; fix local_command in the config, "
            "or run with --docker"))])


def check_docker() -> None:
    """Raise :class:`DockerUnavailable` unless a Docker engine answers."""
    if shutil.which("docker") is None:
        raise DockerUnavailable([Problem("--docker", "no docker command on PATH")])
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                                capture_output=True, text=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        raise DockerUnavailable([Problem("--docker", "docker info did not answer in 10s")]) \
            from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise DockerUnavailable([Problem(
            "--docker", "no Docker engine is running here"
            + (f" ({detail[-1]})" if detail else "") + "; run without --docker to use "
            "local processes",
        )])


#: Threads the local mode holds per item in flight (its child execution's interpreter and
#: the wait on its task token): measured, 30,007 threads for 10,000 items at once.
THREADS_PER_ITEM = 3.0
#: Threads kept for everything else (the control plane, tasks starting and stopping).
THREADS_SPARE = 1000


def threads_left() -> tuple[int, str] | None:
    """How many more threads this machine can start, and the limit that says so (Linux:
    ``kernel.pid_max`` and ``kernel.threads-max`` against the threads alive now, and the
    cgroup's ``pids.max``); None where it cannot be read."""
    proc = Path("/proc")
    try:
        alive = int((proc / "loadavg").read_text().split()[3].split("/")[1])
        limits = {name: int((proc / "sys/kernel" / name).read_text())
                  for name in ("pid_max", "threads-max")}
    except (OSError, ValueError, IndexError):
        return None
    left = {f"kernel.{name}": value - alive for name, value in limits.items()}
    cgroup = Path("/sys/fs/cgroup")
    try:
        cap = (cgroup / "pids.max").read_text().strip()
        if cap != "max":
            left["the cgroup's pids.max"] = int(cap) - int((cgroup / "pids.current").read_text())
    except (OSError, ValueError):
        pass
    name = min(left, key=lambda k: left[k])
    return left[name], name


def check_threads(at_once: int) -> None:
    """Refuse a run that would run out of threads part way (each item in flight holds three):
    better said now than after minutes of launches."""
    found = threads_left()
    if found is None:
        return
    left, limit = found
    need = int(at_once * THREADS_PER_ITEM) + THREADS_SPARE
    if need <= left:
        return
    fits = max(int((left - THREADS_SPARE) / THREADS_PER_ITEM), 1)
    raise LocalInputError([Problem("max_concurrency", (
        f"{at_once} items at once need about {need} threads in the local mode and this "
        f"machine has {left} left ({limit}); lower it (--concurrency {fits} fits) or raise "
        "the limit (sudo sysctl -w kernel.pid_max=4194304 kernel.threads-max=4194304)"))])
