"""Run every benchmark in bench/ (each writes its figures to bench/out/<name>.json).

Exits non-zero when any benchmark misses its targets or fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: What make test re-runs against the documented figures (tests/bench/test_figures.py).
CHECKED = [("local_overhead.py", "--quick"), ("expand.py", "--quick"),
           ("ui.py", "--quick", "--no-browser")]


def main() -> int:
    failed = []
    quick = ["--quick"] if "--quick" in sys.argv[1:] else []
    for script in sorted(HERE.glob("*.py")):
        # aws_load.py needs a deployed stack and AWS credentials: run by hand only.
        if script.name in (Path(__file__).name, "report.py", "aws_load.py") \
                or script.name.startswith("_"):
            continue
        print(f"== {script.name}", flush=True)
        # Each benchmark runs from bench/ so that it finds the shared helpers (_*.py).
        if subprocess.run([sys.executable, str(script), *quick], cwd=HERE,
                          check=False).returncode != 0:
            failed.append(script.name)
    if not quick:
        # The cheap runs tests/bench/test_figures.py repeats in make test, documented at
        # the same commit as the full runs (docs/benchmarks.json).
        for name, *flags in CHECKED:
            print(f"== {name} {' '.join(flags)}", flush=True)
            if subprocess.run([sys.executable, str(HERE / name), *flags], cwd=HERE,
                              check=False).returncode != 0:
                failed.append(f"{name} {' '.join(flags)}")
    subprocess.run([sys.executable, str(HERE / "report.py")], cwd=HERE, check=False)
    if failed:
        print(f"missed targets or failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
