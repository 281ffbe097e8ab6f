"""The dispatcher's launch rate and CPU per launch, and what memory size sustains 20/s.

The dispatcher (fanout.runtime.dispatch.Dispatcher) drains a queue of N attempts with its real
DynamoDB store and ECS launcher against moto's server, run as a separate process so that
this process's CPU time is the dispatcher's own (boto3 signing and parsing, fanout's
logic). Every AWS call waits 50-100 ms first (a real call's latency, not moto's sub-ms);
the bucket is set high so that the dispatcher, not the bucket, is the limit.

Lambda gives a function CPU in proportion to its memory (1,769 MB = one vCPU), so the
launch rate a memory size sustains is its CPU share / CPU seconds per launch (the wall
rate measured here is bounded by moto's own service time, one RunTask at a time, and is
reported only as a check that every item launched).

    .venv/bin/python bench/dispatcher.py [--quick]     # writes bench/out/dispatcher.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _local import machine, write_out  # noqa: E402  (bench/ is the working directory)

REGION = "us-east-1"
TABLE, CLUSTER, CONTAINER = "bench-records", "bench-cluster", "main"
#: Lambda: one vCPU at 1,769 MB, in proportion below.
MB_PER_VCPU = 1769
SIZES_MB = (256, 512, 832, 1024, 1769)
TARGET_PER_SECOND = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server, endpoint
        except OSError:
            time.sleep(0.1)  # the server process is starting: nothing to await but its port
    server.kill()
    raise SystemExit("moto.server did not start")


class Serial:
    """A boto3 client whose calls wait ``low``-``high`` seconds (a real call's latency,
    overlapping across threads as AWS's would), then reach moto's server one at a time:
    moto's backends are not safe for concurrent calls (they answer 500s)."""

    lock = threading.Lock()

    def __init__(self, client: Any, low: float, high: float) -> None:
        self.client, self.low, self.high = client, low, high

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.client, name)
        if not callable(found) or name.startswith("_") or name in ("get_paginator",):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            time.sleep(random.uniform(self.low, self.high))
            with Serial.lock:
                return found(*args, **kwargs)

        return call


def world(endpoint: str) -> dict[str, str]:
    import boto3

    from fanout.schema import INDEXES, PARTITION_KEY, SORT_KEY

    def client(name: str) -> Any:
        return boto3.client(name, region_name=REGION, endpoint_url=endpoint)

    attributes = {PARTITION_KEY, SORT_KEY} | {k for pair in INDEXES.values() for k in pair}
    client("dynamodb").create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                              for a in sorted(attributes)],
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
                   {"AttributeName": SORT_KEY, "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": n, "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"},
                                               {"AttributeName": sk, "KeyType": "RANGE"}]}
                                for n, (pk, sk) in INDEXES.items()])
    ec2, ecs = client("ec2"), client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/17")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="t", Description="t", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName=CLUSTER, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    definition = ecs.register_task_definition(
        family="bench-noop", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", containerDefinitions=[
            {"name": CONTAINER, "image": "noop", "memory": 512, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    return {"FANOUT_TABLE": TABLE, "FANOUT_CLUSTER": CLUSTER, "FANOUT_SUBNETS": subnet,
            "FANOUT_SECURITY_GROUPS": group, "FANOUT_DISPATCHER": "bench-dispatch",
            "FANOUT_OUTPUTS": "s3://bench-outputs",
            "FANOUT_TASK_DEFINITIONS": json.dumps(
                {"noop": {"task_definition": definition, "container": CONTAINER}}),
            "FANOUT_LAUNCH_GATE": json.dumps({"FARGATE": {"burst": 100_000,
                                                          "per_second": 10_000}})}


def measure(items: int, low: float, high: float) -> dict[str, Any]:
    import boto3

    server, endpoint = start_moto()
    try:
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": REGION})
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.update(world(endpoint))
        from fanout.aws.ecs import EcsLauncher
        from fanout.records.dynamo import DynamoRecords
        from fanout.records.model import RunRecord
        from fanout.runtime.dispatch import Dispatcher
        from fanout.runtime.gate import Gate
        from fanout.runtime.launch import LaunchInput, launch
        from fanout.settings import DispatchEnv
        from fanout.testing.callbacks import MemoryCallbacks

        env = DispatchEnv.from_env()
        store = DynamoRecords(TABLE, boto3.client("dynamodb", region_name=REGION,
                                                  endpoint_url=endpoint))
        gate = Gate(store, env.fanout_dispatcher, invoke=lambda _name: None)
        callbacks = MemoryCallbacks()
        plain = EcsLauncher(CLUSTER, boto3.client("ecs", region_name=REGION,
                                                  endpoint_url=endpoint))
        run_id = "bench-dispatch"
        assert store.create_run(RunRecord(
            run_id=run_id, job="noop", status="RUNNING", started_at="2026-12-01T00:00:00Z",
            total=items, settings={"timeout_seconds": 600, "capacity": "FARGATE"},
            trigger="cli"), spec={"job": "noop"})
        for index in range(items):  # Launch queues every item, as the map's children do
            launch(LaunchInput.model_validate({"token": f"t{index}", "run_id": run_id,
                                               "item": {"index": index}}),
                   store=store, callbacks=callbacks, gate=gate)
        store._client = Serial(store.client, low, high)  # type: ignore[assignment]
        launcher = EcsLauncher(CLUSTER, Serial(plain.client, low, high))  # type: ignore[arg-type]
        cpu0, wall0 = time.process_time(), time.monotonic()
        result = Dispatcher(env=env, store=store, gate=gate, launcher=launcher,
                            callbacks=callbacks).run(600)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    launched = int(result.get("launched", 0))
    per_launch = cpu / launched if launched else float("inf")
    wall_rate = launched / wall if wall else 0.0
    # CPU-bound: moto's own service time (one RunTask at a time) bounds the wall rate here,
    # not the dispatcher; on AWS 16 workers with ~6 calls of 50-100 ms each allow ~35/s.
    sizes = {str(mb): round((mb / MB_PER_VCPU) / per_launch, 1) for mb in SIZES_MB}
    return {"items": items, "latency_ms": [low * 1000, high * 1000], "launched": launched,
            "result": result, "wall_seconds": round(wall, 2),
            "wall_launches_per_second": round(wall_rate, 1),
            "cpu_ms_per_launch": round(per_launch * 1000, 2),
            "sustained_per_second_by_memory_mb": sizes,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "target_per_second": TARGET_PER_SECOND,
            "smallest_memory_for_target_mb": next(
                (mb for mb in SIZES_MB if sizes[str(mb)] >= TARGET_PER_SECOND), None)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int, default=600)
    args = parser.parse_args(argv)
    items = 60 if args.quick else args.items
    figures = measure(items, 0.05, 0.10)
    out = {"machine": machine(), "quick": args.quick, **figures}
    write_out("dispatcher", out)
    print(json.dumps(out, indent=2))
    return 0 if figures["launched"] == items else 1


if __name__ == "__main__":
    raise SystemExit(main())
