"""Cold-start import cost of each Lambda handler module, against a bare ``import boto3``.

Each figure is the median of several fresh interpreters (``python -c``), timed inside the
interpreter so the interpreter's own start-up is left out. Two figures per handler:
``import`` (what the module loads at import time: the Lambda init phase) and
``first call`` (the module plus everything its first invocation imports: Powertools'
Tracer with the X-Ray SDK, pydantic models, boto3). Target: import <= 1.5x boto3.
Writes bench/out/coldstart.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ["expand", "launch", "record", "finalize", "reconcile", "abort"]
TARGET = 1.5

_TIMER = """
import time, importlib
t = time.perf_counter()
{body}
print((time.perf_counter() - t) * 1000)
"""


def _first_call_imports(name: str) -> str:
    """What the handler's first invocation imports (mirrors lambdas/<name>.py)."""
    runtime = {"expand": "expand", "launch": "launch", "record": "record",
               "finalize": "finalize", "reconcile": "reconcile", "abort": "abort"}[name]
    return "\n".join([
        f"importlib.import_module('lambdas.{name}')",
        "from aws_lambda_powertools import Tracer; Tracer(service='fanout')",
        f"importlib.import_module('fanout.runtime.{runtime}')",
        "import fanout.runtime.context, fanout.settings, fanout.records.dynamo, fanout.aws.ecs",
        "import boto3",
    ])


def measure(body: str, repeats: int) -> float:
    runs = []
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "0",
           "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "fanout"}
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _TIMER.format(body=body)], cwd=ROOT,
                             env=env, capture_output=True, text=True, check=True)
        runs.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(runs)


def _machine() -> dict[str, object]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _local import machine

    return machine()


def main(repeats: int = 7) -> dict[str, object]:
    # Warm the bytecode caches once so every figure measures imports, not compiles.
    measure("import boto3; " + "; ".join(f"import lambdas.{h}" for h in HANDLERS), 1)
    baseline = measure("import boto3", repeats)
    results: dict[str, object] = {"repeats": repeats, "python": sys.version.split()[0],
                                  "boto3_ms": round(baseline, 1), "target_ratio": TARGET,
                                  "handlers": {}, "machine": _machine()}
    handlers: dict[str, dict[str, float | bool]] = {}
    print(f"bare import boto3: {baseline:7.1f} ms (median of {repeats})")
    print(f"{'handler':<10} {'import ms':>10} {'ratio':>6} {'first call ms':>14} {'ratio':>6}")
    for name in HANDLERS:
        imported = measure(f"importlib.import_module('lambdas.{name}')", repeats)
        first = measure(_first_call_imports(name), repeats)
        handlers[name] = {"import_ms": round(imported, 1),
                          "import_ratio": round(imported / baseline, 2),
                          "first_call_ms": round(first, 1),
                          "first_call_ratio": round(first / baseline, 2),
                          "within_target": imported / baseline <= TARGET}
        print(f"{name:<10} {imported:10.1f} {imported / baseline:6.2f} {first:14.1f} "
              f"{first / baseline:6.2f}")
    results["handlers"] = handlers
    out = Path(os.environ.get("FANOUT_BENCH_OUT", ROOT / "bench" / "out"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "coldstart.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
    handlers = result["handlers"]
    assert isinstance(handlers, dict)
    sys.exit(0 if all(h["within_target"] for h in handlers.values()) else 1)
