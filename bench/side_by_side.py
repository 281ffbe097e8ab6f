"""Benchmark: the local mode's overhead per item, this checkout against an earlier commit.

On a shared machine an absolute figure moves with the load; a ratio measured in the same
minutes does not. This runs ``local_overhead.one_run`` (no-op items at concurrency 50) in
a ``git worktree`` of ``--base`` and in this checkout, one after the other, alternating
which goes first, ``--rounds`` times, and reports the CPU per item of each and their
ratio (this checkout over the base). Both use this checkout's virtual environment.
Writes bench/out/side_by_side.json; documents no figure (the ratio is written up by hand
in docs/benchmarks.md with its rounds).

    .venv/bin/python bench/side_by_side.py --base 2e6726c [--items 500] [--rounds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _local import machine, write_out  # noqa: E402

#: What each tree runs: its own bench/local_overhead.py, its own fanout, one run, as JSON.
ONE_RUN = """
import contextlib, json, os, sys
tree = sys.argv[1]
sys.path[:0] = [tree + "/bench", tree]
os.chdir(tree)
import math
import local_overhead as lo
items = int(sys.argv[2])
noop = lo.noop_seconds(10)
with contextlib.redirect_stdout(sys.stderr):
    if hasattr(lo, "one_run"):
        result = lo.one_run(items, 50, noop)
    else:  # a commit from before one_run: its measure, the execution's wall time only
        run = lo.measure(items, 50)
        ideal = math.ceil(items / 50) * noop
        result = {"overhead_ms_per_item": (run["execution_seconds"] - ideal) / items * 1000,
                  "execution_cpu_ms_per_item": None, "reference_ms": None}
print(json.dumps(result))
"""


def run_in(tree: Path, items: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", ONE_RUN, str(tree), str(items)],
                          env={**os.environ, "PYTHONPATH": str(tree)},
                          capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"the run in {tree} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    if args.rounds < 1 or args.items < 1:
        parser.error("--rounds and --items must be at least 1")
    base = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=REPO,
                          capture_output=True, text=True, check=False)
    if base.returncode != 0:
        parser.error(f"--base {args.base!r} is not a commit of this repository")
    rounds = []
    with tempfile.TemporaryDirectory(prefix="fanout-base-") as folder:
        tree = Path(folder) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), args.base],
                       cwd=REPO, check=True)
        try:
            for n in range(args.rounds):
                order = [("base", tree), ("this", REPO)]
                order = order if n % 2 == 0 else order[::-1]
                got = {name: run_in(where, args.items) for name, where in order}
                # CPU per item where both report it (the load moves it least), else the
                # overhead per item (wall time)
                measure = "execution_cpu_ms_per_item" if got["base"][
                    "execution_cpu_ms_per_item"] is not None else "overhead_ms_per_item"
                ratio = got["this"][measure] / got["base"][measure]
                rounds.append({"first": order[0][0], "ratio": round(ratio, 3),
                               "ratio_of": measure, **{
                    f"{name}_{key}": got[name][key] for name in got for key in (
                        "execution_cpu_ms_per_item", "overhead_ms_per_item", "reference_ms")}})
                print(f"round {n + 1}: {measure} base {got['base'][measure]:.2f} ms, "
                      f"this {got['this'][measure]:.2f} ms ({ratio:.3f}x)", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                           check=False)
    measure = rounds[0]["ratio_of"]
    means = {name: statistics.mean(r[f"{name}_{measure}"] for r in rounds)
             for name in ("base", "this")}
    result = {"benchmark": "side_by_side", "base": base.stdout.strip(), "items": args.items,
              "machine": machine(), "rounds": rounds, "compared": measure,
              "means": {k: round(v, 2) for k, v in means.items()},
              "ratio_of_means": round(means["this"] / means["base"], 3)}
    path = write_out("side_by_side", result)
    print(f"{args.rounds} rounds of {args.items} items, {measure}: {means['this']:.2f} ms "
          f"here, {means['base']:.2f} ms at {result['base']}: {result['ratio_of_means']}x "
          f"(written to {path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
