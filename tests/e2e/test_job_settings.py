"""A job with secrets, policies, storage, volumes and a pinned image, run locally: its
tasks get the secrets, and nothing the run leaves behind holds them."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2E_CONFIG, ROOT, fanout_command

pytestmark = pytest.mark.slow

SECRET = "hunter2-e2e-value"
#: Exits 0 only when the task got the secret, printing nothing of it (the config, which the
#: run's records copy, holds only its hash).
CHECK = ("import hashlib, os, sys; ok = hashlib.sha256(os.environ.get('DB_PASSWORD', '')"
         ".encode()).hexdigest() == %r; "
         "print('secret present' if ok else 'secret missing'); sys.exit(0 if ok else 7)")


def deployment(folder: Path) -> Path:
    """The e2e deployment plus a job with every job setting, in ``folder``."""
    document: dict[str, Any] = json.loads(E2E_CONFIG.read_text())
    document["context"]["fanout"]["stack_name"] = "FanoutSettings"
    document["context"]["fanout"]["jobs"]["secretive"] = {
        "command": ["{x}"], "local_command": ["python3", "-c",
                          CHECK % hashlib.sha256(SECRET.encode()).hexdigest()],
        "image_digest": "sha256:" + "5e" * 32,
        "secrets": {"DB_PASSWORD": "prod/db#password"},
        "policies": ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
        "ephemeral_storage_gib": 40,
        "volumes": [{"file_system_id": "fs-0123456789abcdef0", "container_path": "/data"}],
        "defaults": {"retry": {"max_attempts": 1}},
    }
    config = folder / "cdk.json"
    config.write_text(json.dumps(document))
    return config


def run(folder: Path, config: Path) -> subprocess.CompletedProcess[str]:
    spec = folder / "spec.json"
    spec.write_text(json.dumps({"job": "secretive", "params": {"x": [1, 2]}}))
    return subprocess.run(
        [*fanout_command(spec, "--config", config, "--json", "--records-dir",
                         folder / "runs")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_a_jobs_secret_reaches_its_tasks_and_nothing_else(tmp_path: Path) -> None:
    # Given the job's secret in .fanout/secrets.json next to its config
    config = deployment(tmp_path)
    (tmp_path / ".fanout").mkdir()
    (tmp_path / ".fanout" / "secrets.json").write_text(json.dumps({"DB_PASSWORD": SECRET}))
    # When it runs locally
    result = run(tmp_path, config)
    # Then every task had the secret
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["succeeded"] == 2
    # And neither the output nor any record, log or result file holds it
    assert SECRET not in result.stdout + result.stderr
    written = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in written)
    assert all(SECRET not in p.read_text(errors="replace") for p in written)


def test_a_secret_with_no_local_value_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    # Given no local value for the job's secret
    config = deployment(tmp_path)
    # When it runs / Then one line names the job's secret and where to set it, exit 2
    result = run(tmp_path, config)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "jobs.secretive.secrets.DB_PASSWORD" in line and ".fanout/secrets.json" in line
    assert not (tmp_path / "runs").exists()
