"""What a refused RunTask means: retry soon, wait for capacity, or fail the attempt for good.

RunTask says no in two ways: an API error (``ClientError`` code and message) or a response
with no task and ``failures[].reason``. Each known answer is one :data:`RULES` row: the
error code or the words that identify it, the verdict, the short reason an item shows
while it waits (``WAITING: vCPU quota``) and where AWS documents it. docs/operating.md
prints the same table; tests/unit/test_launch_errors.py checks every row.

- ``throttled``: the request rate (ECS or the EC2 calls behind it): retried soon, paced by
  the launch gate's bucket, which halves its rate.
- ``capacity``: nothing to run it on *now* (Fargate capacity, the account's vCPU quota,
  the subnets' IP addresses or network interfaces): the item waits, without a deadline
  and without spending an attempt, probed again with a backoff, until its run ends.
- ``refused``: waiting cannot help (a bad task definition or parameter, access denied, an
  account blocked, a task size over the account's limit): the attempt fails.

An answer no row names is ``refused`` unless its error code is a server error (5xx:
retried as a throttle), so an unknown client error fails loudly instead of waiting forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["throttled", "capacity", "refused"]

_FAILURES = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html"
_RUNTASK = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html"
_THROTTLING = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/throttling.html"
_EC2 = "https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html"
_CAPACITY = "https://repost.aws/knowledge-center/ecs-fargate-runtask-capacity"
_QUOTAS = ("https://aws.amazon.com/blogs/containers/"
           "migrating-fargate-service-quotas-to-vcpu-based-quotas/")
_SUBNET_IPS = ("https://repost.aws/questions/QUMM1Oh5d4Q6qaYcL_-EV4jg/"
               "how-subnet-is-choose-by-a-ecs-fargate-task-with-multiple-subnets-assigned")


@dataclass(frozen=True)
class Rule:
    """One documented answer: ``codes`` (exact API error codes), ``words`` (lower-case
    phrases of the message or failure reason) or ``tokens`` (a ``failures[].reason`` code
    such as ``AGENT``, matched as a whole upper-case word); any one matches."""

    kind: Kind
    reason: str
    source: str
    codes: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    #: An example of the answer as AWS gives it (the tests feed it to :func:`classify`).
    example: str = ""


#: First match wins: message rules come before the generic code rules, so a
#: ``ClientException`` that says "vCPUs you can run concurrently" waits instead of failing.
RULES: tuple[Rule, ...] = (
    # --- capacity: wait, the attempt is not spent ----------------------------------------
    Rule("capacity", "vCPU quota", _QUOTAS,
         words=("limit on the number of vcpus",),
         example="You've reached the limit on the number of vCPUs you can run concurrently"),
    Rule("capacity", "task quota", _QUOTAS,
         words=("limit on the number of tasks you can run",),
         example="You've reached the limit on the number of tasks you can run concurrently"),
    Rule("capacity", "capacity unavailable", _CAPACITY,
         words=("capacity is unavailable", "insufficient capacity", "no capacity",
                "capacity unavailable"),
         example="Capacity is unavailable at this time. Please try again later or in a "
                 "different availability zone"),
    Rule("capacity", "subnet IP addresses", _SUBNET_IPS,
         words=("ip space", "ip addresses available", "available ip address",
                "insufficientfreeaddressesinsubnet", "ipnotavailable"),
         example="Not enough IP space available in subnet subnet-0abc. ENI provisioning "
                 "failed"),
    Rule("capacity", "ENI limit", _FAILURES,
         words=("network interface limit", "networkinterfacelimitexceeded",
                "enilimitreached"), tokens=("RESOURCE:ENI",),
         example="RESOURCE:ENI"),
    Rule("capacity", "cluster resources", _FAILURES,
         tokens=("RESOURCE:CPU", "RESOURCE:MEMORY", "RESOURCE:PORTS", "RESOURCE:PORTS_TCP",
                 "RESOURCE:PORTS_UDP", "RESOURCE:GPU"),
         example="TaskFailedToStart: RESOURCE:MEMORY"),
    Rule("capacity", "container agent disconnected", _FAILURES, tokens=("AGENT",),
         example="AGENT"),
    # --- refused for good: waiting cannot help --------------------------------------------
    Rule("refused", "task size over the account's limit",
         "https://gitlab.com/gitlab-org/ci-cd/custom-executor-drivers/fargate/-/issues/41",
         words=("cpu configuration is above your limit",),
         example="The requested CPU configuration is above your limit"),
    Rule("refused", "container instance attribute missing", _FAILURES,
         tokens=("ATTRIBUTE",), example="ATTRIBUTE"),
    Rule("refused", "resource missing", _FAILURES, tokens=("MISSING",), example="MISSING"),
    Rule("refused", "container instance inactive", _FAILURES, tokens=("INACTIVE",),
         example="INACTIVE"),
    # --- throttles: retry soon, paced ------------------------------------------------------
    Rule("throttled", "launch throttled", _THROTTLING,
         codes=("ThrottlingException", "Throttling", "TooManyRequestsException"),
         example="Rate exceeded"),
    Rule("throttled", "EC2 request limit", _EC2, codes=("RequestLimitExceeded",),
         example="Request limit exceeded."),
    Rule("throttled", "ECS server error", _RUNTASK,
         codes=("ServerException", "InternalFailure", "ServiceUnavailable",
                "InternalServerError"),
         example="Service Unavailable"),
    # --- the API's own client errors ------------------------------------------------------
    Rule("refused", "access denied", _RUNTASK,
         codes=("AccessDeniedException", "AccessDenied"), example="User is not authorized"),
    Rule("refused", "account blocked", _RUNTASK, codes=("BlockedException",),
         example="Your account is blocked"),
    Rule("refused", "cluster not found", _RUNTASK, codes=("ClusterNotFoundException",),
         example="Cluster not found."),
    Rule("refused", "invalid parameter", _RUNTASK, codes=("InvalidParameterException",),
         example="Task definition does not support launch_type FARGATE."),
    Rule("refused", "platform version", _RUNTASK,
         codes=("PlatformUnknownException", "PlatformTaskDefinitionIncompatibilityException"),
         example="The specified platform version does not exist."),
    Rule("refused", "unsupported in this Region", _RUNTASK,
         codes=("UnsupportedFeatureException",), example="not supported in this Region"),
    Rule("refused", "client token in use", _RUNTASK, codes=("ConflictException",),
         example="The provided clientToken is already in use with a different RunTask "
                 "request."),
    Rule("refused", "client error", _RUNTASK, codes=("ClientException",),
         example="The specified task definition does not exist."),
)


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    #: What the item shows while it waits, or the failure's short name.
    reason: str


def classify(code: str, message: str, status: int | None = None) -> Verdict:
    """The verdict on one refused RunTask: ``code`` is the API error code ("" for a
    ``failures[]`` answer), ``message`` the error message or the failure reasons,
    ``status`` the HTTP status when known."""
    worded = _by_words(message)
    for rule in RULES:
        if code and code in rule.codes:
            # A client error whose words say quota or capacity waits all the same.
            if worded is not None and rule.kind == "refused" and worded.kind != "refused":
                return worded
            return Verdict(rule.kind, rule.reason)
    if worded is not None:
        return worded
    if status is not None and status >= 500:
        return Verdict("throttled", "ECS server error")
    return Verdict("refused", "launch refused")


def _by_words(message: str) -> Verdict | None:
    lower = _plain(message)
    for rule in RULES:
        if any(word in lower for word in rule.words) or any(
                re.search(rf"(?<![A-Z_]){re.escape(token)}(?![A-Z_])", message)
                for token in rule.tokens):
            return Verdict(rule.kind, rule.reason)
    return None


def _plain(message: str) -> str:
    """Lower case, typographic apostrophes made plain (U+2019 as AWS prints it at times)."""
    return message.lower().replace("\u2019", "'")
