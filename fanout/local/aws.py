"""moto in process, with the two places the local mode takes over: Lambda invoke and ECS tasks.

moto's ECS ignores ``clientToken`` and cannot run anything, so the ECS task calls are
answered by :class:`~fanout.local.fargate.EmulatedFargate`; every other ECS call stays
moto's. moto's Lambda (without Docker) only echoes, so ``Invoke`` runs the real handler.
Every patch of moto is in :mod:`fanout.local.moto`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fanout.local.collector import fewer_collections
from fanout.local.fargate import EmulatedFargate
from fanout.local.faults import Dice
from fanout.local.functions import environment
from fanout.local.moto import speedups
from fanout.local.moto.correctness import (
    route_ecs,
    route_lambda,
    serialized_dynamodb,
)
from fanout.local.moto.dynamodb import Contention, cheap_transactions, contention
from fanout.local.moto.sfn_limits import enforce_limits

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account

MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}

#: Set so that no call can reach a real AWS account, whatever the user's shell holds.
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
_CLEARED = ("AWS_PROFILE", "AWS_ENDPOINT_URL")
#: moto's Logs backend is not safe for concurrent writers.
_LOGS_LOCK = threading.Lock()


@contextmanager
def emulated_aws() -> Iterator[None]:
    """moto for every service, credentials that reach nothing real."""
    from moto import mock_aws

    with environment(FAKE_ENV, unset=_CLEARED), \
            mock_aws(config=MOTO_CONFIG):  # type: ignore[call-overload]
        yield


@contextmanager
def take_over(fargate: EmulatedFargate, invoke: Callable[..., bytes],
              dice: Dice | None = None) -> Iterator[list[str]]:
    """Route ECS task calls to ``fargate`` and Lambda invokes to ``invoke`` (inside moto),
    with moto's other fixes, and its speed-ups unless switched off (:mod:`fanout.local.moto`).
    ``dice`` with ``ddb_conflict`` or ``ddb_hot_key``: DynamoDB's contention, emulated.

    Yields the notes of what was left out (the speed-ups, and why).
    """
    restores = [route_lambda(invoke, ACCOUNT, REGION), route_ecs(fargate),
                serialized_dynamodb(),
                # Not a speed-up: moto copies the whole table for every transaction, which
                # makes a run's time grow with the square of its items and its memory by
                # gigabytes (docs/decisions/0007).
                cheap_transactions(),
                # AWS's limits, as AWS applies them (a local green must be a green on AWS);
                # this also carries SendTaskFailure's cause, which moto drops.
                enforce_limits()]
    if dice is not None and (dice.faults.ddb_conflict or dice.faults.ddb_hot_key):
        restores.append(contention(Contention(dice.faults.ddb_conflict,
                                              dice.faults.ddb_hot_key, dice.roll, dice.note)))
    on, why = speedups.enabled()
    notes = [] if on else [f"moto speed-ups off: {why}"]
    if on:  # and the collector's fewer passes over a run's heap (fanout.local.collector)
        restores += [*speedups.apply(), fewer_collections()]
    try:
        yield notes
    finally:
        for restore in reversed(restores):
            restore()


@contextmanager
def handler_clients(invoke: Callable[..., bytes], *, direct: bool) -> Iterator[dict[str, Any]]:
    """The handlers' clients for the run, and the state machine's: moto's service code
    called directly (a speed-up), or boto3's own clients on moto."""
    if direct:
        from fanout.local.direct import direct_clients

        with direct_clients(invoke, account=ACCOUNT, region=REGION) as made:
            yield dict(made)
        return
    import boto3

    from fanout.runtime import context

    context.reset()
    try:
        yield {"stepfunctions": boto3.client("stepfunctions", region_name=REGION)}
    finally:
        context.reset()


def write_logs(group: str, stream: str, events: list[tuple[int, str]]) -> None:
    """Append lines to a log stream of the emulated CloudWatch Logs (made on first use)."""
    from moto.logs.models import logs_backends

    backend = logs_backends[ACCOUNT][REGION]
    with _LOGS_LOCK:
        log_group = backend.groups.get(group)
        if log_group is None:
            backend.create_log_group(group, {})
            log_group = backend.groups[group]
        if stream not in log_group.streams:
            backend.create_log_stream(group, stream)
        backend.put_log_events(group, stream,
                               [{"timestamp": t, "message": m} for t, m in events])


def quiet_emulation() -> None:
    """The emulator's own chatter is not the user's business; the summary says what failed."""
    import logging
    import warnings

    for name in ("moto", "moto.stepfunctions"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def execution_status(arn: str) -> str:
    """An execution's status as the emulated Step Functions holds it: what DescribeExecution
    would answer, without writing (and reading back) the rest of its answer, the run's
    whole input among it."""
    from moto.stepfunctions.responses import get_backend

    status = get_backend(ACCOUNT, REGION).describe_execution(arn).status
    return str(getattr(status, "value", status))
