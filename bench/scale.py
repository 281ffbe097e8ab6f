"""Scale: a 5,000-item run through the local mode, and Expand on a 1,000,000-item matrix.

Each runs in its own process, so each peak RSS (``ru_maxrss``) is its own:

- the local run: the whole control plane (synthesized state machine on moto, handlers in
  process, one process per task) over a matrix of no-op items, to the end: time, peak
  memory, that every item ended SUCCEEDED with one task, and the largest state payload
  and execution history it reached, beside Step Functions' limits (the local mode's
  limits enforcement keeps these maxima);
- Expand: the real Expand runtime writes the manifest to moto's S3 with the multipart
  upload, the run record to the in-memory records store: time and peak memory against a
  1,024 MB Lambda's budget;
- Expand on a 1,000,000-row ``items_from`` object, JSON Lines and CSV, each streamed from
  S3: time and peak memory against 512 MB. S3 stands outside the process here (the object
  read from disk in chunks, the manifest's parts counted and dropped), as it stands
  outside a Lambda: the figure is Expand's own.

    .venv/bin/python bench/scale.py [--quick]   # --quick: 200 items locally, 10,000 expanded
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from _local import REPO, machine, write_out

BUDGET_MB = 1024
#: What Expand may peak at on a 1,000,000-row items_from object (issue 12).
ITEMS_FROM_BUDGET_MB = 512
WORKER = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from moto import mock_aws
size = {size}
with mock_aws():
    import boto3
    from fanout.testing.records import MemoryRecords
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


ITEMS_WORKER = """
import json, os, resource, sys, tempfile, time
sys.path.insert(0, {repo!r})
from fanout.testing.records import MemoryRecords
from fanout.runtime.expand import ExpandInput, expand
from fanout.settings import ExpandEnv

class S3Outside:
    # S3 is a service, not the function's memory: the object is read from disk in the
    # chunks asked for, the manifest's parts are counted and dropped.
    def __init__(self, path):
        self.path, self.manifest_bytes, self.parts = path, 0, 0
    def get_object(self, Bucket, Key):
        return {{"Body": open(self.path, "rb")}}
    def create_multipart_upload(self, **kwargs):
        return {{"UploadId": "u"}}
    def upload_part(self, Body, PartNumber, **kwargs):
        self.manifest_bytes += len(Body)
        self.parts += 1
        return {{"ETag": str(PartNumber)}}
    def complete_multipart_upload(self, **kwargs):
        return {{}}
    def abort_multipart_upload(self, **kwargs):
        return {{}}

rows, fmt = {rows}, {fmt!r}
context = json.load(open({config!r}))["context"]["fanout"]
context["limits"]["max_items_per_run"] = rows
with tempfile.NamedTemporaryFile("w", suffix="." + fmt, delete=False) as out:
    if fmt == "csv":
        out.write("n,fail\\n")
        out.writelines(f"{{n}},0\\n" for n in range(rows))
    else:
        out.writelines(f'{{{{"n": {{n}}, "fail": 0}}}}\\n' for n in range(rows))
size = os.path.getsize(out.name)
s3 = S3Outside(out.name)
env = ExpandEnv.model_validate({{"fanout_table": "t", "fanout_bucket": "manifests",
    "fanout_jobs": json.dumps(context["jobs"]),
    "fanout_limits": json.dumps(context["limits"])}})
spec = {{"job": "noop", "items_from": "s3://manifests/inputs/items." + fmt}}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
result = expand(ExpandInput(spec=spec, run_id="scale-run"), env=env, store=MemoryRecords(),
                s3=s3)
seconds = time.perf_counter() - started
os.unlink(out.name)
print(json.dumps({{"format": fmt, "total": result.total, "seconds": seconds,
    "object_bytes": size, "manifest_bytes": s3.manifest_bytes,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "peak_rss_before_expand_mb": before}}))
"""


LOCAL_WORKER = """
import json, resource, sys
sys.path.insert(0, {bench!r})
from _local import measured_run
from fanout.local.moto.limits import MAXIMA
spec = {{"job": "noop", "params": {{"n": {{"range": {{"start": 0, "stop": {items}}}}},
                                   "fail": [0]}},
         "max_concurrency": {concurrency}}}
figures = measured_run(spec, history=False, settle_seconds=600)
summary = figures["summary"]
tasks = sorted(len(i["tasks"]) for i in summary["items"])
print(json.dumps({{"items": summary["total"], "status": summary["status"],
    "succeeded": summary["succeeded"], "seconds": figures["elapsed_seconds"],
    "most_tasks_per_item": tasks[-1] if tasks else 0, "launches": figures["launches"],
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "limits": MAXIMA.snapshot()}}))
"""


def _worker(code: str) -> dict[str, Any] | None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, cwd=REPO / "bench")
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return None
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    size = 100 if args.quick else 1000
    local_items, concurrency = (200, 50) if args.quick else (5_000, 100)
    print(f"scale: {local_items} items through the local mode at concurrency {concurrency}",
          flush=True)
    local = _worker(LOCAL_WORKER.format(bench=str(REPO / "bench"), items=local_items,
                                        concurrency=concurrency))
    if local is not None:
        print(json.dumps(local), flush=True)
    print(f"scale: Expand on a {size * size:,}-item matrix", flush=True)
    figures = _worker(WORKER.format(repo=str(REPO), size=size,
                                    config=str(REPO / "bench" / "cdk.json")))
    rows = 10_000 if args.quick else 1_000_000
    streamed = []
    for fmt in ("jsonl", "csv"):
        print(f"scale: Expand on a {rows:,}-row items_from object ({fmt})", flush=True)
        read = _worker(ITEMS_WORKER.format(repo=str(REPO), rows=rows, fmt=fmt,
                                           config=str(REPO / "bench" / "cdk.json")))
        if read is not None:
            print(json.dumps(read), flush=True)
            streamed.append(read)
    if figures is None or local is None or len(streamed) != 2:
        return 1
    result = {"benchmark": "scale", "quick": args.quick, "machine": machine(),
              "command": "bench/scale.py" + (" --quick" if args.quick else ""),
              "local_run": {**local, "concurrency": concurrency},
              "expand": {**figures, "items": size * size, "budget_mb": BUDGET_MB},
              "items_from": {"rows": rows, "budget_mb": ITEMS_FROM_BUDGET_MB,
                             "formats": streamed}}
    result["met"] = {
        "local_run_complete": local["status"] == "SUCCEEDED"
        and local["succeeded"] == local_items and local["most_tasks_per_item"] == 1,
        "local_run_within_step_functions_limits":
        local["limits"]["payload_bytes"] <= local["limits"]["payload_limit_bytes"]
        and local["limits"]["history_events"] < local["limits"]["history_limit_events"],
        "expand_items": figures["total"] == size * size,
        "expand_within_budget": figures["peak_rss_mb"] <= BUDGET_MB,
        "items_from_streamed": all(f["total"] == rows
                                   and f["peak_rss_mb"] <= ITEMS_FROM_BUDGET_MB
                                   for f in streamed),
    }
    print(json.dumps(result["expand"]))
    write_out("scale", result)
    return 0 if all(result["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
