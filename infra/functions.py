"""The functions of the control plane, each with its own role, log group and env."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from fanout import metrics_names
from fanout.settings import FUNCTIONS
from infra.powertools import ARCHITECTURE, RUNTIME

#: Where the code is packaged from.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: The package modules the handlers import (function-level imports too), and nothing else:
#: the code asset is ``lambdas/`` and these (tests/infra/test_asset.py walks the imports).
LAMBDA_MODULES: tuple[str, ...] = (
    "fanout",
    "fanout.aws", "fanout.aws.clients", "fanout.aws.ecs", "fanout.aws.launch_errors",
    "fanout.aws.logs", "fanout.aws.s3",
    "fanout.aws.stepfunctions",
    "fanout.config", "fanout.cost", "fanout.dashboard_config", "fanout.errors",
    "fanout.job_settings",
    "fanout.metrics_names", "fanout.names", "fanout.outputs",
    "fanout.pipelines", "fanout.pipelines.model", "fanout.pipelines.plan",
    "fanout.pipelines.validate",
    "fanout.policy",
    "fanout.records", "fanout.records.dynamo", "fanout.records.dynamo_gate",
    "fanout.records.gate_store",
    "fanout.records.layout", "fanout.records.model", "fanout.records.pages",
    "fanout.records.pipelines", "fanout.records.store",
    "fanout.records.views", "fanout.records.writes",
    "fanout.runtime", "fanout.runtime.abort", "fanout.runtime.bucket",
    "fanout.runtime.classify", "fanout.runtime.clock", "fanout.runtime.closing",
    "fanout.runtime.context",
    "fanout.runtime.dispatch",
    "fanout.runtime.errors", "fanout.runtime.expand", "fanout.runtime.fanin",
    "fanout.runtime.finalize",
    "fanout.runtime.gate", "fanout.runtime.launch", "fanout.runtime.leftovers",
    "fanout.runtime.notify", "fanout.runtime.packing",
    "fanout.runtime.observe", "fanout.runtime.pipeline", "fanout.runtime.reconcile",
    "fanout.runtime.record",
    "fanout.runtime.rerun", "fanout.runtime.settle", "fanout.runtime.slots",
    "fanout.runtime.step_ended",
    "fanout.runtime.webhooks",
    "fanout.schedule_expressions", "fanout.schema", "fanout.settings",
    "fanout.spec", "fanout.spec.axes", "fanout.spec.items_from", "fanout.spec.matrix",
    "fanout.spec.model", "fanout.spec.packing", "fanout.spec.plan", "fanout.spec.templates",
    "fanout.spec.validate",
)


def asset_patterns(modules: tuple[str, ...] = LAMBDA_MODULES) -> list[str]:
    """Exclude everything, then let back in ``lambdas/*.py`` and each module's file (and
    the folders on its way: an excluded folder is not entered)."""
    folders: set[str] = set()
    files: list[str] = []
    for module in modules:
        path = module.replace(".", "/")
        if (REPO_ROOT / path).is_dir():
            folders.add(path)
            files.append(f"{path}/__init__.py")
        else:
            folders.add(path.rpartition("/")[0])
            files.append(f"{path}.py")
    return ["*", ".*", "!lambdas", "!lambdas/*.py",
            *(f"!{f}" for f in sorted(folders)), *(f"!{f}" for f in files),
            "**/__pycache__", "**/*.pyc"]


ASSET_EXCLUDES = asset_patterns()
#: Lambda allows this many bytes of environment (names and values) per function.
ENV_LIMIT_BYTES = 4096
#: How long a deploy-time token (an ARN, a name) is assumed to be when sizing the env.
TOKEN_ESTIMATE = 128

NAMES = tuple(f.name for f in FUNCTIONS)
#: Memory (MiB) and timeout (s) per function (:data:`fanout.settings.FUNCTIONS`).
SIZES: dict[str, tuple[int, int]] = {f.name: (f.memory_mb, f.timeout_seconds) for f in FUNCTIONS}
#: The functions events invoke asynchronously: retried, then dead-lettered.
ASYNCHRONOUS = frozenset(f.name for f in FUNCTIONS if f.asynchronous)


def function_title(name: str) -> str:
    """How a function is named in construct paths and logical ids (``await_step`` ->
    ``AwaitStep``)."""
    return "".join(part.capitalize() for part in name.split("_"))


def dispatcher_name(scope: Construct) -> str:
    """The dispatcher's fixed name: Launch, Reconcile and the dispatcher itself invoke it by
    name, which no reference to the function could give without a dependency cycle."""
    return f"{Stack.of(scope).stack_name}-dispatch"


def abort_name(scope: Construct) -> str:
    """Abort's fixed name: it invokes itself to go on closing a run too large for one
    invocation (docs/decisions/0009), which a reference to itself could not grant."""
    return f"{Stack.of(scope).stack_name}-abort"


class EnvTooLarge(ValueError):
    """A function's environment would exceed Lambda's 4 KB."""


def env_size(env: dict[str, str], scope: Construct) -> int:
    """Bytes of an environment once deployed, each deploy-time token (an ARN, a name)
    counted as :data:`TOKEN_ESTIMATE`."""
    stack = Stack.of(scope)
    return sum(
        len(key.encode()) + _resolved_size(stack.resolve(value)) for key, value in env.items()
    )


def _resolved_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return len(separator) * max(len(parts) - 1, 0) + sum(_resolved_size(p) for p in parts)
    return TOKEN_ESTIMATE  # a Ref, Fn::GetAtt...


class Functions(Construct):
    """``expand``, ``launch``, ``dispatch``, ``record``, ``finalize``, ``reconcile``, ``abort``,
    and the pipeline loop's ``decide``, ``await_step`` and ``step_ended``.

    Each function gets exactly the variables of its env model (``envs[name]``), its own
    role (log writing only; the stack adds the grants) and its own log group.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        envs: dict[str, dict[str, str]],
        powertools: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays,
        dispatcher_reserved: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        #: The dispatcher's reserved concurrency (config ``launch_gate.reserved_concurrency``);
        #: None reserves none: its lease alone keeps one dispatcher at a time.
        self.dispatcher_reserved = dispatcher_reserved
        missing = set(NAMES) - set(envs)
        if missing:
            raise ValueError(f"no environment for functions: {', '.join(sorted(missing))}")
        code = lambda_.Code.from_asset(str(REPO_ROOT), exclude=ASSET_EXCLUDES)
        self.layer = powertools
        #: Events that Record (or Abort, Reconcile) could not take after their retries.
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.roles: dict[str, iam.Role] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.functions: dict[str, lambda_.Function] = {}
        for name in NAMES:
            self.functions[name] = self._function(name, envs[name], code, log_retention)

    def _function(
        self,
        name: str,
        variables: dict[str, str],
        code: lambda_.Code,
        log_retention: logs.RetentionDays,
    ) -> lambda_.Function:
        title = function_title(name)
        env = {
            **variables,
            "POWERTOOLS_SERVICE_NAME": metrics_names.SERVICE,
            "POWERTOOLS_METRICS_NAMESPACE": metrics_names.NAMESPACE,
        }
        size = env_size(env, self)
        if size > ENV_LIMIT_BYTES:
            largest = max(variables, key=lambda k: env_size({k: variables[k]}, self))
            raise EnvTooLarge(
                f"the {name} function's environment would be about {size} bytes, over "
                f"Lambda's {ENV_LIMIT_BYTES}; the largest variable is {largest} "
                f"(fewer or smaller jobs in fanout.jobs)"
            )
        log_group = logs.LogGroup(
            self, f"{title}Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self,
            f"{title}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"fanout {name} function",
        )
        log_group.grant_write(role)
        memory, timeout = SIZES[name]
        # Record takes every STOPPED event: retried, then parked in the dead-letter queue.
        dead_letter = self.dead_letters if name in ASYNCHRONOUS else None
        function = lambda_.Function(
            self,
            title,
            description=f"fanout {name}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"lambdas.{name}.handler",
            code=code,
            layers=[self.layer],
            memory_size=memory,
            timeout=Duration.seconds(timeout),
            environment=env,
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            dead_letter_queue=dead_letter,
            retry_attempts=2 if dead_letter is not None else None,
            # One dispatcher at a time is the lease's work (fanout.records.dynamo_gate); reserving
            # concurrency for it is opt-in: a new account has none to reserve.
            function_name={"dispatch": dispatcher_name(self),
                           "abort": abort_name(self)}.get(name),
            reserved_concurrent_executions=self.dispatcher_reserved if name == "dispatch"
            else None,
        )
        self.roles[name] = role
        self.log_groups[name] = log_group
        return function
