"""Cold start of each Lambda handler, against a bare handler making the same AWS calls.

Lambda bills INIT since 2025, so what counts is import plus the first invocation: the
lazy imports of the first call (Powertools' decorators, the pydantic models, the logic)
and its boto3 clients and calls. Per handler, in fresh interpreters (timed inside, so the
interpreter's own start-up is left out), with AWS answered locally by moto's server:

- ``import``: ``import lambdas.<name>`` (the init phase);
- ``first call``: that import plus the handler's first invocation on a real event;
- the bare handler: ``import boto3``, then the same clients and the very same calls
  (recorded from a fanout invocation: service, operation, parameters), nothing else.

Each figure is the median of several runs. Target: fanout's import + first call at most
1.5x the bare handler's. Both run in Lambda's environment as far as it matters here:
``LAMBDA_TASK_ROOT`` is set (the X-Ray SDK then takes Lambda's sampling decision instead
of building an X-Ray client for central sampling, as it does outside Lambda) and tracing
is on (a trace header is set; the X-Ray daemon is not there, so segments go nowhere).
Launch wakes the dispatcher through moto's Lambda (its simple, docker-free backend).
Writes bench/out/coldstart.json.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from fanout.settings import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = [f.name for f in FUNCTIONS]
TARGET = 1.5
REGION, ACCOUNT = "us-east-1", "123456789012"
TABLE, BUCKET, CLUSTER, CONTAINER = "fanout-records", "fanout-manifests", "fanout-cluster", "main"
DISPATCHER = "fanout-dispatch"
JOBS = {"analyzer": {"cpu": 256, "memory": 512, "command": ["-y", "{year}"],
                     "defaults": {"max_concurrency": 5}}}
SPEC = {"job": "analyzer", "params": {"year": {"range": {"start": 1999, "stop": 2020}}}}
SEED = "cold-seed"

#: Runs in a fresh interpreter: the fanout handler, timed; optionally its AWS calls recorded.
_FANOUT = r"""
import json, os, sys, time

def plain(value):
    if isinstance(value, bytes):
        return {"__bytes__": __import__("base64").b64encode(value).decode()}
    if hasattr(value, "getvalue"):
        return plain(value.getvalue())
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


t0 = time.perf_counter()
calls = []
if os.environ.get("COLD_RECORD"):
    import boto3
    from botocore import xform_name

    def keep(params, model, **_):
        calls.append([model.service_model.service_name, xform_name(model.name), plain(params)])

    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("provide-client-params", keep)
import importlib
module = importlib.import_module("lambdas." + os.environ["COLD_HANDLER"])
t1 = time.perf_counter()

class Context:
    function_name = "fanout-" + os.environ["COLD_HANDLER"]
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    aws_request_id = "cold-start"
    def get_remaining_time_in_millis(self):
        return 30000

error = None
try:
    module.handler(json.loads(os.environ["COLD_EVENT"]), Context())
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
t2 = time.perf_counter()

print("COLDSTART " + json.dumps({"import_ms": (t1 - t0) * 1000, "first_ms": (t2 - t0) * 1000,
                                 "error": error, "calls": calls}), file=sys.stderr)
"""

#: The bare handler: boto3, the same clients, the same calls; nothing of fanout.
_BARE = r"""
import json, os, sys, time, base64
calls = json.loads(os.environ["COLD_CALLS"])

def real(value):
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: real(v) for k, v in value.items()}
    if isinstance(value, list):
        return [real(v) for v in value]
    return value

calls = [(s, o, real(p)) for s, o, p in calls]
t0 = time.perf_counter()
import boto3
t1 = time.perf_counter()
clients = {}
upload = {}
for service, operation, params in calls:
    if service not in clients:
        clients[service] = boto3.client(service)
    if "UploadId" in params and upload:
        params = {**params, "UploadId": upload["UploadId"]}  # this replay's own upload
    try:
        answer = getattr(clients[service], operation)(**params)
    except Exception:
        continue  # a replayed conditional write may lose: the call was still made and answered
    if operation == "create_multipart_upload":
        upload = answer
t2 = time.perf_counter()
print("COLDSTART " + json.dumps({"import_ms": (t1 - t0) * 1000, "first_ms": (t2 - t0) * 1000}),
      file=sys.stderr)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child(code: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    for line in done.stderr.splitlines():
        if line.startswith("COLDSTART "):
            result: dict[str, Any] = json.loads(line.removeprefix("COLDSTART "))
            return result
    raise RuntimeError(f"no figures from the child:\n{done.stderr[-2000:]}")


def _client(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION, endpoint_url=endpoint,  # type: ignore[call-overload]
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _world(endpoint: str) -> dict[str, str]:
    """Table, bucket, cluster, network and topic on moto's server; the functions' env."""

    from fanout.schema import INDEXES, PARTITION_KEY, PROJECTIONS, SORT_KEY

    ddb, s3, ecs, ec2, sns = (_client(endpoint, s) for s in ("dynamodb", "s3", "ecs", "ec2", "sns"))
    attributes = {PARTITION_KEY, SORT_KEY} | {k for pair in INDEXES.values() for k in pair}
    ddb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
                   {"AttributeName": SORT_KEY, "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {"IndexName": name, "Projection": {"ProjectionType": PROJECTIONS[name]},
             "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"},
                           {"AttributeName": sk, "KeyType": "RANGE"}]}
            for name, (pk, sk) in INDEXES.items()])
    s3.create_bucket(Bucket=BUCKET)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto's ENIs need it
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="tasks", Description="tasks",
                                      VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName=CLUSTER, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    task_def = ecs.register_task_definition(
        family="fanout-analyzer", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512",
        containerDefinitions=[{"name": CONTAINER, "image": "analyzer:latest", "memory": 512,
                               "essential": True}])["taskDefinition"]["taskDefinitionArn"]
    topic = sns.create_topic(Name="fanout-runs")["TopicArn"]
    _dispatcher(endpoint)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "0",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": "fanout-cold", "LAMBDA_TASK_ROOT": str(ROOT),
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
                            "Sampled=1",
        "POWERTOOLS_SERVICE_NAME": "fanout", "POWERTOOLS_METRICS_NAMESPACE": "Fanout",
        "FANOUT_TABLE": TABLE, "FANOUT_BUCKET": BUCKET, "FANOUT_CLUSTER": CLUSTER,
        "FANOUT_JOBS": json.dumps(JOBS), "FANOUT_LIMITS": json.dumps({"max_items_per_run": 1000}),
        "FANOUT_TASK_DEFINITIONS": json.dumps(
            {"analyzer": {"task_definition": task_def, "container": CONTAINER}}),
        "FANOUT_SUBNETS": subnet, "FANOUT_SECURITY_GROUPS": group, "FANOUT_TOPIC_ARN": topic,
        "FANOUT_DISPATCHER": DISPATCHER, "FANOUT_OUTPUTS": f"s3://{BUCKET}",
    }


def _dispatcher(endpoint: str) -> None:
    """A function named as the dispatcher on moto's server, which answers invocations
    without running anything: Launch's wake-up is a real call, the dispatcher is measured
    on its own."""
    import io
    import urllib.request
    import zipfile

    config = json.dumps({"lambda": {"use_docker": False}}).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"{endpoint}/moto-api/config", data=config, method="POST"))
    role = _client(endpoint, "iam").create_role(
        RoleName="dispatch", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {}\n")
    _client(endpoint, "lambda").create_function(
        FunctionName=DISPATCHER, Runtime="python3.12", Role=role, Handler="index.handler",
        Code={"ZipFile": code.getvalue()})


def _expand_event(run_id: str) -> dict[str, Any]:
    return {"spec": SPEC, "run_id": run_id, "start_time": "2026-11-20T10:00:00Z",
            "execution_arn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:FanoutRun:{run_id}"}


def _events(name: str, n: int, env: dict[str, str]) -> list[dict[str, Any]]:
    """``n`` first-invocation events for ``name``, each on its own run or item."""
    if name == "expand":
        return [_expand_event(f"cold-expand-{i}") for i in range(n)]
    if name == "launch":
        items = _manifest(env, SEED)
        return [{"token": f"token-{i}", "run_id": SEED, "item": items[i]} for i in range(n)]
    if name == "dispatch":
        return [{} for _ in range(n)]
    if name == "record":
        return [_stopped(env, i) for i in range(n)]
    if name == "finalize":
        return [{"run_id": f"cold-finalize-{i}", "outcome": {}} for i in range(n)]
    if name == "reconcile":
        return [{"version": "0", "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": ACCOUNT, "region": REGION, "resources": [], "detail": {}}] * n
    events = []
    loaded = json.loads((ROOT / "tests" / "events" / "execution-aborted.json").read_text())
    for i in range(n):
        run_id = f"cold-abort-{i}"
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:FanoutRun:{run_id}"
        events.append({**loaded, "resources": [arn],
                       "detail": {**loaded["detail"], "executionArn": arn, "name": run_id}})
    return events


def _queue_one(env: dict[str, str], index: int) -> None:
    items = _manifest(env, SEED)
    if index >= len(items):
        raise RuntimeError(f"the seed run has {len(items)} items: fewer repeats, please")
    event = {"token": f"token-q{index}", "run_id": SEED, "item": items[index]}
    got = _child(_FANOUT, {**env, "COLD_HANDLER": "launch", "COLD_EVENT": json.dumps(event)})
    if got["error"]:
        raise RuntimeError(f"queueing item {index}: {got['error']}")


def _manifest(env: dict[str, str], run_id: str) -> list[dict[str, Any]]:

    from fanout.aws.s3 import manifest_items

    s3 = _client(env["AWS_ENDPOINT_URL"], "s3")
    return list(manifest_items(s3, BUCKET, run_id))


def _stopped(env: dict[str, str], index: int) -> dict[str, Any]:
    """A recorded "task stopped" event, aimed at the task Launch started for ``index``."""

    from fanout.records.dynamo import DynamoRecords

    ddb = _client(env["AWS_ENDPOINT_URL"], "dynamodb")
    attempt = DynamoRecords(TABLE, ddb).get_attempt(SEED, index, 1)
    arn = attempt.task_arn if attempt and attempt.task_arn else f"arn:aws:ecs:task/{index}"
    event: dict[str, Any] = json.loads(
        (ROOT / "tests" / "events" / "task-stopped-success.json").read_text())
    detail = event["detail"]
    detail["taskArn"], event["resources"] = arn, [arn]
    for container in detail["containers"]:
        container["taskArn"] = arn
    detail["overrides"]["containerOverrides"][0]["environment"] = [
        {"name": "FANOUT_RUN_ID", "value": SEED},
        {"name": "FANOUT_ITEM_INDEX", "value": str(index)},
        {"name": "FANOUT_ATTEMPT", "value": "1"}]
    return event


def _seed(env: dict[str, str], repeats: int) -> None:
    """The runs the other handlers' first calls act on, made by Expand itself."""
    runs = [SEED, *(f"cold-finalize-{i}" for i in range(repeats + 1)),
            *(f"cold-abort-{i}" for i in range(repeats + 1))]
    for run_id in runs:
        got = _child(_FANOUT, {**env, "COLD_HANDLER": "expand",
                               "COLD_EVENT": json.dumps(_expand_event(run_id))})
        if got["error"]:
            raise RuntimeError(f"seeding {run_id}: {got['error']}")


def measure(name: str, env: dict[str, str], repeats: int) -> dict[str, Any]:
    events = _events(name, repeats + 1, env)
    queued = iter(range(repeats + 1, 2 * repeats + 2))

    def first_call(event: dict[str, Any], **extra: str) -> dict[str, Any]:
        if name == "dispatch":  # one attempt waits in the launch queue (an untimed Launch)
            _queue_one(env, next(queued))
        return _child(_FANOUT, {**env, "COLD_HANDLER": name, "COLD_EVENT": json.dumps(event),
                                **extra})

    # The calls of one first invocation, recorded (that run is not timed).
    recorded = first_call(events[-1], COLD_RECORD="1")
    if recorded["error"]:
        raise RuntimeError(f"{name}: {recorded['error']}")
    fanout = [first_call(e) for e in events[:repeats]]
    errors = [f["error"] for f in fanout if f["error"]]
    if errors:
        raise RuntimeError(f"{name}: {errors[0]}")
    bare = [_child(_BARE, {**env, "COLD_CALLS": json.dumps(recorded["calls"])})
            for _ in range(repeats)]
    median = {key: statistics.median(run[key] for run in runs)
              for key, runs in (("import_ms", fanout), ("first_ms", fanout))}
    bare_first = statistics.median(run["first_ms"] for run in bare)
    bare_import = statistics.median(run["import_ms"] for run in bare)
    ratio = median["first_ms"] / bare_first
    return {"import_ms": round(median["import_ms"], 1),
            "first_call_ms": round(median["first_ms"], 1),
            "bare_import_ms": round(bare_import, 1), "bare_first_call_ms": round(bare_first, 1),
            "import_ratio": round(median["import_ms"] / bare_import, 2),
            "first_call_ratio": round(ratio, 2), "calls": len(recorded["calls"]),
            "operations": sorted({f"{s}.{o}" for s, o, _ in recorded["calls"]}),
            "within_target": ratio <= TARGET}


def _machine() -> dict[str, object]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _local import machine

    return machine()


def main(repeats: int = 5) -> dict[str, Any]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        env = _world(f"http://127.0.0.1:{port}")
        _seed(env, repeats)
        handlers: dict[str, dict[str, Any]] = {}
        print(f"{'handler':<10} {'import':>8} {'+first call':>12} {'bare boto3':>11} "
              f"{'+same calls':>12} {'ratio':>6}  (ms, median of {repeats})")
        for name in HANDLERS:
            h = handlers[name] = measure(name, env, repeats)
            print(f"{name:<10} {h['import_ms']:8.1f} {h['first_call_ms']:12.1f} "
                  f"{h['bare_import_ms']:11.1f} {h['bare_first_call_ms']:12.1f} "
                  f"{h['first_call_ratio']:6.2f}")
    finally:
        server.stop()
    results = {"repeats": repeats, "python": sys.version.split()[0], "target_ratio": TARGET,
               "handlers": handlers, "machine": _machine()}
    out = Path(os.environ.get("FANOUT_BENCH_OUT", ROOT / "bench" / "out"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "coldstart.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    quick = "--quick" in sys.argv[1:]
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    result = main(int(numbers[0]) if numbers else 2 if quick else 5)
    sys.exit(0 if all(h["within_target"] for h in result["handlers"].values()) else 1)
