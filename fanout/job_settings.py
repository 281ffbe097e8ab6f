"""A job's settings beyond its size and templates: secrets, IAM policies, EFS volumes.

Shared vocabulary (no AWS, no I/O): the config validates them, the stack builds them.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, model_validator

from fanout.errors import described
from fanout.policy import Flag, Frozen

#: An environment variable's name, as a secret is handed to the container.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
#: Where a secret comes from: a Secrets Manager secret (name or ARN, optionally ``#key`` of
#: its JSON), or an SSM parameter (``ssm:`` and its name, or its ARN).
SECRET_SOURCE = re.compile(
    r"^(?:ssm:/?[A-Za-z0-9_.\-/]{1,2047}"
    r"|arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9_.\-/]{1,2047}"
    r"|(?:arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[A-Za-z0-9/_+=.@-]{1,512}"
    r"(?:#[A-Za-z0-9_.@-]{1,256})?)$")
MANAGED_POLICY = re.compile(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[A-Za-z0-9+=,.@_/-]+$")
IAM_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource",
                      "Condition"}


def secret_source(value: str) -> tuple[str, str, str | None]:
    """``(service, reference, json_key)`` of a job secret: service ``ssm`` (parameter name
    or ARN) or ``secretsmanager`` (secret name or ARN, and the JSON key after ``#``)."""
    if value.startswith("ssm:"):
        return "ssm", value[4:], None
    if value.startswith("arn:") and ":ssm:" in value:
        return "ssm", value, None
    reference, _, key = value.partition("#")
    return "secretsmanager", reference, key or None


class VolumeConfig(Frozen):
    """An EFS file system (or one of its access points) mounted into the job's container.
    The file system's security group must allow NFS (2049) from the tasks' security group."""

    file_system_id: str = Field(pattern=described(
        r"^fs-[0-9a-f]{8,40}$", "an EFS file system id (fs- then hexadecimal digits)"))
    access_point_id: str | None = Field(default=None, pattern=described(
        r"^fsap-[0-9a-f]{8,40}$", "an EFS access point id (fsap- then hexadecimal digits)"))
    container_path: str = Field(pattern=described(
        r"^/[^\x00]*$", "an absolute path in the container (/data)"))
    read_only: Flag = False
    #: The directory of the file system to mount (without an access point, which sets its own).
    root_directory: str = Field(default="/", pattern=described(
        r"^/[^\x00]*$", "an absolute path in the file system (/)"))

    @model_validator(mode="after")
    def _root_or_access_point(self) -> VolumeConfig:
        if self.access_point_id and self.root_directory != "/":
            raise ValueError("an access point sets its own root: give access_point_id or "
                             "root_directory, not both")
        return self


def checked_secrets(secrets: dict[str, str]) -> dict[str, str]:
    """A job's ``secrets``, or ValueError naming the first bad one."""
    for name, source in secrets.items():
        if not ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name (letters, "
                             "digits and _, not starting with a digit)")
        if name.startswith("FANOUT_"):
            raise ValueError(f"{name}: names starting FANOUT_ are fanout's own")
        if not SECRET_SOURCE.fullmatch(source):
            raise ValueError(f"{name}: {source!r} is neither a Secrets Manager secret "
                             "(name or ARN, optionally #json-key) nor an SSM parameter "
                             "(ssm:/name or its ARN)")
    return secrets


def checked_policies(policies: list[str | dict[str, Any]]) -> list[str | dict[str, Any]]:
    """A job's ``policies``, or ValueError naming the first bad one."""
    for n, policy in enumerate(policies):
        if isinstance(policy, str):
            if not MANAGED_POLICY.fullmatch(policy):
                raise ValueError(f"[{n}] {policy!r} is not a managed policy ARN "
                                 "(arn:aws:iam::aws:policy/NAME or arn:aws:iam::ACCOUNT:"
                                 "policy/NAME)")
            continue
        unknown = sorted(set(policy) - IAM_STATEMENT_KEYS)
        if unknown:
            raise ValueError(f"[{n}] a policy statement has no key {', '.join(unknown)} "
                             f"(it takes {', '.join(sorted(IAM_STATEMENT_KEYS))})")
        if policy.get("Effect") not in ("Allow", "Deny"):
            raise ValueError(f"[{n}] a policy statement needs \"Effect\": \"Allow\" or "
                             "\"Deny\"")
        if not (policy.get("Action") or policy.get("NotAction")) or not (
                policy.get("Resource") or policy.get("NotResource")):
            raise ValueError(f"[{n}] a policy statement needs Action and Resource")
    return policies
