"""Names fanout and AWS share: a run id (a Step Functions execution name), the console pages
of an execution and of a log group or stream, a job's CloudFormation output ids.

Step Functions accepts an execution name of 1 to 80 characters with no whitespace, no
brackets ``< > { } [ ]``, no wildcards ``? *``, none of ``" # % \\ ^ | ~ ` $ & , ; : /``
and no control characters. The local mode also makes a folder of it, so ``.`` and ``..``
are refused too (they are valid on AWS, but no id a person would choose).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from urllib.parse import quote

from fanout.errors import Problem

MAX_EXECUTION_NAME = 80
_FORBIDDEN = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
#: ``arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE``: the region of an ARN (of the ``aws``
#: partition, whose console is ``REGION.console.aws.amazon.com``).
_ARN_REGION = re.compile(r"^arn:aws:[a-z0-9-]+:([a-z]{2}(?:-[a-z]+)+-\d+):\d{12}:.+$")


def run_id_problem(run_id: str, field: str = "--run-id") -> Problem | None:
    """What is wrong with ``run_id`` as a Step Functions execution name, if anything."""
    if not run_id:
        return Problem(field, "is empty; give 1 to 80 letters, digits, '-', '_' or '.'")
    if len(run_id) > MAX_EXECUTION_NAME:
        return Problem(field, f"is {len(run_id)} characters; a run id (the Step Functions "
                              f"execution name) has at most {MAX_EXECUTION_NAME}")
    bad = _FORBIDDEN.search(run_id)
    if bad:
        char = bad[0]
        shown = "a space" if char == " " else repr(char) if char.isprintable() \
            and not char.isspace() else f"U+{ord(char):04X}"
        return Problem(field, f"{run_id!r} holds {shown}, which a Step Functions execution "
                              "name cannot hold; use letters, digits, '-', '_' or '.'")
    if run_id in (".", ".."):
        return Problem(field, f"{run_id!r} is not a usable run id; use letters, digits, "
                              "'-', '_' or '.'")
    return None


def new_run_id(job: str, now: datetime | None = None, limit: int = MAX_EXECUTION_NAME) -> str:
    """A run id for a run nobody named: ``JOB-20260101T120000Z-3fa2c1`` (the job, the UTC
    time, six random hex digits), the job cut short so that the id fits an execution name
    (a job name has at most 40 characters, so it is cut only for a name no config allows),
    or ``limit`` characters (a pipeline run's: its steps' run ids add ``.<step>``)."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    tail = f"-{stamp}-{secrets.token_hex(3)}"
    return job[:limit - len(tail)] + tail


def console_url(execution_arn: str | None) -> str:
    """The execution's page in the Step Functions console: "" when the ARN is not known, or
    is too short to be ``arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME``."""
    if not execution_arn or execution_arn.count(":") < 6:
        return ""
    region = execution_arn.split(":")[3]
    return (f"https://{region}.console.aws.amazon.com/states/home?region={region}"
            f"#/v2/executions/details/{execution_arn}")


def logs_console_url(arn: str | None, group: str | None, stream: str | None = None) -> str:
    """The CloudWatch Logs console page of log group ``group`` (of its ``stream`` when given),
    in the region of ``arn`` (the attempt's task or the run's execution): "" when the ARN is
    not known or not ``arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE`` (another partition's console
    is elsewhere), or no group is known.

    The console reads the names from the URL's fragment (``#logsV2:log-groups/log-group/
    GROUP/log-events/STREAM``) percent-encoded twice with ``%`` written ``$``: ``/`` is
    ``$252F``, ``$`` is ``$2524``."""
    found = _ARN_REGION.match(arn or "")
    if found is None or not group:
        return ""
    region = found[1]
    page = f"log-groups/log-group/{_console_escaped(group)}"
    if stream:
        page += f"/log-events/{_console_escaped(stream)}"
    return (f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#logsV2:{page}")


def _console_escaped(name: str) -> str:
    return quote(quote(name, safe=""), safe="").replace("%", "$")


def output_id(job: str) -> str:
    """A job name as the stack's CloudFormation output ids spell it (letters and digits:
    ``my-job`` -> ``MyJob``, as in ``LogsMyJob``)."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", job))
