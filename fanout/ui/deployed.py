"""The dashboard as the stack deploys it: its settings from the function's environment, the
stack's runs read as ``fanout ui --stack`` reads them, the app behind sign-in.

:func:`app_from_env` builds it once per Lambda container (lambdas/dashboard/handler.py);
tests build it with a local JWKS and a fake token endpoint.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from fanout.names import new_run_id, output_id
from fanout.records.views import RunView
from fanout.runs.stack import StackRuns, start_execution
from fanout.settings import FunctionEnv
from fanout.ui.cached import Cached
from fanout.ui.signin import Provider, SessionGuard, SigninMiddleware, host_of
from fanout.ui.tokens import Verifier

#: The deployment's config, next to the handler in the code asset (cdk.json's shape).
CONFIG_FILE = "dashboard.json"


class DashboardEnv(FunctionEnv):
    """What the stack gives the dashboard's function (infra/dashboard.py sets these)."""

    fanout_stack_name: str
    fanout_table: str
    fanout_state_machine_arn: str
    #: The pipeline state machine ("" before pipelines were deployed: none listed).
    fanout_pipeline_state_machine_arn: str = ""
    #: Job -> the log group of its tasks.
    fanout_job_log_groups: dict[str, str] = Field(default_factory=dict)
    dashboard_url: str
    dashboard_issuer: str
    dashboard_client_id: str
    dashboard_auth_url: str
    aws_region: str = "us-east-1"

    @field_validator("fanout_job_log_groups", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class DeployedStack:
    """The stack the function belongs to (:class:`fanout.runs.stack.Stack`), from its env."""

    def __init__(self, env: DashboardEnv, session: Any = None) -> None:
        self.stack = env.fanout_stack_name
        self.region = env.aws_region
        self.table = env.fanout_table
        self.outputs = {"StateMachineArn": env.fanout_state_machine_arn,
                        "RecordsTable": env.fanout_table,
                        **({"PipelineStateMachineArn": env.fanout_pipeline_state_machine_arn}
                           if env.fanout_pipeline_state_machine_arn else {}),
                        **{f"Logs{output_id(job)}": group
                           for job, group in env.fanout_job_log_groups.items()}}
        self._session = session
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                if self._session is None:
                    import boto3

                    self._session = boto3.Session(region_name=self.region)
                self._clients[service] = self._session.client(service, region_name=self.region)
            return self._clients[service]

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise KeyError(f"the dashboard was not given {key}")
        return self.outputs[key]

    def records(self) -> Any:
        from fanout.records.dynamo import DynamoRecords

        return DynamoRecords(self.table, self.client("dynamodb"))


class DeployedRuns(StackRuns):
    """A stack's runs for the dashboard: started from the start page, and a finished run's
    view (whose cost reads every attempt) computed once per container."""

    def __init__(self, stack: Any, config_path: Path, **kwargs: Any) -> None:
        super().__init__(stack, **kwargs)
        self.config_path = config_path
        self._views: dict[str, tuple[tuple[str, str | None], RunView]] = {}
        self._lock = threading.Lock()

    def get_run(self, run_id: str) -> RunView | None:
        run = self.record(run_id)
        if run is None:
            return None
        key = (run.status, run.finished_at)
        with self._lock:
            cached = self._views.get(run_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        view = self.view(run)
        if run.status not in ("RUNNING", "PENDING"):
            with self._lock:
                if len(self._views) >= 256:
                    self._views.pop(next(iter(self._views)))
                self._views[run_id] = (key, view)
        return view

    def start(self, spec: dict[str, Any]) -> str:
        """Start a run of ``spec`` (validated against the deployed jobs first); its id."""
        from fanout.config import load_config_file
        from fanout.spec.validate import parse_spec

        parse_spec(spec, load_config_file(self.config_path))  # bad: FanoutInputError, 400
        run_id = new_run_id(str(spec["job"]))
        start_execution(self.stack, run_id, {**spec, "trigger": "console"})
        return run_id


def app_from_env(env: DashboardEnv | None = None, *, task_root: Path | None = None,
                 session: Any = None, fetch: Callable[[str], bytes] | None = None,
                 post: Callable[[str, bytes], bytes] | None = None) -> SigninMiddleware:
    """The deployed dashboard: the app over the stack's runs, behind sign-in."""
    import os

    from fanout.cost import TaskSize
    from fanout.ui.app import create_app

    env = env or DashboardEnv.from_env()
    root = task_root or Path(os.environ.get("LAMBDA_TASK_ROOT", "."))
    config_path = root / CONFIG_FILE
    prices: dict[str, Any] = {}
    sizes: dict[str, TaskSize] = {}
    if config_path.is_file():
        from fanout.config import load_config_file

        config = load_config_file(config_path)
        prices = config.cost.prices
        sizes = {name: TaskSize(job.cpu, job.memory, job.architecture)
                 for name, job in config.jobs.items()}
    stack = DeployedStack(env, session)
    runs = DeployedRuns(stack, config_path, prices=prices, sizes=sizes)
    pipelines = None
    if env.fanout_pipeline_state_machine_arn:
        from fanout.runs.stack_pipelines import StackPipelineRuns

        pipelines = StackPipelineRuns(stack)
    guard = SessionGuard(host=host_of(env.dashboard_url), port=443)
    app = create_app(Cached(runs, config_path, pipelines=pipelines), guard, config_path)
    provider = Provider(issuer=env.dashboard_issuer, client_id=env.dashboard_client_id,
                        auth_url=env.dashboard_auth_url.rstrip("/"),
                        base_url=env.dashboard_url.rstrip("/"))
    verifier = Verifier(provider.issuer, provider.client_id, provider.jwks_url)
    if fetch is not None:
        verifier.fetch = fetch
    if post is not None:
        return SigninMiddleware(app, guard, provider, verifier, post)
    return SigninMiddleware(app, guard, provider, verifier)
