"""The ``fanout start`` command and what every command on a deployed stack shares.

The stack is found by name (``--stack``, default the config's ``stack_name``) through its
CloudFormation outputs; credentials, ``--region`` and ``AWS_ENDPOINT_URL`` are boto3's.
Records are read with :class:`fanout.records.DynamoRecords`, the store the Lambdas write.
Bad input (unknown stack, run, item; a bad spec) exits 2 with one line naming it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout.errors import Problem, UsageError

if TYPE_CHECKING:
    from fanout.records import DynamoRecords, RunRecord

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
ITEM_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
POLL_SECONDS = 2.0


def console_url(execution_arn: str) -> str:
    """The execution's page in the Step Functions console ("" when not known)."""
    if not execution_arn or execution_arn.count(":") < 6:
        return ""
    region = execution_arn.split(":")[3]
    return (f"https://{region}.console.aws.amazon.com/states/home?region={region}"
            f"#/v2/executions/details/{execution_arn}")


def output_id(job: str) -> str:
    """A job name as CloudFormation output ids spell it (as infra/stack.py does)."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", job))


# --- the deployed stack --------------------------------------------------------------------


@dataclass
class Deployment:
    stack: str
    region: str
    outputs: dict[str, str]
    session: Any

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.region)

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise UsageError([Problem("--stack", f"stack {self.stack} has no output {key} "
                                                 "(deployed by an older fanout?)")])
        return self.outputs[key]

    def records(self) -> DynamoRecords:
        from fanout.records import DynamoRecords

        return DynamoRecords(self.output("RecordsTable"), self.client("dynamodb"))


def stack_name(args: argparse.Namespace) -> str:
    if args.stack:
        return str(args.stack)
    if not Path(args.config).exists():
        raise UsageError([Problem("--stack", f"give --stack, or a config ({args.config} "
                                             "is not there)")])
    from fanout.config import load_config_file

    return load_config_file(args.config).stack_name


def deployment(args: argparse.Namespace) -> Deployment:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    name = stack_name(args)
    session = boto3.Session(region_name=args.region) if args.region else boto3.Session()
    region = session.region_name
    if not region:
        raise UsageError([Problem("--region", "no AWS region: give --region or set "
                                              "AWS_REGION / AWS_DEFAULT_REGION")])
    try:
        got = session.client("cloudformation", region_name=region).describe_stacks(
            StackName=name)
    except NoCredentialsError:
        raise UsageError([Problem("credentials", "no AWS credentials found (the standard "
                                                 "chain: env, profile, SSO, role)")]) from None
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if "does not exist" in message:
            raise UsageError([Problem("--stack", f"no stack {name!r} in {region}")]) from None
        raise UsageError([Problem("--stack", f"cannot read stack {name!r}: {message}")]) \
            from None
    except BotoCoreError as exc:
        raise UsageError([Problem("--stack", f"cannot reach AWS: {exc}")]) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in got["Stacks"][0].get("Outputs", [])}
    return Deployment(name, region, outputs, session)


def get_run(deploy: Deployment, run_id: str) -> RunRecord:
    run = deploy.records().get_run(run_id)
    if run is None:
        raise UsageError([Problem("RUN", f"no run {run_id!r} in stack {deploy.stack}")])
    return run


# --- showing ------------------------------------------------------------------------------


def run_dict(run: RunRecord) -> dict[str, Any]:
    return {"run_id": run.run_id, "job": run.job, "status": run.status,
            "trigger": run.trigger, "started_at": run.started_at,
            "finished_at": run.finished_at, "logical_time": run.logical_time,
            "parent_run": run.parent_run, **run.totals(), "summary": run.summary,
            "execution_arn": run.execution_arn, "console_url": console_url(run.execution_arn)}


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    return "\n".join(lines)


def summary_table(run: RunRecord) -> str:
    totals = run.totals()
    rows = [[k, str(v)] for k, v in totals.items()]
    head = (f"run {run.run_id}  job {run.job}  {run.status}  trigger {run.trigger}"
            + (f"  rerun of {run.parent_run}" if run.parent_run else ""))
    lines = [head, f"started {run.started_at}" + (f"  finished {run.finished_at}"
                                                  if run.finished_at else ""),
             table(rows, ["items", "count"])]
    if run.summary:
        lines.append(run.summary)
    link = console_url(run.execution_arn)
    if link:
        lines.append(f"console: {link}")
    return "\n".join(lines)


def progress_line(run: RunRecord | None, elapsed: float) -> str:
    minutes, seconds = divmod(int(elapsed), 60)
    clock = f"{minutes:02d}:{seconds:02d}"
    if run is None:
        return f"[{'':30}] expanding ... {clock}"
    t = run.totals()
    done = t["total"] - t["pending"] - t["running"]
    width = 30
    filled = int(width * done / t["total"]) if t["total"] else width
    counts = " ".join(f"{k}={v}" for k, v in t.items() if k != "total" and v)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{t['total']} {counts} {clock}"


# --- following a run ----------------------------------------------------------------------


def follow(deploy: Deployment, run_id: str, execution_arn: str, as_json: bool) -> int:
    """Show progress until the run ends; Ctrl-C stops following, never the run."""
    store = deploy.records()
    sfn = deploy.client("stepfunctions")
    began = time.monotonic()
    tty = sys.stderr.isatty()
    run: RunRecord | None = None
    try:
        while True:
            run = store.get_run(run_id)
            if run is not None and run.status != "RUNNING":
                break
            if run is None:
                state = sfn.describe_execution(executionArn=execution_arn)["status"]
                if state != "RUNNING":
                    print(f"fanout: the execution ended {state} before the run was recorded: "
                          f"{console_url(execution_arn)}", file=sys.stderr)
                    return EXIT_RUN_FAILED
            line = progress_line(run, time.monotonic() - began)
            print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr,
                  flush=True)
            time.sleep(POLL_SECONDS)  # a remote run: nothing to await but its record
    except KeyboardInterrupt:
        print(f"\nstopped following; run {run_id} goes on. To stop it:\n"
              f"  fanout stop {run_id}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if tty:
        print(file=sys.stderr)
    if as_json:
        print_json(run_dict(run))
    else:
        print(summary_table(run))
    if run.status == "REJECTED":
        return EXIT_BAD_INPUT
    return EXIT_OK if run.status == "SUCCEEDED" else EXIT_RUN_FAILED


# --- the commands ---------------------------------------------------------------------------


def add_stack_arguments(parser: argparse.ArgumentParser, *, json_flag: bool = True,
                        config: bool = True) -> None:
    from fanout.cli import add_config_argument

    parser.add_argument("--stack", metavar="NAME",
                        help="the deployed stack (default: the config's stack_name)")
    parser.add_argument("--region", metavar="REGION", help="AWS region (default: boto3's)")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON")
    if config:
        add_config_argument(parser)


def start_execution(deploy: Deployment, run_id: str, document: dict[str, Any]) -> str:
    sfn = deploy.client("stepfunctions")
    started = sfn.start_execution(stateMachineArn=deploy.output("StateMachineArn"),
                                  name=run_id, input=json.dumps(document))
    return str(started["executionArn"])


def announce(run_id: str, execution_arn: str, as_json: bool, waiting: bool) -> None:
    if as_json and not waiting:
        print_json({"run_id": run_id, "execution_arn": execution_arn,
                    "console_url": console_url(execution_arn)})
        return
    out = sys.stderr if as_json else sys.stdout
    print(f"started run {run_id}", file=out)
    link = console_url(execution_arn)
    if link:
        print(f"console: {link}", file=out)


def run_start(args: argparse.Namespace) -> int:
    from fanout.cli import new_run_id, spec_document

    document = spec_document(args)
    if isinstance(document, dict) and Path(args.config).exists():
        from fanout.config import load_config_file
        from fanout.spec import parse_spec

        parse_spec(document, load_config_file(args.config))  # bad spec: exit 2, nothing sent
    if not isinstance(document, dict) or not isinstance(document.get("job"), str):
        raise UsageError([Problem("spec", "must be a JSON object naming a job")])
    deploy = deployment(args)
    document = {**document, "trigger": "cli"}
    run_id = args.run_id or new_run_id(document["job"])
    arn = start_execution(deploy, run_id, document)
    announce(run_id, arn, args.json, args.wait)
    return follow(deploy, run_id, arn, args.json) if args.wait else EXIT_OK


def add_commands(subparsers: Any) -> None:
    from fanout.cli import add_spec_arguments

    start = subparsers.add_parser(
        "start", help="start a run on the deployed stack",
        description="Start a run: SPEC (a file, or - for stdin) or --job/--param.")
    add_spec_arguments(start)
    start.add_argument("--run-id", metavar="ID", help="the run id (default: made up)")
    start.add_argument("--wait", action="store_true", help="follow the run to its end")
    add_stack_arguments(start, config=False)  # SPEC's arguments carry --config
    start.set_defaults(func=run_start)
