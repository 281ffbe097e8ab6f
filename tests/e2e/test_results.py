"""The synthesized state machine against Step Functions' 256 KiB, through the whole local mode.

Without its ResultWriter the Distributed Map gathers every child's output into its own
(``ResultPath: null`` does not stop it): the run fails with States.DataLimitExceeded at
the item count where AWS would, Finalize never running. With it (the real definition)
the same run passes, its results in S3. Each run is its own process (moto's state is
global); the bench deployment's ``noop`` job makes the items cheap. The runs at the limit pad
each child's output (:data:`PAD`): the same arithmetic at some 150 items, not 1,100.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fanout.local.moto.limits import PAYLOAD_BYTES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "limits-run"
#: Bytes added to each child's output (its callback's, fanout.runtime.settle.output_of) in
#: the runs at the limit: children of some 1,700 bytes pass 256 KiB at some 150 items, so
#: those runs take seconds where the product's own 230-byte children take minutes, for the
#: same arithmetic. Under 4 KiB, as the real definition's largest payload must stay.
PAD = 1500

WORKER = """
import json, sys
from pathlib import Path
from fanout.local import stack as local_stack
from fanout.local.moto.limits import MAXIMA
from fanout.local.runner import LocalOptions, LocalRun

if {drop_writer!r}:
    definition = local_stack.state_machine_definition

    def without_writer(*args, **kwargs):
        asl = definition(*args, **kwargs)
        del asl["States"]["FanOut"]["ResultWriter"]
        return asl

    local_stack.state_machine_definition = without_writer
if {pad}:
    from fanout.runtime import settle

    output_of = settle.output_of

    def padded(attempt):
        return {{**output_of(attempt), "pad": "x" * {pad}}}

    settle.output_of = padded
spec = {{"job": "noop", "params": {{"n": {{"range": {{"start": 0, "stop": {items}}}}},
                                   "fail": [0]}}, "max_concurrency": 100}}
options = LocalOptions(config_path=Path({config!r}), run_id={run_id!r},
                       records_dir=Path({records!r}), stop_grace_seconds=0.5)
summary = LocalRun(options).run(spec)
print(json.dumps({{"status": summary.status, "succeeded": summary.succeeded,
                  "problems": summary.problems, "maxima": MAXIMA.snapshot()}}))
"""


def raised_quota(tmp_path: Path) -> Path:
    """The bench's deployment with a raised Fargate launch quota: these runs are about the
    map's results, not about pacing launches (bench/launch.py and test_gate are)."""
    config = json.loads((ROOT / "bench" / "cdk.json").read_text())
    bucket = {"burst": 2000, "per_second": 1000}
    config["context"]["fanout"]["launch_gate"] = {"FARGATE": bucket, "FARGATE_SPOT": bucket}
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps(config))
    return path


def local_run(tmp_path: Path, items: int, *, drop_writer: bool, pad: int = PAD,
              ) -> dict[str, Any]:
    records = tmp_path / f"runs-{items}-{drop_writer}-{pad}"
    code = WORKER.format(drop_writer=drop_writer, items=items, run_id=RUN_ID, pad=pad,
                         config=str(raised_quota(tmp_path)), records=str(records))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    outcome["records"] = records / RUN_ID
    return outcome


def digits(n: int) -> int:
    return len(str(n))


def gathered_bytes(items: int, base: int) -> int:
    """The children's outputs as the map gathers them: ``[o0,o1,...]``, each output
    ``base`` bytes plus the digits of its index."""
    return 2 + (items - 1) + sum(base + digits(i) for i in range(items))


def child_bytes(tmp_path: Path, pad: int) -> int:
    """What one child's output weighs, measured (its index's digits apart) from the results a
    3-item run without the ResultWriter gathers (the run's largest payload)."""
    small = local_run(tmp_path, 3, drop_writer=True, pad=pad)
    assert small["status"] == "SUCCEEDED", small
    total: int = small["maxima"]["payload_bytes"]
    base = (total - 2 - 2 - sum(digits(i) for i in range(3))) // 3
    assert gathered_bytes(3, base) == total
    return base


def first_over(base: int) -> int:
    """The first item count whose gathered results pass 256 KiB."""
    return next(n for n in range(1, 10_000) if gathered_bytes(n, base) > PAYLOAD_BYTES)


def test_without_result_writer_the_run_fails_where_aws_would_and_with_it_passes(tmp_path):
    # Given the synthesized definition without its ResultWriter, a 3-item run measures
    # what one child's output weighs (the gathered results are the run's largest payload)
    base = child_bytes(tmp_path, pad=0)
    # And the item count where AWS fails follows: the first whose results pass 256 KiB
    assert 900 < first_over(base) < 1_300  # about 230 bytes a child: some thousand items

    # Given each child's output padded by PAD bytes, measured the same way
    padded = child_bytes(tmp_path, pad=PAD)
    assert padded > base + PAD
    base, fails_at = padded, first_over(padded)

    # When one item fewer runs, Then it passes, its results just within the limit
    below = local_run(tmp_path, fails_at - 1, drop_writer=True)
    assert below["status"] == "SUCCEEDED", below["problems"]
    assert below["maxima"]["payload_bytes"] == gathered_bytes(fails_at - 1, base) <= PAYLOAD_BYTES

    # When that many items run, Then the execution fails with States.DataLimitExceeded,
    # naming the map and the bytes: the map's Catch (States.ALL) does not take it, so
    # Finalize never runs (Abort closes the run on the failed execution)
    over = local_run(tmp_path, fails_at, drop_writer=True)
    assert over["status"] == "FAILED"
    (problem,) = over["problems"]
    assert "FanOut" in problem and f"{gathered_bytes(fails_at, base):,} bytes" in problem
    assert "256 KiB" in problem

    # When the real definition (with its ResultWriter) runs the same items
    real = local_run(tmp_path, fails_at, drop_writer=False)
    # Then it passes, its largest payload one child's output (under 4 KiB), not the
    # gathered results, which are in S3
    assert real["status"] == "SUCCEEDED" and real["succeeded"] == fails_at, real["problems"]
    assert real["maxima"]["payload_bytes"] < 4096
    (manifest,) = (real["records"] / "results").glob("*/manifest.json")
    files = json.loads(manifest.read_text())["ResultFiles"]
    assert files["FAILED"] == [] and len(files["SUCCEEDED"]) == 1
    entries = json.loads((manifest.parent / "SUCCEEDED_0.json").read_text())
    assert sorted(json.loads(e["Output"])["index"] for e in entries) == list(range(fails_at))
