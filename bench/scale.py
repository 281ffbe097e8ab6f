"""Scale: the real Expand runtime on a 1,000,000-item matrix under moto, in its own process.

Measures Expand's time and peak RSS (the process's ``ru_maxrss``) against a 1,024 MB
Lambda's budget: the manifest goes to moto's S3 with the multipart upload, the run record
to the in-memory records store. (The 10,000-item local run is not in this script yet.)

    .venv/bin/python bench/scale.py [--quick]     # --quick: a 10,000-item matrix
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from _local import REPO, machine, write_out

BUDGET_MB = 1024
WORKER = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from moto import mock_aws
size = {size}
with mock_aws():
    import boto3
    from fanout.records import MemoryRecords
    from fanout.runtime.expand import ExpandInput, expand
    from fanout.settings import ExpandEnv
    context = json.load(open({config!r}))["context"]["fanout"]
    context["limits"]["max_items_per_run"] = size * size
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="manifests")
    env = ExpandEnv.model_validate({{"fanout_table": "t", "fanout_bucket": "manifests",
        "fanout_jobs": json.dumps(context["jobs"]),
        "fanout_limits": json.dumps(context["limits"])}})
    spec = {{"job": "noop", "params": {{"n": {{"range": {{"start": 0, "stop": size}}}},
             "fail": {{"range": {{"start": 0, "stop": size}}}}}}}}
    started = time.perf_counter()
    out = expand(ExpandInput(spec=spec, run_id="scale-run"), env=env, store=MemoryRecords(),
                 s3=s3)
    seconds = time.perf_counter() - started
    head = s3.head_object(Bucket="manifests", Key=out.manifest_key)
print(json.dumps({{"total": out.total, "seconds": seconds, "manifest_bytes":
    head["ContentLength"], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    / 1024}}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    size = 100 if args.quick else 1000
    code = WORKER.format(repo=str(REPO), size=size, config=str(REPO / "bench" / "cdk.json"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return 1
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result = {"benchmark": "scale", "quick": args.quick, "machine": machine(),
              "command": "bench/scale.py" + (" --quick" if args.quick else ""),
              "expand": {**figures, "items": size * size, "budget_mb": BUDGET_MB},
              "local_run_10000": "not measured (not built in the time available)"}
    result["met"] = {"items": figures["total"] == size * size,
                     "within_budget": figures["peak_rss_mb"] <= BUDGET_MB}
    print(json.dumps(result["expand"]))
    write_out("scale", result)
    return 0 if all(result["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
