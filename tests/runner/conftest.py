"""The packed task's runner (runner/runner.c), compiled as its image compiles it: static."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "runner" / "runner.c"


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runner binary, built once per session (gcc -static, as runner/Dockerfile)."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc to build runner/runner.c")
    binary = tmp_path_factory.mktemp("runner") / "runner"
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(binary),
                    str(SOURCE)], check=True, capture_output=True, text=True)
    return binary
